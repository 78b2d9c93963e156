// Task queue against a real server: producer, worker runtime, admin.
#include "support/eventually.hpp"
#include "support/running_client.hpp"
#include "support/server_clock.hpp"
#include "support/running_queue.hpp"
#include "support/side_thread.hpp"

#include <akv/messaging/subscriber.hpp>
#include <akv/queue/admin.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json/parse.hpp>

#include <atomic>
#include <limits>
#include <thread>
#include <set>

#include <unistd.h>

using namespace akv::test;
using namespace akv::queue;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

job_options with_priority(int p) {
    job_options o;
    o.priority = p;
    return o;
}

std::vector<new_job> numbered(std::size_t n, job_options o = {}) {
    std::vector<new_job> jobs(n);
    for (std::size_t i = 0; i < n; ++i) {
        jobs[i].payload = std::to_string(i);
        jobs[i].options = o;
    }
    return jobs;
}

handler echo(std::vector<std::string>& seen) {
    return [&seen](job_context& ctx) -> asio::awaitable<std::string> {
        seen.push_back(ctx.job().payload);
        co_return "ok:" + ctx.job().payload;
    };
}
} // namespace

TEST(TaskQueue, ProcessesEveryJobOnceAndKeepsResults) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    producer p(rc.client, "q", &hub);
    std::vector<std::string> ids;
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto jobs = numbered(500);
        ids = co_await p.enqueue_bulk(jobs);
    }());
    ASSERT_EQ(ids.size(), 500u);
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 500u);
    std::vector<std::string> seen;
    {
        running_worker w(io, rc.client, "q", echo(seen));
        ASSERT_TRUE(run_until(io, [&] { return seen.size() >= 500; }, 20s));
        run_task(io, [&]() -> asio::awaitable<void> {
            auto r = co_await p.result(ids[123], 5s);
            EXPECT_TRUE(r.ok());
            EXPECT_EQ(r.value, "ok:123");
            admin a(rc.client, "q");
            EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
                co_return (co_await a.counts()).total_completed == 500;
            }));
            auto c = co_await a.counts();
            EXPECT_EQ(c.waiting, 0u);
            EXPECT_EQ(c.active, 0u);
            EXPECT_EQ(c.completed, 500u);
        }());
    }
    EXPECT_EQ(seen.size(), 500u);
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 500u);
}

TEST(TaskQueue, HigherPriorityRunsFirstThenFifo) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto low = with_priority(-5), high = with_priority(10), top = with_priority(100);
        co_await p.enqueue("plain-1");
        co_await p.enqueue("low", low);
        co_await p.enqueue("high-1", high);
        co_await p.enqueue("plain-2");
        co_await p.enqueue("high-2", high);
        co_await p.enqueue("highest", top);
    }());
    std::vector<std::string> seen;
    worker_options o;
    o.concurrency = 1;
    o.max_batch = 1;
    running_worker w(io, rc.client, "q", echo(seen), o);
    ASSERT_TRUE(run_until(io, [&] { return seen.size() >= 6; }, 10s));
    const std::vector<std::string> expected{"highest", "high-1", "high-2", "plain-1", "plain-2",
                                            "low"};
    EXPECT_EQ(seen, expected);
}

TEST(TaskQueue, ResultOfAFailedJobCarriesTheLastError) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    producer p(rc.client, "q", &hub);
    int runs = 0;
    running_worker w(io, rc.client, "q", [&](job_context& ctx) -> asio::awaitable<std::string> {
        ++runs;
        throw std::runtime_error("boom on attempt " + std::to_string(ctx.job().attempt));
        co_return "";
    });
    run_task(io, [&]() -> asio::awaitable<void> {
        job_options o;
        o.max_attempts = 3;
        o.backoff.kind = backoff_kind::fixed;
        o.backoff.base = 20ms;
        o.backoff.jitter = false;
        auto id = co_await p.enqueue("x", o);
        auto r = co_await p.result(id, 10s);
        EXPECT_EQ(r.outcome, job_result::status::failed);
        EXPECT_EQ(r.value, "boom on attempt 3");
        admin a(rc.client, "q");
        auto info = co_await a.get(id);
        EXPECT_EQ(info.state, job_state::failed);
        EXPECT_EQ(info.failures, 3u);
        EXPECT_EQ(info.last_error, "boom on attempt 3");
        const auto failed = co_await a.list(job_state::failed, 0, 10);
        EXPECT_EQ(failed, std::vector<std::string>(1, id));
    }());
    EXPECT_EQ(runs, 3);
}

