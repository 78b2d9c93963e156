// Task queue throughput, Redis cost and latency against BullMQ (bench/peers/queue, the peer
// harness of issue "Task queue"), the same scenarios in one run, and the ratios.
//
//   akv_bench_queue [--quick] [--rounds R] [--only REGEX] [--no-peer]
//                   [--peer PATH/TO/bench_bullmq.sh]
//
// Knobs (env), the names and defaults of the peer's bench.js, passed to it unchanged:
//   N [50000] jobs per throughput scenario   BULK_CHUNK [1000] jobs per enqueue_bulk / addBulk
//   ADD_CONCS [1,100] in-flight single adds  CONCS [1,16,100] worker concurrencies
//   LAT_RATE [1000] jobs/s offered           LAT_SECONDS [10] length of a latency scenario
//   DEADLINE_S [55] cap per scenario         LIBS [bullmq] peer libraries (bullmq,bee)
//   FLOWS [5000] flows of the flow scenario  FLOW_CHILDREN [10] children per flow
//   FLOW_CONC [100] each flow worker's concurrency   FLOW_ADDERS [100] flow adds in flight
//   SCENARIOS [all but profile_cmds] regex on scenario names (= --only)
//   QUICK=1 (= --quick): N 2000, FLOWS 500, LAT_SECONDS 1, DEADLINE_S 20 unless set; ROUNDS [1]
//   (each side's median is reported); PEER=0 (= --no-peer); BENCH_DIR: keep the peer's npm install
//   there between runs (default: a temporary directory, removed at the end); PEER_TIMEOUT_S
//   [1200]: the peer's whole run, npm install included, is stopped after this (no network).
//   PARTITIONED_N [200000; QUICK 8000] jobs of the partitioned scenario (ours only: a run of
//   50,000 lasts half a second, too short to tell 3 partitions from 1 on a busy machine).
// When the peer gives no result (npm install failed, no network, ...), a line
// {"bench":"queue","peer_error":true,"lib":...,"error":...,"log_tail":...} says why and our
// figures are printed all the same, with null for the peer's.
//
// Scenarios (payload {"i":<n>,"t":<ms>}, as the peer's job data):
//   add_bulk          producer::enqueue_bulk of BULK_CHUNK jobs at a time, N jobs
//   add_single_cK     K coroutines each awaiting producer::enqueue, one job at a time
//   process_cK        N jobs prefilled, then one worker (concurrency K, max_batch default)
//                     until all are acked; result_ttl 0 (no result kept), as the peer's
//                     removeOnComplete {count: 0}: "keep_results": false
//   latency_cK        LAT_RATE jobs/s offered for LAT_SECONDS to a running worker
//                     (concurrency K); latency = handler start - enqueue time in the payload
//   flow              FLOWS flows of 1 parent (queue flow_parents) and FLOW_CHILDREN children
//                     (queue flow_children), BullMQ's FlowProducer example: one worker per
//                     queue (concurrency FLOW_CONC), running before the first add; FLOW_ADDERS
//                     coroutines await flow_producer::add; a child returns "1", a parent reads
//                     job_context::children_results(). Timed from the first add to the last
//                     parent completed; figures per flow. The peer: peers/queue/flow.js.
//   partitioned       on a private 3-master cluster (no replicas): PARTITIONED_N jobs in a
//                     partitioned queue (akv/queue/partitioned.hpp) of 3 partitions, one per
//                     master, then one partitioned_worker (concurrency 100) until all are
//                     acked; the same with 1 partition, in the same run. No peer: it reports
//                     both jobs/s, their ratio and each master's Redis CPU (INFO cpu diffs),
//                     against the issue's goals (the busiest master <= 40% of the Redis CPU,
//                     3 partitions >= 1 partition's jobs/s)
// Redis figures as bench.js computes them: INFO cpu (user + sys) and INFO commandstats diffs
// per job, commands run inside Lua included (redis_calls_per_job), EVAL/EVALSHA calls apart.
//
// The peer runs first on its own redis-server (its script starts one; bench_flow.sh, beside
// bench_bullmq.sh, for the flow scenario), then ours on a private
// embedded_server: one after the other, never at once (the machine may have 2 cores).
// One JSON line per scenario: ours (akv_*), BullMQ's (bullmq_*), bee-queue's (bee_*) when run,
// the ratios and the issue's goals for that scenario.
#include <akv/client.hpp>
#include <akv/cluster_slot.hpp>
#include <akv/config.hpp>
#include <akv/queue/admin.hpp>
#include <akv/queue/flow.hpp>
#include <akv/queue/partitioned.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_cluster.hpp>
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
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

using namespace akv::bench; // the helpers every benchmark shares (bench_support.hpp)

constexpr const char* default_scenarios =
    "^(add_bulk|add_single_c[0-9]+|process_c[0-9]+|latency_c[0-9]+|flow|partitioned)$";

// ---- knobs

std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) return std::nullopt;
    return std::string(v);
}

std::vector<int> int_list(const std::string& text) {
    std::vector<int> out;
    std::stringstream in(text);
    for (std::string item; std::getline(in, item, ',');)
        if (!item.empty()) out.push_back(std::stoi(item));
    return out;
}

std::string join(const std::vector<int>& v) {
    std::string out;
    for (int x : v)
        out += (out.empty() ? "" : ",") + std::to_string(x);
    return out;
}

struct knobs {
    long n = 50000;
    long bulk_chunk = 1000;
    std::vector<int> add_concs{1, 100};
    std::vector<int> concs{1, 16, 100};
    double lat_rate = 1000;
    double lat_seconds = 10;
    double deadline_s = 55;
    long flows = 5000;
    int flow_children = 10;
    int flow_conc = 100;
    int flow_adders = 100;
    std::string libs = "bullmq";
    std::string scenarios = default_scenarios;
    int rounds = 1;
    bool quick = false;
    bool peer = true;
    std::string peer_script;
    double peer_timeout_s = 1200; // the whole peer run, npm install included
    long partitioned_n = 200000;

    void read_env() {
        quick = quick || env("QUICK").value_or("0") == "1";
        if (quick) {
            n = 2000;
            flows = 500;
            partitioned_n = 8000;
            lat_seconds = 1;
            deadline_s = 20;
        }
        if (auto v = env("N")) n = std::stol(*v);
        if (auto v = env("BULK_CHUNK")) bulk_chunk = std::max(1L, std::stol(*v));
        if (auto v = env("ADD_CONCS")) add_concs = int_list(*v);
        if (auto v = env("CONCS")) concs = int_list(*v);
        if (auto v = env("LAT_RATE")) lat_rate = std::stod(*v);
        if (auto v = env("LAT_SECONDS")) lat_seconds = std::stod(*v);
        if (auto v = env("DEADLINE_S")) deadline_s = std::stod(*v);
        if (auto v = env("FLOWS")) flows = std::max(1L, std::stol(*v));
        if (auto v = env("FLOW_CHILDREN")) flow_children = std::max(1, std::stoi(*v));
        if (auto v = env("FLOW_CONC")) flow_conc = std::max(1, std::stoi(*v));
        if (auto v = env("FLOW_ADDERS")) flow_adders = std::max(1, std::stoi(*v));
        if (auto v = env("LIBS")) libs = *v;
        if (auto v = env("SCENARIOS")) scenarios = *v;
        if (auto v = env("ROUNDS")) rounds = std::max(1, std::stoi(*v));
        if (env("PEER").value_or("1") == "0") peer = false;
        if (auto v = env("PEER_TIMEOUT_S")) peer_timeout_s = std::stod(*v);
        if (auto v = env("PARTITIONED_N")) partitioned_n = std::max(1L, std::stol(*v));
    }
};

