// ./script/bench console: what the operator's console costs (issue #22's two goals).
//
//   sampler_100_queues  the Redis CPU one sampler takes per second (one snapshot a second:
//                       100 queues found and counted, the streams, INFO, the slow log).
//                       Goal: <= 1 ms of Redis CPU per second per gateway process.
//   page_100k_jobs      what a page load asks the API (whoami, queues, the queue with its
//                       hour, a page of 50 jobs from the middle) with 100,000 jobs waiting in
//                       one queue: paging is on the server, never a full scan. Goal: < 1 s.
//
// No peer runs the same work: Bull Board and Flower have no sampler shared by their pages (each
// open page polls Redis itself), so the goals are absolute. --quick: 10,000 jobs, 5 samples.
#include "bench_support.hpp"

#include <akv/client.hpp>
#include <akv/console/api.hpp>
#include <akv/console/sampler.hpp>
#include <akv/queue/producer.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {

asio::awaitable<void> fill(akv::client& redis, std::size_t big_jobs) {
    co_await akv::bench::flushall(redis);
    for (int q = 0; q < 100; ++q) {
        akv::queue::producer p(redis, "queue" + std::to_string(q));
        for (int j = 0; j < 10; ++j)
            co_await p.enqueue("{\"n\":" + std::to_string(j) + "}");
    }
    akv::queue::producer big(redis, "big");
    std::vector<akv::queue::new_job> jobs(5000);
    for (std::size_t done = 0; done < big_jobs; done += jobs.size()) {
        for (std::size_t i = 0; i < jobs.size(); ++i)
            jobs[i].payload = "{\"n\":" + std::to_string(done + i) + "}";
        co_await big.enqueue_bulk(jobs);
    }
}

} // namespace

int main(int argc, char** argv) {
    const std::optional<bool> quick_arg = akv::bench::quick_option(argc, argv, "akv_bench_console");
    if (!quick_arg) return 2;
    const bool quick = *quick_arg;
    const std::size_t big_jobs = quick ? 10000 : 100000;
    const int samples = quick ? 5 : 30;
    try {
        akv::testing::embedded_server server;
        akv::bench::run_with_client(
            server.config(), [&](akv::client& redis) -> asio::awaitable<void> {
                co_await fill(redis, big_jobs);

                // One sample a second is the sampler's rate: its Redis CPU per sample is its
                // Redis CPU per second.
                akv::console::sampler s(redis);
                co_await s.sample(); // warm: scripts loaded, connections made
                const double cpu0 = co_await akv::bench::redis_cpu_seconds(redis);
                const auto t0 = clock_type::now();
                std::size_t bytes = 0;
                for (int i = 0; i < samples; ++i)
                    bytes += (co_await s.sample()).size();
                const double wall = akv::bench::seconds_between(t0, clock_type::now());
                const double cpu1 = co_await akv::bench::redis_cpu_seconds(redis);
                // INFO cpu itself costs a little: subtract one INFO's worth by measuring it.
                const double info0 = co_await akv::bench::redis_cpu_seconds(redis);
                for (int i = 0; i < samples; ++i)
                    co_await akv::bench::redis_cpu_seconds(redis);
                const double info1 = co_await akv::bench::redis_cpu_seconds(redis);
                const double per_sample_ms =
                    std::max(0.0, (cpu1 - cpu0) - (info1 - info0)) * 1000 / samples;
                std::printf(
                    "{\"bench\":\"console\",\"scenario\":\"sampler_100_queues\",\"queues\":101,"
                    "\"samples\":%d,\"redis_cpu_ms_per_s\":%.3f,\"client_ms_per_sample\":%.3f,"
                    "\"snapshot_bytes\":%zu,\"goal\":\"redis_cpu_ms_per_s<=1\","
                    "\"goal_met\":%s}\n",
                    samples, per_sample_ms, wall * 1000 / samples, bytes / samples,
                    per_sample_ms <= 1 ? "true" : "false");
                std::fflush(stdout);

                // A page load's API calls, through the console's own handler.
                akv::console::options co;
                co.password = "bench";
                const auto api = akv::console::api(redis, co);
                auto ask = [&](std::string path, std::string query) {
                    akv::gateway::http_request req;
                    req.method = "GET";
                    req.path = std::move(path);
                    req.query = std::move(query);
                    req.headers["authorization"] = "Basic b3BzOmJlbmNo"; // ops:bench
                    return api(std::move(req));
                };
                double worst = 0, total = 0;
                const int loads = quick ? 3 : 10;
                std::size_t jobs_on_page = 0;
                for (int i = 0; i < loads; ++i) {
                    const auto start = clock_type::now();
                    co_await ask("/console/api/whoami", "");
                    co_await ask("/console/api/queues", "");
                    co_await ask("/console/api/queues/big", "");
                    const auto page = co_await ask(
                        "/console/api/queues/big/jobs",
                        "state=waiting&offset=" + std::to_string(big_jobs / 2) + "&limit=50");
                    jobs_on_page = 0;
                    for (auto at = page.body.find("\"id\":"); at != std::string::npos;
                         at = page.body.find("\"id\":", at + 1))
                        ++jobs_on_page;
                    const double s = akv::bench::seconds_between(start, clock_type::now());
                    worst = std::max(worst, s);
                    total += s;
                }
                std::printf("{\"bench\":\"console\",\"scenario\":\"page_100k_jobs\",\"jobs\":%zu,"
                            "\"loads\":%d,\"mean_ms\":%.2f,\"worst_ms\":%.2f,\"jobs_on_page\":%zu,"
                            "\"goal\":\"worst_ms<1000\",\"goal_met\":%s}\n",
                            big_jobs, loads, total * 1000 / loads, worst * 1000, jobs_on_page,
                            worst < 1 ? "true" : "false");
            });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "akv_bench_console: %s\n", e.what());
        return 1;
    }
    return 0;
}
