// Batched find and insert of akv::kv::embedding_table (batches of 1024 int64 keys x dim 64,
// 256 bytes a vector) against redis-benchmark moving the same bytes with pipelined HSET / HMGET
// (-P 1024: one pipeline of 1024 single-field commands a batch), on one private redis-server:
//
//   insert   embedding_table::insert, one coroutine    vs  redis-benchmark -c 1 -P 1024 HSET
//   find     embedding_table::find, one coroutine      vs  redis-benchmark -c 1 -P 1024 HMGET
//   ... and the same with 8 coroutines on one client   vs  redis-benchmark -c 8 -P 1024
//
// and against redis-benchmark sending each batch as one HSET / HMGET of 1024 fields (what the
// table sends), which is the fairer ceiling: per-command server overhead is the same.
//
// The table has storage_slice 1 (one hash, as the peer's) and keys_sending_size 1024 (one
// HSET / HMGET of 1024 fields a batch). Ours also encodes and decodes the float vectors.
//
//   akv_bench_embedding [--quick]
//
// Prints one JSON line per scenario: keys/s and MB/s of vectors, ours, the peer's, and the ratio.
#include "bench_support.hpp"

#include <akv/client.hpp>
#include <akv/kv/embedding_table.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
using table = akv::kv::embedding_table<std::int64_t>;

namespace {

constexpr std::size_t batch = 1024;
constexpr std::size_t dim = 64;
constexpr std::size_t vector_bytes = dim * sizeof(float);
constexpr long key_space = 100000; // as redis-benchmark -r 100000: the batches cover it

struct workload {
    std::vector<std::vector<std::int64_t>> key_batches;
    std::vector<float> values; // batch * dim
};

workload make_workload(long batches) {
    workload w;
    std::uint64_t x = 88172645463325252ull;
    for (long b = 0; b < batches; ++b) {
        std::vector<std::int64_t> keys(batch);
        for (auto& k : keys) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            k = static_cast<std::int64_t>(x % key_space);
        }
        w.key_batches.push_back(std::move(keys));
    }
    w.values.resize(batch * dim);
    for (std::size_t i = 0; i < w.values.size(); ++i)
        w.values[i] = static_cast<float>(i % 977) * 0.25f;
    return w;
}

asio::awaitable<void> worker(table& t, const workload& w, bool find, std::size_t first,
                             std::size_t step) {
    std::vector<float> out(batch * dim);
    std::vector<bool> found;
    const auto init = akv::kv::embedding_initializer::zeros();
    for (std::size_t b = first; b < w.key_batches.size(); b += step) {
        if (find) {
            co_await t.find_into(w.key_batches[b], init, out, found);
        } else {
            co_await t.insert(w.key_batches[b], w.values);
        }
    }
}

// Seconds for every batch of `w`, from `workers` coroutines on one client.
double time_ours(const akv::config& cfg, const workload& w, bool find, int workers) {
    asio::io_context io(1);
    akv::client redis(io.get_executor(), cfg);
    asio::co_spawn(io, redis.run(), [](std::exception_ptr) {});
    akv::tfra_options options;
    options.storage_slice = 1;
    options.keys_sending_size = batch;
    options.table_store_mode = 2;
    table t(redis, "bench", dim, options);
    double seconds = 0;
    std::exception_ptr failure;
    auto measure = [&]() -> asio::awaitable<void> {
        co_await t.insert(w.key_batches.front(), w.values); // connected before the clock starts
        auto ex = co_await asio::this_coro::executor;
        asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
        int remaining = workers;
        std::exception_ptr worker_failure;
        const auto start = clock_type::now();
        for (int i = 0; i < workers; ++i) {
            asio::co_spawn(ex, worker(t, w, find, std::size_t(i), std::size_t(workers)),
                           [&](std::exception_ptr e) {
                               if (e && !worker_failure) worker_failure = e;
                               if (--remaining == 0) all_done.cancel();
                           });
        }
        while (remaining > 0)
            co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
        seconds = std::chrono::duration<double>(clock_type::now() - start).count();
        if (worker_failure) std::rethrow_exception(worker_failure);
    };
    asio::co_spawn(io, measure(), [&](std::exception_ptr e) {
        failure = e;
        redis.cancel();
    });
    io.run();
    if (failure) std::rethrow_exception(failure);
    return seconds;
}

