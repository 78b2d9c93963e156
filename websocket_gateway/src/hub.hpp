// The channel hub: one Redis subscription per channel per process, fanned out to the sessions
// that joined it. Messages are decoded and turned into push lines once per channel, then shared
// by every session (a shared_ptr each), so fan-out costs a pointer per session.
#pragma once

#include <akv/client.hpp>
#include <akv/gateway/options.hpp>
#include <akv/messaging/subscriber.hpp>

#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace akv::gateway::detail {

using line_ptr = std::shared_ptr<const std::string>;

// A session as the hub sees it. Called on the hub's executor; must not call join/leave.
class listener {
public:
    virtual void on_message(const std::string& channel, const line_ptr& line,
                            const std::optional<std::string>& offset) = 0;

protected:
    ~listener() = default;
};

class hub {
public:
    // `changed` is cancelled whenever drained() may have become true.
    hub(client& redis, const options& opts, asio::steady_timer& changed);
    ~hub();
    hub(const hub&) = delete;
    hub& operator=(const hub&) = delete;

    // Adds `l` to `channel`; returns once Redis has subscribed it (at once if it already is).
    // Throws what the subscription threw (and `l` is not added).
    asio::awaitable<void> join(const std::string& channel, listener* l);
    // Removes `l`; the Redis subscription ends with the channel's last listener.
    void leave(const std::string& channel, listener* l);
    // The newest offset a session saw in the channel's history when it subscribed: after a
    // reconnect to Redis the hub reads the history from the newest offset it knows, so what was
    // published while the connection was down reaches the sessions too, in order, once.
    void note_offset(const std::string& channel, const std::string& offset);
    std::uint64_t recovered() const noexcept { return recovered_; } // read back after reconnects

    std::size_t channels() const noexcept { return channels_.size(); }
    std::uint64_t messages_in() const noexcept { return messages_in_; }
    std::uint64_t dropped() const; // lost by channel queues when the process could not keep up

    // Ends every subscription; run `drained()` until it is true before destroying the hub.
    void stop();
    bool drained() const noexcept { return tasks_ == 0; }

private:
    struct channel;
    asio::awaitable<void> pump(std::shared_ptr<channel> ch);
    asio::awaitable<void> unsubscribe(std::shared_ptr<channel> ch);
    void dispatch(channel& ch, const std::string& payload);
    void fan_out(channel& ch, const std::optional<std::string>& offset, const std::string& data);
    void on_connected();
    asio::awaitable<void> catch_up(std::shared_ptr<channel> ch);

    client& redis_;
    const options& opts_;
    asio::steady_timer& changed_;
    messaging::subscriber subscriber_;
    std::map<std::string, std::shared_ptr<channel>, std::less<>> channels_;
    std::size_t listener_id_ = 0;
    std::uint64_t messages_in_ = 0;
    std::uint64_t recovered_ = 0;
    std::uint64_t dropped_gone_ = 0; // drops of channels already gone
    std::size_t tasks_ = 0;          // pumps and unsubscribes still running
    bool stopped_ = false;
};

} // namespace akv::gateway::detail
