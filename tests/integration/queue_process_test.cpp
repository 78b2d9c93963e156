// Task queue across processes: workers are child processes (akv_queue_test_worker) that are
// killed, stopped gracefully, or outlive a server crash, against a real redis-server. The
// handler of a child records each run in the hash akvtest:{<queue>}:runs (payload -> runs), so
// the test sees what ran and how often: every job at least once, and duplicates counted.
#include "support/child_worker.hpp"
#include "support/eventually.hpp"
#include "support/running_client.hpp"
#include "support/running_queue.hpp"

#include <akv/queue/admin.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <csignal>
#include <fcntl.h>
#include <iostream>
#include <optional>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace akv::test;
using namespace akv::queue;
using namespace std::chrono_literals;
namespace asio = boost::asio;

#ifndef AKV_QUEUE_WORKER_PATH
#error "AKV_QUEUE_WORKER_PATH must name the akv_queue_test_worker binary (tests/CMakeLists.txt)"
#endif

namespace {

struct worker_flags {
    std::string mode = "record";
    int concurrency = 16;
    int lease_ms = 30000;
    int slow_ms = 0;
    int grace_ms = 10000;
    int heartbeat_ms = 5000;
};

std::vector<std::string> worker_args(const akv::testing::embedded_server& server,
                                     const std::string& queue, const worker_flags& f) {
    return {"--redis",        server.url(),
            "--queue",        queue,
            "--mode",         f.mode,
            "--concurrency",  std::to_string(f.concurrency),
            "--lease-ms",     std::to_string(f.lease_ms),
            "--slow-ms",      std::to_string(f.slow_ms),
            "--grace-ms",     std::to_string(f.grace_ms),
            "--heartbeat-ms", std::to_string(f.heartbeat_ms)};
}

std::vector<new_job> numbered(std::size_t n, const job_options& o) {
    std::vector<new_job> jobs(n);
    for (std::size_t i = 0; i < n; ++i) {
        jobs[i].payload = std::to_string(i);
        jobs[i].options = o;
    }
    return jobs;
}

// Enqueues jobs "0" .. "n-1" in one bulk call and returns their ids.
std::vector<std::string> enqueue_numbered(asio::io_context& io, producer& p, std::size_t n,
                                          const job_options& o = {}) {
    std::vector<std::string> ids;
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto jobs = numbered(n, o);
        ids = co_await p.enqueue_bulk(jobs);
    }());
    return ids;
}

std::string runs_key(const std::string& queue) { return "akvtest:{" + queue + "}:runs"; }

asio::awaitable<long long> hash_len(akv::client& c, std::string key) {
    akv::request req;
    req.push("HLEN", key);
    akv::response<long long> resp;
    co_await c.exec(req, resp);
    co_return std::get<0>(resp).value();
}

// What the children recorded: runs of each job number 0..n-1.
struct run_tally {
    std::vector<long long> runs;
    std::size_t missing = 0;  // job numbers never run
    long long duplicates = 0; // runs beyond one per job
    std::size_t strangers = 0; // fields that are no job number of ours
};

asio::awaitable<run_tally> tally(akv::client& c, std::string queue, std::size_t n) {
    akv::request req;
    req.push("HGETALL", runs_key(queue));
    akv::response<std::vector<std::string>> resp;
    co_await c.exec(req, resp);
    const auto& flat = std::get<0>(resp).value();
    run_tally t;
    t.runs.assign(n, 0);
    for (std::size_t i = 0; i + 1 < flat.size(); i += 2) {
        const auto job = std::stoull(flat[i]);
        if (job >= n) {
            ++t.strangers;
            continue;
        }
        t.runs[job] = std::stoll(flat[i + 1]);
    }
    for (auto r : t.runs) {
        if (r < 1) ++t.missing;
        else t.duplicates += r - 1;
    }
    co_return t;
}

std::string describe(const state_counts& c) {
    return "waiting=" + std::to_string(c.waiting) + " delayed=" + std::to_string(c.delayed) +
           " active=" + std::to_string(c.active) + " failed=" + std::to_string(c.failed) +
           " total_completed=" + std::to_string(c.total_completed) +
           " total_failed=" + std::to_string(c.total_failed) +
           " total_retried=" + std::to_string(c.total_retried) +
           " total_recovered=" + std::to_string(c.total_recovered);
}

bool exited_zero(const std::optional<int>& status) {
    return status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}


} // namespace

