// Client-side caching (config::cache, request::options::cache) against a real server: hits cost
// no round trip, another connection's write reaches the reader as an invalidation, this
// client's own writes are read back at once, a read that raced its key's change is not kept, a
// lost connection or FLUSHALL drops everything, the byte budget and the age limit hold, the three
// tracking modes, replies equal to uncached ones, and a history of 100,000 operations without
// a stale read.
#include "support/cache_history.hpp"
#include "support/eventually.hpp"
#include "support/running_client.hpp"

#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/error.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace akv::test;
namespace asio = boost::asio;

namespace {

akv::config cached(akv::config cfg,
                   akv::cache_options::mode mode = akv::cache_options::mode::tracking) {
    cfg.cache.kind = mode;
    return cfg;
}

akv::request cached_request() {
    akv::request::options o;
    o.cache = true;
    return akv::request(o);
}

asio::awaitable<std::optional<std::string>> get(akv::client& c, const std::string& key) {
    akv::request req = cached_request();
    req.push("GET", key);
    akv::response<std::optional<std::string>> resp;
    co_await c.exec(req, resp);
    co_return std::get<0>(resp).value();
}

asio::awaitable<void> set(akv::client& c, const std::string& key, const std::string& value) {
    akv::request req;
    req.push("SET", key, value);
    co_await c.exec(req, akv::ignore);
}

// GET's calls as the server counts them.
asio::awaitable<long long> server_gets(akv::client& c) {
    akv::request req;
    req.push("INFO", "commandstats");
    akv::response<std::string> resp;
    co_await c.exec(req, resp);
    const std::string& info = std::get<0>(resp).value();
    const auto at = info.find("cmdstat_get:calls=");
    if (at == std::string::npos) co_return 0;
    co_return std::stoll(info.substr(at + 18));
}

} // namespace

TEST(ClientCache, SecondReadIsAHitThatTheServerNeverSees) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client reader(io, cached(server.config()));
    running_client writer(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await set(writer.client, "k", "v1");
        EXPECT_EQ(co_await get(reader.client, "k"), "v1");
        const long long before = co_await server_gets(writer.client);
        for (int i = 0; i < 100; ++i)
            EXPECT_EQ(co_await get(reader.client, "k"), "v1");
        EXPECT_EQ(co_await server_gets(writer.client), before);
        const auto s = reader.client.stats().cache;
        EXPECT_EQ(s.misses, 1u);
        EXPECT_EQ(s.hits, 100u);
        EXPECT_EQ(s.entries, 1u);
        EXPECT_GT(s.bytes, 0u);
        // Without the request's opt-in, the same read goes to the server.
        akv::request plain;
        plain.push("GET", "k");
        co_await reader.client.exec(plain, akv::ignore);
        EXPECT_EQ(co_await server_gets(writer.client), before + 1);
    }());
}

TEST(ClientCache, AnotherConnectionsWriteInvalidatesTheEntry) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client reader(io, cached(server.config()));
    running_client writer(io, server.config());
    invalidation_log told(reader.client);
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await set(writer.client, "k", "old");
        EXPECT_EQ(co_await get(reader.client, "k"), "old");
        EXPECT_EQ(co_await get(reader.client, "k"), "old"); // a hit
        co_await set(writer.client, "k", "new");
        EXPECT_TRUE(co_await told.wait_for("k"));
        EXPECT_EQ(co_await get(reader.client, "k"), "new");
        const auto s = reader.client.stats().cache;
        EXPECT_EQ(s.invalidations, 1u);
        EXPECT_EQ(s.hits, 1u);
        EXPECT_EQ(s.misses, 2u);
    }());
}

TEST(ClientCache, OwnWritesAreReadBackAtOnce) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, cached(server.config()));
    run_task(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 200; ++i) {
            const std::string v = std::to_string(i);
            co_await set(rc.client, "k", v);
            EXPECT_EQ(co_await get(rc.client, "k"), v);
            EXPECT_EQ(co_await get(rc.client, "k"), v);
        }
        // A script's declared keys count as written too.
        akv::request eval;
        eval.push("EVAL", "redis.call('SET', KEYS[1], ARGV[1])", 1, "k", "from-lua");
        co_await rc.client.exec(eval, akv::ignore);
        EXPECT_EQ(co_await get(rc.client, "k"), "from-lua");
    }());
}

