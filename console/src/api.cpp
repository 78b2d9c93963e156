#include <akv/console/api.hpp>
#include <akv/console/sampler.hpp>

#include <akv/detail/settled.hpp>

#include <akv/error.hpp>
#include <akv/gateway/publish.hpp>
#include <akv/gateway/token.hpp>
#include <akv/messaging/batcher.hpp>
#include <akv/messaging/dead_letter.hpp>
#include <akv/queue/admin.hpp>

#include "console_web.hpp"
#include "nodes.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/url/parse_query.hpp>

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <memory>
#include <set>

namespace akv::console {

namespace {

namespace json = boost::json;
using gateway::http_reply;
using gateway::http_request;
using namespace asio::experimental::awaitable_operators;

enum class role { none, read, write };

// A reply that is not the happy path: thrown, turned into JSON by handle().
struct refusal {
    unsigned status;
    std::string message;
};

[[noreturn]] void refuse(unsigned status, std::string message) {
    throw refusal{status, std::move(message)};
}

http_reply json_reply(const json::value& v, unsigned status = 200) {
    http_reply r;
    r.status = status;
    r.body = json::serialize(v);
    return r;
}

std::string header(const http_request& req, const std::string& name) {
    const auto it = req.headers.find(name);
    return it == req.headers.end() ? std::string() : it->second;
}

bool same_text(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string base64_decode(std::string_view in) {
    static const std::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=') break;
        const auto v = alphabet.find(c);
        if (v == std::string_view::npos) return {};
        buffer = (buffer << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buffer >> bits) & 0xff);
        }
    }
    return out;
}

// An Origin header names the Host the request went to (scheme, case and default port aside).
bool same_origin(std::string_view origin, std::string_view host) {
    const auto lower = [](std::string_view t) {
        std::string out(t);
        for (char& c : out)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return out;
    };
    std::string o = lower(origin), h = lower(host);
    std::string_view default_port;
    if (o.starts_with("http://")) {
        o.erase(0, 7);
        default_port = ":80";
    } else if (o.starts_with("https://")) {
        o.erase(0, 8);
        default_port = ":443";
    } else {
        return false;
    }
    if (o.ends_with(default_port)) o.resize(o.size() - default_port.size());
    if (h.ends_with(default_port)) h.resize(h.size() - default_port.size());
    return !o.empty() && o == h;
}

// Who asks, and what they may do.
// `why`: what was wrong with a bearer token, for the 401's message.
role role_of(const http_request& req, const options& o, std::string& who, std::string& why) {
    const std::string auth = header(req, "authorization");
    if (auth.starts_with("Bearer ") && !o.token_secret.empty()) {
        try {
            const auto claims = gateway::verify_token(auth.substr(7), o.token_secret,
                                                      std::chrono::system_clock::now());
            who = claims.subject;
            if (claims.admin == "write") return role::write;
            if (claims.admin == "read") return role::read;
            why = "the bearer token has no \"admin\" claim";
        } catch (const boost::system::system_error& e) {
            why = std::string("the bearer token is not valid: ") + e.what();
        }
        return role::none;
    }
    if (auth.starts_with("Basic ") && !o.password.empty()) {
        const std::string user_password = base64_decode(auth.substr(6));
        const auto colon = user_password.find(':');
        if (colon != std::string::npos && same_text(user_password.substr(colon + 1), o.password)) {
            // The user name is not checked (there is one password): the trail says so.
            who = "password:" + user_password.substr(0, colon);
            return role::write;
        }
    }
    return role::none;
}