// A worker SIGKILLed while it holds leases: another worker's renewer recovers them once they
// expire, and the jobs run there.
TEST(TaskQueueProcess, KilledWorkerJobIsCompletedByAnother) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    const std::string queue = "q";
    const std::size_t n = 20;
    enqueue_numbered(io, p, n);

    worker_flags slow;
    slow.mode = "slow";
    slow.slow_ms = 2000;
    slow.concurrency = 4;
    slow.lease_ms = 600;
    child_worker first(io, worker_args(server, "q", slow));
    ASSERT_TRUE(first.wait_ready(10s)) << first.output();
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return (co_await a.counts()).active > 0;
        }));
    }());
    first.kill_now(); // mid-run: its handlers are 2 s from recording anything

    worker_flags record;
    record.lease_ms = 600;
    child_worker second(io, worker_args(server, "q", record));
    ASSERT_TRUE(second.wait_ready(10s)) << second.output();
    const auto key = runs_key("q");
    const auto t0 = std::chrono::steady_clock::now();
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return static_cast<std::size_t>(co_await hash_len(rc.client, key)) == n;
        }, 20s)) << "not every job ran";
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            const auto c = co_await a.counts();
            co_return c.total_completed == n && c.active == 0;
        }, 10s));
        const auto t = co_await tally(rc.client, queue, n);
        EXPECT_EQ(t.missing, 0u);
        const auto c = co_await a.counts();
        EXPECT_GE(c.total_recovered, 1u) << describe(c);
        EXPECT_EQ(c.failed, 0u) << describe(c);
        EXPECT_EQ(c.total_failed, 0u) << describe(c);
        EXPECT_EQ(c.waiting, 0u) << describe(c);
        EXPECT_EQ(c.delayed, 0u) << describe(c);
        EXPECT_EQ(c.active, 0u) << describe(c);
        std::cout << "[ killed  ] all " << n << " jobs done " << seconds_since(t0)
                  << " s after the second worker was ready; recovered=" << c.total_recovered
                  << " duplicates=" << t.duplicates << "\n";
        RecordProperty("duplicates", static_cast<int>(t.duplicates));
    }());
}

// 100,000 jobs, four worker processes of 16 each, no faults: every job runs, none twice.
TEST(TaskQueueProcess, HundredThousandJobsThroughFourProcesses) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    const std::string queue = "q";
    const std::size_t n = 100000;
    auto t0 = std::chrono::steady_clock::now();
    run_task(io, [&]() -> asio::awaitable<void> {
        job_options o;
        o.result_ttl = 0ms; // keep no results: memory stays low
        const auto jobs = numbered(n, o);
        const auto ids = co_await p.enqueue_bulk(jobs);
        EXPECT_EQ(ids.size(), n);
    }());
    std::cout << "[ 100k    ] enqueued in " << seconds_since(t0) << " s\n";

    std::vector<std::unique_ptr<child_worker>> workers;
    worker_flags record;
    record.concurrency = 16;
    for (int i = 0; i < 4; ++i)
        workers.push_back(std::make_unique<child_worker>(io, worker_args(server, "q", record)));
    for (auto& w : workers) ASSERT_TRUE(w->wait_ready(10s)) << w->output();
    t0 = std::chrono::steady_clock::now();
    run_task(io, [&]() -> asio::awaitable<void> {
        state_counts last;
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            last = co_await a.counts();
            co_return last.total_completed == n;
        }, 120s)) << describe(last);
    }(), 150s);
    const double took = seconds_since(t0);

    for (auto& w : workers) w->signal(SIGTERM);
    std::string per_worker;
    for (auto& w : workers) {
        EXPECT_TRUE(exited_zero(w->wait_exit(15s))) << w->output();
        per_worker += " " + std::to_string(w->drained("completed"));
    }
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto t = co_await tally(rc.client, queue, n);
        const auto c = co_await a.counts();
        EXPECT_EQ(t.missing, 0u);
        EXPECT_EQ(t.strangers, 0u);
        EXPECT_EQ(c.waiting, 0u) << describe(c);
        EXPECT_EQ(c.active, 0u) << describe(c);
        EXPECT_EQ(c.failed, 0u) << describe(c);
        EXPECT_EQ(c.total_recovered, 0u) << describe(c);
        RecordProperty("duplicates", static_cast<int>(t.duplicates));
        RecordProperty("seconds", std::to_string(took));
        std::cout << "[ 100k    ] " << n << " jobs through 4 processes in " << took << " s ("
                  << static_cast<long long>(n / took) << " jobs/s); completed per worker:"
                  << per_worker << "; duplicates=" << t.duplicates << "\n";
        EXPECT_EQ(t.duplicates, 0) << "jobs ran more than once in a run without faults";
    }());
}

