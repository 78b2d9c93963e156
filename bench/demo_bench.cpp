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
#include "support/cdp.hpp"

#include "demo/load.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <regex>
#include <thread>

#ifndef AKV_BIN_DIR
#error "AKV_BIN_DIR must name the directory of the bundled binaries (bench/CMakeLists.txt)"
#endif

using namespace akv::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

struct pipeline {
    temp_dir data{"akv-bench-demo-"};
    std::uint16_t port = free_port();
    child_process demo{{std::string(AKV_BIN_DIR) + "/akv-demo", "--data-dir", data.path().string(),
                        "--listen", "127.0.0.1:" + std::to_string(port), "--log-level", "warn"},
                       {},
                       data.path() / "demo.log"};
    std::optional<headless_chromium> browser;
    std::string page;

    pipeline() {
        const std::regex ready(R"(akv-demo: open http://)");
        if (!poll_until([&] { return std::regex_search(demo.log(), ready) || !demo.running(); },
                        60s) ||
            !demo.running())
            throw std::runtime_error("akv-demo did not start:\n" + demo.log_tail());
        browser.emplace(chromium_path(), 20s);
        page = browser->new_page();
    }

    json::value eval(const std::string& expression) {
        return browser->cdp().evaluate(page, expression, false);
    }

    bool wait(const std::string& expression, std::chrono::milliseconds limit,
              std::chrono::milliseconds every = 20ms) {
        return poll_until(
            [&] {
                try {
                    const json::value v = eval(expression);
                    return v.is_bool() && v.get_bool();
                } catch (const std::exception&) {
                    return false;
                }
            },
            limit, every);
    }

    // A new post, opened on the page.
    std::string open_post(akv::app::http_poster& http, const std::string& title) {
        const std::string post = akv::demo::create_post(http, title);
        browser->cdp().navigate(page,
                                "http://127.0.0.1:" + std::to_string(port) + "/?post=" + post);
        if (!wait("window.demo.post === '" + post +
                      "' && document.getElementById('state').textContent === "
                      "'connected'",
                  30s))
            throw std::runtime_error("the page did not open post " + post);
        return post;
    }

    std::vector<double> latencies() {
        const json::value v =
            json::parse(eval("JSON.stringify(window.demo.latencies)").as_string());
        std::vector<double> out;
        for (const auto& x : v.as_array())
            out.push_back(x.to_number<double>());
        std::sort(out.begin(), out.end());
        return out;
    }
};

double quantile(const std::vector<double>& sorted, double q) {
    return sorted.empty() ? 0 : sorted[static_cast<std::size_t>(q * double(sorted.size() - 1))];
}

void burst(pipeline& p, std::size_t n) {
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

void steady(pipeline& p, std::size_t per_second, std::chrono::seconds length) {
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
        pipeline p;
        steady(p, quick ? 200 : 500, quick ? 3s : 6s);
        burst(p, quick ? 2000 : 10000);
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_demo: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
