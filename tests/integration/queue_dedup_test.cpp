// Throttle and debounce (job_options::dedup), their windows checked on the server's clock: each
// enqueue is bracketed by two reads of Redis' TIME, and a verdict is asserted only where the
// bracket decides it.
#include "support/eventually.hpp"
#include "support/running_client.hpp"
#include "support/server_clock.hpp"
#include "support/running_queue.hpp"

#include <akv/queue/admin.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_server.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace akv::test;
using namespace akv::queue;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

job_options deduplicated(dedup_mode mode, std::string key, std::chrono::milliseconds window) {
    job_options o;
    o.dedup.mode = mode;
    o.dedup.key = std::move(key);
    o.dedup.window = window;
    return o;
}

// An enqueue between two reads of the server's clock.
struct bracketed {
    std::string id;
    std::int64_t before = 0, after = 0;
};

asio::awaitable<bracketed> enqueue_timed(akv::client& c, producer& p, std::string payload,
                                         job_options o) {
    bracketed b;
    b.before = co_await server_ms(c);
    b.id = co_await p.enqueue(payload, std::move(o));
    b.after = co_await server_ms(c);
    co_return b;
}

} // namespace

TEST(QueueDedup, ThrottleDropsDuplicatesForTheWindowOnTheServersClock) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    constexpr auto window = 600ms;
    const auto o = deduplicated(dedup_mode::throttle, "report:7", window);
    run_task(io, [&]() -> asio::awaitable<void> {
        const bracketed first = co_await enqueue_timed(rc.client, p, "first", o);
        // Other keys are their own.
        const bracketed other = co_await enqueue_timed(
            rc.client, p, "other", deduplicated(dedup_mode::throttle, "report:8", window));
        EXPECT_NE(other.id, first.id);
        std::size_t throttled = 0, decided_inside = 0;
        bracketed next;
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        for (;;) {
            next = co_await enqueue_timed(rc.client, p, "again", o);
            if (next.after < first.before + window.count()) ++decided_inside;
            if (next.id == first.id) {
                ++throttled;
                // Throttled: the call ran before the window of the first ended.
                EXPECT_LT(next.before, first.after + window.count());
            } else {
                // Added: the call ran once the window had ended.
                EXPECT_GE(next.after, first.before + window.count());
                break;
            }
            if (std::chrono::steady_clock::now() > deadline) {
                ADD_FAILURE() << "still throttled 10 s after a window of 600 ms";
                co_return;
            }
        }
        EXPECT_GT(decided_inside, 0u); // at least one duplicate was surely inside the window
        // The job added after the window opens a window of its own.
        EXPECT_EQ((co_await p.enqueue("third", o)), next.id);
        const auto c = co_await a.counts();
        EXPECT_EQ(c.total_throttled, throttled + 1);
        EXPECT_EQ(c.waiting, 3u); // first, other and the one after the window
        auto kept = co_await a.get(first.id);
        if (!kept.job) {
            ADD_FAILURE() << "no record";
            co_return;
        }
        EXPECT_EQ(kept.job->payload, "first"); // a throttled duplicate changes nothing
        // Windows that ended are dropped as enqueues pass: once report:8's has, it is gone.
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return co_await server_ms(rc.client) >= other.after + window.count();
        }));
        EXPECT_EQ((co_await p.enqueue("fourth", o)), next.id); // an enqueue that prunes
        akv::request req;
        req.push("HEXISTS", "akvq:{q}:dedup", "t:report:8");
        req.push("HEXISTS", "akvq:{q}:dedup", "t:report:7");
        akv::response<long long, long long> resp;
        co_await rc.client.exec(req, resp);
        EXPECT_EQ(std::get<0>(resp).value(), 0);
        EXPECT_EQ(std::get<1>(resp).value(), 1);
    }());
}

TEST(QueueDedup, DebounceRunsTheLastOfABurstOnceAfterItsWindow) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    constexpr auto window = 400ms;
    const auto o = deduplicated(dedup_mode::debounce, "search:alice", window);
    bracketed last;
    std::string id;
    run_task(io, [&]() -> asio::awaitable<void> {
        id = co_await p.enqueue("a", o);
        EXPECT_EQ((co_await p.enqueue("ab", o)), id);
        last = co_await enqueue_timed(rc.client, p, "abc", o);
        EXPECT_EQ(last.id, id);
        const auto c = co_await a.counts();
        EXPECT_EQ(c.delayed, 1u);
        EXPECT_EQ(c.waiting, 0u);
        EXPECT_EQ(c.total_debounced, 2u);
        auto waiting = co_await a.get(id);
        if (!waiting.job) {
            ADD_FAILURE() << "no record";
            co_return;
        }
        EXPECT_EQ(waiting.job->payload, "abc");
    }());
    std::vector<std::string> seen;
    std::int64_t ran_at = 0;
    {
        running_worker w(io, rc.client, "q", [&](job_context& ctx) -> asio::awaitable<std::string> {
            ran_at = co_await server_ms(rc.client);
            seen.push_back(ctx.job().payload);
            co_return "ok";
        });
        ASSERT_TRUE(run_until(
            io, [&] { return !seen.empty(); }, 10s));
        run_task(io, [&]() -> asio::awaitable<void> {
            EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
                co_return (co_await a.counts()).total_completed == 1;
            }));
            // Once it ran, the key starts a new burst: a new job.
            const std::string again = co_await p.enqueue("abcd", o);
            EXPECT_NE(again, id);
        }());
        ASSERT_TRUE(run_until(
            io, [&] { return seen.size() >= 2; }, 10s));
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"abc", "abcd"}));
    // It waited the window from the last of the burst.
    EXPECT_GE(ran_at, last.before + window.count());
}

TEST(QueueDedup, DebounceWithinOneBulkKeepsTheLastPayload) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    run_task(io, [&]() -> asio::awaitable<void> {
        std::vector<new_job> bulk(3);
        for (std::size_t i = 0; i < bulk.size(); ++i) {
            bulk[i].payload = "v" + std::to_string(i);
            bulk[i].options = deduplicated(dedup_mode::debounce, "k", 5s);
        }
        const auto ids = co_await p.enqueue_bulk(bulk);
        EXPECT_EQ(ids.at(0), ids.at(1));
        EXPECT_EQ(ids.at(0), ids.at(2));
        auto j = co_await a.get(ids.at(0));
        if (!j.job) {
            ADD_FAILURE() << "no record";
            co_return;
        }
        EXPECT_EQ(j.job->payload, "v2");
        EXPECT_EQ((co_await a.counts()).delayed, 1u);
    }());
}

TEST(QueueDedup, OptionsThatCannotMeanAnythingAreRefused) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    const auto refused = [&](job_options o, std::string_view words) {
        std::string message;
        run_task(io, [&]() -> asio::awaitable<void> {
            try {
                co_await p.enqueue("x", o);
            } catch (const boost::system::system_error& e) {
                EXPECT_EQ(e.code(), akv::error::invalid_config);
                message = e.what();
            }
        }());
        EXPECT_NE(message.find(words), std::string::npos) << message;
    };
    refused(deduplicated(dedup_mode::throttle, "", 1s), "needs a key");
    refused(deduplicated(dedup_mode::debounce, "k", 0ms), "window above 0");
    auto both = deduplicated(dedup_mode::throttle, "k", 1s);
    both.unique_key = "u";
    refused(both, "use one");
    auto delayed = deduplicated(dedup_mode::debounce, "k", 1s);
    delayed.delay = 5s;
    refused(delayed, "delay and run_at");
}
