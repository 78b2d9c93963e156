// The gateway: one port for HTTP (static files, publish API, health, metrics) and WebSocket
// sessions (`/ws`), Redis channels fanned out to browsers. See websocket_gateway/README.md for
// the protocol.
//
//   akv::client redis(io.get_executor(), cfg);           // running: co_spawn(redis.run())
//   akv::gateway::server gw(redis, opts);
//   co_await gw.run();                                   // until stop()
//
// The Redis client, the channel hub and the accept loop run on the client's executor; sessions
// are spread over options::threads event loops (the client's executor and threads of the
// server's own). One Redis subscription per channel per process, fanned out to bounded
// per-session queues; a session that cannot keep up loses only its own messages (or is
// disconnected), never anyone else's. Webhook handlers run on the client's executor.
//
// The server makes the client's messaging::subscriber (there is one per client: it takes the
// connection's pushes), so give it a client of its own rather than one the app subscribes on.
// After a reconnect to Redis, history channels are read back from the newest offset fanned out,
// so sessions lose nothing to the outage.
#pragma once

#include <akv/client.hpp>
#include <akv/gateway/options.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace akv::gateway {

struct stats {
    std::uint64_t sessions = 0;           // open now
    std::uint64_t channels = 0;           // Redis channels subscribed now
    std::uint64_t sessions_total = 0;     // accepted since start
    std::uint64_t refused_total = 0;      // handshakes or connects refused
    std::uint64_t messages_in = 0;        // from Redis
    std::uint64_t messages_out = 0;       // to sessions (one per session per message)
    std::uint64_t frames_out = 0;         // WebSocket frames written (several messages each)
    std::uint64_t dropped = 0;            // by full send queues (drop_oldest) or a lagging hub
    std::uint64_t slow_disconnects = 0;   // sessions closed with 4008
    std::uint64_t published = 0;          // through the API or sessions
    std::uint64_t recovered = 0;          // read back from history after a Redis reconnect
    std::uint64_t webhooks = 0;           // webhook requests answered by their handler
    double redis_latency_ms = 0;          // last PING round trip
};

// One channel as server::channel_counts sees it.
struct channel_count {
    std::string name;              // as sessions name it (without options::channel_prefix)
    std::uint64_t subscribers = 0; // sessions of this process subscribed to it
    // Channels with a presence rule: the entries in Redis, every gateway process's sessions.
    std::optional<std::uint64_t> present;
};

class server {
public:
    // Throws system_error if the options are invalid (naming which) or TLS files do not load.
    server(client& redis, options opts);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds, then serves until stop(); returns once every session is closed (or the grace
    // ran out). Throws system_error if the port cannot be bound.
    asio::awaitable<void> run();

    // Graceful: stops accepting, closes every session with 1001, drains within shutdown_grace.
    // Safe to call from the client's executor only (post it from elsewhere).
    void stop();

    // The bound port once run() has started listening (0 before).
    std::uint16_t port() const noexcept;
    // True once listening.
    bool listening() const noexcept;
    // On the client's executor.
    stats snapshot() const;
    // On the client's executor: the `limit` channels with the most subscribers in this process
    // (ties by name), each worker's sessions counted on the worker's own thread; channels with a
    // presence rule get their presence count (one Redis call each, all at once). Throws what
    // Redis threw.
    asio::awaitable<std::vector<channel_count>> channel_counts(std::size_t limit) const;
    const options& get_options() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace akv::gateway
