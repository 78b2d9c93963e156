// The stream batcher: batch limits, atomic commit, crash recovery, dead letters.
#include "support/eventually.hpp"
#include "support/running_client.hpp"

#include <akv/messaging/batcher.hpp>
#include <akv/testing/embedded_server.hpp>

#include <map>
#include <set>

using namespace akv::test;
using namespace akv::messaging;
namespace asio = boost::asio;

namespace {

std::vector<field_list> inputs(int n) {
    std::vector<field_list> out;
    for (int i = 0; i < n; ++i) {
        field_list f;
        f.emplace_back("n", std::to_string(i));
        out.push_back(std::move(f));
    }
    return out;
}

batcher_options options_for(std::string consumer) {
    batcher_options o;
    o.group.stream = "{p}:in";
    o.group.group = "g";
    o.group.consumer = std::move(consumer);
    o.group.claim_idle = std::chrono::milliseconds(20);
    o.group.max_deliveries = 3;
    o.output_stream = "{p}:out";
    o.max_batch = 64;
    o.max_wait = std::chrono::milliseconds(30);
    o.claim_every = std::chrono::milliseconds(0);
    return o;
}

// One output per input: its id and its number doubled.
asio::awaitable<std::vector<field_list>> double_it(std::span<const stream_entry> batch) {
    std::vector<field_list> out;
    for (const auto& e : batch) {
        field_list f;
        f.emplace_back("in", e.id);
        f.emplace_back("double", std::to_string(2 * std::stoi(*e.field("n"))));
        out.push_back(std::move(f));
    }
    co_return out;
}

asio::awaitable<long long> number(akv::client& c, akv::request req) {
    akv::response<long long> resp;
    co_await c.exec(req, resp);
    co_return std::get<0>(resp).value();
}

asio::awaitable<long long> xlen(akv::client& c, std::string key) {
    akv::request req;
    req.push("XLEN", key);
    co_return co_await number(c, std::move(req));
}

asio::awaitable<std::vector<stream_entry>> all(akv::client& c, std::string key) {
    akv::request req;
    req.push("XRANGE", key, "-", "+");
    akv::response<akv::resp::value> resp;
    co_await c.exec(req, resp);
    co_return entries_from(std::get<0>(resp).value());
}

} // namespace

TEST(Batcher, TakesAtMostMaxBatch) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        stream_producer producer(rc.client, "{p}:in");
        co_await producer.add_many(inputs(200));
        batcher b(rc.client, options_for("c1"), double_it);
        co_await b.group().create();
        EXPECT_EQ(co_await b.run_once(), 64u);
        EXPECT_EQ(co_await xlen(rc.client, "{p}:out"), 64);
    }());
}

TEST(Batcher, WaitsAtMostMaxWaitForAFullBatch) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        stream_producer producer(rc.client, "{p}:in");
        batcher b(rc.client, options_for("c1"), double_it);
        co_await b.group().create();
        co_await producer.add_many(inputs(5));
        const auto start = std::chrono::steady_clock::now();
        EXPECT_EQ(co_await b.run_once(), 5u); // 5 < 64: returned when max_wait ran out
        EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(25));
        EXPECT_EQ(co_await b.run_once(), 0u); // nothing new: an empty batch, no commit
        EXPECT_EQ(b.stats().batches, 1u);
    }());
}

TEST(Batcher, EveryInputGetsItsOutputAndIsAcked) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        stream_producer producer(rc.client, "{p}:in");
        co_await producer.add_many(inputs(1000));
        batcher b(rc.client, options_for("c1"), double_it);
        co_await b.group().create();
        std::size_t done = 0;
        while (done < 1000) {
            const std::size_t n = co_await b.run_once();
            if (n == 0) break;
            done += n;
        }
        EXPECT_EQ(done, 1000u);
        EXPECT_EQ(co_await xlen(rc.client, "{p}:out"), 1000);
        EXPECT_EQ(co_await b.group().pending(), 0u);
        auto outs = co_await all(rc.client, "{p}:out");
        EXPECT_EQ(*outs.at(999).field("double"), "1998");
    }());
}

