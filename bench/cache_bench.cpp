// Client-side caching (config::cache) on the workload of ML serving: 50 coroutines on one client
// read 1,000,000 keys of 100 bytes with Zipf(0.99) popularity, while another client overwrites
// keys (the same popularity), one write for every 99 reads. Four figures, in one run against
// one private redis-server:
//
//   uncached   ours, the cache off
//   cached     ours, the cache on (tracking mode, a 512 MB budget), after a warm-up: a hit
//              answered in place (client::try_cached), a miss through exec()
//   awaited    the same, every read a co_await of exec() (a hit still completes by a post)
//   peer       redis-benchmark -c 50 -P 16 GET over the same keys: what the wire allows
//
// and embedding_table::find of the same 1,024 hot keys (64 floats each), cache off and on.
// Stale reads are counted: a read that returns a version older than one the writer had been
// acknowledged for before the reader was told the key changed.
//
//   akv_bench_cache [--quick]
//
// Prints one JSON line per scenario.
#include "bench_support.hpp"

#include <akv/client.hpp>
#include <akv/kv/embedding_table.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr int readers = 50;
constexpr std::size_t value_bytes = 100;
constexpr std::size_t cache_budget = std::size_t{512} << 20;

// redis-benchmark's key names (-r N: "key:" and 12 digits), so that the peer reads our values.
std::string key_name(std::size_t i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "key:%012zu", i);
    return buf;
}

std::size_t key_index(std::string_view key) {
    std::size_t i = 0;
    if (key.size() > 4) std::from_chars(key.data() + 4, key.data() + key.size(), i);
    return i;
}

std::string value_of(std::uint32_t version) {
    std::string v = "v" + std::to_string(version) + ":";
    v.resize(value_bytes, 'x');
    return v;
}

std::uint32_t version_in(const std::string& v) {
    std::uint32_t n = 0;
    if (v.size() > 1) std::from_chars(v.data() + 1, v.data() + v.size(), n);
    return n;
}

// A long sequence of key indices drawn from Zipf(s) over `keys`: the readers and the writer
// walk it from different offsets, so no draw is made while the clock runs.
std::vector<std::uint32_t> zipf_sequence(std::size_t keys, double s, std::size_t length,
                                         unsigned seed) {
    std::vector<double> cdf(keys);
    double sum = 0;
    for (std::size_t i = 0; i < keys; ++i) {
        sum += 1.0 / std::pow(double(i + 1), s);
        cdf[i] = sum;
    }
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0, sum);
    std::vector<std::uint32_t> out(length);
    for (auto& o : out)
        o = static_cast<std::uint32_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) -
                                       cdf.begin());
    // Popularity must not follow key order (neighbours share pages, slots, buckets).
    std::vector<std::uint32_t> perm(keys);
    for (std::size_t i = 0; i < keys; ++i)
        perm[i] = static_cast<std::uint32_t>(i);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (auto& o : out)
        o = perm[o];
    return out;
}

// The server's config, with the cache on (tracking mode, the budget, no age limit: the bench
// measures invalidation) or as it is.
akv::config with_cache(akv::config cfg, bool cached) {
    if (cached) {
        cfg.cache.kind = akv::cache_options::mode::tracking;
        cfg.cache.max_bytes = cache_budget;
        cfg.cache.ttl = 0ms;
    }
    return cfg;
}

// One bucket that takes `keys` keys in one HMGET: the whole hot set is one request.
akv::tfra_options one_bucket(std::size_t keys) {
    akv::tfra_options options;
    options.storage_slice = 1;
    options.keys_sending_size = keys;
    options.table_store_mode = 2;
    return options;
}

asio::awaitable<void> load(akv::client& c, std::size_t keys) {
    constexpr std::size_t per_request = 1000;
    for (std::size_t first = 0; first < keys; first += per_request) {
        akv::request req;
        for (std::size_t i = first; i < std::min(keys, first + per_request); ++i)
            req.push("SET", key_name(i), value_of(0));
        co_await c.exec(req, akv::ignore);
    }
}

struct run_result {
    double reads_per_s = 0;
    double writes_per_s = 0;
    std::uint64_t stale = 0;
    akv::cache_stats cache;
    double rss_mb = 0; // the process, at the end of the measured seconds
    double warm_up_s = 0;
    akv::cache_stats at_start; // when the clock started
    double cpu_pct = 0;        // this process (readers, writer, the cache), while measured
};

