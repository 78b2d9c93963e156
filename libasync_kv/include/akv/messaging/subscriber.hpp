// Pub/sub over RESP3 pushes on the client's shared connection.
//
//   akv::messaging::subscriber hub(client);   // one per client: takes its connection's pushes
//   auto sub = co_await hub.subscribe({"news"});             // returns once Redis has subscribed
//   for (;;) { auto m = co_await sub->receive(); ... }
//
// Pushes are routed as they arrive, on the read path, into each subscription's own bounded
// queue: a slow consumer loses its own messages (by its policy, counted), never anyone else's,
// and never stalls the connection. Subscriptions are restored after every reconnect.
//
// On a Redis Cluster, SUBSCRIBE and PSUBSCRIBE stay on the client's main connection (a PUBLISH
// on any node reaches every node). SSUBSCRIBE goes to the node serving the channel's slot
// (client::link_for_channel), one command per channel; the client hands the hub the pushes and
// events of every connection, each with its link. A sharded channel follows its slot: when the
// node drops it (the server's own `sunsubscribe` push after the slot moved away), when the
// node's connection is lost or retired (failover), when it reconnects, or when the slot map
// changes, the channel is subscribed again on whichever master serves its slot then, after
// checking that node owns the slot.
// Messages published while a channel moves may be lost, as with any pub/sub reconnect.
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

    // Called with the channels (and patterns) subscribed again after a reconnect, or placed on
    // another node (sharded channels), once Redis has confirmed them: a reader that keeps a
    // history learns from here what it may have missed in between, and nothing published after
    // this call is missed. Call on the client's executor.
    void set_restored_handler(std::function<void(const std::vector<std::string>&)> handler) {
        restored_handler_ = std::move(handler);
    }
    std::size_t channels() const noexcept { return routes_.size(); }

private:
    friend class subscription;
    enum route_kind : int { channel_route = 0, pattern_route = 1, shard_route = 2 };
    using route = std::pair<int, std::string>;
    struct link; // a connection carrying subscriptions: the main one, or a cluster node's

    asio::awaitable<std::shared_ptr<subscription>> add(int kind, std::vector<std::string> names,
                                                       subscription_options options);
    asio::awaitable<void> remove(subscription& s);
    void route_push(link& from, resp::value&& push);
    void on_event(const client_event& e);
    void restore();

    // Cluster sharded channels.
    bool sharded_by_node() const;
    link& link_for(link_id id);
    void on_link_event(link& l, const client_event& e);
    void unplace(link& l);
    void kick_rehome();
    asio::awaitable<void> rehome(std::shared_ptr<bool> alive);
    // Subscribes `names` on `target` if its node owns their slots; returns how many it placed.
    asio::awaitable<std::size_t> place(link_id target, std::vector<std::string> names,
                                       std::shared_ptr<bool> alive);
    // The shard channels whose home is missing or not where their slot is served now, by the
    // link that serves them; `waiting` when some cannot be placed yet.
    std::map<link_id, std::vector<std::string>> misplaced(bool& waiting);

    client& client_;
    std::map<route, std::vector<std::weak_ptr<subscription>>> routes_;
    std::map<link_id, std::unique_ptr<link>> links_; // links_[main_link]: the main connection
    std::map<std::string, link*> shard_home_;        // sharded channel -> where it is subscribed
    std::shared_ptr<bool> alive_;                    // false once destroyed (for rehome())
    std::size_t listener_ = 0;
    std::function<void(const std::vector<std::string>&)> restored_handler_;
    asio::steady_timer* rehome_timer_ = nullptr;
    bool rehoming_ = false;
    bool main_stopped_ = false;
    bool stopping_ = false;
    bool seen_first_connect_ = false;
    std::uint64_t restored_ = 0;
};

} // namespace akv::messaging