TEST(Batcher, CrashBetweenReadAndWriteAcksNothingAndAnotherInstanceRecovers) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        stream_producer producer(rc.client, "{p}:in");
        const auto ids = co_await producer.add_many(inputs(100));
        {
            batcher doomed(rc.client, options_for("doomed"), double_it);
            co_await doomed.group().create();
            doomed.before_commit = [](std::span<const stream_entry>) {
                throw std::runtime_error("killed between read and write");
            };
            bool crashed = false;
            try {
                co_await doomed.run_once();
            } catch (const std::runtime_error&) {
                crashed = true;
            }
            EXPECT_TRUE(crashed);
        }
        EXPECT_EQ(co_await xlen(rc.client, "{p}:out"), 0); // no output ...
        EXPECT_EQ(co_await batcher(rc.client, options_for("x"), double_it).group().pending(),
                  64u); // ... and no input acked
        batcher rescuer(rc.client, options_for("rescuer"), double_it);
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_await rescuer.run_once();
            co_return co_await rescuer.group().pending() == 0 &&
                co_await xlen(rc.client, "{p}:out") >= 100;
        }));
        EXPECT_GE(rescuer.stats().reclaimed, 64u);
        std::set<std::string> answered;
        for (const auto& o : co_await all(rc.client, "{p}:out"))
            answered.insert(*o.field("in"));
        EXPECT_EQ(answered, std::set<std::string>(ids.begin(), ids.end()));
    }());
}

TEST(Batcher, FailedCommitLeavesInputsPending) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        stream_producer producer(rc.client, "{p}:in");
        co_await producer.add_many(inputs(10));
        akv::request wrong;
        wrong.push("SET", "{p}:out", "not a stream"); // the XADD of the commit will fail
        co_await rc.client.exec(wrong, akv::ignore);
        batcher b(rc.client, options_for("c1"), double_it);
        co_await b.group().create();
        bool failed = false;
        try {
            co_await b.run_once();
        } catch (const boost::system::system_error& e) {
            failed = e.code() == akv::error::script_error &&
                     std::string(e.what()).find("WRONGTYPE") != std::string::npos;
        }
        EXPECT_TRUE(failed);
        EXPECT_EQ(co_await b.group().pending(), 10u); // nothing acked without its output
    }());
}

TEST(Batcher, APoisonEntryEndsInTheDeadLetterStream) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        stream_producer producer(rc.client, "{p}:in");
        field_list poison;
        poison.emplace_back("n", "poison");
        co_await producer.add(poison);
        auto opts = options_for("c1");
        opts.group.max_deliveries = 2;
        batcher b(rc.client, opts, double_it); // std::stoi("poison") throws
        co_await b.group().create();
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_await b.run_once();
            co_return co_await xlen(rc.client, "{p}:in:dead") == 1;
        }));
        EXPECT_GE(b.stats().handler_failures, 2u);
        EXPECT_EQ(co_await b.group().pending(), 0u);
        EXPECT_EQ(co_await xlen(rc.client, "{p}:out"), 0);
    }());
}

TEST(Batcher, ReadsTheNextBatchInTheCommitsRoundTrip) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        stream_producer producer(rc.client, "{p}:in");
        co_await producer.add_many(inputs(200));
        batcher ahead(rc.client, options_for("c1"), double_it);
        co_await ahead.group().create();
        EXPECT_EQ(co_await ahead.run_once(), 64u);
        EXPECT_EQ(co_await ahead.group().pending(), 64u); // the next batch, read with the commit
        EXPECT_EQ(co_await ahead.run_once(), 64u);
        EXPECT_EQ(co_await xlen(rc.client, "{p}:out"), 128);

        auto opts = options_for("c1");
        opts.group.group = "g2";
        opts.output_stream = "{p}:out2";
        opts.prefetch = false;
        batcher plain(rc.client, opts, double_it);
        co_await plain.group().create();
        EXPECT_EQ(co_await plain.run_once(), 64u);
        EXPECT_EQ(co_await plain.group().pending(), 0u);
    }());
}