namespace {
job_options delayed_by(std::chrono::milliseconds d) {
    job_options o;
    o.delay = d;
    return o;
}
} // namespace

TEST(TaskQueue, DelayedJobRunsOnTimeNotEarly) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    std::int64_t enqueued_at = 0, ran_at = 0;
    worker_options o;
    o.idle_wait = 10s; // the due time, not the idle timeout, must wake it
    running_worker w(io, rc.client, "q", [&](job_context&) -> asio::awaitable<std::string> {
        ran_at = co_await server_ms(rc.client);
        co_return "";
    }, o);
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto d = delayed_by(700ms);
        enqueued_at = co_await server_ms(rc.client);
        co_await p.enqueue("later", d);
        admin a(rc.client, "q");
        EXPECT_EQ((co_await a.counts()).delayed, 1u);
    }());
    ASSERT_TRUE(run_until(io, [&] { return ran_at != 0; }, 10s));
    EXPECT_GE(ran_at - enqueued_at, 700);
    EXPECT_LT(ran_at - enqueued_at, 700 + 1500); // woken at its due time, well before idle_wait
}

TEST(TaskQueue, RetriesWaitForTheirBackoffThenFail) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    std::vector<std::int64_t> runs;
    running_worker w(io, rc.client, "q", [&](job_context&) -> asio::awaitable<std::string> {
        runs.push_back(co_await server_ms(rc.client));
        throw std::runtime_error("nope");
        co_return "";
    });
    run_task(io, [&]() -> asio::awaitable<void> {
        job_options o;
        o.max_attempts = 3;
        o.backoff.kind = backoff_kind::exponential;
        o.backoff.base = 200ms;
        o.backoff.jitter = false;
        co_await p.enqueue("x", o);
    }());
    ASSERT_TRUE(run_until(io, [&] { return runs.size() >= 3; }, 10s));
    EXPECT_GE(runs[1] - runs[0], 200); // base
    EXPECT_GE(runs[2] - runs[1], 400); // base * 2
    run_task(io, [&]() -> asio::awaitable<void> {
        admin a(rc.client, "q");
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return (co_await a.counts()).failed == 1;
        }));
        const auto c = co_await a.counts();
        EXPECT_EQ(c.total_retried, 2u);
        EXPECT_EQ(c.total_failed, 1u);
    }());
    EXPECT_EQ(runs.size(), 3u);
}

TEST(TaskQueue, UniqueKeyReturnsThePendingJob) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    std::string first, second, third;
    job_options o;
    o.unique_key = "user:42";
    run_task(io, [&]() -> asio::awaitable<void> {
        first = co_await p.enqueue("a", o);
        second = co_await p.enqueue("b", o);
        // In one bulk too: the second of the pair maps to the first.
        std::vector<new_job> bulk(2);
        bulk[0].payload = "c";
        bulk[0].options.unique_key = "user:7";
        bulk[1].payload = "d";
        bulk[1].options.unique_key = "user:7";
        auto ids = co_await p.enqueue_bulk(bulk);
        EXPECT_EQ(ids.at(0), ids.at(1));
    }());
    EXPECT_EQ(first, second);
    std::vector<std::string> seen;
    {
        running_worker w(io, rc.client, "q", echo(seen));
        ASSERT_TRUE(run_until(io, [&] { return seen.size() >= 2; }, 10s));
        // Once done, the key is free again.
        run_task(io, [&]() -> asio::awaitable<void> {
            admin a(rc.client, "q");
            EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
                co_return (co_await a.counts()).total_completed == 2;
            }));
            third = co_await p.enqueue("e", o);
        }());
        ASSERT_TRUE(run_until(io, [&] { return seen.size() >= 3; }, 10s));
    }
    EXPECT_NE(third, first);
    const std::vector<std::string> expected{"a", "c", "e"};
    EXPECT_EQ(seen, expected);
}

