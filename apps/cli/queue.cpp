#include "queue.hpp"

#include "format.hpp"
#include "subcommand.hpp"

#include <akv/client.hpp>
#include <akv/error.hpp>
#include <akv/cluster_slot.hpp>
#include <akv/queue/admin.hpp>
#include <akv/queue/partitioned.hpp>
#include <akv/queue/producer.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>

namespace akv::cli {

const char* const queue_usage = R"(usage: akv [OPTIONS] queue SUBCOMMAND QUEUE [ARG...] [QUEUE-OPTIONS]

Looks into a task queue (akv::queue) and acts on it. OPTIONS (--redis URL, ...) as for
`akv --help`, before the word `queue`.

subcommands:
  stats QUEUE                 jobs per state (waiting parents: parents of flows waiting for
                              their children), live workers, totals since the queue began,
                              paused flag; fair groups: how many, and the busiest ten; a
                              partitioned queue: also its partitions, each with its own counts
  list QUEUE STATE            ids of jobs in STATE: waiting (claim order), delayed (by due time),
                              active (by lease deadline), failed or completed (newest first),
                              waiting-children (parents of flows, oldest first)
      --offset N              skip the first N (default 0)
      --limit N               at most N ids (default 100)
      --verbose               also each job's attempt, payload size and last error
  get QUEUE ID                one job: state, options, failures, last error, progress,
                              payload, result
  flow QUEUE ID               a flow from job ID down (akv::queue::flow_producer): its parent,
                              then each job with its state, children in their own queues, and
                              the outcome its parent keeps for it
  add QUEUE PAYLOAD           enqueues a job (PAYLOAD - reads stdin); prints its id
      --delay-ms N            runs no earlier than N ms from now
      --priority N            higher runs sooner, -1000..1000 (default 0)
      --attempts N            runs at most N times before the failed set (default 3)
      --unique KEY            while a job with KEY is pending, prints its id and adds none
      --throttle KEY=MS       a job with KEY added in the last MS ms: prints its id, adds none
      --debounce KEY=MS       waits MS ms; another with KEY meanwhile replaces it (same id)
      --group NAME            a fair group (a tenant): groups are served round-robin
      --key KEY               partitioned queue: jobs with KEY go to one partition, and are
                              claimed in the order they were added
      --partitions N          the queue is partitioned into N (made so if it is new; another
                              count stored exits 1)
  groups QUEUE                fair groups with ready or running jobs, the busiest first: ready,
                              running, state (ready, at-concurrency, rate-limited, idle), limits
      --limit N               at most N groups (default 100)
  group-limits QUEUE          sets the limits of one group (--group) or every group's default
      --group NAME            the group (default: every group without limits of its own)
      --concurrency N         its jobs running at once over every worker (0: no limit)
      --rate MAX/MS           at most MAX of its jobs claimed per MS ms (0/1000: no limit)
      --clear                 the group goes back to the defaults
  retry QUEUE ID              a failed (or cancelled) job runs again, attempts from zero
  remove QUEUE ID             deletes a job that is not running, with its result
  cancel QUEUE ID             a waiting or delayed job goes to the failed set as cancelled; a
                              running one is told to stop
      --reason TEXT           kept as its error, "cancelled: TEXT" (default "by akv")
  pause QUEUE                 workers claim no more jobs of the queue (running ones finish)
  resume QUEUE                workers claim again
  metrics QUEUE               per minute, oldest first: jobs processed and failed, and
                              enqueue-to-completion latency p50/p90/p99 (ms, histogram bounds)
      --minutes N             the last N minutes, 1..120 (default 10)
  partitions QUEUE            a partitioned queue's partitions: index, queue name, master
                              (on a cluster), waiting, active and failed jobs
      --create N              makes QUEUE a partitioned queue of N partitions (or checks N)
      --add N                 appends N partitions (producers and workers take them up)

A partitioned queue (akv::queue::partitioned_producer) is named as one: its job ids are
PARTITION:ID, and list, pause, resume and metrics cover every partition.

queue options:
  --json                      stats, list, get, flow, add, groups, metrics: one JSON object
  --help                      this text
  --                          what follows is positional (a PAYLOAD starting with --)

exit status: 0 done; 1 the queue refused (no such job, job running, job not failed, ...);
2 usage, configuration (bad queue or state name) or connection error
)";

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using akv::queue::job_state;

// What a subcommand takes: its positional arguments and the options it accepts.
struct subcommand {
    std::vector<const char*> positional;
    std::vector<const char*> options;
};

const std::map<std::string, subcommand>& subcommands() {
    static const std::map<std::string, subcommand> table{
        {"stats", {{"QUEUE"}, {"--json"}}},
        {"list", {{"QUEUE", "STATE"}, {"--offset", "--limit", "--verbose", "--json"}}},
        {"get", {{"QUEUE", "ID"}, {"--json"}}},
        {"flow", {{"QUEUE", "ID"}, {"--json"}}},
        {"add",
         {{"QUEUE", "PAYLOAD"},
          {"--delay-ms", "--priority", "--attempts", "--unique", "--throttle", "--debounce",
           "--group", "--key", "--partitions", "--json"}}},
        {"groups", {{"QUEUE"}, {"--limit", "--json"}}},
        {"group-limits", {{"QUEUE"}, {"--group", "--concurrency", "--rate", "--clear"}}},
        {"retry", {{"QUEUE", "ID"}, {}}},
        {"remove", {{"QUEUE", "ID"}, {}}},
        {"cancel", {{"QUEUE", "ID"}, {"--reason"}}},
        {"pause", {{"QUEUE"}, {}}},
        {"resume", {{"QUEUE"}, {}}},
        {"metrics", {{"QUEUE"}, {"--minutes", "--json"}}},
        {"partitions", {{"QUEUE"}, {"--create", "--add", "--json"}}},
    };
    return table;
}

