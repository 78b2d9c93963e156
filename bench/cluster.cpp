// GET/SET throughput of one akv::client on a private 3-master Redis Cluster, against the same
// client on one standalone redis-server and against redis-benchmark --cluster, in one run.
//
//   akv_bench_cluster [--ops N] [--quick] [--replicas N]
//
// The workload: `coroutines` coroutines share one client; each repeatedly picks `pipeline`
// random keys among 100k ("key:%012d", as redis-benchmark's -r 100000 makes them, so they hash
// all over the slot space), SETs them (100-byte values) in one request, then GETs them in a
// second one. With a pipeline of 16 the request mixes slots, so the cluster client splits it per
// node and puts the replies back in order. Every reply is read into a std::string and checked.
//
// Peers:
//   - the same client and workload on one standalone server (ratio: what the cluster costs,
//     three servers' worth of capacity included);
//   - `redis-benchmark --cluster -c 50 [-P 16] -r 100000 -d 100 -t set,get`, whose SET and GET
//     rates are combined as total requests over total time (as akv_bench_core does).
//
// Scenarios: 50 coroutines unpipelined, and with pipelines of 16 (as many commands in flight as
// redis-benchmark -c 50 -P 16), unpinned; then the pipelined one again with this process, the
// cluster's servers and redis-benchmark all on cpu 0 (as akv_bench_core does). The cluster has
// no replicas unless --replicas says so.
//
// Prints one JSON line per scenario: ours, the peer's, and ours / peer, with each client's own
// CPU time per command beside the rates.
#include "bench_support.hpp"

#include <akv/client.hpp>
#include <akv/testing/embedded_cluster.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace asio = boost::asio;

namespace {

constexpr unsigned key_space = 100000;
constexpr std::size_t value_bytes = 100;

// xorshift64: a different, reproducible key sequence per coroutine, no allocation.
struct key_picker {
    explicit key_picker(std::uint64_t seed)
        : state(seed * 0x9E3779B97F4A7C15ull + 1) {}

    // "key:" and 12 zero-padded digits of a random number below key_space.
    std::string_view next() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        unsigned n = static_cast<unsigned>((state >> 32) % key_space);
        for (int i = 15; i >= 4; --i) {
            buf[i] = static_cast<char>('0' + n % 10);
            n /= 10;
        }
        return {buf, sizeof buf};
    }

    std::uint64_t state;
    char buf[16] = {'k', 'e', 'y', ':'};
};

// akv::response<std::string, ...> with P slots.
template <std::size_t> using string_slot = std::string;
template <std::size_t... I>
akv::response<string_slot<I>...> make_response(std::index_sequence<I...>);
template <std::size_t P>
using response_of = decltype(make_response(std::make_index_sequence<P>{}));

template <class Response> void check(const Response& r, const char* what) {
    std::apply(
        [&](const auto&... slot) {
            const akv::error_info* bad = nullptr;
            ((bad = (!bad && slot.has_error()) ? &slot.error() : bad), ...);
            if (bad) throw std::runtime_error(std::string(what) + ": " + bad->message);
        },
        r);
}

// One coroutine of the workload: `iterations` x (SET P random keys, then GET them).
// The requests and responses are built once and reused: the harness does not allocate per op.
template <std::size_t P>
asio::awaitable<void> worker(akv::client& client, std::uint64_t seed, long iterations,
                             const std::string& value) {
    key_picker keys(seed);
    akv::request set;
    akv::request get;
    set.reserve(P * (value_bytes + 48));
    get.reserve(P * 48);
    response_of<P> set_reply;
    response_of<P> get_reply;
    for (long i = 0; i < iterations; ++i) {
        set.clear();
        get.clear();
        for (std::size_t k = 0; k < P; ++k) {
            const std::string_view key = keys.next();
            set.push("SET", key, value);
            get.push("GET", key);
        }
        co_await client.exec(set, set_reply);
        check(set_reply, "SET");
        co_await client.exec(get, get_reply);
        check(get_reply, "GET");
    }
}

// Before the clock starts: connected, and (cluster) the slot map read and every master's
// connection up, by a pipeline of GETs that lands on all of them.
asio::awaitable<void> warm_up(akv::client& client) {
    akv::request req;
    key_picker keys(12345);
    for (int i = 0; i < 64; ++i)
        req.push("GET", keys.next());
    co_await client.exec(req, akv::ignore);
}

struct outcome {
    double ops_per_s = 0;
    double cpu_us_per_op = 0; // the client's own CPU time (user + system) per command
    akv::cluster_stats stats; // cluster only
};