TEST(TaskQueue, CancelsAWaitingJobAndARunningOne) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    producer p(rc.client, "q", &hub);
    admin a(rc.client, "q");
    std::string waiting, running;
    run_task(io, [&]() -> asio::awaitable<void> {
        waiting = co_await p.enqueue("w");
        EXPECT_EQ(co_await a.cancel(waiting, "not needed"), cancel_outcome::cancelled);
        auto r = co_await p.result(waiting, 2s);
        EXPECT_EQ(r.outcome, job_result::status::cancelled);
        EXPECT_EQ(r.value, "cancelled: not needed");
        running = co_await p.enqueue("r");
    }());
    bool started = false, saw_cancel = false;
    running_worker w(io, rc.client, "q", [&](job_context&) -> asio::awaitable<std::string> {
        started = true;
        asio::steady_timer forever(co_await asio::this_coro::executor, 1h);
        auto [ec] = co_await forever.async_wait(asio::as_tuple(asio::use_awaitable));
        saw_cancel = ec == asio::error::operation_aborted;
        throw boost::system::system_error(ec);
        co_return "";
    }, worker_options{}, &hub);
    ASSERT_TRUE(run_until(io, [&] { return started; }, 10s));
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_EQ(co_await a.cancel(running, "stop it"), cancel_outcome::running);
        auto r = co_await p.result(running, 5s);
        EXPECT_EQ(r.outcome, job_result::status::cancelled);
        EXPECT_EQ(r.value, "cancelled: stop it");
        auto c = co_await a.counts();
        EXPECT_EQ(c.completed, 0u); // cancelled and failed jobs are not "completed"
        EXPECT_EQ(c.failed, 2u);
        EXPECT_EQ(co_await a.cancel("999", ""), cancel_outcome::unknown);
    }());
    EXPECT_TRUE(saw_cancel);
}

TEST(TaskQueue, TimeoutFailsARunThatTakesTooLong) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    producer p(rc.client, "q", &hub);
    running_worker w(io, rc.client, "q", [&](job_context&) -> asio::awaitable<std::string> {
        asio::steady_timer t(co_await asio::this_coro::executor, 1h);
        co_await t.async_wait(asio::use_awaitable);
        co_return "late";
    });
    run_task(io, [&]() -> asio::awaitable<void> {
        job_options o;
        o.timeout = 100ms;
        o.max_attempts = 1;
        const auto id = co_await p.enqueue("slow", o);
        auto r = co_await p.result(id, 5s);
        EXPECT_EQ(r.outcome, job_result::status::failed);
        EXPECT_EQ(r.value, "timed out after 100 ms");
    }());
}

// Under a timeout, a handler that throws fails at once with its own error (not "timed out"
// once the timeout has passed).
TEST(TaskQueue, AHandlerThatThrowsUnderATimeoutFailsAtOnceWithItsError) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    producer p(rc.client, "q", &hub);
    running_worker w(io, rc.client, "q", [&](job_context&) -> asio::awaitable<std::string> {
        throw std::runtime_error("boom");
        co_return "never";
    });
    run_task(io, [&]() -> asio::awaitable<void> {
        job_options o;
        o.timeout = 1h;
        o.max_attempts = 1;
        const auto id = co_await p.enqueue("x", o);
        auto r = co_await p.result(id, 10s); // an hour's wait would fail here
        EXPECT_EQ(r.outcome, job_result::status::failed);
        EXPECT_EQ(r.value, "boom");
    }());
}

// An idle worker whose blocking connection is killed goes on claiming.
TEST(TaskQueue, AnIdleWorkerWhoseBlockingConnectionDiesStillClaims) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    running_client other(io, server.config());
    producer p(other.client, "q");
    std::vector<std::string> seen;
    running_worker w(io, rc.client, "q", echo(seen));
    const auto blocked_clients = [&] {
        long long n = 0;
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::request req;
            req.push("INFO", "clients");
            akv::response<std::string> resp;
            co_await other.client.exec(req, resp);
            const std::string& info = std::get<0>(resp).value();
            const auto at = info.find("blocked_clients:");
            if (at != std::string::npos) n = std::stoll(info.substr(at + 16));
        }());
        return n;
    };
    ASSERT_TRUE(run_until(io, [&] { return blocked_clients() == 1; }, 10s));
    run_task(io, [&]() -> asio::awaitable<void> {
        // Every blocked connection (the worker's BZPOPMIN) is closed by the server.
        akv::request req;
        req.push("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
        akv::response<akv::resp::value> resp;
        co_await other.client.exec(req, resp);
        co_await p.enqueue("after");
    }());
    EXPECT_TRUE(run_until(io, [&] { return seen.size() == 1; }, 10s))
        << "the worker stopped claiming after its blocking connection died";
}