// SIGTERM with a grace longer than any run: the running jobs finish and are acked, the child
// exits 0 well within the grace, and a second worker does the rest; nothing runs twice.
TEST(TaskQueueProcess, GracefulShutdownLosesNothing) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    const std::string queue = "q";
    const std::size_t n = 200;
    enqueue_numbered(io, p, n);

    worker_flags slow;
    slow.mode = "slow";
    slow.slow_ms = 300;
    slow.concurrency = 8;
    slow.grace_ms = 5000;
    child_worker first(io, worker_args(server, "q", slow));
    ASSERT_TRUE(first.wait_ready(10s)) << first.output();
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return (co_await a.counts()).total_completed >= 16;
        }, 15s));
    }());
    const auto t0 = std::chrono::steady_clock::now();
    first.signal(SIGTERM);
    const auto status = first.wait_exit(5000ms + 2s);
    const double took = seconds_since(t0);
    ASSERT_TRUE(status) << "still running after the grace: " << first.output();
    EXPECT_TRUE(exited_zero(status)) << first.output();
    EXPECT_LT(took, 5.0) << "a graceful stop should not need the whole grace";
    // Running jobs finish within the grace; only prefetched ones (never started, at most
    // worker_options::prefetch of them) go back to the queue.
    EXPECT_LE(first.drained("handed_back"), static_cast<long long>(worker_options{}.prefetch))
        << first.output();
    const auto done_by_first = first.drained("completed");
    EXPECT_GE(done_by_first, 16) << first.output();

    run_task(io, [&]() -> asio::awaitable<void> {
        const auto c = co_await a.counts();
        EXPECT_EQ(c.active, 0u) << describe(c);
        EXPECT_EQ(c.total_completed, static_cast<std::uint64_t>(done_by_first)) << describe(c);
        EXPECT_EQ(c.waiting, n - c.total_completed) << describe(c);
    }());

    child_worker second(io, worker_args(server, "q", worker_flags{}));
    ASSERT_TRUE(second.wait_ready(10s)) << second.output();
    run_task(io, [&]() -> asio::awaitable<void> {
        state_counts last;
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            last = co_await a.counts();
            co_return last.total_completed == n;
        }, 20s)) << describe(last);
        const auto t = co_await tally(rc.client, queue, n);
        EXPECT_EQ(t.missing, 0u);
        for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(t.runs[i], 1) << "job " << i;
        const auto c = co_await a.counts();
        EXPECT_EQ(c.total_recovered, 0u) << describe(c);
        EXPECT_EQ(c.failed, 0u) << describe(c);
        std::cout << "[ graceful] first worker did " << done_by_first << " and exited "
                  << took << " s after SIGTERM; duplicates=" << t.duplicates << "\n";
        RecordProperty("duplicates", static_cast<int>(t.duplicates));
    }());
}

// SIGTERM with runs far longer than the grace: they are cancelled and handed back, to waiting,
// with no attempt counted, and the child exits promptly.
TEST(TaskQueueProcess, ShutdownPastGraceHandsJobsBack) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    const std::string queue = "q";
    const std::size_t n = 8;
    const std::vector<std::string> ids = enqueue_numbered(io, p, n);

    worker_flags slow;
    slow.mode = "slow";
    slow.slow_ms = 10000;
    slow.concurrency = 8;
    slow.grace_ms = 200;
    child_worker w(io, worker_args(server, "q", slow));
    ASSERT_TRUE(w.wait_ready(10s)) << w.output();
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return (co_await a.counts()).active == n;
        }));
    }());
    const auto t0 = std::chrono::steady_clock::now();
    w.signal(SIGTERM);
    const auto status = w.wait_exit(5s);
    const double took = seconds_since(t0);
    ASSERT_TRUE(status) << "still running 5 s after SIGTERM: " << w.output();
    EXPECT_TRUE(exited_zero(status)) << w.output();
    EXPECT_LT(took, 3.0);
    EXPECT_EQ(w.drained("handed_back"), static_cast<long long>(n)) << w.output();
    EXPECT_EQ(w.drained("completed"), 0) << w.output();
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto c = co_await a.counts();
        EXPECT_EQ(c.waiting, n) << describe(c);
        EXPECT_EQ(c.active, 0u) << describe(c);
        EXPECT_EQ(c.delayed, 0u) << describe(c);
        EXPECT_EQ(c.failed, 0u) << describe(c);
        EXPECT_EQ(c.total_retried, 0u) << describe(c);
        EXPECT_EQ(c.total_recovered, 0u) << describe(c);
        for (const auto& id : ids) {
            const auto info = co_await a.get(id);
            EXPECT_EQ(info.state, job_state::waiting) << "job " << id;
            EXPECT_EQ(info.failures, 0u) << "job " << id;
        }
        const auto key = runs_key("q");
        EXPECT_EQ(co_await hash_len(rc.client, key), 0) << "a handed-back job recorded a run";
        std::cout << "[ handback] exited " << took << " s after SIGTERM\n";
    }());
}