// Milliseconds on the steady clock: the peer's performance.now().
double now_ms() {
    return std::chrono::duration<double, std::milli>(clock_type::now().time_since_epoch()).count();
}

double round_to(double v, int decimals) {
    const double f = std::pow(10.0, decimals);
    return std::round(v * f) / f;
}

// bench.js's pct(): the sample at rank ceil(p% of n), 3 decimals; null without samples.
json::value pct(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return nullptr;
    const long n = long(sorted.size());
    const long i = std::min(n - 1, std::max(0L, long(std::ceil(p / 100 * double(n))) - 1));
    return round_to(sorted[std::size_t(i)], 3);
}

std::string payload(long i, double t) {
    char buf[64];
    if (t == 0)
        std::snprintf(buf, sizeof buf, "{\"i\":%ld,\"t\":0}", i);
    else
        std::snprintf(buf, sizeof buf, "{\"i\":%ld,\"t\":%.3f}", i, t);
    return buf;
}

double payload_t(const std::string& p) {
    const auto at = p.find("\"t\":");
    if (at == std::string::npos) return 0;
    return std::strtod(p.c_str() + at + 4, nullptr);
}

// ---- coroutine helpers

asio::awaitable<void> sleep_for(clock_type::duration d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

// Polls `done` every `every` until it holds or `deadline` passes; whether it held.
asio::awaitable<bool> wait_until(std::function<bool()> done, clock_type::time_point deadline,
                                 clock_type::duration every) {
    while (!done()) {
        if (clock_type::now() >= deadline) co_return false;
        co_await sleep_for(every);
    }
    co_return true;
}

// The clients of one scenario on a fresh io_context: `admin` for INFO and FLUSHALL (as the
// peer's admin connection), `prod` for the producer, `work` for the worker (as BullMQ's Queue
// and Worker connections). Runs body(admin, prod, work), then stops the clients.
template <class Body> void with_clients(const akv::config& cfg, Body&& body) {
    asio::io_context io(1);
    akv::client admin(io.get_executor(), cfg);
    akv::client prod(io.get_executor(), cfg);
    akv::client work(io.get_executor(), cfg);
    for (akv::client* c : {&admin, &prod, &work})
        asio::co_spawn(io, c->run(), asio::detached);
    std::exception_ptr failure;
    asio::co_spawn(io, body(admin, prod, work), [&](std::exception_ptr e) {
        failure = e;
        admin.cancel();
        prod.cancel();
        work.cancel();
    });
    io.run();
    if (failure) std::rethrow_exception(failure);
}

// A worker running on its own coroutine: stop() and await finish() before it goes.
class running_worker {
public:
    running_worker(akv::client& c, akv::queue::handler h, akv::queue::worker_options o,
                   std::string queue = "bench")
        : w_(c, std::move(queue), std::move(h), o, nullptr)
        , finished_(c.get_executor(), clock_type::time_point::max()) {
        asio::co_spawn(c.get_executor(), w_.run(), [this](std::exception_ptr e) {
            failure_ = e;
            done_ = true;
            finished_.cancel();
        });
    }
    akv::queue::worker& get() { return w_; }
    asio::awaitable<void> finish() {
        w_.stop();
        while (!done_)
            co_await finished_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (failure_) std::rethrow_exception(failure_);
    }

private:
    akv::queue::worker w_;
    asio::steady_timer finished_;
    bool done_ = false;
    std::exception_ptr failure_;
};

// ---- Redis figures, as bench.js's snap() and diff()

struct snapshot {
    std::map<std::string, std::pair<long long, long long>> calls; // command: calls, usec
    double cpu = 0;    // used_cpu_user + used_cpu_sys, s
    long long mem = 0; // used_memory
    double client_cpu = 0; // this process: user + sys, s
};

asio::awaitable<snapshot> snap(akv::client& admin) {
    akv::request req;
    req.push("INFO", "commandstats");
    req.push("INFO", "cpu");
    req.push("INFO", "memory");
    akv::response<std::string, std::string, std::string> resp;
    co_await admin.exec(req, resp);
    snapshot s;
    const std::string& cs = std::get<0>(resp).value();
    static const std::regex line(R"(cmdstat_([^:]+):calls=(\d+),usec=(\d+))");
    for (std::sregex_iterator it(cs.begin(), cs.end(), line), end; it != end; ++it)
        s.calls[(*it)[1].str()] = {std::stoll((*it)[2].str()), std::stoll((*it)[3].str())};
    const std::string& cpu = std::get<1>(resp).value();
    s.cpu = info_number(cpu, "used_cpu_user:") + info_number(cpu, "used_cpu_sys:");
    s.mem = static_cast<long long>(info_number(std::get<2>(resp).value(), "used_memory:"));
    s.client_cpu = process_cpu_seconds();
    co_return s;
}

// bench.js's diff() into `o`, plus our client's CPU and the commands per job, most first.
// `unit`: what the figures are per ("redis_cpu_us_per_<unit>"): a job, or a flow.
void diff(const snapshot& a, const snapshot& b, double jobs, json::object& o,
          const std::string& unit = "job") {
    static const std::set<std::string> ignore{"info", "flushall", "config|resetstat", "monitor",
                                              "ping"};
    static const std::set<std::string> script{"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall",
                                              "fcall_ro"};
    long long total = 0, scripts = 0, usec = 0;
    std::vector<std::pair<long long, std::string>> per, per_usec;
    for (const auto& [k, v] : b.calls) {
        if (ignore.count(k)) continue;
        const auto it = a.calls.find(k);
        const long long d = v.first - (it == a.calls.end() ? 0 : it->second.first);
        const long long du = v.second - (it == a.calls.end() ? 0 : it->second.second);
        if (d <= 0) continue;
        total += d;
        per.emplace_back(d, k);
        per_usec.emplace_back(du, k);
        if (script.count(k)) {
            scripts += d;
            usec += du;
        }
    }
    const std::string per_unit = "_per_" + unit;
    o["redis_cpu_us" + per_unit] = round_to((b.cpu - a.cpu) * 1e6 / jobs, 2);
    o["redis_calls" + per_unit] = round_to(double(total) / jobs, 2);
    o["script_calls" + per_unit] = round_to(double(scripts) / jobs, 3);
    o["script_usec" + per_unit] = round_to(double(usec) / jobs, 2);
    o["client_cpu_us" + per_unit] = round_to((b.client_cpu - a.client_cpu) * 1e6 / jobs, 2);
    std::ranges::sort(per, std::greater<>());
    json::object by;
    for (std::size_t i = 0; i < per.size() && i < 16; ++i)
        by[per[i].second] = round_to(double(per[i].first) / jobs, 3);
    o["calls_by_cmd"] = std::move(by);
    // Where the server's time went (commandstats usec: a script's includes its commands').
    std::ranges::sort(per_usec, std::greater<>());
    json::object us;
    for (std::size_t i = 0; i < per_usec.size() && i < 8; ++i)
        us[per_usec[i].second] = round_to(double(per_usec[i].first) / jobs, 2);
    o["usec_by_cmd"] = std::move(us);
}

asio::awaitable<std::string> server_version(akv::client& admin) {
    akv::request req;
    req.push("INFO", "server");
    akv::response<std::string> resp;
    co_await admin.exec(req, resp);
    const std::string& info = std::get<0>(resp).value();
    const auto at = info.find("redis_version:");
    if (at == std::string::npos) co_return "?";
    const auto from = at + 14;
    co_return info.substr(from, info.find_first_of("\r\n", from) - from);
}

akv::queue::job_options no_result_kept() {
    akv::queue::job_options o;
    o.result_ttl = 0ms;
    return o;
}

// Enqueues jobs [from, to) in chunks of `chunk`, one enqueue_bulk each.
asio::awaitable<void> prefill(akv::queue::producer& p, long from, long to, long chunk,
                              const akv::queue::job_options& options) {
    for (long i = from; i < to; i += chunk) {
        std::vector<akv::queue::new_job> jobs;
        jobs.reserve(std::size_t(chunk));
        for (long j = i; j < std::min(to, i + chunk); ++j) {
            akv::queue::new_job nj;
            nj.payload = payload(j, 0);
            nj.options = options;
            jobs.push_back(std::move(nj));
        }
        const std::span<const akv::queue::new_job> all(jobs);
        auto op = p.enqueue_bulk(all);
        co_await std::move(op);
    }
}

asio::awaitable<void> fill_counts(akv::client& c, json::object& o) {
    akv::queue::admin a(c, "bench");
    const akv::queue::state_counts k = co_await a.counts();
    o["left_waiting"] = k.waiting;
    o["left_active"] = k.active;
    o["left_failed"] = k.failed;
}

void worker_fields(const akv::queue::worker& w, const akv::queue::worker_options& wo,
                   json::object& o) {
    const akv::queue::worker_stats& s = w.stats();
    o["max_batch"] = wo.max_batch;
    o["claims"] = s.claims;
    o["jobs_per_claim"] = s.claims ? round_to(double(s.completed) / double(s.claims), 2) : 0.0;
    o["failed_runs"] = s.failed;
    o["lost_leases"] = s.lost_leases;
    o["errors"] = s.errors;
}

// ---- scenarios: each returns its line as the peer's bench.js would print it

struct context {
    const knobs& k;
    const akv::config& cfg;
    std::string redis_version;
    clock_type::duration deadline() const {
        return std::chrono::duration_cast<clock_type::duration>(
            std::chrono::duration<double>(k.deadline_s));
    }
};

json::object base(const context& c, const std::string& scenario) {
    json::object o;
    o["lib"] = "akv";
    o["scenario"] = scenario;
    o["redis"] = c.redis_version;
    return o;
}

json::object sc_add_bulk(const context& c) {
    json::object o = base(c, "add_bulk");
    with_clients(c.cfg, [&](akv::client& admin, akv::client& prod,
                            akv::client&) -> asio::awaitable<void> {
        co_await flushall(admin);
        akv::queue::producer p(prod, "bench");
        const snapshot s0 = co_await snap(admin);
        const auto deadline = clock_type::now() + c.deadline();
        const auto t0 = clock_type::now();
        long done = 0;
        const akv::queue::job_options defaults;
        while (done < c.k.n && clock_type::now() < deadline) {
            const long end = std::min(c.k.n, done + c.k.bulk_chunk);
            co_await prefill(p, done, end, c.k.bulk_chunk, defaults);
            done = end;
        }
        const double secs = seconds_between(t0, clock_type::now());
        const snapshot s1 = co_await snap(admin);
        o["chunk"] = c.k.bulk_chunk;
        o["jobs"] = done;
        o["seconds"] = round_to(secs, 3);
        o["jobs_per_s"] = std::round(double(done) / secs);
        o["truncated"] = done < c.k.n;
        o["redis_bytes_per_waiting_job"] = std::round(double(s1.mem - s0.mem) / double(done));
        diff(s0, s1, double(done), o);
    });
    return o;
}

asio::awaitable<void> add_loop(akv::queue::producer& p, long n, clock_type::time_point deadline,
                               long& next, long& done, std::vector<double>& lat) {
    while (next < n && clock_type::now() < deadline) {
        ++next;
        const std::string data = payload(next, 0);
        const double a = now_ms();
        auto op = p.enqueue(data);
        co_await std::move(op);
        lat.push_back(now_ms() - a);
        ++done;
    }
}

json::object sc_add_single(const context& c, int conc) {
    json::object o = base(c, "add_single_c" + std::to_string(conc));
    with_clients(c.cfg, [&](akv::client& admin, akv::client& prod,
                            akv::client&) -> asio::awaitable<void> {
        co_await flushall(admin);
        akv::queue::producer p(prod, "bench");
        const snapshot s0 = co_await snap(admin);
        const auto deadline = clock_type::now() + c.deadline();
        const auto t0 = clock_type::now();
        long next = 0, done = 0;
        std::vector<double> lat;
        lat.reserve(std::size_t(c.k.n));
        co_await all_of(conc, [&](int) { return add_loop(p, c.k.n, deadline, next, done, lat); });
        const double secs = seconds_between(t0, clock_type::now());
        const snapshot s1 = co_await snap(admin);
        std::ranges::sort(lat);
        o["inflight"] = conc;
        o["jobs"] = done;
        o["seconds"] = round_to(secs, 3);
        o["jobs_per_s"] = std::round(double(done) / secs);
        o["truncated"] = done < c.k.n;
        o["add_rtt_p50_ms"] = pct(lat, 50);
        o["add_rtt_p99_ms"] = pct(lat, 99);
        diff(s0, s1, double(done), o);
    });
    return o;
}

json::object sc_process(const context& c, int conc) {
    json::object o = base(c, "process_c" + std::to_string(conc));
    with_clients(c.cfg, [&](akv::client& admin, akv::client& prod,
                            akv::client& work) -> asio::awaitable<void> {
        co_await flushall(admin);
        {
            akv::queue::producer p(prod, "bench");
            const akv::queue::job_options options = no_result_kept();
            co_await prefill(p, 0, c.k.n, c.k.bulk_chunk, options);
        }
        const snapshot s0 = co_await snap(admin);
        const auto t0 = clock_type::now();
        long started = 0;
        akv::queue::worker_options wo;
        wo.concurrency = std::size_t(conc);
        running_worker rw(
            work,
            [&started](akv::queue::job_context&) -> asio::awaitable<std::string> {
                ++started;
                co_return std::string("1");
            },
            wo);
        const auto& stats = rw.get().stats();
        const long n = c.k.n;
        std::exception_ptr failure;
        double secs = 0;
        long done = 0;
        snapshot s1;
        try {
            co_await wait_until([&] { return stats.completed >= std::uint64_t(n); },
                                t0 + c.deadline(), 1ms);
            secs = seconds_between(t0, clock_type::now());
            done = long(stats.completed);
            s1 = co_await snap(admin);
        } catch (...) {
            failure = std::current_exception();
        }
        co_await rw.finish(); // before the worker goes, whatever happened
        if (failure) std::rethrow_exception(failure);
        o["concurrency"] = conc;
        o["jobs"] = done;
        o["handler_runs"] = started; // more than jobs: some ran twice
        o["seconds"] = round_to(secs, 3);
        o["jobs_per_s"] = std::round(double(done) / secs);
        o["truncated"] = done < n;
        o["keep_results"] = false;
        diff(s0, s1, double(std::max(1L, done)), o);
        worker_fields(rw.get(), wo, o);
        co_await fill_counts(admin, o);
    });
    return o;
}

asio::awaitable<void> enqueue_now(akv::queue::producer& p, long i, long& inflight,
                                  const akv::queue::job_options& options) {
    const std::string data = payload(i, now_ms());
    akv::queue::job_options o = options;
    try {
        auto op = p.enqueue(data, std::move(o));
        co_await std::move(op);
    } catch (const std::exception& e) {
        std::cerr << "queue: enqueue: " << e.what() << "\n";
    }
    --inflight;
}

json::object sc_latency(const context& c, int conc) {
    json::object o = base(c, "latency_c" + std::to_string(conc));
    with_clients(c.cfg, [&](akv::client& admin, akv::client& prod,
                            akv::client& work) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        co_await flushall(admin);
        std::vector<double> lat;
        akv::queue::worker_options wo;
        wo.concurrency = std::size_t(conc);
        running_worker rw(
            work,
            [&lat](akv::queue::job_context& ctx) -> asio::awaitable<std::string> {
                lat.push_back(now_ms() - payload_t(ctx.job().payload));
                co_return std::string("1");
            },
            wo);
        const auto& stats = rw.get().stats();
        akv::queue::producer p(prod, "bench");
        const akv::queue::job_options options = no_result_kept();
        co_await sleep_for(200ms);
        const snapshot s0 = co_await snap(admin);
        const long total = std::lround(c.k.lat_rate * c.k.lat_seconds);
        lat.reserve(std::size_t(total));
        long sent = 0, inflight = 0, done = 0;
        double secs = 0;
        snapshot s1;
        std::exception_ptr failure;
        const auto t0 = clock_type::now();
        try {
            // As bench.js: a 5 ms tick, jobs due by elapsed time so drift lowers no rate.
            asio::steady_timer tick(ex);
            while (sent < total) {
                tick.expires_after(5ms);
                co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
                const long due = std::min(
                    total, long(std::floor(seconds_between(t0, clock_type::now()) * c.k.lat_rate)));
                while (sent < due) {
                    ++sent;
                    ++inflight;
                    asio::co_spawn(ex, enqueue_now(p, sent, inflight, options), asio::detached);
                }
            }
            co_await wait_until([&] { return stats.completed >= std::uint64_t(total); },
                                clock_type::now() + 10s, 20ms);
            secs = seconds_between(t0, clock_type::now());
            done = long(stats.completed);
            s1 = co_await snap(admin);
        } catch (...) {
            failure = std::current_exception();
        }
        // The producer and the worker go with this frame: their coroutines end first.
        co_await wait_until([&] { return inflight == 0; }, clock_type::now() + 30s, 1ms);
        co_await rw.finish();
        if (failure) std::rethrow_exception(failure);
        std::ranges::sort(lat);
        o["concurrency"] = conc;
        o["offered_jobs_per_s"] = c.k.lat_rate;
        o["jobs"] = done;
        o["sent"] = sent;
        o["seconds"] = round_to(secs, 3);
        o["p50_ms"] = pct(lat, 50);
        o["p90_ms"] = pct(lat, 90);
        o["p99_ms"] = pct(lat, 99);
        o["max_ms"] = pct(lat, 100);
        o["truncated"] = done < total;
        o["keep_results"] = false;
        diff(s0, s1, double(std::max(1L, done)), o);
        worker_fields(rw.get(), wo, o);
    });
    return o;
}

