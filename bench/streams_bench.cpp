// Messaging throughput: stream producer, stream batcher and pub/sub fan-out, against the Node
// peer (plain ioredis, bench/peers/streams) on the same workloads, in one run.
//
//   akv_bench_streams [--quick] [--rounds R] [--only SUBSTRING] [--no-peer]
//                     [--peer PATH/TO/bench_streams.sh]
//
// Default: N = 200000 entries, 3 s of publishing, 3 rounds (each side's median is reported);
// --quick: N = 20000, 1 s. --only runs the scenarios whose name contains SUBSTRING.
//
// Scenarios (N entries {t: 44 float32 LE (176 bytes), id: "<i>"}, the peer's inputs):
//   xadd_pipelined   stream_producer::add_many, sequential requests of 1000 XADDs
//   xadd_coroutines  64 coroutines each calling stream_producer::add, one entry at a time
//                    (automatic pipelining on one connection); against the peer's pipelines
//   batcher_b64_l2   N entries prefilled, then 2 batchers (max_batch 64), a client each (the
//                    peer: a connection per loop): decode, logistic model, one MULTI/EXEC
//                    commit per batch (outputs + XACK) with the next batch's read in its
//                    round trip
//   pubsub_1_to_S    one publisher pipelining PUBLISH of 100 bytes to S subscriber clients
//
// redis_bound_per_s (batcher): entries per second of Redis CPU, i.e. the most one Redis core
// could take of that side's commands however fast its client; peer_redis_bound_per_s likewise.
//
// Ours run on a private embedded_server, the peer on its own redis-server (its script starts
// one). Prints one JSON line per scenario: ours, the peer's, and ours / peer.
#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/messaging/batcher.hpp>
#include <akv/messaging/stream.hpp>
#include <akv/messaging/subscriber.hpp>
#include <akv/ml/model.hpp>
#include <akv/ml/tensor.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "bench_support.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace json = boost::json;
using akv::messaging::field_list;
using akv::messaging::stream_entry;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

using namespace akv::bench; // the helpers every benchmark shares (bench_support.hpp)

constexpr std::size_t dim = 44;                          // floats per entry
constexpr std::size_t entry_bytes = dim * sizeof(float); // the `t` field
constexpr long pipeline = 1000;                          // XADDs per add_many request
constexpr int producer_coroutines = 64;
constexpr std::size_t batch_size = 64;
constexpr int batcher_loops = 2;
// A batch short of max_batch waits this long for more (the peer's BLOCK 100 returns at once):
// the last, partial batch of a run adds up to this much to our time.
constexpr auto batch_max_wait = std::chrono::milliseconds(100);
constexpr std::size_t publish_pipeline = 1000; // PUBLISHes per request
constexpr int publishers_in_flight = 2;
constexpr std::size_t message_bytes = 100;
constexpr std::size_t verify_outputs = 1000; // outputs re-scored, as the peer's VERIFY
constexpr auto scenario_deadline = 60s; // a batcher that stops committing must not hang the run

// The peer's input generator (mulberry32), so both sides score the very same rows.
class mulberry32 {
public:
    explicit mulberry32(std::uint32_t seed)
        : state_(seed) {}
    double operator()() {
        state_ += 0x6D2B79F5u;
        std::uint32_t t = state_;
        t = (t ^ (t >> 15)) * (t | 1u);
        t ^= t + (t ^ (t >> 7)) * (t | 61u);
        return double(t ^ (t >> 14)) / 4294967296.0;
    }

private:
    std::uint32_t state_;
};

// n rows of 44 float32 in [-1, 1), as raw little-endian bytes: row i is entry i's `t`.
std::string make_inputs(long n) {
    std::vector<float> values(std::size_t(n) * dim);
    mulberry32 next(42);
    for (float& v : values)
        v = float(next() * 2 - 1);
    return {reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)};
}

field_list entry_fields(const std::string& inputs, long i) {
    return {{"t", inputs.substr(std::size_t(i) * entry_bytes, entry_bytes)},
            {"id", std::to_string(i)}};
}

