#include "channels_wire.hpp"
#include "presence.hpp"
#include "protocol.hpp"

#include <akv/gateway/channels_layer.hpp>
#include <akv/gateway/error.hpp>
#include <akv/gateway/publish.hpp>

#include <akv/error.hpp>
#include <akv/kv/msgpack.hpp>
#include <akv/messaging/subscriber.hpp>
#include <akv/response.hpp>
#include <akv/script.hpp>

#include <gateway_lua_scripts.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdio>
#include <map>
#include <random>
#include <set>

namespace akv::gateway {

namespace json = boost::json;
namespace wire = channels_wire;

namespace {

[[noreturn]] void bad_options(const std::string& what) {
    throw boost::system::system_error(gateway_error::bad_options, "channels: " + what);
}

std::string now_seconds() {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    char text[32];
    std::snprintf(text, sizeof text, "%lld.%06lld", static_cast<long long>(us / 1000000),
                  static_cast<long long>(us % 1000000));
    return text;
}

const script& group_send_script() {
    static const script s(lua::channels_group_send);
    return s;
}

} // namespace

struct channels_bridge::impl {
    impl(client& r, const options& g, channels_options o)
        : redis(r)
        , gateway(g)
        , opts(std::move(o))
        , subscriber(r)
        , wake(r.get_executor())
        , done(r.get_executor())
        , random(std::random_device{}()) {}

    client& redis;
    const options& gateway;
    channels_options opts;
    messaging::subscriber subscriber;
    asio::steady_timer wake; // the membership refresh waits on it; stop() cancels it
    asio::steady_timer done; // cancelled when the last task ends
    std::mt19937_64 random;
    channels_stats figures;
    std::vector<std::shared_ptr<messaging::subscription>> subscriptions; // for their drops
    std::size_t tasks = 0;
    std::size_t pending_ready = 0; // parts not subscribed or added yet
    bool stopped = false;

    std::size_t max_message() const {
        return opts.max_message ? opts.max_message : gateway.max_publish;
    }

    void note(const std::string& why) { figures.last_error = why; }

    asio::awaitable<void> pause(std::chrono::milliseconds d) {
        asio::steady_timer t(redis.get_executor(), d);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }

