#include <akv/messaging/subscriber.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>

#include <array>

namespace akv::messaging {

using boost::system::error_code;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

constexpr std::array<std::string_view, 3> subscribe_command{"SUBSCRIBE", "PSUBSCRIBE",
                                                            "SSUBSCRIBE"};
constexpr std::array<std::string_view, 3> unsubscribe_command{"UNSUBSCRIBE", "PUNSUBSCRIBE",
                                                              "SUNSUBSCRIBE"};

} // namespace

// ---- subscription

subscription::subscription(subscriber& hub, subscription_options options)
    : hub_(hub)
    , options_(options)
    , signal_(hub.client_.get_executor()) {
    if (options_.capacity == 0) options_.capacity = 1;
}

void subscription::deliver(message m) {
    if (closed_) return;
    if (queue_.size() >= options_.capacity) {
        switch (options_.policy) {
        case overflow_policy::drop_oldest:
            queue_.pop_front();
            ++dropped_;
            break;
        case overflow_policy::drop_newest:
            ++dropped_;
            return;
        case overflow_policy::disconnect:
            ++dropped_;
            close(error::subscriber_overflow);
            return;
        }
    }
    queue_.push_back(std::move(m));
    ++delivered_;
    signal_.cancel();
}

void subscription::close(error_code why) {
    if (!closed_) closed_ = why;
    signal_.cancel();
}

std::optional<message> subscription::try_receive() {
    if (queue_.empty()) return std::nullopt;
    message m = std::move(queue_.front());
    queue_.pop_front();
    return m;
}

asio::awaitable<message> subscription::receive() {
    for (;;) {
        // Queued messages are still handed out after an overflow closed the subscription.
        if (auto m = try_receive()) co_return std::move(*m);
        if (closed_) throw boost::system::system_error(*closed_, "subscription");
        signal_.expires_at(asio::steady_timer::time_point::max());
        co_await signal_.async_wait(nothrow);
        auto state = co_await asio::this_coro::cancellation_state;
        if (state.cancelled() != asio::cancellation_type::none)
            throw boost::system::system_error(asio::error::operation_aborted, "subscription");
    }
}

asio::awaitable<void> subscription::unsubscribe() {
    co_await hub_.remove(*this);
    close(error::subscription_closed);
}

// ---- subscriber

struct subscriber::link {
    link_id id = main_link;
    bool is_main = false;
    bool stopped = false; // its connection stopped for good (a node that left the slot map)
};

subscriber::subscriber(client& c)
    : client_(c)
    , alive_(std::make_shared<bool>(true)) {
    link& main = link_for(main_link);
    main.is_main = true;
    listener_ = client_.add_event_listener([this](const client_event& e) { on_event(e); });
    client_.set_push_handler([this](link_id from, resp::value&& push) {
        if (!stopping_) route_push(link_for(from), std::move(push));
    });
}

subscriber::~subscriber() {
    *alive_ = false;
    if (rehome_timer_) rehome_timer_->cancel();
    client_.remove_event_listener(listener_);
    client_.set_push_handler(nullptr);
}

void subscriber::on_event(const client_event& e) {
    if (e.what == client_event::kind::topology_changed) {
        kick_rehome(); // a slot may have moved: its channels follow
        return;
    }
    if (e.link != main_link) {
        const auto it = links_.find(e.link);
        if (it != links_.end()) on_link_event(*it->second, e);
        return;
    }
    if (e.what == client_event::kind::stopped) main_stopped_ = true;
    if (e.what != client_event::kind::connected) return;
    if (seen_first_connect_) restore();
    seen_first_connect_ = true;
}

void subscriber::stop() {
    stopping_ = true;
    for (auto& [r, subs] : routes_)
        for (auto& w : subs)
            if (auto s = w.lock()) s->close(error::subscription_closed);
}