// CPU time used so far by the server (INFO cpu, all its threads) and by this process.
struct cpu_seconds {
    double redis = 0;
    double client = 0;
    cpu_seconds operator-(const cpu_seconds& o) const {
        return {redis - o.redis, client - o.client};
    }
};

asio::awaitable<cpu_seconds> cpu_now(akv::client& redis) {
    akv::request req;
    req.push("INFO", "cpu");
    akv::response<std::string> resp;
    co_await redis.exec(req, resp);
    const std::string& info = std::get<0>(resp).value();
    co_return cpu_seconds{info_number(info, "used_cpu_user:") + info_number(info, "used_cpu_sys:"),
                          process_cpu_seconds()};
}

// ---- xadd

asio::awaitable<void> add_pipelined(akv::messaging::stream_producer& producer,
                                    const std::string& inputs, long n) {
    for (long done = 0; done < n;) {
        const long end = std::min(n, done + pipeline);
        std::vector<field_list> entries;
        entries.reserve(std::size_t(end - done));
        for (long i = done; i < end; ++i)
            entries.push_back(entry_fields(inputs, i));
        co_await producer.add_many(entries);
        done = end;
    }
}

asio::awaitable<void> add_one_at_a_time(akv::messaging::stream_producer& producer,
                                        const std::string& inputs, long& next, long n) {
    while (next < n) {
        const field_list fields = entry_fields(inputs, next++);
        co_await producer.add(fields);
    }
}

struct xadd_result {
    double seconds = 0;
    long long in_len = 0;
    cpu_seconds cpu;
};

xadd_result run_xadd(const akv::config& cfg, const std::string& inputs, long n, bool coroutines) {
    xadd_result r;
    run_with_client(cfg, [&](akv::client& redis) -> asio::awaitable<void> {
        co_await flushall(redis); // also connects before the clock starts
        akv::messaging::stream_producer producer(redis, "in");
        long next = 0;
        const cpu_seconds cpu_before = co_await cpu_now(redis);
        const auto start = clock_type::now();
        if (coroutines)
            co_await all_of(producer_coroutines,
                            [&](int) { return add_one_at_a_time(producer, inputs, next, n); });
        else
            co_await add_pipelined(producer, inputs, n);
        r.seconds = seconds_between(start, clock_type::now());
        r.cpu = co_await cpu_now(redis) - cpu_before;
        akv::request xlen;
        xlen.push("XLEN", "in");
        r.in_len = co_await integer_command(redis, std::move(xlen));
    });
    return r;
}

// ---- batcher

// The peer's model: sigmoid(dot(row, W) + 0.1), W[j] = float(0.5 sin(j + 1)).
akv::ml::logistic_model peer_model() {
    std::vector<float> w(dim);
    for (std::size_t j = 0; j < dim; ++j)
        w[j] = float(0.5 * std::sin(double(j + 1)));
    return {std::move(w), 0.1f};
}

// Entry i's score as the peer computes it (in double), to check ours against.
double reference_score(const std::string& inputs, long i) {
    std::array<float, dim> row;
    std::memcpy(row.data(), inputs.data() + std::size_t(i) * entry_bytes, entry_bytes);
    double z = 0.1;
    for (std::size_t j = 0; j < dim; ++j)
        z += double(row[j]) * double(float(0.5 * std::sin(j + 1.0)));
    return 1 / (1 + std::exp(-z));
}

// The batch handler: the batch's `t` fields into one rows x 44 matrix, one predict() call,
// one output {id, score} per input.
class scorer {
public:
    explicit scorer(const akv::ml::logistic_model& model)
        : model_(model) {}

    asio::awaitable<std::vector<field_list>> operator()(std::span<const stream_entry> batch) {
        inputs_.resize(batch.size() * dim);
        scores_.resize(batch.size());
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const std::string* t = batch[i].field("t");
            if (!t) throw std::runtime_error("entry " + batch[i].id + " has no field t");
            akv::ml::raw_f32_into(*t, std::span(inputs_).subspan(i * dim, dim));
        }
        model_.predict(inputs_, batch.size(), scores_);
        std::vector<field_list> outputs;
        outputs.reserve(batch.size());
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const std::string* id = batch[i].field("id");
            char score[32];
            std::snprintf(score, sizeof score, "%.6f", double(scores_[i]));
            outputs.push_back({{"id", id ? *id : std::string()}, {"score", score}});
        }
        co_return outputs;
    }

