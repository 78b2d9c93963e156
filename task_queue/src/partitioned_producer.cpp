#include <akv/queue/partitioned.hpp>

#include "partitions.hpp"

#include <boost/asio/as_tuple.hpp>

#include <random>

namespace akv::queue {

partitioned_producer::partitioned_producer(client& c, std::string queue, partitioning p,
                                           messaging::subscriber* events)
    : client_(c)
    , queue_(std::move(queue))
    , partitioning_(p)
    , events_(events)
    // Round robin from a random partition: short-lived producers (one job each) spread too.
    , next_(std::random_device{}())
    , looked_(c.get_executor(), asio::steady_timer::time_point::max()) {
    validate_queue_name(queue_);
    if (partitioning_.partitions > max_partitions)
        throw_error(error::invalid_config,
                    "partitioning.partitions: at most " + std::to_string(max_partitions));
}

partitioned_producer::~partitioned_producer() = default;

asio::awaitable<void> partitioned_producer::open() {
    next_look_ = {};
    co_await look();
}

void partitioned_producer::adopt(std::vector<std::string> names) {
    if (names.size() <= names_.size()) return;
    // Appended only: a list that is not an extension of ours (obliterated, made again) is
    // not taken up while this producer lives.
    for (std::size_t i = 0; i < names_.size(); ++i)
        if (names[i] != names_[i]) return;
    for (std::size_t i = names_.size(); i < names.size(); ++i)
        producers_.push_back(std::make_unique<producer>(client_, names[i], events_));
    names_ = std::move(names);
}

asio::awaitable<void> partitioned_producer::look() {
    using clock = std::chrono::steady_clock;
    for (;;) {
        if (!names_.empty() && clock::now() < next_look_) co_return;
        if (!looking_) break;
        if (!names_.empty()) co_return; // another call is looking: go on with what we have
        co_await looked_.async_wait(asio::as_tuple(asio::use_awaitable)); // the first look
    }
    looking_ = true;
    const bool first = names_.empty();
    std::exception_ptr failure;
    try {
        std::vector<std::string> names;
        if (first)
            names = co_await detail::open_partitions(client_, queue_, partitioning_.partitions);
        else
            names = co_await detail::read_partitions(client_, queue_);
        adopt(std::move(names));
    } catch (...) {
        failure = std::current_exception();
    }
    looking_ = false;
    next_look_ = clock::now() + partitioning_.refresh;
    looked_.cancel();
    // A later look that fails (Redis away) keeps the list we have.
    if (failure && first) std::rethrow_exception(failure);
}

std::size_t partitioned_producer::place(std::string_view key, const job_options& o) {
    const std::size_t n = producers_.size();
    if (!key.empty()) return partition_for_key(key, n);
    if (!o.group.empty()) return partition_for_key(o.group, n);
    if (!o.unique_key.empty()) return partition_for_key(o.unique_key, n);
    if (o.dedup.mode != dedup_mode::none) return partition_for_key(o.dedup.key, n);
    return static_cast<std::size_t>(next_++ % n);
}

asio::awaitable<std::string> partitioned_producer::enqueue(std::string_view payload) {
    job_options defaults; // named: g++ 12 destroys a temporary in a co_await expression twice
    co_return co_await enqueue(payload, std::move(defaults), std::string_view());
}

asio::awaitable<std::string> partitioned_producer::enqueue(std::string_view payload,
                                                           job_options options) {
    co_return co_await enqueue(payload, std::move(options), std::string_view());
}

asio::awaitable<std::string>
partitioned_producer::enqueue(std::string_view payload, job_options options, std::string_view key) {
    validate(options);
    co_await look();
    const std::size_t i = place(key, options);
    const std::string id = co_await producers_[i]->enqueue(payload, std::move(options));
    co_return partitioned_id(i, id);
}

asio::awaitable<std::vector<std::string>>
partitioned_producer::enqueue_bulk(std::span<const partitioned_job> jobs) {
    for (const auto& j : jobs)
        validate(j.options);
    co_await look();
    const std::size_t n = producers_.size();
    std::vector<std::vector<new_job>> parts(n);
    std::vector<std::vector<std::size_t>> at(n); // where each part's jobs are in `jobs`
    for (std::size_t k = 0; k < jobs.size(); ++k) {
        const std::size_t i = place(jobs[k].key, jobs[k].options);
        parts[i].push_back({jobs[k].payload, jobs[k].options});
        at[i].push_back(k);
    }
    std::vector<std::size_t> used;
    for (std::size_t i = 0; i < n; ++i)
        if (!parts[i].empty()) used.push_back(i);
    std::vector<std::string> ids(jobs.size());
    co_await detail::all_of(used.size(), [&](std::size_t u) -> asio::awaitable<void> {
        const std::size_t i = used[u];
        const std::span<const new_job> part(parts[i]);
        const std::vector<std::string> got = co_await producers_[i]->enqueue_bulk(part);
        for (std::size_t k = 0; k < got.size() && k < at[i].size(); ++k)
            ids[at[i][k]] = partitioned_id(i, got[k]);
    });
    co_return ids;
}

asio::awaitable<job_result> partitioned_producer::result(std::string id,
                                                         std::chrono::milliseconds timeout) {
    const auto ref = parse_partitioned_id(id);
    if (!ref)
        throw_error(error::unknown_job, "queue \"" + queue_ + "\": no job " + id +
                                            " (a partitioned queue's ids are <partition>:<id>)");
    co_await look();
    if (ref->partition >= producers_.size())
        throw_error(error::unknown_job, "queue \"" + queue_ + "\": no job " + id + " (it has " +
                                            std::to_string(producers_.size()) + " partitions)");
    co_return co_await producers_[ref->partition]->result(ref->id, timeout);
}

} // namespace akv::queue
