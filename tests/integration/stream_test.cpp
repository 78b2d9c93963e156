// Stream producer and consumer groups against a real server.
#include "support/eventually.hpp"
#include "support/running_client.hpp"

#include <akv/messaging/consumer_group.hpp>
#include <akv/testing/embedded_server.hpp>

using namespace akv::test;
using namespace akv::messaging;
namespace asio = boost::asio;

namespace {
asio::awaitable<long long> xlen(akv::client& c, std::string key) {
    akv::request req;
    req.push("XLEN", key);
    akv::response<long long> resp;
    co_await c.exec(req, resp);
    co_return std::get<0>(resp).value();
}

// Built outside coroutine bodies: g++ 12 cannot keep an initializer_list's array across a
// co_await ("array used as initializer").
field_list kv(std::string k, std::string v) {
    field_list f;
    f.emplace_back(std::move(k), std::move(v));
    return f;
}
std::vector<field_list> copies(std::size_t n, field_list f) {
    return {n, f};
}
std::vector<std::string> one(std::string id) {
    return {std::move(id)};
}

group_options group_of(std::string consumer, std::chrono::milliseconds idle, std::size_t max) {
    group_options o;
    o.stream = "jobs";
    o.group = "workers";
    o.consumer = std::move(consumer);
    o.claim_idle = idle;
    o.max_deliveries = max;
    return o;
}
} // namespace

TEST(StreamProducer, AddsBinarySafeEntriesInOrder) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        stream_producer producer(rc.client, "s");
        const std::string bytes("a\0b\r\nc", 6);
        field_list one;
        one.emplace_back("blob", bytes);
        const std::string id = co_await producer.add(one);
        const auto many = copies(100, kv("n", "x"));
        const auto ids = co_await producer.add_many(many);
        EXPECT_EQ(ids.size(), 100u);
        EXPECT_LT(id, ids.front());
        akv::request range;
        range.push("XRANGE", "s", id, id);
        akv::response<akv::resp::value> resp;
        co_await rc.client.exec(range, resp);
        auto entries = entries_from(std::get<0>(resp).value());
        EXPECT_EQ(entries.size(), 1u);
        if (!entries.empty()) EXPECT_EQ(*entries[0].field("blob"), bytes);
    }());
}

TEST(StreamProducer, TrimsByMaxlen) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        stream_producer exact(rc.client, "exact", trim_options::maxlen(10, false));
        stream_producer approx(rc.client, "approx", trim_options::maxlen(10));
        const auto many = copies(1000, kv("n", "x"));
        co_await exact.add_many(many);
        co_await approx.add_many(many);
        EXPECT_EQ(co_await xlen(rc.client, "exact"), 10);
        const long long approx_len = co_await xlen(rc.client, "approx");
        EXPECT_GE(approx_len, 10);
        EXPECT_LT(approx_len, 1000); // whole macro-nodes were trimmed
    }());
}

TEST(ConsumerGroup, TwoConsumersShareTheEntriesAndAck) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        consumer_group a(rc.client, group_of("a", std::chrono::seconds(30), 5));
        consumer_group b(rc.client, group_of("b", std::chrono::seconds(30), 5));
        co_await a.create();
        co_await b.create(); // exists already: fine
        stream_producer producer(rc.client, "jobs");
        co_await producer.add_many(copies(10, kv("k", "v")));
        auto got_a = co_await a.read(6, std::chrono::milliseconds(100));
        auto got_b = co_await b.read(10, std::chrono::milliseconds(100));
        EXPECT_EQ(got_a.size(), 6u);
        EXPECT_EQ(got_b.size(), 4u);
        EXPECT_EQ(co_await a.pending(), 10u);
        std::vector<std::string> ids;
        for (auto& e : got_a)
            ids.push_back(e.id);
        for (auto& e : got_b)
            ids.push_back(e.id);
        co_await a.ack(ids);
        EXPECT_EQ(co_await a.pending(), 0u);
        auto none = co_await a.read(10, std::chrono::milliseconds(20));
        EXPECT_TRUE(none.empty());
    }());
}

