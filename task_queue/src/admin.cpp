#include <akv/queue/admin.hpp>

#include "handoff.hpp"
#include "scripts.hpp"

#include <akv/queue/flow.hpp>

#include <boost/json/parse.hpp>

#include <algorithm>
#include <span>

namespace akv::queue {

namespace {
std::uint64_t to_u64(const std::string& s) {
    try {
        return s.empty() ? 0 : std::stoull(s);
    } catch (const std::exception&) {
        return 0;
    }
}

// "12@tok" -> "12"
std::string strip_token(const std::string& member) {
    return member.substr(0, member.find('@'));
}

} // namespace

admin::admin(client& c, std::string queue)
    : client_(c)
    , queue_(std::move(queue))
    , keys_(queue_) {
    validate_queue_name(queue_);
}

asio::awaitable<bool> admin::exists() {
    request req;
    // Enqueued into, paused or rate-limited, or given periodic jobs: all leave a key.
    req.push("EXISTS", keys_.id, keys_.meta, keys_.periodic);
    response<long long> resp;
    co_await client_.exec(req, resp);
    co_return std::get<0>(resp).value() > 0;
}

asio::awaitable<void> admin::require_exists() {
    const bool there = co_await exists();
    if (!there)
        throw_error(error::unknown_queue,
                    "queue \"" + queue_ + "\": no such queue (nothing was ever enqueued in it)");
}

asio::awaitable<state_counts> admin::counts() {
    request req;
    req.push("LLEN", keys_.wait);
    req.push("ZCARD", keys_.prio);
    req.push("ZCARD", keys_.delayed);
    req.push("ZCARD", keys_.active);
    req.push("ZCARD", keys_.failed);
    req.push("ZCARD", keys_.done);
    req.push("HGETALL", keys_.stats);
    req.push("HGET", keys_.meta, "paused");
    req.push("ZCARD", keys_.waiting_children);
    // Live workers: deadlines still ahead of the server's clock (dead ones may not be pruned
    // yet). A queue has few workers: their deadlines cost less than a script call.
    req.push("TIME");
    req.push("ZRANGE", keys_.workers_seen, 0, -1, "WITHSCORES");
    // Fair groups: only a queue that has them pays for groups.lua.
    req.push("EXISTS", keys_.groups, keys_.groups_maxed, keys_.groups_limited, keys_.groups_active);
    response<std::size_t, std::size_t, std::size_t, std::size_t, std::size_t, std::size_t,
             std::vector<std::string>, std::optional<std::string>, std::size_t,
             std::vector<std::string>, std::vector<std::pair<std::string, double>>, std::size_t>
        resp;
    co_await client_.exec(req, resp);
    state_counts c;
    c.waiting = std::get<0>(resp).value() + std::get<1>(resp).value();
    c.delayed = std::get<2>(resp).value();
    c.active = std::get<3>(resp).value();
    c.failed = std::get<4>(resp).value();
    c.completed = std::get<5>(resp).value();
    const auto& stats = std::get<6>(resp).value();
    for (std::size_t i = 0; i + 1 < stats.size(); i += 2) {
        const auto v = to_u64(stats[i + 1]);
        if (stats[i] == "completed") c.total_completed = v;
        else if (stats[i] == "failed") c.total_failed = v;
        else if (stats[i] == "retried") c.total_retried = v;
        else if (stats[i] == "recovered") c.total_recovered = v;
        else if (stats[i] == "cancelled") c.total_cancelled = v;
        else if (stats[i] == "throttled") c.total_throttled = v;
        else if (stats[i] == "debounced") c.total_debounced = v;
    }
    c.paused = std::get<7>(resp).value() == "1";
    c.waiting_children = std::get<8>(resp).value();
    const auto& time = std::get<9>(resp).value();
    if (time.size() == 2) {
        const double now_ms = static_cast<double>(to_u64(time[0])) * 1000 +
                              static_cast<double>(to_u64(time[1]) / 1000);
        for (const auto& [token, deadline] : std::get<10>(resp).value())
            if (deadline > now_ms) ++c.workers;
    }
    if (std::get<11>(resp).value() > 0) {
        const auto g = co_await read_groups(nullptr);
        c.groups = g.first;
        c.waiting += g.second;
    }
    co_return c;
}

asio::awaitable<std::pair<std::size_t, std::size_t>>
admin::read_groups(std::vector<group_info>* out) {
    const std::array<std::string_view, 1> keys{keys_.prefix};
    const std::array<std::string_view, 1> args{"list"};
    script_request req;
    req.call(scripts::groups(), keys, args);
    generic_response resp;
    co_await req.run(client_, resp);
    const auto& v = scripts::reply(resp, 0, "queue \"" + queue_ + "\": groups.lua").elements;
    if (v.size() < 2 || (v.size() - 2) % 8 != 0)
        throw_error(error::script_error, "queue \"" + queue_ + "\": groups.lua: bad reply");
    for (std::size_t i = 2; out && i + 8 <= v.size(); i += 8) {
        group_info g;
        g.name = v[i].str;
        g.waiting = to_u64(v[i + 1].str);
        g.active = to_u64(v[i + 2].str);
        const auto& state = v[i + 3].str;
        g.state = state == "ready"     ? group_state::ready
                  : state == "maxed"   ? group_state::at_concurrency
                  : state == "limited" ? group_state::rate_limited
                                       : group_state::idle;
        g.limits.concurrency = to_u64(v[i + 4].str);
        g.limits.rate_max = to_u64(v[i + 5].str);
        g.limits.rate_window = std::chrono::milliseconds(to_u64(v[i + 6].str));
        g.own_limits = v[i + 7].str == "1";
        out->push_back(std::move(g));
    }
    co_return std::pair{to_u64(v[0].str), to_u64(v[1].str)};
}

asio::awaitable<std::vector<group_info>> admin::groups(std::size_t limit) {
    std::vector<group_info> out;
    co_await read_groups(&out);
    // The busiest first: most ready, then most running.
    std::sort(out.begin(), out.end(), [](const group_info& a, const group_info& b) {
        return std::tie(b.waiting, b.active, a.name) < std::tie(a.waiting, a.active, b.name);
    });
    if (out.size() > limit) out.resize(limit);
    co_return out;
}

namespace {
void check(const group_limits& l) {
    if (l.rate_max > 0 && l.rate_window.count() <= 0)
        throw_error(error::invalid_config, "group_limits.rate_window: must be above 0 ms with a "
                                           "rate limit");
}
} // namespace

asio::awaitable<void> admin::set_group_limits(std::string group, group_limits l) {
    check(l);
    if (!group.empty()) {
        job_options probe;
        probe.group = group;
        validate(probe);
    }
    const std::array<std::string_view, 1> keys{keys_.prefix};
    const std::string c = std::to_string(l.concurrency), m = std::to_string(l.rate_max),
                      w = std::to_string(l.rate_window.count());
    const std::array<std::string_view, 5> args{group, "set", c, m, w};
    script_request req;
    req.call(scripts::group_limits(), keys, args);
    generic_response resp;
    co_await req.run(client_, resp);
    scripts::reply(resp, 0, "queue \"" + queue_ + "\": group_limits.lua");
}

asio::awaitable<void> admin::clear_group_limits(std::string group) {
    const std::array<std::string_view, 1> keys{keys_.prefix};
    const std::array<std::string_view, 5> args{group, "clear", "0", "0", "0"};
    script_request req;
    req.call(scripts::group_limits(), keys, args);
    generic_response resp;
    co_await req.run(client_, resp);
    scripts::reply(resp, 0, "queue \"" + queue_ + "\": group_limits.lua");
}

asio::awaitable<std::vector<std::string>> admin::list(job_state state, std::size_t offset,
                                                      std::size_t limit) {
    std::vector<std::string> ids;
    if (limit == 0) co_return ids;
    const auto end = static_cast<long long>(offset + limit) - 1;
    request req;
    switch (state) {
    case job_state::waiting: {
        // Claim order: priorities above 0, then the list from its tail, then those below 0.
        req.push("ZRANGE", keys_.prio, "-inf", "(0", "BYSCORE", "LIMIT", 0, end + 1);
        req.push("LRANGE", keys_.wait, -(end + 1), -1);
        req.push("ZRANGE", keys_.prio, "0", "+inf", "BYSCORE", "LIMIT", 0, end + 1);
        response<std::vector<std::string>, std::vector<std::string>, std::vector<std::string>>
            resp;
        co_await client_.exec(req, resp);
        ids = std::move(std::get<0>(resp).value());
        auto& plain = std::get<1>(resp).value();
        ids.insert(ids.end(), plain.rbegin(), plain.rend());
        auto& low = std::get<2>(resp).value();
        ids.insert(ids.end(), low.begin(), low.end());
        if (ids.size() <= static_cast<std::size_t>(end)) co_await list_grouped(ids, end + 1);
        break;
    }
    case job_state::delayed:
    case job_state::active:
    case job_state::failed:
    case job_state::completed:
    case job_state::waiting_children: {
        const std::string& key = state == job_state::delayed            ? keys_.delayed
                                 : state == job_state::active           ? keys_.active
                                 : state == job_state::failed           ? keys_.failed
                                 : state == job_state::waiting_children ? keys_.waiting_children
                                                                        : keys_.done;
        const bool newest_first = state == job_state::failed || state == job_state::completed;
        if (newest_first)
            req.push("ZRANGE", key, 0, end, "REV");
        else
            req.push("ZRANGE", key, 0, end);
        response<std::vector<std::string>> resp;
        co_await client_.exec(req, resp);
        ids = std::move(std::get<0>(resp).value());
        if (state == job_state::active)
            for (auto& id : ids) id = strip_token(id);
        break;
    }
    case job_state::unknown: break;
    }
    if (offset >= ids.size()) co_return std::vector<std::string>{};
    ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(offset));
    if (ids.size() > limit) ids.resize(limit);
    co_return ids;
}