private:
    const akv::ml::logistic_model& model_;
    std::vector<float> inputs_;
    std::vector<float> scores_;
};

struct batcher_result {
    long long committed = 0;
    double seconds = 0;
    long long out_len = 0;
    std::size_t pending = 0;
    std::uint64_t batches = 0;
    std::uint64_t handler_failures = 0;
    std::size_t verified = 0;
    double verify_max_abs_err = 0;
    cpu_seconds cpu;
    bool ok(long n) const {
        return committed == n && out_len == n && pending == 0 && verified > 0 &&
               verify_max_abs_err < 1e-5;
    }
};

asio::awaitable<void> commit_until(akv::messaging::batcher& b, long long& committed, long n,
                                   clock_type::time_point& last_commit,
                                   clock_type::time_point deadline) {
    while (committed < n && clock_type::now() < deadline) {
        const std::size_t entries = co_await b.run_once();
        if (entries == 0) continue;
        committed += static_cast<long long>(entries);
        last_commit = clock_type::now();
    }
}

batcher_result run_batcher(const akv::config& cfg, const std::string& inputs, long n) {
    batcher_result r;
    run_with_client(cfg, [&](akv::client& redis) -> asio::awaitable<void> {
        co_await flushall(redis);
        akv::messaging::stream_producer producer(redis, "in");
        co_await add_pipelined(producer, inputs, n);

        const akv::ml::logistic_model model = peer_model();
        // One client (connection) per batcher, as the peer gives each loop its own: on one
        // connection Redis answers pipelined requests together, so the batchers would take
        // turns instead of overlapping.
        std::vector<std::unique_ptr<akv::client>> lanes;
        int lanes_running = 0;
        for (int i = 0; i < batcher_loops; ++i) {
            lanes.push_back(
                std::make_unique<akv::client>(co_await asio::this_coro::executor, cfg));
            ++lanes_running;
            asio::co_spawn(co_await asio::this_coro::executor, lanes.back()->run(),
                           [&lanes_running](std::exception_ptr) { --lanes_running; });
            akv::request dbsize; // connects before the clock starts
            dbsize.push("DBSIZE");
            co_await integer_command(*lanes.back(), std::move(dbsize));
        }
        std::vector<std::unique_ptr<scorer>> scorers;
        std::vector<std::unique_ptr<akv::messaging::batcher>> batchers;
        for (int i = 0; i < batcher_loops; ++i) {
            akv::messaging::batcher_options options;
            options.group = {.stream = "in", .group = "g", .consumer = "c" + std::to_string(i)};
            options.output_stream = "out";
            options.max_batch = batch_size;
            options.max_wait = batch_max_wait;
            options.claim_every = 1s;
            scorers.push_back(std::make_unique<scorer>(model));
            batchers.push_back(std::make_unique<akv::messaging::batcher>(
                *lanes[std::size_t(i)], std::move(options),
                [&s = *scorers.back()](std::span<const stream_entry> batch) { return s(batch); }));
        }
        co_await batchers[0]->group().create(); // at id 0: the whole backlog

        const cpu_seconds cpu_before = co_await cpu_now(redis);
        const auto start = clock_type::now();
        auto last_commit = start;
        co_await all_of(batcher_loops, [&](int i) {
            return commit_until(*batchers[std::size_t(i)], r.committed, n, last_commit,
                                start + scenario_deadline);
        });
        r.seconds = seconds_between(start, last_commit);
        r.cpu = co_await cpu_now(redis) - cpu_before;

        akv::request xlen;
        xlen.push("XLEN", "out");
        r.out_len = co_await integer_command(redis, std::move(xlen));
        r.pending = co_await batchers[0]->group().pending();

        akv::request range;
        range.push("XRANGE", "out", "-", "+", "COUNT", verify_outputs);
        akv::response<akv::resp::value> rows;
        co_await redis.exec(range, rows);
        for (const stream_entry& e : akv::messaging::entries_from(std::get<0>(rows).value())) {
            const std::string* id = e.field("id");
            const std::string* score = e.field("score");
            const double err =
                id && score ? std::abs(reference_score(inputs, std::stol(*id)) - std::stod(*score))
                            : INFINITY;
            r.verify_max_abs_err = std::max(r.verify_max_abs_err, err);
            ++r.verified;
        }
        for (const auto& b : batchers) {
            r.batches += b->stats().batches;
            r.handler_failures += b->stats().handler_failures;
        }
        batchers.clear();
        for (const auto& lane : lanes)
            lane->cancel();
        asio::steady_timer tick(co_await asio::this_coro::executor);
        while (lanes_running > 0) { // a client must outlive its run()
            tick.expires_after(1ms);
            co_await tick.async_wait(asio::use_awaitable);
        }
    });
    return r;
}