bool takes_value(const std::string& option) {
    return option != "--json" && option != "--verbose" && option != "--clear";
}

struct queue_command {
    std::string sub;
    std::string queue;
    std::vector<std::string> args; // positional after QUEUE
    bool json = false;
    bool verbose = false;
    std::size_t offset = 0;
    std::size_t limit = 100;
    std::size_t minutes = 10;
    job_state state = job_state::unknown;
    akv::queue::job_options job;
    std::string reason = "by akv";
    akv::queue::group_limits limits;
    bool clear = false;
    std::string key;             // add: placement in a partitioned queue
    std::size_t partitions = 0;  // add --partitions, partitions --create
    std::size_t add_partitions = 0;
};

template <class T> T parse_number(const std::string& option, const std::string& text, T min, T max) {
    T v{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || v < min ||
        v > max)
        throw std::invalid_argument("option " + option + ": \"" + text +
                                    "\" is not a whole number in " + std::to_string(min) + ".." +
                                    std::to_string(max));
    return v;
}

job_state parse_state(const std::string& s) {
    for (auto st : {job_state::waiting, job_state::delayed, job_state::active, job_state::failed,
                    job_state::completed, job_state::waiting_children})
        if (s == akv::queue::to_string(st)) return st;
    throw std::invalid_argument(
        "unknown state \"" + s +
        "\": one of waiting, delayed, active, failed, completed, waiting-children");
}

