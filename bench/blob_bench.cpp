// Put and get throughput of akv::kv::blob_store for 1 KB, 1 MB and 64 MB objects, against the
// same bytes moved by Redis's own tools, on one private redis-server, in one run:
//
//   1 KB   50 coroutines on one connection  vs  redis-benchmark -c 50 -d 1024 -t set,get
//   1 MB   one object at a time             vs  redis-cli -x SET k < file, redis-cli GET k > file
//   64 MB  one object at a time (16 chunks)     (one process per object, as a shell moves a
//                                                file in or out of Redis), and vs
//                                               redis-benchmark -c 1 -d SIZE -t set,get
//
// A blob put is a SET of each chunk plus a Lua call that flips the manifest and keeps the
// store's totals, and a get reads the manifest before the chunks: the peers' bare SET / GET
// of one value is the ceiling to measure against.
//
//   akv_bench_blob [--quick]
//
// Prints one JSON line per scenario: ours, the peer's, and ours / peer, in MiB/s of objects.
#include "bench_support.hpp"

#include <akv/client.hpp>
#include <akv/kv/blob_store.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr double MiB = 1024.0 * 1024.0;
constexpr int small_workers = 50;  // as redis-benchmark -c 50
constexpr long small_names = 1000; // as redis-benchmark -r 1000

using operation = std::function<asio::awaitable<void>(akv::kv::blob_store&, long)>;

std::string bytes_of(std::size_t size) {
    std::string s(size, '\0');
    std::uint32_t x = 2463534242u;
    for (char& c : s) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x);
    }
    return s;
}

asio::awaitable<void> worker(akv::kv::blob_store& store, const operation& op, long first, long step,
                             long total) {
    for (long i = first; i < total; i += step)
        co_await op(store, i);
}

// Runs op(store, 0 .. total-1) from `workers` coroutines sharing one connection.
asio::awaitable<void> run_workers(akv::kv::blob_store& store, const operation& op, int workers,
                                  long total) {
    co_await akv::bench::all_of(workers,
                                [&](int w) { return worker(store, op, w, workers, total); });
}

// Seconds for `total` operations from `workers` coroutines, on a fresh client connected (and
// with the store's scripts loaded by one untimed `warmup`) before the clock starts.
double time_ours(const akv::config& cfg, const operation& warmup, const operation& op, int workers,
                 long total) {
    asio::io_context io(1);
    akv::client redis(io.get_executor(), cfg);
    asio::co_spawn(io, redis.run(), [](std::exception_ptr) {});
    akv::kv::blob_options options;
    options.max_object_size = 256u << 20;
    akv::kv::blob_store store(redis, options);
    double seconds = 0;
    std::exception_ptr failure;
    auto measure = [&]() -> asio::awaitable<void> {
        co_await warmup(store, 0);
        const auto start = clock_type::now();
        co_await run_workers(store, op, workers, total);
        seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    };
    asio::co_spawn(io, measure(), [&](std::exception_ptr e) {
        failure = e;
        redis.cancel();
    });
    io.run();
    if (failure) std::rethrow_exception(failure);
    return seconds;
}

using akv::bench::run_command;

// Requests per second of SET and of GET of `bytes`-byte values from redis-benchmark's CSV;
// `names` > 0 spreads the keys over that many names (-r).
std::pair<double, double> redis_benchmark(std::uint16_t port, int clients, long requests,
                                          std::size_t bytes, long names) {
    std::string cmd = "redis-benchmark -h 127.0.0.1 -p " + std::to_string(port) + " -c " +
                      std::to_string(clients) + " -n " + std::to_string(requests) + " -d " +
                      std::to_string(bytes);
    if (names > 0) cmd += " -r " + std::to_string(names);
    const std::string out = run_command(cmd + " -t set,get --csv 2>/dev/null");
    double set_rps = 0, get_rps = 0;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        const bool is_set = line.rfind("\"SET\"", 0) == 0;
        if (!is_set && line.rfind("\"GET\"", 0) != 0) continue;
        const auto first = line.find(",\"") + 2;
        (is_set ? set_rps : get_rps) = std::stod(line.substr(first, line.find('"', first) - first));
    }
    if (set_rps == 0 || get_rps == 0)
        throw std::runtime_error("could not read redis-benchmark output: " + out);
    return {set_rps, get_rps};
}

