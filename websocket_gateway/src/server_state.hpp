// What the server's threads share, and what each thread keeps for itself.
//
// The Redis client, the hub (one Redis subscription per channel per process) and the accept
// loop run on the client's executor, the hub's. Connections, hence sessions, are spread over
// `options::threads` workers: worker 0 runs on the hub's executor, the others each on a thread
// of their own. A worker keeps its sessions' channels: the hub hands each message of a channel
// once to every worker that has the channel (one shared line, a pointer per session), and a
// worker asks the hub for a channel only when its first session joins it. Beast-free: sessions
// appear as session_handle and hub::listener.
#pragma once

#include "hub.hpp"
#include "inbox.hpp"
#include "proxy.hpp"
#include "presence.hpp"

#include <akv/gateway/server.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace akv::gateway::detail {

class session_handle {
public:
    virtual void shut_down() = 0;   // close 1001 after the queue drains
    virtual void force_close() = 0; // the socket, now

protected:
    ~session_handle() = default;
};

// A worker's counters: written by its own thread only, read by any (relaxed: figures, not
// synchronisation).
struct worker_counters {
    std::atomic<std::uint64_t> sessions{0};
    std::atomic<std::uint64_t> sessions_total{0};
    std::atomic<std::uint64_t> refused_total{0};
    std::atomic<std::uint64_t> messages_out{0};
    std::atomic<std::uint64_t> frames_out{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> slow_disconnects{0};
    std::atomic<std::uint64_t> published{0};
    std::atomic<std::uint64_t> webhooks{0};

    static void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
};

struct server_state;

class worker {
public:
    worker(std::size_t index, asio::any_io_executor ex, server_state& srv);
    ~worker();
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    std::size_t index() const noexcept { return index_; }
    const asio::any_io_executor& get_executor() const noexcept { return ex_; }
    // Worker 0 shares the hub's executor: the hub calls it directly instead of posting.
    bool on_hub_executor() const noexcept { return index_ == 0; }

    // On this worker's executor. Returns once Redis has subscribed the channel (at once when
    // another session of this worker has it already); throws what the subscription threw.
    asio::awaitable<void> join(const std::string& channel, listener* l);
    void leave(const std::string& channel, listener* l);

    // From the hub, on this worker's executor, for the channel's generation `gen`.
    void deliver(const std::string& channel, std::uint64_t gen, const std::vector<delivery>& batch);
    void resync(const std::string& channel, std::uint64_t gen);

    // Its channels and how many of its sessions each has (this worker's executor only).
    std::vector<std::pair<std::string, std::size_t>> subscriber_counts() const;

    // Sessions and plain HTTP connections of this worker, for shutdown (its thread only).
    std::vector<session_handle*> sessions;
    worker_counters counters;
    // A session or connection ended: the server, waiting for them to drain, looks again.
    void changed();

private:
    struct local_channel;

    std::size_t index_;
    asio::any_io_executor ex_;
    server_state& srv_;
    std::unordered_map<std::string, std::shared_ptr<local_channel>> channels_;
};

struct server_state {
    server_state(client& r, const options& o)
        : redis(r)
        , opts(o)
        , changed(r.get_executor())
        , hub(r, o, changed, workers)
        , presence(r, o, changed)
        , proxy(o.proxy) {
        changed.expires_at(asio::steady_timer::time_point::max());
    }

    client& redis;
    const options& opts;
    asio::steady_timer changed; // on the hub's executor: cancelled when something ended
    std::vector<std::unique_ptr<worker>> workers; // [0] on the hub's executor
    detail::hub hub;
    presence::registry presence; // on the hub's executor
    std::atomic<std::size_t> open_sessions{0}; // over every worker, for max_sessions
    std::atomic<std::size_t> live_sessions{0}; // session objects not yet destroyed (shutdown waits)
    inbox_registry streams;                    // the SSE and HTTP-streaming sessions, by key
    backend_proxy proxy;                       // the application's connect/subscribe/... proxies
    std::string id_prefix;                     // this process's, in front of its client ids
    std::atomic<double> redis_latency_ms{0};
};

} // namespace akv::gateway::detail