queue_command parse(const std::vector<std::string>& args) {
    queue_command c;
    if (args.empty()) throw std::invalid_argument("no queue subcommand given");
    c.sub = args[0];
    const auto found = subcommands().find(c.sub);
    if (found == subcommands().end())
        throw std::invalid_argument("unknown queue subcommand \"" + c.sub + "\"");
    const subcommand& spec = found->second;

    std::vector<std::string> positional;
    std::map<std::string, std::string> given;
    bool options_done = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (options_done || a.size() < 2 || a.rfind("--", 0) != 0) {
            positional.push_back(a);
            continue;
        }
        if (a == "--") {
            options_done = true;
            continue;
        }
        if (std::find_if(spec.options.begin(), spec.options.end(),
                         [&](const char* o) { return a == o; }) == spec.options.end())
            throw std::invalid_argument("queue " + c.sub + ": unknown option " + a);
        if (!takes_value(a)) {
            given[a];
        } else if (i + 1 >= args.size()) {
            throw std::invalid_argument("option " + a + " needs a value");
        } else {
            given[a] = args[++i];
        }
    }
    if (positional.size() != spec.positional.size()) {
        std::string expected;
        for (const char* p : spec.positional) expected += std::string(" ") + p;
        throw std::invalid_argument("queue " + c.sub + ": expected" + expected + ", got " +
                                    std::to_string(positional.size()) + " argument" +
                                    (positional.size() == 1 ? "" : "s"));
    }
    c.queue = positional[0];
    c.args.assign(positional.begin() + 1, positional.end());

    for (const auto& [option, value] : given) {
        if (option == "--json") c.json = true;
        else if (option == "--verbose") c.verbose = true;
        else if (option == "--offset")
            c.offset = parse_number<std::size_t>(option, value, 0, 1'000'000'000);
        else if (option == "--limit")
            c.limit = parse_number<std::size_t>(option, value, 1, 1'000'000);
        else if (option == "--minutes")
            c.minutes = parse_number<std::size_t>(option, value, 1, 120);
        else if (option == "--delay-ms")
            c.job.delay = std::chrono::milliseconds(parse_number<std::int64_t>(
                option, value, 0, std::numeric_limits<std::int64_t>::max() / 2));
        else if (option == "--priority")
            c.job.priority = parse_number<int>(option, value, akv::queue::min_priority,
                                               akv::queue::max_priority);
        else if (option == "--attempts")
            c.job.max_attempts = parse_number<unsigned>(option, value, 1, 1'000'000);
        else if (option == "--unique") {
            if (value.empty()) throw std::invalid_argument("option --unique: empty key");
            c.job.unique_key = value;
        } else if (option == "--throttle" || option == "--debounce") {
            const auto eq = value.rfind('=');
            if (eq == std::string::npos || eq == 0)
                throw std::invalid_argument("option " + option + ": KEY=MS, got '" + value + "'");
            c.job.dedup.mode = option == "--throttle" ? akv::queue::dedup_mode::throttle
                                                      : akv::queue::dedup_mode::debounce;
            c.job.dedup.key = value.substr(0, eq);
            c.job.dedup.window = std::chrono::milliseconds(parse_number<std::int64_t>(
                option, value.substr(eq + 1), 1, std::int64_t{1} << 40));
        } else if (option == "--reason")
            c.reason = value;
        else if (option == "--key") {
            if (value.empty()) throw std::invalid_argument("option --key: empty key");
            c.key = value;
        } else if (option == "--partitions" || option == "--create")
            c.partitions = parse_number<std::size_t>(option, value, 1, akv::queue::max_partitions);
        else if (option == "--add")
            c.add_partitions =
                parse_number<std::size_t>(option, value, 1, akv::queue::max_partitions);
        else if (option == "--group") {
            if (value.empty()) throw std::invalid_argument("option --group: empty name");
            c.job.group = value;
        } else if (option == "--concurrency")
            c.limits.concurrency = parse_number<std::size_t>(option, value, 0, 1'000'000'000);
        else if (option == "--rate") {
            const auto slash = value.find('/');
            if (slash == std::string::npos)
                throw std::invalid_argument("option --rate: MAX/MS, got '" + value + "'");
            c.limits.rate_max = parse_number<std::uint64_t>(option, value.substr(0, slash), 0,
                                                            1'000'000'000);
            c.limits.rate_window = std::chrono::milliseconds(parse_number<std::int64_t>(
                option, value.substr(slash + 1), 1, std::int64_t{1} << 40));
        } else if (option == "--clear")
            c.clear = true;
    }
    if (c.sub == "group-limits") {
        if (c.clear && c.job.group.empty())
            throw std::invalid_argument("queue group-limits: --clear needs --group");
        if (c.clear && (given.contains("--concurrency") || given.contains("--rate")))
            throw std::invalid_argument("queue group-limits: --clear takes no limits");
        if (!c.clear && !given.contains("--concurrency") && !given.contains("--rate"))
            throw std::invalid_argument(
                "queue group-limits: give --concurrency, --rate or both (or --clear)");
    }
    if (c.sub == "list") c.state = parse_state(c.args[0]);
    if (c.sub == "add" && c.args[0] == "-") {
        c.args[0].assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    }
    return c;
}

// ---- printing ----

std::string utc(std::int64_t ms, bool with_seconds) {
    const std::time_t t = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    if (with_seconds) {
        std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        char out[80];
        std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
        return out;
    }
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
    return buf;
}

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

void print_json(const json::value& v) { std::cout << json::serialize(v) << "\n"; }

// Whole milliseconds as integers (Boost.JSON writes the double 0 as 0E0).
json::value json_ms(double v) {
    if (v == static_cast<double>(static_cast<std::int64_t>(v))) return static_cast<std::int64_t>(v);
    return v;
}

std::string_view status_name(akv::queue::job_result::status s) {
    switch (s) {
    case akv::queue::job_result::status::completed: return "completed";
    case akv::queue::job_result::status::failed: return "failed";
    case akv::queue::job_result::status::cancelled: return "cancelled";
    }
    return "unknown";
}

// The run a job is on (or will run next); for a failed job, the last one it made.
unsigned attempt_of(const akv::queue::job_info& info) {
    if (info.state == job_state::failed) return info.failures;
    return info.failures + 1;
}

json::object options_json(const akv::queue::job_options& o) {
    json::object j;
    j["priority"] = o.priority;
    j["max_attempts"] = o.max_attempts;
    j["delay_ms"] = o.delay.count();
    json::object b;
    b["kind"] = o.backoff.kind == akv::queue::backoff_kind::exponential ? "exponential" : "fixed";
    b["base_ms"] = o.backoff.base.count();
    b["max_ms"] = o.backoff.max.count();
    b["jitter"] = o.backoff.jitter;
    j["backoff"] = std::move(b);
    j["unique_key"] = o.unique_key;
    j["result_ttl_ms"] = o.result_ttl.count();
    j["timeout_ms"] = o.timeout.count();
    j["group"] = o.group;
    return j;
}

// ---- subcommands ----

[[noreturn]] void no_job(const queue_command& c, const std::string& id) {
    akv::throw_error(akv::error::unknown_job, "queue \"" + c.queue + "\": no job " + id);
}

// The queue a subcommand acts on: a plain one, or a partitioned one
// (akv::queue::partitioned_admin: job ids "<partition>:<id>", and what concerns the whole
// queue goes to every partition).
class queue_handle {
public:
    queue_handle(akv::client& cl, const std::string& name, bool partitioned)
        : plain_(cl, name)
        , parts_(cl, name)
        , partitioned_(partitioned) {}

    bool partitioned() const noexcept { return partitioned_; }
    akv::queue::admin& plain() noexcept { return plain_; }
    akv::queue::partitioned_admin& parts() noexcept { return parts_; }

    asio::awaitable<void> require_exists() {
        if (!partitioned_) co_await plain_.require_exists();
    }
    asio::awaitable<std::vector<std::string>> list(job_state s, std::size_t offset,
                                                   std::size_t limit) {
        if (partitioned_) co_return co_await parts_.list(s, offset, limit);
        co_return co_await plain_.list(s, offset, limit);
    }
    asio::awaitable<akv::queue::job_info> get(std::string id) {
        if (partitioned_) co_return co_await parts_.get(std::move(id));
        co_return co_await plain_.get(std::move(id));
    }
    asio::awaitable<akv::queue::flow_node> flow(std::string id) {
        if (partitioned_) co_return co_await parts_.flow(std::move(id));
        co_return co_await plain_.flow(std::move(id));
    }
    asio::awaitable<void> retry(std::string id) {
        if (partitioned_)
            co_await parts_.retry(std::move(id));
        else
            co_await plain_.retry(std::move(id));
    }
    asio::awaitable<void> remove(std::string id) {
        if (partitioned_)
            co_await parts_.remove(std::move(id));
        else
            co_await plain_.remove(std::move(id));
    }
    asio::awaitable<akv::queue::cancel_outcome> cancel(std::string id, std::string reason) {
        if (partitioned_) co_return co_await parts_.cancel(std::move(id), std::move(reason));
        co_return co_await plain_.cancel(std::move(id), std::move(reason));
    }
    asio::awaitable<void> pause() {
        if (partitioned_)
            co_await parts_.pause();
        else
            co_await plain_.pause();
    }
    asio::awaitable<void> resume() {
        if (partitioned_)
            co_await parts_.resume();
        else
            co_await plain_.resume();
    }
    asio::awaitable<std::vector<akv::queue::minute_metrics>> metrics(std::size_t minutes) {
        if (partitioned_) co_return co_await parts_.metrics(minutes);
        co_return co_await plain_.metrics(minutes);
    }
    asio::awaitable<std::vector<akv::queue::group_info>> groups(std::size_t limit) {
        if (partitioned_) co_return co_await parts_.groups(limit);
        co_return co_await plain_.groups(limit);
    }
    asio::awaitable<void> set_group_limits(std::string group, akv::queue::group_limits limits) {
        if (partitioned_)
            co_await parts_.set_group_limits(std::move(group), limits);
        else
            co_await plain_.set_group_limits(std::move(group), limits);
    }
    asio::awaitable<void> clear_group_limits(std::string group) {
        if (partitioned_)
            co_await parts_.clear_group_limits(std::move(group));
        else
            co_await plain_.clear_group_limits(std::move(group));
    }

private:
    akv::queue::admin plain_;
    akv::queue::partitioned_admin parts_;
    bool partitioned_;
};

asio::awaitable<queue_handle> open_queue(akv::client& cl, const std::string& name) {
    akv::queue::partitioned_admin parts(cl, name);
    const bool partitioned = co_await parts.exists();
    co_return queue_handle(cl, name, partitioned);
}

// ---- partitioned queues

json::object counts_json(const akv::queue::state_counts& n) {
    json::object j;
    j["paused"] = n.paused;
    j["waiting"] = n.waiting;
    j["delayed"] = n.delayed;
    j["active"] = n.active;
    j["failed"] = n.failed;
    j["completed"] = n.completed;
    j["waiting_children"] = n.waiting_children;
    j["workers"] = n.workers;
    j["total_completed"] = n.total_completed;
    j["total_failed"] = n.total_failed;
    return j;
}

json::array partitions_json(akv::client& cl, const akv::queue::partitioned_counts& pc) {
    json::array arr;
    for (std::size_t i = 0; i < pc.partitions.size(); ++i) {
        const auto& part = pc.partitions[i];
        json::object j;
        j["index"] = i;
        j["queue"] = part.name;
        const auto master = cl.master_of(akv::cluster_slot(part.name));
        j["master"] = master ? json::value(akv::to_string(*master)) : json::value(nullptr);
        for (auto& field : counts_json(part.counts))
            j[field.key()] = std::move(field.value());
        arr.push_back(std::move(j));
    }
    return arr;
}

std::string partitions_table(akv::client& cl, const akv::queue::partitioned_counts& pc) {
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"PARTITION", "QUEUE", "MASTER", "WAITING", "DELAYED", "ACTIVE", "FAILED",
                    "COMPLETED", "PAUSED"});
    for (std::size_t i = 0; i < pc.partitions.size(); ++i) {
        const auto& part = pc.partitions[i];
        const auto& n = part.counts;
        const auto master = cl.master_of(akv::cluster_slot(part.name));
        rows.push_back({std::to_string(i), part.name, master ? akv::to_string(*master) : "-",
                        std::to_string(n.waiting), std::to_string(n.delayed),
                        std::to_string(n.active), std::to_string(n.failed),
                        std::to_string(n.completed), n.paused ? "yes" : "no"});
    }
    return table(rows, true);
}