// The flow scenario's queues, as flow.js names them.
constexpr const char* flow_parent_queue = "flow_parents";
constexpr const char* flow_child_queue = "flow_children";

// Flow i: a parent {"i":i} with `children` children {"i":i,"c":c}, as flow.js's flow(i); no
// result kept (flow.js's removeOnComplete {count: 0}): a child's result reaches its parent all
// the same.
akv::queue::flow_job bench_flow(long i, int children) {
    akv::queue::flow_job parent;
    parent.queue = flow_parent_queue;
    parent.payload = "{\"i\":" + std::to_string(i) + "}";
    parent.options = no_result_kept();
    parent.children.reserve(std::size_t(children));
    for (int c = 0; c < children; ++c) {
        akv::queue::flow_job child;
        child.queue = flow_child_queue;
        child.payload = "{\"i\":" + std::to_string(i) + ",\"c\":" + std::to_string(c) + "}";
        child.options = parent.options;
        parent.children.push_back(std::move(child));
    }
    return parent;
}

asio::awaitable<void> add_flows(akv::queue::flow_producer& p, const context& c,
                                clock_type::time_point deadline, long& next, long& added) {
    while (next < c.k.flows && clock_type::now() < deadline) {
        const akv::queue::flow_job flow = bench_flow(next++, c.k.flow_children);
        co_await p.add(flow);
        ++added;
    }
}