TEST(ClientCache, ReadThatRacedItsKeysChangeIsNotKept) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, cached(server.config()));
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await set(rc.client, "k", "a");
        // The read is out when the write is sent: its reply may predate the write, so it is
        // answered but not kept.
        akv::request read = cached_request();
        read.push("GET", "k");
        akv::request write;
        write.push("SET", "k", "b");
        akv::response<std::optional<std::string>> first;
        bool read_done = false;
        asio::co_spawn(
            rc.client.get_executor(),
            [&]() -> asio::awaitable<void> {
                co_await rc.client.exec(read, first);
                read_done = true;
            },
            asio::detached);
        co_await asio::post(rc.client.get_executor(), asio::use_awaitable); // the read goes out
        co_await rc.client.exec(write, akv::ignore);
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> { co_return read_done; }));
        EXPECT_EQ(std::get<0>(first).value(), "a");
        EXPECT_EQ(rc.client.stats().cache.not_cached, 1u);
        EXPECT_EQ(rc.client.stats().cache.entries, 0u);
        EXPECT_EQ(co_await get(rc.client, "k"), "b");
    }());
}

TEST(ClientCache, ConcurrentMissesOfOneKeyAskTheServerOnce) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, cached(server.config()));
    running_client writer(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await set(writer.client, "hot", "v");
        const long long before = co_await server_gets(writer.client);
        int answered = 0;
        for (int i = 0; i < 20; ++i)
            asio::co_spawn(
                rc.client.get_executor(),
                [&]() -> asio::awaitable<void> {
                    EXPECT_EQ(co_await get(rc.client, "hot"), "v");
                    ++answered;
                },
                asio::detached);
        EXPECT_TRUE(
            co_await eventually([&]() -> asio::awaitable<bool> { co_return answered == 20; }));
        EXPECT_EQ(co_await server_gets(writer.client), before + 1) << "one GET for twenty readers";
        EXPECT_EQ(rc.client.stats().cache.entries, 1u);
    }());
}

TEST(ClientCache, MgetAsksOnlyForTheKeysThatMissed) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, cached(server.config()));
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request fill;
        fill.push("MSET", "a", "1", "b", "2", "c", "3");
        co_await rc.client.exec(fill, akv::ignore);
        EXPECT_EQ(co_await get(rc.client, "b"), "2");
        akv::request mget = cached_request();
        mget.push("MGET", "a", "b", "c", "missing", "b");
        akv::response<std::vector<std::optional<std::string>>> resp;
        co_await rc.client.exec(mget, resp);
        const std::vector<std::optional<std::string>> want{"1", "2", "3", std::nullopt, "2"};
        EXPECT_EQ(std::get<0>(resp).value(), want);
        auto s = rc.client.stats().cache;
        EXPECT_EQ(s.hits, 2u);   // b twice
        EXPECT_EQ(s.misses, 4u); // GET b, then a, c and missing
        // Every key of it is now held: the same MGET, in any order, is answered from memory.
        akv::request again = cached_request();
        again.push("MGET", "missing", "c", "a");
        akv::response<std::vector<std::optional<std::string>>> resp2;
        co_await rc.client.exec(again, resp2);
        const std::vector<std::optional<std::string>> want2{std::nullopt, "3", "1"};
        EXPECT_EQ(std::get<0>(resp2).value(), want2);
        EXPECT_EQ(rc.client.stats().cache.misses, 4u);
    }());
}

TEST(ClientCache, CachedRepliesEqualUncachedOnes) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, cached(server.config()));
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request fill;
        fill.push("SET", "s", "hello");
        fill.push("HSET", "h", "f1", "v1", "f2", "v2");
        fill.push("RPUSH", "l", "x", "y", "z");
        fill.push("ZADD", "z", 1, "one", 2.5, "two");
        fill.push("SADD", "set", "m1", "m2");
        co_await rc.client.exec(fill, akv::ignore);
        auto reads = [](akv::request& r) {
            r.push("GET", "s");
            r.push("STRLEN", "s");
            r.push("GET", "h"); // WRONGTYPE: an error either way
            r.push("HGET", "h", "f2");
            r.push("HMGET", "h", "f1", "nope", "f2");
            r.push("HGETALL", "h");
            r.push("EXISTS", "s", "h", "nope", "s");
            r.push("MGET", "s", "h", "nope"); // a hash reads as nil in MGET
            r.push("LRANGE", "l", 0, -1);
            r.push("LLEN", "l");
            r.push("ZRANGE", "z", 0, -1, "WITHSCORES");
            r.push("ZSCORE", "z", "two");
            r.push("SISMEMBER", "set", "m2");
            r.push("SCARD", "set");
            r.push("HLEN", "h");
            r.push("TYPE", "z");
        };
        akv::request plain;
        reads(plain);
        akv::generic_response want;
        co_await rc.client.exec(plain, want);
        for (int round = 0; round < 3; ++round) { // a miss, then hits
            akv::request through = cached_request();
            reads(through);
            akv::generic_response got;
            co_await rc.client.exec(through, got);
            if (got.size() != want.size()) {
                ADD_FAILURE() << got.size() << " replies, uncached " << want.size();
                co_return;
            }
            for (std::size_t i = 0; i < want.size(); ++i) {
                EXPECT_EQ(got[i].has_value(), want[i].has_value()) << "reply " << i;
                if (got[i].has_value() && want[i].has_value())
                    EXPECT_EQ(got[i].value(), want[i].value()) << "reply " << i;
                else if (!got[i].has_value() && !want[i].has_value())
                    EXPECT_EQ(got[i].error(), want[i].error());
            }
        }
        EXPECT_GT(rc.client.stats().cache.hits, 20u);
    }());
}

