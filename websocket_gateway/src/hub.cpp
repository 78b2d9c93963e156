#include "hub.hpp"
#include "history.hpp"
#include "protocol.hpp"

#include <akv/gateway/publish.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace akv::gateway::detail {

struct hub::channel {
    std::string name;
    std::string quoted; // the name as a JSON string, for push lines
    std::vector<listener*> listeners;
    std::shared_ptr<messaging::subscription> sub;
    bool ready = false;
    bool gone = false; // left the map (last listener left, or the hub stopped)
    std::exception_ptr failed;
    std::unique_ptr<asio::steady_timer> ready_signal;
    const history_rule* history = nullptr;
    std::optional<std::string> last_offset;  // newest fanned out (history channels)
    std::optional<std::string> noted_offset; // newest a subscribing session read
    bool catching_up = false;
    std::vector<std::string> held; // payloads that came while catching up
};

hub::hub(client& redis, const options& opts, asio::steady_timer& changed)
    : redis_(redis)
    , opts_(opts)
    , changed_(changed)
    , subscriber_(redis) {
    // After the subscriber's own listener (it restores the subscriptions first), so the history
    // read below goes out after the SUBSCRIBE on the same connection.
    listener_id_ = redis_.add_event_listener([this](const client_event& e) {
        if (e.what == client_event::kind::connected && e.link == main_link) on_connected();
    });
}

hub::~hub() { redis_.remove_event_listener(listener_id_); }

void hub::note_offset(const std::string& name, const std::string& offset) {
    auto it = channels_.find(name);
    if (it == channels_.end()) return;
    auto& ch = *it->second;
    if (!ch.noted_offset || protocol::offset_less(*ch.noted_offset, offset)) ch.noted_offset = offset;
}

void hub::on_connected() {
    if (stopped_) return;
    for (auto& [name, ch] : channels_) {
        if (!ch->ready || !ch->history || ch->catching_up) continue;
        if (!ch->last_offset && !ch->noted_offset) continue;
        ch->catching_up = true;
        ++tasks_;
        asio::co_spawn(redis_.get_executor(), catch_up(ch), asio::detached);
    }
}

asio::awaitable<void> hub::catch_up(std::shared_ptr<channel> ch) {
    std::optional<history::recovery> rec;
    try {
        // From the newest message fanned out: a session that read further when it subscribed
        // may get a few twice (offsets tell; akv.js drops them).
        const std::string from = ch->last_offset ? *ch->last_offset : *ch->noted_offset;
        const std::string redis_channel = opts_.channel_prefix + ch->name;
        rec = co_await history::recover(redis_, *ch->history, redis_channel, from);
    } catch (...) {
        // Down again: the next connect tries again.
    }
    if (rec && !rec->gap && !ch->gone) {
        for (auto& [offset, data] : rec->entries) {
            const std::optional<std::string> off = offset;
            auto json = protocol::one_line_json(data);
            if (!json) continue;
            ++recovered_;
            fan_out(*ch, off, *json);
        }
    }
    ch->catching_up = false;
    std::vector<std::string> held = std::move(ch->held);
    for (auto& payload : held) dispatch(*ch, payload);
    --tasks_;
    changed_.cancel();
}

std::uint64_t hub::dropped() const {
    std::uint64_t n = dropped_gone_;
    for (const auto& [name, ch] : channels_)
        if (ch->sub) n += ch->sub->dropped();
    return n;
}