// Grouped ready jobs after the others: group by group in turn order (those held at a limit
// last), each group's in claim order, until `want` ids in all.
asio::awaitable<void> admin::list_grouped(std::vector<std::string>& ids, std::size_t want) {
    request names_req;
    names_req.push("ZRANGE", keys_.groups, 0, -1);
    names_req.push("SMEMBERS", keys_.groups_maxed);
    names_req.push("ZRANGE", keys_.groups_limited, 0, -1);
    response<std::vector<std::string>, std::vector<std::string>, std::vector<std::string>> names;
    co_await client_.exec(names_req, names);
    std::vector<std::string> groups = std::move(std::get<0>(names).value());
    for (auto* more : {&std::get<1>(names).value(), &std::get<2>(names).value()})
        groups.insert(groups.end(), more->begin(), more->end());
    for (const auto& g : groups) {
        if (ids.size() >= want) break;
        request req;
        req.push("LRANGE", keys_.group(g), -static_cast<long long>(want - ids.size()), -1);
        response<std::vector<std::string>> resp;
        co_await client_.exec(req, resp);
        const auto& in_group = std::get<0>(resp).value();
        ids.insert(ids.end(), in_group.rbegin(), in_group.rend());
    }
}

asio::awaitable<job_info> admin::get(std::string id) {
    request req;
    req.push("HGET", keys_.jobs, id);
    req.push("HGET", keys_.attempts, id);
    req.push("HGET", keys_.errors, id);
    req.push("HGET", keys_.results, id);
    req.push("ZSCORE", keys_.failed, id);
    req.push("ZSCORE", keys_.delayed, id);
    req.push("ZSCORE", keys_.prio, id);
    req.push("LPOS", keys_.wait, id);
    req.push("ZSCORE", keys_.waiting_children, id);
    req.push("HGET", keys_.progress, id);
    using opt = std::optional<std::string>;
    response<opt, opt, opt, opt, opt, opt, opt, std::optional<long long>, opt, opt> resp;
    co_await client_.exec(req, resp);
    job_info info;
    info.id = id;
    const auto& record = std::get<0>(resp).value();
    if (record) {
        try {
            info.job = detail::decode_record(queue_, id, *record);
        } catch (const boost::system::system_error&) {
            // A malformed record (the job failed for it): the state and error still show.
        }
    }
    info.failures = static_cast<unsigned>(to_u64(std::get<1>(resp).value().value_or("")));
    info.last_error = std::get<2>(resp).value().value_or("");
    if (const auto& stored = std::get<3>(resp).value()) info.result = detail::decode_result(*stored);
    if (std::get<4>(resp).value()) info.state = job_state::failed;
    else if (std::get<5>(resp).value()) info.state = job_state::delayed;
    else if (std::get<6>(resp).value() || std::get<7>(resp).value()) info.state = job_state::waiting;
    else if (std::get<8>(resp).value())
        info.state = job_state::waiting_children;
    else if (record) info.state = job_state::active;
    else if (info.result) info.state = job_state::completed;
    if (info.state == job_state::active && info.job && !info.job->options.group.empty()) {
        // Ready in its group's list, or running: the list tells.
        request in_group;
        in_group.push("LPOS", keys_.group(info.job->options.group), id);
        response<std::optional<long long>> pos;
        co_await client_.exec(in_group, pos);
        if (std::get<0>(pos).value()) info.state = job_state::waiting;
    }
    if (info.job) info.job->attempt = info.failures + 1;
    info.progress = std::get<9>(resp).value().value_or("");
    if (info.job && info.job->children > 0) {
        std::vector<std::string> fields;
        for (std::size_t i = 1; i <= info.job->children; ++i)
            fields.push_back(id + ":" + std::to_string(i));
        request kids;
        kids.push("HMGET", keys_.children, fields);
        response<std::vector<std::optional<std::string>>> held;
        co_await client_.exec(kids, held);
        for (const auto& v : std::get<0>(held).value())
            if (v) info.children.push_back(detail::decode_child(*v));
    }
    co_return info;
}

