// ./script/bench demo: seed 004's whole pipeline as ./script/demo runs it (akv-demo with
// akv-gateway, akv-worker, akv-batcher on a private redis-server), driven through the webhook,
// watched from the admin page in headless Chromium.
//
//   burst_N    N comments posted as fast as one client can (100 per request): comments/s from
//              the first POST until the page shows every signup; p50/p99 webhook -> page.
//   steady_R   R comments/s for a few seconds (25 per request): p50/p99 webhook -> page under a
//              load the pipeline keeps up with.
//
// Latency is the page's Date.now() minus the gateway's received_ms on the comment (one clock,
// one machine). No peer runs the same pipeline (Voluntree's RedisGears + RedisAI is what this
// replaces, and it is not packaged for Debian), so each line carries our figures only.
//
//   akv_bench_demo [--quick]
#include "demo_pipeline.hpp"

#include <cstdio>
#include <cstring>
#include <iostream>
#include <thread>

using namespace akv::bench;

namespace {

double quantile(const std::vector<double>& sorted, double q) {
    return sorted.empty() ? 0 : sorted[static_cast<std::size_t>(q * double(sorted.size() - 1))];
}

void burst(demo_pipeline& p, std::size_t n) {
    akv::app::http_poster http("http://127.0.0.1:" + std::to_string(p.port));
    const std::string post = p.open_post(http, "burst of " + std::to_string(n));
    akv::demo::load_options o;
    o.comments = n;
    o.per_request = 100;
    o.run = "burst";
    const auto start = std::chrono::steady_clock::now();
    const auto sent = akv::demo::post_comments(http, post, o);
    const std::string expected = std::to_string(sent.interested);
    if (!p.wait("window.demo.signups.size >= " + expected, 300s, 5ms))
        throw std::runtime_error("burst: the page never showed " + expected + " signups");
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto lat = p.latencies();
    std::printf("{\"bench\":\"demo\",\"scenario\":\"burst_%zu\",\"comments\":%zu,\"signups\":%zu,"
                "\"comments_per_s\":%.0f,\"post_seconds\":%.3f,\"total_seconds\":%.3f,"
                "\"p50_webhook_to_page_ms\":%.0f,\"p99_webhook_to_page_ms\":%.0f,\"peer\":null}\n",
                n, n, sent.interested, double(n) / seconds, sent.seconds, seconds,
                quantile(lat, 0.5), quantile(lat, 0.99));
    std::fflush(stdout);
}

void steady(demo_pipeline& p, std::size_t per_second, std::chrono::seconds length) {
    akv::app::http_poster http("http://127.0.0.1:" + std::to_string(p.port));
    const std::string post = p.open_post(http, "steady " + std::to_string(per_second) + "/s");
    const std::size_t per_request = 25;
    const auto interval = std::chrono::duration<double>(double(per_request) / double(per_second));
    const std::size_t requests =
        static_cast<std::size_t>(double(length.count()) * double(per_second) / per_request);
    std::size_t interested = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t r = 0; r < requests; ++r) {
        std::this_thread::sleep_until(
            start +
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval * double(r)));
        akv::demo::load_options o;
        o.comments = per_request;
        o.per_request = per_request;
        o.run = "steady" + std::to_string(r);
        interested += akv::demo::post_comments(http, post, o).interested;
    }
    const std::string expected = std::to_string(interested);
    if (!p.wait("window.demo.signups.size >= " + expected, 120s))
        throw std::runtime_error("steady: the page never showed " + expected + " signups");
    const auto lat = p.latencies();
    std::printf(
        "{\"bench\":\"demo\",\"scenario\":\"steady_%zu\",\"comments\":%zu,\"signups\":%zu,"
        "\"comments_per_s\":%zu,\"p50_webhook_to_page_ms\":%.0f,\"p99_webhook_to_page_ms\":%.0f,"
        "\"max_webhook_to_page_ms\":%.0f,\"peer\":null}\n",
        per_second, requests * per_request, interested, per_second, quantile(lat, 0.5),
        quantile(lat, 0.99), lat.empty() ? 0.0 : lat.back());
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            ++i; // ./script/bench passes it to every benchmark; these scenarios run once
        } else {
            std::cerr << "usage: akv_bench_demo [--quick]\n";
            return 2;
        }
    }
    if (!std::filesystem::exists(chromium_path())) {
        std::cerr << "akv_bench_demo: " << chromium_path()
                  << " is not installed (script/deps installs it)\n";
        return 1;
    }
    try {
        demo_pipeline p;
        steady(p, quick ? 200 : 500, quick ? 3s : 6s);
        burst(p, quick ? 2000 : 10000);
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_demo: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
