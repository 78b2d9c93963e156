// A Celery worker in C++: runs handlers, registered by task name, on the task messages that
// Python's Celery (5.x, message protocol 2, JSON serializer) sends through kombu's Redis
// transport, and keeps their outcomes in Celery's Redis result backend, so that the Python
// side's AsyncResult.get() returns them (or raises the task's exception). Python workers and
// this one can consume the same queues.
//
//  * delivery: messages are taken from the queue's lists, highest priority first (kombu's
//    "<queue>\x06\x16<3|6|9>"), and recorded in kombu's `unacked` hash and `unacked_index` set
//    in the same Lua call; acked (removed from both) once the outcome is stored. A message left
//    there past visibility_timeout is put back on its queue, by this worker or any Python one,
//    so a task whose worker died runs again. Messages held here (running, waiting for their
//    eta) have their delivery time refreshed every visibility_timeout / 3, so a long task or a
//    far eta is not redelivered while its worker lives (Celery's own worker does not do that).
//  * eta/countdown: held in memory until due; expires: a task past it is not run but stored as
//    REVOKED ("expired"), as Celery does; time_limit / soft_time_limit: the handler is
//    cancelled at the first one and the task fails with TimeLimitExceeded (or
//    SoftTimeLimitExceeded); retries: a handler calls task_context::retry(), the message goes
//    again with retries + 1 and an eta, the state is RETRY meanwhile; revokes: revoke() or the
//    Python side's app.control.revoke(id) (heard on the pidbox channel when a subscriber is
//    given) keep the task from running, terminate=True cancels it while it runs.
//  * bad input (no delivery tag, not JSON, a pickled body, protocol 1, an unknown task name,
//    a bad date) is set aside in the dead-letter list (worker_options::dead_letters) as JSON
//    {"reason", "queue", "message", "at"}, counted in stats().dead_lettered, and acked; when
//    the task id can be read, the task also fails (NotRegistered, ContentDisallowed) so that a
//    caller waiting on it hears why. The worker goes on.
//  * events (send_events): task-received/started/succeeded/failed/retried/revoked and
//    worker-online/heartbeat/offline on the "celeryev" fanout, so Flower and `celery events`
//    see this worker.
//
// kombu's keys are not hash-tagged: like kombu, this runs on one server (or behind Sentinel),
// not on a Redis Cluster.
#pragma once

#include <akv/queue/celery_message.hpp>

#include <akv/client.hpp>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <vector>

namespace akv::messaging {
class subscriber;
class subscription;
} // namespace akv::messaging

namespace akv::queue::celery {

// Thrown by a handler to fail its task with a Python exception of this type: the caller's
// AsyncResult.get() raises `module.type(message)`. Any other exception fails it as
// builtins.RuntimeError with its what().
struct task_error : std::runtime_error {
    task_error(std::string type, std::string message, std::string module = "builtins")
        : std::runtime_error(std::move(message))
        , type(std::move(type))
        , module(std::move(module)) {}
    std::string type;
    std::string module;
};

// Thrown by task_context::retry(): the worker sends the task again.
struct retry_request : std::exception {
    std::chrono::milliseconds countdown{0};
    std::string reason;
    const char* what() const noexcept override { return "celery: retry requested"; }
};

class worker;

// Handed to the handler with its task.
class task_context {
public:
    const task_message& message() const noexcept { return message_; }
    const boost::json::array& args() const noexcept { return message_.args; }
    const boost::json::object& kwargs() const noexcept { return message_.kwargs; }
    // Celery's self.retry(countdown=...): ends the run (throws retry_request) and sends the task
    // again. Past the task's max_retries the task fails with MaxRetriesExceededError instead.
    [[noreturn]] void retry(std::chrono::milliseconds countdown, std::string reason = {}) const;

