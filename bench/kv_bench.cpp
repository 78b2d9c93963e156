// Bulk typed_map writes and reads against redis-benchmark's MSET/MGET of the same number of keys,
// on one private redis-server, in one run.
//
//   akv_bench_kv [--passes N] [--quick]
//
// Ours: kv::typed_map<std::string, std::string> of 100k entries (32-byte values), written with
// set_many and read with get_many, 1000 fields per HSET / HMGET, 16 commands in flight on the
// client's one connection. Peer: `redis-benchmark -c 1 -P 16 MSET k v ... (1000 pairs)` and
// `MGET k ... (1000 keys)` with random keys among 100k, the same 16 in flight. Each side moves
// `passes` x 100k entries; entries per second are compared. A second pair of scenarios runs
// redis-benchmark's HSET / HMGET of the same hash, so that both sides ask the server for the
// same work. Prints one JSON line per scenario.
#include "bench_support.hpp"

#include <akv/client.hpp>
#include <akv/kv/typed_map.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace kv = akv::kv;

namespace {

constexpr std::size_t entries = 100000;
constexpr std::size_t chunk_size = 1000;
constexpr std::size_t in_flight = 16;
constexpr std::size_t value_bytes = 32;

using chunk = std::vector<std::pair<std::string, std::string>>;

// redis-benchmark's __rand_int__ becomes 12 zero-padded digits: our fields look the same.
std::string key_name(std::size_t i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "key:%012zu", i);
    return buf;
}

std::vector<chunk> make_chunks() {
    const std::string value(value_bytes, 'v');
    std::vector<chunk> chunks(entries / chunk_size);
    for (std::size_t i = 0; i < entries; ++i)
        chunks[i / chunk_size].emplace_back(key_name(i), value);
    return chunks;
}

std::vector<std::vector<std::string>> make_key_chunks() {
    std::vector<std::vector<std::string>> chunks(entries / chunk_size);
    for (std::size_t i = 0; i < entries; ++i)
        chunks[i / chunk_size].push_back(key_name(i));
    return chunks;
}

// Entries per second of `in_flight` coroutines on one client, which between them run
// `operation(map, chunk index)` for passes x (entries / chunk_size) chunks.
template <class Operation>
double run_ours(const akv::config& cfg, int passes, Operation operation) {
    asio::io_context io(1);
    akv::client client(io.get_executor(), cfg);
    asio::co_spawn(io, client.run(), [](std::exception_ptr) {});
    kv::typed_map<std::string, std::string> map(client, "bench:map");
    const std::size_t chunks = entries / chunk_size;
    const std::size_t total = chunks * static_cast<std::size_t>(passes);
    std::size_t next = 0;
    std::size_t remaining = in_flight;
    std::chrono::steady_clock::time_point start, end;
    std::exception_ptr failure;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await map.size(); // connected before the clock starts
            start = std::chrono::steady_clock::now();
            for (std::size_t w = 0; w < in_flight; ++w) {
                asio::co_spawn(
                    io,
                    [&]() -> asio::awaitable<void> {
                        while (next < total)
                            co_await operation(map, next++ % chunks);
                    },
                    [&](std::exception_ptr e) {
                        if (e) failure = e;
                        if (--remaining == 0) {
                            end = std::chrono::steady_clock::now();
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
    return double(total * chunk_size) / std::chrono::duration<double>(end - start).count();
}

using akv::bench::run_command;

// `redis-benchmark ... COMMAND <one_item x chunk_size>`: entries per second.
double run_peer(std::uint16_t port, const std::string& command, const std::string& one_item,
                int passes) {
    std::string cmd = "redis-benchmark -h 127.0.0.1 -p " + std::to_string(port) + " -c 1 -P " +
                      std::to_string(in_flight) + " -r " + std::to_string(entries) + " -n " +
                      std::to_string(passes * static_cast<int>(entries / chunk_size)) + " --csv " +
                      command;
    for (std::size_t i = 0; i < chunk_size; ++i)
        cmd += " " + one_item;
    cmd += " 2>/dev/null";
    const std::string out = run_command(cmd);
    // "test","rps",...  then  "MSET key:__rand_int__ ...","1234.56",...
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind("\"" + command + " ", 0) != 0) continue;
        const auto first = line.find("\",\"") + 3;
        const std::string rps = line.substr(first, line.find('"', first) - first);
        if (rps == "inf") throw std::runtime_error("redis-benchmark run too short: use --passes");
        return std::stod(rps) * double(chunk_size);
    }
    throw std::runtime_error("could not read redis-benchmark output: " + out);
}

void report(const std::string& scenario, int passes, double ours, const std::string& peer,
            double theirs) {
    std::printf("{\"bench\":\"kv_typed_map\",\"scenario\":\"%s\",\"entries\":%zu,"
                "\"passes\":%d,\"fields_per_command\":%zu,\"in_flight\":%zu,"
                "\"value_bytes\":%zu,\"ours_entries_per_s\":%.0f,\"peer\":\"%s\","
                "\"peer_entries_per_s\":%.0f,\"ratio\":%.2f}\n",
                scenario.c_str(), entries, passes, chunk_size, in_flight, value_bytes, ours,
                peer.c_str(), theirs, ours / theirs);
    std::fflush(stdout);
}

double median(double a, double b, double c) {
    return std::max(std::min(a, b), std::min(std::max(a, b), c));
}

// Every key the peer's MGET may ask for exists, as every field our get_many asks for does.
void fill_peer_keys(const akv::config& cfg, const std::vector<chunk>& chunks) {
    asio::io_context io(1);
    akv::client client(io.get_executor(), cfg);
    asio::co_spawn(io, client.run(), [](std::exception_ptr) {});
    std::exception_ptr failure;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            for (const chunk& c : chunks) {
                akv::request req;
                req.push("MSET", c);
                co_await client.exec(req, akv::ignore);
            }
        },
        [&](std::exception_ptr e) {
            failure = e;
            client.cancel();
        });
    io.run();
    if (failure) std::rethrow_exception(failure);
}

} // namespace

