// `akv monitor`: live counters of the server, of task queues and of streams, sampled every
// interval; redrawn in place on a terminal, one line (or JSON object) per sample otherwise.
#include "commands.hpp"
#include "subcommand.hpp"

#include <akv/queue/admin.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include <csignal>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace akv::cli {

const char* const monitor_usage =
    R"(usage: akv [OPTIONS] monitor [--interval-ms N] [--count N] [--queue Q]... [--stream S[:GROUP]]... [--json]

Samples live counters every interval: the server's commands per second, connected clients
and used memory (INFO); each queue's jobs per state (akv::queue::admin); each stream's length
and, with a GROUP, its pending entries and lag. On a terminal the screen is redrawn in place;
otherwise each sample is one line. OPTIONS (--redis URL, ...) as for `akv --help`, before the
word `monitor`. (The Redis command MONITOR is still there, written in capitals: akv MONITOR.)

options:
  --interval-ms N             between samples (default 1000)
  --count N                   stop after N samples (default: until Ctrl-C)
  --queue Q                   a task queue to follow (repeatable)
  --stream S[:GROUP]          a stream to follow, with a consumer group (repeatable); split at
                              the last ':' unless S:GROUP is itself the name of a stream
  --json                      one JSON object per sample, one per line
  --help                      this text

ops/s is the commands the server processed per second over the last interval (the first
sample: the server's instantaneous_ops_per_sec). Lag is "-" when Redis cannot tell.

exit status: 0 done (after --count samples, or on SIGINT); 1 no such queue, stream or group;
2 usage, configuration or connection error
)";

namespace {

namespace json = boost::json;

const subcommand_table& subcommands() {
    static const subcommand_table table{
        {"",
         {{},
          {{"--interval-ms", true},
           {"--count", true},
           {"--queue", true, true},
           {"--stream", true, true},
           {"--json"}}}},
    };
    return table;
}

struct stream_spec {
    std::string stream;
    std::string group; // empty: none
};

struct settings {
    std::chrono::milliseconds interval{1000};
    std::uint64_t count = 0; // 0: until SIGINT
    std::vector<std::string> queues;
    std::vector<std::string> stream_args; // as given; resolved against the server
    bool json = false;
};

settings settings_of(const parsed_args& a) {
    settings s;
    if (const auto v = a.value("--interval-ms"))
        s.interval = std::chrono::milliseconds(
            parse_number<std::int64_t>("option --interval-ms", *v, 1, 86'400'000));
    if (const auto v = a.value("--count"))
        s.count = parse_number<std::uint64_t>("option --count", *v, 1, 1'000'000'000);
    s.queues = a.values("--queue");
    for (const auto& q : s.queues)
        akv::queue::validate_queue_name(q);
    s.stream_args = a.values("--stream");
    for (const auto& st : s.stream_args)
        if (st.empty() || st.front() == ':')
            throw std::invalid_argument("option --stream: " + in_quotes(st) + " names no stream");
    s.json = a.has("--json");
    return s;
}

// ---- one sample ----

struct queue_sample {
    std::string name;
    akv::queue::state_counts counts;
};

struct stream_sample {
    stream_spec spec;
    std::int64_t length = 0;
    std::optional<std::int64_t> pending, lag; // with a group
    bool group_gone = false;                  // the group was destroyed since the start
};

struct sample {
    std::int64_t time_ms = 0;
    double ops_per_sec = 0;
    std::uint64_t commands = 0; // total_commands_processed
    std::int64_t clients = 0;
    std::uint64_t used_memory = 0;
    std::vector<queue_sample> queues;
    std::vector<stream_sample> streams;
};

// "key:value" lines of INFO.
std::optional<std::string> info_field(const std::string& info, std::string_view key) {
    std::istringstream lines(info);
    std::string line;
    while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
            line[key.size()] == ':')
            return line.substr(key.size() + 1);
    }
    return std::nullopt;
}