// ---- pub/sub

struct pubsub_result {
    long long published = 0;
    long long receivers = 0; // sum of PUBLISH replies
    long long delivered = 0;
    std::uint64_t dropped = 0; // by the subscriptions' drop_oldest queues
    std::uint64_t disconnects = 0;
    double publish_seconds = 0;
    double seconds = 0; // first publish -> last delivery
    cpu_seconds cpu;
};

asio::awaitable<void> publish_until(akv::client& publisher, clock_type::time_point end,
                                    pubsub_result& r) {
    const std::string payload(message_bytes, 'a');
    akv::request req;
    akv::generic_response resp;
    while (clock_type::now() < end) {
        req.clear();
        for (std::size_t k = 0; k < publish_pipeline; ++k)
            req.push("PUBLISH", "ch", payload);
        co_await publisher.exec(req, resp);
        for (const auto& reply : resp)
            r.receivers += std::stoll(reply.value().str);
        r.published += static_cast<long long>(publish_pipeline);
    }
}

asio::awaitable<void> count_messages(akv::messaging::subscription& sub, long long& delivered,
                                     clock_type::time_point& last_delivery) {
    for (;;) {
        co_await sub.receive(); // throws subscription_closed once the scenario is over
        ++delivered;
        last_delivery = clock_type::now();
    }
}

pubsub_result run_pubsub(const akv::config& cfg, int subscribers, double publish_seconds) {
    pubsub_result r;
    asio::io_context io(1);
    // Declared before what refers to them: destroyed after.
    std::vector<std::unique_ptr<akv::client>> clients; // [0] publishes, the others subscribe
    std::vector<std::unique_ptr<akv::messaging::subscriber>> hubs;
    std::vector<std::shared_ptr<akv::messaging::subscription>> subscriptions;
    for (int i = 0; i <= subscribers; ++i) {
        clients.push_back(std::make_unique<akv::client>(io.get_executor(), cfg));
        asio::co_spawn(io, clients.back()->run(), asio::detached);
        if (i > 0) hubs.push_back(std::make_unique<akv::messaging::subscriber>(*clients.back()));
    }
    clock_type::time_point start, last_delivery;
    bool publishing = false;
    std::exception_ptr failure, publish_failure;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            co_await flushall(*clients[0]);
            const std::vector<std::string> channels{"ch"};
            const akv::messaging::subscription_options options{
                .capacity = 1 << 16, .policy = akv::messaging::overflow_policy::drop_oldest};
            for (auto& hub : hubs)
                subscriptions.push_back(co_await hub->subscribe(channels, options));
            for (auto& sub : subscriptions)
                asio::co_spawn(ex, count_messages(*sub, r.delivered, last_delivery),
                               asio::detached);

            const cpu_seconds cpu_before = co_await cpu_now(*clients[0]);
            start = last_delivery = clock_type::now();
            const auto publish_end = start + std::chrono::duration_cast<clock_type::duration>(
                                                 std::chrono::duration<double>(publish_seconds));
            publishing = true;
            asio::co_spawn(ex,
                           all_of(publishers_in_flight,
                                  [&](int) { return publish_until(*clients[0], publish_end, r); }),
                           [&](std::exception_ptr e) {
                               publish_failure = e;
                               publishing = false;
                               r.publish_seconds = seconds_between(start, clock_type::now());
                           });

            // As the peer: until every message is delivered, or no progress for 1 s.
            const auto hard_end = publish_end + 16s;
            asio::steady_timer tick(ex);
            long long seen = -1;
            auto last_progress = clock_type::now();
            for (;;) {
                tick.expires_after(50ms);
                co_await tick.async_wait(asio::use_awaitable);
                const auto now = clock_type::now();
                if (r.delivered != seen) {
                    seen = r.delivered;
                    last_progress = now;
                }
                if (now > hard_end) break;
                if (publishing) continue;
                if (r.delivered >= r.published * subscribers || now - last_progress > 1s) break;
            }
            r.seconds = seconds_between(start, last_delivery);
            r.cpu = co_await cpu_now(*clients[0]) - cpu_before;
            for (const auto& sub : subscriptions)
                r.dropped += sub->dropped();
            for (std::size_t i = 1; i < clients.size(); ++i)
                r.disconnects += clients[i]->stats().connections.disconnects;
            if (publish_failure) std::rethrow_exception(publish_failure);
        },
        [&](std::exception_ptr e) {
            failure = e;
            for (auto& hub : hubs)
                hub->stop();
            for (auto& c : clients)
                c->cancel();
        });
    io.run();
    if (failure) std::rethrow_exception(failure);
    return r;
}

