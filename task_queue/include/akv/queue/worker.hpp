// Runs a handler on the jobs of one queue: `concurrency` coroutines at once in this process,
// with up to `prefetch` more jobs claimed ahead; any number of processes side by side.
// Delivery is at least once:
//
//  * claim: one Lua call claims a batch of ready jobs and leases each (lease_time); a renewer
//    extends the leases of running jobs every lease_time / 3, so a job whose worker died is
//    recovered (by any worker) within one lease_time and retried.
//  * ack: finished jobs are acked in batches, one Lua call per batch: while one call is in
//    flight the next batch gathers, so a busy worker needs few round trips per job.
//  * a handler that throws fails the run: retried after the job's backoff, or to the failed
//    set with its error once out of attempts. A run past the job's timeout is cancelled and
//    fails the same way. A job cancelled by admin::cancel stops where its handler awaits.
//  * stop(): no new claims; running handlers get shutdown_grace to finish, then are
//    cancelled and their jobs handed back (to the head of the line, no attempt counted).
//  * heartbeat: every `heartbeat` the worker writes its record (host, pid, token,
//    concurrency, running, counts) to the queue's registry of live workers, on a timer of its
//    own, never with a job; admin::workers() lists them. Drained, it removes the record; a
//    worker that dies is dropped once 3 heartbeats are missed.
//
// An idle worker blocks on the queue's marker key (BZPOPMIN, on a blocking-command
// connection) until a job arrives or the earliest delayed job falls due: no polling.
#pragma once

#include <akv/queue/admin.hpp>
#include <akv/queue/job.hpp>
#include <akv/queue/queue_keys.hpp>

#include <akv/client.hpp>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <vector>

namespace akv::messaging {
class subscriber;
}

namespace akv::queue {

namespace detail {
struct notice;      // src/handoff.hpp
class claim_budget; // src/claim_budget.hpp
} // namespace detail

class worker;

// Handed to the handler with its job.
class job_context {
public:
    const queue::job& job() const noexcept { return job_; }
    // True once the worker learned that this run's lease was lost: it stalled past lease_time
    // and the job was recovered, so it runs again (elsewhere, or here as a new run). This run's
    // result will not be kept; a long handler may check and stop early.
    bool lease_lost() const noexcept { return lost_ && *lost_; }
    // Publishes a progress event ("progress <id> <text>") on the queue's event channel and
    // keeps `text` as the job's progress (admin::get), in one round trip. Throws
    // system_error(error::lease_lost) once the lease is lost: the job is no longer this run's.
    asio::awaitable<void> progress(std::string_view text);
    // A parent of a flow (flow.hpp): its children, in the order the flow gave them, each with
    // its outcome (a failed one too, when the flow ignores failures). Throws
    // system_error(invalid_config) for a job without children.
    asio::awaitable<std::vector<child_result>> children_results();

    // `lost`: the worker's flag for this run (nullptr: never lost). `progressed`: set once
    // progress() kept a text, for the worker to clear when the job completes.
    job_context(worker& w, queue::job j, const bool* lost = nullptr, bool* progressed = nullptr)
        : worker_(w)
        , job_(std::move(j))
        , lost_(lost)
        , progressed_(progressed) {}

private:
    worker& worker_;
    queue::job job_;
    const bool* lost_;
    bool* progressed_;
};

// Returns the job's result (kept result_ttl for the producer); throws to fail the run.
using handler = std::function<asio::awaitable<std::string>(job_context&)>;

struct worker_options {
    std::size_t concurrency = 16;
    std::chrono::milliseconds lease_time{30000};
    std::chrono::milliseconds shutdown_grace{10000};
    std::chrono::milliseconds idle_wait{5000}; // longest single block on the marker
    std::size_t max_batch = 128;               // jobs per claim call
    // Jobs claimed ahead of free handlers (leased, waiting in this process): a handler that
    // finishes starts the next at once, and acks and claims go in larger batches. Celery's
    // prefetch; 0 claims only for free handlers (fairest when jobs are long).
    std::size_t prefetch = 16;
    // Tests only: called after an ack that left notices for parents of a flow in the outbox,
    // before they are applied (the tests kill the process here).
    std::function<void()> before_hand_off;
    // How often the worker's record in the registry of live workers is written; it is dropped
    // after 3 missed ones. One script call per heartbeat, whatever the load.
    std::chrono::milliseconds heartbeat{5000};
};

struct worker_stats {
    std::uint64_t completed = 0;
    std::uint64_t failed = 0;      // runs that threw, timed out or were cancelled
    std::uint64_t lost_leases = 0; // runs whose job had been recovered: their acks not kept
    std::uint64_t handed_back = 0;
    std::uint64_t claims = 0;      // claim calls that returned jobs
    std::uint64_t recovered = 0;   // expired leases this worker put back
    std::uint64_t errors = 0;      // calls that failed (connection, server) and were retried
    std::uint64_t handed_off = 0;  // ends of flow jobs applied to their parents (flow.hpp)
};

class worker {
public:
    // `events` (optional): the client's pub/sub hub, to learn of cancellations at once
    // (without it, at the next lease renewal).
    worker(client& c, std::string queue, handler h, worker_options options = {},
           messaging::subscriber* events = nullptr);
    ~worker();
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    // Processes jobs until stop() has drained; throws only for errors it cannot go on after.
    asio::awaitable<void> run();
    void stop();