int main(int argc, char** argv) {
    int passes = 10;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--passes" && i + 1 < argc)
            passes = std::max(1, std::stoi(argv[++i]));
        else if (arg == "--quick")
            passes = 2;
        else {
            std::cerr << "usage: akv_bench_kv [--passes N] [--quick]\n";
            return 2;
        }
    }
    try {
        akv::testing::embedded_server server;
        const akv::config cfg = server.config();
        const std::uint16_t port = server.port();
        const std::vector<chunk> chunks = make_chunks();
        const std::vector<std::vector<std::string>> key_chunks = make_key_chunks();
        fill_peer_keys(cfg, chunks);
        const std::string value(value_bytes, 'v');
        const std::string peer_flags = "redis-benchmark -c 1 -P " + std::to_string(in_flight) +
                                       " -r " + std::to_string(entries);

        auto set_chunk = [&](kv::typed_map<std::string, std::string>& map, std::size_t i) {
            return map.set_many(chunks[i]);
        };
        auto get_chunk = [&](kv::typed_map<std::string, std::string>& map,
                             std::size_t i) -> asio::awaitable<void> {
            const auto values = co_await map.get_many(key_chunks[i]);
            if (values.size() != chunk_size || !values.back())
                throw std::runtime_error("get_many: missing values");
        };

        // Median of three runs each, alternating ours and the peer's, so a noisy moment on a
        // shared machine does not decide a ratio. The set runs come first: they fill the map.
        // Two peers: MSET/MGET of as many plain keys (what the issue asks), and HSET/HMGET of
        // the same hash (the same server work as ours: the ratio is then the clients').
        struct scenario {
            const char* name;
            bool set;
            std::string peer_command;
            std::string peer_item;
            std::string peer_name;
        };
        const scenario scenarios[] = {
            {"bulk set: typed_map::set_many (HSET 1000 fields) vs MSET 1000 keys", true, "MSET",
             "key:__rand_int__ " + value, peer_flags + " MSET (1000 keys)"},
            {"bulk get: typed_map::get_many (HMGET 1000 fields) vs MGET 1000 keys", false, "MGET",
             "key:__rand_int__", peer_flags + " MGET (1000 keys)"},
            {"bulk set: typed_map::set_many vs redis-benchmark HSET of the same hash", true,
             "HSET bench:map", "key:__rand_int__ " + value,
             peer_flags + " HSET bench:map (1000 fields)"},
            {"bulk get: typed_map::get_many vs redis-benchmark HMGET of the same hash", false,
             "HMGET bench:map", "key:__rand_int__", peer_flags + " HMGET bench:map (1000 fields)"},
        };
        for (const scenario& s : scenarios) {
            double o[3], t[3];
            for (int r = 0; r < 3; ++r) {
                o[r] = s.set ? run_ours(cfg, passes, set_chunk) : run_ours(cfg, passes, get_chunk);
                t[r] = run_peer(port, s.peer_command, s.peer_item, passes);
            }
            report(s.name, passes, median(o[0], o[1], o[2]), s.peer_name, median(t[0], t[1], t[2]));
        }
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_kv: " << e.what() << "\n";
        return 1;
    }
}
