// Periodic jobs (a fixed interval or a cron expression) and the on-time promotion of delayed
// jobs, for one queue. Any number of processes may run a scheduler: one at a time is leader
// (a key taken with SET NX PX and renewed); the others wait to take over when it stops
// renewing. Periodic definitions and their next run time live in Redis, so a new leader
// carries on where the last stopped; a run fires only once however many leaders overlap
// (compare-and-set of its next run time), and is skipped while its previous run is pending.
#pragma once

#include <akv/queue/cron.hpp>
#include <akv/queue/job.hpp>
#include <akv/queue/queue_keys.hpp>

#include <akv/client.hpp>

#include <boost/asio/steady_timer.hpp>

#include <memory>

namespace akv::queue {

struct periodic_job {
    std::string name;
    std::chrono::milliseconds every{0}; // either this
    std::string cron;                   // or this (5 or 6 fields, UTC)
    std::string payload;
    job_options options; // unique_key is set to "periodic:<name>"
};

struct scheduler_options {
    std::chrono::milliseconds leader_ttl{5000};
    std::chrono::milliseconds max_sleep{1000}; // longest wait before looking again
};

class scheduler {
public:
    scheduler(client& c, std::string queue, scheduler_options options = {});
    ~scheduler();

    // Adds or replaces a periodic job; its first run is the next one from now.
    // Throws system_error(invalid_config) for a bad definition (names the cron field).
    asio::awaitable<void> add(periodic_job p);
    asio::awaitable<void> remove(std::string name);
    asio::awaitable<std::vector<std::string>> names();

    // Competes for leadership and, while leader, promotes delayed jobs at their due time and
    // fires periodic jobs; until stop().
    asio::awaitable<void> run();
    void stop();

    bool leader() const noexcept { return leader_; }
    std::uint64_t fired() const noexcept { return fired_; }
    std::uint64_t promoted() const noexcept { return promoted_; }

private:
    asio::awaitable<bool> hold_leadership();
    asio::awaitable<std::int64_t> fire_due(std::int64_t now_ms); // next due periodic, -1 none

    client& client_;
    std::string queue_;
    queue_keys keys_;
    scheduler_options options_;
    std::string token_;
    asio::steady_timer sleep_;
    bool leader_ = false;
    bool stopping_ = false;
    std::uint64_t fired_ = 0;
    std::uint64_t promoted_ = 0;
};

} // namespace akv::queue
