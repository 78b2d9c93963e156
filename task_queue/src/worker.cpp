#include <akv/queue/admin.hpp>
#include <akv/queue/worker.hpp>

#include <akv/detail/settled.hpp>
#include <akv/messaging/subscriber.hpp>

#include "handoff.hpp"
#include "scripts.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <random>

#include <unistd.h>

namespace akv::queue {

using namespace asio::experimental::awaitable_operators;

namespace {
constexpr std::size_t recover_limit = 1000;
constexpr auto metrics_interval = std::chrono::seconds(1);
// Heartbeats a worker may miss before the registry drops it as dead.
constexpr int missed_heartbeats = 3;

// "1.250": BZPOPMIN takes its timeout in seconds, with millisecond precision.
std::string seconds_text(std::chrono::milliseconds t) {
    auto ms = t.count();
    std::string frac = std::to_string(1000 + ms % 1000).substr(1);
    return std::to_string(ms / 1000) + "." + frac;
}

// Drops a run's entry in `running`, unless a newer claim of the same job took it over.
template <class Running, class Run> void forget(Running& running, const Run& run) {
    if (auto it = running.find(run->job.id); it != running.end() && it->second == run)
        running.erase(it);
}
} // namespace

// The one place outcomes become retry.lua's delays: ms before the retry, -1 a final failure,
// -2 a cancelled run (whose reason cancel.lua left in `errors`).
std::int64_t worker::finished::retry_arg() const noexcept {
    switch (outcome) {
    case run_outcome::retry:
        return delay.count();
    case run_outcome::failed:
        return -1;
    case run_outcome::cancelled:
        return -2;
    case run_outcome::completed:
        break; // complete.lua's
    }
    return 0;
}

asio::awaitable<void> job_context::progress(std::string_view text) {
    if (lease_lost())
        throw_error(error::lease_lost, "job " + job_.id + " of queue \"" + job_.queue +
                                           "\": its lease expired and it was recovered");
    if (progressed_) *progressed_ = true; // kept even if the reply is lost: cleared anyway
    const std::array<std::string_view, 1> queue_key{worker_.keys_.prefix};
    const std::array<std::string_view, 2> args{job_.id, text};
    response<ignore_t> resp;
    co_await scripts::progress().run(worker_.client_, queue_key, args, resp);
    std::get<0>(resp).value();
}

asio::awaitable<std::vector<child_result>> job_context::children_results() {
    if (job_.children == 0)
        throw_error(error::invalid_config,
                    "job " + job_.id + " of queue \"" + job_.queue +
                        "\" has no children: children_results() is for a parent of a flow");
    std::vector<std::string> fields;
    fields.reserve(job_.children);
    for (std::size_t i = 1; i <= job_.children; ++i)
        fields.push_back(job_.id + ":" + std::to_string(i));
    request req;
    req.push("HMGET", worker_.keys_.children, fields);
    response<std::vector<std::optional<std::string>>> resp;
    co_await worker_.client_.exec(req, resp);
    std::vector<child_result> out;
    for (const auto& v : std::get<0>(resp).value())
        if (v) out.push_back(detail::decode_child(*v));
    co_return out;
}

worker::worker(client& c, std::string queue, handler h, worker_options options,
               messaging::subscriber* events)
    : client_(c)
    , queue_(std::move(queue))
    , keys_(queue_)
    , handler_(std::move(h))
    , options_(options)
    , events_(events)
    , token_(detail::random_token())
    , wake_(c.get_executor())
    , idle_(c.get_executor())
    , stop_signal_(c.get_executor())
    , renew_timer_(c.get_executor())
    , hand_off_wake_(c.get_executor())
    , heartbeat_timer_(c.get_executor()) {
    validate_queue_name(queue_);
    if (!handler_) throw_error(error::invalid_config, "worker: no handler");
    if (options_.concurrency == 0)
        throw_error(error::invalid_config, "worker_options.concurrency: must be at least 1");
    if (options_.lease_time < std::chrono::milliseconds(30))
        throw_error(error::invalid_config, "worker_options.lease_time: at least 30 ms");
    if (options_.heartbeat < std::chrono::milliseconds(10))
        throw_error(error::invalid_config, "worker_options.heartbeat: at least 10 ms");
    options_.max_batch = std::clamp<std::size_t>(options_.max_batch, 1, 1000); // claim.lua's bound
    wake_.expires_at(asio::steady_timer::time_point::max());
    idle_.expires_at(asio::steady_timer::time_point::max());
    stop_signal_.expires_at(asio::steady_timer::time_point::max());
}

worker::~worker() = default;

void worker::kick() { wake_.cancel(); }

void worker::stop() {
    if (stopping_) return;
    stopping_ = true;
    // Prefetched jobs go back at once; running ones get the grace period.
    std::vector<std::string> waiting;
    for (const auto& rj : queued_) waiting.push_back(rj->job.id);
    for (const auto& id : waiting)
        cancel_running(id, cancel_reason::shutdown);
    // Expired: a wait begun after this returns at once, one begun before is cancelled.
    stop_signal_.expires_at(asio::steady_timer::time_point::min());
    kick();
    heartbeat_timer_.cancel(); // the registry learns at once that this worker is leaving
}

asio::awaitable<void> worker::run() {
    started_ms_ = detail::wall_ms();
    co_await (pump() && waker() && renewer() && listen() && grace() && hand_off() && heartbeat());
}

// Completes once stop() is called (at once when it has been).
asio::awaitable<std::tuple<boost::system::error_code>> worker::stop_requested() {
    return stop_signal_.async_wait(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<void> worker::grace() {
    co_await stop_requested();
    if (started_ == 0) co_return;
    asio::steady_timer t(client_.get_executor(), options_.shutdown_grace);
    grace_timer_ = &t;
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    grace_timer_ = nullptr;
    std::vector<std::string> ids;
    for (auto& [id, rj] : running_) ids.push_back(id);
    for (auto& id : ids)
        cancel_running(id, cancel_reason::shutdown);
}

void worker::cancel_running(const std::string& id, cancel_reason why) {
    auto it = running_.find(id);
    if (it == running_.end() || it->second->cancelled_for != cancel_reason::none) return;
    auto& rj = *it->second;
    if (!rj.started) {
        // Prefetched, never started: nothing to stop. Back to the queue, or cancelled.
        std::erase(queued_, it->second);
        if (why == cancel_reason::shutdown) {
            handback_.push_back(id);
        } else {
            finished f;
            f.id = id;
            f.outcome = run_outcome::cancelled;
            f.value = "cancelled before it started";
            f.options = rj.job.options;
            f.flow = detail::flow_text(rj.job);
            done_.push_back(std::move(f));
        }
        running_.erase(it);
        kick();
        return;
    }
    rj.cancelled_for = why;
    rj.cancel.emit(asio::cancellation_type::terminal);
}

void worker::start_ready() {
    while (started_ < options_.concurrency && !queued_.empty() && !stopping_) {
        auto rj = std::move(queued_.front());
        queued_.pop_front();
        if (rj->lost) { // its lease expired while it waited here: it runs elsewhere now
            forget(running_, rj);
            continue;
        }
        rj->started = true;
        ++started_;
        // The completion handler holds `rj`: its signal must outlive the spawned coroutine,
        // whose cancellation handler lives in the signal's slot until co_spawn completes.
        asio::co_spawn(client_.get_executor(), run_job(rj),
                       asio::bind_cancellation_slot(rj->cancel.slot(),
                                                    [rj](std::exception_ptr) {}));
    }
}

asio::awaitable<void> worker::pump() {
    std::chrono::milliseconds pause_after_error{0};
    for (;;) {
        if (pause_after_error.count() > 0) {
            asio::steady_timer t(client_.get_executor(), pause_after_error);
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        // Claimed jobs (running or prefetched) stay under concurrency + prefetch.
        const std::size_t limit = options_.concurrency + options_.prefetch;
        const std::size_t free = stopping_ ? 0 : limit - std::min(limit, running_.size());
        const std::size_t want = starved_ ? 0 : std::min(free, options_.max_batch);
        const bool metrics_due =
            metrics_.completed > 0 &&
            (stopping_ || std::chrono::steady_clock::now() >= metrics_.sent + metrics_interval);
        if (done_.empty() && handback_.empty() && want == 0 && !metrics_due) {
            if (stopping_ && running_.empty()) break;
            // Counted metrics go out within metrics_interval even when nothing else happens.
            if (metrics_.completed > 0)
                wake_.expires_at(metrics_.sent + metrics_interval);
            else
                wake_.expires_at(asio::steady_timer::time_point::max());
            co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        std::vector<finished> batch;
        batch.swap(done_);
        std::vector<std::string> back;
        back.swap(handback_);
        try {
            co_await flush(batch, back, want, metrics_due);
            pause_after_error = std::chrono::milliseconds(0);
        } catch (const boost::system::system_error& e) {
            // The client was shut down: nothing more can be sent. Leased jobs are recovered
            // by other workers once their leases expire.
            if (e.code() == error::connection_closed) break;
            // The server or the connection failed: keep the outcomes and try again. A call
            // that ran but whose reply was lost is harmless: acks of leases already gone are
            // reported lost, claimed jobs we never saw are recovered after their lease.
            for (auto& f : batch) done_.push_back(std::move(f));
            for (auto& id : back) handback_.push_back(std::move(id));
            ++stats_.errors;
            pause_after_error = std::clamp(pause_after_error * 2, std::chrono::milliseconds(50),
                                           std::chrono::milliseconds(1000));
        }
    }
    drained_ = true;
    idle_.cancel();
    renew_timer_.cancel();
    hand_off_wake_.cancel();
    heartbeat_timer_.cancel();
    if (grace_timer_) grace_timer_->cancel();
}

asio::awaitable<void> worker::flush(const std::vector<finished>& batch,
                                    const std::vector<std::string>& back, std::size_t want,
                                    bool send_metrics) {
    const std::int64_t now = detail::wall_ms();
    const std::string metrics_key = keys_.metrics(now / 60000);
    const std::array<std::string_view, 2> ack_keys{keys_.prefix, metrics_key};
    const std::array<std::string_view, 1> queue_key{keys_.prefix};
    script_request req;
    std::size_t completes = 0, retries = 0;
    std::vector<std::string> complete, retry; // the arguments of complete.lua and retry.lua
    std::vector<std::size_t> histogram(detail::latency_buckets);
    for (const auto& f : batch) {
        if (f.outcome == run_outcome::completed) {
            ++completes;
            complete.push_back(f.id);
            complete.push_back(std::to_string(f.options.result_ttl.count()));
            complete.push_back(f.value);
            complete.push_back(f.options.unique_key);
            complete.push_back(f.leftovers ? "1" : "0");
            complete.push_back(f.flow);
            complete.push_back(f.options.group);
            const std::int64_t ready_at = f.enqueued_ms + f.options.delay.count();
            ++histogram[detail::latency_bucket(std::max<std::int64_t>(0, now - ready_at))];
        } else {
            ++retries;
            retry.push_back(f.id);
            retry.push_back(std::to_string(f.retry_arg()));
            retry.push_back(f.value);
            retry.push_back(f.options.unique_key);
            retry.push_back(std::to_string(f.options.priority));
            retry.push_back(f.flow);
            retry.push_back(f.options.group);
        }
    }
    // Metrics counted by earlier flushes ride along about once a second: a few HINCRBYs per
    // second, not per batch (at concurrency 1 a batch is one job).
    send_metrics = send_metrics || (metrics_.completed > 0 &&
                                    std::chrono::steady_clock::now() >= metrics_.sent + metrics_interval);
    if (completes > 0 || send_metrics) {
        complete.insert(complete.begin(), token_);
        complete.insert(complete.begin(), std::to_string(completes));
        if (send_metrics) {
            std::vector<std::string> metric;
            metric.push_back("p");
            metric.push_back(std::to_string(metrics_.completed));
            for (std::size_t b = 0; b < detail::latency_buckets; ++b)
                if (metrics_.histogram[b]) {
                    metric.push_back("l" + std::to_string(b));
                    metric.push_back(std::to_string(metrics_.histogram[b]));
                }
            complete.push_back(std::to_string(metric.size() / 2));
            for (auto& m : metric)
                complete.push_back(std::move(m));
            complete.push_back(std::to_string(metrics_.completed));
        } else {
            complete.push_back("0");
        }
        req.call(scripts::complete(), ack_keys, complete);
    }
    if (retries > 0) {
        retry.insert(retry.begin(), token_);
        retry.insert(retry.begin(), std::to_string(retries));
        req.call(scripts::retry(), ack_keys, retry);
    }
    if (!back.empty()) {
        std::vector<std::string_view> handback{token_};
        handback.insert(handback.end(), back.begin(), back.end());
        req.call(scripts::handback(), queue_key, handback);
    }
    const bool claiming = want > 0;
    if (claiming) {
        const std::string count = std::to_string(want);
        const std::string lease = std::to_string(options_.lease_time.count());
        req.call(scripts::claim(), queue_key,
                 std::array<std::string_view, 3>{count, lease, token_});
    }

    generic_response replies;
    co_await req.run(client_, replies);
    std::size_t at = 0;
    // complete.lua and retry.lua answer {lost ids, notices for parents of flows}.
    auto count_lost = [&](const char* what) {
        const auto& v = scripts::reply(replies, at++, "queue \"" + queue_ + "\": " + what);
        if (v.elements.size() != 2)
            throw_error(error::script_error, "queue \"" + queue_ + "\": " + what + ": bad reply");
        const std::size_t lost = v.elements[0].elements.size();
        stats_.lost_leases += lost;
        if (!v.elements[1].elements.empty()) {
            detail::read_notices(v.elements[1], queue_, notices_);
            hand_off_wake_.cancel();
        }
        return lost;
    };
    if (completes > 0 || send_metrics) {
        const std::size_t lost = count_lost("complete.lua");
        if (send_metrics) metrics_ = pending_metrics{}; // sent; counting starts again
        metrics_.sent = send_metrics ? std::chrono::steady_clock::now() : metrics_.sent;
        stats_.completed += completes - lost;
        metrics_.completed += completes - lost;
        for (std::size_t b = 0; b < detail::latency_buckets; ++b)
            metrics_.histogram[b] += histogram[b];
    }
    if (retries > 0) count_lost("retry.lua");
    if (!back.empty()) {
        scripts::reply(replies, at++, "queue \"" + queue_ + "\": handback.lua");
        stats_.handed_back += back.size();
    }
    if (!claiming) co_return;
    const auto& v = scripts::reply(replies, at++, "queue \"" + queue_ + "\": claim.lua");
    if (v.elements.size() < 3)
        throw_error(error::script_error, "queue \"" + queue_ + "\": claim.lua: short reply");
    server_now_ms_ = std::stoll(v.elements[0].str);
    server_now_at_ = std::chrono::steady_clock::now();
    wake_at_ms_ = std::stoll(v.elements[1].str);
    const std::size_t claimed = (v.elements.size() - 3) / 3;
    if (claimed == 0) {
        starved_ = true;
        idle_.cancel(); // the waker blocks on the marker now
        co_return;
    }
    ++stats_.claims;
    for (std::size_t i = 3; i + 2 < v.elements.size(); i += 3) {
        auto rj = std::make_shared<running_job>();
        const std::string& id = v.elements[i].str;
        try {
            rj->job = detail::decode_record(queue_, id, v.elements[i + 1].str);
        } catch (const boost::system::system_error& e) {
            // Not a job we can run: to the failed set with what is wrong, once.
            finished f;
            f.id = id;
            f.outcome = run_outcome::failed;
            f.value = e.what();
            done_.push_back(std::move(f));
            // A lease is held: count it as running until the failure is flushed.
            continue;
        }
        rj->job.attempt = static_cast<unsigned>(std::stoul(v.elements[i + 2].str)) + 1;
        if (auto it = running_.find(id); it != running_.end()) {
            // Still running here, but its lease was lost and it was recovered: this claim owns
            // the job now. The stale run is cancelled, and its result will not be kept.
            it->second->lost = true;
            if (!it->second->started) {
                std::erase(queued_, it->second);
            } else if (it->second->cancelled_for == cancel_reason::none) {
                it->second->cancelled_for = cancel_reason::lease_lost;
                it->second->cancel.emit(asio::cancellation_type::terminal);
            }
            it->second = rj;
        } else {
            running_.emplace(id, rj);
        }
        queued_.push_back(std::move(rj));
    }
    if (stopping_) {
        // stop() came while this claim was out: what it brought goes back at once (stop()
        // handed back only what was queued then, and nothing starts now).
        std::vector<std::string> ids;
        for (const auto& q : queued_)
            ids.push_back(q->job.id);
        for (const auto& id : ids)
            cancel_running(id, cancel_reason::shutdown);
    }
    start_ready();
}

asio::awaitable<void> worker::run_job(std::shared_ptr<running_job> rj) {
    const job& j = rj->job;
    finished f;
    f.id = j.id;
    f.options = j.options;
    f.enqueued_ms = j.enqueued_ms;
    f.flow = detail::flow_text(j);
    bool threw = false, timed_out = false;
    try {
        job_context ctx(*this, j, &rj->lost, &rj->progressed);
        if (j.options.timeout.count() > 0) {
            // settled(): a handler that throws must fail now, with its error, not at the timeout.
            asio::steady_timer t(client_.get_executor(), j.options.timeout);
            auto r = co_await (akv::detail::settled(handler_(ctx)) ||
                               t.async_wait(asio::use_awaitable));
            if (r.index() == 1) {
                timed_out = true;
                throw boost::system::system_error(make_error_code(error::timeout));
            }
            f.value = std::move(std::get<0>(r)).get();
        } else {
            f.value = co_await handler_(ctx);
        }
    } catch (const std::exception& e) {
        threw = true;
        f.value = e.what();
    } catch (...) {
        threw = true;
        f.value = "unknown exception";
    }
    f.leftovers = j.attempt > 1 || rj->progressed;
    if (rj->lost) {
        // Recovered while it ran: its ack would be refused, or taken for a newer claim's.
        ++stats_.lost_leases;
        forget(running_, rj);
        --started_;
        start_ready();
        kick();
        co_return;
    }
    if (threw) {
        if (rj->cancelled_for == cancel_reason::shutdown) {
            handback_.push_back(j.id); // it did not fail: its worker is leaving
            forget(running_, rj);
            --started_;
            kick();
            co_return;
        }
        ++stats_.failed;
        if (rj->cancelled_for == cancel_reason::cancelled) {
            f.outcome = run_outcome::cancelled;
            f.value = "cancelled while running";
        } else {
            if (timed_out) f.value = "timed out after " + std::to_string(j.options.timeout.count()) + " ms";
            if (j.attempt >= j.options.max_attempts) {
                f.outcome = run_outcome::failed;
            } else {
                thread_local std::minstd_rand draw(std::random_device{}());
                f.outcome = run_outcome::retry;
                f.delay = retry_delay(j.options.backoff, j.attempt,
                                      std::uniform_real_distribution<double>(0, 1)(draw));
            }
        }
    }
    done_.push_back(std::move(f));
    forget(running_, rj);
    --started_;
    start_ready();
    kick();
}

asio::awaitable<void> worker::waker() {
    while (!stopping_) {
        if (!starved_) {
            idle_.expires_at(asio::steady_timer::time_point::max());
            co_await idle_.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        auto timeout = options_.idle_wait;
        if (wake_at_ms_ >= 0) {
            const auto server_now =
                server_now_ms_ + std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - server_now_at_)
                                     .count();
            timeout = std::min(timeout, std::chrono::milliseconds(wake_at_ms_ - server_now));
        }
        if (timeout.count() > 0) {
            request req;
            req.push("BZPOPMIN", keys_.marker, seconds_text(timeout));
            response<ignore_t> resp;
            // Connection trouble is a value: `||` would otherwise wait for stop() past a failed
            // BZPOPMIN. The pump's claim finds out about the connection.
            auto block = [&]() -> asio::awaitable<bool> {
                try {
                    co_await client_.exec(req, resp);
                } catch (const boost::system::system_error&) {
                    co_return false;
                }
                co_return true;
            };
            const auto r = co_await (block() || stop_requested());
            const bool failed = r.index() == 0 && !std::get<0>(r);
            if (failed) { // do not spin
                asio::steady_timer t(client_.get_executor(), std::chrono::milliseconds(100));
                co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
            }
        }
        starved_ = false;
        kick();
    }
}

asio::awaitable<void> worker::renewer() {
    const auto every = options_.lease_time / 3;
    while (!drained_) {
        renew_timer_.expires_after(every);
        co_await renew_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (drained_) break;
        const std::array<std::string_view, 1> queue_key{keys_.prefix};
        const std::string lease = std::to_string(options_.lease_time.count());
        const std::string limit = std::to_string(recover_limit);
        std::vector<std::string_view> renew{lease, token_};
        for (auto& [id, rj] : running_)
            renew.push_back(id);
        // Notices for parents that no process applied within a renewal interval: their
        // worker died between a child's end and the hand-off (README "Workflows").
        const std::string notice_age = std::to_string(every.count());
        script_request req;
        req.call(scripts::renew(), queue_key, renew);
        req.call(scripts::recover(), queue_key, std::array<std::string_view, 1>{limit});
        req.call(scripts::outbox(), queue_key,
                 std::array<std::string_view, 2>{notice_age, std::string_view("100")});
        try {
            generic_response replies;
            co_await req.run(client_, replies);
            const auto& r = scripts::reply(replies, 0, "queue \"" + queue_ + "\": renew.lua");
            if (r.elements.size() == 2) {
                for (const auto& id : r.elements[0].elements) {
                    auto it = running_.find(id.str);
                    // Counted when its ack is refused; the handler runs on (at least once).
                    if (it != running_.end()) it->second->lost = true;
                }
                for (const auto& id : r.elements[1].elements)
                    cancel_running(id.str, cancel_reason::cancelled);
            }
            const auto& rec = scripts::reply(replies, 1, "queue \"" + queue_ + "\": recover.lua");
            if (!rec.elements.empty()) {
                const auto back = std::stoull(rec.elements[0].str);
                stats_.recovered += back;
                if (back > 0) {
                    starved_ = false;
                    kick();
                }
            }
            const std::size_t had = notices_.size();
            if (rec.elements.size() == 3) detail::read_notices(rec.elements[2], queue_, notices_);
            detail::read_notices(scripts::reply(replies, 2, "queue \"" + queue_ + "\": outbox.lua"),
                                 queue_, notices_);
            if (notices_.size() > had) hand_off_wake_.cancel();
        } catch (const boost::system::system_error&) {
            ++stats_.errors; // next round
        }
    }
}

asio::awaitable<void> worker::hand_off() {
    std::chrono::milliseconds pause_after_error{0};
    hand_off_wake_.expires_at(asio::steady_timer::time_point::max());
    for (;;) {
        if (notices_.empty()) {
            if (drained_) break;
            co_await hand_off_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
            hand_off_wake_.expires_at(asio::steady_timer::time_point::max());
            continue;
        }
        if (pause_after_error.count() > 0) {
            asio::steady_timer t(client_.get_executor(), pause_after_error);
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        if (options_.before_hand_off) options_.before_hand_off();
        std::vector<detail::notice> batch;
        batch.swap(notices_);
        const std::size_t n = batch.size();
        try {
            co_await detail::hand_off(client_, batch);
            stats_.handed_off += n;
            pause_after_error = std::chrono::milliseconds(0);
        } catch (const boost::system::system_error& e) {
            ++stats_.errors;
            // Still in the outbox: tried again here, or by any worker of the queue later.
            if (e.code() == error::connection_closed || drained_) break;
            for (auto& x : batch)
                notices_.push_back(std::move(x));
            pause_after_error = std::clamp(pause_after_error * 2, std::chrono::milliseconds(50),
                                           std::chrono::milliseconds(1000));
        }
    }
}

std::string worker::record() const {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    namespace json = boost::json;
    return json::serialize(json::object{
        {"token", token_},
        {"host", host},
        {"pid", static_cast<std::int64_t>(::getpid())},
        {"concurrency", options_.concurrency},
        {"running", started_},
        {"completed", stats_.completed},
        {"failed", stats_.failed},
        {"started_ms", started_ms_},
        {"heartbeat_ms", options_.heartbeat.count()},
        {"stopping", stopping_},
    });
}

// The registry of live workers, on a timer of its own: one script call per heartbeat, never
// one per job. Each call is bounded by a heartbeat (Redis away: the next one tries again, and
// a drained worker does not wait for Redis to leave).
asio::awaitable<void> worker::heartbeat() {
    const std::array<std::string_view, 1> queue_key{keys_.prefix};
    const std::string expiry = std::to_string((options_.heartbeat * missed_heartbeats).count());
    // The call's outcome as a value: `||` waits for the first branch that does not throw.
    auto call = [&](std::string_view expiry_ms,
                    std::string entry) -> asio::awaitable<boost::system::error_code> {
        const std::array<std::string_view, 3> args{token_, expiry_ms, entry};
        response<ignore_t> resp;
        try {
            co_await scripts::heartbeat().run(client_, queue_key, args, resp);
        } catch (const boost::system::system_error& e) {
            co_return e.code();
        }
        co_return std::get<0>(resp).has_error() ? error::script_error : boost::system::error_code();
    };
    // False once the client is shut down: no call can go out any more.
    auto beat = [&](std::string_view expiry_ms, std::string entry) -> asio::awaitable<bool> {
        asio::steady_timer limit(client_.get_executor(), options_.heartbeat);
        const auto r =
            co_await (call(expiry_ms, std::move(entry)) || limit.async_wait(asio::use_awaitable));
        if (r.index() == 0 && std::get<0>(r) == error::connection_closed) co_return false;
        if (r.index() == 1 || std::get<0>(r)) ++stats_.errors;
        co_return true;
    };
    while (!drained_) {
        if (!co_await beat(expiry, record())) co_return;
        if (drained_) break;
        heartbeat_timer_.expires_after(options_.heartbeat);
        co_await heartbeat_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_await beat("0", "{}"); // drained: off the registry
}

asio::awaitable<void> worker::listen() {
    if (!events_) co_return;
    std::shared_ptr<messaging::subscription> sub;
    try {
        std::vector<std::string> channel(1, keys_.events);
        sub = co_await events_->ssubscribe(std::move(channel));
    } catch (const boost::system::system_error&) {
        co_return; // cancellations then arrive with the lease renewals
    }
    try {
        while (!stopping_) {
            // settled(): a subscription that closed ends the loop now, not at stop().
            auto m = co_await (akv::detail::settled(sub->receive()) || stop_requested());
            if (m.index() == 1) break;
            const std::string text = std::move(std::get<0>(m)).get().payload;
            if (text.rfind("cancel ", 0) == 0)
                cancel_running(text.substr(7), cancel_reason::cancelled);
        }
    } catch (const boost::system::system_error&) {
        // The hub closed or overflowed: cancellations arrive with lease renewals instead.
    }
    if (!sub->closed()) co_await sub->unsubscribe();
}

} // namespace akv::queue