asio::awaitable<int> partitions(akv::client& cl, const queue_command& c) {
    akv::queue::partitioned_admin a(cl, c.queue);
    if (c.partitions > 0) co_await a.open(c.partitions);
    if (c.add_partitions > 0) co_await a.add_partitions(c.add_partitions);
    const akv::queue::partitioned_counts pc = co_await a.counts();
    if (c.json) {
        json::object j;
        j["queue"] = c.queue;
        j["partitions"] = partitions_json(cl, pc);
        print_json(j);
        co_return 0;
    }
    std::cout << partitions_table(cl, pc);
    co_return 0;
}

std::string_view group_state_name(akv::queue::group_state s) {
    switch (s) {
    case akv::queue::group_state::ready: return "ready";
    case akv::queue::group_state::at_concurrency: return "at-concurrency";
    case akv::queue::group_state::rate_limited: return "rate-limited";
    case akv::queue::group_state::idle: return "idle";
    }
    return "idle";
}

std::string limits_text(const akv::queue::group_limits& l) {
    std::string t = l.concurrency == 0 ? "-" : std::to_string(l.concurrency);
    t += " running, ";
    t += l.rate_max == 0 ? "no rate"
                         : std::to_string(l.rate_max) + "/" +
                               std::to_string(l.rate_window.count()) + " ms";
    return t;
}

json::object group_json(const akv::queue::group_info& g) {
    json::object j;
    j["group"] = g.name;
    j["waiting"] = g.waiting;
    j["active"] = g.active;
    j["state"] = group_state_name(g.state);
    j["concurrency"] = g.limits.concurrency;
    j["rate_max"] = g.limits.rate_max;
    j["rate_window_ms"] = g.limits.rate_window.count();
    j["own_limits"] = g.own_limits;
    return j;
}