json::object sc_flow(const context& c) {
    json::object o = base(c, "flow");
    with_clients(
        c.cfg,
        [&](akv::client& admin, akv::client& prod, akv::client& work) -> asio::awaitable<void> {
            co_await flushall(admin);
            const long flows = c.k.flows;
            const std::size_t children = std::size_t(c.k.flow_children);
            long bad_parents = 0; // read fewer results than children, or a child not completed
            akv::queue::worker_options wo;
            wo.concurrency = std::size_t(c.k.flow_conc);
            running_worker child_worker(
                work,
                [](akv::queue::job_context&) -> asio::awaitable<std::string> {
                    co_return std::string("1");
                },
                wo, flow_child_queue);
            running_worker parent_worker(
                work,
                [&](akv::queue::job_context& ctx) -> asio::awaitable<std::string> {
                    const auto results = co_await ctx.children_results();
                    const bool all_ok =
                        std::ranges::all_of(results, [](const akv::queue::child_result& r) {
                            return r.result && r.result->ok();
                        });
                    if (results.size() != children || !all_ok) ++bad_parents;
                    co_return std::string("1");
                },
                wo, flow_parent_queue);
            const auto& parents = parent_worker.get().stats();
            akv::queue::flow_producer producer(prod);
            co_await sleep_for(200ms); // the workers are waiting, as flow.js's
            std::exception_ptr failure;
            double secs = 0, add_secs = 0;
            long next = 0, added = 0, done = 0;
            snapshot s0, s1;
            try {
                s0 = co_await snap(admin);
                const auto t0 = clock_type::now();
                const auto deadline = t0 + c.deadline();
                co_await all_of(c.k.flow_adders,
                                [&](int) { return add_flows(producer, c, deadline, next, added); });
                add_secs = seconds_between(t0, clock_type::now());
                co_await wait_until([&] { return parents.completed >= std::uint64_t(flows); },
                                    deadline, 1ms);
                secs = seconds_between(t0, clock_type::now());
                done = long(parents.completed);
                s1 = co_await snap(admin);
            } catch (...) {
                failure = std::current_exception();
            }
            co_await child_worker.finish(); // before the workers go, whatever happened
            co_await parent_worker.finish();
            if (failure) std::rethrow_exception(failure);
            o["children"] = c.k.flow_children;
            o["concurrency"] = c.k.flow_conc;
            o["add_inflight"] = c.k.flow_adders;
            o["flows"] = done;
            o["added"] = added;
            o["jobs"] = done + long(child_worker.get().stats().completed);
            o["seconds"] = round_to(secs, 3);
            o["add_seconds"] = round_to(add_secs, 3);
            o["flows_per_s"] = std::round(double(done) / secs);
            o["truncated"] = done < flows;
            o["bad_parents"] = bad_parents;
            o["keep_results"] = false;
            diff(s0, s1, double(std::max(1L, done)), o, "flow");
            const akv::queue::worker_stats& cs = child_worker.get().stats();
            o["handed_off"] = cs.handed_off;
            o["claims"] = cs.claims + parents.claims;
            o["failed_runs"] = cs.failed + parents.failed;
            o["lost_leases"] = cs.lost_leases + parents.lost_leases;
            o["errors"] = cs.errors + parents.errors;
        });
    return o;
}