template <class T> T info_number(const std::string& info, std::string_view key) {
    const auto text = info_field(info, key);
    if (!text) return T{};
    std::istringstream in(*text);
    T v{};
    in >> v;
    return v;
}

const resp::value* field(const resp::value& map, std::string_view name) {
    for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2)
        if (map.elements[i].str == name) return &map.elements[i + 1];
    return nullptr;
}

std::optional<std::int64_t> integer(const resp::value* v) {
    if (!v || v->is_null() || v->is_aggregate()) return std::nullopt;
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(v->str.data(), v->str.data() + v->str.size(), n);
    if (ec != std::errc() || end != v->str.data() + v->str.size()) return std::nullopt;
    return n;
}

// The group named `group` in an XINFO GROUPS reply, or null.
const resp::value* find_group(const resp::value& groups, const std::string& group) {
    for (const auto& g : groups.elements) {
        const resp::value* name = field(g, "name");
        if (name && name->str == group) return &g;
    }
    return nullptr;
}

asio::awaitable<sample> take_sample(akv::client& cl, const std::vector<std::string>& queues,
                                    const std::vector<stream_spec>& streams) {
    sample s;
    request req;
    req.push("INFO", "stats", "clients", "memory");
    for (const auto& st : streams) {
        req.push("XLEN", st.stream);
        if (!st.group.empty()) req.push("XINFO", "GROUPS", st.stream);
    }
    generic_response resp;
    co_await cl.exec(req, resp);
    s.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    const std::string& info = resp.at(0).value().str;
    s.ops_per_sec = info_number<double>(info, "instantaneous_ops_per_sec");
    s.commands = info_number<std::uint64_t>(info, "total_commands_processed");
    s.clients = info_number<std::int64_t>(info, "connected_clients");
    s.used_memory = info_number<std::uint64_t>(info, "used_memory");
    std::size_t at = 1;
    for (const auto& st : streams) {
        stream_sample ss;
        ss.spec = st;
        ss.length = integer(&resp.at(at++).value()).value_or(0);
        if (!st.group.empty()) {
            // A stream deleted since the start answers with an error: no group any more.
            const auto& groups = resp.at(at++);
            const resp::value* g =
                groups.has_value() ? find_group(groups.value(), st.group) : nullptr;
            if (g) {
                ss.pending = integer(field(*g, "pending"));
                ss.lag = integer(field(*g, "lag"));
            } else {
                ss.group_gone = true;
            }
        }
        s.streams.push_back(std::move(ss));
    }
    for (const auto& q : queues) {
        akv::queue::admin admin(cl, q);
        const akv::queue::state_counts counts = co_await admin.counts();
        s.queues.push_back(queue_sample{q, counts});
    }
    co_return s;
}

// ---- printing ----

std::string cell(const std::optional<std::int64_t>& n) {
    return n ? std::to_string(*n) : "-";
}
json::value json_of(const std::optional<std::int64_t>& n) {
    if (n) return *n;
    return nullptr;
}

std::string ops_text(double ops) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", ops);
    return buf;
}

std::string stream_label(const stream_spec& s) {
    return s.group.empty() ? s.stream : s.stream + ":" + s.group;
}

std::string sample_line(const sample& s) {
    std::string line = utc(s.time_ms) + " ops/s=" + ops_text(s.ops_per_sec) +
                       " clients=" + std::to_string(s.clients) +
                       " memory=" + std::to_string(s.used_memory);
    for (const auto& q : s.queues) {
        const auto& c = q.counts;
        line += " | queue " + q.name + ": waiting=" + std::to_string(c.waiting) +
                " delayed=" + std::to_string(c.delayed) + " active=" + std::to_string(c.active) +
                " failed=" + std::to_string(c.failed) +
                " completed=" + std::to_string(c.completed) + (c.paused ? " paused" : "");
    }
    for (const auto& st : s.streams) {
        line += " | stream " + stream_label(st.spec) + ": length=" + std::to_string(st.length);
        if (st.group_gone)
            line += " (group gone)";
        else if (!st.spec.group.empty())
            line += " pending=" + cell(st.pending) + " lag=" + cell(st.lag);
    }
    return line + "\n";
}