void print_groups(const std::vector<akv::queue::group_info>& groups) {
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"GROUP", "READY", "RUNNING", "STATE", "LIMITS"});
    for (const auto& g : groups)
        rows.push_back({g.name, std::to_string(g.waiting), std::to_string(g.active),
                        std::string(group_state_name(g.state)),
                        limits_text(g.limits) + (g.own_limits ? " (own)" : "")});
    std::cout << table(rows, true);
}

asio::awaitable<int> stats(akv::client& cl, const queue_command& c) {
    queue_handle a = co_await open_queue(cl, c.queue);
    co_await a.require_exists();
    akv::queue::partitioned_counts parts; // a partitioned queue's, with its total
    akv::queue::state_counts n;
    if (a.partitioned()) {
        parts = co_await a.parts().counts();
        n = parts.total;
    } else {
        n = co_await a.plain().counts();
    }
    if (c.json) {
        json::object totals;
        totals["completed"] = n.total_completed;
        totals["failed"] = n.total_failed;
        totals["retried"] = n.total_retried;
        totals["recovered"] = n.total_recovered;
        totals["cancelled"] = n.total_cancelled;
        totals["throttled"] = n.total_throttled;
        totals["debounced"] = n.total_debounced;
        json::object j;
        j["queue"] = c.queue;
        j["paused"] = n.paused;
        j["waiting"] = n.waiting;
        j["delayed"] = n.delayed;
        j["active"] = n.active;
        j["failed"] = n.failed;
        j["completed"] = n.completed;
        j["waiting_children"] = n.waiting_children;
        j["workers"] = n.workers;
        j["totals"] = std::move(totals);
        j["groups"] = n.groups;
        json::array top;
        if (n.groups > 0)
            for (const auto& g : co_await a.groups(10)) top.push_back(group_json(g));
        j["top_groups"] = std::move(top);
        if (a.partitioned()) j["partitions"] = partitions_json(cl, parts);
        print_json(j);
        co_return 0;
    }
    std::vector<std::vector<std::string>> head{
        {"queue", c.queue},
        {"paused", n.paused ? "yes" : "no"},
    };
    if (a.partitioned()) head.push_back({"partitions", std::to_string(parts.partitions.size())});
    std::vector<std::vector<std::string>> rows{
        {"waiting", std::to_string(n.waiting)},
        {"delayed", std::to_string(n.delayed)},
        {"active", std::to_string(n.active)},
        {"failed", std::to_string(n.failed)},
        {"completed", std::to_string(n.completed)},
        {"waiting parents", std::to_string(n.waiting_children)},
        {"workers", std::to_string(n.workers)},
        {"total completed", std::to_string(n.total_completed)},
        {"total failed", std::to_string(n.total_failed)},
        {"total retried", std::to_string(n.total_retried)},
        {"total recovered", std::to_string(n.total_recovered)},
        {"total cancelled", std::to_string(n.total_cancelled)},
        {"total throttled", std::to_string(n.total_throttled)},
        {"total debounced", std::to_string(n.total_debounced)},
        {"groups", std::to_string(n.groups)},
    };
    std::cout << table(head, false) << table(rows, true);
    if (n.groups > 0) {
        std::cout << "\nbusiest groups:\n";
        print_groups(co_await a.groups(10));
    }
    if (a.partitioned()) std::cout << "\n" << partitions_table(cl, parts);
    co_return 0;
}

asio::awaitable<int> list(akv::client& cl, const queue_command& c) {
    queue_handle a = co_await open_queue(cl, c.queue);
    co_await a.require_exists();
    const std::vector<std::string> ids = co_await a.list(c.state, c.offset, c.limit);
    if (!c.verbose) {
        if (c.json) {
            json::array arr;
            for (const auto& id : ids) arr.emplace_back(id);
            json::object j;
            j["queue"] = c.queue;
            j["state"] = akv::queue::to_string(c.state);
            j["offset"] = c.offset;
            j["ids"] = std::move(arr);
            print_json(j);
        } else {
            for (const auto& id : ids) std::cout << id << "\n";
        }
        co_return 0;
    }
    std::vector<akv::queue::job_info> infos;
    for (const auto& id : ids) {
        std::string id_arg = id;
        akv::queue::job_info info = co_await a.get(id_arg);
        infos.push_back(std::move(info));
    }
    if (c.json) {
        json::array arr;
        for (const auto& info : infos) {
            json::object j;
            j["id"] = info.id;
            j["state"] = akv::queue::to_string(info.state);
            j["attempt"] = attempt_of(info);
            j["failures"] = info.failures;
            j["last_error"] = info.last_error;
            if (info.job) j["payload_bytes"] = info.job->payload.size();
            else j["payload_bytes"] = nullptr;
            arr.push_back(std::move(j));
        }
        json::object j;
        j["queue"] = c.queue;
        j["state"] = akv::queue::to_string(c.state);
        j["offset"] = c.offset;
        j["jobs"] = std::move(arr);
        print_json(j);
        co_return 0;
    }
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"ID", "ATTEMPT", "PAYLOAD", "LAST ERROR"});
    for (const auto& info : infos) {
        // A job may finish (and go) between the listing and its look-up.
        const bool gone = info.state == job_state::unknown && !info.job;
        rows.push_back({info.id, info.job ? std::to_string(attempt_of(info)) : "-",
                        info.job ? std::to_string(info.job->payload.size()) + " B" : "-",
                        gone ? "(gone)" : info.last_error.empty() ? "-" : quote(info.last_error)});
    }
    std::cout << table(rows, true);
    co_return 0;
}

