// Enqueues jobs, alone or many in one round trip, and awaits their results.
#pragma once

#include <akv/queue/job.hpp>
#include <akv/queue/queue_keys.hpp>

#include <akv/client.hpp>

#include <boost/json/value.hpp>

#include <memory>
#include <span>
#include <vector>

namespace akv::messaging {
class subscriber;
}

namespace akv::queue {

struct new_job {
    std::string payload;
    job_options options;
};

class producer {
public:
    // `events` (optional) is the client's pub/sub hub: needed only to await results.
    // Throws system_error(invalid_config) for a bad queue name.
    producer(client& c, std::string queue, messaging::subscriber* events = nullptr);

    // The job's id (or the pending job's, for a unique key already taken). Concurrent calls
    // are coalesced: while one enqueue call is on the wire, the jobs of the others gather and
    // go together in the next one (like the connection's pipelining, one Lua call for many).
    // A producer is used from its client's executor.
    asio::awaitable<std::string> enqueue(std::string_view payload);
    asio::awaitable<std::string> enqueue(std::string_view payload, job_options options);
    // A payload holding NaN or Infinity is refused (error::type_mismatch, naming where), as
    // no JSON parser would read it back; nothing is enqueued.
    asio::awaitable<std::string> enqueue_json(const boost::json::value& payload,
                                              job_options options);
    // All in one Lua call (bulks beyond 5,000 jobs go in several); ids in the given order.
    asio::awaitable<std::vector<std::string>> enqueue_bulk(std::span<const new_job> jobs);

    // Waits for the job to finish (completed, failed for good, or cancelled) for at most
    // `timeout`: error::timeout then. A job unknown to the queue, or whose result expired or was
    // not kept (result_ttl 0), is error::unknown_job. Needs the `events` hub. A "done" lost
    // with the subscription (a reconnect, a failover) does not make it wait: once the hub has
    // subscribed again it looks at the stored result.
    asio::awaitable<job_result> result(std::string id, std::chrono::milliseconds timeout);

    const std::string& queue() const noexcept { return queue_; }

private:
    struct pending_add;
    asio::awaitable<std::optional<job_result>> stored_result(const std::string& id);
    asio::awaitable<void> send_pending();
    // enqueue_bulk without the option checks (done by the caller).
    asio::awaitable<std::vector<std::string>> send_bulk(std::span<const new_job> jobs);

    client& client_;
    std::string queue_;
    queue_keys keys_;
    messaging::subscriber* events_;
    std::vector<std::shared_ptr<pending_add>> pending_; // waiting for the next enqueue call
    bool sending_ = false;                              // an enqueue call is on the wire
};

} // namespace akv::queue