// The server is SIGKILLed mid-run and started again on its AOF (appendfsync always): the
// child's client reconnects by itself and every job still runs.
TEST(TaskQueueProcess, ServerRestartWithAofLosesNoJob) {
    akv::testing::embedded_server_options so;
    so.append_only = true;
    akv::testing::embedded_server server(so);
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    const std::string queue = "q";
    const std::size_t n = 2000;
    enqueue_numbered(io, p, n);

    // 10 ms per run and 16 at once: about 1,600 jobs/s, so "half done" can be caught.
    worker_flags f;
    f.mode = "slow";
    f.slow_ms = 10;
    f.concurrency = 16;
    f.lease_ms = 1000; // a claim whose reply died with the server comes back within a second
    child_worker w(io, worker_args(server, "q", f));
    ASSERT_TRUE(w.wait_ready(10s)) << w.output();
    std::uint64_t at_kill = 0;
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            // Runs as the handlers record them: the queue's totals arrive once a second.
            const std::string key = runs_key(queue);
            at_kill = static_cast<std::uint64_t>(co_await hash_len(rc.client, key));
            co_return at_kill >= n / 2;
        }, 20s));
    }());
    server.kill();
    const auto t0 = std::chrono::steady_clock::now();
    server.start();
    const double down = seconds_since(t0);
    EXPECT_LT(at_kill, n) << "every job was done before the kill: the restart tested nothing";

    const auto key = runs_key("q");
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return static_cast<std::size_t>(co_await hash_len(rc.client, key)) == n;
        }, 60s)) << "not every job ran";
        state_counts last;
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            last = co_await a.counts();
            co_return last.waiting == 0 && last.active == 0 && last.delayed == 0;
        }, 20s)) << describe(last);
        const auto t = co_await tally(rc.client, queue, n);
        const auto c = co_await a.counts();
        EXPECT_EQ(t.missing, 0u);
        EXPECT_EQ(c.failed, 0u) << describe(c);
        std::cout << "[ restart ] killed at " << at_kill << "/" << n << " completed, server back in "
                  << down << " s; all ran " << seconds_since(t0) << " s after the kill; "
                  << describe(c) << "; duplicates=" << t.duplicates << "\n";
        RecordProperty("duplicates", static_cast<int>(t.duplicates));
    }(), 90s);
    w.signal(SIGTERM);
    EXPECT_TRUE(exited_zero(w.wait_exit(10s))) << w.output();
}