// ---- partitioned: one logical queue over the masters of a cluster

// Each node's CPU so far, s (INFO cpu: user + sys), over a connection of its own.
std::vector<double> node_cpu(const akv::testing::embedded_cluster& cluster, std::size_t nodes) {
    std::vector<double> cpu;
    for (std::size_t i = 0; i < nodes; ++i) {
        const std::string info = cluster.command(i, {"INFO", "cpu"});
        cpu.push_back(info_number(info, "used_cpu_user:") + info_number(info, "used_cpu_sys:"));
    }
    return cpu;
}

// PARTITIONED_N jobs prefilled into a queue of `partitions` partitions, then a partitioned_worker of
// concurrency `conc` until all are acked: jobs/s, and each master's Redis CPU meanwhile.
json::object partitioned_round(const context& c, akv::testing::embedded_cluster& cluster,
                               std::size_t partitions, int conc) {
    const std::size_t masters = cluster.options().masters;
    for (std::size_t i = 0; i < masters; ++i)
        cluster.command(i, {"FLUSHALL"});
    const long jobs_total = c.k.partitioned_n;
    json::object o;
    with_clients(cluster.config(), [&](akv::client&, akv::client& prod,
                                       akv::client& work) -> asio::awaitable<void> {
        akv::queue::partitioning layout;
        layout.partitions = partitions;
        std::vector<std::string> names;
        {
            akv::queue::partitioned_producer p(prod, "bench", layout);
            const akv::queue::job_options options = no_result_kept();
            for (long i = 0; i < jobs_total; i += c.k.bulk_chunk) {
                std::vector<akv::queue::partitioned_job> jobs;
                for (long j = i; j < std::min(jobs_total, i + c.k.bulk_chunk); ++j)
                    jobs.push_back({payload(j, 0), options, {}});
                const std::span<const akv::queue::partitioned_job> all(jobs);
                auto op = p.enqueue_bulk(all);
                co_await std::move(op);
            }
            names = p.partitions();
        }
        const std::vector<double> cpu0 = node_cpu(cluster, masters);
        const double client0 = process_cpu_seconds();
        const auto t0 = clock_type::now();
        akv::queue::worker_options wo;
        wo.concurrency = std::size_t(conc);
        akv::queue::partitioned_worker w(
            work, "bench",
            [](akv::queue::job_context&) -> asio::awaitable<std::string> {
                co_return std::string("1");
            },
            wo, layout);
        bool finished = false;
        std::exception_ptr failure;
        asio::co_spawn(work.get_executor(), w.run(), [&](std::exception_ptr e) {
            failure = e;
            finished = true;
        });
        co_await wait_until([&] { return finished || w.stats().completed >= std::uint64_t(jobs_total); },
                            t0 + c.deadline(), 1ms);
        const double secs = seconds_between(t0, clock_type::now());
        const auto done = long(w.stats().completed);
        const std::vector<double> cpu1 = node_cpu(cluster, masters);
        const double client1 = process_cpu_seconds();
        w.stop();
        co_await wait_until([&] { return finished; }, clock_type::now() + 30s, 1ms);
        if (failure) std::rethrow_exception(failure);
        json::array per_master, queues;
        double total = 0, busiest = 0;
        for (std::size_t i = 0; i < masters; ++i) {
            const double used = cpu1[i] - cpu0[i];
            per_master.push_back(round_to(used, 3));
            total += used;
            busiest = std::max(busiest, used);
        }
        for (const auto& name : names) {
            json::object q;
            q["queue"] = name;
            q["master"] = cluster.master_of(akv::cluster_slot(name));
            queues.push_back(std::move(q));
        }
        o["partitions"] = partitions;
        o["jobs"] = done;
        o["seconds"] = round_to(secs, 3);
        o["jobs_per_s"] = std::round(double(done) / secs);
        o["truncated"] = done < jobs_total;
        o["redis_cpu_s_per_master"] = std::move(per_master);
        o["busiest_master_share"] = total > 0 ? round_to(busiest / total, 3) : 0.0;
        o["redis_cpu_us_per_job"] = round_to(total * 1e6 / double(std::max(1L, done)), 2);
        o["client_cpu_us_per_job"] =
            round_to((client1 - client0) * 1e6 / double(std::max(1L, done)), 2);
        o["claims"] = w.stats().claims;
        o["jobs_per_claim"] =
            round_to(double(done) / double(std::max<std::uint64_t>(1, w.stats().claims)), 2);
        o["placement"] = std::move(queues);
    });
    return o;
}

// One round of the scenario: a fresh cluster, 1 partition, then 3.
json::object sc_partitioned(const context& c, int conc) {
    akv::testing::embedded_cluster_options options;
    options.masters = 3;
    options.replicas_per_master = 0;
    akv::testing::embedded_cluster cluster(options);
    json::object o = base(c, "partitioned");
    o["concurrency"] = conc;
    o["one"] = partitioned_round(c, cluster, 1, conc);
    o["three"] = partitioned_round(c, cluster, 3, conc);
    const auto one = number_field(&o["one"].as_object(), "jobs_per_s");
    const auto three = number_field(&o["three"].as_object(), "jobs_per_s");
    o["ratio"] = one && three && *one > 0 ? round_to(*three / *one, 3) : 0.0;
    return o;
}