namespace {
asio::awaitable<flow_node> flow_below(client& c, std::string queue, std::string id,
                                      std::size_t depth) {
    if (depth > max_flow_depth)
        throw_error(error::bad_job, "queue \"" + queue + "\": job " + id + ": a flow deeper than " +
                                        std::to_string(max_flow_depth) + " levels");
    admin a(c, queue);
    flow_node node;
    node.queue = queue;
    node.info = co_await a.get(std::move(id));
    for (const auto& child : node.info.children)
        node.children.push_back(co_await flow_below(c, child.queue, child.id, depth + 1));
    co_return node;
}
} // namespace

asio::awaitable<flow_node> admin::flow(std::string id) {
    co_return co_await flow_below(client_, queue_, std::move(id), 0);
}

namespace {
// A registry record (heartbeat.lua) as worker_info; fields missing or of another type stay
// at their defaults, and a record that is no JSON object at all gives only the token.
worker_info worker_of(const std::string& token, const std::string& record) {
    worker_info w;
    w.token = token;
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(record, ec);
    if (ec || !v.is_object()) return w;
    const auto& o = v.get_object();
    auto number = [&o](std::string_view key) -> std::int64_t {
        const auto* x = o.if_contains(key);
        if (!x) return 0;
        if (x->is_int64()) return x->get_int64();
        if (x->is_uint64()) return static_cast<std::int64_t>(x->get_uint64());
        if (x->is_double()) return static_cast<std::int64_t>(x->get_double());
        return 0;
    };
    auto count = [&number](std::string_view key) {
        return static_cast<std::uint64_t>(std::max<std::int64_t>(0, number(key)));
    };
    if (const auto* host = o.if_contains("host"); host && host->is_string())
        w.host = host->get_string();
    w.pid = number("pid");
    w.concurrency = count("concurrency");
    w.running = count("running");
    w.completed = count("completed");
    w.failed = count("failed");
    w.started_ms = number("started_ms");
    w.last_seen_ms = number("last_seen_ms");
    w.heartbeat = std::chrono::milliseconds(number("heartbeat_ms"));
    if (const auto* stopping = o.if_contains("stopping"); stopping && stopping->is_bool())
        w.stopping = stopping->get_bool();
    return w;
}
} // namespace

