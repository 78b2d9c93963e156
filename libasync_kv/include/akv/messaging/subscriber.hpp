// Pub/sub over RESP3 pushes on the client's shared connection.
//
//   akv::messaging::subscriber hub(client);   // one per client: takes its connection's pushes
//   auto sub = co_await hub.subscribe({"news"});             // returns once Redis has subscribed
//   for (;;) { auto m = co_await sub->receive(); ... }
//
// Pushes are routed as they arrive, on the read path, into each subscription's own bounded
// queue: a slow consumer loses its own messages (by its policy, counted), never anyone else's,
// and never stalls the connection. Subscriptions are restored after every reconnect.
#pragma once

#include <akv/client.hpp>

#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace akv::messaging {

enum class overflow_policy {
    drop_oldest, // keep the newest `capacity` messages
    drop_newest, // keep the oldest; new ones are dropped while the queue is full
    disconnect,  // close the subscription: receive() fails with error::subscriber_overflow
};

struct message {
    enum class kind { message, pmessage, smessage };
    kind type = kind::message;
    std::string channel;
    std::string pattern; // pmessage only
    std::string payload;
};

struct subscription_options {
    std::size_t capacity = 4096;
    overflow_policy policy = overflow_policy::drop_oldest;
};

class subscriber;

class subscription {
public:
    // The next message; throws system_error(subscription_closed or subscriber_overflow).
    asio::awaitable<message> receive();
    std::optional<message> try_receive();
    // Leaves every channel of this subscription (the Redis subscription stays while another
    // subscription of this hub still wants the channel). receive() then fails.
    asio::awaitable<void> unsubscribe();

    std::uint64_t dropped() const noexcept { return dropped_; }
    std::uint64_t delivered() const noexcept { return delivered_; }
    std::size_t queued() const noexcept { return queue_.size(); }
    bool closed() const noexcept { return closed_.has_value(); }

    subscription(subscriber& hub, subscription_options options);

private:
    friend class subscriber;
    void deliver(message m);
    void close(boost::system::error_code why);

    subscriber& hub_;
    subscription_options options_;
    std::deque<message> queue_;
    asio::steady_timer signal_;
    std::optional<boost::system::error_code> closed_;
    std::vector<std::pair<int, std::string>> routes_; // (kind, channel or pattern)
    std::uint64_t dropped_ = 0;
    std::uint64_t delivered_ = 0;
};

class subscriber {
public:
    explicit subscriber(client& c);
    ~subscriber();
    subscriber(const subscriber&) = delete;
    subscriber& operator=(const subscriber&) = delete;

    // Closes every subscription (receive() then fails with subscription_closed).
    void stop();

    asio::awaitable<std::shared_ptr<subscription>> subscribe(std::vector<std::string> channels,
                                                             subscription_options options = {});
    asio::awaitable<std::shared_ptr<subscription>> psubscribe(std::vector<std::string> patterns,
                                                              subscription_options options = {});
    // Sharded pub/sub (Redis 7): on a cluster, the channel's slot decides the node.
    asio::awaitable<std::shared_ptr<subscription>> ssubscribe(std::vector<std::string> channels,
                                                              subscription_options options = {});

    std::uint64_t restored() const noexcept { return restored_; } // resubscriptions sent
    std::size_t channels() const noexcept { return routes_.size(); }

private:
    friend class subscription;
    enum route_kind : int { channel_route = 0, pattern_route = 1, shard_route = 2 };
    using route = std::pair<int, std::string>;

    asio::awaitable<std::shared_ptr<subscription>> add(int kind, std::vector<std::string> names,
                                                       subscription_options options);
    asio::awaitable<void> remove(subscription& s);
    void route_push(resp::value&& push);
    void restore();

    client& client_;
    std::map<route, std::vector<std::weak_ptr<subscription>>> routes_;
    std::size_t listener_ = 0;
    bool stopping_ = false;
    bool seen_first_connect_ = false;
    std::uint64_t restored_ = 0;
};

} // namespace akv::messaging