asio::awaitable<int> get(akv::client& cl, const queue_command& c) {
    queue_handle a = co_await open_queue(cl, c.queue);
    std::string id = c.args[0];
    const akv::queue::job_info info = co_await a.get(id);
    if (info.state == job_state::unknown && !info.job && !info.result) no_job(c, c.args[0]);
    if (c.json) {
        json::object j;
        j["queue"] = c.queue;
        j["id"] = info.id;
        j["state"] = akv::queue::to_string(info.state);
        j["failures"] = info.failures;
        j["last_error"] = info.last_error;
        j["progress"] = info.progress;
        if (info.job) {
            j["attempt"] = attempt_of(info);
            j["payload"] = info.job->payload;
            j["enqueued_ms"] = info.job->enqueued_ms;
            j["options"] = options_json(info.job->options);
        } else {
            j["attempt"] = nullptr;
            j["payload"] = nullptr;
            j["enqueued_ms"] = nullptr;
            j["options"] = nullptr;
        }
        if (info.result) {
            json::object r;
            r["status"] = status_name(info.result->outcome);
            r["value"] = info.result->value;
            j["result"] = std::move(r);
        } else {
            j["result"] = nullptr;
        }
        print_json(j);
        co_return 0;
    }
    std::vector<std::vector<std::string>> rows{
        {"id", info.id},
        {"state", std::string(akv::queue::to_string(info.state))},
        {"failures", std::to_string(info.failures)},
        {"last error", info.last_error.empty() ? "(none)" : quote(info.last_error)},
        {"progress", info.progress.empty() ? "(none)" : quote(info.progress)},
    };
    if (info.job) {
        const auto& j = *info.job;
        const auto& o = j.options;
        rows.push_back({"attempt", std::to_string(attempt_of(info)) + " of " +
                                       std::to_string(o.max_attempts)});
        rows.push_back({"payload", quote(j.payload) + " (" + std::to_string(j.payload.size()) +
                                       " bytes)"});
        rows.push_back({"enqueued", utc(j.enqueued_ms, true)});
        rows.push_back({"priority", std::to_string(o.priority)});
        rows.push_back({"delay", std::to_string(o.delay.count()) + " ms"});
        rows.push_back({"backoff",
                        std::string(o.backoff.kind == akv::queue::backoff_kind::exponential
                                        ? "exponential "
                                        : "fixed ") +
                            std::to_string(o.backoff.base.count()) + ".." +
                            std::to_string(o.backoff.max.count()) + " ms" +
                            (o.backoff.jitter ? ", jitter" : "")});
        rows.push_back({"unique key", o.unique_key.empty() ? "(none)" : quote(o.unique_key)});
        rows.push_back({"group", o.group.empty() ? "(none)" : quote(o.group)});
        rows.push_back({"result ttl", o.result_ttl.count() == 0
                                          ? "(not kept)"
                                          : std::to_string(o.result_ttl.count()) + " ms"});
        rows.push_back({"timeout", o.timeout.count() == 0
                                       ? "(none)"
                                       : std::to_string(o.timeout.count()) + " ms"});
    }
    rows.push_back({"result", info.result ? std::string(status_name(info.result->outcome)) + " " +
                                                quote(info.result->value)
                                          : "(none)"});
    std::cout << table(rows, false);
    co_return 0;
}

// One job of a flow for `akv queue flow`: "<queue> <id>  <state>  <outcome kept by its parent>".
std::string flow_line(const akv::queue::flow_node& n,
                      const std::optional<akv::queue::job_result>& kept) {
    std::string line =
        n.queue + " " + n.info.id + "  " + std::string(akv::queue::to_string(n.info.state));
    if (n.info.state == job_state::waiting_children) {
        std::size_t pending = 0;
        for (const auto& c : n.info.children)
            if (!c.result) ++pending;
        line += " (" + std::to_string(pending) + " of " + std::to_string(n.info.children.size()) +
                " pending)";
    }
    const auto& shown = kept ? kept : n.info.result;
    if (shown) line += "  " + std::string(status_name(shown->outcome)) + " " + quote(shown->value);
    return line;
}

void print_flow(const akv::queue::flow_node& n, const std::optional<akv::queue::job_result>& kept,
                const std::string& indent, bool last, bool root) {
    std::cout << (root ? "" : indent + (last ? "`-- " : "|-- ")) << flow_line(n, kept) << "\n";
    const std::string below = root ? "" : indent + (last ? "    " : "|   ");
    for (std::size_t i = 0; i < n.children.size(); ++i) {
        std::optional<akv::queue::job_result> result;
        if (i < n.info.children.size()) result = n.info.children[i].result;
        print_flow(n.children[i], result, below, i + 1 == n.children.size(), false);
    }
}

