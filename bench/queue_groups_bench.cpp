// ./script/bench queue_groups: what fair groups (job_options::group) buy and cost.
//
//   groups_fairness    issue #23's case in seconds: nine groups of 100 jobs, alone, then enqueued
//                      after one group of 100,000 (16 handlers, each job 1 ms of work). Ours
//                      with groups against the same jobs in a plain FIFO queue, which is what
//                      open-source BullMQ and Celery give (BullMQ's groups are in its paid Pro
//                      edition, so no peer runs them here). Goal: the small groups finish
//                      within 2x their time alone.
//   groups_throughput  100,000 no-op jobs spread over 10 groups against the same ungrouped:
//                      jobs/s and Redis CPU per job, the price of the round robin.
// --quick: 20,000 jobs in the big group and in the throughput scenario.
#include "bench_support.hpp"

#include <akv/client.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// `n` jobs of `group` ("": none), each with `payload`.
asio::awaitable<void> add(akv::client& redis, const std::string& group, std::size_t n,
                          const std::string& payload) {
    akv::queue::producer p(redis, "bench");
    akv::queue::job_options o;
    o.group = group;
    std::vector<akv::queue::new_job> jobs;
    for (std::size_t done = 0; done < n; done += jobs.size()) {
        jobs.assign(std::min<std::size_t>(5000, n - done), akv::queue::new_job{payload, o});
        co_await p.enqueue_bulk(jobs);
    }
}

// Runs a worker until `done()` says so; the seconds it took from its start.
asio::awaitable<double> run_until(akv::client& redis, akv::queue::handler h,
                                  std::function<bool()> done, std::size_t concurrency) {
    akv::queue::worker_options wo;
    wo.concurrency = concurrency;
    akv::queue::worker w(redis, "bench", std::move(h), wo);
    const auto ex = co_await asio::this_coro::executor;
    bool finished = false;
    asio::steady_timer wake(ex, asio::steady_timer::time_point::max());
    const auto start = clock_type::now();
    asio::co_spawn(ex, w.run(), [&](std::exception_ptr) {
        finished = true;
        wake.cancel();
    });
    asio::steady_timer tick(ex);
    while (!done()) {
        tick.expires_after(1ms);
        co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    const double seconds = akv::bench::seconds_between(start, clock_type::now());
    w.stop();
    while (!finished)
        co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return seconds;
}

// Seconds until the nine small groups' 900 jobs are done, with `big` jobs ahead of them.
asio::awaitable<double> small_groups_done(akv::client& redis, std::size_t big, bool grouped) {
    co_await akv::bench::flushall(redis);
    // Named first: g++ 12 frees a temporary string made inside a co_await expression twice.
    const std::string big_name = "big", none;
    if (big > 0) co_await add(redis, grouped ? big_name : none, big, big_name);
    for (int g = 0; g < 9; ++g) {
        const std::string name = "small" + std::to_string(g);
        co_await add(redis, grouped ? name : none, 100, name);
    }
    std::size_t small_done = 0;
    auto handler = [&](akv::queue::job_context& ctx) -> asio::awaitable<std::string> {
        asio::steady_timer work(co_await asio::this_coro::executor, 1ms);
        co_await work.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ctx.job().payload.rfind("small", 0) == 0) ++small_done;
        co_return "";
    };
    co_return co_await run_until(redis, handler, [&] { return small_done == 900; }, 16);
}

struct throughput {
    double jobs_per_s = 0, redis_cpu_us_per_job = 0;
};

asio::awaitable<throughput> drain(akv::client& redis, std::size_t n, bool grouped) {
    co_await akv::bench::flushall(redis);
    const std::string none, payload = "x";
    for (int g = 0; g < 10; ++g) {
        const std::string name = grouped ? "g" + std::to_string(g) : none;
        co_await add(redis, name, n / 10, payload);
    }
    std::size_t done = 0;
    auto handler = [&](akv::queue::job_context&) -> asio::awaitable<std::string> {
        ++done;
        co_return "";
    };
    const double cpu0 = co_await akv::bench::redis_cpu_seconds(redis);
    const double seconds = co_await run_until(redis, handler, [&] { return done == n; }, 100);
    const double cpu1 = co_await akv::bench::redis_cpu_seconds(redis);
    co_return throughput{static_cast<double>(n) / seconds, (cpu1 - cpu0) * 1e6 / n};
}

} // namespace

int main(int argc, char** argv) {
    const auto quick = akv::bench::quick_option(argc, argv, "akv_bench_queue_groups");
    if (!quick) return 2;
    const std::size_t big = *quick ? 20000 : 100000;
    try {
        akv::testing::embedded_server server;
        akv::bench::run_with_client(
            server.config(), [&](akv::client& redis) -> asio::awaitable<void> {
                const double alone = co_await small_groups_done(redis, 0, true);
                const double fair = co_await small_groups_done(redis, big, true);
                const double fifo = co_await small_groups_done(redis, big, false);
                akv::bench::json_line line;
                line.text("bench", "queue_groups").text("scenario", "groups_fairness");
                line.number("big_group_jobs", static_cast<double>(big), 0);
                line.number("small_alone_s", alone, 3);
                line.number("small_with_burst_grouped_s", fair, 3);
                line.number("small_with_burst_fifo_s", fifo, 3);
                line.number("grouped_slowdown", fair / alone, 2);
                line.number("fifo_slowdown", fifo / alone, 2);
                line.text("goal", "grouped_slowdown<=2");
                line.set("goal_met", fair / alone <= 2);
                line.print();

                const throughput grouped = co_await drain(redis, big, true);
                const throughput plain = co_await drain(redis, big, false);
                akv::bench::json_line t;
                t.text("bench", "queue_groups").text("scenario", "groups_throughput");
                t.number("jobs", static_cast<double>(big), 0);
                t.number("grouped_jobs_per_s", grouped.jobs_per_s, 0);
                t.number("ungrouped_jobs_per_s", plain.jobs_per_s, 0);
                t.number("ratio", grouped.jobs_per_s / plain.jobs_per_s, 2);
                t.number("grouped_redis_cpu_us_per_job", grouped.redis_cpu_us_per_job, 2);
                t.number("ungrouped_redis_cpu_us_per_job", plain.redis_cpu_us_per_job, 2);
                t.print();
            });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "akv_bench_queue_groups: %s\n", e.what());
        return 1;
    }
    return 0;
}