asio::awaitable<std::vector<worker_info>> admin::workers() {
    const std::array<std::string_view, 1> keys{keys_.prefix};
    response<std::vector<std::string>> resp;
    co_await scripts::workers().run(client_, keys, std::array<std::string_view, 0>{}, resp);
    auto& r = std::get<0>(resp);
    if (r.has_error()) throw_error(error::script_error, "workers.lua: " + r.error().message);
    const auto& flat = r.value();
    std::vector<worker_info> out;
    for (std::size_t i = 0; i + 1 < flat.size(); i += 2)
        out.push_back(worker_of(flat[i], flat[i + 1]));
    std::sort(out.begin(), out.end(),
              [](const worker_info& a, const worker_info& b) { return a.token < b.token; });
    co_return out;
}

namespace {
// What requeue.lua, remove.lua and cancel.lua answer, named in this one place.
enum class answer { requeued, removed, cancelled, running, finished, not_failed, unknown };

answer answer_of(const char* what, const std::string& text) {
    static constexpr std::pair<std::string_view, answer> names[] = {
        {"requeued", answer::requeued},   {"removed", answer::removed},
        {"cancelled", answer::cancelled}, {"running", answer::running},
        {"finished", answer::finished},   {"not_failed", answer::not_failed},
        {"unknown", answer::unknown}};
    for (const auto& [name, a] : names)
        if (text == name) return a;
    throw_error(error::script_error, std::string(what) + ": unexpected answer \"" + text + "\"");
}

asio::awaitable<answer> run_admin_script(client& c, const script& s, std::string_view prefix,
                                         std::span<const std::string_view> args, const char* what) {
    const std::array<std::string_view, 1> keys{prefix};
    response<std::string> resp;
    co_await s.run(c, keys, args, resp);
    auto& r = std::get<0>(resp);
    if (r.has_error()) throw_error(error::script_error, std::string(what) + ": " + r.error().message);
    co_return answer_of(what, r.value());
}
} // namespace

