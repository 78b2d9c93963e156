#include <akv/queue/partitioned.hpp>

#include "claim_budget.hpp"
#include "partitions.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>

namespace akv::queue {

partitioned_worker::partitioned_worker(client& c, std::string queue, handler h,
                                       worker_options options, partitioning p,
                                       messaging::subscriber* events)
    : client_(c)
    , queue_(std::move(queue))
    , handler_(std::move(h))
    , options_(std::move(options))
    , partitioning_(p)
    , events_(events)
    , token_(detail::random_token())
    , budget_(std::make_unique<detail::claim_budget>(options_.concurrency, options_.prefetch))
    , ended_(c.get_executor(), asio::steady_timer::time_point::max())
    , look_(c.get_executor()) {
    validate_queue_name(queue_);
    if (!handler_) throw_error(error::invalid_config, "partitioned_worker: no handler");
    if (options_.concurrency == 0)
        throw_error(error::invalid_config, "worker_options.concurrency: must be at least 1");
    if (partitioning_.partitions > max_partitions)
        throw_error(error::invalid_config,
                    "partitioning.partitions: at most " + std::to_string(max_partitions));
    if (partitioning_.refresh < std::chrono::milliseconds(10))
        throw_error(error::invalid_config, "partitioning.refresh: at least 10 ms");
}

partitioned_worker::~partitioned_worker() = default;

std::unique_ptr<worker> partitioned_worker::make_worker(const std::string& partition) {
    auto w = std::make_unique<worker>(client_, partition, handler_, options_, events_);
    // One name in every partition's leases and registry: admin lists this worker once.
    w->token_ = token_;
    return w;
}

void partitioned_worker::serve(std::unique_ptr<worker> w) {
    budget_->join(*w);
    worker& runs = *w;
    workers_.push_back(std::move(w));
    ++live_;
    asio::co_spawn(client_.get_executor(), runs.run(), [this](std::exception_ptr e) {
        if (e && !failure_) {
            failure_ = e;
            stop(); // an error a partition cannot go on after: the others drain too
        }
        --live_;
        ended_.cancel();
    });
}

asio::awaitable<void> partitioned_worker::run() {
    const std::vector<std::string> names =
        co_await detail::open_partitions(client_, queue_, partitioning_.partitions);
    if (!stopping_) {
        // Every partition's worker is made before any runs: a bad option throws from here,
        // with nothing started.
        std::vector<std::unique_ptr<worker>> made;
        for (const auto& name : names)
            made.push_back(make_worker(name));
        for (auto& w : made)
            serve(std::move(w));
        co_await follow();
    }
    while (live_ > 0)
        co_await ended_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (failure_) std::rethrow_exception(failure_);
}

asio::awaitable<void> partitioned_worker::follow() {
    while (!stopping_) {
        look_.expires_after(partitioning_.refresh);
        co_await look_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (stopping_) break;
        std::vector<std::string> names;
        try {
            names = co_await detail::read_partitions(client_, queue_);
        } catch (const boost::system::system_error&) {
            continue; // the list's node is away: its partitions are served all the same
        }
        if (stopping_ || names.size() <= workers_.size()) continue;
        bool extends = true; // appended only: anything else (obliterated, made again) is not ours
        for (std::size_t i = 0; i < workers_.size() && extends; ++i)
            extends = names[i] == workers_[i]->queue();
        if (!extends) continue;
        for (std::size_t i = workers_.size(); i < names.size(); ++i) {
            try {
                serve(make_worker(names[i]));
            } catch (const boost::system::system_error&) {
                // Not a queue name (written by something else): left out, as are those after.
                break;
            }
        }
    }
}

void partitioned_worker::stop() {
    if (stopping_) return;
    stopping_ = true;
    for (auto& w : workers_)
        w->stop();
    look_.cancel();
}

worker_stats partitioned_worker::stats() const {
    worker_stats sum;
    for (const auto& w : workers_) {
        const worker_stats& s = w->stats();
        sum.completed += s.completed;
        sum.failed += s.failed;
        sum.lost_leases += s.lost_leases;
        sum.handed_back += s.handed_back;
        sum.claims += s.claims;
        sum.recovered += s.recovered;
        sum.errors += s.errors;
        sum.handed_off += s.handed_off;
    }
    return sum;
}

std::size_t partitioned_worker::running() const noexcept {
    std::size_t n = 0;
    for (const auto& w : workers_)
        n += w->running();
    return n;
}

std::vector<std::string> partitioned_worker::partitions() const {
    std::vector<std::string> names;
    for (const auto& w : workers_)
        names.push_back(w->queue());
    return names;
}

} // namespace akv::queue