TEST(TaskQueue, PauseStopsClaimsAndResumeWakesTheWorker) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    run_task(io, [&]() -> asio::awaitable<void> { co_await a.pause(); }());
    std::vector<std::string> seen;
    running_worker w(io, rc.client, "q", echo(seen));
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await p.enqueue("held");
        // The worker was woken by the enqueue and found the queue paused: it claims nothing.
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return w.w.stats().claims == 0 && (co_await a.counts()).waiting == 1;
        }));
        EXPECT_TRUE((co_await a.counts()).paused);
        co_await a.resume();
    }());
    ASSERT_TRUE(run_until(io, [&] { return seen.size() == 1; }, 10s));
}

TEST(TaskQueue, RateLimitBoundsClaimsPerWindow) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await a.set_rate_limit(5, 400ms);
        const auto jobs = numbered(15);
        co_await p.enqueue_bulk(jobs);
    }());
    std::vector<std::int64_t> at;
    running_worker w(io, rc.client, "q", [&](job_context&) -> asio::awaitable<std::string> {
        at.push_back(co_await server_ms(rc.client));
        co_return "";
    });
    ASSERT_TRUE(run_until(io, [&] { return at.size() >= 15; }, 10s));
    std::sort(at.begin(), at.end());
    // 15 jobs at 5 per 400 ms: three windows, so the last starts at least ~2 windows after the first.
    EXPECT_GE(at[14] - at[0], 700);
    for (std::size_t i = 5; i < at.size(); ++i) EXPECT_GE(at[i] - at[i - 5], 300) << i;
}

TEST(TaskQueue, ProgressEventsReachSubscribers) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    producer p(rc.client, "q");
    std::vector<std::string> events;
    run_task(io, [&]() -> asio::awaitable<void> {
        std::vector<std::string> channel(1, "akvq:{q}:events");
        auto sub = co_await hub.ssubscribe(channel);
        const auto id = co_await p.enqueue("x");
        running_worker w(io, rc.client, "q", [&](job_context& ctx) -> asio::awaitable<std::string> {
            co_await ctx.progress("50%");
            co_await ctx.progress("100%");
            co_return "";
        });
        while (events.size() < 2) {
            auto m = co_await sub->receive();
            if (m.payload.rfind("progress", 0) == 0) events.push_back(m.payload);
        }
        EXPECT_EQ(events.at(0), "progress " + id + " 50%");
        EXPECT_EQ(events.at(1), "progress " + id + " 100%");
        w.w.stop();
    }());
}

TEST(TaskQueue, RetryAndRemoveFromAdmin) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto id = co_await p.enqueue("x");
        co_await a.cancel(id, "test"); // a cancelled job sits in the failed set
        EXPECT_EQ((co_await a.get(id)).state, job_state::failed);
        co_await a.retry(id);
        EXPECT_EQ((co_await a.get(id)).state, job_state::waiting);
        EXPECT_EQ(co_await a.list(job_state::waiting, 0, 10), std::vector<std::string>(1, id));
        co_await a.remove(id);
        EXPECT_EQ((co_await a.get(id)).state, job_state::unknown);
        bool threw = false;
        try {
            co_await a.retry(id);
        } catch (const boost::system::system_error& e) {
            threw = e.code() == akv::error::unknown_job;
            EXPECT_NE(std::string(e.what()).find(id), std::string::npos) << e.what();
        }
        EXPECT_TRUE(threw);
        const auto d = delayed_by(1h);
        const auto later = co_await p.enqueue("later", d);
        EXPECT_EQ(co_await a.list(job_state::delayed, 0, 10), std::vector<std::string>(1, later));
    }());
}

TEST(TaskQueue, BadOptionsAreRefusedWithTheirName) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    auto refused = [](auto&& make) {
        try {
            make();
        } catch (const boost::system::system_error& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_NE(refused([&] { producer p(rc.client, "a{b}"); }).find("queue name"), std::string::npos);
    EXPECT_NE(refused([&] { producer p(rc.client, ""); }).find("queue name"), std::string::npos);
    job_options o;
    o.priority = 5000;
    EXPECT_NE(refused([&] { validate(o); }).find("priority"), std::string::npos);
    o = {};
    o.max_attempts = 0;
    EXPECT_NE(refused([&] { validate(o); }).find("max_attempts"), std::string::npos);
}

TEST(TaskQueue, MetricsCountProcessedAndLatency) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    std::vector<std::string> seen;
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto jobs = numbered(50);
        co_await p.enqueue_bulk(jobs);
    }());
    running_worker w(io, rc.client, "q", echo(seen));
    ASSERT_TRUE(run_until(io, [&] { return seen.size() >= 50; }, 10s));
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            std::uint64_t processed = 0;
            for (const auto& m : co_await a.metrics(2)) processed += m.processed;
            co_return processed == 50;
        }));
        const auto m = co_await a.metrics(2);
        const auto& last = m.back().processed ? m.back() : m.front();
        EXPECT_GT(last.p99_ms, 0.0);
        EXPECT_LE(last.p50_ms, last.p99_ms);
    }());
}

