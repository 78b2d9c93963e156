// The redis-collections family against a real server: each container's behaviour, concurrent
// writers, LRU eviction order, syncable flush in one round trip, and redis-cli reading what we
// wrote (the natural Redis layout).
#include "support/running_client.hpp"

#include <akv/kv/collections.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/detached.hpp>

#include "support/errors.hpp"
#include <algorithm>
#include <array>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using akv::test::contains;
using akv::test::error_of;

using namespace akv::test;
namespace kv = akv::kv;
namespace asio = boost::asio;

namespace {

std::uint64_t requests_written(akv::client& c) {
    const auto s = c.stats().connections;
    return s.requests_written - s.health_pings;
}

// redis-cli's output, one line per element (it prints raw values when not on a terminal).
std::vector<std::string> redis_cli(std::uint16_t port, const std::string& arguments) {
    const std::string cmd = "redis-cli -p " + std::to_string(port) + " " + arguments + " 2>&1";
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
    if (!pipe) throw std::runtime_error("cannot run " + cmd);
    std::vector<std::string> lines;
    std::array<char, 4096> buf;
    while (std::fgets(buf.data(), buf.size(), pipe.get())) {
        std::string line = buf.data();
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
            line.pop_back();
        lines.push_back(line);
    }
    return lines;
}

asio::awaitable<void> set_string(akv::client& c, std::string key, std::string value) {
    akv::request req;
    req.push("SET", key, value);
    co_await c.exec(req, akv::ignore);
}

// Expected values written as text: a braced list inside a coroutine body trips g++ 12 ("array
// used as initializer").
std::vector<std::string> strings(std::string_view words) {
    std::vector<std::string> out;
    while (!words.empty()) {
        const auto space = words.find(' ');
        out.emplace_back(words.substr(0, space));
        words = space == std::string_view::npos ? std::string_view() : words.substr(space + 1);
    }
    return out;
}
std::vector<int> ints(std::string_view words) {
    std::vector<int> out;
    for (const auto& w : strings(words))
        out.push_back(std::stoi(w));
    return out;
}
// "name=count name=count"
std::vector<std::pair<std::string, long long>> counts(std::string_view words) {
    std::vector<std::pair<std::string, long long>> out;
    for (const auto& w : strings(words))
        out.emplace_back(w.substr(0, w.find('=')), std::stoll(w.substr(w.find('=') + 1)));
    return out;
}
std::vector<std::pair<std::string, double>> scores(std::string_view words) {
    std::vector<std::pair<std::string, double>> out;
    for (const auto& w : strings(words))
        out.emplace_back(w.substr(0, w.find('=')), std::stod(w.substr(w.find('=') + 1)));
    return out;
}

} // namespace

// ---- list

TEST(KvList, PushesAndPopsAtBothEnds) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::list<int> l(rc.client, "l");
        EXPECT_EQ(co_await l.push_back(2), 1u);
        EXPECT_EQ(co_await l.push_back(3), 2u);
        EXPECT_EQ(co_await l.push_front(1), 3u);
        EXPECT_EQ(co_await l.push_back_many(ints("4 5")), 5u);
        EXPECT_EQ(co_await l.items(), ints("1 2 3 4 5"));
        EXPECT_EQ(co_await l.size(), 5u);
        EXPECT_EQ(co_await l.at(1), 2);
        EXPECT_EQ(co_await l.at(-1), 5);
        EXPECT_EQ(co_await l.at(10), std::nullopt);
        EXPECT_EQ(co_await l.range(1, 2), ints("2 3"));
        co_await l.set(0, 10);
        EXPECT_EQ(co_await l.front(), 10);
        EXPECT_EQ(co_await l.pop_front(), 10);
        EXPECT_EQ(co_await l.pop_back(), 5);
        EXPECT_EQ(co_await l.items(), ints("2 3 4"));
        const auto e = co_await error_of([&]() -> asio::awaitable<void> { co_await l.set(99, 0); });
        EXPECT_EQ(e.code(), akv::error::server_error);
        EXPECT_TRUE(contains(e.what(), R"(kv: "l": LSET: ERR index out of range)"));
    }());
}