namespace {
// cancel.lua's and remove.lua's reply: {answer, notices for parents, pending children}.
struct flow_answer {
    answer said = answer::unknown;
    std::vector<detail::notice> notices;
    std::vector<std::pair<std::string, std::string>> children; // queue, id
};

asio::awaitable<flow_answer> run_flow_script(client& c, const script& s, const std::string& queue,
                                             std::span<const std::string_view> args,
                                             const char* what) {
    const queue_keys keys(queue);
    script_request req;
    req.call(s, std::array<std::string_view, 1>{keys.prefix}, args);
    generic_response resp;
    co_await req.run(c, resp);
    const auto& v = scripts::reply(resp, 0, what);
    if (v.elements.size() != 3) throw_error(error::script_error, std::string(what) + ": bad reply");
    flow_answer out;
    out.said = answer_of(what, v.elements[0].str);
    detail::read_notices(v.elements[1], queue, out.notices);
    for (const auto& child : v.elements[2].elements) {
        const auto space = child.str.find(' ');
        if (space != std::string::npos)
            out.children.emplace_back(child.str.substr(0, space), child.str.substr(space + 1));
    }
    co_return out;
}
} // namespace

asio::awaitable<void> admin::retry(std::string id) {
    const std::array<std::string_view, 1> args{id};
    const answer a =
        co_await run_admin_script(client_, scripts::requeue(), keys_.prefix, args, "requeue.lua");
    if (a == answer::unknown)
        throw_error(error::unknown_job, "queue \"" + queue_ + "\": no job " + id);
    if (a == answer::not_failed)
        throw_error(error::invalid_config,
                    "queue \"" + queue_ + "\": job " + id + " has not failed: nothing to retry");
}