// ---- the peer

// The peer's JSON lines by scenario name. `bench_dir` keeps its npm install (BENCH_DIR),
// `scenarios` is a regex of the scenario names to run (SCENARIOS), and its stderr (npm,
// progress) is appended to `log_path`.
std::map<std::string, json::object> run_peer(const std::string& script,
                                             const std::string& bench_dir, long n,
                                             double publish_seconds, const std::string& scenarios,
                                             const std::string& log_path) {
    const std::string cmd = "N=" + std::to_string(n) + " PIPE=" + std::to_string(pipeline) +
                            " BATCHES=" + std::to_string(batch_size) +
                            " LOOPS=" + std::to_string(batcher_loops) +
                            " PUB_SUBS=1,100 PUB_SECONDS=" + number_text(publish_seconds) +
                            " SCENARIOS='" + scenarios + "' BENCH_DIR='" + bench_dir + "' '" +
                            script + "' " + std::to_string(free_port()) + " 2>>'" + log_path + "'";
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
    if (!pipe) throw std::runtime_error("cannot run: " + cmd);
    std::map<std::string, json::object> lines;
    std::array<char, 1 << 16> buf;
    while (std::fgets(buf.data(), buf.size(), pipe.get())) {
        json::error_code ec;
        json::value v = json::parse(buf.data(), ec);
        if (ec || !v.is_object()) continue;
        json::object& o = v.as_object();
        if (const auto* scenario = o.if_contains("scenario"); scenario && scenario->is_string())
            lines[std::string(scenario->as_string())] = std::move(o);
    }
    return lines;
}

// The last `lines` lines of the file at `path` (the peer's log is gone after the run).
std::string log_tail(const std::string& path, std::size_t lines) {
    std::string out;
    for (const std::string& line : last_lines(path, lines))
        out += "  " + line + "\n";
    return out;
}

// ---- output