json::object flow_json(const akv::queue::flow_node& n,
                       const std::optional<akv::queue::job_result>& kept) {
    json::object j;
    j["queue"] = n.queue;
    j["id"] = n.info.id;
    j["state"] = akv::queue::to_string(n.info.state);
    const auto& shown = kept ? kept : n.info.result;
    if (shown) {
        json::object r;
        r["status"] = status_name(shown->outcome);
        r["value"] = shown->value;
        j["result"] = std::move(r);
    } else {
        j["result"] = nullptr;
    }
    json::array children;
    for (std::size_t i = 0; i < n.children.size(); ++i)
        children.push_back(flow_json(
            n.children[i], i < n.info.children.size() ? n.info.children[i].result : std::nullopt));
    j["children"] = std::move(children);
    return j;
}

asio::awaitable<int> flow(akv::client& cl, const queue_command& c) {
    queue_handle a = co_await open_queue(cl, c.queue);
    co_await a.require_exists();
    std::string id = c.args[0];
    const akv::queue::flow_node root = co_await a.flow(id);
    const auto& info = root.info;
    if (info.state == job_state::unknown && !info.job && !info.result) no_job(c, c.args[0]);
    const auto& parent = info.job ? info.job->parent : std::nullopt;
    if (c.json) {
        json::object j = flow_json(root, std::nullopt);
        if (parent) {
            json::object p;
            p["queue"] = parent->queue;
            p["id"] = parent->id;
            p["fails_with_child"] = parent->on_failure == akv::queue::on_child_failure::fail;
            j["parent"] = std::move(p);
        } else {
            j["parent"] = nullptr;
        }
        print_json(j);
        co_return 0;
    }
    if (parent)
        std::cout << "parent: " << parent->queue << " " << parent->id
                  << (parent->on_failure == akv::queue::on_child_failure::fail
                          ? " (fails if this job fails)"
                          : " (ignores this job's failure)")
                  << "\n";
    print_flow(root, std::nullopt, "", true, true);
    co_return 0;
}

asio::awaitable<int> add(akv::client& cl, const queue_command& c) {
    const std::string& payload = c.args[0];
    akv::queue::job_options options = c.job;
    std::string id;
    akv::queue::partitioned_admin parts(cl, c.queue);
    // --key without --partitions: for a partitioned queue only (unknown_queue otherwise).
    bool partitioned = c.partitions > 0 || !c.key.empty();
    if (!partitioned) partitioned = co_await parts.exists();
    if (partitioned) {
        akv::queue::partitioning p;
        p.partitions = c.partitions; // 0: as stored
        akv::queue::partitioned_producer pp(cl, c.queue, p);
        const std::string_view key = c.key;
        id = co_await pp.enqueue(payload, std::move(options), key);
    } else {
        akv::queue::producer p(cl, c.queue);
        id = co_await p.enqueue(payload, std::move(options));
    }
    if (c.json) {
        json::object j;
        j["queue"] = c.queue;
        j["id"] = id;
        print_json(j);
    } else {
        std::cout << id << "\n";
    }
    co_return 0;
}

asio::awaitable<int> groups(akv::client& cl, const queue_command& c) {
    queue_handle a = co_await open_queue(cl, c.queue);
    co_await a.require_exists();
    const auto found = co_await a.groups(c.limit);
    if (c.json) {
        json::array arr;
        for (const auto& g : found) arr.push_back(group_json(g));
        json::object j;
        j["queue"] = c.queue;
        j["groups"] = std::move(arr);
        print_json(j);
        co_return 0;
    }
    print_groups(found);
    co_return 0;
}

asio::awaitable<int> group_limits(akv::client& cl, const queue_command& c) {
    queue_handle a = co_await open_queue(cl, c.queue);
    std::string group = c.job.group;
    const std::string who = group.empty() ? "every group" : "group " + group;
    if (c.clear) {
        co_await a.clear_group_limits(group);
        std::cout << "queue " << c.queue << ": " << who << " uses the defaults\n";
        co_return 0;
    }
    co_await a.set_group_limits(group, c.limits);
    std::cout << "queue " << c.queue << ": " << who << ": " << limits_text(c.limits) << "\n";
    co_return 0;
}

asio::awaitable<int> retry(akv::client& cl, const queue_command& c) {
    queue_handle a = co_await open_queue(cl, c.queue);
    std::string id = c.args[0];
    co_await a.retry(id);
    std::cout << "job " << c.args[0] << " is waiting again\n";
    co_return 0;
}

asio::awaitable<int> remove(akv::client& cl, const queue_command& c) {
    queue_handle a = co_await open_queue(cl, c.queue);
    std::string id = c.args[0];
    co_await a.remove(id);
    std::cout << "job " << c.args[0] << " removed\n";
    co_return 0;
}

asio::awaitable<int> cancel(akv::client& cl, const queue_command& c) {
    queue_handle a = co_await open_queue(cl, c.queue);
    std::string id = c.args[0];
    std::string reason = c.reason;
    const akv::queue::cancel_outcome outcome = co_await a.cancel(id, reason);
    const std::string& job = c.args[0];
    switch (outcome) {
    case akv::queue::cancel_outcome::cancelled:
        std::cout << "job " << job << " cancelled\n";
        co_return 0;
    case akv::queue::cancel_outcome::running:
        std::cout << "job " << job << " is running: its worker was told to stop it\n";
        co_return 0;
    case akv::queue::cancel_outcome::finished:
        std::cerr << "akv: queue \"" << c.queue << "\": job " << job
                  << " has already failed: nothing to cancel\n";
        co_return 1;
    case akv::queue::cancel_outcome::unknown: break;
    }
    akv::throw_error(akv::error::unknown_job,
                     "queue \"" + c.queue + "\": no job " + job + " to cancel (none, or it has completed)");
}