double rss_mb() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return double(resident) * double(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// The readers for `measure` after a warm-up, the writer all along (one write per 99 reads, so
// the faster the reads the more they are invalidated). The warm-up
// lasts `warm_up`, and with the cache on, until a second passes with under 1% of the reads
// missing (at most `warm_up_max`): a serving process runs for hours, so the steady state is
// what counts, not the minute in which every key is read for the first time.
run_result run_reads(const akv::config& server_cfg, bool cached, bool sync, std::size_t keys,
                     const std::vector<std::uint32_t>& seq, std::chrono::milliseconds warm_up,
                     std::chrono::milliseconds measure,
                     std::chrono::milliseconds warm_up_max = 0ms) {
    asio::io_context io(1);
    akv::client reader(io.get_executor(), with_cache(server_cfg, cached));
    akv::client writer(io.get_executor(), server_cfg);
    asio::co_spawn(io, reader.run(), [](std::exception_ptr) {});
    asio::co_spawn(io, writer.run(), [](std::exception_ptr) {});

    // What the writer has been acknowledged for, and what it had been when the reader was last
    // told about each key.
    std::vector<std::uint32_t> acked(keys, 0), acked_at_notice(keys, 0);
    reader.add_invalidation_listener([&](std::span<const std::string_view> changed) {
        if (changed.empty()) {
            acked_at_notice = acked;
            return;
        }
        for (std::string_view k : changed) {
            const std::size_t i = key_index(k);
            if (i < keys) acked_at_notice[i] = acked[i];
        }
    });

    run_result out;
    bool counting = false, stopping = false;
    std::uint64_t reads = 0, writes = 0, all_reads = 0;
    auto read_loop = [&](std::size_t offset) -> asio::awaitable<void> {
        akv::request::options o;
        o.cache = true;
        akv::response<std::string> resp;
        std::size_t at = offset;
        while (!stopping) {
            const std::uint32_t k = seq[at++ % seq.size()];
            akv::request req(o);
            req.push("GET", key_name(k));
            const std::uint32_t bound = acked_at_notice[k];
            // sync: a hit answered in place (client::try_cached), the rest through exec().
            if (!sync || !reader.try_cached(req, resp)) co_await reader.exec(req, resp);
            if (version_in(std::get<0>(resp).value()) < bound) ++out.stale;
            ++all_reads;
            if (counting) ++reads;
        }
    };
    auto write_loop = [&]() -> asio::awaitable<void> {
        asio::steady_timer tick(co_await asio::this_coro::executor);
        std::size_t at = seq.size() / 2;
        std::uint32_t version = 0;
        double owed = 0;
        std::uint64_t reads_seen = 0;
        auto next = clock_type::now();
        while (!stopping) {
            next += 1ms;
            tick.expires_at(next);
            co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
            // One write for every 99 reads done since the last tick (1% of the operations).
            owed += double(all_reads - reads_seen) / 99.0;
            reads_seen = all_reads;
            if (owed < 1) continue;
            akv::request req;
            std::vector<std::pair<std::uint32_t, std::uint32_t>> sent;
            for (; owed >= 1; owed -= 1) {
                const std::uint32_t k = seq[at++ % seq.size()];
                req.push("SET", key_name(k), value_of(++version));
                sent.emplace_back(k, version);
            }
            co_await writer.exec(req, akv::ignore);
            for (auto [k, v] : sent)
                acked[k] = std::max(acked[k], v);
            if (counting) writes += sent.size();
        }
    };
    std::exception_ptr failure;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            akv::request ping;
            ping.push("PING");
            co_await reader.exec(ping, akv::ignore);
            co_await writer.exec(ping, akv::ignore);
            auto ex = co_await asio::this_coro::executor;
            const auto started = clock_type::now();
            asio::co_spawn(ex, write_loop(), asio::detached);
            asio::steady_timer phase(ex);
            int running = readers;
            for (int r = 0; r < readers; ++r)
                asio::co_spawn(ex, read_loop(std::size_t(r) * (seq.size() / readers)),
                               [&](std::exception_ptr e) {
                                   if (e && !failure) failure = e;
                                   --running;
                               });
            phase.expires_after(warm_up);
            co_await phase.async_wait(asio::as_tuple(asio::use_awaitable));
            const auto warm_deadline = clock_type::now() + std::max(warm_up_max, warm_up);
            auto before = reader.stats().cache;
            while (cached && clock_type::now() < warm_deadline) {
                phase.expires_after(1s);
                co_await phase.async_wait(asio::as_tuple(asio::use_awaitable));
                const auto now = reader.stats().cache;
                const double missed =
                    double(now.misses + now.not_cached - before.misses - before.not_cached);
                const double all = missed + double(now.hits - before.hits);
                before = now;
                if (all > 0 && missed / all < 0.01) break;
            }
            out.warm_up_s = akv::bench::seconds_between(started, clock_type::now());
            out.at_start = reader.stats().cache;
            const double cpu_start = akv::bench::process_cpu_seconds();
            counting = true;
            const auto start = clock_type::now();
            phase.expires_after(measure);
            co_await phase.async_wait(asio::as_tuple(asio::use_awaitable));
            counting = false;
            const double seconds = akv::bench::seconds_between(start, clock_type::now());
            out.reads_per_s = double(reads) / seconds;
            out.writes_per_s = double(writes) / seconds;
            out.cpu_pct = 100.0 * (akv::bench::process_cpu_seconds() - cpu_start) / seconds;
            out.rss_mb = rss_mb();
            out.cache = reader.stats().cache;
            stopping = true;
            while (running > 0) {
                phase.expires_after(1ms);
                co_await phase.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            reader.cancel();
            writer.cancel();
        },
        [&](std::exception_ptr e) {
            if (e && !failure) failure = e;
            reader.cancel();
            writer.cancel();
        });
    io.run();
    if (failure) std::rethrow_exception(failure);
    return out;
}