// One JSON object on one line, fields in the order they are added.
class json_line {
public:
    json_line& text(std::string_view key, std::string_view value) {
        field(key);
        fields_ += json::serialize(json::string_view(value.data(), value.size()));
        return *this;
    }
    json_line& integer(std::string_view key, long long value) {
        field(key);
        fields_ += std::to_string(value);
        return *this;
    }
    json_line& number(std::string_view key, std::optional<double> value, int decimals) {
        field(key);
        append_number(value, decimals);
        return *this;
    }
    json_line& numbers(std::string_view key, const std::vector<std::optional<double>>& values,
                       int decimals) {
        field(key);
        fields_ += '[';
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (i > 0) fields_ += ',';
            append_number(values[i], decimals);
        }
        fields_ += ']';
        return *this;
    }
    json_line& boolean(std::string_view key, bool value) {
        field(key);
        fields_ += value ? "true" : "false";
        return *this;
    }
    // A field of the peer's line as it is, if present.
    json_line& copy(std::string_view key, const json::object* from, std::string_view peer_key) {
        const json::value* v = from ? from->if_contains(peer_key) : nullptr;
        if (!v) return *this;
        if (v->is_double()) return number(key, v->get_double(), 3); // not Boost.JSON's 2.5E-1
        field(key);
        fields_ += json::serialize(*v);
        return *this;
    }
    json_line& append(const json_line& other) {
        if (!other.fields_.empty()) fields_ += (fields_.empty() ? "" : ",") + other.fields_;
        return *this;
    }
    void print() const { print_object_line(fields_); }

private:
    void field(std::string_view key) {
        if (!fields_.empty()) fields_ += ',';
        fields_ += '"';
        fields_ += key;
        fields_ += "\":";
    }
    void append_number(std::optional<double> value, int decimals) {
        append_fixed(fields_, value, decimals);
    }
    std::string fields_;
};

// ---- scenarios

// One run of one of our scenarios.
struct outcome {
    double per_s = 0;
    bool ok = false;
    json_line details; // the scenario's own fields (entries, seconds, lost, ...)
};

// As the peer's redis_cpu_us_per_<unit> and node_cpu_us_per_<unit>.
void add_cpu(json_line& line, const cpu_seconds& cpu, double units, const std::string& unit) {
    line.number("redis_cpu_us_per_" + unit, cpu.redis * 1e6 / units, 3);
    line.number("client_cpu_us_per_" + unit, cpu.client * 1e6 / units, 3);
}

outcome xadd_outcome(const xadd_result& r, long n, bool coroutines) {
    outcome o{double(n) / r.seconds, r.in_len == n, {}};
    o.details.integer("entries", n).number("seconds", r.seconds, 3);
    if (coroutines)
        o.details.integer("coroutines", producer_coroutines);
    else
        o.details.integer("pipeline", pipeline);
    add_cpu(o.details, r.cpu, double(n), "entry");
    return o;
}

outcome batcher_outcome(const batcher_result& r, long n) {
    outcome o{double(r.committed) / r.seconds, r.ok(n), {}};
    o.details.integer("entries", r.committed).number("seconds", r.seconds, 3);
    o.details.integer("batch", batch_size).integer("loops", batcher_loops);
    o.details.integer("max_wait_ms", batch_max_wait.count());
    o.details.integer("batches", static_cast<long long>(r.batches));
    o.details.integer("out_len", r.out_len).integer("pending", static_cast<long long>(r.pending));
    o.details.integer("handler_failures", static_cast<long long>(r.handler_failures));
    o.details.integer("verify_n", static_cast<long long>(r.verified));
    o.details.number("verify_max_abs_err", r.verify_max_abs_err, 9);
    add_cpu(o.details, r.cpu, double(r.committed), "entry");
    if (r.cpu.redis > 0) o.details.number("redis_bound_per_s", double(r.committed) / r.cpu.redis, 0);
    return o;
}

outcome pubsub_outcome(const pubsub_result& r, int subscribers) {
    const long long lost = r.published * subscribers - r.delivered;
    outcome o{double(r.delivered) / r.seconds, lost == 0 && r.published > 0, {}};
    o.details.integer("subscribers", subscribers).integer("msg_bytes", message_bytes);
    o.details.integer("published", r.published).integer("delivered", r.delivered);
    o.details.integer("lost", lost).integer("dropped", static_cast<long long>(r.dropped));
    o.details.integer("sub_disconnects", static_cast<long long>(r.disconnects));
    o.details.integer("redis_receivers", r.receivers);
    o.details.number("publish_seconds", r.publish_seconds, 3).number("seconds", r.seconds, 3);
    o.details.text("publisher", "same thread");
    add_cpu(o.details, r.cpu, double(r.published), "publish");
    return o;
}

