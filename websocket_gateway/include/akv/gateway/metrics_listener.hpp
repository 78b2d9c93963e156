// GET /metrics (Prometheus's text format) for the processes that are not the gateway:
// akv-worker and akv-batcher answer a scraper with it (--metrics-listen HOST:PORT). Beast is
// compiled once, here in the gateway library, so the HTTP side lives here too.
//
//   akv::gateway::metrics_listener metrics(io.get_executor(), "127.0.0.1", 9464,
//                                          [&] { return exposition_of_my_counters(); });
//   asio::co_spawn(io, metrics.run(), asio::detached);
//   ... metrics.stop();
//
// Only GET (or HEAD) of /metrics and /healthz; anything else gets 404 or 405, a request that
// is not HTTP gets 400, a peer that sends nothing for 5 s is closed, and past 32 connections at
// once new ones are closed at once. The source is called on the listener's executor: give it
// the one your counters live on.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace akv::gateway {

class metrics_listener {
public:
    using source = std::function<std::string()>;

    // Binds at once: throws system_error for an address that cannot be bound (in use, not
    // local) and error::invalid_config for a host that is not an IP address.
    metrics_listener(boost::asio::any_io_executor ex, const std::string& host, std::uint16_t port,
                     source metrics);
    ~metrics_listener();
    metrics_listener(const metrics_listener&) = delete;
    metrics_listener& operator=(const metrics_listener&) = delete;

    // Serves until stop(); each connection on a coroutine of its own.
    boost::asio::awaitable<void> run();
    void stop();
    std::uint16_t port() const; // the bound port (useful with port 0)

private:
    struct state;
    std::shared_ptr<state> state_;
};

} // namespace akv::gateway