// CPU seconds (user + system) used so far by this process, or by its reaped children.
double cpu_seconds(int who) {
    rusage u{};
    getrusage(who, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// ops/s of `coroutines` coroutines sharing one client, `total_ops` commands in all.
template <std::size_t P>
outcome run_ours(const akv::config& cfg, int coroutines, long total_ops) {
    asio::io_context io(1);
    akv::client client(io.get_executor(), cfg);
    asio::co_spawn(io, client.run(), [](std::exception_ptr) {});
    const long iterations = std::max(1L, total_ops / (2L * long(P) * coroutines));
    const std::string value(value_bytes, 'v');
    int remaining = coroutines;
    std::chrono::steady_clock::time_point start, end;
    double cpu_start = 0, cpu_end = 0;
    std::exception_ptr failure;
    outcome out;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await warm_up(client);
            cpu_start = cpu_seconds(RUSAGE_SELF);
            start = std::chrono::steady_clock::now();
            for (int c = 0; c < coroutines; ++c) {
                asio::co_spawn(io, worker<P>(client, std::uint64_t(c) + 1, iterations, value),
                               [&](std::exception_ptr e) {
                                   if (e && !failure) failure = e;
                                   if (--remaining == 0) {
                                       end = std::chrono::steady_clock::now();
                                       cpu_end = cpu_seconds(RUSAGE_SELF);
                                       out.stats = client.stats().cluster;
                                       client.cancel();
                                   }
                               });
            }
        },
        [&](std::exception_ptr e) {
            if (e) {
                failure = e;
                client.cancel();
            }
        });
    io.run();
    if (failure) std::rethrow_exception(failure);
    const double ops = double(iterations * 2 * long(P) * coroutines);
    out.ops_per_s = ops / std::chrono::duration<double>(end - start).count();
    out.cpu_us_per_op = (cpu_end - cpu_start) * 1e6 / ops;
    return out;
}

outcome run_ours(const akv::config& cfg, int coroutines, int pipeline, long total_ops) {
    if (pipeline == 1) return run_ours<1>(cfg, coroutines, total_ops);
    if (pipeline == 16) return run_ours<16>(cfg, coroutines, total_ops);
    throw std::invalid_argument("pipeline must be 1 or 16");
}

using akv::bench::run_command;

// redis-benchmark --cluster's combined SET+GET rate: total requests over total time, and the
// CPU time it used (it is a reaped child: RUSAGE_CHILDREN; the cluster's servers are not reaped
// until the end). In cluster mode redis-benchmark runs one thread per master (3 here) and its
// clock stops on a 250 ms tick, so each test's time is rounded up to a multiple of 250 ms: the
// runs are made long (about 2 s per test) to keep that small.
outcome run_peer(std::uint16_t port, int clients, int pipeline, long per_test, bool pinned) {
    const std::string cmd = std::string(pinned ? "taskset -c 0 " : "") +
                            "redis-benchmark --cluster -h 127.0.0.1 -p " + std::to_string(port) +
                            " -c " + std::to_string(clients) + " -P " + std::to_string(pipeline) +
                            " -n " + std::to_string(per_test) + " -d " +
                            std::to_string(value_bytes) + " -r " + std::to_string(key_space) +
                            " -t set,get --csv 2>/dev/null";
    const double cpu_start = cpu_seconds(RUSAGE_CHILDREN);
    const std::string out = run_command(cmd);
    const double cpu = cpu_seconds(RUSAGE_CHILDREN) - cpu_start;
    double seconds = 0;
    int found = 0;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        // "SET","123456.79",... (redis-benchmark 7 adds latency columns)
        if (line.rfind("\"SET\"", 0) != 0 && line.rfind("\"GET\"", 0) != 0) continue;
        const auto first = line.find(",\"") + 2;
        const std::string rps = line.substr(first, line.find('"', first) - first);
        if (rps == "inf") throw std::runtime_error("redis-benchmark run too short: use --ops");
        seconds += per_test / std::stod(rps);
        ++found;
    }
    if (found != 2) throw std::runtime_error("could not read redis-benchmark output: " + out);
    outcome o;
    o.ops_per_s = double(2 * per_test) / seconds;
    o.cpu_us_per_op = cpu * 1e6 / double(2 * per_test);
    return o;
}

struct line_info {
    std::string scenario;
    const char* placement;
    std::size_t replicas;
    int coroutines;
    int pipeline;
    std::string peer;
};

