#include <akv/messaging/subscriber.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>

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

subscriber::subscriber(client& c)
    : client_(c) {
    listener_ = client_.main_connection().add_event_listener([this](const connection_event& e) {
        if (e.what != connection_event::kind::connected) return;
        if (seen_first_connect_) restore();
        seen_first_connect_ = true;
    });
    client_.main_connection().set_push_handler([this](resp::value&& push) {
        if (!stopping_) route_push(std::move(push));
    });
}

subscriber::~subscriber() {
    client_.main_connection().remove_event_listener(listener_);
    client_.main_connection().set_push_handler(nullptr);
}

void subscriber::stop() {
    stopping_ = true;
    for (auto& [r, subs] : routes_)
        for (auto& w : subs)
            if (auto s = w.lock()) s->close(error::subscription_closed);
}

// Called as the connection comes back, before anything else is written: every channel goes
// out again in one request, ahead of requests queued while disconnected.
void subscriber::restore() {
    if (routes_.empty()) return;
    auto req = std::make_shared<request>();
    for (int kind = 0; kind < 3; ++kind) {
        std::vector<std::string> names;
        for (const auto& [r, subs] : routes_)
            if (r.first == kind) names.push_back(r.second);
        if (!names.empty()) req->push_range(subscribe_command[kind], names);
    }
    ++restored_;
    client_.main_connection().exec(*req, ignore, [req](error_code, std::size_t) {});
}

void subscriber::route_push(resp::value&& push) {
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
    if (!fresh.empty()) {
        // PING after SUBSCRIBE on the same connection: its reply comes after the subscription
        // took effect, so a PUBLISH made once this returns is received.
        request req;
        req.push_range(subscribe_command[kind], fresh);
        req.push("PING");
        co_await client_.main_connection().exec(req, ignore);
    }
    co_return s;
}

asio::awaitable<void> subscriber::remove(subscription& s) {
    std::vector<std::string> gone[3];
    for (const auto& r : s.routes_) {
        auto it = routes_.find(r);
        if (it == routes_.end()) continue;
        std::erase_if(it->second, [&](const std::weak_ptr<subscription>& w) {
            auto p = w.lock();
            return !p || p.get() == &s;
        });
        if (it->second.empty()) {
            gone[r.first].push_back(r.second);
            routes_.erase(it);
        }
    }
    s.routes_.clear();
    request req;
    for (int kind = 0; kind < 3; ++kind)
        if (!gone[kind].empty()) req.push_range(unsubscribe_command[kind], gone[kind]);
    if (req.empty()) co_return;
    req.push("PING");
    co_await client_.main_connection().exec(req, ignore);
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
