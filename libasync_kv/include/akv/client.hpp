// akv::client: what every higher layer talks to.
//
// One multiplexed connection for ordinary commands, plus a small pool of dedicated connections
// for blocking commands (BLPOP, XREADGROUP ... BLOCK, ...), which would otherwise stall every
// request queued behind them. config::topology picks what stands behind it:
//   standalone  the one server of config::hosts (or unix_socket);
//   sentinel    the master named config::master_name, found through the sentinels of
//               config::hosts and followed across failovers;
//   cluster     every master of a Redis Cluster seeded by config::hosts: each command goes to
//               the node serving its keys' slot, MOVED/ASK are followed, a pipeline is split
//               per node and its replies come back in order.
// Callers do not change between the three, and nothing here tells them apart but the figures.
#pragma once

#include <akv/connection.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace akv {

namespace detail {
class topology;
class connection_pool;
class near_cache;
} // namespace detail

// A cluster's routing, counted (zero on the other topologies).
struct cluster_stats {
    std::uint64_t moved = 0;     // MOVED replies followed
    std::uint64_t asked = 0;     // ASK replies followed
    std::uint64_t waits = 0;     // TRYAGAIN, CLUSTERDOWN or a node down: waited and re-routed
    std::uint64_t refreshes = 0; // slot maps read
    std::uint64_t refusals = 0;  // commands refused unsent (CROSSSLOT)
};

// The client-side cache (config::cache), counted; all zero when it is off. A hit or a miss is
// one read: a GET, or one key of an MGET.
struct cache_stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;        // read from the server, then kept
    std::uint64_t not_cached = 0;    // read from the server, not kept: its key changed meanwhile
    std::uint64_t invalidations = 0; // entries dropped because the server said their key changed
    std::uint64_t flushes = 0;       // every entry dropped: a lost connection, FLUSHALL, a failover
    std::uint64_t evictions = 0;     // dropped for the byte budget
    std::uint64_t expirations = 0;   // dropped at the age limit (config::cache.ttl)
    std::size_t entries = 0;
    std::size_t bytes = 0; // counted against config::cache.max_bytes
};

struct client_stats {
    connection_stats connections;         // summed over every connection: main, pool, cluster nodes
    std::size_t blocking_connections = 0; // open now in the pool
    cluster_stats cluster;
    cache_stats cache;
};

// A connection of the client, by number: the main connection is 0; on a cluster each node's
// connection has its own, never reused. Pub/sub lives on connections, so the messaging layer
// needs to know which one a push or an event came from.
using link_id = std::uint64_t;
inline constexpr link_id main_link = 0;

struct client_event {
    enum class kind {
        connected,
        disconnected,
        reconnecting,
        stopped,
        topology_changed, // a cluster's slot map or a sentinel's master changed
    };
    kind what;
    boost::system::error_code reason; // disconnected / stopped: why
    std::string detail;               // e.g. the server's text for a refused HELLO
    link_id link = main_link;         // the connection it is about
};

class client {
public:
    using executor_type = connection::executor_type;

    explicit client(executor_type ex, config cfg = {});
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    executor_type get_executor() const noexcept { return ex_; }
    // The configuration every connection runs with.
    const config& get_config() const noexcept { return cfg_; }

    // Keeps the connections up until cancel().
    asio::awaitable<void> run();

    // As connection::exec. A request holding a blocking command runs on a pooled connection
    // of its own (config::pool_size of them at most, waiting config::pool_wait_timeout for one).
    template <class Response, class Token = asio::use_awaitable_t<>>
    auto exec(const request& req, Response& resp, Token&& token = {}) {
        return asio::async_initiate<Token, connection::exec_signature>(
            [this](auto handler, const request* r, detail::reply_adapter adapter) {
                executor_type handler_ex = detail::completion_executor(handler, get_executor());
                start_exec(detail::recycled(std::move(handler)), std::move(handler_ex), r, adapter);
            },
            token, &req, detail::make_adapter(resp));
    }

    // The main connection's pushes (connection::receive_push), unless a push handler is set.
    template <class Token = asio::use_awaitable_t<>> auto receive_push(Token&& token = {}) {
        return asio::async_initiate<Token, connection::push_signature>(
            [this](auto handler) {
                executor_type handler_ex = detail::completion_executor(handler, get_executor());
                start_receive_push(detail::recycled(std::move(handler)), std::move(handler_ex));
            },
            token);
    }

    void cancel();

    // ---- State, the same on every topology.