double redis_benchmark_get(std::uint16_t port, std::size_t keys, long requests) {
    const std::string cmd = "redis-benchmark -h 127.0.0.1 -p " + std::to_string(port) +
                            " -c 50 -P 16 -n " + std::to_string(requests) + " -r " +
                            std::to_string(keys) + " -d " + std::to_string(value_bytes) +
                            " -t get --csv 2>/dev/null";
    const std::string out = akv::bench::run_command(cmd);
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind("\"GET\"", 0) != 0) continue;
        const auto first = line.find(",\"") + 2;
        return std::stod(line.substr(first, line.find('"', first) - first));
    }
    throw std::runtime_error("could not read redis-benchmark output: " + out);
}

// finds/s of embedding_table::find of the same `hot` keys, from 8 coroutines on one client.
double embedding_finds(const akv::config& server_cfg, bool cached,
                       const std::vector<std::int64_t>& hot, std::chrono::milliseconds measure,
                       akv::cache_stats& stats) {
    asio::io_context io(1);
    akv::client c(io.get_executor(), with_cache(server_cfg, cached));
    asio::co_spawn(io, c.run(), [](std::exception_ptr) {});
    akv::kv::embedding_table<std::int64_t> table(c, "bench", 64, one_bucket(hot.size()));
    double finds_per_s = 0;
    std::exception_ptr failure;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            const auto init = akv::kv::embedding_initializer::zeros();
            std::vector<float> out(hot.size() * 64);
            std::vector<bool> found;
            co_await table.find_into(hot, init, out, found); // connected, and warm
            bool stopping = false;
            std::uint64_t finds = 0;
            auto ex = co_await asio::this_coro::executor;
            int running = 8;
            for (int w = 0; w < 8; ++w)
                asio::co_spawn(
                    ex,
                    [&]() -> asio::awaitable<void> {
                        std::vector<float> mine(hot.size() * 64);
                        std::vector<bool> mine_found;
                        while (!stopping) {
                            co_await table.find_into(hot, init, mine, mine_found);
                            ++finds;
                        }
                    },
                    [&](std::exception_ptr e) {
                        if (e && !failure) failure = e;
                        --running;
                    });
            asio::steady_timer t(ex);
            const auto start = clock_type::now();
            t.expires_after(measure);
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
            finds_per_s = double(finds) / akv::bench::seconds_between(start, clock_type::now());
            stopping = true;
            while (running > 0) {
                t.expires_after(1ms);
                co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            stats = c.stats().cache;
            c.cancel();
        },
        [&](std::exception_ptr e) {
            if (e && !failure) failure = e;
            c.cancel();
        });
    io.run();
    if (failure) std::rethrow_exception(failure);
    return finds_per_s;
}

} // namespace