TEST(KvList, PopFrontWaitGetsAnElementPushedLaterOrTimesOut) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::list<std::string> queue(rc.client, "requests");
        EXPECT_EQ(co_await queue.pop_front_wait(std::chrono::milliseconds(50)), std::nullopt);
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                asio::steady_timer t(io, std::chrono::milliseconds(30));
                co_await t.async_wait(asio::use_awaitable);
                co_await queue.push_back("add node 7");
            },
            asio::detached);
        EXPECT_EQ(co_await queue.pop_front_wait(std::chrono::seconds(5)), "add node 7");
    }());
}

// ---- deque

TEST(KvDeque, PushingBeyondMaxLenDropsFromTheOtherEnd) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::deque<int> d(rc.client, "recent", 3);
        for (int i = 1; i <= 5; ++i)
            co_await d.push_back(i);
        EXPECT_EQ(co_await d.items(), ints("3 4 5"));
        EXPECT_EQ(co_await d.push_front(0), 3u);
        EXPECT_EQ(co_await d.items(), ints("0 3 4"));
        EXPECT_EQ(co_await d.pop_back(), 4);
        EXPECT_EQ(co_await d.size(), 2u);
    }());
}

TEST(KvDeque, ConcurrentPushersNeverExceedMaxLen) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::deque<int> d(rc.client, "recent", 10);
        int done = 0;
        for (int w = 0; w < 20; ++w) {
            asio::co_spawn(
                io,
                [&, w]() -> asio::awaitable<void> {
                    for (int i = 0; i < 20; ++i)
                        co_await d.push_back(w * 100 + i);
                    ++done;
                },
                asio::detached);
        }
        asio::steady_timer t(io);
        while (done < 20) {
            EXPECT_LE(co_await d.size(), 10u);
            t.expires_after(std::chrono::milliseconds(1));
            co_await t.async_wait(asio::use_awaitable);
        }
        EXPECT_EQ(co_await d.size(), 10u);
    }());
}

// ---- set

TEST(KvSet, AddsRemovesAndScansMembers) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::set<std::string> s(rc.client, "seen");
        EXPECT_TRUE(co_await s.add("a"));
        EXPECT_FALSE(co_await s.add("a"));
        EXPECT_EQ(co_await s.add_many(strings("b c a")), 2u);
        EXPECT_TRUE(co_await s.contains("b"));
        EXPECT_FALSE(co_await s.contains("z"));
        EXPECT_TRUE(co_await s.remove("b"));
        EXPECT_FALSE(co_await s.remove("b"));
        EXPECT_EQ(co_await s.size(), 2u);
        auto members = co_await s.members();
        std::sort(members.begin(), members.end());
        EXPECT_EQ(members, strings("a c"));
    }());
}

TEST(KvSet, MembersOfALargeSetComeThroughSscanPages) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::set<int> s(rc.client, "ids");
        std::vector<int> all(20000);
        for (int i = 0; i < 20000; ++i)
            all[static_cast<std::size_t>(i)] = i;
        EXPECT_EQ(co_await s.add_many(all), 20000u);
        auto first = co_await s.scan(0, 100);
        EXPECT_NE(first.cursor, 0u);
        EXPECT_LT(first.members.size(), 1000u);
        auto members = co_await s.members();
        std::sort(members.begin(), members.end());
        members.erase(std::unique(members.begin(), members.end()), members.end());
        EXPECT_EQ(members, all);
    }());
}

// ---- counter

TEST(KvCounter, FiftyConcurrentWritersLoseNoIncrement) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::counter<std::string> c(rc.client, "hits");
        int done = 0;
        for (int w = 0; w < 50; ++w) {
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    kv::counter<std::string> mine(rc.client, "hits"); // a writer of its own
                    for (int i = 0; i < 100; ++i)
                        co_await mine.increment("page");
                    ++done;
                },
                asio::detached);
        }
        asio::steady_timer t(io);
        while (done < 50) {
            t.expires_after(std::chrono::milliseconds(2));
            co_await t.async_wait(asio::use_awaitable);
        }
        EXPECT_EQ(co_await c.get("page"), 5000);
    }());
}