struct scenario {
    std::string name;
    std::string peer_name;                // the peer's scenario it is compared with
    std::string peer_rate;                // the peer's figure: entries_per_s, ...
    std::vector<std::string> peer_fields; // copied from the peer's line as peer_<field>
    std::function<outcome()> run;
    std::vector<outcome> ours;                       // one per round
    std::vector<std::optional<json::object>> theirs; // one per round
};

// The index of the median of `values` (the lower one of an even count).
template <class T> std::size_t median_index(const std::vector<T>& values) {
    std::vector<std::size_t> order(values.size());
    for (std::size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::ranges::sort(order, {}, [&](std::size_t i) { return values[i]; });
    return order[(order.size() - 1) / 2];
}

std::optional<double> peer_rate(const std::optional<json::object>& line, const std::string& key) {
    return number_field(line ? &*line : nullptr, key);
}

// The median of our rounds against the median of the peer's rounds.
void report(const scenario& s) {
    std::vector<double> ours;
    bool all_ok = true;
    for (const outcome& o : s.ours) {
        ours.push_back(o.per_s);
        all_ok = all_ok && o.ok;
    }
    const outcome& mid = s.ours[median_index(ours)];

    std::vector<std::optional<double>> theirs_all;
    std::vector<double> theirs;
    std::vector<std::size_t> theirs_round;
    for (std::size_t r = 0; r < s.theirs.size(); ++r) {
        theirs_all.push_back(peer_rate(s.theirs[r], s.peer_rate));
        if (theirs_all.back()) {
            theirs.push_back(*theirs_all.back());
            theirs_round.push_back(r);
        }
    }
    const json::object* peer_line = nullptr;
    std::optional<double> peer_per_s;
    if (!theirs.empty()) {
        const std::size_t r = theirs_round[median_index(theirs)];
        peer_line = &*s.theirs[r];
        peer_per_s = theirs_all[r];
    }
    std::string peer = "node ioredis";
    if (const json::value* v = peer_line ? peer_line->if_contains("version") : nullptr;
        v && v->is_string())
        peer += " " + std::string(v->as_string());
    peer += " " + s.peer_name;
    if (!peer_line) peer += " (no result)";

    json_line line;
    line.text("bench", "streams").text("scenario", s.name).number("ours_per_s", mid.per_s, 0);
    line.text("peer", peer).number("peer_per_s", peer_per_s, 0);
    std::optional<double> ratio;
    if (peer_per_s && *peer_per_s > 0) ratio = mid.per_s / *peer_per_s;
    line.number("ratio", ratio, 2);
    line.append(mid.details).boolean("ok", all_ok);
    for (const std::string& f : s.peer_fields)
        line.copy("peer_" + f, peer_line, f);
    if (s.name.rfind("batcher", 0) == 0) { // as our redis_bound_per_s, from the peer's figure
        const auto us = number_field(peer_line, "redis_cpu_us_per_entry");
        line.number("peer_redis_bound_per_s",
                    us && *us > 0 ? std::optional<double>(1e6 / *us) : std::nullopt, 0);
    }
    line.numbers("ours_runs", {ours.begin(), ours.end()}, 0).numbers("peer_runs", theirs_all, 0);
    line.print();
}

} // namespace