json::object sample_json(const sample& s) {
    json::object server;
    server["ops_per_sec"] = std::llround(s.ops_per_sec);
    server["connected_clients"] = s.clients;
    server["used_memory"] = s.used_memory;
    json::array queues;
    for (const auto& q : s.queues) {
        const auto& c = q.counts;
        json::object j;
        j["queue"] = q.name;
        j["waiting"] = c.waiting;
        j["delayed"] = c.delayed;
        j["active"] = c.active;
        j["failed"] = c.failed;
        j["completed"] = c.completed;
        j["paused"] = c.paused;
        queues.push_back(std::move(j));
    }
    json::array streams;
    for (const auto& st : s.streams) {
        json::object j;
        j["stream"] = st.spec.stream;
        j["length"] = st.length;
        if (!st.spec.group.empty()) {
            j["group"] = st.spec.group;
            j["group_exists"] = !st.group_gone;
            j["pending"] = json_of(st.pending);
            j["lag"] = json_of(st.lag);
        }
        streams.push_back(std::move(j));
    }
    json::object j;
    j["time_ms"] = s.time_ms;
    j["server"] = std::move(server);
    j["queues"] = std::move(queues);
    j["streams"] = std::move(streams);
    return j;
}

std::string sample_screen(const sample& s, const settings& set, std::uint64_t n) {
    std::string out = "akv monitor  every " + std::to_string(set.interval.count()) +
                      " ms  sample " + std::to_string(n) + "  " + utc(s.time_ms) +
                      "  (Ctrl-C ends)\n\n";
    std::vector<std::vector<std::string>> server{
        {"", "OPS/S", "CLIENTS", "MEMORY"},
        {"server", ops_text(s.ops_per_sec), std::to_string(s.clients), human_bytes(s.used_memory)},
    };
    out += table(server, true);
    if (!s.queues.empty()) {
        std::vector<std::vector<std::string>> rows{
            {"QUEUE", "WAITING", "DELAYED", "ACTIVE", "FAILED", "COMPLETED", "PAUSED"}};
        for (const auto& q : s.queues) {
            const auto& c = q.counts;
            rows.push_back({q.name, std::to_string(c.waiting), std::to_string(c.delayed),
                            std::to_string(c.active), std::to_string(c.failed),
                            std::to_string(c.completed), c.paused ? "yes" : "no"});
        }
        out += "\n" + table(rows, true);
    }
    if (!s.streams.empty()) {
        std::vector<std::vector<std::string>> rows{{"STREAM", "GROUP", "LENGTH", "PENDING", "LAG"}};
        for (const auto& st : s.streams)
            rows.push_back({st.spec.stream, st.spec.group.empty() ? "-" : st.spec.group,
                            std::to_string(st.length), st.group_gone ? "(gone)" : cell(st.pending),
                            st.group_gone ? "-" : cell(st.lag)});
        out += "\n" + table(rows, true);
    }
    return out;
}

// ---- the loop ----