asio::awaitable<void> admin::remove(std::string id) {
    const std::array<std::string_view, 1> args{id};
    flow_answer r =
        co_await run_flow_script(client_, scripts::remove(), queue_, args, "remove.lua");
    const answer a = r.said;
    if (!r.notices.empty()) co_await detail::hand_off(client_, std::move(r.notices));
    for (auto& [queue, child] : r.children) {
        admin below(client_, queue);
        bool running = false;
        try {
            co_await below.remove(child);
        } catch (const boost::system::system_error& e) {
            if (e.code() == error::job_active)
                running = true;
            else if (e.code() != error::unknown_job)
                throw; // gone already: nothing to do
        }
        if (running)
            co_await below.cancel(child, "its parent " + queue_ + " " + id + " was removed");
    }
    if (a == answer::unknown)
        throw_error(error::unknown_job, "queue \"" + queue_ + "\": no job " + id);
    if (a == answer::running)
        throw_error(error::job_active, "queue \"" + queue_ + "\": job " + id +
                                           " is running: cancel it, then remove it");
}

asio::awaitable<cancel_outcome> admin::cancel(std::string id, std::string reason) {
    const std::array<std::string_view, 2> args{id, reason};
    flow_answer r =
        co_await run_flow_script(client_, scripts::cancel(), queue_, args, "cancel.lua");
    if (!r.notices.empty()) co_await detail::hand_off(client_, std::move(r.notices));
    for (auto& [queue, child] : r.children) {
        admin below(client_, queue);
        co_await below.cancel(child, "its parent " + queue_ + " " + id + " was cancelled");
    }
    switch (r.said) {
    case answer::cancelled:
        co_return cancel_outcome::cancelled;
    case answer::running:
        co_return cancel_outcome::running;
    case answer::finished:
        co_return cancel_outcome::finished;
    default:
        co_return cancel_outcome::unknown;
    }
}

asio::awaitable<void> admin::pause() {
    request req;
    req.push("HSET", keys_.meta, "paused", "1");
    response<ignore_t> resp;
    co_await client_.exec(req, resp);
    std::get<0>(resp).value();
}

asio::awaitable<void> admin::resume() {
    request req;
    req.push("HSET", keys_.meta, "paused", "0"); // kept: the queue still exists
    req.push("ZADD", keys_.marker, 0, "m");      // wakes an idle worker
    response<ignore_t, ignore_t> resp;
    co_await client_.exec(req, resp);
    std::get<0>(resp).value();
}

asio::awaitable<void> admin::set_rate_limit(std::uint64_t max_jobs,
                                            std::chrono::milliseconds window) {
    if (max_jobs > 0 && window.count() <= 0)
        throw_error(error::invalid_config, "queue rate limit: the window must be positive");
    request req;
    if (max_jobs == 0)
        req.push("HDEL", keys_.meta, "rate_max", "rate_window");
    else
        req.push("HSET", keys_.meta, "rate_max", max_jobs, "rate_window", window.count());
    req.push("ZADD", keys_.marker, 0, "m");
    response<ignore_t, ignore_t> resp;
    co_await client_.exec(req, resp);
    std::get<0>(resp).value();
}