TEST(TaskQueue, ConcurrentEnqueuesShareLuaCalls) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    std::vector<std::string> ids;
    for (int i = 0; i < 200; ++i)
        asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
            ids.push_back(co_await p.enqueue(std::to_string(i)));
        }, asio::detached);
    ASSERT_TRUE(run_until(io, [&] { return ids.size() == 200; }, 10s));
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 200u);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("INFO", "commandstats");
        akv::response<std::string> resp;
        co_await rc.client.exec(req, resp);
        const auto& info = std::get<0>(resp).value();
        // "cmdstat_evalsha:calls=N,..." (+ one EVAL the first time: NOSCRIPT)
        const auto at = info.find("cmdstat_evalsha:calls=");
        EXPECT_NE(at, std::string::npos);
        const auto calls = std::stoul(info.substr(at + 22));
        EXPECT_LT(calls, 20u) << info;
        admin a(rc.client, "q");
        EXPECT_EQ((co_await a.counts()).waiting, 200u);
    }());
}

TEST(TaskQueue, WorkerEndsWhenItsClientIsShutDown) {
    akv::testing::embedded_server server;
    asio::io_context io;
    akv::client c(io.get_executor(), server.config());
    bool client_done = false, worker_done = false;
    asio::co_spawn(io, c.run(), [&](std::exception_ptr) { client_done = true; });
    std::vector<std::string> seen;
    worker w(c, "q", echo(seen));
    asio::co_spawn(io, w.run(), [&](std::exception_ptr) { worker_done = true; });
    producer p(c, "q");
    run_task(io, [&]() -> asio::awaitable<void> { co_await p.enqueue("x"); }());
    ASSERT_TRUE(run_until(io, [&] { return seen.size() == 1; }, 10s));
    // Stopping after the client is gone: the final flush cannot be sent, and must not be
    // retried forever.
    c.cancel();
    w.stop();
    EXPECT_TRUE(run_until(io, [&] { return worker_done && client_done; }, 10s));
}

TEST(TaskQueue, JsonPayloadIsStoredAsJsonAndNaNOrInfinityIsRefusedByName) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    run_task(io, [&]() -> asio::awaitable<void> {
        boost::json::object good;
        good["text"] = "hi";
        good["scores"] = boost::json::array{0.5, 1};
        const boost::json::value good_value = good;
        const job_options options; // named: g++ 12 mishandles temporaries across co_await
        const std::string id = co_await p.enqueue_json(good_value, options);
        admin a(rc.client, "q");
        const job_info info = co_await a.get(id);
        EXPECT_TRUE(info.job && boost::json::parse(info.job->payload) == good_value);

        // Boost.JSON would write it as NaN, which no JSON parser reads back.
        boost::json::object bad = good;
        bad["scores"] = boost::json::array{0.5, std::numeric_limits<double>::quiet_NaN()};
        const boost::json::value bad_value = bad;
        std::string error;
        try {
            co_await p.enqueue_json(bad_value, options);
        } catch (const boost::system::system_error& e) {
            if (e.code() == akv::error::type_mismatch) error = e.what();
        }
        EXPECT_NE(error.find("job payload.scores[1] is NaN"), std::string::npos) << error;
        EXPECT_EQ((co_await a.counts()).waiting, 1u); // only the good one
    }());
}