asio::awaitable<int> pause(akv::client& cl, const queue_command& c) {
    queue_handle a = co_await open_queue(cl, c.queue);
    co_await a.pause();
    std::cout << "queue " << c.queue << " paused\n";
    co_return 0;
}

asio::awaitable<int> resume(akv::client& cl, const queue_command& c) {
    queue_handle a = co_await open_queue(cl, c.queue);
    co_await a.resume();
    std::cout << "queue " << c.queue << " resumed\n";
    co_return 0;
}

asio::awaitable<int> metrics(akv::client& cl, const queue_command& c) {
    queue_handle a = co_await open_queue(cl, c.queue);
    const std::vector<akv::queue::minute_metrics> m = co_await a.metrics(c.minutes);
    std::uint64_t processed = 0, failed = 0;
    for (const auto& x : m) {
        processed += x.processed;
        failed += x.failed;
    }
    if (c.json) {
        json::array arr;
        for (const auto& x : m) {
            json::object j;
            j["minute"] = x.minute;
            j["time"] = utc(x.minute * 60000, true);
            j["processed"] = x.processed;
            j["failed"] = x.failed;
            j["p50_ms"] = json_ms(x.p50_ms);
            j["p90_ms"] = json_ms(x.p90_ms);
            j["p99_ms"] = json_ms(x.p99_ms);
            arr.push_back(std::move(j));
        }
        json::object j;
        j["queue"] = c.queue;
        j["processed"] = processed;
        j["failed"] = failed;
        j["minutes"] = std::move(arr);
        print_json(j);
        co_return 0;
    }
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"MINUTE (UTC)", "PROCESSED", "FAILED", "P50 MS", "P90 MS", "P99 MS"});
    for (const auto& x : m) {
        const bool any = x.processed > 0 || x.failed > 0;
        rows.push_back({utc(x.minute * 60000, false), std::to_string(x.processed),
                        std::to_string(x.failed), any ? number(x.p50_ms) : "-",
                        any ? number(x.p90_ms) : "-", any ? number(x.p99_ms) : "-"});
    }
    rows.push_back({"total", std::to_string(processed), std::to_string(failed)});
    std::cout << table(rows, true);
    co_return 0;
}

asio::awaitable<int> dispatch(akv::client& cl, const queue_command& c) {
    if (c.sub == "stats") co_return co_await stats(cl, c);
    if (c.sub == "list") co_return co_await list(cl, c);
    if (c.sub == "get") co_return co_await get(cl, c);
    if (c.sub == "flow") co_return co_await flow(cl, c);
    if (c.sub == "add") co_return co_await add(cl, c);
    if (c.sub == "retry") co_return co_await retry(cl, c);
    if (c.sub == "remove") co_return co_await remove(cl, c);
    if (c.sub == "cancel") co_return co_await cancel(cl, c);
    if (c.sub == "pause") co_return co_await pause(cl, c);
    if (c.sub == "resume") co_return co_await resume(cl, c);
    if (c.sub == "metrics") co_return co_await metrics(cl, c);
    if (c.sub == "groups") co_return co_await groups(cl, c);
    if (c.sub == "group-limits") co_return co_await group_limits(cl, c);
    if (c.sub == "partitions") co_return co_await partitions(cl, c);
    co_return 2;
}

// Errors the queue answered with (exit 1), as opposed to not reaching it (exit 2).
bool refused_by_queue(const boost::system::error_code& ec) {
    if (ec.category() != akv::error_category()) return false;
    switch (static_cast<akv::error>(ec.value())) {
    case akv::error::unknown_job:
    case akv::error::unknown_queue:
    case akv::error::job_active:
    case akv::error::invalid_config:
    case akv::error::bad_job:
    case akv::error::script_error:
    case akv::error::server_error:
    case akv::error::type_mismatch:
    case akv::error::unexpected_null:
    case akv::error::partition_mismatch:
        return true;
    default:
        return false;
    }
}

} // namespace

int run_queue_command(const akv::config& cfg, const std::vector<std::string>& args) {
    for (const auto& a : args) {
        if (a == "--") break;
        if (a == "--help" || a == "-h") {
            std::cout << queue_usage;
            return 0;
        }
    }
    queue_command cmd;
    try {
        cmd = parse(args);
        akv::queue::validate_queue_name(cmd.queue);
        akv::queue::validate(cmd.job);
    } catch (const boost::system::system_error& e) {
        std::cerr << "akv: " << describe(e) << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "akv: " << e.what() << "\n(akv queue --help lists the subcommands)\n";
        return 2;
    }

    asio::io_context io;
    akv::client cl(io.get_executor(), cfg);
    int status = 2;
    asio::co_spawn(io, cl.run(), [](std::exception_ptr) {});
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            try {
                status = co_await dispatch(cl, cmd);
            } catch (const boost::system::system_error& e) {
                if (refused_by_queue(e.code())) {
                    std::cerr << "akv: " << describe(e) << "\n";
                    status = 1;
                } else {
                    const std::string why = cl.last_error_message();
                    std::cerr << "akv: " << (why.empty() ? std::string(e.what()) : why) << "\n";
                    status = 2;
                }
            } catch (const std::exception& e) {
                std::cerr << "akv: " << e.what() << "\n";
                status = 2;
            }
            cl.cancel();
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    io.run();
    return status;
}

} // namespace akv::cli
