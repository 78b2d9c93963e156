// Pub/sub through akv::messaging::subscriber against a real server.
#include "support/harness.hpp"

#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/messaging/subscriber.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>

using namespace akv::test;
namespace asio = boost::asio;
using akv::messaging::overflow_policy;

namespace {

// g++ 12 cannot keep an initializer_list's array in a coroutine frame ("array used as
// initializer"): channel lists are built outside the coroutine body.
template <class... Names> std::vector<std::string> names(Names... n) {
    return {std::string(n)...};
}

// A client and its hub, both running; stopped and drained on destruction.
struct pubsub_fixture {
    pubsub_fixture(asio::io_context& io, akv::config cfg)
        : io_(io)
        , client(io.get_executor(), cfg)
        , hub(client) {
        asio::co_spawn(io, client.run(), [this](std::exception_ptr) { client_done = true; });
    }
    ~pubsub_fixture() {
        client.cancel();
        EXPECT_TRUE(run_until(
            io_, [this] { return client_done; }, 10s));
    }
    // (No default argument: g++ 12 miscompiles one on a coroutine called with a literal.)
    asio::awaitable<void> publish(std::string channel, int count, std::string prefix) {
        akv::request req;
        for (int i = 0; i < count; ++i)
            req.push("PUBLISH", channel, prefix + std::to_string(i));
        co_await client.exec(req, akv::ignore);
    }
    asio::io_context& io_;
    akv::client client;
    akv::messaging::subscriber hub;
    bool client_done = false;
};

} // namespace

TEST(Subscriber, DeliversEveryMessageInOrderToEverySubscription) {
    akv::testing::embedded_server server;
    asio::io_context io;
    pubsub_fixture f(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        auto a = co_await f.hub.subscribe(names("news"), {.capacity = 20000});
        auto b = co_await f.hub.subscribe(names("news", "other"), {.capacity = 20000});
        co_await f.publish("news", 10000, "m");
        for (int i = 0; i < 10000; ++i) {
            auto ma = co_await a->receive();
            auto mb = co_await b->receive();
            if (ma.payload != "m" + std::to_string(i) || mb.payload != ma.payload) {
                ADD_FAILURE() << "message " << i << ": " << ma.payload << " / " << mb.payload;
                break;
            }
        }
        EXPECT_EQ(a->dropped(), 0u);
        EXPECT_EQ(f.hub.channels(), 2u); // one Redis subscription per channel, shared
    }());
}

TEST(Subscriber, PatternAndShardedSubscriptions) {
    akv::testing::embedded_server server;
    asio::io_context io;
    pubsub_fixture f(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        auto p = co_await f.hub.psubscribe(names("sensor.*"));
        auto s = co_await f.hub.ssubscribe(names("shard-ch"));
        akv::request req;
        req.push("PUBLISH", "sensor.42", "21.5C");
        req.push("SPUBLISH", "shard-ch", "hello shard");
        co_await f.client.exec(req, akv::ignore);
        auto pm = co_await p->receive();
        EXPECT_EQ(pm.type, akv::messaging::message::kind::pmessage);
        EXPECT_EQ(pm.pattern, "sensor.*");
        EXPECT_EQ(pm.channel, "sensor.42");
        EXPECT_EQ(pm.payload, "21.5C");
        auto sm = co_await s->receive();
        EXPECT_EQ(sm.type, akv::messaging::message::kind::smessage);
        EXPECT_EQ(sm.payload, "hello shard");
    }());
}