TEST(Batcher, StopHandlesWhatWasReadAheadBeforeRunReturns) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        stream_producer producer(rc.client, "{p}:in");
        co_await producer.add_many(inputs(1000));
        batcher* self = nullptr;
        int calls = 0;
        batcher b(rc.client, options_for("c1"),
                  [&](std::span<const stream_entry> batch) -> asio::awaitable<std::vector<field_list>> {
                      // Stops while this batch's commit (which reads the next) is on its way.
                      if (++calls == 2)
                          asio::post(co_await asio::this_coro::executor, [&] { self->stop(); });
                      co_return co_await double_it(batch);
                  });
        self = &b;
        co_await b.run();
        EXPECT_EQ(b.stats().batches, 3u); // the third was read ahead by the second's commit
        EXPECT_EQ(co_await xlen(rc.client, "{p}:out"), 192);
        EXPECT_EQ(co_await b.group().pending(), 0u); // nothing left owned by a stopped consumer
    }());
}

TEST(Batcher, ReclaimsStaleEntriesWhileFullBatchesKeepComing) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        stream_producer producer(rc.client, "{p}:in");
        co_await producer.add_many(inputs(64));
        {
            batcher doomed(rc.client, options_for("doomed"), double_it);
            co_await doomed.group().create();
            doomed.before_commit = [](std::span<const stream_entry>) {
                throw std::runtime_error("killed between read and write");
            };
            EXPECT_THROW(co_await doomed.run_once(), std::runtime_error);
        }
        // Each round brings two batches more than it takes, so the batch read ahead is always
        // full: the stale entries must still be claimed, not wait for a lull that never comes.
        batcher rescuer(rc.client, options_for("rescuer"), double_it);
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_await producer.add_many(inputs(128));
            co_await rescuer.run_once();
            co_return rescuer.stats().reclaimed >= 64;
        }));
        EXPECT_EQ(rescuer.stats().reclaimed, 64u);
    }());
}

TEST(Batcher, WritesAStatusRecordThatExpiresOnlyWhenAsked) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        stream_producer producer(rc.client, "{p}:in");
        co_await producer.add_many(inputs(10));
        batcher quiet(rc.client, options_for("quiet"), double_it);
        co_await quiet.group().create();
        EXPECT_EQ(co_await quiet.run_once(), 10u);
        akv::request keys;
        keys.push("KEYS", "akv:batcher:*");
        akv::response<std::vector<std::string>> none;
        co_await rc.client.exec(keys, none);
        EXPECT_TRUE(std::get<0>(none).value().empty()); // off by default

        co_await producer.add_many(inputs(7));
        auto opts = options_for("c1");
        opts.group.group = "g2"; // all 17 entries are new to it
        opts.status_every = std::chrono::milliseconds(200);
        opts.status_fields = [] {
            return field_list{{"model", "doubler"}, {"model_version", "3"}};
        };
        batcher b(rc.client, opts, double_it);
        co_await b.group().create();
        EXPECT_EQ(co_await b.run_once(), 17u);
        const std::string key = batcher_status_key(opts.group);
        EXPECT_EQ(key, "akv:batcher:{p}:in:g2:c1");
        akv::request req;
        req.push("HGETALL", key);
        req.push("PTTL", key);
        akv::response<std::map<std::string, std::string>, long long> resp;
        co_await rc.client.exec(req, resp);
        auto record = std::get<0>(resp).value();
        EXPECT_EQ(record["stream"], "{p}:in");
        EXPECT_EQ(record["group"], "g2");
        EXPECT_EQ(record["consumer"], "c1");
        EXPECT_EQ(record["batches"], "1");
        EXPECT_EQ(record["entries"], "17");
        EXPECT_EQ(record["outputs"], "17");
        EXPECT_EQ(record["model"], "doubler");
        EXPECT_EQ(record["model_version"], "3");
        EXPECT_EQ(record["interval_ms"], "200");
        EXPECT_FALSE(record["updated_at_ms"].empty());
        const long long ttl = std::get<1>(resp).value();
        EXPECT_GT(ttl, 0);
        EXPECT_LE(ttl, 600); // three intervals: a batcher that died vanishes
    }());
}