TEST(ConsumerGroup, EntriesOfADeadConsumerAreClaimedByAnother) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        consumer_group dead(rc.client, group_of("dead", std::chrono::milliseconds(30), 5));
        consumer_group alive(rc.client, group_of("alive", std::chrono::milliseconds(30), 5));
        co_await dead.create();
        stream_producer producer(rc.client, "jobs");
        co_await producer.add_many(copies(10, kv("k", "v")));
        auto taken = co_await dead.read(10, std::chrono::milliseconds(100)); // then it "dies"
        EXPECT_EQ(taken.size(), 10u);
        EXPECT_TRUE((co_await alive.claim_stale(10)).empty()); // not idle long enough yet
        std::vector<stream_entry> claimed;
        const bool ok = co_await eventually([&]() -> asio::awaitable<bool> {
            for (auto& e : co_await alive.claim_stale(10))
                claimed.push_back(std::move(e));
            co_return claimed.size() == 10;
        });
        EXPECT_TRUE(ok);
        EXPECT_EQ(claimed.size(), 10u);
        if (!claimed.empty()) {
            EXPECT_EQ(claimed[0].deliveries, 2u);
            EXPECT_EQ(*claimed[0].field("k"), "v");
        }
    }());
}

TEST(ConsumerGroup, AnEntryFailingTooOftenGoesToTheDeadLetterStream) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        consumer_group g(rc.client, group_of("c", std::chrono::milliseconds(10), 2));
        co_await g.create();
        stream_producer producer(rc.client, "jobs");
        field_list poison;
        poison.emplace_back("payload", "poison");
        const std::string id = co_await producer.add(poison);
        EXPECT_EQ((co_await g.read(1, std::chrono::milliseconds(100))).size(), 1u); // delivery 1
        // Never acked: delivery 2 is a claim; the next claim would be delivery 3 > 2.
        bool reclaimed_once = false;
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            if (!(co_await g.claim_stale(10)).empty()) reclaimed_once = true;
            co_return reclaimed_once&& co_await g.pending() == 0;
        }));
        akv::request range;
        range.push("XRANGE", "jobs:dead", "-", "+");
        akv::response<akv::resp::value> resp;
        co_await rc.client.exec(range, resp);
        auto dead = entries_from(std::get<0>(resp).value());
        EXPECT_EQ(dead.size(), 1u);
        if (!dead.empty()) {
            EXPECT_EQ(*dead[0].field("dead:id"), id);
            EXPECT_EQ(*dead[0].field("dead:group"), "workers");
            EXPECT_EQ(*dead[0].field("dead:deliveries"), "3");
            EXPECT_NE(dead[0].field("dead:reason")->find("more than 2"), std::string::npos);
            EXPECT_EQ(*dead[0].field("payload"), "poison");
        }
    }());
}

TEST(ConsumerGroup, ExplicitDeadLetterKeepsTheReason) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        consumer_group g(rc.client, group_of("c", std::chrono::seconds(30), 5));
        co_await g.create();
        stream_producer producer(rc.client, "jobs");
        co_await producer.add(kv("x", "1"));
        auto got = co_await g.read(1, std::chrono::milliseconds(100));
        EXPECT_EQ(got.size(), 1u);
        if (got.empty()) co_return;
        co_await g.dead_letter(got[0], "bad input: x must be > 5");
        EXPECT_EQ(co_await g.pending(), 0u);
        EXPECT_EQ(co_await xlen(rc.client, "jobs:dead"), 1);
    }());
}

TEST(ConsumerGroup, RemovingAConsumerThatOwnsEntriesIsRefused) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        consumer_group g(rc.client, group_of("c", std::chrono::seconds(30), 5));
        co_await g.create();
        stream_producer producer(rc.client, "jobs");
        co_await producer.add(kv("x", "1"));
        auto got = co_await g.read(1, std::chrono::milliseconds(100));
        bool refused = false;
        try {
            co_await g.remove_consumer();
        } catch (const boost::system::system_error& e) {
            refused = std::string(e.what()).find("still owns pending entries") != std::string::npos;
        }
        EXPECT_TRUE(refused);
        co_await g.ack(one(got.at(0).id));
        co_await g.remove_consumer();
    }());
}
