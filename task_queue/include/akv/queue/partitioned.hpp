// A partitioned queue: one logical queue spread over N ordinary queues (its partitions), each
// with a hash tag of its own, so that on a cluster they live on different masters and share
// the load. Producers place jobs by key (the jobs of a key are claimed in the order they were
// added) or round robin; a worker claims across the partitions with one concurrency budget,
// taking turns; partitions can be added later without losing a job.
//
//   akv::queue::partitioning three;
//   three.partitions = 3;
//   akv::queue::partitioned_producer p(redis, "emails", three);
//   const std::string id = co_await p.enqueue(payload, options, customer_id); // "1:42"
//   akv::queue::partitioned_worker w(redis, "emails", handler, worker_options, three);
//   co_await w.run();
//
// The list of partitions is stored in Redis (akvq:{emails}:partitions), written once by
// whoever opens the queue first, appended to by partitioned_admin::add_partitions, never
// rewritten: it is the source of truth. Opened with another count, a producer, worker or admin
// fails with error::partition_mismatch naming both counts and changes nothing; partitions = 0
// follows the stored count. Job ids are "<partition index>:<id in that partition>". What each
// queue feature means across partitions: task_queue/README.md, "Partitioned queues".
#pragma once

#include <akv/queue/admin.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/worker.hpp>