    void spawn(asio::awaitable<void> task) {
        ++tasks;
        asio::co_spawn(redis.get_executor(), std::move(task), [this](std::exception_ptr e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    note(std::string("stopped: ") + ex.what());
                }
            }
            if (--tasks == 0) done.cancel();
        });
    }

    // A group's message (a JSON object) to the gateway channel of the same name.
    asio::awaitable<void> deliver(const std::string& group, const json::object& message) {
        try {
            // Named, not temporaries: g++ 12 mishandles temporaries in co_await expressions.
            std::string channel = group, data = json::serialize(message);
            co_await publish(redis, gateway, std::move(channel), std::move(data));
            ++figures.received;
        } catch (const boost::system::system_error& e) {
            if (e.code().category() != gateway_category()) throw; // Redis: the caller retries
            ++figures.skipped;                                    // over max_publish, say
            note("group " + group + ": " + wire::reason(e));
        }
    }

    // false when Redis failed (noted).
    asio::awaitable<bool> try_deliver(const std::string& group, const json::object& message) {
        try {
            co_await deliver(group, message);
            co_return true;
        } catch (const boost::system::system_error& e) {
            ++figures.redis_errors;
            note(std::string("publishing: ") + wire::reason(e));
        }
        co_return false;
    }

    // Subscribes to `channels` (sharded: SSUBSCRIBE), retrying every second until it works
    // or the bridge stops (then nullptr).
    asio::awaitable<std::shared_ptr<messaging::subscription>>
    subscribe(const std::vector<std::string>& channels, bool sharded_channels) {
        while (!stopped) {
            std::shared_ptr<messaging::subscription> sub;
            try {
                if (sharded_channels)
                    sub = co_await subscriber.ssubscribe(channels);
                else
                    sub = co_await subscriber.subscribe(channels);
            } catch (const boost::system::system_error& e) {
                ++figures.redis_errors;
                note(std::string("subscribing: ") + wire::reason(e));
            }
            if (sub) {
                --pending_ready;
                subscriptions.push_back(sub);
                co_return sub;
            }
            co_await pause(std::chrono::seconds(1));
        }
        co_return nullptr;
    }

    // Core layer: our member in every joined group, refreshed well within group_expiry. It is
    // left in place at stop(): other gateway processes share it; unrefreshed, it drops out.
    asio::awaitable<void> membership() {
        const auto every =
            std::min<std::chrono::seconds>(opts.group_expiry / 4, std::chrono::seconds(30));
        bool first = true;
        while (!stopped) {
            bool failed = false;
            try {
                request req;
                const std::string now = now_seconds();
                for (const auto& g : opts.groups) {
                    const std::string key = wire::group_key(opts.prefix, g);
                    req.push("ZADD", key, now, wire::consumer_channel(g));
                    req.push("EXPIRE", key, opts.group_expiry.count());
                }
                generic_response replies;
                co_await redis.exec(req, replies);
                for (const auto& r : replies)
                    if (r.has_error()) throw_error(error::server_error, r.error().message);
                if (first) --pending_ready, first = false;
            } catch (const boost::system::system_error& e) {
                ++figures.redis_errors;
                note(std::string("joining the groups: ") + wire::reason(e));
                failed = true;
            }
            if (stopped) break;
            wake.expires_after(failed ? std::chrono::seconds(1) : every);
            co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }

    // Core layer: our members' messages, one BZPOPMIN over all of them.
    asio::awaitable<void> receive_core() {
        std::map<std::string, std::string> group_of; // key -> group
        std::vector<std::string> keys;
        for (const auto& g : opts.groups) {
            keys.push_back(wire::channel_key(opts.prefix, wire::consumer_channel(g)));
            group_of[keys.back()] = g;
        }
        while (!stopped) {
            resp::value popped;
            bool failed = false;
            try {
                request req;
                req.push("BZPOPMIN", keys, "1"); // a second, so stop() is seen soon
                response<resp::value> resp;
                co_await redis.exec(req, resp);
                auto& r = std::get<0>(resp);
                if (r.has_error()) throw_error(error::server_error, r.error().message);
                popped = std::move(r.value());
            } catch (const boost::system::system_error& e) {
                if (stopped) break;
                ++figures.redis_errors;
                note(std::string("BZPOPMIN: ") + wire::reason(e));
                failed = true;
            }
            if (failed) {
                co_await pause(std::chrono::seconds(1)); // Redis is down: do not spin
                continue;
            }
            if (popped.is_null() || popped.elements.size() < 2) continue;
            const std::string& group = group_of[popped.elements[0].str];
            json::object message;
            try {
                message = wire::decode_core_member(popped.elements[1].str, max_message());
            } catch (const boost::system::system_error& e) {
                ++figures.skipped;
                note("group " + group + ": " + wire::reason(e));
                continue;
            }
            // Taken from the group: retried until published (or stopped), never dropped.
            while (!co_await try_deliver(group, message) && !stopped)
                co_await pause(std::chrono::seconds(1));
        }
    }

    // Pub/sub layer: the groups' Redis channels.
    asio::awaitable<void> receive_pubsub() {
        std::map<std::string, std::string> group_of; // Redis channel -> group
        std::vector<std::string> channels;
        for (const auto& g : opts.groups) {
            channels.push_back(wire::pubsub_channel(opts.prefix, g));
            group_of[channels.back()] = g;
        }
        const auto sub = co_await subscribe(channels, false);
        while (sub && !stopped) {
            messaging::message m;
            try {
                m = co_await sub->receive();
            } catch (const boost::system::system_error&) {
                break; // closed by stop()
            }
            const std::string& group = group_of[m.channel];
            json::object message;
            try {
                message = wire::decode_message(m.payload, max_message());
            } catch (const boost::system::system_error& e) {
                ++figures.skipped;
                note("group " + group + ": " + wire::reason(e));
                continue;
            }
            co_await try_deliver(group, message); // pub/sub keeps no copy to retry
        }
    }

    // Forwards: the gateway channels' messages to their groups.
    asio::awaitable<void> forward() {
        std::map<std::string, std::vector<std::string>> groups_of; // Redis channel -> groups
        std::map<std::string, std::string> channel_of;             // Redis channel -> channel
        std::vector<std::string> channels;
        for (const auto& [channel, group] : opts.forwards) {
            const std::string redis_channel = gateway.channel_prefix + channel;
            if (!groups_of.contains(redis_channel)) channels.push_back(redis_channel);
            groups_of[redis_channel].push_back(group);
            channel_of[redis_channel] = channel;
        }
        const auto sub = co_await subscribe(channels, sharded(redis));
        while (sub && !stopped) {
            messaging::message m;
            try {
                m = co_await sub->receive();
            } catch (const boost::system::system_error&) {
                break;
            }
            if (presence::decode_event(m.payload)) continue; // joins and leaves stay ours
            const std::string& channel = channel_of[m.channel];
            protocol::payload p = protocol::decode_payload(m.payload);
            boost::system::error_code ec;
            json::value data = json::parse(p.data, ec); // JSON, or the payload as a JSON string
            if (ec) continue;
            const json::object message = wire::message_for_group(channel, std::move(data));
            for (const auto& group : groups_of[m.channel]) {
                try {
                    co_await send_to_group(group, message);
                    ++figures.forwarded;
                } catch (const boost::system::system_error& e) {
                    ++figures.redis_errors;
                    note("sending to group " + group + ": " + wire::reason(e));
                }
            }
        }
    }

    asio::awaitable<void> send_to_group(const std::string& group, const json::object& message) {
        if (opts.layer == channels_layer_kind::pubsub) {
            request req;
            req.push("PUBLISH", wire::pubsub_channel(opts.prefix, group),
                     kv::msgpack::encode(message));
            response<std::int64_t> resp;
            co_await redis.exec(req, resp);
            if (std::get<0>(resp).has_error())
                throw_error(error::server_error, std::get<0>(resp).error().message);
            co_return;
        }
        const std::string key = wire::group_key(opts.prefix, group);
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        request members_req;
        members_req.push("ZREMRANGEBYSCORE", key, 0, now - opts.group_expiry.count());
        members_req.push("ZRANGE", key, 0, -1);
        response<ignore_t, std::vector<std::string>> members;
        co_await redis.exec(members_req, members);
        auto& names = std::get<1>(members);
        if (names.has_error()) throw_error(error::server_error, names.error().message);
        if (names.value().empty()) co_return;
        wire::group_send_plan plan =
            wire::plan_group_send(opts.prefix, names.value(), message, random);
        std::vector<std::string> args = std::move(plan.members);
        for (std::size_t i = 0; i < plan.keys.size(); ++i)
            args.push_back(std::to_string(opts.capacity));
        args.push_back(now_seconds());
        args.push_back(std::to_string(opts.expiry.count()));
        response<std::int64_t> over;
        co_await group_send_script().run(redis, plan.keys, args, over);
        auto& r = std::get<0>(over);
        if (r.has_error()) throw_error(error::script_error, r.error().message);
        figures.over_capacity += static_cast<std::uint64_t>(r.value());
    }
};