TEST(KvCounter, CountsAndRanksTheMostCommon) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::counter<std::string> words(rc.client, "words");
        EXPECT_EQ(co_await words.get("redis"), 0); // never counted: 0, nothing stored
        EXPECT_EQ(co_await words.size(), 0u);
        co_await words.increment("redis", 5);
        co_await words.increment("lua");
        co_await words.increment("asio", 3);
        EXPECT_EQ(co_await words.increment("lua", -1), 0);
        EXPECT_EQ(co_await words.most_common(2), counts("redis=5 asio=3"));
        EXPECT_EQ(co_await words.most_common(), counts("redis=5 asio=3 lua=0"));
        EXPECT_EQ(co_await words.total(), 8);
        EXPECT_TRUE(co_await words.erase("lua"));
        EXPECT_EQ(co_await words.size(), 2u);
    }());
}

// ---- defaultdict

TEST(KvDefaultdict, GetOfAMissingKeyStoresTheDefault) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::defaultdict<std::string, std::string> d(rc.client, "names", "unknown");
        EXPECT_EQ(co_await d.peek("x"), std::nullopt);
        EXPECT_EQ(co_await d.get("x"), "unknown");
        EXPECT_EQ(co_await d.peek("x"), "unknown"); // stored, as Python does
        co_await d.set("y", "known");
        EXPECT_EQ(co_await d.get("y"), "known");
        EXPECT_EQ(co_await d.size(), 2u);
    }());
}

// ---- lru_dict

TEST(KvLruDict, EvictsTheLeastRecentlyUsed) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::lru_dict<std::string, int> cache(rc.client, "cache", 3);
        EXPECT_TRUE((co_await cache.set("a", 1)).empty());
        EXPECT_TRUE((co_await cache.set("b", 2)).empty());
        EXPECT_TRUE((co_await cache.set("c", 3)).empty());
        EXPECT_EQ(co_await cache.get("a"), 1); // a is now the most recent: b is the oldest
        EXPECT_EQ(co_await cache.set("d", 4), strings("b"));
        EXPECT_EQ(co_await cache.get("b"), std::nullopt);
        EXPECT_EQ(co_await cache.size(), 3u);
        EXPECT_EQ(co_await cache.keys_by_recency(), strings("c a d"));
        EXPECT_EQ(co_await cache.peek("c"), 3); // a look that does not touch
        EXPECT_EQ(co_await cache.set("e", 5), strings("c"));
        EXPECT_TRUE(co_await cache.erase("a"));
        EXPECT_FALSE(co_await cache.contains("a"));
        EXPECT_EQ(co_await cache.keys_by_recency(), strings("d e"));
    }());
}

TEST(KvLruDict, KeysShareAHashTagUnderThePrefix) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto schema = kv::key_schema::for_process("node7", "worker", "3");
        kv::lru_dict<std::string, int> cache(rc.client, "cache", 2, schema);
        co_await cache.set("a", 1);
        EXPECT_EQ(cache.key(), "node7:worker:3:{cache}");
        EXPECT_EQ(cache.clock_key(), "node7:worker:3:{cache}:lru");
        EXPECT_EQ(redis_cli(server.port(), "HGETALL 'node7:worker:3:{cache}'"), strings("a 1"));
        EXPECT_EQ(redis_cli(server.port(), "ZRANGE 'node7:worker:3:{cache}:lru' 0 -1"),
                  strings("a"));
        co_await cache.clear();
        EXPECT_EQ(redis_cli(server.port(), "EXISTS 'node7:worker:3:{cache}:lru'"), strings("0"));
    }());
}