// Called as the main connection comes back, before anything else is written: every channel
// it carries goes out again in one request, ahead of requests queued while disconnected.
void subscriber::restore() {
    auto req = std::make_shared<request>();
    std::vector<std::string> all;
    for (int kind = 0; kind < 3; ++kind) {
        std::vector<std::string> names;
        for (const auto& [r, subs] : routes_) {
            if (r.first != kind) continue;
            if (kind == shard_route) {
                const auto home = shard_home_.find(r.second);
                if (home == shard_home_.end() || !home->second->is_main) continue;
            }
            names.push_back(r.second);
        }
        if (!names.empty()) req->push_range(subscribe_command[kind], names);
        all.insert(all.end(), names.begin(), names.end());
    }
    if (req->empty()) return;
    ++restored_;
    req->push("PING"); // its reply comes once the subscriptions took effect
    client_.exec_on(main_link, *req, ignore,
                    [this, req, all = std::move(all), alive = alive_](error_code ec, std::size_t) {
                        if (!ec && *alive && restored_handler_) restored_handler_(all);
                    });
}

void subscriber::route_push(link& from, resp::value&& push) {
    auto& e = push.elements;
    if (e.empty()) return;
    const std::string& kind = e[0].str;
    message m;
    route key;
    if (kind == "message" && e.size() == 3) {
        key = {channel_route, e[1].str};
        m = {message::kind::message, std::move(e[1].str), {}, std::move(e[2].str)};
    } else if (kind == "smessage" && e.size() == 3) {
        key = {shard_route, e[1].str};
        m = {message::kind::smessage, std::move(e[1].str), {}, std::move(e[2].str)};
    } else if (kind == "pmessage" && e.size() == 4) {
        key = {pattern_route, e[1].str};
        m = {message::kind::pmessage, std::move(e[2].str), std::move(e[1].str),
             std::move(e[3].str)};
    } else {
        // A `sunsubscribe` we did not ask for (the channel is still wanted, and homed here):
        // the node lost the channel's slot. Subscribe again where the slot went.
        if (kind == "sunsubscribe" && e.size() >= 2 && routes_.contains({shard_route, e[1].str})) {
            const auto home = shard_home_.find(e[1].str);
            if (home != shard_home_.end() && home->second == &from && !from.is_main) {
                shard_home_.erase(home);
                client_.refresh_topology();
                kick_rehome();
            }
        }
        return; // (un)subscribe confirmations, invalidations, ...
    }
    auto it = routes_.find(key);
    if (it == routes_.end()) return;
    auto& subs = it->second;
    std::erase_if(subs, [](const std::weak_ptr<subscription>& w) {
        auto s = w.lock();
        return !s || s->closed();
    });
    // Copies for all but the last subscription, which takes the message itself.
    for (std::size_t i = 0; i < subs.size(); ++i) {
        auto s = subs[i].lock();
        if (i + 1 == subs.size())
            s->deliver(std::move(m));
        else
            s->deliver(m);
    }
}

// ---- sharded channels on a cluster

bool subscriber::sharded_by_node() const {
    return client_.get_config().topology == config::mode::cluster;
}

// Links are kept once made (a stopped one marked so): coroutines hold references to them.
subscriber::link& subscriber::link_for(link_id id) {
    auto& l = links_[id];
    if (!l) {
        l = std::make_unique<link>();
        l->id = id;
    }
    return *l;
}

void subscriber::on_link_event(link& l, const client_event& e) {
    switch (e.what) {
    case client_event::kind::stopped:
        // The cluster retires a node's connection when the node leaves the slot map: that link
        // is gone for good.
        l.stopped = true;
        unplace(l);
        break;
    case client_event::kind::connected:
        // A new session has no subscriptions, and the node may no longer own the slots (a
        // former master back as a replica): placed again, after checking.
        unplace(l);
        break;
    case client_event::kind::disconnected:
        kick_rehome(); // watch for the slot map to send the channels elsewhere (failover)
        break;
    default:
        break;
    }
}

void subscriber::unplace(link& l) {
    const std::size_t before = shard_home_.size();
    std::erase_if(shard_home_, [&](const auto& entry) { return entry.second == &l; });
    if (shard_home_.size() != before) kick_rehome();
}

void subscriber::kick_rehome() {
    if (rehoming_ || stopping_ || main_stopped_ || !sharded_by_node()) return;
    rehoming_ = true;
    asio::co_spawn(client_.get_executor(), rehome(alive_), asio::detached);
}