asio::awaitable<std::pair<std::size_t, std::size_t>> admin::recover_stalled() {
    const std::array<std::string_view, 1> keys{keys_.prefix};
    const std::array<std::string_view, 1> args{"1000"};
    script_request req;
    req.call(scripts::recover(), keys, args);
    generic_response resp;
    co_await req.run(client_, resp);
    const auto& v = scripts::reply(resp, 0, "recover.lua");
    if (v.elements.size() != 3) throw_error(error::script_error, "recover.lua: bad reply");
    std::vector<detail::notice> notices;
    detail::read_notices(v.elements[2], queue_, notices);
    // With those, the notices for parents of flows that a dead process left in the outbox.
    auto stale =
        co_await detail::stale_notices(client_, queue_, std::chrono::milliseconds(0), 1000);
    notices.insert(notices.end(), std::make_move_iterator(stale.begin()),
                   std::make_move_iterator(stale.end()));
    if (!notices.empty()) co_await detail::hand_off(client_, std::move(notices));
    co_return std::make_pair(to_u64(v.elements[0].str), to_u64(v.elements[1].str));
}

asio::awaitable<std::vector<minute_metrics>> admin::metrics(std::size_t minutes) {
    const auto now_minute = std::chrono::duration_cast<std::chrono::minutes>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    minutes = std::clamp<std::size_t>(minutes, 1, 120);
    request req;
    for (std::size_t i = minutes; i-- > 0;)
        req.push("HGETALL", keys_.metrics(now_minute - static_cast<long long>(i)));
    generic_response resp;
    co_await client_.exec(req, resp);
    std::vector<minute_metrics> out;
    for (std::size_t i = 0; i < resp.size(); ++i) {
        minute_metrics m;
        m.minute = now_minute - static_cast<long long>(minutes - 1 - i);
        std::vector<std::uint64_t> hist(detail::latency_buckets);
        std::uint64_t in_hist = 0;
        const auto& v = resp[i].value();
        for (std::size_t k = 0; k + 1 < v.elements.size(); k += 2) {
            const auto& field = v.elements[k].str;
            const auto n = to_u64(v.elements[k + 1].str);
            if (field == "p") m.processed = n;
            else if (field == "f") m.failed = n;
            else if (field.size() > 1 && field[0] == 'l') {
                const auto b = to_u64(field.substr(1));
                if (b < detail::latency_buckets) {
                    hist[b] += n;
                    in_hist += n;
                }
            }
        }
        auto pct = [&](double p) {
            if (in_hist == 0) return 0.0;
            const auto rank = static_cast<std::uint64_t>(p * static_cast<double>(in_hist) + 0.999999);
            std::uint64_t seen = 0;
            for (std::size_t b = 0; b < detail::latency_buckets; ++b) {
                seen += hist[b];
                if (seen >= rank) return detail::latency_bucket_bound(b);
            }
            return detail::latency_bucket_bound(detail::latency_buckets - 1);
        };
        m.p50_ms = pct(0.50);
        m.p90_ms = pct(0.90);
        m.p99_ms = pct(0.99);
        out.push_back(m);
    }
    co_return out;
}

asio::awaitable<void> admin::obliterate() {
    {
        // The groups' own keys first: their names are in keys all() deletes.
        const std::array<std::string_view, 1> keys{keys_.prefix};
        const std::array<std::string_view, 1> args{"drop"};
        script_request drop;
        drop.call(scripts::groups(), keys, args);
        generic_response dropped;
        co_await drop.run(client_, dropped);
        scripts::reply(dropped, 0, "queue \"" + queue_ + "\": groups.lua");
    }
    request req;
    req.push("DEL", keys_.all());
    const auto now_minute = std::chrono::duration_cast<std::chrono::minutes>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    std::vector<std::string> metric_keys;
    for (long long i = 0; i < 130; ++i)
        metric_keys.push_back(keys_.metrics(now_minute - i));
    req.push("DEL", metric_keys);
    response<ignore_t, ignore_t> resp;
    co_await client_.exec(req, resp);
    std::get<0>(resp).value();
}

} // namespace akv::queue