TEST(KvLruDict, ConcurrentSettersNeverExceedMaxSize) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::lru_dict<int, int> cache(rc.client, "cache", 16);
        int done = 0;
        for (int w = 0; w < 20; ++w) {
            asio::co_spawn(
                io,
                [&, w]() -> asio::awaitable<void> {
                    for (int i = 0; i < 50; ++i) {
                        co_await cache.set(w * 1000 + i, i);
                        co_await cache.get(w * 1000 + i / 2);
                    }
                    ++done;
                },
                asio::detached);
        }
        asio::steady_timer t(io);
        while (done < 20) {
            t.expires_after(std::chrono::milliseconds(2));
            co_await t.async_wait(asio::use_awaitable);
        }
        EXPECT_EQ(co_await cache.size(), 16u);
        EXPECT_EQ((co_await cache.keys_by_recency()).size(), 16u);
    }());
}

// ---- sorted_set_counter

TEST(KvSortedSetCounter, RanksAndTopComeFromRedis) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::sorted_set_counter<std::string> hits(rc.client, "hits");
        EXPECT_EQ(co_await hits.increment("/a"), 1.0);
        EXPECT_EQ(co_await hits.increment("/b", 5), 5.0);
        EXPECT_EQ(co_await hits.increment("/c", 2.5), 2.5);
        EXPECT_EQ(co_await hits.increment("/a", 2), 3.0);
        EXPECT_EQ(co_await hits.score("/c"), 2.5);
        EXPECT_EQ(co_await hits.score("/z"), std::nullopt);
        EXPECT_EQ(co_await hits.rank("/b"), 0u);
        EXPECT_EQ(co_await hits.rank("/c"), 2u);
        EXPECT_EQ(co_await hits.rank("/z"), std::nullopt);
        EXPECT_EQ(co_await hits.top(2), scores("/b=5 /a=3"));
        EXPECT_EQ(co_await hits.top(0), scores("/b=5 /a=3 /c=2.5"));
        EXPECT_TRUE(co_await hits.erase("/b"));
        EXPECT_EQ(co_await hits.size(), 2u);
    }());
}

// ---- syncable

TEST(KvSyncable, WritesAppearOnlyAtFlushInOneRoundTrip) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::syncable_dict<std::string, int> dict(rc.client, "d");
        kv::syncable_list<int> list(rc.client, "l");
        kv::syncable_counter<std::string> counter(rc.client, "c");
        co_await dict.container().size(); // connected before counting
        const auto before = requests_written(rc.client);
        for (int i = 0; i < 100; ++i) {
            dict.set("k" + std::to_string(i), i);
            list.push_back(i);
            counter.increment("n");
        }
        dict.erase("k0");
        EXPECT_EQ(dict.pending(), 101u);
        EXPECT_EQ(requests_written(rc.client), before); // nothing sent yet
        EXPECT_EQ(co_await dict.container().size(), 0u);
        EXPECT_EQ(co_await list.container().size(), 0u);
        EXPECT_EQ(co_await counter.container().get("n"), 0);

        const auto before_flush = requests_written(rc.client);
        co_await dict.flush();
        EXPECT_EQ(requests_written(rc.client) - before_flush, 1u); // 101 writes, one request
        EXPECT_EQ(dict.pending(), 0u);
        EXPECT_EQ(co_await dict.container().size(), 99u);
        EXPECT_EQ(co_await dict.container().get("k99"), 99);

        co_await list.flush();
        co_await counter.flush();
        EXPECT_EQ(co_await list.container().size(), 100u);
        EXPECT_EQ(co_await counter.container().get("n"), 100);
        co_await dict.flush(); // nothing buffered: no request
    }());
}

TEST(KvSyncable, EveryKindFlushes) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::syncable_set<std::string> set(rc.client, "s");
        kv::syncable_deque<int> deque(rc.client, "q", 2);
        kv::syncable_sorted_set_counter<std::string> ranks(rc.client, "z");
        set.add("a");
        set.add("b");
        set.remove("a");
        for (int i = 0; i < 5; ++i)
            deque.push_back(i);
        deque.push_front(-1);
        ranks.increment("x", 2);
        ranks.increment("y");
        co_await set.flush();
        co_await deque.flush();
        co_await ranks.flush();
        EXPECT_EQ(co_await set.container().members(), strings("b"));
        EXPECT_EQ(co_await deque.container().items(), ints("-1 3"));
        EXPECT_EQ(co_await ranks.container().top(0), scores("x=2 y=1"));
    }());
}