// ours_cpu_us_per_op / peer_cpu_us_per_op: each client's own CPU time (user + system) per
// command, the servers' excluded; on a small shared machine it moves less than the rates do.
void report(const line_info& l, const outcome& ours, const outcome& theirs) {
    std::printf("{\"bench\":\"cluster\",\"scenario\":\"%s\",\"placement\":\"%s\","
                "\"masters\":3,\"replicas_per_master\":%zu,\"coroutines\":%d,\"pipeline\":%d,"
                "\"keys\":%u,\"value_bytes\":%zu,\"ours_ops_per_s\":%.0f,\"peer\":\"%s\","
                "\"peer_ops_per_s\":%.0f,\"ratio\":%.2f,\"ours_cpu_us_per_op\":%.2f,"
                "\"peer_cpu_us_per_op\":%.2f,\"moved\":%llu}\n",
                l.scenario.c_str(), l.placement, l.replicas, l.coroutines, l.pipeline, key_space,
                value_bytes, ours.ops_per_s, l.peer.c_str(), theirs.ops_per_s,
                ours.ops_per_s / theirs.ops_per_s, ours.cpu_us_per_op, theirs.cpu_us_per_op,
                static_cast<unsigned long long>(ours.stats.moved));
    std::fflush(stdout);
}

bool pin_to_cpu0(int pid) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    return sched_setaffinity(pid, sizeof set, &set) == 0;
}

// The run with the median rate.
outcome median(const outcome (&o)[3]) {
    const double a = o[0].ops_per_s, b = o[1].ops_per_s, c = o[2].ops_per_s;
    const double m = std::max(std::min(a, b), std::min(std::max(a, b), c));
    for (const outcome& x : o)
        if (x.ops_per_s == m) return x;
    return o[0];
}

} // namespace

int main(int argc, char** argv) {
    long ops = 200000;
    std::size_t replicas = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--ops" && i + 1 < argc)
            ops = std::max(1000L, std::stol(argv[++i]));
        else if (arg == "--quick")
            ops = 20000;
        else if (arg == "--replicas" && i + 1 < argc)
            replicas = std::stoul(argv[++i]);
        else {
            std::cerr << "usage: akv_bench_cluster [--ops N] [--quick] [--replicas N]\n";
            return 2;
        }
    }
    try {
        // No replicas by default: on a small machine their replication work would take CPU
        // from the masters and the clients alike, and only add noise.
        akv::testing::embedded_cluster_options options;
        options.masters = 3;
        options.replicas_per_master = replicas;
        akv::testing::embedded_cluster cluster(options);
        akv::testing::embedded_server standalone;
        const akv::config cluster_cfg = cluster.config();
        const akv::config standalone_cfg = standalone.config();
        const std::uint16_t seed_port = cluster.node(0).port();
        constexpr int clients = 50;

        // `ours` commands for each of our runs, `per_test` SETs and as many GETs for the peer's
        // (longer: see run_peer). Median of three runs each, alternating the sides, so that a
        // noisy moment on a shared machine does not decide a ratio.
        auto run = [&](int pipeline, long ours_ops, long per_test, bool pinned,
                       bool with_standalone) {
            outcome c[3], s[3], p[3];
            for (int r = 0; r < 3; ++r) {
                c[r] = run_ours(cluster_cfg, clients, pipeline, ours_ops);
                if (with_standalone) s[r] = run_ours(standalone_cfg, clients, pipeline, ours_ops);
                p[r] = run_peer(seed_port, clients, pipeline, per_test, pinned);
            }
            const outcome ours = median(c);
            const char* placement = pinned ? "client and cluster nodes on cpu 0" : "unpinned";
            std::string name = "set_get_c" + std::to_string(clients);
            if (pipeline > 1) name += "_p" + std::to_string(pipeline);
            std::string peer = "redis-benchmark --cluster -c " + std::to_string(clients);
            if (pipeline > 1) peer += " -P " + std::to_string(pipeline);
            if (with_standalone)
                report({name + "_vs_standalone", placement, replicas, clients, pipeline,
                        "akv::client standalone (1 redis-server)"},
                       ours, median(s));
            report({name, placement, replicas, clients, pipeline, peer}, ours, median(p));
        };
        run(1, ops, ops + ops / 4, false, true);
        run(16, ops * 2, ops * 5, false, true);
        // As akv_bench_core: on one core the servers run as soon as the client waits, with no
        // cross-core wake-ups. Both sides get the same placement.
        bool pinned = pin_to_cpu0(0);
        for (std::size_t i = 0; pinned && i < cluster.size(); ++i)
            pinned = pin_to_cpu0(cluster.node(i).pid());
        if (pinned) run(16, ops * 2, ops * 4, true, false);
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_cluster: " << e.what() << "\n";
        return 1;
    }
}
