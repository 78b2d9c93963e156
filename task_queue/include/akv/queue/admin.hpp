// Looking into a queue and acting on it: counts, listings, live workers, retry, remove, cancel,
// pause, rate limit, metrics. What `akv queue ...` uses.
#pragma once

#include <akv/queue/job.hpp>
#include <akv/queue/queue_keys.hpp>

#include <akv/client.hpp>

#include <vector>

namespace akv::queue {

struct state_counts {
    std::size_t waiting = 0, delayed = 0, active = 0, failed = 0, completed = 0;
    std::size_t waiting_children = 0; // parents of flows waiting for their children
    // Totals since the queue began (the stats hash).
    std::uint64_t total_completed = 0, total_failed = 0, total_retried = 0,
                  total_recovered = 0, total_cancelled = 0;
    // Jobs not added by a throttle, and jobs replaced by a debounce (job.hpp dedup).
    std::uint64_t total_throttled = 0, total_debounced = 0;
    bool paused = false;
    std::size_t workers = 0; // live: their last heartbeat within its expiry
    // Fair groups with ready or running jobs (their ready jobs are counted in `waiting`).
    std::size_t groups = 0;
};

// Limits of a fair group (job_options::group): 0 is no limit. The queue's pause and rate
// limit apply on top.
struct group_limits {
    std::size_t concurrency = 0; // its jobs running at once, over every worker
    std::uint64_t rate_max = 0;  // its jobs claimed per rate_window
    std::chrono::milliseconds rate_window{1000};
};

// ready: in the round robin; at_concurrency / rate_limited: held until a job of it ends / its
// window ends; idle: nothing ready (its running jobs keep it listed).
enum class group_state { ready, at_concurrency, rate_limited, idle };

struct group_info {
    std::string name;
    std::size_t waiting = 0, active = 0;
    group_state state = group_state::idle;
    group_limits limits; // in force: its own, else the queue's defaults
    bool own_limits = false;
};

struct job_info {
    std::string id;
    job_state state = job_state::unknown;
    std::optional<queue::job> job;   // while its record exists
    unsigned failures = 0;
    std::string last_error;
    std::optional<job_result> result; // finished and kept
    // The last job_context::progress text of a run; empty: none. Kept while the job is
    // pending, running or failed; cleared when it completes or starts over.
    std::string progress;
    // A parent of a flow (while its record exists): each child, with its outcome once it ended.
    // The parent it reports to, if any, is job->parent.
    std::vector<child_result> children;
};

// A flow from one of its jobs down: each child as its own queue sees it.
struct flow_node {
    std::string queue;
    job_info info;
    std::vector<flow_node> children;
};

// A live worker as its last heartbeat described it (worker.hpp).
struct worker_info {
    std::string token; // its name in the leases of the jobs it runs
    std::string host;
    std::int64_t pid = 0;
    std::size_t concurrency = 0;
    std::size_t running = 0;                 // handlers running at the heartbeat
    std::uint64_t completed = 0, failed = 0; // runs since it started
    std::int64_t started_ms = 0;             // its own clock, ms since the epoch
    std::int64_t last_seen_ms = 0;           // the server's clock at the heartbeat
    std::chrono::milliseconds heartbeat{0};
    bool stopping = false; // stop() was called: it drains
};

struct minute_metrics {
    std::int64_t minute = 0; // minutes since the epoch (UTC)
    std::uint64_t processed = 0, failed = 0;
    // Enqueue-to-completion latency, ms, from a histogram (bucket upper bounds).
    double p50_ms = 0, p90_ms = 0, p99_ms = 0;
};

enum class cancel_outcome { cancelled, running, finished, unknown };

class admin {
public:
    admin(client& c, std::string queue);

    // False for a queue nothing was ever enqueued in, paused or scheduled (a typo, say).
    asio::awaitable<bool> exists();
    // Throws system_error(unknown_queue) naming the queue when !exists().
    asio::awaitable<void> require_exists();
    asio::awaitable<state_counts> counts();
    // Ids of up to `limit` jobs in `state` from `offset`: waiting in claim order (fair groups'
    // jobs after the others, group by group), delayed by due
    // time, active by lease deadline, failed and completed newest first.
    asio::awaitable<std::vector<std::string>> list(job_state state, std::size_t offset,
                                                   std::size_t limit);
    asio::awaitable<job_info> get(std::string id);
    // The flow below a job (flow.hpp), each child looked up in its queue; its parent, if any,
    // is info.job->parent. A completed parent no longer lists its children.
    asio::awaitable<flow_node> flow(std::string id);
    // The workers alive now, by token; those that missed 3 heartbeats are dropped first.
    asio::awaitable<std::vector<worker_info>> workers();
    // A failed or cancelled job runs again (attempts from zero). error::unknown_job if there is
    // no such job, invalid_config if it is not failed.
    asio::awaitable<void> retry(std::string id);
    // Removes a job not running (error::job_active if it runs: cancel it instead). A child of a
    // flow that had not finished no longer holds its parent back; a parent's pending children
    // are removed with it (a running one is cancelled).
    asio::awaitable<void> remove(std::string id);
    // A job of a flow cancelled before it finished counts as failed for its parent; a parent's
    // pending children are cancelled with it.
    asio::awaitable<cancel_outcome> cancel(std::string id, std::string reason);
    asio::awaitable<void> pause();
    asio::awaitable<void> resume();
    // At most `max_jobs` claimed per `window` (0: no limit).
    asio::awaitable<void> set_rate_limit(std::uint64_t max_jobs, std::chrono::milliseconds window);
    // Every group with ready or running jobs, the busiest first (at most `limit`).
    asio::awaitable<std::vector<group_info>> groups(std::size_t limit = 1000);
    // One group's limits (empty `group`: the default of every group without its own). Groups
    // held at a limit are looked at again at once.
    asio::awaitable<void> set_group_limits(std::string group, group_limits limits);
    // The group goes back to the defaults.
    asio::awaitable<void> clear_group_limits(std::string group);
    // Expired leases put back now (workers do it anyway); returns {recovered, failed}. Also
    // applies the notices for parents of flows left in the outbox (README "Workflows").
    asio::awaitable<std::pair<std::size_t, std::size_t>> recover_stalled();
    // The last `minutes` minutes, oldest first.
    asio::awaitable<std::vector<minute_metrics>> metrics(std::size_t minutes);
    // Deletes every key of the queue.
    asio::awaitable<void> obliterate();

private:
    // {groups, ready jobs in them}; each group into `out` when given.
    asio::awaitable<std::pair<std::size_t, std::size_t>> read_groups(std::vector<group_info>* out);
    asio::awaitable<void> list_grouped(std::vector<std::string>& ids, std::size_t want);

    client& client_;
    std::string queue_;
    queue_keys keys_;
};

namespace detail {
// Latency histogram: bucket index of `ms` and the upper bound of a bucket.
std::size_t latency_bucket(std::int64_t ms) noexcept;
double latency_bucket_bound(std::size_t bucket) noexcept;
inline constexpr std::size_t latency_buckets = 24;
} // namespace detail

} // namespace akv::queue
