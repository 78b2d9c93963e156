// The channel hub: one Redis subscription per channel per process, handed to the workers that
// have sessions on the channel. Messages are decoded and turned into push lines once per
// channel, then shared (a shared_ptr each) by every worker and session, so fan-out costs a
// pointer per session. Runs on the Redis client's executor; workers call it from theirs
// through post() and co_spawn().
#pragma once

#include <akv/client.hpp>
#include <akv/gateway/options.hpp>
#include <akv/messaging/subscriber.hpp>

#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace akv::gateway::detail {

using line_ptr = std::shared_ptr<const std::string>;

// One message of a channel, as a worker receives it.
struct delivery {
    line_ptr line;
    std::optional<std::string> offset; // history channels
    bool join_leave = false;           // a presence event: only for sessions that asked
};

// A session as a worker sees it. Called on the worker's executor; must not call join/leave.
class listener {
public:
    virtual void on_message(const std::string& channel, const delivery& d) = 0;
    // The channel's history may have lost messages (a new epoch, or a gap after a reconnect):
    // the listener is dropped from the channel; the session tells its client to resync.
    virtual void on_resync(const std::string& channel) = 0;

protected:
    ~listener() = default;
};

class worker;

class hub {
public:
    // `changed` is cancelled whenever drained() may have become true.
    hub(client& redis, const options& opts, asio::steady_timer& changed,
        std::vector<std::unique_ptr<worker>>& workers);
    ~hub();
    hub(const hub&) = delete;
    hub& operator=(const hub&) = delete;

    // On the hub's executor. Adds worker `w` to `channel`; returns once Redis has subscribed it
    // (at once if it already is), with the channel's generation: deliveries and resyncs name
    // it, so a worker tells them from those of a channel of the same name it left before.
    // Throws what the subscription threw (and `w` is not added).
    asio::awaitable<std::uint64_t> join(const std::string& channel, std::size_t w);
    // Removes worker `w`; the Redis subscription ends with the channel's last worker.
    void leave(const std::string& channel, std::size_t w);
    // The position a session read in the channel's history when it subscribed: after a
    // reconnect to Redis the hub reads the history from the newest position it knows, so what
    // was published while the connection was down reaches the sessions too, in order, once; or,
    // when the history cannot tell (another epoch, trimmed past it), they are told to resync.
    void note_position(const std::string& channel, const std::string& offset,
                       const std::string& epoch);

    // Figures, from any thread.
    std::size_t channels() const noexcept { return channel_count_.load(std::memory_order_relaxed); }
    std::uint64_t messages_in() const noexcept { return messages_in_.load(std::memory_order_relaxed); }
    std::uint64_t recovered() const noexcept { return recovered_.load(std::memory_order_relaxed); }
    // Lost by channel queues when the process could not keep up (hub's executor only).
    std::uint64_t dropped() const;

    // Ends every subscription; run `drained()` until it is true before destroying the hub.
    void stop();
    bool drained() const noexcept { return tasks_ == 0; }

private:
    struct channel;
    asio::awaitable<void> pump(std::shared_ptr<channel> ch);
    asio::awaitable<void> unsubscribe(std::shared_ptr<channel> ch);
    // Decodes a payload into the channel's pending batch; false when the channel was dropped.
    bool dispatch(channel& ch, const std::string& payload);
    void fan_out(channel& ch, const std::optional<std::string>& offset, const std::string& data);
    void flush(channel& ch); // the pending batch to every worker of the channel
    void on_restored(const std::vector<std::string>& redis_channels);
    asio::awaitable<void> catch_up(std::shared_ptr<channel> ch);
    // Drops every worker of `ch`, telling each to resync its sessions, and ends its
    // subscription.
    void resync(std::shared_ptr<channel> ch);
    void forget(channel& ch); // out of the map

    client& redis_;
    const options& opts_;
    asio::steady_timer& changed_;
    std::vector<std::unique_ptr<worker>>& workers_;
    messaging::subscriber subscriber_;
    std::map<std::string, std::shared_ptr<channel>, std::less<>> channels_;
    std::atomic<std::size_t> channel_count_{0};
    std::atomic<std::uint64_t> messages_in_{0};
    std::atomic<std::uint64_t> recovered_{0};
    std::uint64_t next_generation_ = 0;
    std::uint64_t dropped_gone_ = 0; // drops of channels already gone
    std::size_t tasks_ = 0;          // pumps and unsubscribes still running
    bool stopped_ = false;
};

} // namespace akv::gateway::detail