    const worker_stats& stats() const noexcept { return stats_; }
    std::size_t running() const noexcept { return started_; }
    const std::string& token() const noexcept { return token_; }
    const std::string& queue() const noexcept { return queue_; }

private:
    friend class job_context;
    // A partitioned queue's worker runs one of these per partition, sharing one budget.
    friend class partitioned_worker;
    friend class detail::claim_budget;
    // How a run ended: completed goes to complete.lua, the others to retry.lua.
    enum class run_outcome { completed, retry, failed, cancelled };
    // Why a run's cancellation was emitted.
    enum class cancel_reason { none, cancelled, shutdown, lease_lost };
    struct running_job {
        queue::job job;
        asio::cancellation_signal cancel;
        cancel_reason cancelled_for = cancel_reason::none;
        bool lost = false;
        bool started = false;    // false while prefetched
        bool progressed = false; // progress() kept a text: cleared when it completes
    };
    struct finished {
        std::string id;
        run_outcome outcome = run_outcome::completed;
        std::string value;                  // result or error
        std::chrono::milliseconds delay{0}; // run_outcome::retry: the wait before the next run
        job_options options;
        std::int64_t enqueued_ms = 0;
        bool leftovers = false; // attempts, last error or progress to clear
        std::string flow;       // the job's flow text (job.hpp flow_text), '' outside one
        // retry.lua's delay argument for this outcome.
        std::int64_t retry_arg() const noexcept;
    };
    // Completions counted since metrics last went to Redis (see flush).
    struct pending_metrics {
        std::uint64_t completed = 0;
        std::array<std::uint64_t, detail::latency_buckets> histogram{};
        std::chrono::steady_clock::time_point sent = std::chrono::steady_clock::now();
    };

    asio::awaitable<void> pump();
    asio::awaitable<void> run_job(std::shared_ptr<running_job> rj);
    asio::awaitable<void> waker();
    asio::awaitable<void> renewer();
    asio::awaitable<void> listen();
    asio::awaitable<void> hand_off(); // notices of finished flow jobs to their parents
    asio::awaitable<void> grace();
    asio::awaitable<void> heartbeat();
    std::string record() const; // this worker's entry in the registry (JSON)
    asio::awaitable<std::tuple<boost::system::error_code>> stop_requested();
    asio::awaitable<void> flush(const std::vector<finished>& batch,
                                const std::vector<std::string>& back, std::size_t want,
                                bool send_metrics);
    void kick();
    void start_ready(); // starts prefetched jobs while handlers are free
    bool start_next();  // starts the next prefetched job; false if there is none
    void cancel_running(const std::string& id, cancel_reason why);

    client& client_;
    std::string queue_;
    queue_keys keys_;
    handler handler_;
    worker_options options_;
    messaging::subscriber* events_;
    std::string token_;

    std::map<std::string, std::shared_ptr<running_job>> running_; // every job leased here
    std::deque<std::shared_ptr<running_job>> queued_;              // prefetched, not started
    std::size_t started_ = 0;                                      // handlers running
    std::vector<finished> done_;       // outcomes waiting for the next flush
    std::vector<std::string> handback_; // jobs given back at shutdown, not yet flushed
    std::vector<detail::notice> notices_; // for parents of flows, not yet applied
    asio::steady_timer wake_;         // the pump's: work to do
    asio::steady_timer idle_;         // the waker's: block on the marker now
    asio::steady_timer stop_signal_;  // expires once stop() is called
    asio::steady_timer renew_timer_;
    asio::steady_timer hand_off_wake_; // notices_ got some, or the pump drained
    asio::steady_timer heartbeat_timer_;
    asio::steady_timer* grace_timer_ = nullptr;
    std::int64_t wake_at_ms_ = -1;    // server ms of the next delayed job / rate window
    std::int64_t server_now_ms_ = 0;  // the server's clock at the last claim...
    std::chrono::steady_clock::time_point server_now_at_; // ...and ours then
    bool starved_ = false;            // the last claim found nothing
    bool stopping_ = false;
    bool drained_ = false;            // the pump is done: everything else ends
    std::int64_t started_ms_ = 0;     // when run() began, this machine's clock
    worker_stats stats_;
    pending_metrics metrics_;
    // Partitioned (partitioned.hpp): the budget this worker shares with the other partitions'
    // workers, which decides its claims and handler starts; null for a queue of its own.
    detail::claim_budget* budget_ = nullptr;
    std::size_t claiming_ = 0; // jobs asked for by the claim in flight
    bool failing_ = false;     // the last flush failed: Redis is away for this partition
};

} // namespace akv::queue
