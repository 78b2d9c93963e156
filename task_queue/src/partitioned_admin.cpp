#include <akv/queue/partitioned.hpp>

#include "partitions.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace akv::queue {

namespace {
// Partition i's share of a queue's rate limit of `max_jobs` over `n` partitions.
std::uint64_t rate_share(std::uint64_t max_jobs, std::size_t n, std::size_t i) {
    if (max_jobs == 0) return 0;
    const std::uint64_t share = max_jobs / n + (i < max_jobs % n ? 1 : 0);
    return std::max<std::uint64_t>(share, 1);
}

std::uint64_t to_u64(const std::optional<std::string>& s) {
    try {
        return s && !s->empty() ? std::stoull(*s) : 0;
    } catch (const std::exception&) {
        return 0;
    }
}
} // namespace

partitioned_admin::partitioned_admin(client& c, std::string queue)
    : client_(c)
    , queue_(std::move(queue)) {
    validate_queue_name(queue_);
}

asio::awaitable<bool> partitioned_admin::exists() {
    request req;
    req.push("EXISTS", queue_keys(queue_).partitions);
    response<long long> resp;
    co_await client_.exec(req, resp);
    co_return std::get<0>(resp).value() > 0;
}

asio::awaitable<std::vector<std::string>> partitioned_admin::partitions() {
    co_return co_await detail::open_partitions(client_, queue_, 0);
}

asio::awaitable<std::vector<std::string>> partitioned_admin::open(std::size_t count) {
    co_return co_await detail::open_partitions(client_, queue_, count);
}

asio::awaitable<std::vector<std::string>> partitioned_admin::add_partitions(std::size_t more) {
    const std::vector<std::string> names = co_await partitions();
    if (more == 0) co_return names;
    // What the new partitions inherit: the pause, and the queue's rate limit (the sum of the
    // partitions' shares), split again over the new count.
    request req;
    for (const auto& name : names)
        req.push("HMGET", queue_keys(name).meta, "paused", "rate_max", "rate_window");
    generic_response metas;
    co_await client_.exec(req, metas);
    bool paused = false;
    std::uint64_t rate = 0, window = 0;
    for (const auto& m : metas) {
        const auto& v = m.value();
        if (v.elements.size() != 3) continue;
        auto text = [&](std::size_t i) -> std::optional<std::string> {
            if (v.elements[i].is_null()) return std::nullopt;
            return v.elements[i].str;
        };
        paused = paused || text(0) == "1";
        rate += to_u64(text(1));
        if (window == 0) window = to_u64(text(2));
    }
    const std::vector<std::string> planned = detail::plan_more(client_, queue_, names, more);
    const std::size_t total = names.size() + planned.size();
    // The settings of partitions [from, from + which.size()); the new ones get theirs first,
    // before they are listed, so that no worker claims from one before.
    auto settings = [&](std::size_t from, const std::vector<std::string>& which, bool fresh) {
        request set;
        for (std::size_t i = 0; i < which.size(); ++i) {
            const std::string meta = queue_keys(which[i]).meta;
            if (paused && fresh) set.push("HSET", meta, "paused", "1");
            if (rate > 0)
                set.push("HSET", meta, "rate_max", rate_share(rate, total, from + i), "rate_window",
                         window);
        }
        return set;
    };
    const request first = settings(names.size(), planned, true);
    if (first.size() > 0) {
        generic_response ignored;
        co_await client_.exec(first, ignored);
    }
    std::vector<std::string> now =
        co_await detail::append_partitions(client_, queue_, names, planned);
    if (rate > 0) {
        const request old = settings(0, names, false);
        generic_response ignored;
        co_await client_.exec(old, ignored);
    }
    co_return now;
}

asio::awaitable<partitioned_counts> partitioned_admin::counts() {
    const std::vector<std::string> names = co_await partitions();
    partitioned_counts out;
    out.partitions.resize(names.size());
    std::vector<std::vector<worker_info>> workers(names.size());
    co_await detail::all_of(names.size(), [&](std::size_t i) -> asio::awaitable<void> {
        admin a(client_, names[i]);
        out.partitions[i].name = names[i];
        out.partitions[i].counts = co_await a.counts();
        if (out.partitions[i].counts.workers > 0) workers[i] = co_await a.workers();
    });
    state_counts& t = out.total;
    std::set<std::string> tokens;
    for (std::size_t i = 0; i < names.size(); ++i) {
        const state_counts& c = out.partitions[i].counts;
        t.waiting += c.waiting;
        t.delayed += c.delayed;
        t.active += c.active;
        t.failed += c.failed;
        t.completed += c.completed;
        t.waiting_children += c.waiting_children;
        t.total_completed += c.total_completed;
        t.total_failed += c.total_failed;
        t.total_retried += c.total_retried;
        t.total_recovered += c.total_recovered;
        t.total_cancelled += c.total_cancelled;
        t.total_throttled += c.total_throttled;
        t.total_debounced += c.total_debounced;
        t.paused = t.paused || c.paused;
        t.groups += c.groups; // a group's jobs are in one partition unless placed by another key
        for (const auto& w : workers[i])
            tokens.insert(w.token);
    }
    t.workers = tokens.size();
    co_return out;
}

