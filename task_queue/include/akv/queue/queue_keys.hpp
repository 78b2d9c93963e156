// The keys of one queue, spelled in one place: "akvq:{<queue>}:<name>", the hash tag keeping
// them on one node of a cluster. Every Lua script is given `prefix` (KEYS[1]) and spells the
// same names after it (lua/lib.lua keys_of): renaming one means renaming it in both, and in the
// data already stored.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace akv::queue {

struct queue_keys {
    explicit queue_keys(std::string_view queue);

    std::string prefix;        // "akvq:{<queue>}:"
    std::string id;            // the last job id given
    std::string jobs;          // hash: id -> record
    std::string wait;          // list: ready jobs of priority 0
    std::string prio;          // sorted set: ready jobs of other priorities
    std::string delayed;       // sorted set: jobs by due time
    std::string active;        // sorted set: "<id>@<worker token>" by lease deadline
    std::string attempts;      // hash: id -> failed runs
    std::string failed;        // sorted set: failed and cancelled jobs by time
    std::string errors;        // hash: id -> last error
    std::string done;          // sorted set: completed jobs by result expiry
    std::string results;       // hash: id -> outcome
    std::string unique;        // hash: unique key -> pending job id
    std::string dedup;         // hash: "t:<key>" / "d:<key>" -> throttle / debounce (enqueue.lua)
    std::string dedup_until;   // sorted set: those fields by the end of their window
    std::string meta;          // hash: paused, rate_max, rate_window
    std::string rate;          // jobs claimed in the rate limit's window
    std::string marker;        // sorted set an idle worker blocks on
    std::string cancel;        // set: running jobs asked to stop
    std::string stats;         // hash: totals since the queue began
    std::string leader;        // the scheduler leader's token
    std::string periodic;      // hash: name -> periodic job
    std::string periodic_next; // hash: name -> its next run, ms
    std::string progress;      // hash: id -> the last progress text of a run
    std::string workers;       // hash: worker token -> its record (JSON), for live workers
    std::string workers_seen;  // sorted set: worker token by the deadline of its next heartbeat
    std::string events;        // sharded pub/sub channel: "done <ids>", "cancel <id>", progress
    std::string journal;       // stream: the job events, durable (event_log.hpp)
    // Flows (flow.hpp; README "Workflows: the hand-off across slots"):
    std::string waiting_children; // sorted set: parents waiting for children, by time
    std::string children;         // hash: "<id>:p" -> children pending, "<id>:<i>" -> child i
    std::string outbox;           // stream: finished children's notices to their parents
    // Fair groups (job.hpp job_options::group; lua/lib.lua group_ready): each group's ready jobs
    // wait in "<prefix>g:<group>" and its rate window counts in "<prefix>grate:<group>".
    std::string groups;         // sorted set: groups with ready jobs, by their turn
    std::string groups_maxed;   // set: groups with ready jobs at their concurrency
    std::string groups_limited; // sorted set: groups with ready jobs, by when their rate lifts
    std::string groups_active;  // hash: group -> its running jobs
    std::string groups_limits;  // hash: group -> "<concurrency> <rate max> <rate window ms>"
    // A partitioned queue (partitioned.hpp): list of its partitions' queue names, appended
    // only. Not in all(): a partitioned queue is obliterated by partitioned_admin.
    std::string partitions;

    // The metrics hash of one minute (minutes since the epoch): "<prefix>m:<minute>".
    std::string metrics(std::int64_t minute) const;
    std::string group(std::string_view name) const;      // list: its ready jobs
    std::string group_rate(std::string_view name) const; // its claims in the rate window
    // Every key above but the channel: what obliterate deletes (with the metrics hashes).
    std::array<std::string_view, 34> all() const noexcept;
};

} // namespace akv::queue