// The scenario's line: the median round by ratio, and the issue's goals.
bool report_partitioned(const std::vector<json::object>& rounds) {
    std::vector<std::pair<double, std::size_t>> ranked;
    for (std::size_t i = 0; i < rounds.size(); ++i)
        ranked.emplace_back(number_field(&rounds[i], "ratio").value_or(0), i);
    std::ranges::sort(ranked);
    const json::object& o = rounds[ranked[(ranked.size() - 1) / 2].second];
    const json::object& one = o.at("one").as_object();
    const json::object& three = o.at("three").as_object();
    const auto share = number_field(&three, "busiest_master_share");
    const auto ratio = number_field(&o, "ratio");
    const bool met = share && ratio && *share <= 0.40 && *ratio >= 1;
    json_line line;
    line.set("bench", "queue").text("scenario", "partitioned").set("masters", 3);
    line.copy("concurrency", &o, "concurrency").copy("jobs", &three, "jobs");
    line.copy("akv_jobs_per_s_3_partitions", &three, "jobs_per_s");
    line.copy("akv_jobs_per_s_1_partition", &one, "jobs_per_s");
    line.number("ratio", ratio, 3);
    line.copy("busiest_master_share_3_partitions", &three, "busiest_master_share");
    line.copy("busiest_master_share_1_partition", &one, "busiest_master_share");
    line.copy("redis_cpu_s_per_master_3_partitions", &three, "redis_cpu_s_per_master");
    line.copy("redis_cpu_s_per_master_1_partition", &one, "redis_cpu_s_per_master");
    line.copy("redis_cpu_us_per_job_3_partitions", &three, "redis_cpu_us_per_job");
    line.copy("redis_cpu_us_per_job_1_partition", &one, "redis_cpu_us_per_job");
    line.copy("client_cpu_us_per_job_3_partitions", &three, "client_cpu_us_per_job");
    line.copy("client_cpu_us_per_job_1_partition", &one, "client_cpu_us_per_job");
    line.copy("jobs_per_claim_3_partitions", &three, "jobs_per_claim");
    line.copy("jobs_per_claim_1_partition", &one, "jobs_per_claim");
    line.copy("placement_3_partitions", &three, "placement");
    line.text("goal", "busiest_master_share_3_partitions<=0.40 && ratio>=1");
    line.set("goal_met", met);
    if (rounds.size() > 1) {
        json::array ratios;
        for (const auto& r : rounds)
            ratios.push_back(r.at("ratio"));
        line.set("ratio_runs", ratios);
    }
    line.copy("redis", &o, "redis");
    line.print();
    return met;
}

// ---- the peer

struct peer_output {
    std::map<std::string, std::map<std::string, json::object>> lines; // lib -> scenario -> line
    std::vector<json::object> errors; // lines with "error": a library or a scenario that failed
    std::vector<json::object> other;  // lines of scenarios we do not run (profile_cmds, designs)
};

// Runs a peer script (bench_bullmq.sh, or bench_flow.sh for the flow scenario) with every
// knob; its stderr (npm, progress) is appended to `log_path`.
peer_output run_peer(const knobs& k, const std::string& script, const std::string& bench_dir,
                     const std::string& log_path) {
    const std::string cmd =
        "N=" + std::to_string(k.n) + " BULK_CHUNK=" + std::to_string(k.bulk_chunk) +
        " ADD_CONCS=" + join(k.add_concs) + " CONCS=" + join(k.concs) +
        " LAT_RATE=" + number_text(k.lat_rate) + " LAT_SECONDS=" + number_text(k.lat_seconds) +
        " DEADLINE_S=" + number_text(k.deadline_s) + " FLOWS=" + std::to_string(k.flows) +
        " FLOW_CHILDREN=" + std::to_string(k.flow_children) +
        " FLOW_CONC=" + std::to_string(k.flow_conc) +
        " FLOW_ADDERS=" + std::to_string(k.flow_adders) + " LIBS='" + k.libs +
        "' KEEP=0 SCENARIOS='" + k.scenarios + "' BENCH_DIR='" + bench_dir + "' timeout -k 10 " +
        number_text(k.peer_timeout_s) + " '" + script + "' " + std::to_string(free_port()) +
        " 2>>'" + log_path + "'";
    const std::string out = akv::bench::run_command(cmd);
    peer_output r;
    std::stringstream in(out);
    for (std::string text; std::getline(in, text);) {
        json::error_code ec;
        json::value v = json::parse(text, ec);
        if (ec || !v.is_object()) continue;
        json::object& o = v.as_object();
        const json::value* lib = o.if_contains("lib");
        const json::value* scenario = o.if_contains("scenario");
        if (o.contains("error"))
            r.errors.push_back(std::move(o));
        else if (lib && lib->is_string() && scenario && scenario->is_string())
            r.lines[std::string(lib->as_string())][std::string(scenario->as_string())] =
                std::move(o);
        else
            r.other.push_back(std::move(o));
    }
    return r;
}

std::string log_tail(const std::string& path, std::size_t lines) {
    std::string out;
    for (const std::string& line : last_lines(path, lines))
        out += (out.empty() ? "" : "\n") + line;
    return out;
}

// ---- scenario table (the JSON line and ratio: bench_support.hpp)

enum class kind { add_bulk, add_single, process, latency, flow, partitioned };

struct scenario {
    std::string name;
    kind what;
    int conc = 0;
    std::vector<json::object> ours;                            // one per round
    std::map<std::string, std::vector<json::object>> theirs;   // lib -> one per round it ran
};

// What a scenario's figures are per ("redis_cpu_us_per_<unit>"), and its throughput's name.
std::string unit(const scenario& s) {
    return s.what == kind::flow ? "flow" : "job";
}
std::string throughput(const scenario& s) {
    return unit(s) + "s_per_s";
}

// The figure a round is ranked by: throughput, or p99 for the latency scenarios.
std::optional<double> figure(const scenario& s, const json::object& o) {
    return s.what == kind::latency ? number_field(&o, "p99_ms") : number_field(&o, throughput(s));
}

// The median round (the lower one of an even count) by figure().
const json::object* median(const scenario& s, const std::vector<json::object>& rounds) {
    std::vector<std::pair<double, std::size_t>> ranked;
    for (std::size_t i = 0; i < rounds.size(); ++i)
        if (auto f = figure(s, rounds[i])) ranked.emplace_back(*f, i);
    if (ranked.empty()) return rounds.empty() ? nullptr : &rounds.front();
    std::ranges::sort(ranked);
    return &rounds[ranked[(ranked.size() - 1) / 2].second];
}

// Prints the scenario's line; whether its goal was met (nullopt: no peer figure to judge by).
// The median (the lower one of an even count) of `key` over the rounds that have it.
std::optional<double> med(const std::vector<json::object>* rounds, std::string_view key) {
    if (!rounds) return std::nullopt;
    std::vector<double> v;
    for (const json::object& o : *rounds)
        if (auto x = number_field(&o, key)) v.push_back(*x);
    if (v.empty()) return std::nullopt;
    std::ranges::sort(v);
    return v[(v.size() - 1) / 2];
}

json::array runs(const std::vector<json::object>* rounds, std::string_view key) {
    json::array out;
    if (rounds)
        for (const json::object& o : *rounds) {
            const auto x = number_field(&o, key);
            out.push_back(x ? json::value(*x) : json::value(nullptr));
        }
    return out;
}