asio::awaitable<std::vector<std::string>>
partitioned_admin::list(job_state state, std::size_t offset, std::size_t limit) {
    const std::vector<std::string> names = co_await partitions();
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < names.size() && ids.size() < offset + limit; ++i) {
        admin a(client_, names[i]);
        const std::vector<std::string> part =
            co_await a.list(state, 0, offset + limit - ids.size());
        for (const auto& id : part)
            ids.push_back(partitioned_id(i, id));
    }
    if (offset >= ids.size()) co_return std::vector<std::string>{};
    ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(offset));
    if (ids.size() > limit) ids.resize(limit);
    co_return ids;
}

asio::awaitable<partitioned_admin::located> partitioned_admin::locate(const std::string& id) {
    const auto ref = parse_partitioned_id(id);
    if (!ref)
        throw_error(error::unknown_job, "queue \"" + queue_ + "\": no job " + id +
                                            " (a partitioned queue's ids are <partition>:<id>)");
    const std::vector<std::string> names = co_await partitions();
    if (ref->partition >= names.size())
        throw_error(error::unknown_job, "queue \"" + queue_ + "\": no job " + id + " (it has " +
                                            std::to_string(names.size()) + " partitions)");
    co_return located{names[ref->partition], ref->id};
}

asio::awaitable<job_info> partitioned_admin::get(std::string id) {
    const located at = co_await locate(id);
    admin a(client_, at.partition);
    job_info info = co_await a.get(at.id);
    info.id = id;
    co_return info;
}

asio::awaitable<void> partitioned_admin::retry(std::string id) {
    const located at = co_await locate(id);
    admin a(client_, at.partition);
    co_await a.retry(at.id);
}

asio::awaitable<void> partitioned_admin::remove(std::string id) {
    const located at = co_await locate(id);
    admin a(client_, at.partition);
    co_await a.remove(at.id);
}

asio::awaitable<cancel_outcome> partitioned_admin::cancel(std::string id, std::string reason) {
    const located at = co_await locate(id);
    admin a(client_, at.partition);
    co_return co_await a.cancel(at.id, std::move(reason));
}

asio::awaitable<flow_node> partitioned_admin::flow(std::string id) {
    const located at = co_await locate(id);
    admin a(client_, at.partition);
    co_return co_await a.flow(at.id);
}

asio::awaitable<std::vector<group_info>> partitioned_admin::groups(std::size_t limit) {
    const std::vector<std::string> names = co_await partitions();
    std::vector<std::vector<group_info>> each(names.size());
    co_await detail::all_of(names.size(), [&](std::size_t i) -> asio::awaitable<void> {
        admin a(client_, names[i]);
        each[i] = co_await a.groups(limit);
    });
    std::map<std::string, group_info> by_name;
    for (auto& part : each)
        for (auto& g : part) {
            auto [it, fresh] = by_name.try_emplace(g.name, g);
            if (fresh) continue;
            it->second.waiting += g.waiting;
            it->second.active += g.active;
            if (g.state == group_state::ready) it->second.state = group_state::ready;
        }
    std::vector<group_info> out;
    for (auto& [name, g] : by_name)
        out.push_back(std::move(g));
    // The busiest first, as admin::groups lists them.
    std::sort(out.begin(), out.end(), [](const group_info& a, const group_info& b) {
        return std::tie(b.waiting, b.active, a.name) < std::tie(a.waiting, a.active, b.name);
    });
    if (out.size() > limit) out.resize(limit);
    co_return out;
}

asio::awaitable<void> partitioned_admin::set_group_limits(std::string group, group_limits limits) {
    const std::vector<std::string> names = co_await partitions();
    co_await detail::all_of(names.size(), [&](std::size_t i) -> asio::awaitable<void> {
        admin a(client_, names[i]);
        co_await a.set_group_limits(group, limits);
    });
}