// The path's segments, each percent-decoded (so "%2F" stays inside its segment).
std::vector<std::string> segments(std::string_view path) {
    std::vector<std::string> out;
    while (!path.empty()) {
        const auto slash = path.find('/');
        const std::string_view part = path.substr(0, slash);
        if (!part.empty()) {
            auto decoded = boost::urls::make_pct_string_view(part);
            if (!decoded) refuse(400, "a bad %-escape in the path: " + std::string(part));
            out.push_back(decoded->decode());
        }
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return out;
}

std::map<std::string, std::string> query_of(const std::string& query) {
    std::map<std::string, std::string> out;
    if (query.empty()) return out;
    auto params = boost::urls::parse_query(query);
    if (!params) refuse(400, "the query string does not parse: " + params.error().message());
    for (auto p : *params)
        out[p.key.decode()] = p.has_value ? p.value.decode() : std::string();
    return out;
}

std::size_t whole_number(const std::map<std::string, std::string>& q, const std::string& name,
                         std::size_t fallback, std::size_t max) {
    const auto it = q.find(name);
    if (it == q.end()) return fallback;
    std::size_t v = 0;
    const auto [end, ec] =
        std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
    if (ec != std::errc() || end != it->second.data() + it->second.size() || v > max)
        refuse(400, name + " must be a whole number from 0 to " + std::to_string(max) + ", got \"" +
                        it->second + "\"");
    return v;
}

queue::job_state state_of(const std::string& s) {
    using queue::job_state;
    for (auto st : {job_state::waiting, job_state::delayed, job_state::active, job_state::failed,
                    job_state::completed})
        if (queue::to_string(st) == s) return st;
    refuse(400, "state must be waiting, delayed, active, failed or completed, got \"" + s + "\"");
}

json::object counts_json(const std::string& name, const queue::state_counts& c) {
    json::object o;
    o["name"] = name;
    o["waiting"] = c.waiting;
    o["delayed"] = c.delayed;
    o["active"] = c.active;
    o["failed"] = c.failed;
    o["completed"] = c.completed;
    o["paused"] = c.paused;
    o["total_completed"] = c.total_completed;
    o["total_failed"] = c.total_failed;
    o["total_retried"] = c.total_retried;
    o["total_recovered"] = c.total_recovered;
    o["total_cancelled"] = c.total_cancelled;
    o["total_throttled"] = c.total_throttled;
    o["total_debounced"] = c.total_debounced;
    o["workers"] = c.workers;
    o["waiting_children"] = c.waiting_children; // parents of flows
    o["groups"] = c.groups;                     // fair groups with ready or running jobs
    return o;
}

// One minute of a queue's metrics; latency percentiles in ms, 0 for a minute without any.
json::object minute_json(const queue::minute_metrics& m) {
    return json::object{{"minute", m.minute}, {"processed", m.processed}, {"failed", m.failed},
                        {"p50_ms", m.p50_ms}, {"p90_ms", m.p90_ms},       {"p99_ms", m.p99_ms}};
}

// The figures of the queue's list: this minute's so far once it has any, else the last one's
// (a minute just begun has none yet). `minutes`: admin::metrics(2), oldest first.
json::object last_minute_json(const std::vector<queue::minute_metrics>& minutes) {
    if (minutes.empty()) return {};
    const auto& now = minutes.back();
    const bool any = now.processed > 0 || now.failed > 0;
    return minute_json(any || minutes.size() < 2 ? now : minutes[minutes.size() - 2]);
}

json::object worker_json(const queue::worker_info& w) {
    return json::object{{"token", w.token},
                        {"host", w.host},
                        {"pid", w.pid},
                        {"concurrency", w.concurrency},
                        {"running", w.running},
                        {"completed", w.completed},
                        {"failed", w.failed},
                        {"started_ms", w.started_ms},
                        {"last_seen_ms", w.last_seen_ms},
                        {"heartbeat_ms", w.heartbeat.count()},
                        {"stopping", w.stopping}};
}

json::object job_json(const queue::job_info& j) {
    json::object o;
    o["id"] = j.id;
    o["state"] = queue::to_string(j.state);
    o["failures"] = j.failures;
    o["last_error"] = j.last_error;
    if (j.job) {
        o["payload"] = j.job->payload;
        // The run it is on or will make next; for a failed job, the last one it made.
        o["attempt"] = j.state == queue::job_state::failed ? j.failures : j.job->attempt;
        o["group"] = j.job->options.group;
        o["enqueued_ms"] = j.job->enqueued_ms;
        o["priority"] = j.job->options.priority;
        o["max_attempts"] = j.job->options.max_attempts;
    }
    o["progress"] = j.progress;
    if (j.result) {
        json::object r;
        r["ok"] = j.result->ok();
        r["value"] = j.result->value;
        o["result"] = std::move(r);
    }
    return o;
}

struct state {
    state(client& r, options o)
        : redis(r)
        , opts(std::move(o))
        , nodes(r, opts.node_timeout) {}
    client& redis;
    options opts;
    detail::node_links nodes; // a cluster's masters and replicas, a master's replicas
};

// One server's keys that a SCAN filter lets through, into `keys`; `exec` runs a request there.
template <class Exec>
asio::awaitable<void> scan_into(std::set<std::string>& keys, std::string_view filter,
                                std::string_view value, Exec exec) {
    std::string cursor = "0";
    do {
        request req({.idempotent = true});
        req.push("SCAN", cursor, filter, value, "COUNT", 1000);
        response<std::pair<std::string, std::vector<std::string>>> resp;
        co_await exec(req, resp);
        auto& [next, page] = std::get<0>(resp).value();
        keys.insert(page.begin(), page.end());
        cursor = next;
    } while (cursor != "0");
}

asio::awaitable<void> scan_master(detail::node_links& nodes, const endpoint& master,
                                  std::string_view filter, std::string_view value,
                                  std::set<std::string>& keys) {
    co_await scan_into(keys, filter, value, [&](const request& req, auto& resp) {
        return nodes.exec(master, req, resp);
    });
}

// The keys a SCAN filter ("MATCH" a pattern, or "TYPE" a name) lets through, each once: the
// one server's, or on a cluster every master's (a SCAN each, all at once, on connections of
// their own: the client's router sends a keyless command to one node only).
asio::awaitable<std::set<std::string>> scan_keys(client& redis, detail::node_links& nodes,
                                                 std::string_view filter, std::string_view value) {
    std::set<std::string> keys;
    if (redis.get_config().topology != config::mode::cluster) {
        co_await scan_into(keys, filter, value,
                           [&](const request& req, auto& resp) { return redis.exec(req, resp); });
        co_return keys;
    }
    std::vector<endpoint> masters = redis.masters();
    if (masters.empty()) {
        // Not known before the client has read the slot map: a request waits until it has.
        request ping;
        ping.push("PING");
        co_await redis.exec(ping, akv::ignore);
        masters = redis.masters();
    }
    // Each its own set: the SCANs run at once.
    std::vector<std::set<std::string>> found(masters.size());
    std::vector<asio::awaitable<void>> scans;
    for (std::size_t i = 0; i < masters.size(); ++i)
        scans.push_back(scan_master(nodes, masters[i], filter, value, found[i]));
    try {
        co_await detail::all_of(std::move(scans));
    } catch (const boost::system::system_error& e) {
        refuse(503, std::string("a master of the cluster did not answer a SCAN: ") + e.what());
    }
    for (auto& f : found)
        keys.merge(f); // a key in two (a slot migrating) is listed once
    co_return keys;
}

// Queue names from their keys: every queue that ever had a job has "akvq:{NAME}:id".
asio::awaitable<std::vector<std::string>> discover(client& redis, detail::node_links& nodes) {
    const std::set<std::string> keys = co_await scan_keys(redis, nodes, "MATCH", "akvq:{*}:id");
    std::set<std::string> names;
    for (const auto& k : keys) {
        const auto open = k.find('{'), close = k.rfind('}');
        if (open != std::string::npos && close != std::string::npos && close > open)
            names.insert(k.substr(open + 1, close - open - 1));
    }
    co_return std::vector<std::string>(names.begin(), names.end());
}

asio::awaitable<void> audit(state& s, const std::string& who, const std::string& action,
                            const std::string& queue_name, const std::string& id) {
    request req;
    req.push("XADD", s.opts.audit_stream, "MAXLEN", "~", s.opts.audit_maxlen, "*", "who", who,
             "action", action, "queue", queue_name, "id", id);
    co_await s.redis.exec(req, akv::ignore);
}

// Keys of a type ("stream"), by SCAN.
asio::awaitable<std::vector<std::string>> keys_of_type(client& redis, detail::node_links& nodes,
                                                       std::string_view type) {
    const std::set<std::string> keys = co_await scan_keys(redis, nodes, "TYPE", type);
    co_return std::vector<std::string>(keys.begin(), keys.end());
}

// The streams to list: a queue's own streams, its event journal (akvq:{q}:journal) and the
// outbox of its flows' notices (akvq:{q}:outbox), belong to its queue's view, and listing a
// hundred queues' would cost the sampler a hundred XINFOs each.
asio::awaitable<std::vector<std::string>> streams_to_list(client& redis,
                                                          detail::node_links& nodes) {
    std::vector<std::string> names = co_await keys_of_type(redis, nodes, "stream");
    std::erase_if(names, [](const std::string& n) {
        return n.starts_with("akvq:{") && (n.ends_with("}:journal") || n.ends_with("}:outbox"));
    });
    co_return names;
}

// A RESP map or flat array of name, value pairs as a JSON object (numbers stay numbers).
json::object pairs_of(const resp::value& v) {
    json::object o;
    const auto& e = v.elements;
    for (std::size_t i = 0; i + 1 < e.size(); i += 2) {
        const resp::value& x = e[i + 1];
        if (x.data_type == resp::type::number)
            o[e[i].str] = std::stoll(x.str);
        else if (!x.is_aggregate() && !x.is_null())
            o[e[i].str] = x.str;
    }
    return o;
}

// Each group's consumers with what each has pending and how long it has been idle (XINFO
// CONSUMERS: name, pending, idle ms), as "per_consumer"; all the groups' in one round trip.
asio::awaitable<void> add_consumers(client& redis, const std::string& stream, json::array& groups) {
    if (groups.empty()) co_return;
    request req({.idempotent = true});
    for (const auto& g : groups)
        req.push("XINFO", "CONSUMERS", stream, json::value_to<std::string>(g.at("name")));
    generic_response resp;
    co_await redis.exec(req, resp);
    for (std::size_t i = 0; i < groups.size(); ++i) {
        json::array consumers;
        if (i < resp.size() && resp[i].has_value()) // else the group went since XINFO GROUPS
            for (const auto& c : resp[i].value().elements)
                consumers.push_back(pairs_of(c));
        groups[i].as_object()["per_consumer"] = std::move(consumers);
    }
}

// Marks each dead-letter stream with the stream it holds the dead letters of, when that is
// listed too ("dead_letter_of"; messaging::dead_letter_sources: by the name).
void mark_dead_letters(json::array& streams, bool cluster) {
    std::set<std::string> names;
    for (const auto& st : streams)
        names.insert(json::value_to<std::string>(st.at("name")));
    for (auto& st : streams) {
        json::object& o = st.as_object();
        const auto sources =
            messaging::dead_letter_sources(json::value_to<std::string>(o.at("name")), cluster);
        for (const auto& source : sources)
            if (names.count(source)) {
                o["dead_letter_of"] = source;
                break;
            }
    }
}

// Each stream: its length and its groups (consumers, pending, lag, last delivered id).
asio::awaitable<json::array> streams_json(client& redis, const std::vector<std::string>& names) {
    json::array out;
    for (const auto& name : names) {
        request req({.idempotent = true});
        req.push("XLEN", name);
        req.push("XINFO", "GROUPS", name);
        response<long long, resp::value> resp;
        co_await redis.exec(req, resp);
        json::array groups;
        if (std::get<0>(resp).has_error() || std::get<1>(resp).has_error())
            continue; // deleted since it was found
        for (const auto& g : std::get<1>(resp).value().elements)
            groups.push_back(pairs_of(g));
        co_await add_consumers(redis, name, groups);
        out.push_back(json::object{
            {"name", name}, {"length", std::get<0>(resp).value()}, {"groups", std::move(groups)}});
    }
    mark_dead_letters(out, redis.get_config().topology == config::mode::cluster);
    co_return out;
}

// The server behind the client: INFO's figures an operator looks at first, and its slow log;
// and every node of the deployment ("nodes", see nodes.hpp), slow logs read again only when
// `read_slowlogs`.
asio::awaitable<json::object> redis_json(client& redis, detail::node_links& nodes,
                                         bool read_slowlogs) {
    const detail::node_reading server = co_await detail::read_server(redis);
    json::object info, keyspace;
    static const std::set<std::string_view> wanted{"redis_version",
                                                   "role",
                                                   "connected_clients",
                                                   "used_memory",
                                                   "used_memory_human",
                                                   "maxmemory",
                                                   "instantaneous_ops_per_sec",
                                                   "total_commands_processed",
                                                   "connected_slaves",
                                                   "master_link_status",
                                                   "uptime_in_seconds",
                                                   "evicted_keys",
                                                   "expired_keys"};
    for (const auto& [key, value] : detail::info_fields(server.info)) {
        if (key.starts_with("db") && key.size() > 2 &&
            std::isdigit(static_cast<unsigned char>(key[2])))
            keyspace[key] = value;
        else if (wanted.count(key))
            info[key] = value;
    }
    json::array every_node = co_await detail::nodes_json(redis, nodes, server, read_slowlogs);
    const endpoint e = redis.remote_endpoint();
    co_return json::object{{"endpoint", e.host + ":" + std::to_string(e.port)},
                           {"info", std::move(info)},
                           {"keyspace", std::move(keyspace)},
                           {"slowlog", detail::slowlog_json(*server.slowlog)},
                           {"nodes", std::move(every_node)}};
}

json::object gateway_json(const gateway::stats& g) {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    return json::object{{"sessions", g.sessions},
                        {"channels", g.channels},
                        {"sessions_total", g.sessions_total},
                        {"refused_total", g.refused_total},
                        {"messages_in", g.messages_in},
                        {"messages_out", g.messages_out},
                        {"frames_out", g.frames_out},
                        {"dropped", g.dropped},
                        {"slow_disconnects", g.slow_disconnects},
                        {"published", g.published},
                        {"webhooks", g.webhooks},
                        {"redis_latency_ms", g.redis_latency_ms},
                        {"at_ms", now_ms}};
}

// The gateway's busiest channels. The console's own (its live snapshots) are marked: they count
// the open consoles, not the application's subscribers.
json::array channels_json(const std::vector<gateway::channel_count>& channels) {
    json::array out;
    for (const auto& c : channels) {
        json::object o{{"name", c.name}, {"subscribers", c.subscribers}};
        if (c.present) o["presence"] = *c.present;
        if (c.name.starts_with(gateway::console_channel_prefix)) o["console"] = true;
        out.push_back(std::move(o));
    }
    return out;
}

// Every queue's counts and last minutes, asked all at once (each queue's minutes beside its
// counts, not after them): the client pipelines them into a few writes, so Redis reads and
// answers them in a few system calls instead of one per queue.
// `with_minutes` false: no "last_minute" (a sampler reads those less often than the counts).
asio::awaitable<json::array> queues_json(client& redis, const std::vector<std::string>& names,
                                         bool with_minutes = true) {
    std::vector<queue::state_counts> counts(names.size());
    std::vector<std::vector<queue::minute_metrics>> minutes(names.size());
    std::vector<asio::awaitable<void>> tasks;
    for (std::size_t i = 0; i < names.size(); ++i) {
        tasks.push_back([](client& redis, queue::state_counts& out,
                           const std::string& name) -> asio::awaitable<void> {
            queue::admin a(redis, name);
            out = co_await a.counts();
        }(redis, counts[i], names[i]));
        if (!with_minutes) continue;
        tasks.push_back([](client& redis, std::vector<queue::minute_metrics>& out,
                           const std::string& name) -> asio::awaitable<void> {
            queue::admin a(redis, name);
            out = co_await a.metrics(2);
        }(redis, minutes[i], names[i]));
    }
    co_await detail::all_of(std::move(tasks));
    json::array queues;
    for (std::size_t i = 0; i < names.size(); ++i) {
        json::object q = counts_json(names[i], counts[i]);
        if (with_minutes) q["last_minute"] = last_minute_json(minutes[i]);
        queues.push_back(std::move(q));
    }
    co_return queues;
}

asio::awaitable<json::array> queues_json(client& redis, detail::node_links& nodes) {
    const std::vector<std::string> names = co_await discover(redis, nodes);
    co_return co_await queues_json(redis, names);
}

std::string text_at(const json::object& o, std::string_view key, bool required) {
    const json::value* v = o.if_contains(key);
    if (!v) {
        if (required) refuse(400, "the action needs \"" + std::string(key) + "\"");
        return {};
    }
    if (!v->is_string()) refuse(400, "\"" + std::string(key) + "\" must be a string");
    return std::string(v->get_string());
}

std::uint64_t count_at(const json::object& o, std::string_view key) {
    const json::value* v = o.if_contains(key);
    if (!v || !v->is_int64() || v->get_int64() < 0)
        refuse(400, "\"" + std::string(key) + "\" must be a whole number >= 0");
    return static_cast<std::uint64_t>(v->get_int64());
}

// What every action must pass before it is read: the console's header (which a cross-site
// form cannot send), its own origin, a login that may act. The body, a JSON object.
json::object action_body(const http_request& req, role r) {
    if (header(req, "x-akv-console").empty())
        refuse(403, "an action needs the X-Akv-Console header (the console's page sends it; "
                    "another site's form cannot)");
    if (const std::string origin = header(req, "origin"); !origin.empty()) {
        const std::string host = header(req, "host");
        if (!same_origin(origin, host))
            refuse(403, "an action from origin " + origin + ", not the console's (" + host + ")");
    }
    if (r != role::write) refuse(403, "this login may read, not act (\"admin\": \"read\")");
    boost::system::error_code ec;
    json::value body = json::parse(req.body, ec);
    if (ec || !body.is_object()) refuse(400, "the action must be a JSON object");
    return std::move(body.as_object());
}

// An action from the console's page: not from another site's form, by whom may act, recorded.
asio::awaitable<http_reply> act(state& s, const http_request& req, role r, const std::string& who,
                                const std::string& queue_name) {
    const json::object o = action_body(req, r);
    const std::string action = text_at(o, "action", true);
    static const std::set<std::string> actions{"retry",  "remove",     "cancel",      "pause",
                                               "resume", "rate_limit", "retry_failed"};
    if (!actions.count(action))
        refuse(400, "unknown action \"" + action +
                        "\" (retry, remove, cancel, pause, resume, rate_limit, retry_failed)");
    const bool on_a_job = action == "retry" || action == "remove" || action == "cancel";
    const std::string id = on_a_job ? text_at(o, "id", true) : std::string();
    queue::admin a(s.redis, queue_name);
    co_await a.require_exists();
    // Recorded before it runs: an action that fails halfway is in the trail too.
    co_await audit(s, who, action, queue_name, id);
    json::object out;
    if (on_a_job) {
        if (action == "retry") {
            co_await a.retry(id);
        } else if (action == "remove") {
            co_await a.remove(id);
        } else {
            std::string reason = text_at(o, "reason", false);
            if (reason.empty()) reason = "cancelled from the console by " + who;
            const auto outcome = co_await a.cancel(id, reason);
            static constexpr const char* names[] = {"cancelled", "running", "finished", "unknown"};
            out["outcome"] = names[static_cast<int>(outcome)];
            if (outcome == queue::cancel_outcome::unknown) refuse(404, "no job \"" + id + "\"");
        }
    } else if (action == "pause") {
        co_await a.pause();
    } else if (action == "resume") {
        co_await a.resume();
    } else if (action == "rate_limit") {
        const std::uint64_t max_jobs = count_at(o, "max_jobs");
        const std::uint64_t window = count_at(o, "window_ms");
        if (max_jobs > 0 && window == 0) refuse(400, "\"window_ms\" must be > 0 with a limit");
        co_await a.set_rate_limit(max_jobs, std::chrono::milliseconds(window));
    } else if (action == "retry_failed") {
        // The failed jobs of this moment, each once: a job failing again at once is not
        // retried again, and one whose record went meanwhile is skipped.
        const auto ids = co_await a.list(queue::job_state::failed, 0, 100000);
        std::size_t retried = 0, skipped = 0;
        for (const auto& failed : ids) {
            bool done = true;
            try {
                co_await a.retry(failed);
            } catch (const boost::system::system_error& e) {
                if (e.code() != error::unknown_job && e.code() != error::invalid_config) throw;
                done = false;
            }
            ++(done ? retried : skipped);
        }
        out["retried"] = retried;
        out["skipped"] = skipped;
    }
    out["ok"] = true;
    out["action"] = action;
    co_return json_reply(out);
}

// ---- streams: one stream's entries, dead-letter actions, batchers

// The bytes of the UTF-8 sequence a byte starts; 0: it starts none.
std::size_t utf8_length(unsigned char first) {
    if (first < 0x80) return 1;
    if ((first >> 5) == 0x6) return 2;
    if ((first >> 4) == 0xe) return 3;
    if ((first >> 3) == 0x1e) return 4;
    return 0;
}

// A field value for the page: text as it is (the first 1024 bytes of a long one), bytes that
// are not UTF-8 (a tensor, say) only counted.
json::object field_json(const std::string& name, const std::string& value) {
    json::object o{{"name", name}};
    std::size_t at = 0, shown = 0;
    while (at < value.size()) {
        const std::size_t n = utf8_length(static_cast<unsigned char>(value[at]));
        bool whole = n != 0 && at + n <= value.size();
        for (std::size_t i = 1; whole && i < n; ++i)
            whole = (static_cast<unsigned char>(value[at + i]) >> 6) == 2; // 10xxxxxx
        if (!whole) {
            o["bytes"] = value.size();
            return o;
        }
        at += n;
        if (at <= 1024) shown = at;
    }
    o["value"] = value.substr(0, shown);
    if (shown < value.size()) o["bytes"] = value.size();
    return o;
}

json::array fields_json(const messaging::field_list& fields) {
    json::array out;
    for (const auto& [name, value] : fields)
        out.push_back(field_json(name, value));
    return out;
}

// An entry id as given in a query ("MS-SEQ" or "MS"), else 400.
const std::string& entry_id_at(const std::map<std::string, std::string>& q,
                               const std::string& name) {
    const std::string& id = q.at(name);
    const auto dash = id.find('-');
    auto digits = [](std::string_view t) {
        return !t.empty() && std::all_of(t.begin(), t.end(),
                                         [](unsigned char c) { return std::isdigit(c) != 0; });
    };
    if (!digits(id.substr(0, dash)) || (dash != std::string::npos && !digits(id.substr(dash + 1))))
        refuse(400, name + " must be an entry id (MILLISECONDS-SEQUENCE), got \"" + id + "\"");
    return id;
}

// A page of a stream's entries, newest first: `limit` of them after skipping `offset`, older
// than `before` and newer than `after` (ids, both left out of the page). A dead-letter stream's
// entries show where they came from and why ("dead") apart from their own fields.
asio::awaitable<json::object> entries_json(state& s, const std::string& stream,
                                           const std::map<std::string, std::string>& q) {
    const std::size_t limit = whole_number(q, "limit", 50, s.opts.max_page);
    if (limit == 0) refuse(400, "limit must be from 1 to " + std::to_string(s.opts.max_page));
    // XREVRANGE reads the skipped entries too: deeper pages go by before=ID.
    const std::size_t offset = whole_number(q, "offset", 0, 10000);
    const std::string newest = q.count("before") ? "(" + entry_id_at(q, "before") : "+";
    const std::string oldest = q.count("after") ? "(" + entry_id_at(q, "after") : "-";
    const bool cluster = s.redis.get_config().topology == config::mode::cluster;
    const std::vector<std::string> sources = messaging::dead_letter_sources(stream, cluster);
    request req({.idempotent = true});
    req.push("TYPE", stream);
    req.push("XLEN", stream);
    req.push("XREVRANGE", stream, newest, oldest, "COUNT", offset + limit);
    for (const auto& source : sources)
        req.push("TYPE", source);
    generic_response resp;
    co_await s.redis.exec(req, resp);
    const std::string type = resp.at(0).value().str;
    if (type == "none") refuse(404, "no stream \"" + stream + "\"");
    if (type != "stream") refuse(400, "\"" + stream + "\" holds a " + type + ", not a stream");
    json::object out{{"stream", stream},
                     {"length", std::stoll(resp.at(1).value().str)},
                     {"offset", offset},
                     {"limit", limit}};
    for (std::size_t i = 0; i < sources.size(); ++i)
        if (resp.at(3 + i).has_value() && resp[3 + i].value().str == "stream") {
            out["dead_letter_of"] = sources[i];
            break;
        }
    std::vector<messaging::stream_entry> entries =
        messaging::entries_from(std::move(resp.at(2).value()));
    json::array page;
    for (std::size_t i = offset; i < entries.size(); ++i) {
        json::object e{{"id", entries[i].id}};
        if (auto dead = messaging::dead_entry_of(entries[i])) {
            e["dead"] = json::object{{"id", dead->source_id},
                                     {"group", dead->group},
                                     {"deliveries", dead->deliveries},
                                     {"reason", dead->reason}};
            e["fields"] = fields_json(dead->fields);
        } else {
            e["fields"] = fields_json(entries[i].fields);
        }
        page.push_back(std::move(e));
    }
    out["entries"] = std::move(page);
    co_return out;
}

asio::awaitable<void> audit_stream(state& s, const std::string& who, const std::string& action,
                                   const std::string& stream, const std::string& id) {
    request req;
    req.push("XADD", s.opts.audit_stream, "MAXLEN", "~", s.opts.audit_maxlen, "*", "who", who,
             "action", action, "stream", stream, "id", id);
    co_await s.redis.exec(req, akv::ignore);
}

// A dead-letter stream's actions: send one entry (or all) back to the source, or delete one.
asio::awaitable<http_reply> stream_act(state& s, const http_request& req, role r,
                                       const std::string& who, const std::string& stream) {
    const json::object o = action_body(req, r);
    const std::string action = text_at(o, "action", true);
    static const std::set<std::string> actions{"requeue", "requeue_all", "remove"};
    if (!actions.count(action))
        refuse(400, "unknown action \"" + action + "\" (requeue, requeue_all, remove)");
    const std::string id = action == "requeue_all" ? std::string() : text_at(o, "id", true);
    request type({.idempotent = true});
    type.push("TYPE", stream);
    response<std::string> type_resp;
    co_await s.redis.exec(type, type_resp);
    if (std::get<0>(type_resp).value() == "none") refuse(404, "no stream \"" + stream + "\"");
    messaging::dead_letters dead(s.redis, stream); // not a dead-letter stream: 400
    json::object out;
    if (action != "remove") out["source"] = co_await dead.source(); // gone: 400, nothing done
    co_await audit_stream(s, who, action, stream, id);
    if (action == "requeue") {
        out["new_id"] = co_await dead.requeue(id);
    } else if (action == "requeue_all") {
        const messaging::requeue_result moved = co_await dead.requeue_all();
        out["requeued"] = moved.requeued;
        out["skipped"] = moved.skipped;
    } else {
        co_await dead.remove(id);
    }
    out["ok"] = true;
    out["action"] = action;
    co_return json_reply(out);
}

// Live batchers by their status records (messaging::batcher_options::status_every).
asio::awaitable<std::vector<std::string>> find_batchers(client& redis, detail::node_links& nodes) {
    const std::set<std::string> keys = co_await scan_keys(
        redis, nodes, "MATCH", std::string(messaging::batcher_status_prefix) + "*");
    co_return std::vector<std::string>(keys.begin(), keys.end());
}

// Each status record, its counters as numbers, and how old it is. Other hashes under the
// prefix (akv-batcher's --stats-key counters) have no "updated_at_ms": left out.
asio::awaitable<json::array> batchers_json(client& redis, const std::vector<std::string>& keys) {
    json::array out;
    if (keys.empty()) co_return out;
    request req({.idempotent = true});
    for (const auto& key : keys)
        req.push("HGETALL", key);
    generic_response resp;
    co_await redis.exec(req, resp);
    static const std::set<std::string_view> text_fields{"stream", "group", "consumer", "output",
                                                        "model"};
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    for (std::size_t i = 0; i < keys.size() && i < resp.size(); ++i) {
        if (!resp[i].has_value()) continue; // not a hash
        const auto& e = resp[i].value().elements;
        json::object b{{"key", keys[i]}};
        for (std::size_t j = 0; j + 1 < e.size(); j += 2) {
            const std::string& name = e[j].str;
            const std::string& value = e[j + 1].str;
            double number = 0;
            const auto [end, ec] =
                std::from_chars(value.data(), value.data() + value.size(), number);
            if (!text_fields.count(name) && ec == std::errc() && end == value.data() + value.size())
                b[name] = number == std::floor(number) && std::abs(number) < 9e15
                              ? json::value(static_cast<std::int64_t>(number))
                              : json::value(number);
            else
                b[name] = value;
        }
        const json::value* updated = b.if_contains("updated_at_ms");
        if (!updated || !updated->is_int64()) continue; // expired meanwhile, or not a record
        b["age_ms"] = now_ms - updated->get_int64();
        out.push_back(std::move(b));
    }
    co_return out;
}

asio::awaitable<http_reply> answer(state& s, const http_request& req) {
    std::string who, why;
    const role r = role_of(req, s.opts, who, why);
    if (r == role::none) {
        if (why.empty())
            why = "log in: a bearer token with an \"admin\" claim, or the console password";
        http_reply reply = json_reply(json::object{{"error", why}}, 401);
        reply.headers.emplace_back("WWW-Authenticate", "Basic realm=\"akv console\"");
        co_return reply;
    }
    const std::vector<std::string> parts = segments(req.path);
    const bool get = req.method == "GET" || req.method == "HEAD";
    // parts[0] == "console": the page itself at /console and /console/.
    if (parts.size() == 1 && get) {
        http_reply page;
        page.content_type = "text/html; charset=utf-8";
        page.body = std::string(web::index_html);
        co_return page;
    }
    if (parts.size() < 3 || parts[1] != "api") refuse(404, "no such console path: " + req.path);
    if (parts[2] == "whoami" && parts.size() == 3) {
        if (!get) refuse(405, "use GET");
        co_return json_reply(
            json::object{{"role", r == role::write ? "write" : "read"}, {"who", who}});
    }
    if (parts[2] == "streams" && parts.size() == 3) {
        if (!get) refuse(405, "use GET");
        const std::vector<std::string> names = co_await streams_to_list(s.redis, s.nodes);
        json::array streams = co_await streams_json(s.redis, names);
        co_return json_reply(json::object{{"streams", std::move(streams)}});
    }
    if (parts[2] == "streams" && parts.size() == 5 && parts[4] == "entries") {
        if (!get) refuse(405, "use GET");
        const auto q = query_of(req.query);
        const json::object page = co_await entries_json(s, parts[3], q);
        co_return json_reply(page);
    }
    if (parts[2] == "streams" && parts.size() == 5 && parts[4] == "actions") {
        if (req.method != "POST") refuse(405, "use POST");
        co_return co_await stream_act(s, req, r, who, parts[3]);
    }
    if (parts[2] == "batchers" && parts.size() == 3) {
        if (!get) refuse(405, "use GET");
        const std::vector<std::string> keys = co_await find_batchers(s.redis, s.nodes);
        json::array batchers = co_await batchers_json(s.redis, keys);
        co_return json_reply(json::object{{"batchers", std::move(batchers)}});
    }
    if (parts[2] == "redis" && parts.size() == 3) {
        if (!get) refuse(405, "use GET");
        const json::object info = co_await redis_json(s.redis, s.nodes, true);
        co_return json_reply(info);
    }
    if (parts[2] == "gateway" && parts.size() == 3) {
        if (!get) refuse(405, "use GET");
        if (!s.opts.gateway_stats) refuse(404, "this console is not served by a gateway");
        json::object figures = gateway_json(s.opts.gateway_stats());
        if (s.opts.gateway_channels) {
            const std::size_t n =
                whole_number(query_of(req.query), "channels", 20, s.opts.max_channels);
            figures["top_channels"] = channels_json(co_await s.opts.gateway_channels(n));
        }
        co_return json_reply(figures);
    }
    if (parts[2] == "live" && parts.size() == 3) {
        if (!get) refuse(405, "use GET");
        if (s.opts.live_channel.empty() || s.opts.token_secret.empty())
            refuse(404, "no live snapshots: the console's gateway runs no sampler");
        // A short token for the page's WebSocket: it may subscribe to the snapshots only.
        gateway::token_claims c;
        c.subject = "console:" + who;
        c.expires = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count() +
                    600;
        c.channels = {s.opts.live_channel};
        c.admin = "read"; // console channels need it (gateway::may_subscribe)
        co_return json_reply(json::object{{"channel", s.opts.live_channel},
                                          {"token", gateway::sign_token(c, s.opts.token_secret)}});
    }
    if (parts[2] != "queues") refuse(404, "no such console path: " + req.path);
    if (parts.size() == 3) {
        if (!get) refuse(405, "use GET");
        json::array queues = co_await queues_json(s.redis, s.nodes);
        co_return json_reply(json::object{{"queues", std::move(queues)}});
    }
    const std::string& name = parts[3];
    queue::admin a(s.redis, name);
    if (parts.size() == 5 && parts[4] == "actions") {
        if (req.method != "POST") refuse(405, "use POST");
        co_return co_await act(s, req, r, who, name);
    }
    if (!get) refuse(405, "use GET");
    co_await a.require_exists();
    if (parts.size() == 4) {
        json::object o = counts_json(name, co_await a.counts());
        json::array minutes;
        for (const auto& m : co_await a.metrics(60))
            minutes.push_back(minute_json(m));
        o["minutes"] = std::move(minutes);
        json::array workers;
        for (const auto& w : co_await a.workers())
            workers.push_back(worker_json(w));
        o["workers"] = std::move(workers);
        co_return json_reply(o);
    }
    if (parts[4] != "jobs" || parts.size() > 6) refuse(404, "no such console path: " + req.path);
    if (parts.size() == 6) {
        const queue::job_info j = co_await a.get(parts[5]);
        if (j.state == queue::job_state::unknown)
            refuse(404, "no job \"" + parts[5] + "\" in queue \"" + name + "\"");
        co_return json_reply(job_json(j));
    }
    const auto q = query_of(req.query);
    const auto state_it = q.find("state");
    if (state_it == q.end()) refuse(400, "state= is required");
    const queue::job_state st = state_of(state_it->second);
    const std::size_t offset = whole_number(q, "offset", 0, std::size_t(1) << 40);
    const std::size_t limit = whole_number(q, "limit", 50, s.opts.max_page);
    if (limit == 0) refuse(400, "limit must be from 1 to " + std::to_string(s.opts.max_page));
    json::array jobs;
    for (const auto& id : co_await a.list(st, offset, limit)) {
        const queue::job_info j = co_await a.get(id);
        if (j.state != queue::job_state::unknown) jobs.push_back(job_json(j));
    }
    co_return json_reply(json::object{{"queue", name},
                                      {"state", state_it->second},
                                      {"offset", offset},
                                      {"limit", limit},
                                      {"jobs", std::move(jobs)}});
}

// Never in another site's frame, never sniffed as another type.
http_reply guarded(http_reply r) {
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Content-Security-Policy",
                           "frame-ancestors 'none'; default-src 'self'; style-src 'self' "
                           "'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
                           "connect-src 'self'");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return r;
}