// Commands per second redis-benchmark reports for one custom command. The command line goes
// through a script file: a 1024-field HSET is longer than one argument of `sh -c` may be.
double redis_benchmark(std::uint16_t port, int clients, long requests, int pipeline,
                       const std::string& cmd, const std::string& script_file) {
    std::ofstream(script_file) << "exec redis-benchmark -h 127.0.0.1 -p " << port << " -c "
                               << clients << " -n " << requests << " -P " << pipeline << " -r "
                               << key_space << " --csv " << cmd << " 2>/dev/null\n";
    const std::string out = akv::bench::run_command("sh " + script_file);
    std::istringstream lines(out);
    std::string row;
    while (std::getline(lines, row)) {
        if (row.rfind("\"test\"", 0) == 0 || row.empty()) continue;
        const auto first = row.find("\",\"");
        if (first == std::string::npos) continue;
        const auto begin = first + 3;
        return std::stod(row.substr(begin, row.find('"', begin) - begin));
    }
    throw std::runtime_error("could not read redis-benchmark output: " + out.substr(0, 500));
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

void report(const std::string& scenario, int workers, double ours_keys, const std::string& peer,
            double peer_keys) {
    const double mb = vector_bytes / 1e6;
    std::printf("{\"bench\":\"embedding\",\"scenario\":\"%s\",\"batch\":%zu,\"dim\":%zu,"
                "\"coroutines\":%d,\"ours_keys_per_s\":%.0f,\"ours_mb_per_s\":%.1f,"
                "\"peer\":\"%s\",\"peer_keys_per_s\":%.0f,\"peer_mb_per_s\":%.1f,"
                "\"ratio\":%.2f}\n",
                scenario.c_str(), batch, dim, workers, ours_keys, ours_keys * mb, peer.c_str(),
                peer_keys, peer_keys * mb, ours_keys / peer_keys);
    std::fflush(stdout);
}

void scenario(const akv::config& cfg, const akv::testing::embedded_server& server,
              const workload& w, bool find, int workers) {
    const std::uint16_t port = server.port();
    const std::string script_file = server.data_dir() + "/bench-embedding.sh";
    const double keys = double(w.key_batches.size() * batch);
    const std::string value(vector_bytes, 'v');
    // The peer twice: 1024 one-field commands pipelined, and one 1024-field command a batch
    // (redis-benchmark draws each __rand_int__ of a command on its own).
    const std::string single =
        find ? "HMGET bench:peer __rand_int__" : "HSET bench:peer __rand_int__ " + value;
    std::string multi = find ? "HMGET bench:peer" : "HSET bench:peer";
    for (std::size_t i = 0; i < batch; ++i)
        multi += find ? " __rand_int__" : " __rand_int__ " + value;
    std::vector<double> ours, pipelined, batched;
    for (int r = 0; r < 3; ++r) {
        ours.push_back(keys / time_ours(cfg, w, find, workers));
        pipelined.push_back(redis_benchmark(port, workers, static_cast<long>(keys), int(batch),
                                            single, script_file));
        batched.push_back(double(batch) * redis_benchmark(port, workers, long(w.key_batches.size()),
                                                          1, multi, script_file));
    }
    const std::string clients = "redis-benchmark -c " + std::to_string(workers);
    const std::string name = find ? "find" : "insert";
    report(name, workers, median(ours),
           clients + (find ? " -P 1024 HMGET key __rand_int__"
                           : " -P 1024 HSET key __rand_int__ <256 B>"),
           median(pipelined));
    report(name, workers, median(ours),
           clients + (find ? " HMGET key <1024 x __rand_int__>"
                           : " HSET key <1024 x __rand_int__ <256 B>>"),
           median(batched));
}

} // namespace

int main(int argc, char** argv) {
    const std::optional<bool> quick_arg =
        akv::bench::quick_option(argc, argv, "akv_bench_embedding");
    if (!quick_arg) return 2;
    const bool quick = *quick_arg;
    try {
        akv::testing::embedded_server server;
        const akv::config cfg = server.config();
        const workload w = make_workload(quick ? 100 : 500);
        // Fill both hashes first so finds hit (most keys of the key space are there).
        scenario(cfg, server, w, false, 1);
        scenario(cfg, server, w, true, 1);
        scenario(cfg, server, w, false, 8);
        scenario(cfg, server, w, true, 8);
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_embedding: " << e.what() << "\n";
        return 1;
    }
}