int main(int argc, char** argv) {
    long n = 200000;
    double publish_seconds = 3;
    int rounds = 3;
    std::string peer_script = (bench_source_dir() / "peers/streams/bench_streams.sh").string();
    std::string only; // run the scenarios whose name contains this
    bool with_peer = true;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--quick") {
            n = 20000;
            publish_seconds = 1;
        } else if (arg == "--rounds" && i + 1 < argc) {
            rounds = std::max(1, std::stoi(argv[++i]));
        } else if (arg == "--only" && i + 1 < argc) {
            only = argv[++i];
        } else if (arg == "--no-peer") {
            with_peer = false;
        } else if (arg == "--peer" && i + 1 < argc) {
            peer_script = argv[++i];
        } else {
            std::cerr << "usage: akv_bench_streams [--quick] [--rounds R] [--only SCENARIO]\n"
                         "                         [--no-peer] [--peer bench_streams.sh]\n";
            return 2;
        }
    }
    namespace fs = std::filesystem;
    const fs::path peer_dir =
        fs::temp_directory_path() / ("akv_bench_streams_peer." + std::to_string(::getpid()));
    try {
        akv::testing::embedded_server server;
        const akv::config cfg = server.config();
        const std::string inputs = make_inputs(n);

        // The peer's figures of each kind of scenario, and the fields of its line to show.
        const std::vector<std::string> xadd_fields{"seconds", "redis_cpu_us_per_entry",
                                                   "node_cpu_us_per_entry"};
        const std::vector<std::string> batcher_fields{"ok", "seconds", "redis_cpu_us_per_entry",
                                                      "node_cpu_us_per_entry"};
        const std::vector<std::string> pubsub_fields{"lost", "published", "publisher_thread",
                                                     "redis_cpu_us_per_publish",
                                                     "node_cpu_us_per_publish"};
        std::vector<scenario> scenarios;
        for (const bool coroutines : {false, true}) {
            auto run = [=, &cfg, &inputs] {
                return xadd_outcome(run_xadd(cfg, inputs, n, coroutines), n, coroutines);
            };
            scenarios.push_back({coroutines ? "xadd_coroutines" : "xadd_pipelined",
                                 "xadd_pipelined", "entries_per_s", xadd_fields, run});
        }
        auto run_batcher_once = [=, &cfg, &inputs] {
            return batcher_outcome(run_batcher(cfg, inputs, n), n);
        };
        scenarios.push_back(
            {"batcher_b64_l2", "batcher_b64", "entries_per_s", batcher_fields, run_batcher_once});
        for (const int subscribers : {1, 100}) {
            const std::string name = "pubsub_1_to_" + std::to_string(subscribers);
            auto run = [=, &cfg] {
                return pubsub_outcome(run_pubsub(cfg, subscribers, publish_seconds), subscribers);
            };
            scenarios.push_back({name, name, "delivered_msgs_per_s", pubsub_fields, run});
        }
        std::erase_if(scenarios,
                      [&](const scenario& s) { return s.name.find(only) == std::string::npos; });
        if (scenarios.empty()) throw std::runtime_error("no scenario matches \"" + only + "\"");

        std::string peer_scenarios; // the peer's SCENARIOS regex
        for (const scenario& s : scenarios)
            peer_scenarios += (peer_scenarios.empty() ? "^(" : "|") + s.peer_name;
        peer_scenarios += ")$";
        // Its npm install is kept here between rounds; its stderr goes to peer.log.
        if (with_peer) fs::create_directories(peer_dir);
        const std::string log_path = (peer_dir / "peer.log").string();

        // Rounds alternate the peer and ours, so a noisy moment on a shared machine does not
        // decide a ratio: each side's median is reported.
        for (int round = 0; round < rounds; ++round) {
            std::map<std::string, json::object> peer;
            if (with_peer) {
                std::cerr << "streams: round " << round + 1 << ": peer " << peer_script << " (log "
                          << log_path << ")\n";
                peer = run_peer(peer_script, peer_dir.string(), n, publish_seconds, peer_scenarios,
                                log_path);
                if (peer.empty())
                    std::cerr << "streams: the peer printed no result; its log ends with:\n"
                              << log_tail(log_path, 20);
            }
            for (scenario& s : scenarios) {
                std::cerr << "streams: round " << round + 1 << ": " << s.name << "\n";
                s.ours.push_back(s.run());
                const auto it = peer.find(s.peer_name);
                s.theirs.push_back(it == peer.end() ? std::nullopt
                                                    : std::optional<json::object>(it->second));
            }
        }
        for (const scenario& s : scenarios)
            report(s);
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_streams: " << e.what() << "\n";
        return 1;
    }
    std::error_code ignored;
    fs::remove_all(peer_dir, ignored);
}