int main(int argc, char** argv) {
    const std::optional<bool> quick_arg = akv::bench::quick_option(argc, argv, "akv_bench_cache");
    if (!quick_arg) return 2;
    const bool quick = *quick_arg;
    try {
        const std::size_t keys = quick ? 100000 : 1000000;
        const auto warm_up = quick ? 1000ms : 3000ms;
        const auto measure = quick ? 2000ms : 5000ms;
        akv::testing::embedded_server server;
        const akv::config cfg = server.config();
        {
            asio::io_context io(1);
            akv::client c(io.get_executor(), cfg);
            asio::co_spawn(io, c.run(), [](std::exception_ptr) {});
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    co_await akv::bench::flushall(c);
                    co_await load(c, keys);
                    c.cancel();
                },
                [&](std::exception_ptr e) {
                    if (e) std::rethrow_exception(e);
                });
            io.run();
        }
        const std::vector<std::uint32_t> seq = zipf_sequence(keys, 0.99, 1 << 22, 42);

        const run_result uncached = run_reads(cfg, false, false, keys, seq, warm_up, measure);
        const auto warm_up_max = quick ? 10000ms : 60000ms;
        const run_result awaited =
            run_reads(cfg, true, false, keys, seq, warm_up, measure, warm_up_max);
        const run_result cached =
            run_reads(cfg, true, true, keys, seq, warm_up, measure, warm_up_max);
        const double peer = redis_benchmark_get(server.port(), keys, quick ? 2000000 : 5000000);
        const double ratio = cached.reads_per_s / uncached.reads_per_s;
        const double hit_ratio =
            double(cached.cache.hits) /
            double(std::max<std::uint64_t>(1, cached.cache.hits + cached.cache.misses +
                                                  cached.cache.not_cached));
        const bool within = cached.cache.bytes <= cache_budget;
        std::printf(
            "{\"bench\":\"cache\",\"scenario\":\"zipf_get\",\"keys\":%zu,\"value_bytes\":%zu,"
            "\"zipf_s\":0.99,\"coroutines\":%d,\"write_fraction\":0.01,\"cached_writes_per_s\":%."
            "0f,"
            "\"uncached_reads_per_s\":%.0f,\"cached_reads_per_s\":%.0f,\"ratio\":%.2f,"
            "\"cached_awaited_reads_per_s\":%.0f,\"awaited_ratio\":%.2f,\"awaited_stale_reads\":%"
            "llu,"
            "\"peer\":\"redis-benchmark -c 50 -P 16 GET\",\"peer_reads_per_s\":%.0f,"
            "\"cached_vs_peer\":%.2f,\"hit_ratio\":%.4f,\"invalidations\":%llu,"
            "\"evictions\":%llu,\"stale_reads\":%llu,\"uncached_stale_reads\":%llu,"
            "\"cache_bytes\":%zu,\"cache_entries\":%zu,\"cache_budget_bytes\":%zu,"
            "\"within_budget\":%s,\"uncached_rss_mb\":%.0f,\"cached_rss_mb\":%.0f,\"warm_up_s\":%."
            "1f,"
            "\"uncached_client_cpu_pct\":%.0f,\"cached_client_cpu_pct\":%.0f,\"goal\":\"ratio>=10 "
            "&& "
            "stale_reads==0 && within_budget\",\"goal_met\":%s}\n",
            keys, value_bytes, readers, cached.writes_per_s, uncached.reads_per_s,
            cached.reads_per_s, ratio, awaited.reads_per_s,
            awaited.reads_per_s / uncached.reads_per_s,
            static_cast<unsigned long long>(awaited.stale), peer, cached.reads_per_s / peer,
            hit_ratio, static_cast<unsigned long long>(cached.cache.invalidations),
            static_cast<unsigned long long>(cached.cache.evictions),
            static_cast<unsigned long long>(cached.stale),
            static_cast<unsigned long long>(uncached.stale), cached.cache.bytes,
            cached.cache.entries, cache_budget, within ? "true" : "false", uncached.rss_mb,
            cached.rss_mb, cached.warm_up_s, uncached.cpu_pct, cached.cpu_pct,
            ratio >= 10 && cached.stale == 0 && within ? "true" : "false");
        std::fflush(stdout);

        // embedding_table::find of 1,024 hot keys.
        std::vector<std::int64_t> hot(1024);
        for (std::size_t i = 0; i < hot.size(); ++i)
            hot[i] = static_cast<std::int64_t>(i * 7919 % 100000);
        {
            asio::io_context io(1);
            akv::client c(io.get_executor(), cfg);
            asio::co_spawn(io, c.run(), [](std::exception_ptr) {});
            akv::kv::embedding_table<std::int64_t> table(c, "bench", 64, one_bucket(hot.size()));
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    std::vector<float> values(hot.size() * 64, 0.5f);
                    co_await table.insert(hot, values);
                    c.cancel();
                },
                [&](std::exception_ptr e) {
                    if (e) std::rethrow_exception(e);
                });
            io.run();
        }
        akv::cache_stats off_stats, on_stats;
        const double finds_off = embedding_finds(cfg, false, hot, measure, off_stats);
        const double finds_on = embedding_finds(cfg, true, hot, measure, on_stats);
        const double find_ratio = finds_on / finds_off;
        std::printf("{\"bench\":\"cache\",\"scenario\":\"embedding_find_1024_hot\",\"dim\":64,"
                    "\"coroutines\":8,\"uncached_finds_per_s\":%.0f,\"cached_finds_per_s\":%.0f,"
                    "\"ratio\":%.2f,\"cached_keys_per_s\":%.0f,\"cache_bytes\":%zu,"
                    "\"cache_hits\":%llu,\"cache_misses\":%llu,\"goal\":\"ratio>=20\","
                    "\"goal_met\":%s}\n",
                    finds_off, finds_on, find_ratio, finds_on * double(hot.size()), on_stats.bytes,
                    static_cast<unsigned long long>(on_stats.hits),
                    static_cast<unsigned long long>(on_stats.misses),
                    find_ratio >= 20 ? "true" : "false");
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_cache: " << e.what() << "\n";
        return 1;
    }
}