#include <akv/client.hpp>

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace akv::queue {

namespace detail {
class claim_budget; // src/claim_budget.hpp
}

// More than this many partitions is refused (error::invalid_config).
inline constexpr std::size_t max_partitions = 1024;

struct partitioning {
    // The queue's partition count: it creates the queue with that many when it has none, and
    // must equal the stored count otherwise. 0: the stored count (error::unknown_queue if the
    // queue has none).
    std::size_t partitions = 0;
    // How often a producer (on its next enqueue) and a worker look at the stored list again,
    // to use partitions added since.
    std::chrono::milliseconds refresh{1000};
};

// A job for partitioned_producer::enqueue_bulk.
struct partitioned_job {
    std::string payload;
    job_options options;
    std::string key; // placement, as enqueue's `key`
};

// "<partition>:<id>", the id a partitioned queue gives its jobs.
std::string partitioned_id(std::size_t partition, std::string_view id);
struct partition_job_id {
    std::size_t partition = 0;
    std::string id; // in the partition's own queue
};
// nullopt unless `id` is "<partition>:<id>" with both parts decimal.
std::optional<partition_job_id> parse_partitioned_id(std::string_view id);
// The partition a key places its jobs in, of `partitions`: jump consistent hashing of the
// key's 64-bit FNV-1a, so adding partitions moves a key only to a new partition (about 1 key
// in N+1 when going from N to N+1), never between old ones. Stable across processes and
// versions: part of the stored format.
std::size_t partition_for_key(std::string_view key, std::size_t partitions) noexcept;
// The index of a partition from its queue's name ("emails~2" or "emails~2.7" -> 2), as a
// handler sees it in job::queue; nullopt for a queue not named as a partition.
std::optional<std::size_t> partition_of(std::string_view partition_queue) noexcept;

class partitioned_producer {
public:
    // `events` (optional): the client's pub/sub hub, needed only to await results.
    // Throws system_error(invalid_config) for a bad queue name or partition count.
    partitioned_producer(client& c, std::string queue, partitioning p = {},
                         messaging::subscriber* events = nullptr);
    ~partitioned_producer();

    // Reads the stored list, creating it when the queue has none (enqueue does it first
    // otherwise): error::partition_mismatch if the counts differ, error::unknown_queue for
    // partitions = 0 and no list, error::invalid_config for a plain queue of that name.
    asio::awaitable<void> open();
    // The job's id, "<partition>:<id>". `key`: jobs with the same key go to the same
    // partition while the count is unchanged. Without one, a job of a fair group is placed by
    // its group (so the group's round robin turn and limits hold for the queue), else one with
    // a unique_key or a dedup key by that key (so those hold across partitions); any other
    // goes round robin.
    // (Overloads, not default arguments: g++ 12 mishandles those on coroutines.)
    asio::awaitable<std::string> enqueue(std::string_view payload);
    asio::awaitable<std::string> enqueue(std::string_view payload, job_options options);
    asio::awaitable<std::string> enqueue(std::string_view payload, job_options options,
                                         std::string_view key);
    // Split by partition, one enqueue_bulk per partition, all at once; ids in the given order.
    asio::awaitable<std::vector<std::string>> enqueue_bulk(std::span<const partitioned_job> jobs);
    // producer::result for an id this queue gave.
    asio::awaitable<job_result> result(std::string id, std::chrono::milliseconds timeout);

    const std::string& queue() const noexcept { return queue_; }
    // The partitions' queue names as last read (empty before the first call).
    const std::vector<std::string>& partitions() const noexcept { return names_; }

private:
    asio::awaitable<void> look(); // opens, or reads the list again once `refresh` passed
    void adopt(std::vector<std::string> names);
    std::size_t place(std::string_view key, const job_options& o);

    client& client_;
    std::string queue_;
    partitioning partitioning_;
    messaging::subscriber* events_;
    std::vector<std::string> names_;
    std::vector<std::unique_ptr<producer>> producers_; // one per partition
    std::uint64_t next_;                               // round robin
    std::chrono::steady_clock::time_point next_look_{};
    bool looking_ = false;
    asio::steady_timer looked_; // wakes the calls waiting for the first look
};

// One worker over every partition: one concurrency (and prefetch) budget for all. The
// partitions take turns for free slots, each up to an even share of the budget while others
// have jobs; a partition with none, paused, rate limited or unreachable leaves its share to the
// others. An idle worker blocks on each partition's marker, one pooled connection each
// (config::pool_size per server or node must cover them). Handlers see the partition's queue
// and id (job::queue "emails~2", job::id "42": partitioned_id(partition_of(queue), id)).
class partitioned_worker {
public:
    partitioned_worker(client& c, std::string queue, handler h, worker_options options = {},
                       partitioning p = {}, messaging::subscriber* events = nullptr);
    ~partitioned_worker();
    partitioned_worker(const partitioned_worker&) = delete;
    partitioned_worker& operator=(const partitioned_worker&) = delete;

    // Opens the queue as partitioned_producer::open does (throws its errors), then processes
    // jobs of every partition, and of partitions added meanwhile, until stop() has drained.
    asio::awaitable<void> run();
    void stop();

    worker_stats stats() const; // summed over the partitions
    std::size_t running() const noexcept;
    // Its name in leases and in each partition's registry of live workers.
    const std::string& token() const noexcept { return token_; }
    const std::string& queue() const noexcept { return queue_; }
    std::vector<std::string> partitions() const; // the partitions served now

private:
    std::unique_ptr<worker> make_worker(const std::string& partition);
    void serve(std::unique_ptr<worker> w);
    asio::awaitable<void> follow(); // partitions added while it runs

    client& client_;
    std::string queue_;
    handler handler_;
    worker_options options_;
    partitioning partitioning_;
    messaging::subscriber* events_;
    std::string token_;
    std::unique_ptr<detail::claim_budget> budget_;
    std::vector<std::unique_ptr<worker>> workers_; // one per partition, in partition order
    std::size_t live_ = 0;                         // their run()s not yet returned
    std::exception_ptr failure_;
    bool stopping_ = false;
    asio::steady_timer ended_; // a partition's run() returned
    asio::steady_timer look_;  // the next look at the stored list; cancelled by stop()
};

struct partition_counts {
    std::string name; // the partition's queue
    state_counts counts;
};

struct partitioned_counts {
    // Summed over the partitions; paused if any partition is; workers: distinct live workers.
    state_counts total;
    std::vector<partition_counts> partitions; // in partition order
};

// admin for a partitioned queue: what applies to one job goes to its partition (ids
// "<partition>:<id>"); what applies to the queue goes to every partition.
class partitioned_admin {
public:
    partitioned_admin(client& c, std::string queue);

    // Whether the queue has a stored list of partitions.
    asio::awaitable<bool> exists();
    // The partitions' queue names; error::unknown_queue when the queue has none.
    asio::awaitable<std::vector<std::string>> partitions();
    // Creates the queue with `count` partitions, or checks the stored count
    // (error::partition_mismatch); the names either way.
    asio::awaitable<std::vector<std::string>> open(std::size_t count);
    // Appends `more` partitions and returns every name. A new partition is paused when the
    // queue is, and the queue's rate limit is split again over the new count. Producers and
    // workers pick them up within their `refresh`. error::partition_mismatch when another
    // process added partitions at the same time (nothing added: read and try again).
    asio::awaitable<std::vector<std::string>> add_partitions(std::size_t more);

    asio::awaitable<partitioned_counts> counts();
    // Up to `limit` ids in `state` from `offset`, partition by partition (each in admin::list's
    // order), as "<partition>:<id>".
    asio::awaitable<std::vector<std::string>> list(job_state state, std::size_t offset,
                                                   std::size_t limit);
    // As admin's, for "<partition>:<id>" ids (job_info::id is that id; job->queue the
    // partition's). error::unknown_job for an id of another form or a partition it lacks.
    asio::awaitable<job_info> get(std::string id);
    asio::awaitable<void> retry(std::string id);
    asio::awaitable<void> remove(std::string id);
    asio::awaitable<cancel_outcome> cancel(std::string id, std::string reason);
    // A flow below one of its jobs (admin::flow in the job's partition).
    asio::awaitable<flow_node> flow(std::string id);
    // Fair groups of every partition, the busiest first (a group's jobs are in one partition,
    // placed by the group, unless given another key: then summed).
    asio::awaitable<std::vector<group_info>> groups(std::size_t limit = 1000);
    // The same limits in every partition: a group placed by its name lives in one of them.
    asio::awaitable<void> set_group_limits(std::string group, group_limits limits);
    asio::awaitable<void> clear_group_limits(std::string group);
    // One entry per live worker (a partitioned worker is in every partition's registry under
    // one token): running, completed and failed summed over the partitions.
    asio::awaitable<std::vector<worker_info>> workers();
    asio::awaitable<void> pause();
    asio::awaitable<void> resume();
    // The queue's limit, split evenly: each of N partitions gets max_jobs / N per window (the
    // first max_jobs % N one more; at least 1). A partition's unused share is not lent.
    asio::awaitable<void> set_rate_limit(std::uint64_t max_jobs, std::chrono::milliseconds window);
    asio::awaitable<std::pair<std::size_t, std::size_t>> recover_stalled();
    // Per minute, summed; each percentile is the highest of the partitions' (an upper bound of
    // the queue's).
    asio::awaitable<std::vector<minute_metrics>> metrics(std::size_t minutes);
    // Deletes every partition's keys, then the list.
    asio::awaitable<void> obliterate();

private:
    struct located {
        std::string partition; // its queue
        std::string id;        // there
    };
    asio::awaitable<located> locate(const std::string& id);

    client& client_;
    std::string queue_;
};

} // namespace akv::queue