// The answer, or what it threw: `||` waits for the first to succeed, and an answer that throws
// (a refusal, most often) must not wait for the deadline.
asio::awaitable<http_reply> handle(std::shared_ptr<state> s, http_request req) {
    refusal refused{0, {}};
    try {
        asio::steady_timer deadline(co_await asio::this_coro::executor, s->opts.timeout);
        auto done = co_await (akv::detail::settled(answer(*s, req)) ||
                              deadline.async_wait(asio::use_awaitable));
        if (done.index() == 1)
            throw refusal{503, "Redis did not answer within " +
                                   std::to_string(s->opts.timeout.count()) + " ms" +
                                   (req.method == "POST" ? " (the action may have been done: "
                                                           "look before trying again)"
                                                         : "")};
        co_return guarded(std::move(std::get<0>(done)).get());
    } catch (const refusal& r) {
        refused = r;
    } catch (const boost::system::system_error& e) {
        const auto code = e.code();
        if (code == error::unknown_queue || code == error::unknown_job ||
            code == error::unknown_entry)
            refused = {404, e.what()};
        else if (code == error::not_dead_letter)
            refused = {400, e.what()};
        else if (code == error::invalid_config)
            refused = {400, e.what()};
        else if (code == error::job_active)
            refused = {409, e.what()};
        else // Redis away, a timeout, a server error: try again later
            refused = {503, std::string("Redis: ") + e.what()};
    }
    co_return guarded(json_reply(json::object{{"error", refused.message}}, refused.status));
}

} // namespace