// Checks that the queues exist and resolves --stream arguments to a stream and a group that
// exist (refusing the first that does not).
asio::awaitable<std::vector<stream_spec>> resolve(akv::client& cl, const settings& set) {
    for (const auto& q : set.queues) {
        akv::queue::admin admin(cl, q);
        const bool exists = co_await admin.exists();
        if (!exists) throw refused("queue " + in_quotes(q) + ": no such queue");
    }
    std::vector<stream_spec> streams;
    for (const auto& arg : set.stream_args) {
        // Whole argument first (a stream name may hold ':'), then split at the last ':'.
        const auto colon = arg.rfind(':');
        request req;
        req.push("TYPE", arg);
        if (colon != std::string::npos) req.push("TYPE", arg.substr(0, colon));
        response<std::string, std::string> types;
        if (colon == std::string::npos) {
            response<std::string> one;
            co_await cl.exec(req, one);
            std::get<0>(types) = std::get<0>(one);
        } else {
            co_await cl.exec(req, types);
        }
        stream_spec spec;
        std::string type = std::get<0>(types).value();
        if (type == "stream" || colon == std::string::npos) {
            spec.stream = arg;
        } else {
            spec.stream = arg.substr(0, colon);
            spec.group = arg.substr(colon + 1);
            type = std::get<1>(types).value();
        }
        if (type == "none") throw refused("stream " + in_quotes(spec.stream) + ": no such stream");
        if (type != "stream")
            throw refused("stream " + in_quotes(spec.stream) + ": the key holds a " + type +
                          ", not a stream");
        if (!spec.group.empty()) {
            request groups_req;
            groups_req.push("XINFO", "GROUPS", spec.stream);
            generic_response groups;
            co_await cl.exec(groups_req, groups);
            if (!find_group(groups.at(0).value(), spec.group))
                throw refused("stream " + in_quotes(spec.stream) + ": no consumer group " +
                              in_quotes(spec.group));
        }
        streams.push_back(std::move(spec));
    }
    co_return streams;
}

asio::awaitable<int> monitor(akv::client& cl, const settings& set) {
    const auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex);
    // From the start: Ctrl-C while the queues and streams are checked also ends with 0.
    asio::signal_set signals(ex, SIGINT);
    bool stopped = false;
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return; // cancelled: this frame may be gone
        stopped = true;
        timer.cancel();
        cl.cancel(); // a request in flight fails at once
    });
    std::vector<stream_spec> streams;
    try {
        streams = co_await resolve(cl, set);
    } catch (const std::exception&) {
        if (!stopped) throw;
    }
    if (stopped) co_return exit_done;
    const bool screen = !set.json && isatty(STDOUT_FILENO) == 1;

    std::optional<sample> previous;
    auto previous_at = std::chrono::steady_clock::now();
    for (std::uint64_t n = 1; set.count == 0 || n <= set.count; ++n) {
        if (n > 1) {
            timer.expires_after(set.interval);
            co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        if (stopped) break;
        std::optional<sample> s;
        try {
            s = co_await take_sample(cl, set.queues, streams);
        } catch (const std::exception&) {
            if (!stopped) throw;
        }
        if (stopped) break;
        const auto now = std::chrono::steady_clock::now();
        if (previous && s->commands >= previous->commands) {
            const double seconds = std::chrono::duration<double>(now - previous_at).count();
            if (seconds > 0)
                s->ops_per_sec = static_cast<double>(s->commands - previous->commands) / seconds;
        }
        previous = s;
        previous_at = now;
        if (set.json) {
            print_json(sample_json(*s));
        } else if (screen) {
            std::cout << "\x1b[H\x1b[2J" << sample_screen(*s, set, n);
        } else {
            std::cout << sample_line(*s);
        }
        std::cout.flush();
    }
    signals.cancel();
    co_return exit_done;
}

} // namespace

int run_monitor_command(const akv::config& cfg, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << monitor_usage;
        return exit_done;
    }
    settings set;
    try {
        std::vector<std::string> with_word{""};
        with_word.insert(with_word.end(), args.begin(), args.end());
        set = settings_of(parse_args("monitor", subcommands(), with_word));
    } catch (const boost::system::system_error& e) {
        std::cerr << "akv: " << describe(e) << "\n(akv monitor --help lists the options)\n";
        return exit_usage;
    } catch (const std::exception& e) {
        std::cerr << "akv: " << e.what() << "\n(akv monitor --help lists the options)\n";
        return exit_usage;
    }
    return run_on_client(
        cfg, [&](akv::client& cl) -> asio::awaitable<int> { co_return co_await monitor(cl, set); });
}

} // namespace akv::cli