TEST(Subscriber, SubscriptionsAreRestoredAfterTheServerRestarts) {
    akv::testing::embedded_server server;
    asio::io_context io;
    auto cfg = server.config();
    cfg.reconnect_wait_min = std::chrono::milliseconds(5);
    cfg.reconnect_wait_max = std::chrono::milliseconds(50);
    pubsub_fixture f(io, cfg);
    std::shared_ptr<akv::messaging::subscription> sub;
    run_task(io, [&]() -> asio::awaitable<void> {
        sub = co_await f.hub.subscribe(names("alerts"));
        co_await f.publish("alerts", 1, "before");
        EXPECT_EQ((co_await sub->receive()).payload, "before0");
    }());
    server.restart();
    ASSERT_TRUE(run_until(
        io, [&] { return f.hub.restored() >= 1; }, 20s));
    run_task(io, [&]() -> asio::awaitable<void> {
        // The restore request went out first on the new connection: a PUBLISH queued after it
        // (on the same connection) is processed after the SUBSCRIBE.
        co_await f.publish("alerts", 1, "after");
        EXPECT_EQ((co_await sub->receive()).payload, "after0");
    }());
}

namespace {
// Publishes 100 messages while `slow` does not read; `witness` (large queue) proves all 100
// reached the hub before the test looks at `slow`.
void overflow_case(
    overflow_policy policy,
    const std::function<asio::awaitable<void>(akv::messaging::subscription&)>& check) {
    akv::testing::embedded_server server;
    asio::io_context io;
    pubsub_fixture f(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        auto slow = co_await f.hub.subscribe(names("c"), {.capacity = 10, .policy = policy});
        auto witness = co_await f.hub.subscribe(names("c"), {.capacity = 1000});
        co_await f.publish("c", 100, "m");
        for (int i = 0; i < 100; ++i)
            co_await witness->receive();
        co_await check(*slow);
    }());
}
} // namespace

TEST(Subscriber, DropOldestKeepsTheNewestAndCounts) {
    overflow_case(overflow_policy::drop_oldest,
                  [](akv::messaging::subscription& s) -> asio::awaitable<void> {
                      EXPECT_EQ(s.dropped(), 90u);
                      EXPECT_EQ(s.queued(), 10u);
                      EXPECT_EQ((co_await s.receive()).payload, "m90");
                  });
}

TEST(Subscriber, DropNewestKeepsTheOldestAndCounts) {
    overflow_case(overflow_policy::drop_newest,
                  [](akv::messaging::subscription& s) -> asio::awaitable<void> {
                      EXPECT_EQ(s.dropped(), 90u);
                      EXPECT_EQ((co_await s.receive()).payload, "m0");
                  });
}

TEST(Subscriber, DisconnectPolicyClosesTheSubscription) {
    overflow_case(
        overflow_policy::disconnect, [](akv::messaging::subscription& s) -> asio::awaitable<void> {
            EXPECT_TRUE(s.closed());
            for (int i = 0; i < 10; ++i)
                co_await s.receive(); // what it had
            auto [ec, m] = co_await [&]()
                -> asio::awaitable<std::tuple<boost::system::error_code, akv::messaging::message>> {
                try {
                    co_return std::make_tuple(boost::system::error_code{}, co_await s.receive());
                } catch (const boost::system::system_error& e) {
                    co_return std::make_tuple(e.code(), akv::messaging::message{});
                }
            }();
            EXPECT_EQ(ec, akv::error::subscriber_overflow);
        });
}

TEST(Subscriber, UnsubscribeLeavesTheChannelWhenNobodyWantsIt) {
    akv::testing::embedded_server server;
    asio::io_context io;
    pubsub_fixture f(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        auto a = co_await f.hub.subscribe(names("x"));
        auto b = co_await f.hub.subscribe(names("x"));
        akv::request numsub;
        numsub.push("PUBSUB", "NUMSUB", "x");
        akv::response<std::vector<std::string>> resp;
        co_await a->unsubscribe();
        co_await f.client.exec(numsub, resp);
        EXPECT_EQ(std::get<0>(resp).value().at(1), "1"); // b still wants it
        co_await b->unsubscribe();
        co_await f.client.exec(numsub, resp);
        EXPECT_EQ(std::get<0>(resp).value().at(1), "0");
        EXPECT_TRUE(a->closed());
        bool threw = false;
        try {
            co_await a->receive();
        } catch (const boost::system::system_error& e) {
            threw = e.code() == akv::error::subscription_closed;
        }
        EXPECT_TRUE(threw);
    }());
}
