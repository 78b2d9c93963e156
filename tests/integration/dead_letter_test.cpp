// Dead-letter streams: entries a consumer group gave up on are read back and sent back to
// their source, one or all, atomically; what is not a dead letter is named as such.
#include "support/running_client.hpp"

#include <akv/error.hpp>
#include <akv/messaging/consumer_group.hpp>
#include <akv/messaging/dead_letter.hpp>
#include <akv/testing/embedded_server.hpp>

#include <algorithm>

using namespace akv::test;
using namespace akv::messaging;
namespace asio = boost::asio;

namespace {

field_list order(int n) {
    return {{"order", std::to_string(n)}, {"sku", "A-" + std::to_string(n)}};
}

// A group that gives up on an entry at its second delivery (max_deliveries 1).
group_options impatient(std::string consumer) {
    group_options o;
    o.stream = "orders";
    o.group = "billing";
    o.consumer = std::move(consumer);
    o.claim_idle = std::chrono::milliseconds(0);
    o.max_deliveries = 1;
    return o;
}

asio::awaitable<std::vector<stream_entry>> all(akv::client& c, std::string key) {
    akv::request req;
    req.push("XRANGE", key, "-", "+");
    akv::response<akv::resp::value> resp;
    co_await c.exec(req, resp);
    co_return entries_from(std::get<0>(resp).value());
}

// `n` orders read by one consumer and never acked, then dead-lettered by another's claim.
asio::awaitable<std::vector<std::string>> dead_orders(akv::client& c, int n) {
    stream_producer producer(c, "orders");
    std::vector<field_list> entries;
    for (int i = 0; i < n; ++i)
        entries.push_back(order(i));
    const auto ids = co_await producer.add_many(entries);
    consumer_group crashed(c, impatient("crashed"));
    co_await crashed.create();
    EXPECT_EQ((co_await crashed.read(100, std::chrono::milliseconds(0))).size(),
              static_cast<std::size_t>(n));
    consumer_group rescuer(c, impatient("rescuer"));
    EXPECT_TRUE((co_await rescuer.claim_stale(100)).empty()); // all delivered twice: dead
    co_return ids;
}

template <class F> boost::system::error_code code_of(F&& f) {
    try {
        f();
    } catch (const boost::system::system_error& e) {
        return e.code();
    }
    return {};
}

} // namespace

TEST(DeadLetter, TheSourcesOfADeadLetterStreamFollowTheDefaultNames) {
    for (const bool cluster : {false, true})
        for (const std::string stream : {"orders", "{shop}:orders", "{shop}", "a:b"}) {
            const auto sources = dead_letter_sources(default_dead_letter(stream, cluster), cluster);
            EXPECT_NE(std::find(sources.begin(), sources.end(), stream), sources.end())
                << stream << (cluster ? " (cluster)" : "");
        }
    // "{orders}:dead" is the default of "{orders}"; on a cluster, of "orders" too (likelier).
    EXPECT_EQ(dead_letter_sources("{orders}:dead", false),
              (std::vector<std::string>{"{orders}", "orders"}));
    EXPECT_EQ(dead_letter_sources("{orders}:dead", true),
              (std::vector<std::string>{"orders", "{orders}"}));
    EXPECT_EQ(dead_letter_sources("{shop}:orders:dead", true),
              (std::vector<std::string>{"{shop}:orders"}));
    EXPECT_TRUE(dead_letter_sources("orders", false).empty());
    EXPECT_TRUE(dead_letter_sources(":dead", false).empty());
}