    explicit task_context(const task_message& m)
        : message_(m) {}

private:
    const task_message& message_;
};

// Returns the task's result (any JSON); throws to fail it.
using task_handler = std::function<asio::awaitable<boost::json::value>(task_context&)>;

struct worker_options {
    std::vector<std::string> queues{"celery"};
    std::size_t concurrency = 16; // handlers at once
    std::size_t prefetch = 64;    // messages taken ahead of free handlers
    std::size_t max_batch = 64;   // messages per take call
    // Celery's broker_transport_options["visibility_timeout"]: a message delivered this long
    // ago and not acked is put back on its queue. Every worker of the queues should agree.
    std::chrono::milliseconds visibility_timeout{3600000};
    // How often this worker looks for such messages (kombu: about every 10 s).
    std::chrono::milliseconds restore_interval{10000};
    std::chrono::milliseconds idle_wait{1000}; // longest single BRPOP
    std::chrono::milliseconds shutdown_grace{10000};
    std::chrono::seconds result_expires{86400}; // Celery's result_expires
    int max_retries = 3;                        // per task unless add_task says otherwise
    std::string dead_letters = "akv:celery:dead-letters";
    // Celery's node name, "<name>@<host>": empty makes "akv-<pid>@<hostname>".
    std::string hostname;
    bool send_events = false;                  // celery worker -E
    std::chrono::milliseconds heartbeat{2000}; // worker-heartbeat events (Celery: 2 s)
};

struct worker_stats {
    std::uint64_t received = 0;
    std::uint64_t succeeded = 0;
    std::uint64_t failed = 0; // handler threw, time limit, retries exhausted
    std::uint64_t retried = 0;
    std::uint64_t revoked = 0; // revoked or expired: not run
    std::uint64_t dead_lettered = 0;
    std::uint64_t restored = 0;    // messages past the visibility timeout this worker put back
    std::uint64_t handed_back = 0; // not run at shutdown: put back at once
    std::uint64_t errors = 0;      // Redis calls that failed and were retried
};

class worker {
public:
    // `control` (optional): the client's pub/sub hub, to hear the Python side's revokes on
    // Celery's pidbox channel ("/<db>.celery.pidbox").
    worker(client& c, worker_options options = {}, messaging::subscriber* control = nullptr);
    ~worker();
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    // Before run(). `max_retries` < 0: worker_options::max_retries.
    void add_task(std::string name, task_handler handler, int max_retries = -1);

    // Runs until stop() has drained: tasks not started are put back on their queues, running
    // ones get shutdown_grace, then are cancelled and put back. Throws only for errors it
    // cannot go on after.
    asio::awaitable<void> run();
    void stop();

    // Celery's revoke: the task will not run here (kept for 3 hours, the newest 50,000 ids, as
    // Celery keeps them); `terminate` also cancels it if it runs now.
    void revoke(const std::string& task_id, bool terminate = false);

    const worker_stats& stats() const noexcept { return stats_; }
    const std::string& hostname() const noexcept { return options_.hostname; }
    std::size_t running() const noexcept { return running_count_; }

private:
    struct registered {
        task_handler handler;
        int max_retries;
    };
    struct delivery; // a message taken, until acked
    struct outcome;  // what the next flush writes

    asio::awaitable<void> pump();
    asio::awaitable<void> flusher();
    asio::awaitable<void> refresher();
    asio::awaitable<void> restorer();
    asio::awaitable<void> control_listener();
    asio::awaitable<void> heartbeats();
    asio::awaitable<void> run_task(std::shared_ptr<delivery> d);
    asio::awaitable<void> hold(std::shared_ptr<delivery> d);
    void accept(std::string list, std::string raw, std::string tag);
    void start_ready();
    void finish(std::shared_ptr<delivery> d, outcome o);
    void dead_letter(const std::string& list, const std::string& raw, const std::string& tag,
                     const std::string& reason, const std::string& task_id,
                     const exception_info* exc);
    void event(std::string_view type, boost::json::object fields);
    std::vector<std::pair<std::string, std::string>> event_messages_; // channel, envelope
    bool is_revoked(const std::string& id);
    std::string new_uuid();
    std::vector<std::string> list_keys() const;
    asio::awaitable<void> helper(asio::awaitable<void> body);
    void hand_back(std::shared_ptr<delivery> d);

    client& client_;
    worker_options options_;
    messaging::subscriber* control_;
    std::map<std::string, registered> tasks_;
    std::mt19937_64 random_;
    std::string pidbox_channel_, event_prefix_;

    std::unordered_map<std::string, std::shared_ptr<delivery>> held_; // by delivery tag
    std::deque<std::shared_ptr<delivery>> ready_; // due, waiting for a free handler
    std::size_t taken_ = 0;                       // held here, not waiting for an eta
    std::size_t running_count_ = 0;
    std::vector<outcome> pending_; // for the next flush
    std::map<std::string, clock::time_point> revoked_;
    std::deque<std::string> revoked_order_;
    std::uint64_t clock_ = 0; // Lamport clock of the events

    std::shared_ptr<messaging::subscription> control_sub_;
    asio::steady_timer pump_wake_, flush_wake_, drain_wake_;
    asio::steady_timer refresh_timer_, restore_timer_, heartbeat_timer_;
    std::size_t helpers_ = 0; // flusher, refresher, ... still running
    bool flushing_ = false;
    bool stopping_ = false;
    bool drained_ = false;
    std::size_t tasks_alive_ = 0; // run_task / hold coroutines not yet ended
    worker_stats stats_;
};

} // namespace akv::queue::celery