std::optional<bool> report(const scenario& s, const std::set<std::string>& peer_libs,
                           bool peer_ran) {
    const json::object* ours = median(s, s.ours);
    const auto it = s.theirs.find("bullmq");
    const json::object* bull =
        it == s.theirs.end() ? nullptr : median(s, it->second);
    const auto bit = s.theirs.find("bee-queue");
    const json::object* bee = bit == s.theirs.end() ? nullptr : median(s, bit->second);

    // Each figure is the median of its rounds (rounds are noisy on a shared 2-core machine).
    const std::vector<json::object>* ours_r = &s.ours;
    const std::vector<json::object>* bull_r = it == s.theirs.end() ? nullptr : &it->second;
    const std::vector<json::object>* bee_r = bit == s.theirs.end() ? nullptr : &bit->second;

    json_line line;
    line.set("bench", "queue").text("scenario", s.name);
    if (s.what == kind::process || s.what == kind::latency || s.what == kind::flow)
        line.set("keep_results", false);
    const std::string tput = throughput(s);         // jobs_per_s, flows_per_s
    const std::string per_unit = "_per_" + unit(s); // redis_cpu_us_per_job, ..._per_flow

    std::optional<double> tput_ratio, cpu_ratio, p99_ratio;
    if (s.what == kind::latency) {
        line.copy("offered_jobs_per_s", ours, "offered_jobs_per_s");
        for (const char* f : {"p50_ms", "p90_ms", "p99_ms", "max_ms"}) {
            line.number(std::string("akv_") + f, med(ours_r, f), 3);
            line.number(std::string("bullmq_") + f, med(bull_r, f), 3);
        }
        p99_ratio = ratio(med(ours_r, "p99_ms"), med(bull_r, "p99_ms"));
        line.number("p99_ratio", p99_ratio, 3);
    } else {
        line.number("akv_" + tput, med(ours_r, tput), 0);
        line.number("bullmq_" + tput, med(bull_r, tput), 0);
        tput_ratio = ratio(med(ours_r, tput), med(bull_r, tput));
        line.number("ratio", tput_ratio, 2);
    }
    const std::string cpu = "redis_cpu_us" + per_unit;
    line.number("akv_" + cpu, med(ours_r, cpu), 2);
    line.number("bullmq_" + cpu, med(bull_r, cpu), 2);
    cpu_ratio = ratio(med(ours_r, cpu), med(bull_r, cpu));
    line.number("cpu_ratio", cpu_ratio, 3);
    for (const std::string f : {"redis_calls", "script_calls", "script_usec"}) {
        const int decimals = f == "script_calls" ? 3 : 2;
        line.number("akv_" + f + per_unit, med(ours_r, f + per_unit), decimals);
        line.number("bullmq_" + f + per_unit, med(bull_r, f + per_unit), decimals);
    }
    if (s.what == kind::add_single)
        for (const char* f : {"add_rtt_p50_ms", "add_rtt_p99_ms"}) {
            line.number(std::string("akv_") + f, med(ours_r, f), 3);
            line.number(std::string("bullmq_") + f, med(bull_r, f), 3);
        }
    if (s.what == kind::add_bulk) {
        line.copy("akv_redis_bytes_per_waiting_job", ours, "redis_bytes_per_waiting_job");
        line.copy("bullmq_redis_bytes_per_waiting_job", bull, "redis_bytes_per_waiting_job");
    }

    // The issue's goals for this scenario.
    std::string goal = "cpu_ratio<=0.333";
    bool met = cpu_ratio && *cpu_ratio <= 1.0 / 3;
    const bool known = bull != nullptr;
    if (s.what == kind::add_bulk ||
        (s.what == kind::process && (s.conc == 16 || s.conc == 100))) {
        goal = "ratio>=3 && " + goal;
        met = met && tput_ratio && *tput_ratio >= 3;
    }
    if (s.what == kind::latency) {
        goal = "p99_ratio<1 && " + goal;
        met = met && p99_ratio && *p99_ratio < 1;
    }
    if (s.what == kind::flow) { // issue 23: flows >= 5x BullMQ's with <= 1/5 of its Redis CPU
        goal = "ratio>=5 && cpu_ratio<=0.2";
        met = tput_ratio && *tput_ratio >= 5 && cpu_ratio && *cpu_ratio <= 0.2;
    }
    line.text("goal", goal);
    if (known)
        line.set("goal_met", met);
    else
        line.set("goal_met", nullptr);

    // Ours in detail, then the peers'.
    for (const char* f : {"jobs", "handler_runs", "sent", "seconds", "truncated", "concurrency", "inflight",
                          "chunk", "max_batch", "claims", "jobs_per_claim", "failed_runs",
                          "lost_leases", "errors", "left_waiting", "left_active", "left_failed",
                          "client_cpu_us_per_job", "calls_by_cmd", "usec_by_cmd"})
        line.copy(std::string("akv_") + f, ours, f);
    for (const char* f : {"flows", "added", "children", "add_seconds", "add_inflight",
                          "bad_parents", "handed_off", "client_cpu_us_per_flow"})
        line.copy(std::string("akv_") + f, ours, f);
    if (bull) {
        for (const char* f : {"version", "flows", "added", "jobs", "sent", "seconds", "add_seconds",
                              "truncated", "bad_parents"})
            line.copy(std::string("bullmq_") + f, bull, f);
        if (s.what == kind::flow) line.copy("bullmq_calls_by_cmd", bull, "calls_by_cmd");
    } else if (peer_ran && peer_libs.count("bullmq")) {
        line.set("bullmq_error", "no result (see the peer error line)");
    }
    if (bee) {
        const std::string key = s.what == kind::latency ? "p99_ms" : tput;
        line.copy(std::string("bee_") + key, bee, key);
        line.number("bee_ratio", ratio(med(ours_r, key), med(bee_r, key)), 2);
        line.copy("bee_redis_cpu_us_per_job", bee, "redis_cpu_us_per_job");
        line.number("bee_cpu_ratio",
                    ratio(med(ours_r, "redis_cpu_us_per_job"), med(bee_r, "redis_cpu_us_per_job")), 3);
        line.copy("bee_redis_calls_per_job", bee, "redis_calls_per_job");
        line.copy("bee_version", bee, "version");
    }
    if (s.ours.size() > 1) {
        const std::string key = s.what == kind::latency ? "p99_ms" : tput;
        line.set("akv_runs", runs(ours_r, key)).set("bullmq_runs", runs(bull_r, key));
        line.set("akv_cpu_runs", runs(ours_r, cpu));
        line.set("bullmq_cpu_runs", runs(bull_r, cpu));
    }
    line.copy("redis", ours, "redis");
    line.print();
    if (!known) return std::nullopt;
    return met;
}

} // namespace