    // The main connection is up (cluster: a connection to one of the masters).
    bool is_connected() const noexcept;
    // Why the client last failed to connect or to route, in words (a cluster's slot map that
    // could not be read comes first).
    std::string last_error_message() const;
    client_stats stats() const;
    // Where the main connection goes (sentinel: the master, or a replica with
    // read_from_replicas; cluster: one of the masters).
    endpoint remote_endpoint() const;
    // The masters that take writes: the one server, or every master of the slot map. Empty
    // until known.
    std::vector<endpoint> masters() const;
    // The master serving `slot`: a cluster's per its slot map, the one server otherwise.
    std::optional<endpoint> master_of(std::uint16_t slot) const;

    // Events of every connection of the client (`link` says which) and topology changes.
    // Called on the client's executor; the handler first, then the listeners in the order added.
    void set_event_handler(std::function<void(const client_event&)> handler);
    // For the library's own layers (a subscriber restores its subscriptions on `connected`).
    // Call on the client's executor.
    std::size_t add_event_listener(std::function<void(const client_event&)> listener);
    void remove_event_listener(std::size_t id);

    // ---- Client-side caching (config::cache, request::options::cache).

    // The keys the cache was told changed, as the notice arrives (on the client's executor); an
    // empty list means any key may have changed (a lost connection, FLUSHALL, a failover, a slot
    // that moved). A model registry reloads its `latest` this way instead of polling. Only keys
    // the cache holds, or tracks by prefix in broadcast mode, are ever announced.
    std::size_t
    add_invalidation_listener(std::function<void(std::span<const std::string_view> keys)> listener);
    void remove_invalidation_listener(std::size_t id);
    // Drops every entry now.
    void flush_cache();

    // `req` (with options::cache) answered from the cache now, with no round trip and no
    // suspension, when the client caches and every read of `req` hits: true, and `resp` holds the
    // replies. Otherwise false, nothing was sent (`resp` may have been cleared): exec() it. Call on
    // the client's executor. The cheapest read there is: a co_await of exec() costs more than the
    // lookup itself. One call in 32 says false regardless, so that a loop of hits still lets
    // invalidations in.
    template <class Response> bool try_cached(const request& req, Response& resp) {
        return try_cached_adapted(req, detail::make_adapter(resp));
    }

    // ---- For a pub/sub layer (messaging::subscriber): subscriptions live on connections.

    // Every push of every connection goes to `handler` as it arrives, on the read path, instead
    // of receive_push()'s queue. Keep it fast. nullptr restores the queue.
    void set_push_handler(std::function<void(link_id, resp::value&&)> handler);
    // The connection serving `channel`'s slot (SSUBSCRIBE goes there): on a cluster its
    // master's, nullopt until the slot map is known; otherwise the main connection.
    std::optional<link_id> link_for_channel(std::string_view channel);
    bool is_connected(link_id link) const;
    // As exec(), on one connection; fails with error::connection_closed once it has gone.
    template <class Response, class Token = asio::use_awaitable_t<>>
    auto exec_on(link_id link, const request& req, Response& resp, Token&& token = {}) {
        return asio::async_initiate<Token, connection::exec_signature>(
            [this, link](auto handler, const request* r, detail::reply_adapter adapter) {
                executor_type handler_ex = detail::completion_executor(handler, get_executor());
                start_exec_on(link, detail::recycled(std::move(handler)), std::move(handler_ex), r,
                              adapter);
            },
            token, &req, detail::make_adapter(resp));
    }
    // A node refused what the slot map says it serves: read the map again soon.
    void refresh_topology();

private:
    void start_exec(asio::any_completion_handler<connection::exec_signature> handler,
                    executor_type handler_ex, const request* req, detail::reply_adapter adapter);
    void start_exec_on(link_id link,
                       asio::any_completion_handler<connection::exec_signature> handler,
                       executor_type handler_ex, const request* req, detail::reply_adapter adapter);
    void start_receive_push(asio::any_completion_handler<connection::push_signature> handler,
                            executor_type handler_ex);
    bool try_cached_adapted(const request& req, detail::reply_adapter adapter);
    void emit(const client_event& e);

    executor_type ex_;
    config cfg_;
    std::unique_ptr<detail::connection_pool> pool_;
    std::unique_ptr<detail::topology> topology_;
    std::unique_ptr<detail::near_cache> cache_; // null unless config::cache is on
    std::function<void(const client_event&)> on_event_;
    std::vector<std::pair<std::size_t, std::function<void(const client_event&)>>> listeners_;
    std::size_t next_listener_ = 0;
};

} // namespace akv