std::map<link_id, std::vector<std::string>> subscriber::misplaced(bool& waiting) {
    std::map<link_id, std::vector<std::string>> moves;
    waiting = false;
    for (const auto& [r, subs] : routes_) {
        if (r.first != shard_route) continue;
        const std::optional<link_id> target = client_.link_for_channel(r.second);
        if (!target) { // no slot map yet
            waiting = true;
            continue;
        }
        const auto home = shard_home_.find(r.second);
        if (home != shard_home_.end() && home->second->id == *target && !home->second->stopped) {
            // Placed, unless its node is away: then watch until it is back (and the channel
            // unplaced by its `connected` event) or the map moves the slot.
            if (!client_.is_connected(*target)) waiting = true;
            continue;
        }
        moves[*target].push_back(r.second);
    }
    return moves;
}

asio::awaitable<std::size_t> subscriber::place(link_id target, std::vector<std::string> names,
                                               std::shared_ptr<bool> alive) {
    link& l = link_for(target);
    // An SSUBSCRIBE the node refuses (MOVED) is an error reply to a command answered by
    // pushes, which no request waits for: ask first whether the node serves the slots, with a
    // keyed read of the channel's name. ASK means a migration is under way: the source still
    // serves sharded channels until the slot's owner changes (then it drops them, and we move).
    request probe;
    probe.get_options().fail_if_not_connected = true;
    probe.get_options().timeout = std::chrono::milliseconds(2000);
    for (const auto& name : names)
        probe.push("EXISTS", name);
    generic_response owned;
    auto [ec, n] = co_await client_.exec_on(target, probe, owned, nothrow);
    if (!*alive) co_return 0;
    if (ec || l.stopped) co_return 0;
    std::vector<std::string> here;
    bool stale = false;
    for (std::size_t i = 0; i < names.size() && i < owned.size(); ++i) {
        if (owned[i].has_value() || owned[i].error().message.starts_with("ASK "))
            here.push_back(names[i]);
        else
            stale = true;
    }
    if (stale) client_.refresh_topology();
    // Wanted still (an unsubscribe may have come meanwhile) and not placed already.
    std::erase_if(here, [&](const std::string& name) {
        return !routes_.contains({shard_route, name}) || shard_home_.contains(name);
    });
    if (here.empty()) co_return 0;
    request sub;
    for (const auto& name : here)
        sub.push("SSUBSCRIBE", name); // one per channel: a cluster refuses several slots at once
    sub.push("PING");                 // its reply comes after the subscriptions took effect
    auto [sub_ec, m] = co_await client_.exec_on(target, sub, ignore, nothrow);
    if (!*alive || sub_ec || l.stopped) co_return 0;
    std::vector<std::string> placed;
    for (const auto& name : here) {
        if (!routes_.contains({shard_route, name})) continue;
        shard_home_[name] = &l;
        placed.push_back(name);
    }
    if (!placed.empty() && restored_handler_) restored_handler_(placed);
    co_return placed.size();
}

asio::awaitable<void> subscriber::rehome(std::shared_ptr<bool> alive) {
    asio::steady_timer timer(client_.get_executor());
    rehome_timer_ = &timer;
    auto wait = std::chrono::milliseconds(10);
    for (;;) {
        timer.expires_after(wait);
        co_await timer.async_wait(nothrow);
        if (!*alive) co_return; // the subscriber is gone: touch nothing
        wait = std::min(wait * 2, std::chrono::milliseconds(200));
        if (stopping_ || main_stopped_) break;
        // The client is stopping (or between seeds): asking for a node connection now could
        // start one that nobody stops.
        if (!client_.is_connected()) continue;
        bool waiting = false;
        auto moves = misplaced(waiting);
        if (moves.empty() && !waiting) break;
        for (auto& [target, names] : moves) {
            const std::size_t placed = co_await place(target, std::move(names), alive);
            if (!*alive) co_return;
            if (placed > 0) {
                ++restored_;
                wait = std::chrono::milliseconds(10);
            }
        }
    }
    rehome_timer_ = nullptr;
    rehoming_ = false;
}