TEST(KvSyncable, WithFlushFlushesAfterTheBodyAndDiscardsWhenItThrows) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::syncable_dict<std::string, int> dict(rc.client, "d");
        co_await kv::with_flush(dict, [](auto& d) -> asio::awaitable<void> {
            d.set("a", 1);
            co_return;
        });
        EXPECT_EQ(co_await dict.container().get("a"), 1);
        const auto e = co_await error_of([&]() -> asio::awaitable<void> {
            co_await kv::with_flush(dict, [](auto& d) -> asio::awaitable<void> {
                d.set("b", 2);
                akv::throw_error(akv::error::invalid_config, "the body failed");
                co_return;
            });
        });
        EXPECT_TRUE(contains(e.what(), "the body failed"));
        EXPECT_EQ(dict.pending(), 0u);
        EXPECT_FALSE(co_await dict.container().contains("b"));
    }());
}

TEST(KvSyncable, AnErrorInsideTheTransactionNamesTheKey) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await set_string(rc.client, "d", "not a hash");
        kv::syncable_dict<std::string, int> dict(rc.client, "d");
        dict.set("a", 1);
        const auto e = co_await error_of([&]() -> asio::awaitable<void> { co_await dict.flush(); });
        EXPECT_EQ(e.code(), akv::error::server_error);
        EXPECT_TRUE(contains(e.what(), R"(kv: "d": EXEC: WRONGTYPE)"));
    }());
}

#ifndef NDEBUG
// A destructor cannot co_await a flush: dropping buffered writes unnoticed would lose data.
TEST(KvSyncableDeathTest, DestroyingUnflushedWritesAssertsInDebugBuilds) {
    asio::io_context io;
    akv::client c(io.get_executor());
    const auto drop_unflushed = [&c] {
        kv::syncable_dict<std::string, int> dict(c, "d");
        dict.set("a", 1);
    };
    EXPECT_DEATH(drop_unflushed(), "unflushed writes");
}
#endif

// ---- the natural layout

TEST(KvCollections, RedisCliReadsWhatWeWrote) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const std::uint16_t port = server.port();
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::typed_map<std::string, double> dict(rc.client, "dict");
        kv::list<std::string> list(rc.client, "list");
        kv::set<int> set(rc.client, "set");
        kv::counter<std::string> counter(rc.client, "counter");
        kv::sorted_set_counter<std::string> ranks(rc.client, "ranks");
        co_await dict.set("lr", 0.25);
        co_await list.push_back("first");
        co_await list.push_back("second");
        co_await set.add(7);
        co_await counter.increment("page", 3);
        co_await ranks.increment("/a", 2);
        co_await ranks.increment("/b", 1.5);

        EXPECT_EQ(redis_cli(port, "HGETALL dict"), strings("lr 0.25"));
        EXPECT_EQ(redis_cli(port, "LRANGE list 0 -1"), strings("first second"));
        EXPECT_EQ(redis_cli(port, "SMEMBERS set"), strings("7"));
        EXPECT_EQ(redis_cli(port, "HGET counter page"), strings("3"));
        EXPECT_EQ(redis_cli(port, "ZRANGE ranks 0 -1 WITHSCORES"), strings("/b 1.5 /a 2"));

        // ...and we read what redis-cli writes.
        redis_cli(port, "HSET dict momentum 0.9");
        redis_cli(port, "HINCRBY counter page 4");
        EXPECT_EQ(co_await dict.get("momentum"), 0.9);
        EXPECT_EQ(co_await counter.get("page"), 7);
        EXPECT_EQ(co_await set.contains(7), true);
    }());
}