asio::awaitable<void> partitioned_admin::clear_group_limits(std::string group) {
    const std::vector<std::string> names = co_await partitions();
    co_await detail::all_of(names.size(), [&](std::size_t i) -> asio::awaitable<void> {
        admin a(client_, names[i]);
        co_await a.clear_group_limits(group);
    });
}

asio::awaitable<std::vector<worker_info>> partitioned_admin::workers() {
    const std::vector<std::string> names = co_await partitions();
    std::vector<std::vector<worker_info>> each(names.size());
    co_await detail::all_of(names.size(), [&](std::size_t i) -> asio::awaitable<void> {
        admin a(client_, names[i]);
        each[i] = co_await a.workers();
    });
    std::map<std::string, worker_info> by_token;
    for (auto& part : each)
        for (auto& w : part) {
            auto [it, fresh] = by_token.try_emplace(w.token, w);
            if (fresh) continue;
            worker_info& m = it->second;
            m.running += w.running;
            m.completed += w.completed;
            m.failed += w.failed;
            m.last_seen_ms = std::max(m.last_seen_ms, w.last_seen_ms);
            m.stopping = m.stopping || w.stopping;
        }
    std::vector<worker_info> out;
    for (auto& [token, w] : by_token)
        out.push_back(std::move(w));
    co_return out;
}

asio::awaitable<void> partitioned_admin::pause() {
    const std::vector<std::string> names = co_await partitions();
    co_await detail::all_of(names.size(), [&](std::size_t i) -> asio::awaitable<void> {
        admin a(client_, names[i]);
        co_await a.pause();
    });
}

asio::awaitable<void> partitioned_admin::resume() {
    const std::vector<std::string> names = co_await partitions();
    co_await detail::all_of(names.size(), [&](std::size_t i) -> asio::awaitable<void> {
        admin a(client_, names[i]);
        co_await a.resume();
    });
}

asio::awaitable<void> partitioned_admin::set_rate_limit(std::uint64_t max_jobs,
                                                        std::chrono::milliseconds window) {
    if (max_jobs > 0 && window.count() <= 0)
        throw_error(error::invalid_config, "queue rate limit: the window must be positive");
    const std::vector<std::string> names = co_await partitions();
    co_await detail::all_of(names.size(), [&](std::size_t i) -> asio::awaitable<void> {
        admin a(client_, names[i]);
        co_await a.set_rate_limit(rate_share(max_jobs, names.size(), i), window);
    });
}

asio::awaitable<std::pair<std::size_t, std::size_t>> partitioned_admin::recover_stalled() {
    const std::vector<std::string> names = co_await partitions();
    std::vector<std::pair<std::size_t, std::size_t>> each(names.size());
    co_await detail::all_of(names.size(), [&](std::size_t i) -> asio::awaitable<void> {
        admin a(client_, names[i]);
        each[i] = co_await a.recover_stalled();
    });
    std::pair<std::size_t, std::size_t> sum{0, 0};
    for (const auto& [recovered, failed] : each) {
        sum.first += recovered;
        sum.second += failed;
    }
    co_return sum;
}

asio::awaitable<std::vector<minute_metrics>> partitioned_admin::metrics(std::size_t minutes) {
    const std::vector<std::string> names = co_await partitions();
    std::vector<std::vector<minute_metrics>> each(names.size());
    co_await detail::all_of(names.size(), [&](std::size_t i) -> asio::awaitable<void> {
        admin a(client_, names[i]);
        each[i] = co_await a.metrics(minutes);
    });
    std::vector<minute_metrics> out;
    for (const auto& part : each) {
        if (out.empty()) {
            out = part;
            continue;
        }
        // Read a moment apart: a partition's minutes may start one later.
        for (const minute_metrics& m : part) {
            auto it = std::find_if(out.begin(), out.end(),
                                   [&](const minute_metrics& o) { return o.minute == m.minute; });
            if (it == out.end()) continue;
            it->processed += m.processed;
            it->failed += m.failed;
            it->p50_ms = std::max(it->p50_ms, m.p50_ms);
            it->p90_ms = std::max(it->p90_ms, m.p90_ms);
            it->p99_ms = std::max(it->p99_ms, m.p99_ms);
        }
    }
    co_return out;
}

asio::awaitable<void> partitioned_admin::obliterate() {
    const std::vector<std::string> names = co_await partitions();
    co_await detail::all_of(names.size(), [&](std::size_t i) -> asio::awaitable<void> {
        admin a(client_, names[i]);
        co_await a.obliterate();
    });
    request req;
    req.push("DEL", queue_keys(queue_).partitions);
    response<ignore_t> resp;
    co_await client_.exec(req, resp);
    std::get<0>(resp).value();
}

} // namespace akv::queue
