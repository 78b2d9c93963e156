#include <akv/queue/flow.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/queue_keys.hpp>

#include <akv/script.hpp>

#include "scripts.hpp"

#include <map>

namespace akv::queue {

namespace {
// Jobs per add_flow.lua call: a bounded script run keeps the server responsive.
constexpr std::size_t add_chunk = 1000;

// A job of the flow being added, flattened (the root first, then depth by depth).
struct placed {
    const flow_job* job = nullptr;
    std::string path; // "flow.children[1]", for errors
    std::size_t depth = 0;
    std::string id;
    std::vector<std::size_t> children; // indexes in the flat list
    std::optional<job_parent> parent;
};

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
    throw_error(error::invalid_config, path + ": " + why);
}

// Checks one job (its name and options with its path in the message) and lists its subtree.
void flatten(const flow_job& j, std::string path, std::size_t depth, std::vector<placed>& flat) {
    if (depth > max_flow_depth)
        refuse(path, "nested deeper than " + std::to_string(max_flow_depth) + " levels");
    if (flat.size() >= max_flow_jobs)
        refuse("flow", "more than " + std::to_string(max_flow_jobs) + " jobs");
    try {
        validate_queue_name(j.queue);
        validate(j.options);
    } catch (const boost::system::system_error& e) {
        refuse(path + (j.queue.empty() ? ".queue" : " (queue \"" + j.queue + "\")"), e.what());
    }
    if (!j.options.unique_key.empty() || j.options.dedup.mode != dedup_mode::none)
        refuse(path, "unique_key and dedup do not apply in a flow (a job given another's id "
                     "would leave its parent waiting)");
    if (!j.children.empty() && (j.options.delay.count() > 0 || j.options.run_at))
        refuse(path, "a parent runs once its children finished: delay and run_at do not apply");
    if (j.collects && j.children.empty()) refuse(path, "a group needs at least one job");
    if (j.children.size() > max_flow_children)
        refuse(path, std::to_string(j.children.size()) + " children, more than " +
                         std::to_string(max_flow_children));
    const std::size_t me = flat.size();
    flat.push_back({&j, std::move(path), depth, {}, {}, {}});
    for (std::size_t i = 0; i < j.children.size(); ++i) {
        flat[me].children.push_back(flat.size());
        flatten(j.children[i], flat[me].path + ".children[" + std::to_string(i) + "]", depth + 1,
                flat);
    }
}

flow_ids ids_of(const std::vector<placed>& flat, std::size_t at) {
    flow_ids out{flat[at].job->queue, flat[at].id, {}};
    for (auto c : flat[at].children)
        out.children.push_back(ids_of(flat, c));
    return out;
}
} // namespace

flow_job chain(std::vector<flow_job> steps) {
    if (steps.empty()) throw_error(error::invalid_config, "chain: no steps");
    flow_job last = std::move(steps.front());
    for (std::size_t i = 1; i < steps.size(); ++i) {
        flow_job next = std::move(steps[i]);
        next.children.push_back(std::move(last));
        last = std::move(next);
    }
    return last;
}

flow_job group(std::string queue, std::vector<flow_job> jobs) {
    flow_job g;
    g.queue = std::move(queue);
    g.collects = true;
    g.children = std::move(jobs);
    return g;
}

flow_job chord(std::vector<flow_job> header, flow_job callback) {
    for (auto& j : header)
        callback.children.push_back(std::move(j));
    return callback;
}

flow_producer::flow_producer(client& c, messaging::subscriber* events)
    : client_(c)
    , events_(events) {}

