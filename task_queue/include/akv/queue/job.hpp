// A job of a task queue: what a producer asks for (job_options) and what a worker gets (job).
//
// Every key of queue "emails" carries the hash tag "{emails}" (akvq:{emails}:...), so a queue
// lives on one node of a cluster and every state move is one Lua call on that node.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace akv::queue {

enum class backoff_kind { fixed, exponential };

// The wait before retry k (k = 1 after the first failure): fixed `base`, or base * 2^(k-1)
// capped at `max`; with jitter, a uniform draw in [delay/2, delay] so retries of many jobs that
// failed together do not come back together.
struct backoff {
    backoff_kind kind = backoff_kind::exponential;
    std::chrono::milliseconds base{1000};
    std::chrono::milliseconds max{60000};
    bool jitter = true;
};

// Deduplication by a key within a window on the server's clock, beside unique_key (which holds
// while a job is pending, however long):
//   throttle: the first job with the key is added; others within `window` of it are not (enqueue
//             returns the first's id), so a burst costs one run;
//   debounce: the job waits `window` before it may run; another with the key while it waits
//             replaces its payload and options and waits `window` again, so only the last of a
//             burst runs, with its own payload. A stream of duplicates closer than `window`
//             apart keeps it waiting: that is what debounce means.
// Both are counted in the queue's stats (admin::counts: total_throttled, total_debounced).
enum class dedup_mode { none, throttle, debounce };

struct dedup {
    dedup_mode mode = dedup_mode::none;
    std::string key;
    std::chrono::milliseconds window{0};
};

inline constexpr int min_priority = -1000;
inline constexpr int max_priority = 1000;

struct job_options {
    std::chrono::milliseconds delay{0};                      // run no earlier than now + delay
    std::optional<std::chrono::system_clock::time_point> run_at; // wins over delay when set
    int priority = 0;          // higher runs sooner; [min_priority, max_priority]
    unsigned max_attempts = 3; // runs at most this many times, then the failed set
    struct backoff backoff;
    // While a job with this key is pending (waiting, delayed or running), enqueueing another
    // with the same key returns the pending job's id instead of adding one.
    std::string unique_key;
    struct dedup dedup; // not with unique_key; debounce not with delay or run_at
    std::chrono::milliseconds result_ttl{std::chrono::hours(1)}; // 0: no result is kept
    std::chrono::milliseconds timeout{0}; // a run longer than this fails (0: no limit)
    // A tenant, say. Workers take grouped jobs round-robin across groups, one group's job
    // after another's, within each group's concurrency and rate limits (admin.hpp
    // group_limits), so that one group's burst cannot starve the others. FIFO within a group:
    // not with priority. Ungrouped jobs are served before grouped ones (README "Fair groups").
    std::string group;
};

// What a failed child (failed for good, or cancelled) does to the parent waiting for it
// (flow.hpp): the parent fails at once (BullMQ's failParentOnFailure), or the child counts as
// finished and the parent runs once the others end (ignoreDependencyOnFailure).
enum class on_child_failure { fail, ignore };

// The parent a job of a flow reports to when it finishes for good.
struct job_parent {
    std::string queue;
    std::string id;
    std::size_t index = 0; // its place among the parent's children, from 1
    on_child_failure on_failure = on_child_failure::fail;
};

// What a worker's handler is given.
struct job {
    std::string queue;
    std::string id;
    std::string payload;
    job_options options;
    unsigned attempt = 1;            // 1 on the first run
    std::int64_t enqueued_ms = 0;    // producer's clock, ms since the epoch
    // A job of a flow (flow.hpp): the parent it reports to, and the children it waited for
    // (job_context::children_results() reads what they gave).
    std::optional<job_parent> parent;
    std::size_t children = 0;
    bool collects = false; // a group's collector: completes without running once they end
};

// waiting_children: a parent of a flow waiting for its children to finish (flow.hpp).
enum class job_state { waiting, delayed, active, completed, failed, unknown, waiting_children };
std::string_view to_string(job_state s) noexcept;

// What became of a job, as the producer awaits it.
struct job_result {
    enum class status { completed, failed, cancelled };
    status outcome = status::completed;
    std::string value; // the handler's result, or the last error
    bool ok() const noexcept { return outcome == status::completed; }
};

// A finished child of a flow, as its parent reads it (job_context::children_results()).
struct child_result {
    std::string queue;
    std::string id;
    std::optional<job_result> result; // nullopt: not finished (a parent retried by hand)
};

// The delay before the retry after `failures` failed runs (see backoff). `draw` in [0, 1).
std::chrono::milliseconds retry_delay(const backoff& b, unsigned failures, double draw) noexcept;

// Checks a queue name and options; throws system_error(invalid_config) naming what is wrong.
void validate_queue_name(std::string_view name);
void validate(const job_options& o);

namespace detail {
// The stored form of a job: a short text header that the rare Lua paths read (recovery,
// promotion, cancel), then the unique key and the payload bytes as they are.
// A job of a flow adds the flow text (flow_text()) after the unique key, and says so in the
// header's version ("2", one more length field); a grouped job adds its group after that
// ("3", two more length fields: flow, group); other records are as before ("1").
std::string encode_record(const job_options& o, std::int64_t enqueued_ms,
                          std::chrono::milliseconds delay, std::string_view payload,
                          std::string_view flow = {});
// The flow text of a job: "<kind><children>|<policy>[<parent queue> <parent id> <index>]",
// kind '-' (no children), 'c' (children, then its handler) or 'g' (a group's collector),
// policy '-' (no parent), 'f' or 'i' (on_child_failure). Empty for a job outside any flow.
std::string flow_text(const job& j);
// A child's outcome as its parent keeps it: "<queue> <id> <stored outcome>", or "<queue> <id>"
// while pending. Throws system_error(bad_job) for anything else.
child_result decode_child(std::string_view stored);
// A group's result (lua/apply.lua): the members' kept outcomes, each "<length>:<text>".
std::vector<child_result> decode_group(std::string_view text);
// Throws system_error(error::bad_job) naming what is malformed.
job decode_record(std::string_view queue, std::string_view id, std::string_view record);
// A stored outcome ("c", "f" or "x" then the text); nullopt for anything else.
std::optional<job_result> decode_result(std::string_view stored);
// 64 random bits in hex: a worker's or scheduler's name in its leases and leader key.
std::string random_token();
// This machine's clock, ms since the epoch.
std::int64_t wall_ms();
} // namespace detail

} // namespace akv::queue