// Seconds for `times` runs of a shell command.
double time_shell(const std::string& cmd, int times) {
    const auto start = clock_type::now();
    for (int i = 0; i < times; ++i)
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

double median(double a, double b, double c) {
    return std::max(std::min(a, b), std::min(std::max(a, b), c));
}

void report(const std::string& scenario, std::size_t object_bytes, double ours,
            const std::string& peer, double theirs) {
    std::printf("{\"bench\":\"blob\",\"scenario\":\"%s\",\"object_bytes\":%zu,"
                "\"ours_mib_per_s\":%.1f,\"peer\":\"%s\",\"peer_mib_per_s\":%.1f,"
                "\"ratio\":%.2f}\n",
                scenario.c_str(), object_bytes, ours, peer.c_str(), theirs, ours / theirs);
    std::fflush(stdout);
}

std::string size_name(std::size_t bytes) {
    return bytes >= (1u << 20) ? std::to_string(bytes >> 20) + " MB"
                               : std::to_string(bytes >> 10) + " KB";
}

// 1 KB objects: many small puts and gets in flight at once.
void small_objects(const akv::config& cfg, std::uint16_t port, long requests) {
    const std::string value = bytes_of(1024);
    const operation put = [&](akv::kv::blob_store& s, long i) -> asio::awaitable<void> {
        co_await s.put("k:" + std::to_string(i % small_names), value);
    };
    const operation get = [&](akv::kv::blob_store& s, long i) -> asio::awaitable<void> {
        const auto got = co_await s.get("k:" + std::to_string(i % small_names));
        if (!got || got->size() != value.size()) throw std::runtime_error("1 KB get: wrong size");
    };
    double put_mib[3], get_mib[3], set_mib[3], peer_get_mib[3];
    for (int r = 0; r < 3; ++r) {
        put_mib[r] = requests * 1024.0 / MiB / time_ours(cfg, put, put, small_workers, requests);
        get_mib[r] = requests * 1024.0 / MiB / time_ours(cfg, put, get, small_workers, requests);
        const auto [set_rps, get_rps] =
            redis_benchmark(port, small_workers, requests, 1024, small_names);
        set_mib[r] = set_rps * 1024.0 / MiB;
        peer_get_mib[r] = get_rps * 1024.0 / MiB;
    }
    const std::string peer = "redis-benchmark -c 50 -d 1024 -r 1000 -t ";
    report("put 1 KB, 50 coroutines", 1024, median(put_mib[0], put_mib[1], put_mib[2]),
           peer + "set", median(set_mib[0], set_mib[1], set_mib[2]));
    report("get 1 KB, 50 coroutines", 1024, median(get_mib[0], get_mib[1], get_mib[2]),
           peer + "get", median(peer_get_mib[0], peer_get_mib[1], peer_get_mib[2]));
}

// 1 MB and 64 MB objects: one at a time, as a file moved in and out.
// redis-benchmark times whole milliseconds: it gets enough requests to measure 1 MB values.
void large_objects(const akv::config& cfg, const akv::testing::embedded_server& server,
                   std::size_t size, int times, long peer_requests) {
    const std::string value = bytes_of(size);
    const std::string in_file = server.data_dir() + "/bench-in.bin";
    const std::string out_file = server.data_dir() + "/bench-out.bin";
    std::ofstream(in_file, std::ios::binary).write(value.data(), std::streamsize(value.size()));
    const operation put = [&](akv::kv::blob_store& s, long) -> asio::awaitable<void> {
        co_await s.put("large", value);
    };
    const operation get = [&](akv::kv::blob_store& s, long) -> asio::awaitable<void> {
        const auto got = co_await s.get("large");
        if (!got || got->size() != value.size()) throw std::runtime_error("large get: wrong size");
    };
    const std::string cli = "redis-cli -p " + std::to_string(server.port());
    const std::string set_cmd = cli + " -x SET peer:large < " + in_file + " > /dev/null";
    const std::string get_cmd = cli + " GET peer:large > " + out_file;
    const double mib = double(size) * times / MiB;
    double put_mib[3], get_mib[3], cli_set[3], cli_get[3], bench_set[3], bench_get[3];
    for (int r = 0; r < 3; ++r) {
        put_mib[r] = mib / time_ours(cfg, put, put, 1, times);
        get_mib[r] = mib / time_ours(cfg, put, get, 1, times);
        cli_set[r] = mib / time_shell(set_cmd, times);
        cli_get[r] = mib / time_shell(get_cmd, times);
        const auto [set_rps, get_rps] = redis_benchmark(server.port(), 1, peer_requests, size, 0);
        bench_set[r] = set_rps * double(size) / MiB;
        bench_get[r] = get_rps * double(size) / MiB;
    }
    std::ifstream check(out_file, std::ios::binary | std::ios::ate);
    if (std::size_t(check.tellg()) != size + 1) // redis-cli ends the value with a newline
        throw std::runtime_error("redis-cli GET wrote " + std::to_string(check.tellg()) +
                                 " bytes for " + std::to_string(size));
    const std::string name = size_name(size);
    const double ours_put = median(put_mib[0], put_mib[1], put_mib[2]);
    const double ours_get = median(get_mib[0], get_mib[1], get_mib[2]);
    report("put " + name, size, ours_put, "redis-cli -x SET k < file (one process per object)",
           median(cli_set[0], cli_set[1], cli_set[2]));
    report("put " + name, size, ours_put,
           "redis-benchmark -c 1 -d " + std::to_string(size) + " -t set (one value, no chunks)",
           median(bench_set[0], bench_set[1], bench_set[2]));
    report("get " + name, size, ours_get, "redis-cli GET k > file (one process per object)",
           median(cli_get[0], cli_get[1], cli_get[2]));
    report("get " + name, size, ours_get,
           "redis-benchmark -c 1 -d " + std::to_string(size) + " -t get (one value, no chunks)",
           median(bench_get[0], bench_get[1], bench_get[2]));
}

} // namespace

int main(int argc, char** argv) {
    const std::optional<bool> quick_arg = akv::bench::quick_option(argc, argv, "akv_bench_blob");
    if (!quick_arg) return 2;
    const bool quick = *quick_arg;
    try {
        akv::testing::embedded_server server;
        const akv::config cfg = server.config();
        small_objects(cfg, server.port(), quick ? 20000 : 200000);
        large_objects(cfg, server, 1u << 20, quick ? 10 : 50, quick ? 200 : 1000);
        large_objects(cfg, server, 64u << 20, quick ? 2 : 6, quick ? 2 : 6);
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_blob: " << e.what() << "\n";
        return 1;
    }
}
