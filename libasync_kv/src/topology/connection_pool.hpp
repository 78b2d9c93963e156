// Connections for blocking commands (BLPOP, BZPOPMIN, XREADGROUP ... BLOCK): a command that
// blocks holds its connection, so it must not share the multiplexed one that every other request
// rides on. Up to config::pool_size per server, each used by one command at a time.
//
// A connection goes either to a given server (a cluster node) or "where the main connection
// goes": the topology says how such a connection finds its server (set_default_route), e.g.
// asking the sentinels for the master.
#pragma once

#include <akv/connection.hpp>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <tuple>
#include <vector>

namespace akv::detail {

// `cfg` for a connection to `node` alone: standalone, that host, never the unix socket.
config config_for_node(config cfg, const endpoint& node);

class connection_pool {
public:
    using executor_type = connection::executor_type;

    // `cfg` is the client's; the pool's connections run without a health check.
    connection_pool(executor_type ex, const config& cfg);
    ~connection_pool();
    connection_pool(const connection_pool&) = delete;
    connection_pool& operator=(const connection_pool&) = delete;

    // Applied to every new connection that has no target, before its run().
    void set_default_route(std::function<void(connection&)> setup);

    // Runs `req` on a connection of its own to `target` (nullptr: where the main connection
    // goes), waiting up to config::pool_wait_timeout for one (error::pool_exhausted).
    asio::awaitable<std::tuple<boost::system::error_code, std::size_t>>
    exec(const endpoint* target, const request& req, reply_adapter adapter,
         asio::cancellation_slot cancel);

    // exec() for a caller's type-erased handler, to where the main connection goes.
    void start_exec(asio::any_completion_handler<connection::exec_signature> handler,
                    executor_type handler_ex, const request* req, reply_adapter adapter);

    // Connections without a target ask their route again (a new sentinel master).
    void reconnect_default();

    // Fails what waits for a connection and stops every connection; exec() then fails with
    // connection_closed. A connection whose command is still out goes once it is released.
    void cancel();
    void restart() noexcept { stopped_ = false; }

    std::size_t size() const noexcept { return pool_.size(); }
    // Summed over the pool's connections.
    void add_stats(connection_stats& into) const;

private:
    struct pooled;

    asio::awaitable<pooled*> acquire(const endpoint* target);
    void release(pooled& p, bool healthy);
    void wake_waiters();
    asio::awaitable<void> exec_handler(asio::any_completion_handler<connection::exec_signature> h,
                                       executor_type handler_ex, const request* req,
                                       reply_adapter adapter);

    executor_type ex_;
    config cfg_;
    std::function<void(connection&)> default_route_;
    std::list<std::unique_ptr<pooled>> pool_;
    std::vector<asio::steady_timer*> waiters_; // coroutines waiting for a free connection
    bool stopped_ = false;
};

} // namespace akv::detail
