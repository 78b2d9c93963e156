#include "hub.hpp"
#include "history.hpp"
#include "presence.hpp"
#include "protocol.hpp"
#include "server_state.hpp"

#include <akv/gateway/publish.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace akv::gateway::detail {

struct hub::channel {
    std::string name;
    std::string quoted; // the name as a JSON string, for push lines
    std::uint64_t generation = 0;
    std::vector<std::size_t> workers; // that have sessions on it
    std::shared_ptr<messaging::subscription> sub;
    bool ready = false;
    bool gone = false; // left the map (last worker left, the hub stopped, or a resync)
    std::exception_ptr failed;
    std::unique_ptr<asio::steady_timer> ready_signal;
    const history_rule* history = nullptr;
    // History channels: the epoch and newest offset fanned out, else the newest a subscribing
    // session read (where a catch-up starts).
    std::optional<std::string> epoch;
    std::optional<std::string> last_offset;
    std::optional<std::string> noted_offset;
    bool catching_up = false;
    std::vector<std::string> held; // payloads that came while catching up
    std::vector<delivery> batch;   // decoded, not yet handed to the workers
};

hub::hub(client& redis, const options& opts, asio::steady_timer& changed,
         std::vector<std::unique_ptr<worker>>& workers)
    : redis_(redis)
    , opts_(opts)
    , changed_(changed)
    , workers_(workers)
    , subscriber_(redis) {
    subscriber_.set_restored_handler(
        [this](const std::vector<std::string>& names) { on_restored(names); });
}

hub::~hub() = default;

void hub::note_position(const std::string& name, const std::string& offset,
                        const std::string& epoch) {
    auto it = channels_.find(name);
    if (it == channels_.end()) return;
    auto& ch = *it->second;
    if (ch.epoch && *ch.epoch != epoch) {
        // The session read a newer epoch than the one fanned out so far: the live messages
        // will say so too; from here on positions are of that epoch.
        ch.last_offset.reset();
        ch.noted_offset.reset();
    }
    ch.epoch = epoch;
    if (!ch.noted_offset || protocol::offset_less(*ch.noted_offset, offset)) ch.noted_offset = offset;
}

// The channels are subscribed again (a reconnect, or a move to another node): what was
// published while they were not is in their histories.
void hub::on_restored(const std::vector<std::string>& redis_channels) {
    if (stopped_) return;
    for (const std::string& redis_channel : redis_channels) {
        if (!redis_channel.starts_with(opts_.channel_prefix)) continue;
        auto it =
            channels_.find(std::string_view(redis_channel).substr(opts_.channel_prefix.size()));
        if (it == channels_.end()) continue;
        const std::shared_ptr<channel>& ch = it->second;
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
        rec = co_await history::recover(redis_, *ch->history, redis_channel, from,
                                        ch->epoch.value_or(""));
    } catch (...) {
        // Down again: the next restore tries again.
    }
    ch->catching_up = false;
    if (rec && rec->gap && !ch->gone) {
        // Lost, or trimmed past, while the subscription was down: the sessions cannot be given
        // what they missed, so they are told.
        ch->held.clear();
        resync(ch);
    } else if (rec && !ch->gone) {
        for (auto& [offset, data] : rec->entries) {
            const std::optional<std::string> off = offset;
            auto json = protocol::one_line_json(data);
            if (!json) continue;
            recovered_.fetch_add(1, std::memory_order_relaxed);
            fan_out(*ch, off, *json);
        }
    }
    std::vector<std::string> held = std::move(ch->held);
    for (auto& payload : held)
        if (!dispatch(*ch, payload)) break;
    if (!ch->gone) flush(*ch);
    --tasks_;
    changed_.cancel();
}

void hub::forget(channel& ch) {
    auto it = channels_.find(ch.name);
    if (it != channels_.end() && it->second.get() == &ch) channels_.erase(it);
    channel_count_.store(channels_.size(), std::memory_order_relaxed);
}

void hub::resync(std::shared_ptr<channel> ch) {
    const std::vector<std::size_t> workers = std::move(ch->workers);
    ch->workers.clear();
    ch->batch.clear();
    if (!ch->gone) forget(*ch);
    ch->gone = true;
    ++tasks_;
    asio::co_spawn(redis_.get_executor(), unsubscribe(ch), asio::detached);
    for (std::size_t w : workers) {
        worker& wk = *workers_[w];
        if (wk.on_hub_executor())
            wk.resync(ch->name, ch->generation);
        else
            asio::post(wk.get_executor(),
                       [&wk, name = ch->name, gen = ch->generation] { wk.resync(name, gen); });
    }
}

std::uint64_t hub::dropped() const {
    std::uint64_t n = dropped_gone_;
    for (const auto& [name, ch] : channels_)
        if (ch->sub) n += ch->sub->dropped();
    return n;
}