TEST(ClientCache, MixedRequestsGoToTheServerAsTheyAre) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, cached(server.config()));
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await set(rc.client, "k", "1");
        EXPECT_EQ(co_await get(rc.client, "k"), "1");
        // A write and a read in one request: the read must see the write, so nothing in it is
        // answered from memory.
        akv::request mixed = cached_request();
        mixed.push("SET", "k", "2");
        mixed.push("GET", "k");
        akv::response<akv::ignore_t, std::string> resp;
        co_await rc.client.exec(mixed, resp);
        EXPECT_EQ(std::get<1>(resp).value(), "2");
        EXPECT_EQ(co_await get(rc.client, "k"), "2");
    }());
}

TEST(ClientCache, StaysWithinItsByteBudgetByEvictingTheLeastRecentlyUsed) {
    akv::testing::embedded_server server;
    asio::io_context io;
    akv::config cfg = cached(server.config());
    cfg.cache.max_bytes = 64 * 1024;
    running_client rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::string value(1000, 'x');
        for (int i = 0; i < 200; ++i)
            co_await set(rc.client, "k" + std::to_string(i), value);
        for (int i = 0; i < 200; ++i) {
            EXPECT_EQ(co_await get(rc.client, "k" + std::to_string(i)), value);
            EXPECT_LE(rc.client.stats().cache.bytes, cfg.cache.max_bytes);
            EXPECT_EQ(co_await get(rc.client, "k0"), value); // kept warm
        }
        const auto s = rc.client.stats().cache;
        EXPECT_GT(s.evictions, 100u);
        EXPECT_GT(s.entries, 10u);
        EXPECT_LT(s.entries, 64u);
        // k0 was used all along: still held. k1 was not: evicted long ago.
        const auto misses = s.misses;
        co_await get(rc.client, "k0");
        EXPECT_EQ(rc.client.stats().cache.misses, misses);
        co_await get(rc.client, "k1");
        EXPECT_EQ(rc.client.stats().cache.misses, misses + 1);
    }());
}

TEST(ClientCache, EntriesExpireAtTheAgeLimit) {
    akv::testing::embedded_server server;
    asio::io_context io;
    akv::config cfg = cached(server.config());
    cfg.cache.ttl = std::chrono::milliseconds(50);
    running_client rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await set(rc.client, "k", "v");
        co_await get(rc.client, "k");
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_await get(rc.client, "k");
            co_return rc.client.stats().cache.expirations > 0;
        }));
        EXPECT_GE(rc.client.stats().cache.misses, 2u);
    }());
}

TEST(ClientCache, BroadcastModeCachesOnlyKeysUnderItsPrefixes) {
    akv::testing::embedded_server server;
    asio::io_context io;
    akv::config cfg = cached(server.config(), akv::cache_options::mode::broadcast);
    cfg.cache.prefixes = {"user:", "model:"};
    running_client reader(io, cfg);
    running_client writer(io, server.config());
    invalidation_log told(reader.client);
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await set(writer.client, "user:1", "a");
        co_await set(writer.client, "other", "b");
        for (int i = 0; i < 3; ++i) {
            EXPECT_EQ(co_await get(reader.client, "user:1"), "a");
            EXPECT_EQ(co_await get(reader.client, "other"), "b");
        }
        auto s = reader.client.stats().cache;
        EXPECT_EQ(s.misses, 1u); // "other" is never kept: no invalidation would come for it
        EXPECT_EQ(s.hits, 2u);
        // Told about keys under the prefixes whether read or not.
        co_await set(writer.client, "model:never-read", "x");
        EXPECT_TRUE(co_await told.wait_for("model:never-read"));
        co_await set(writer.client, "user:1", "c");
        EXPECT_TRUE(co_await told.wait_for("user:1"));
        EXPECT_EQ(co_await get(reader.client, "user:1"), "c");
    }());
}

