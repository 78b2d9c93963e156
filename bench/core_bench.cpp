// GET/SET throughput of one connection shared by 1, 50 and 500 coroutines, against
// redis-benchmark at matching concurrency, on one private redis-server, in one run.
//
//   akv_bench_core [--ops N] [--quick]
//
// Prints one JSON line per scenario: ours, the peer's, and ours / peer.
#include "bench_support.hpp"

#include <akv/connection.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <sched.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;

namespace {

// ops/s of `coroutines` coroutines sharing one connection, each alternating SET and GET of
// a 100-byte value, `total_ops` in all.
double run_ours(const akv::config& cfg, int coroutines, long total_ops) {
    asio::io_context io(1);
    akv::connection conn(io.get_executor(), cfg);
    asio::co_spawn(io, conn.run(), [](std::exception_ptr) {});
    const long per = total_ops / coroutines;
    int remaining = coroutines;
    const std::string value(100, 'v');
    std::chrono::steady_clock::time_point start, end;
    bool started = false;
    // Warm up (connect) before the clock starts.
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            akv::request ping;
            ping.push("PING");
            co_await conn.exec(ping, akv::ignore);
            start = std::chrono::steady_clock::now();
            started = true;
            for (int c = 0; c < coroutines; ++c) {
                asio::co_spawn(
                    io,
                    [&, c]() -> asio::awaitable<void> {
                        const std::string key = "key:" + std::to_string(c);
                        akv::request set, get;
                        set.push("SET", key, value);
                        get.push("GET", key);
                        akv::response<std::string> reply;
                        for (long i = 0; i < per; ++i)
                            co_await conn.exec((i & 1) ? get : set, reply);
                    },
                    [&](std::exception_ptr e) {
                        if (e) std::rethrow_exception(e);
                        if (--remaining == 0) {
                            end = std::chrono::steady_clock::now();
                            conn.cancel();
                        }
                    });
            }
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    io.run();
    if (!started) throw std::runtime_error("benchmark did not start");
    return double(per * coroutines) / std::chrono::duration<double>(end - start).count();
}

using akv::bench::run_command;

// redis-benchmark's combined SET+GET rate: total requests over total time.
double run_peer(std::uint16_t port, int clients, int pipeline, long total_ops, bool pinned) {
    const long per_test = total_ops / 2;
    const std::string cmd = std::string(pinned ? "taskset -c 0 " : "") +
                            "redis-benchmark -h 127.0.0.1 -p " + std::to_string(port) + " -c " +
                            std::to_string(clients) + " -P " + std::to_string(pipeline) + " -n " +
                            std::to_string(per_test) +
                            " -d 100 -r 1000 -t set,get --csv 2>/dev/null";
    const std::string out = run_command(cmd);
    double seconds = 0;
    int found = 0;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        // "SET","123456.79",... (redis-benchmark 7 adds latency columns)
        if (line.rfind("\"SET\"", 0) != 0 && line.rfind("\"GET\"", 0) != 0) continue;
        const auto first = line.find(",\"") + 2;
        const double rps = std::stod(line.substr(first, line.find('"', first) - first));
        seconds += per_test / rps;
        ++found;
    }
    if (found != 2) throw std::runtime_error("could not read redis-benchmark output: " + out);
    return double(2 * per_test) / seconds;
}

void report(const std::string& scenario, const std::string& peer, double ours, double theirs,
            const char* placement) {
    std::printf("{\"bench\":\"core_get_set\",\"scenario\":\"%s\",\"placement\":\"%s\","
                "\"value_bytes\":100,\"ours_ops_per_s\":%.0f,\"peer\":\"%s\","
                "\"peer_ops_per_s\":%.0f,\"ratio\":%.2f}\n",
                scenario.c_str(), placement, ours, peer.c_str(), theirs, ours / theirs);
    std::fflush(stdout);
}

bool pin_to_cpu0(int pid) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    return sched_setaffinity(pid, sizeof set, &set) == 0;
}

} // namespace

int main(int argc, char** argv) {
    long ops = 400000;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--ops" && i + 1 < argc)
            ops = std::stol(argv[++i]);
        else if (arg == "--quick")
            ops = 40000;
        else {
            std::cerr << "usage: akv_bench_core [--ops N] [--quick]\n";
            return 2;
        }
    }
    try {
        akv::testing::embedded_server server;
        const akv::config cfg = server.config();
        const std::uint16_t port = server.port();
        struct scenario {
            int coroutines;
            int peer_clients;
            int peer_pipeline;
            long ops;
        };
        // The last one puts as many requests in flight as redis-benchmark -c 50 -P 16 does.
        const scenario scenarios[] = {{1, 1, 1, ops / 10},
                                      {50, 50, 1, ops},
                                      {500, 500, 1, ops},
                                      {50, 50, 16, ops * 2},
                                      {800, 50, 16, ops * 2}};
        // Median of three runs each, alternating ours and the peer's, so a noisy moment on a
        // shared machine does not decide a ratio.
        auto median = [](double a, double b, double c) {
            return std::max(std::min(a, b), std::min(std::max(a, b), c));
        };
        auto run = [&](const scenario& s, bool pinned) {
            double o[3], t[3];
            for (int r = 0; r < 3; ++r) {
                o[r] = run_ours(cfg, s.coroutines, s.ops);
                t[r] = run_peer(port, s.peer_clients, s.peer_pipeline, s.ops, pinned);
            }
            const double ours = median(o[0], o[1], o[2]);
            const double theirs = median(t[0], t[1], t[2]);
            std::string peer = "redis-benchmark -c " + std::to_string(s.peer_clients);
            if (s.peer_pipeline > 1) peer += " -P " + std::to_string(s.peer_pipeline);
            report("1 connection, " + std::to_string(s.coroutines) + " coroutines", peer, ours,
                   theirs, pinned ? "server and client on cpu 0" : "unpinned");
        };
        for (const scenario& s : scenarios)
            run(s, false);
        // With few requests in flight, a round trip between two cores costs the wake-up of an
        // idle core twice (tens of microseconds on a VM), which caps any client at
        // in-flight / round-trip. On one core the server runs as soon as the client waits.
        // Both sides get the same placement.
        if (pin_to_cpu0(0) && pin_to_cpu0(server.pid())) {
            run({1, 1, 1, ops / 10}, true);
            run({50, 50, 16, ops * 2}, true);
        }
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_core: " << e.what() << "\n";
        return 1;
    }
}