asio::awaitable<std::shared_ptr<subscription>>
subscriber::add(int kind, std::vector<std::string> names, subscription_options options) {
    auto s = std::make_shared<subscription>(*this, options);
    std::vector<std::string> fresh;
    for (auto& name : names) {
        auto& subs = routes_[{kind, name}];
        if (subs.empty()) fresh.push_back(name);
        subs.push_back(s);
        s->routes_.emplace_back(kind, name);
    }
    if (fresh.empty()) co_return s;
    if (kind == shard_route && sharded_by_node()) {
        // Each channel on the node of its slot. Until the slot map is known, or while a node
        // refuses (a map gone stale), retry for a while; then the background rehome() goes on.
        auto alive = alive_;
        const auto deadline =
            std::chrono::steady_clock::now() +
            std::max(client_.get_config().cluster_failover_wait, std::chrono::milliseconds(1000));
        asio::steady_timer timer(client_.get_executor());
        for (auto wait = std::chrono::milliseconds(5);;
             wait = std::min(2 * wait, std::chrono::milliseconds(200))) {
            bool waiting = false;
            auto moves = misplaced(waiting);
            for (auto it = moves.begin(); it != moves.end();) {
                std::erase_if(it->second, [&](const std::string& n) {
                    return std::find(fresh.begin(), fresh.end(), n) == fresh.end();
                });
                it = it->second.empty() ? moves.erase(it) : std::next(it);
            }
            bool unknown = false;
            for (const auto& n : fresh)
                if (!client_.link_for_channel(n)) unknown = true;
            if (moves.empty() && !unknown) break;
            for (auto& [target, list] : moves) {
                co_await place(target, std::move(list), alive);
                if (!*alive) co_return s;
            }
            if (std::chrono::steady_clock::now() >= deadline) {
                kick_rehome();
                break;
            }
            timer.expires_after(wait);
            co_await timer.async_wait(nothrow);
            if (!*alive) co_return s;
        }
        co_return s;
    }
    // PING after SUBSCRIBE on the same connection: its reply comes after the subscription
    // took effect, so a PUBLISH made once this returns is received.
    request req;
    req.push_range(subscribe_command[kind], fresh);
    req.push("PING");
    co_await client_.exec_on(main_link, req, ignore);
    if (kind == shard_route)
        for (const auto& n : fresh)
            shard_home_[n] = &link_for(main_link);
    co_return s;
}

asio::awaitable<void> subscriber::remove(subscription& s) {
    std::vector<std::string> gone[3];
    std::map<link_id, std::vector<std::string>> shard_gone; // cluster: by node
    for (const auto& r : s.routes_) {
        auto it = routes_.find(r);
        if (it == routes_.end()) continue;
        std::erase_if(it->second, [&](const std::weak_ptr<subscription>& w) {
            auto p = w.lock();
            return !p || p.get() == &s;
        });
        if (it->second.empty()) {
            routes_.erase(it);
            if (r.first != shard_route) {
                gone[r.first].push_back(r.second);
                continue;
            }
            const auto home = shard_home_.find(r.second);
            if (home == shard_home_.end()) continue; // not subscribed anywhere now
            link* l = home->second;
            shard_home_.erase(home);
            if (l->is_main) {
                gone[shard_route].push_back(r.second);
            } else if (!l->stopped && client_.link_for_channel(r.second) == l->id) {
                // Only where the slot still is: another node would refuse it (MOVED), and one
                // that lost the slot has dropped the channel already.
                shard_gone[l->id].push_back(r.second);
            }
        }
    }
    s.routes_.clear();
    request req;
    for (int kind = 0; kind < 3; ++kind)
        if (!gone[kind].empty()) req.push_range(unsubscribe_command[kind], gone[kind]);
    if (!req.empty()) {
        req.push("PING");
        co_await client_.exec_on(main_link, req, ignore);
    }
    for (auto& [target, names] : shard_gone) {
        request unsub;
        for (const auto& name : names)
            unsub.push("SUNSUBSCRIBE", name);
        unsub.push("PING");
        co_await client_.exec_on(target, unsub, ignore, nothrow);
    }
}

asio::awaitable<std::shared_ptr<subscription>>
subscriber::subscribe(std::vector<std::string> channels, subscription_options options) {
    co_return co_await add(channel_route, std::move(channels), options);
}

asio::awaitable<std::shared_ptr<subscription>>
subscriber::psubscribe(std::vector<std::string> patterns, subscription_options options) {
    co_return co_await add(pattern_route, std::move(patterns), options);
}

asio::awaitable<std::shared_ptr<subscription>>
subscriber::ssubscribe(std::vector<std::string> channels, subscription_options options) {
    co_return co_await add(shard_route, std::move(channels), options);
}

} // namespace akv::messaging