asio::awaitable<std::uint64_t> hub::join(const std::string& name, std::size_t w) {
    if (stopped_) throw boost::system::system_error(asio::error::operation_aborted, "hub stopped");
    auto it = channels_.find(name);
    if (it != channels_.end()) {
        std::shared_ptr<channel> ch = it->second;
        if (std::find(ch->workers.begin(), ch->workers.end(), w) == ch->workers.end())
            ch->workers.push_back(w);
        if (ch->ready) co_return ch->generation;
        auto [ec] = co_await ch->ready_signal->async_wait(asio::as_tuple(asio::use_awaitable));
        (void)ec;
        if (ch->ready) co_return ch->generation;
        std::erase(ch->workers, w);
        if (ch->failed) std::rethrow_exception(ch->failed);
        throw boost::system::system_error(asio::error::operation_aborted, "channel closed");
    }
    auto ch = std::make_shared<channel>();
    ch->name = name;
    ch->quoted = protocol::quoted(name);
    ch->generation = ++next_generation_;
    ch->workers.push_back(w);
    ch->ready_signal = std::make_unique<asio::steady_timer>(redis_.get_executor());
    ch->ready_signal->expires_at(asio::steady_timer::time_point::max());
    ch->history = history_for(opts_.history, name);
    channels_.emplace(name, ch);
    channel_count_.store(channels_.size(), std::memory_order_relaxed);
    std::exception_ptr failed;
    try {
        messaging::subscription_options so;
        so.capacity = 65536;
        so.policy = messaging::overflow_policy::drop_oldest;
        std::vector<std::string> names{opts_.channel_prefix + name};
        // Sharded on a cluster: each channel on the master of its slot, following it.
        if (sharded(redis_))
            ch->sub = co_await subscriber_.ssubscribe(std::move(names), so);
        else
            ch->sub = co_await subscriber_.subscribe(std::move(names), so);
    } catch (...) {
        failed = std::current_exception();
    }
    if (failed) {
        ch->failed = failed;
        if (!ch->gone) forget(*ch);
        ch->gone = true;
        ch->ready_signal->cancel();
        std::rethrow_exception(failed);
    }
    ch->ready = true;
    ch->ready_signal->cancel();
    ++tasks_;
    asio::co_spawn(redis_.get_executor(), pump(ch), asio::detached);
    // Every worker may have left while Redis was subscribing.
    if (ch->workers.empty() || ch->gone) {
        if (!ch->gone) forget(*ch);
        ch->gone = true;
        ++tasks_;
        asio::co_spawn(redis_.get_executor(), unsubscribe(ch), asio::detached);
    }
    co_return ch->generation;
}

void hub::leave(const std::string& name, std::size_t w) {
    auto it = channels_.find(name);
    if (it == channels_.end()) return;
    std::shared_ptr<channel> ch = it->second;
    std::erase(ch->workers, w);
    if (!ch->workers.empty() || !ch->ready) return; // join() finishes the not-ready case
    forget(*ch);
    ch->gone = true;
    ++tasks_;
    asio::co_spawn(redis_.get_executor(), unsubscribe(ch), asio::detached);
}

asio::awaitable<void> hub::unsubscribe(std::shared_ptr<channel> ch) {
    if (ch->sub) {
        dropped_gone_ += ch->sub->dropped();
        try {
            co_await ch->sub->unsubscribe();
        } catch (...) {
            // The connection is gone: so is the subscription.
        }
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
        bool live = dispatch(*ch, payload);
        // Everything already queued, without a trip through the scheduler per message, then to
        // the workers in one batch each.
        while (live) {
            auto more = sub->try_receive();
            if (!more) break;
            live = dispatch(*ch, more->payload);
        }
        if (live) flush(*ch);
    }
    --tasks_;
    changed_.cancel();
}

bool hub::dispatch(channel& ch, const std::string& payload) {
    messages_in_.fetch_add(1, std::memory_order_relaxed);
    if (ch.gone || ch.workers.empty()) return !ch.gone;
    if (ch.catching_up) {
        ch.held.push_back(payload);
        return true;
    }
    if (const auto e = presence::decode_event(payload)) {
        // Joins and leaves come in order with the messages, as lines of their own.
        if (auto entry = protocol::one_line_json(e->entry))
            ch.batch.push_back({std::make_shared<const std::string>(
                                    protocol::join_leave(e->kind, ch.quoted, *entry)),
                                std::nullopt, true});
        return true;
    }
    protocol::payload p = protocol::decode_payload(payload);
    if (p.epoch && ch.history && p.epoch != ch.epoch) {
        if (ch.epoch) {
            // The history moved to a new epoch while subscribed (it lost messages): the
            // sessions' positions name the old one.
            flush(ch);
            auto it = channels_.find(ch.name);
            if (it != channels_.end() && it->second.get() == &ch) resync(it->second);
            return false;
        }
        ch.epoch = p.epoch;
    }
    fan_out(ch, p.offset, p.data);
    return true;
}

void hub::fan_out(channel& ch, const std::optional<std::string>& offset, const std::string& data) {
    if (offset) {
        // Caught up already (or seen twice around a reconnect): once is enough.
        if (ch.last_offset && !protocol::offset_less(*ch.last_offset, *offset)) return;
        ch.last_offset = *offset;
    }
    ch.batch.push_back(
        {std::make_shared<const std::string>(protocol::push(ch.quoted, offset, data)), offset,
         false});
}

void hub::flush(channel& ch) {
    if (ch.batch.empty()) return;
    if (ch.workers.size() == 1 && workers_[ch.workers.front()]->on_hub_executor()) {
        workers_[ch.workers.front()]->deliver(ch.name, ch.generation, ch.batch);
        ch.batch.clear();
        return;
    }
    auto batch = std::make_shared<const std::vector<delivery>>(std::move(ch.batch));
    ch.batch.clear();
    for (std::size_t w : ch.workers) {
        worker& wk = *workers_[w];
        if (wk.on_hub_executor())
            wk.deliver(ch.name, ch.generation, *batch);
        else
            asio::post(wk.get_executor(), [&wk, name = ch.name, gen = ch.generation, batch] {
                wk.deliver(name, gen, *batch);
            });
    }
}

void hub::stop() {
    if (stopped_) return;
    stopped_ = true;
    for (auto& [name, ch] : channels_) {
        ch->gone = true;
        ch->ready_signal->cancel();
    }
    channels_.clear();
    channel_count_.store(0, std::memory_order_relaxed);
    subscriber_.stop(); // every receive() fails: the pumps end
}

} // namespace akv::gateway::detail
