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

    client& redis_;
    const options& opts_;
    asio::steady_timer& changed_;
    messaging::subscriber subscriber_;
    std::map<std::string, std::shared_ptr<channel>, std::less<>> channels_;
    std::uint64_t messages_in_ = 0;
    std::uint64_t dropped_gone_ = 0; // drops of channels already gone
    std::size_t tasks_ = 0;          // pumps and unsubscribes still running
    bool stopped_ = false;
};

} // namespace akv::gateway::detail