// ---- sampler

sampler::sampler(client& redis, sampler_options options)
    : redis_(redis)
    , options_(std::move(options))
    , timer_(redis.get_executor())
    , nodes_(std::make_unique<detail::node_links>(redis, options_.node_timeout)) {}

sampler::~sampler() = default;

asio::awaitable<std::string> sampler::sample() {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    json::object snapshot{{"at_ms", now_ms}};
    // Each part on its own: one that fails (a stream gone between SCAN and XINFO, SLOWLOG
    // refused by an ACL) says so in the snapshot and the others still go out.
    std::string failures;
    auto failed = [&](std::string_view part, const std::string& why) {
        failures += (failures.empty() ? "" : "; ") + std::string(part) + ": " + why;
    };
    // Queues and streams are found again every tenth sample: a SCAN of the keyspace costs
    // more than reading them.
    const bool find_again = samples_++ % 10 == 0;
    try {
        if (find_again) queue_names_ = co_await discover(redis_, *nodes_);
        // Each queue's last minute every fifth sample (a per-minute figure), kept between.
        const bool minutes = find_again || samples_ % 5 == 1;
        json::array queues = co_await queues_json(redis_, queue_names_, minutes);
        for (auto& q : queues) {
            auto& o = q.as_object();
            const std::string name(o.at("name").as_string());
            if (minutes)
                last_minutes_[name] = o.at("last_minute");
            else if (auto kept = last_minutes_.find(name); kept != last_minutes_.end())
                o["last_minute"] = kept->second;
        }
        if (find_again) // forget queues gone
            std::erase_if(last_minutes_, [&](const auto& kv) {
                return std::find(queue_names_.begin(), queue_names_.end(), kv.first) ==
                       queue_names_.end();
            });
        snapshot["queues"] = std::move(queues);
    } catch (const refusal& r) {
        failed("queues", r.message);
    } catch (const std::exception& e) {
        failed("queues", e.what());
    }
    try {
        if (find_again) stream_names_ = co_await streams_to_list(redis_, *nodes_);
        snapshot["streams"] = co_await streams_json(redis_, stream_names_);
    } catch (const refusal& r) {
        failed("streams", r.message);
    } catch (const std::exception& e) {
        failed("streams", e.what());
    }
    try {
        if (find_again) batcher_keys_ = co_await find_batchers(redis_, *nodes_);
        snapshot["batchers"] = co_await batchers_json(redis_, batcher_keys_);
    } catch (const refusal& r) {
        failed("batchers", r.message);
    } catch (const std::exception& e) {
        failed("batchers", e.what());
    }
    try {
        // Each node's INFO every sample; its slow log every tenth, as the keys (kept between).
        snapshot["redis"] = co_await redis_json(redis_, *nodes_, find_again);
    } catch (const std::exception& e) {
        failed("redis", e.what());
    }
    if (options_.gateway_stats) snapshot["gateway"] = gateway_json(options_.gateway_stats());
    if (options_.gateway_channels) {
        try {
            snapshot["top_channels"] =
                channels_json(co_await options_.gateway_channels(options_.channels));
        } catch (const std::exception& e) {
            failed("channels", e.what());
        }
    }
    if (!failures.empty()) snapshot["error"] = failures;
    co_return json::serialize(snapshot);
}

asio::awaitable<void> sampler::run() {
    while (!stopped_) {
        try {
            const std::string snapshot = co_await sample();
            request req;
            // As the gateway subscribes: sharded pub/sub on a cluster (gateway/publish.hpp).
            req.push(gateway::sharded(redis_) ? "SPUBLISH" : "PUBLISH",
                     options_.channel_prefix + options_.channel, snapshot);
            co_await redis_.exec(req, akv::ignore);
            ++published_;
        } catch (const std::exception&) {
            // Redis away: the next interval tries again.
        }
        if (stopped_) break;
        timer_.expires_after(options_.interval);
        co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

void sampler::stop() {
    stopped_ = true;
    timer_.cancel();
    nodes_->close();
}

gateway::http_handler api(client& redis, options o) {
    auto s = std::make_shared<state>(redis, std::move(o));
    return [s](http_request req) { return handle(s, std::move(req)); };
}

} // namespace akv::console