int main(int argc, char** argv) {
    knobs k;
    k.peer_script = (bench_source_dir() / "peers/queue/bench_bullmq.sh").string();
    bool only_set = false;
    std::string only;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--quick") {
            k.quick = true;
        } else if (arg == "--rounds" && i + 1 < argc) {
            ::setenv("ROUNDS", argv[++i], 1);
        } else if (arg == "--only" && i + 1 < argc) {
            only_set = true;
            only = argv[++i];
        } else if (arg == "--no-peer") {
            ::setenv("PEER", "0", 1);
        } else if (arg == "--peer" && i + 1 < argc) {
            k.peer_script = argv[++i];
        } else {
            std::cerr << "usage: akv_bench_queue [--quick] [--rounds R] [--only REGEX] "
                         "[--no-peer] [--peer bench_bullmq.sh]\n"
                         "  (knobs also from the env: N BULK_CHUNK ADD_CONCS CONCS LAT_RATE\n"
                         "   LAT_SECONDS DEADLINE_S FLOWS FLOW_CHILDREN FLOW_CONC FLOW_ADDERS\n"
                         "   LIBS SCENARIOS QUICK ROUNDS PEER BENCH_DIR)\n";
            return 2;
        }
    }
    try {
        k.read_env();
        if (only_set) k.scenarios = only;
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_queue: bad knob: " << e.what() << "\n";
        return 2;
    }

    std::set<std::string> peer_libs;
    {
        std::stringstream in(k.libs);
        for (std::string lib; std::getline(in, lib, ',');)
            if (!lib.empty()) peer_libs.insert(lib == "bee" ? "bee-queue" : lib);
    }

    const std::optional<std::string> keep_dir = env("BENCH_DIR");
    const fs::path peer_dir =
        keep_dir ? fs::path(*keep_dir)
                 : fs::temp_directory_path() / ("akv_bench_queue_peer." + std::to_string(::getpid()));
    int status = 0;
    try {
        const std::regex filter(k.scenarios);
        std::vector<scenario> scenarios;
        scenarios.push_back({"add_bulk", kind::add_bulk, 0, {}, {}});
        for (int c : k.add_concs)
            scenarios.push_back({"add_single_c" + std::to_string(c), kind::add_single, c, {}, {}});
        for (int c : k.concs)
            scenarios.push_back({"process_c" + std::to_string(c), kind::process, c, {}, {}});
        for (int c : k.concs)
            scenarios.push_back({"latency_c" + std::to_string(c), kind::latency, c, {}, {}});
        scenarios.push_back({"flow", kind::flow, k.flow_conc, {}, {}});
        scenarios.push_back({"partitioned", kind::partitioned, 100, {}, {}});
        std::erase_if(scenarios, [&](const scenario& s) { return !std::regex_search(s.name, filter); });
        if (scenarios.empty())
            throw std::runtime_error("no scenario matches \"" + k.scenarios + "\"");

        // bench_bullmq.sh runs the scenarios of bench.js, bench_flow.sh (beside it) the flow.
        const auto is_flow = [](const scenario& s) { return s.what == kind::flow; };
        const bool peer_flow = std::ranges::any_of(scenarios, is_flow);
        // (partitioned has no peer.)
        const bool peer_queue = std::ranges::any_of(scenarios, [](const scenario& s) {
            return s.what != kind::flow && s.what != kind::partitioned;
        });
        const std::string flow_script =
            (fs::path(k.peer_script).parent_path() / "bench_flow.sh").string();
        if (k.peer) fs::create_directories(peer_dir);
        const std::string log_path = (peer_dir / "peer.log").string();
        std::cerr << "queue: N=" << k.n << " BULK_CHUNK=" << k.bulk_chunk
                  << " ADD_CONCS=" << join(k.add_concs) << " CONCS=" << join(k.concs)
                  << " LAT_RATE=" << k.lat_rate << " LAT_SECONDS=" << k.lat_seconds
                  << " FLOWS=" << k.flows << "x" << k.flow_children << " rounds=" << k.rounds
                  << (k.peer ? " peer=" + k.libs : " no peer") << "\n";

        for (int round = 0; round < k.rounds; ++round) {
            // The peer first, on its own server, then ours: never both at once.
            if (k.peer && (peer_queue || peer_flow)) {
                const auto start = clock_type::now();
                std::vector<std::string> scripts;
                if (peer_queue) scripts.push_back(k.peer_script);
                if (peer_flow) scripts.push_back(flow_script);
                peer_output peer;
                for (const std::string& script : scripts) {
                    std::cerr << "queue: round " << round + 1 << ": peer " << script << " (log "
                              << log_path << ")\n";
                    peer_output more = run_peer(k, script, peer_dir.string(), log_path);
                    for (auto& [lib, lines] : more.lines)
                        peer.lines[lib].merge(lines);
                    std::ranges::move(more.errors, std::back_inserter(peer.errors));
                    std::ranges::move(more.other, std::back_inserter(peer.other));
                }
                std::cerr << "queue: peer took " << seconds_between(start, clock_type::now())
                          << " s\n";
                for (const json::object& e : peer.errors) {
                    json_line line;
                    line.set("bench", "queue").set("peer_error", true);
                    for (const auto& kv : e)
                        line.set(kv.key(), kv.value());
                    line.print();
                }
                std::set<std::string> missing = peer_libs;
                for (const auto& [lib, lines] : peer.lines) {
                    missing.erase(lib);
                    for (const auto& [name, o] : lines) {
                        bool ours = false;
                        for (scenario& s : scenarios)
                            if (s.name == name) {
                                s.theirs[lib].push_back(o);
                                ours = true;
                            }
                        if (!ours) peer.other.push_back(o);
                    }
                }
                for (const std::string& lib : missing) {
                    json_line line;
                    line.set("bench", "queue").set("peer_error", true).set("lib", json::string(lib));
                    line.text("error", "the peer printed no result for " + lib +
                                          " (npm install, node or redis-server failed?)");
                    line.text("log_tail", log_tail(log_path, 15));
                    line.print();
                }
                for (const json::object& o : peer.other) { // profile_cmds, designs.js
                    json_line line;
                    line.set("bench", "queue").set("peer_only", true);
                    for (const auto& kv : o)
                        line.set(kv.key(), kv.value());
                    line.print();
                }
            }

            akv::testing::embedded_server server;
            const akv::config cfg = server.config();
            context ctx{k, cfg, "?"};
            with_clients(cfg, [&](akv::client& admin, akv::client&,
                                  akv::client&) -> asio::awaitable<void> {
                ctx.redis_version = co_await server_version(admin);
            });
            for (scenario& s : scenarios) {
                std::cerr << "queue: round " << round + 1 << ": akv " << s.name << "\n";
                try {
                    switch (s.what) {
                    case kind::add_bulk: s.ours.push_back(sc_add_bulk(ctx)); break;
                    case kind::add_single: s.ours.push_back(sc_add_single(ctx, s.conc)); break;
                    case kind::process: s.ours.push_back(sc_process(ctx, s.conc)); break;
                    case kind::latency: s.ours.push_back(sc_latency(ctx, s.conc)); break;
                    case kind::flow: s.ours.push_back(sc_flow(ctx)); break;
                    case kind::partitioned: s.ours.push_back(sc_partitioned(ctx, s.conc)); break;
                    }
                } catch (const std::exception& e) {
                    json_line line;
                    line.set("bench", "queue").set("scenario", json::string(s.name));
                    line.set("lib", "akv").set("error", json::string(e.what()));
                    line.print();
                    status = 1;
                }
            }
        }
        // And one line to sum up: which scenarios meet the issue's goals.
        json::array met, missed, unjudged;
        for (const scenario& s : scenarios) {
            if (s.ours.empty()) continue;
            const std::optional<bool> ok = s.what == kind::partitioned
                                               ? std::optional<bool>(report_partitioned(s.ours))
                                               : report(s, peer_libs, k.peer);
            (ok ? (*ok ? met : missed) : unjudged).push_back(json::string(s.name));
        }
        json_line summary;
        summary.set("bench", "queue").set("summary", true).set("rounds", k.rounds);
        summary.set("goals_met", met).set("goals_missed", missed);
        if (!unjudged.empty()) summary.set("no_peer_figure", unjudged);
        summary.print();
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_queue: " << e.what() << "\n";
        status = 1;
    }
    if (!keep_dir) {
        std::error_code ignored;
        fs::remove_all(peer_dir, ignored);
    }
    return status;
}