TEST(DeadLetter, AnEntryTheGroupGaveUpOnGoesBackToItsSourceAndIsReadAgain) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto ids = co_await dead_orders(rc.client, 1);
        const auto dead = co_await all(rc.client, "orders:dead");
        EXPECT_EQ(dead.size(), 1u);
        if (dead.empty()) co_return;
        const auto entry = dead_entry_of(dead[0]);
        EXPECT_TRUE(entry);
        if (!entry) co_return;
        EXPECT_EQ(entry->source_id, ids[0]);
        EXPECT_EQ(entry->group, "billing");
        EXPECT_EQ(entry->deliveries, 2u);
        EXPECT_EQ(entry->reason, "delivered more than 1 times");
        EXPECT_EQ(entry->fields, order(0));

        dead_letters letters(rc.client, "orders:dead");
        EXPECT_EQ(co_await letters.source(), "orders");
        const std::string back = co_await letters.requeue(dead[0].id);
        EXPECT_TRUE((co_await all(rc.client, "orders:dead")).empty());
        consumer_group again(rc.client, impatient("again"));
        const auto read = co_await again.read(10, std::chrono::milliseconds(0));
        EXPECT_EQ(read.size(), 1u); // new to the group, so read again
        if (read.empty()) co_return;
        EXPECT_EQ(read[0].id, back);
        EXPECT_EQ(read[0].fields, order(0)); // its own fields, as they were
    }());
}

TEST(DeadLetter, RequeueAllSendsBackEveryDeadEntryAndLeavesTheOthers) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await dead_orders(rc.client, 5);
        akv::request stray;
        stray.push("XADD", "orders:dead", "*", "note", "written by hand");
        co_await rc.client.exec(stray, akv::ignore);

        dead_letters letters(rc.client, "orders:dead");
        const requeue_result r = co_await letters.requeue_all(2); // in steps of 2
        EXPECT_EQ(r.requeued, 5u);
        EXPECT_EQ(r.skipped, 1u);
        const auto left = co_await all(rc.client, "orders:dead");
        EXPECT_EQ(left.size(), 1u);
        if (left.empty()) co_return;
        EXPECT_EQ(*left[0].field("note"), "written by hand");
        const auto source = co_await all(rc.client, "orders");
        EXPECT_EQ(source.size(), 10u); // the five first delivered, then the five sent back
        if (source.size() < 10) co_return;
        for (int i = 0; i < 5; ++i)
            EXPECT_EQ(source[5 + i].fields, order(i)); // in their order
    }());
}

TEST(DeadLetter, WhatIsNotADeadLetterIsNamedAsSuch) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    EXPECT_EQ(code_of([&] { dead_letters plain(rc.client, "orders"); }),
              akv::error::not_dead_letter);
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await dead_orders(rc.client, 1);
        akv::request stray;
        stray.push("XADD", "orders:dead", "*", "note", "written by hand");
        akv::response<std::string> added;
        co_await rc.client.exec(stray, added);
        const std::string stray_id = std::get<0>(added).value();

        dead_letters letters(rc.client, "orders:dead");
        auto fails_with = [&](akv::error expected, auto action) -> asio::awaitable<void> {
            boost::system::error_code code;
            std::string message;
            try {
                co_await action();
            } catch (const boost::system::system_error& e) {
                code = e.code();
                message = e.what();
            }
            EXPECT_EQ(code, expected) << message;
            EXPECT_NE(message.find("orders:dead"), std::string::npos) << message;
        };
        co_await fails_with(akv::error::unknown_entry,
                            [&]() -> asio::awaitable<void> { co_await letters.requeue("1-1"); });
        co_await fails_with(akv::error::invalid_config,
                            [&]() -> asio::awaitable<void> { co_await letters.requeue("latest"); });
        co_await fails_with(akv::error::not_dead_letter,
                            [&]() -> asio::awaitable<void> { co_await letters.requeue(stray_id); });
        co_await fails_with(akv::error::unknown_entry,
                            [&]() -> asio::awaitable<void> { co_await letters.remove("1-1"); });
        co_await letters.remove(stray_id);
        EXPECT_EQ((co_await all(rc.client, "orders:dead")).size(), 1u);

        akv::request gone;
        gone.push("DEL", "orders");
        co_await rc.client.exec(gone, akv::ignore);
        dead_letters orphans(rc.client, "orders:dead");
        co_await fails_with(akv::error::not_dead_letter,
                            [&]() -> asio::awaitable<void> { co_await orphans.requeue_all(); });
        EXPECT_EQ((co_await all(rc.client, "orders:dead")).size(), 1u); // nothing moved
    }());
}