channels_bridge::channels_bridge(client& redis, const options& gateway, channels_options opts) {
    if (opts.groups.empty() && opts.forwards.empty())
        bad_options("no group to join and no channel to forward");
    if (opts.prefix.empty()) bad_options("the prefix is empty");
    if (opts.capacity == 0) bad_options("capacity 0 holds no message");
    if (opts.expiry.count() <= 0 || opts.group_expiry.count() <= 0)
        bad_options("expiry and group_expiry must be positive");
    std::set<std::string> joined;
    for (const auto& g : opts.groups) {
        if (!wire::valid_group(g))
            bad_options("group \"" + g +
                        "\": Channels accepts ASCII letters, digits, '-', '_' and '.', fewer "
                        "than 100");
        if (!valid_channel(g)) bad_options("group \"" + g + "\" is no gateway channel name");
        if (!joined.insert(g).second) bad_options("group \"" + g + "\" given twice");
    }
    for (const auto& [channel, group] : opts.forwards) {
        if (!valid_channel(channel))
            bad_options("forward: bad gateway channel \"" + channel + "\"");
        if (!wire::valid_group(group)) bad_options("forward: bad group name \"" + group + "\"");
        // The group's messages come back to the channel it joins: an endless loop.
        if (joined.contains(channel) && group == channel)
            bad_options("forward " + channel + " -> " + group +
                        ": the group is joined to the same channel, a loop");
    }
    impl_ = std::make_unique<impl>(redis, gateway, std::move(opts));
}

channels_bridge::~channels_bridge() = default;

asio::awaitable<void> channels_bridge::run() {
    impl& m = *impl_;
    if (!m.opts.groups.empty()) {
        if (m.opts.layer == channels_layer_kind::core) {
            ++m.pending_ready;
            m.spawn(m.membership());
            m.spawn(m.receive_core());
        } else {
            ++m.pending_ready;
            m.spawn(m.receive_pubsub());
        }
    }
    if (!m.opts.forwards.empty()) {
        ++m.pending_ready;
        m.spawn(m.forward());
    }
    while (m.tasks > 0) {
        m.done.expires_at(asio::steady_timer::time_point::max());
        co_await m.done.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

void channels_bridge::stop() {
    impl_->stopped = true;
    impl_->wake.cancel();
    impl_->subscriber.stop();
}

bool channels_bridge::ready() const noexcept {
    return impl_->tasks > 0 && impl_->pending_ready == 0;
}

channels_stats channels_bridge::stats() const {
    channels_stats s = impl_->figures;
    for (const auto& sub : impl_->subscriptions)
        s.dropped += sub->dropped();
    return s;
}

} // namespace akv::gateway