TEST(ClientCache, OptinModeTracksTheReadsItKeeps) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client reader(io, cached(server.config(), akv::cache_options::mode::optin));
    running_client writer(io, server.config());
    invalidation_log told(reader.client);
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await set(writer.client, "k", "1");
        EXPECT_EQ(co_await get(reader.client, "k"), "1");
        EXPECT_EQ(co_await get(reader.client, "k"), "1");
        EXPECT_EQ(reader.client.stats().cache.hits, 1u);
        co_await set(writer.client, "k", "2");
        EXPECT_TRUE(co_await told.wait_for("k"));
        EXPECT_EQ(co_await get(reader.client, "k"), "2");
        // A read without the opt-in is not tracked: its key's change is never announced.
        akv::request plain;
        plain.push("GET", "untracked");
        co_await reader.client.exec(plain, akv::ignore);
        co_await set(writer.client, "untracked", "x");
        co_await set(writer.client, "k", "3"); // announced, and after "untracked" would be
        EXPECT_TRUE(co_await told.wait_for("k"));
        EXPECT_EQ(told.seen.count("untracked"), 0u);
    }());
}

TEST(ClientCache, LostConnectionDropsEveryEntry) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client reader(io, cached(server.config()));
    running_client writer(io, server.config());
    invalidation_log told(reader.client);
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await set(writer.client, "a", "1");
        co_await set(writer.client, "b", "1");
        co_await get(reader.client, "a");
        co_await get(reader.client, "b");
        EXPECT_EQ(reader.client.stats().cache.entries, 2u);
        akv::request id;
        id.push("CLIENT", "ID");
        akv::response<long long> my_id;
        co_await reader.client.exec(id, my_id);
        akv::request kill;
        kill.push("CLIENT", "KILL", "ID", std::get<0>(my_id).value());
        co_await writer.client.exec(kill, akv::ignore);
        EXPECT_TRUE(co_await told.wait_for_flush());
        EXPECT_EQ(reader.client.stats().cache.entries, 0u);
        EXPECT_GE(reader.client.stats().cache.flushes, 1u);
        // Changed while the reader was away: read fresh, and tracked again.
        co_await set(writer.client, "a", "2");
        EXPECT_EQ(co_await get(reader.client, "a"), "2");
        co_await set(writer.client, "a", "3");
        EXPECT_TRUE(co_await told.wait_for("a"));
        EXPECT_EQ(co_await get(reader.client, "a"), "3");
    }());
}

TEST(ClientCache, FlushallDropsEveryEntry) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client reader(io, cached(server.config()));
    running_client writer(io, server.config());
    invalidation_log told(reader.client);
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await set(writer.client, "a", "1");
        co_await get(reader.client, "a");
        akv::request flush;
        flush.push("FLUSHALL");
        co_await writer.client.exec(flush, akv::ignore);
        EXPECT_TRUE(co_await told.wait_for_flush());
        EXPECT_EQ(co_await get(reader.client, "a"), std::nullopt);
    }());
}

TEST(ClientCache, RequestsOptingInOnAClientWithoutACacheGoToTheServer) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await set(rc.client, "k", "v");
        const long long before = co_await server_gets(rc.client);
        EXPECT_EQ(co_await get(rc.client, "k"), "v");
        EXPECT_EQ(co_await get(rc.client, "k"), "v");
        EXPECT_EQ(co_await server_gets(rc.client), before + 2);
        EXPECT_EQ(rc.client.stats().cache.hits, 0u);
    }());
}

TEST(ClientCache, HistoryOfAHundredThousandOperationsHasNoStaleRead) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client reader(io, cached(server.config()));
    running_client writer(io, server.config());
    cache_workload w;
    const auto v = expect_no_stale_read(io, reader.client, writer.client, w, 10000u, 120s);
    EXPECT_GT(v.writes, 1000u);
    EXPECT_GT(v.notices, 1000u);
    EXPECT_GT(reader.client.stats().cache.hits, 10000u);
}
