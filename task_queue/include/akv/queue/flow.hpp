// Flows (BullMQ's FlowProducer) and Celery's canvas: jobs that wait for other jobs, which may
// live in other queues, hence on other nodes of a cluster.
//
// A parent waits in the state waiting-children until each of its children finished; then it
// runs like any job, and its handler reads what they gave (job_context::children_results()).
// A child may have children of its own. A child that fails for good (out of attempts, or
// cancelled) fails its parent at once, or, with on_child_failure::ignore, counts as finished.
//
//   akv::queue::flow_producer flows(redis, &hub);
//   akv::queue::flow_job report{.queue = "reports", .payload = "weekly"};
//   report.children = {{.queue = "fetch", .payload = "eu"}, {.queue = "fetch", .payload = "us"}};
//   const akv::queue::flow_ids ids = co_await flows.add(report);
//   auto r = co_await flows.result(ids, 30s);            // the report's result
//
// The canvas is built from the same pieces: chain (each step a parent of the step before, so
// it reads that step's result), chord (a callback whose children are the group), and group (a
// collector that completes without a handler once its members end; group_results() reads
// them). How a child's end reaches a parent in another slot, without being lost or applied
// twice when a process dies in between: task_queue/README.md, "Workflows".
#pragma once

#include <akv/queue/job.hpp>

#include <akv/client.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace akv::messaging {
class subscriber;
}

namespace akv::queue {

// One job of a flow, with the jobs it waits for.
struct flow_job {
    std::string queue;
    std::string payload;
    job_options options; // no unique_key or dedup in a flow; no delay for a parent
    // What this job's failure does to its parent.
    on_child_failure on_failure = on_child_failure::fail;
    std::vector<flow_job> children;
    bool collects = false; // a group's collector (group()): no handler runs
};

// Where the jobs of an added flow went, in the shape of the flow.
struct flow_ids {
    std::string queue;
    std::string id;
    std::vector<flow_ids> children;
};

// A flow deeper than this, or with more jobs, or a parent with more children, is refused
// (error::invalid_config) before anything is added.
inline constexpr std::size_t max_flow_depth = 32;
inline constexpr std::size_t max_flow_jobs = 100000;
inline constexpr std::size_t max_flow_children = 5000;

// Celery's canvas. chain: steps[0] runs first, each next step once the one before completed,
// reading its result as its only child's (a step's own children run beside the step before
// it). group: the jobs run in parallel; a collector in `queue` completes once they all ended,
// its result their results in order (group_results). chord: the callback runs once the jobs of
// `header` all completed, and reads their results in order.
flow_job chain(std::vector<flow_job> steps);
flow_job group(std::string queue, std::vector<flow_job> jobs);
flow_job chord(std::vector<flow_job> header, flow_job callback);

class flow_producer {
public:
    // `events` (optional) is the client's pub/sub hub: needed only to await results.
    explicit flow_producer(client& c, messaging::subscriber* events = nullptr);

    // Adds every job of the flow, from the root down, and returns their ids. Throws
    // system_error(invalid_config) naming the job at fault (such as "flow.children[2].queue")
    // for a bad queue name or options, a flow too deep or too large: nothing is added then.
    // Added in steps across slots: a failure midway can leave a parent waiting for children
    // never added (admin::cancel or remove clear it), never a child without its parent.
    asio::awaitable<flow_ids> add(const flow_job& root);

    // The outcome of one job of a flow (producer::result in its queue).
    asio::awaitable<job_result> result(const flow_ids& job, std::chrono::milliseconds timeout);
    // A group's members' outcomes in order, once the group ended: completed, or failed by a
    // member (failed members say so; members still running are nullopt). error::invalid_config
    // for a job that is not a group's collector.
    asio::awaitable<std::vector<child_result>> group_results(const flow_ids& group,
                                                             std::chrono::milliseconds timeout);

private:
    client& client_;
    messaging::subscriber* events_;
};

} // namespace akv::queue