namespace {

struct stalled_run {
    std::string result;          // the job's kept result
    bool saw_lost = false;       // the stalled run's job_context::lease_lost()
    std::string progress_error;  // what its progress() threw
    std::uint64_t lost_leases = 0;
    std::uint64_t completed = 0; // total_completed of the queue
    int runs = 0;
};

// One job; its first run stalls its worker (the thread blocked, as by a long CPU-bound step)
// until another process has recovered the job's expired lease; later runs answer "fresh".
stalled_run run_with_a_stall(std::size_t concurrency) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client); // result() waits on the queue's events
    producer p(rc.client, "q", &hub);
    stalled_run out;
    std::string id;
    run_task(io, [&]() -> asio::awaitable<void> { id = co_await p.enqueue("x"); }());

    std::atomic<bool> stalled{false}, recovered{false};
    worker_options o;
    o.lease_time = 300ms; // renewed every 100 ms
    o.concurrency = concurrency;
    o.prefetch = 0;
    handler h = [&](job_context& jc) -> asio::awaitable<std::string> {
        if (++out.runs > 1) co_return "fresh";
        stalled = true;
        const auto give_up = std::chrono::steady_clock::now() + 10s;
        while (!recovered && std::chrono::steady_clock::now() < give_up)
            std::this_thread::sleep_for(1ms); // the stall itself: nothing runs on this thread
        asio::steady_timer t(co_await asio::this_coro::executor);
        while (!jc.lease_lost() && std::chrono::steady_clock::now() < give_up) {
            t.expires_after(5ms); // the worker's next renewal learns of the loss
            co_await t.async_wait(asio::use_awaitable);
        }
        out.saw_lost = jc.lease_lost();
        try {
            co_await jc.progress("still here");
        } catch (const boost::system::system_error& e) {
            if (e.code() == akv::error::lease_lost) out.progress_error = e.what();
        }
        co_return "stale";
    };
    {
        running_worker w(io, rc.client, "q", h, o);
        side_thread recoverer([&] { // another process, with its own client
            asio::io_context io2;
            running_client rc2(io2, server.config());
            run_task(io2, [&]() -> asio::awaitable<void> {
                admin a(rc2.client, "q");
                asio::steady_timer t(co_await asio::this_coro::executor);
                const auto give_up = std::chrono::steady_clock::now() + 10s;
                while (std::chrono::steady_clock::now() < give_up) {
                    if (stalled && (co_await a.recover_stalled()).first > 0) break;
                    t.expires_after(10ms);
                    co_await t.async_wait(asio::use_awaitable);
                }
                recovered = true;
            }());
        });
        run_task(io, [&]() -> asio::awaitable<void> {
            const job_result r = co_await p.result(id, 15s);
            out.result = r.value;
        }());
        out.lost_leases = w.w.stats().lost_leases;
    }
    run_task(io, [&]() -> asio::awaitable<void> {
        admin a(rc.client, "q");
        out.completed = (co_await a.counts()).total_completed;
    }());
    return out;
}

} // namespace

TEST(TaskQueue, AStalledRunLearnsItsLeaseWasLostAndItsResultIsNotKept) {
    const stalled_run r = run_with_a_stall(1);
    EXPECT_EQ(r.result, "fresh");
    EXPECT_TRUE(r.saw_lost);
    EXPECT_NE(r.progress_error.find("its lease expired and it was recovered"), std::string::npos)
        << r.progress_error;
    EXPECT_EQ(r.lost_leases, 1u);
    EXPECT_EQ(r.completed, 1u);
    EXPECT_EQ(r.runs, 2);
}

// With a free handler the same worker may claim the recovered job while its stale run goes
// on: the new claim owns the job, the stale run is cancelled and its result not kept.
TEST(TaskQueue, AJobRecoveredAndClaimedAgainByItsOwnWorkerCompletesOnce) {
    const stalled_run r = run_with_a_stall(2);
    EXPECT_EQ(r.result, "fresh");
    EXPECT_EQ(r.lost_leases, 1u);
    EXPECT_EQ(r.completed, 1u);
    EXPECT_EQ(r.runs, 2);
}

namespace {
// A handler's wait until the test lets it go (let_go(gate)), whether it waits yet or not.
asio::awaitable<void> wait_at(asio::steady_timer& gate) {
    co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
}
void let_go(asio::steady_timer& gate) {
    gate.expires_at(asio::steady_timer::time_point::min());
}

std::size_t hash_len(asio::io_context& io, akv::client& c, const std::string& key) {
    long long n = -1;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("HLEN", key);
        akv::response<long long> resp;
        co_await c.exec(req, resp);
        n = std::get<0>(resp).value();
    }());
    return static_cast<std::size_t>(n);
}
} // namespace