asio::awaitable<void> hub::join(const std::string& name, listener* l) {
    if (stopped_) throw boost::system::system_error(asio::error::operation_aborted, "hub stopped");
    auto it = channels_.find(name);
    if (it != channels_.end()) {
        std::shared_ptr<channel> ch = it->second;
        ch->listeners.push_back(l);
        if (ch->ready) co_return;
        auto [ec] = co_await ch->ready_signal->async_wait(asio::as_tuple(asio::use_awaitable));
        (void)ec;
        if (ch->ready) co_return;
        std::erase(ch->listeners, l);
        if (ch->failed) std::rethrow_exception(ch->failed);
        throw boost::system::system_error(asio::error::operation_aborted, "channel closed");
    }
    auto ch = std::make_shared<channel>();
    ch->name = name;
    ch->quoted = protocol::quoted(name);
    ch->listeners.push_back(l);
    ch->ready_signal = std::make_unique<asio::steady_timer>(redis_.get_executor());
    ch->ready_signal->expires_at(asio::steady_timer::time_point::max());
    ch->history = history_for(opts_.history, name);
    channels_.emplace(name, ch);
    std::exception_ptr failed;
    try {
        messaging::subscription_options so;
        so.capacity = 65536;
        so.policy = messaging::overflow_policy::drop_oldest;
        std::vector<std::string> names{opts_.channel_prefix + name};
        ch->sub = co_await subscriber_.subscribe(std::move(names), so);
    } catch (...) {
        failed = std::current_exception();
    }
    if (failed) {
        ch->failed = failed;
        if (!ch->gone) channels_.erase(ch->name);
        ch->gone = true;
        ch->ready_signal->cancel();
        std::rethrow_exception(failed);
    }
    ch->ready = true;
    ch->ready_signal->cancel();
    ++tasks_;
    asio::co_spawn(redis_.get_executor(), pump(ch), asio::detached);
    // Everyone may have left while Redis was subscribing.
    if (ch->listeners.empty() || ch->gone) {
        if (!ch->gone) channels_.erase(ch->name);
        ch->gone = true;
        ++tasks_;
        asio::co_spawn(redis_.get_executor(), unsubscribe(ch), asio::detached);
    }
}

void hub::leave(const std::string& name, listener* l) {
    auto it = channels_.find(name);
    if (it == channels_.end()) return;
    std::shared_ptr<channel> ch = it->second;
    std::erase(ch->listeners, l);
    if (!ch->listeners.empty() || !ch->ready) return; // join() finishes the not-ready case
    channels_.erase(it);
    ch->gone = true;
    ++tasks_;
    asio::co_spawn(redis_.get_executor(), unsubscribe(ch), asio::detached);
}

asio::awaitable<void> hub::unsubscribe(std::shared_ptr<channel> ch) {
    dropped_gone_ += ch->sub->dropped();
    try {
        co_await ch->sub->unsubscribe();
    } catch (...) {
        // The connection is gone: so is the subscription.
    }
    --tasks_;
    changed_.cancel();
}

asio::awaitable<void> hub::pump(std::shared_ptr<channel> ch) {
    auto sub = ch->sub;
    for (;;) {
        std::string payload;
        try {
            messaging::message m = co_await sub->receive();
            payload = std::move(m.payload);
        } catch (...) {
            break; // unsubscribed or stopped
        }
        dispatch(*ch, payload);
        // Everything already queued, without a trip through the scheduler per message.
        while (auto more = sub->try_receive()) dispatch(*ch, more->payload);
    }
    --tasks_;
    changed_.cancel();
}

void hub::dispatch(channel& ch, const std::string& payload) {
    ++messages_in_;
    if (ch.gone || ch.listeners.empty()) return;
    if (ch.catching_up) {
        ch.held.push_back(payload);
        return;
    }
    protocol::payload p = protocol::decode_payload(payload);
    fan_out(ch, p.offset, p.data);
}

void hub::fan_out(channel& ch, const std::optional<std::string>& offset, const std::string& data) {
    if (offset) {
        // Caught up already (or seen twice around a reconnect): once is enough.
        if (ch.last_offset && !protocol::offset_less(*ch.last_offset, *offset)) return;
        ch.last_offset = *offset;
    }
    auto line = std::make_shared<const std::string>(protocol::push(ch.quoted, offset, data));
    // Listeners only queue (never join or leave here), so the vector holds still.
    for (listener* l : ch.listeners) l->on_message(ch.name, line, offset);
}

void hub::stop() {
    if (stopped_) return;
    stopped_ = true;
    for (auto& [name, ch] : channels_) {
        ch->gone = true;
        ch->ready_signal->cancel();
    }
    channels_.clear();
    subscriber_.stop(); // every receive() fails: the pumps end
}

} // namespace akv::gateway::detail