asio::awaitable<flow_ids> flow_producer::add(const flow_job& root) {
    std::vector<placed> flat;
    flatten(root, "flow", 0, flat);

    // Ids first, in every queue of the flow (one pipeline), so that each parent can list its
    // children when it is added.
    std::map<std::string, std::size_t> per_queue;
    for (const auto& p : flat)
        ++per_queue[p.job->queue];
    request reserve;
    for (const auto& [queue, n] : per_queue)
        reserve.push("INCRBY", queue_keys(queue).id, n);
    generic_response reserved;
    co_await client_.exec(reserve, reserved);
    std::map<std::string, long long> next_id;
    std::size_t at = 0;
    for (const auto& [queue, n] : per_queue) {
        const auto& r = reserved.at(at++);
        if (r.has_error())
            throw_error(error::script_error, "queue \"" + queue + "\": " + r.error().message);
        next_id[queue] = std::stoll(r.value().str) - static_cast<long long>(n) + 1;
    }
    std::size_t depth = 0;
    for (auto& p : flat) {
        p.id = std::to_string(next_id[p.job->queue]++);
        depth = std::max(depth, p.depth);
    }
    for (const auto& p : flat)
        for (std::size_t i = 0; i < p.children.size(); ++i) {
            auto& c = flat[p.children[i]];
            c.parent = job_parent{p.job->queue, p.id, i + 1, c.job->on_failure};
        }

    // Then from the root down, a depth per round trip: a child is added only once its parent
    // waits for it, so a failure midway leaves nothing runnable that should not be.
    const std::int64_t now = detail::wall_ms();
    for (std::size_t d = 0; d <= depth; ++d) {
        struct call {
            std::size_t jobs = 0;
            std::vector<std::string> args{"0"}; // add_flow.lua's: the count, then the jobs
        };
        std::map<std::string, std::vector<call>> calls; // per queue
        for (const auto& p : flat) {
            if (p.depth != d) continue;
            auto& chunks = calls[p.job->queue];
            if (chunks.empty() || chunks.back().jobs == add_chunk) chunks.emplace_back();
            auto& args = chunks.back().args;
            args.front() = std::to_string(++chunks.back().jobs);
            const flow_job& j = *p.job;
            job shape;
            shape.parent = p.parent;
            shape.children = p.children.size();
            shape.collects = j.collects;
            std::int64_t delay = j.options.delay.count();
            if (j.options.run_at)
                delay = std::max<std::int64_t>(
                    0, std::chrono::duration_cast<std::chrono::milliseconds>(
                           *j.options.run_at - std::chrono::system_clock::now())
                           .count());
            args.push_back(p.id);
            args.push_back(detail::encode_record(j.options, now, std::chrono::milliseconds(delay),
                                                 j.payload, detail::flow_text(shape)));
            args.push_back(std::to_string(delay));
            args.push_back(std::to_string(j.options.priority));
            args.push_back(std::to_string(p.children.size()));
            for (auto c : p.children)
                args.push_back(flat[c].job->queue + " " + flat[c].id);
        }
        script_request req;
        std::vector<std::string> names;
        for (const auto& [queue, chunks] : calls) {
            const queue_keys keys(queue);
            const std::array<std::string_view, 1> prefix{keys.prefix};
            for (const auto& c : chunks) {
                req.call(scripts::add_flow(), prefix, c.args);
                names.push_back(queue);
            }
        }
        generic_response replies;
        co_await req.run(client_, replies);
        for (std::size_t i = 0; i < names.size(); ++i)
            scripts::reply(replies, i, "queue \"" + names[i] + "\": add_flow.lua");
    }
    co_return ids_of(flat, 0);
}

asio::awaitable<job_result> flow_producer::result(const flow_ids& job,
                                                  std::chrono::milliseconds timeout) {
    producer p(client_, job.queue, events_);
    co_return co_await p.result(job.id, timeout);
}

asio::awaitable<std::vector<child_result>>
flow_producer::group_results(const flow_ids& group, std::chrono::milliseconds timeout) {
    const job_result r = co_await result(group, timeout);
    const std::string what = "queue \"" + group.queue + "\": job " + group.id;
    if (r.ok()) {
        try {
            co_return detail::decode_group(r.value);
        } catch (const boost::system::system_error&) {
            throw_error(error::invalid_config, what + " is not a group's collector");
        }
    }
    // Failed (by a member) or cancelled: the members' outcomes are kept with its record.
    const queue_keys keys(group.queue);
    request req;
    req.push("HGET", keys.jobs, group.id);
    response<std::optional<std::string>> rec;
    co_await client_.exec(req, rec);
    if (!std::get<0>(rec).value())
        throw_error(error::unknown_job, what + ": removed, its members' results with it");
    const job j = detail::decode_record(group.queue, group.id, *std::get<0>(rec).value());
    if (!j.collects) throw_error(error::invalid_config, what + " is not a group's collector");
    std::vector<std::string> fields;
    for (std::size_t i = 1; i <= j.children; ++i)
        fields.push_back(group.id + ":" + std::to_string(i));
    request members;
    members.push("HMGET", keys.children, fields);
    response<std::vector<std::optional<std::string>>> held;
    co_await client_.exec(members, held);
    std::vector<child_result> out;
    for (const auto& v : std::get<0>(held).value())
        if (v) out.push_back(detail::decode_child(*v));
    co_return out;
}

} // namespace akv::queue