// The registry of live workers: a running worker is listed with its figures, kept there by
// its heartbeats, and gone as soon as stop() has drained.
TEST(TaskQueue, ARunningWorkerIsListedLiveAndLeavesTheListOnStop) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    asio::steady_timer gate(io, asio::steady_timer::time_point::max());
    worker_options o;
    o.concurrency = 3;
    o.heartbeat = 50ms;
    worker w(
        rc.client, "q",
        [&](job_context&) -> asio::awaitable<std::string> {
            co_await wait_at(gate);
            co_return "done";
        },
        o);
    const auto before_run = akv::queue::detail::wall_ms();
    bool drained = false;
    asio::co_spawn(io, w.run(), [&](std::exception_ptr e) {
        EXPECT_FALSE(e);
        drained = true;
    });
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await p.enqueue("x");
        std::vector<worker_info> live;
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            live = co_await a.workers();
            co_return live.size() == 1 && live[0].running == 1;
        })) << live.size();
        if (live.size() != 1) co_return;
        const worker_info first = live[0];
        EXPECT_EQ(first.token, w.token());
        EXPECT_EQ(first.concurrency, 3u);
        EXPECT_EQ(first.pid, ::getpid());
        EXPECT_FALSE(first.host.empty());
        EXPECT_EQ(first.heartbeat, 50ms);
        EXPECT_FALSE(first.stopping);
        EXPECT_GE(first.started_ms, before_run);
        EXPECT_LE(first.started_ms, akv::queue::detail::wall_ms());
        EXPECT_GT(first.last_seen_ms, 0);
        EXPECT_EQ((co_await a.counts()).workers, 1u);

        // Still listed after more than 3 heartbeats: each one pushes its deadline on.
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            live = co_await a.workers();
            co_return live.size() == 1 && live[0].last_seen_ms >= first.last_seen_ms + 200;
        }));
        let_go(gate); // the job completes: the next heartbeat counts it
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            live = co_await a.workers();
            co_return live.size() == 1 && live[0].completed == 1 && live[0].running == 0;
        }));
        EXPECT_EQ(live.at(0).failed, 0u);
    }());
    w.stop();
    ASSERT_TRUE(run_until(
        io, [&] { return drained; }, 10s));
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_TRUE((co_await a.workers()).empty());
        EXPECT_EQ((co_await a.counts()).workers, 0u);
    }());
    EXPECT_EQ(hash_len(io, rc.client, "akvq:{q}:workers"), 0u);
}

TEST(TaskQueue, TheLastProgressIsKeptOnTheJobUntilItCompletes) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    asio::steady_timer gate(io, asio::steady_timer::time_point::max());
    running_worker w(io, rc.client, "q", [&](job_context& ctx) -> asio::awaitable<std::string> {
        co_await ctx.progress("10%");
        co_await ctx.progress("40%");
        co_await wait_at(gate);
        co_return "done";
    });
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto id = co_await p.enqueue("x");
        job_info info;
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            info = co_await a.get(id);
            co_return info.progress == "40%";
        })) << info.progress;
        EXPECT_EQ(info.state, job_state::active);
        let_go(gate);
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            info = co_await a.get(id);
            co_return info.state == job_state::completed;
        }));
        EXPECT_EQ(info.progress, "");
    }());
    EXPECT_EQ(hash_len(io, rc.client, "akvq:{q}:progress"), 0u); // nothing left behind
}

TEST(TaskQueue, AFailedJobKeepsItsProgressUntilItRunsAgain) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    int runs = 0;
    running_worker w(io, rc.client, "q", [&](job_context& ctx) -> asio::awaitable<std::string> {
        if (++runs == 1) {
            co_await ctx.progress("halfway");
            throw std::runtime_error("disk full");
        }
        co_return "done";
    });
    run_task(io, [&]() -> asio::awaitable<void> {
        job_options once;
        once.max_attempts = 1;
        const auto id = co_await p.enqueue("x", once);
        job_info info;
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            info = co_await a.get(id);
            co_return info.state == job_state::failed;
        }));
        EXPECT_EQ(info.progress, "halfway"); // how far the failed run got
        co_await a.retry(id);
        EXPECT_EQ((co_await a.get(id)).progress, ""); // the next run starts over
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return (co_await a.get(id)).state == job_state::completed;
        }));
    }());
    EXPECT_EQ(runs, 2);
    EXPECT_EQ(hash_len(io, rc.client, "akvq:{q}:progress"), 0u);
}
