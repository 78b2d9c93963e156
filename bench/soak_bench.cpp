// ./script/bench soak [--minutes N] [--rate R]: the demo pipeline (akv-demo: gateway, worker,
// batcher, redis-server; the admin page open in headless Chromium) fed R comments/s through
// the webhook for N minutes, with the resident memory (VmRSS) of every process sampled every
// few seconds. The goal: flat memory after warm-up. Redis's own memory grows with the data it
// keeps (streams trimmed at 100,000 entries, the post's history, job results for an hour), so
// its line is data, not a leak; ours must not grow.
//
// One JSON line per sample, then one summary line per process: RSS at the end of warm-up (the
// first fifth of the run, at least 20 s) and at the end, and the growth in between.
#include "demo_pipeline.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

using namespace akv::bench;

namespace {

long rss_kb(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

} // namespace

int main(int argc, char** argv) {
    double minutes = 1;
    std::size_t rate = 200;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--minutes" && i + 1 < argc) {
            minutes = std::stod(argv[++i]);
        } else if (a == "--rate" && i + 1 < argc) {
            rate = std::stoul(argv[++i]);
        } else if (a == "--quick") {
            minutes = 0.5;
        } else if (a == "--rounds" && i + 1 < argc) {
            ++i; // ./script/bench passes it to every benchmark: one soak is one round
        } else {
            std::cerr << "usage: akv_bench_soak [--minutes N] [--rate COMMENTS_PER_S] [--quick]\n";
            return 2;
        }
    }
    if (minutes <= 0 || rate == 0) {
        std::cerr << "akv_bench_soak: --minutes and --rate must be positive\n";
        return 2;
    }
    if (!std::filesystem::exists(chromium_path())) {
        std::cerr << "akv_bench_soak: " << chromium_path() << " is not installed (script/deps installs it)\n";
        return 1;
    }
    try {
        demo_pipeline p;
        akv::app::http_poster http("http://127.0.0.1:" + std::to_string(p.port));
        const std::string post = p.open_post(http, "soak");
        std::map<std::string, int> pids;
        for (const char* name : {"akv-gateway", "akv-worker", "akv-batcher", "redis-server"})
            pids[name] = child_pid(p.demo.pid(), name);
        pids["akv-demo"] = p.demo.pid();

        const auto length = std::chrono::duration<double>(minutes * 60);
        const auto warmup = std::max(std::chrono::duration<double>(20), length / 5);
        const auto sample_every = std::chrono::seconds(minutes > 2 ? 10 : 5);
        const std::size_t per_request = std::max<std::size_t>(1, rate / 10); // ten requests a second
        const auto start = std::chrono::steady_clock::now();
        auto next_sample = start;
        std::size_t sent = 0, request = 0;
        std::map<std::string, long> at_warmup, last;
        bool warm = false;
        for (;;) {
            const auto now = std::chrono::steady_clock::now();
            if (now - start >= length) break;
            if (now >= next_sample) {
                const double t = std::chrono::duration<double>(now - start).count();
                std::string line = "{\"bench\":\"soak\",\"t_s\":" + std::to_string(static_cast<long>(t)) +
                                   ",\"comments\":" + std::to_string(sent) + ",\"rss_kb\":{";
                bool first = true;
                for (const auto& [name, pid] : pids) {
                    last[name] = pid > 0 ? rss_kb(pid) : -1;
                    line += (first ? "\"" : ",\"") + name + "\":" + std::to_string(last[name]);
                    first = false;
                }
                std::printf("%s}}\n", line.c_str());
                std::fflush(stdout);
                if (!warm && now - start >= warmup) {
                    warm = true;
                    at_warmup = last;
                }
                next_sample += sample_every;
            }
            akv::demo::load_options o;
            o.comments = per_request;
            o.per_request = per_request;
            o.run = "soak" + std::to_string(request);
            akv::demo::post_comments(http, post, o);
            sent += per_request;
            ++request;
            std::this_thread::sleep_until(start + std::chrono::milliseconds(100) * request);
        }
        for (const auto& [name, pid] : pids) {
            const long end = pid > 0 ? rss_kb(pid) : -1;
            const long warmed = at_warmup.count(name) ? at_warmup[name] : -1;
            const double growth = warmed > 0 ? 100.0 * double(end - warmed) / double(warmed) : 0;
            std::printf("{\"bench\":\"soak\",\"process\":\"%s\",\"minutes\":%.1f,\"rate\":%zu,\"comments\":%zu,"
                        "\"rss_kb_after_warmup\":%ld,\"rss_kb_end\":%ld,\"growth_pct\":%.1f,\"peer\":null}\n",
                        name.c_str(), minutes, rate, sent, warmed, end, growth);
        }
        // Every process still up: nothing died under the soak.
        for (const auto& [name, pid] : pids)
            if (pid <= 0 || rss_kb(pid) < 0) throw std::runtime_error(name + " is gone");
        // And the page still follows: once the pipeline drains it shows every signup written.
        // (It once stopped reading at ~100,000 signups, its list grown without end.)
        const bool following = p.wait(
            "window.demo.stats && window.demo.stats.written > 0 && "
            "window.demo.signups.size === window.demo.stats.written",
            120s);
        const std::string page = p.eval("String(window.demo.signups.size)").as_string().c_str();
        const std::string written =
            p.eval("String(window.demo.stats && window.demo.stats.written)").as_string().c_str();
        std::printf("{\"bench\":\"soak\",\"page_signups\":%s,\"written\":%s,\"page_follows\":%s,"
                    "\"peer\":null}\n",
                    page.c_str(), written.c_str(), following ? "true" : "false");
        if (!following)
            throw std::runtime_error("the page stopped following the signups: it shows " + page +
                                     " of " + written + " written");
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_soak: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