// In-process: an idle worker on a queue that never had jobs, bad queue names, and a job whose
// stored record was corrupted.
TEST(TaskQueueProcess, UnknownQueueAndBadPayload) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());

    // Bad queue names.
    for (const std::string name : {"a{b}", ""}) {
        bool refused = false;
        try {
            producer p(rc.client, name);
        } catch (const boost::system::system_error& e) {
            refused = e.code() == akv::error::invalid_config;
            EXPECT_TRUE(refused) << "\"" << name << "\": " << e.what();
        }
        EXPECT_TRUE(refused) << "queue name \"" << name << "\" accepted";
    }

    // A queue that never had a job: the worker blocks on its marker, quietly.
    std::vector<std::string> seen_never;
    worker_options idle;
    idle.idle_wait = 100ms;
    running_worker never(io, rc.client, "never", [&](job_context& ctx) -> asio::awaitable<std::string> {
        seen_never.push_back(ctx.job().payload);
        co_return "";
    }, idle);
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            akv::request req;
            req.push("INFO", "clients");
            akv::response<std::string> resp;
            co_await rc.client.exec(req, resp);
            co_return std::get<0>(resp).value().find("\r\nblocked_clients:1\r\n") != std::string::npos;
        })) << "the idle worker never blocked on the queue's marker";
    }());
    // Several idle_wait rounds: run() goes on and nothing fails.
    EXPECT_FALSE(run_until(io, [&] { return never.finished; }, 5 * idle.idle_wait));
    EXPECT_EQ(never.w.stats().errors, 0u);
    EXPECT_EQ(never.w.stats().claims, 0u);
    EXPECT_TRUE(seen_never.empty());
    {
        producer p(rc.client, "never");
        run_task(io, [&]() -> asio::awaitable<void> { co_await p.enqueue("first"); }());
        ASSERT_TRUE(run_until(io, [&] { return !seen_never.empty(); }, 5s))
            << "the idle worker did not take the queue's first job";
    }

    // A job whose record is garbage: to the failed set naming the job; the others run.
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    const std::string queue = "q";
    std::string bad;
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await p.enqueue("before");
        bad = co_await p.enqueue("bad");
        akv::request req;
        req.push("HSET", "akvq:{q}:jobs", bad, "garbage");
        akv::response<long long> resp;
        co_await rc.client.exec(req, resp);
        co_await p.enqueue("after");
    }());
    std::vector<std::string> seen;
    running_worker w(io, rc.client, "q", [&](job_context& ctx) -> asio::awaitable<std::string> {
        seen.push_back(ctx.job().payload);
        co_return "";
    }, worker_options{});
    run_task(io, [&]() -> asio::awaitable<void> {
        state_counts last;
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            last = co_await a.counts();
            co_return last.failed == 1 && last.total_completed == 2;
        })) << describe(last);
        const std::vector<std::string> only_bad(1, bad);
        const auto failed = co_await a.list(job_state::failed, 0, 10);
        EXPECT_EQ(failed, only_bad);
        akv::request req;
        req.push("HGET", "akvq:{q}:errors", bad);
        akv::response<std::optional<std::string>> resp;
        co_await rc.client.exec(req, resp);
        const auto error = std::get<0>(resp).value().value_or("");
        EXPECT_NE(error.find("job " + bad), std::string::npos) << error;
        // The admin view of that job still works: state and error, without a decodable record.
        try {
            const auto info = co_await a.get(bad);
            EXPECT_EQ(info.state, job_state::failed);
            EXPECT_NE(info.last_error.find("job " + bad), std::string::npos) << info.last_error;
        } catch (const boost::system::system_error& e) {
            // admin::get decodes the record whenever it exists, and a failed job keeps its
            // record (for retry): the one job whose failure is its record cannot be looked at.
            ADD_FAILURE() << "admin::get of the failed, corrupted job threw: " << e.what();
        }
        co_await p.enqueue("later");
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return (co_await a.counts()).total_completed == 3;
        }));
    }());
    const std::vector<std::string> expected{"before", "after", "later"};
    EXPECT_EQ(seen, expected);
    EXPECT_FALSE(w.finished);
}

// A worker that dies without a word (SIGKILL: no stop(), no goodbye) leaves the live list once
// it misses 3 heartbeats, however it died.
TEST(TaskQueueProcess, AKilledWorkerLeavesTheLiveListWithinThreeHeartbeats) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    admin a(rc.client, "q");
    worker_flags f;
    f.heartbeat_ms = 100;
    child_worker child(io, worker_args(server, "q", f));
    ASSERT_TRUE(child.wait_ready(10s)) << child.output();
    const std::string token = child.token();
    const pid_t pid = child.pid();
    run_task(io, [&]() -> asio::awaitable<void> {
        std::vector<worker_info> live;
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            live = co_await a.workers();
            co_return live.size() == 1;
        }));
        if (live.size() != 1) co_return;
        EXPECT_EQ(live[0].token, token);
        EXPECT_EQ(live[0].pid, pid);
        EXPECT_EQ(live[0].heartbeat, 100ms);
        EXPECT_EQ((co_await a.counts()).workers, 1u);
    }());

    child.kill_now();
    const auto killed = std::chrono::steady_clock::now();
    run_task(io, [&]() -> asio::awaitable<void> {
        // counts() reads deadlines and prunes nothing: the drop is the deadline's doing.
        EXPECT_TRUE(co_await eventually(
            [&]() -> asio::awaitable<bool> { co_return (co_await a.counts()).workers == 0; }, 5s));
        const double gone_after = seconds_since(killed);
        std::cout << "[ killed  ] off the live list " << gone_after * 1000 << " ms after SIGKILL"
                  << " (bound: 3 heartbeats of 100 ms)\n";
        // The bound, with room for a busy machine's scheduling.
        EXPECT_LT(gone_after, 0.3 + 0.7);
        EXPECT_TRUE((co_await a.workers()).empty());
        akv::request req;
        req.push("HLEN", "akvq:{q}:workers");
        req.push("ZCARD", "akvq:{q}:workers:seen");
        akv::response<long long, long long> resp;
        co_await rc.client.exec(req, resp);
        EXPECT_EQ(std::get<0>(resp).value(), 0); // pruned, not only hidden
        EXPECT_EQ(std::get<1>(resp).value(), 0);
    }());
}
