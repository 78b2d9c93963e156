#include <akv/queue/producer.hpp>

#include <akv/detail/settled.hpp>
#include <akv/json_text.hpp>
#include <akv/messaging/subscriber.hpp>

#include "scripts.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/json/serialize.hpp>

namespace akv::queue {

namespace {
// Jobs per enqueue call: a bounded script run keeps the server responsive.
constexpr std::size_t bulk_chunk = 5000;
// How often result() looks whether its subscription was restored (no round trip unless it was).
constexpr auto restored_check = std::chrono::milliseconds(200);

// enqueue.lua's dedup argument: "" or "<t|d><window ms>|<key>".
std::string dedup_arg(const dedup& d) {
    if (d.mode == dedup_mode::none) return {};
    std::string a(1, d.mode == dedup_mode::throttle ? 't' : 'd');
    a += std::to_string(d.window.count());
    a += '|';
    a += d.key;
    return a;
}
} // namespace

producer::producer(client& c, std::string queue, messaging::subscriber* events)
    : client_(c)
    , queue_(std::move(queue))
    , keys_(queue_)
    , events_(events) {
    validate_queue_name(queue_);
}

asio::awaitable<std::string> producer::enqueue(std::string_view payload) {
    job_options defaults; // named: g++ 12 destroys a temporary in a co_await expression twice
    co_return co_await enqueue(payload, std::move(defaults));
}

struct producer::pending_add {
    explicit pending_add(asio::any_io_executor ex)
        : wake(std::move(ex), asio::steady_timer::time_point::max()) {}
    new_job job;
    std::string id;
    std::exception_ptr error;
    bool done = false;
    bool promoted = false; // this caller sends the next batch
    asio::steady_timer wake;
};

asio::awaitable<std::string> producer::enqueue(std::string_view payload, job_options options) {
    validate(options);
    auto me = std::make_shared<pending_add>(client_.get_executor());
    me->job.payload = payload;
    me->job.options = std::move(options);
    pending_.push_back(me);
    if (sending_) {
        co_await me->wake.async_wait(asio::as_tuple(asio::use_awaitable));
        if (!me->done && !me->promoted) { // cancelled while waiting: not sent, or sent anyway
            std::erase(pending_, me);
            throw_error(error::timeout, "queue \"" + queue_ + "\": enqueue cancelled");
        }
    } else {
        sending_ = true;
        me->promoted = true;
    }
    if (!me->done) co_await send_pending();
    if (me->error) std::rethrow_exception(me->error);
    co_return std::move(me->id);
}

// Sends every job gathered so far in one call, then hands the next batch to the first caller
// still waiting (so no caller serves others' jobs for longer than one call).
asio::awaitable<void> producer::send_pending() {
    std::vector<std::shared_ptr<pending_add>> batch;
    batch.swap(pending_);
    std::vector<new_job> jobs;
    jobs.reserve(batch.size());
    for (auto& p : batch) jobs.push_back(std::move(p->job));
    std::exception_ptr failure;
    std::vector<std::string> ids;
    try {
        ids = co_await send_bulk(jobs); // each was validated by its enqueue()
    } catch (...) {
        failure = std::current_exception();
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
        auto& p = *batch[i];
        p.done = true;
        if (failure) p.error = failure;
        else if (i < ids.size()) p.id = std::move(ids[i]);
        p.wake.cancel();
    }
    if (pending_.empty()) {
        sending_ = false;
    } else {
        pending_.front()->promoted = true;
        pending_.front()->wake.cancel();
    }
}

asio::awaitable<std::string> producer::enqueue_json(const boost::json::value& payload,
                                                    job_options options) {
    const std::string text = json_text(payload, "job payload"); // refuses NaN / Infinity
    co_return co_await enqueue(text, std::move(options));
}

asio::awaitable<std::vector<std::string>> producer::enqueue_bulk(std::span<const new_job> jobs) {
    for (const auto& j : jobs) validate(j.options);
    co_return co_await send_bulk(jobs);
}

asio::awaitable<std::vector<std::string>> producer::send_bulk(std::span<const new_job> jobs) {
    std::vector<std::string> ids;
    ids.reserve(jobs.size());
    const std::array<std::string_view, 1> keys{keys_.prefix};
    const std::int64_t now = detail::wall_ms();
    for (std::size_t at = 0; at < jobs.size(); at += bulk_chunk) {
        const std::size_t n = std::min(bulk_chunk, jobs.size() - at);
        std::vector<std::string> args;
        args.reserve(1 + 5 * n);
        args.push_back(std::to_string(n));
        for (std::size_t i = at; i < at + n; ++i) {
            const auto& o = jobs[i].options;
            std::int64_t delay = o.delay.count();
            if (o.run_at)
                delay = std::max<std::int64_t>(
                    0, std::chrono::duration_cast<std::chrono::milliseconds>(
                           *o.run_at - std::chrono::system_clock::now())
                           .count());
            if (o.dedup.mode == dedup_mode::debounce) delay = o.dedup.window.count();
            args.push_back(detail::encode_record(o, now, std::chrono::milliseconds(delay),
                                                 jobs[i].payload));
            args.push_back(o.unique_key);
            args.push_back(std::to_string(delay));
            args.push_back(std::to_string(o.priority));
            args.push_back(dedup_arg(o.dedup));
        }
        response<std::vector<std::string>> resp;
        co_await scripts::enqueue().run(client_, keys, args, resp);
        auto& r = std::get<0>(resp);
        if (r.has_error())
            throw_error(error::script_error, "queue \"" + queue_ + "\": enqueue.lua: " +
                                                 r.error().message);
        for (auto& id : r.value()) ids.push_back(std::move(id));
    }
    co_return ids;
}

asio::awaitable<std::optional<job_result>> producer::stored_result(const std::string& id) {
    request req;
    req.push("HGET", keys_.results, id);
    req.push("HEXISTS", keys_.jobs, id);
    response<std::optional<std::string>, long long> resp;
    co_await client_.exec(req, resp);
    auto& stored = std::get<0>(resp).value();
    if (stored) {
        if (auto r = detail::decode_result(*stored)) co_return r;
    }
    if (std::get<1>(resp).value() == 0)
        throw_error(error::unknown_job, "queue \"" + queue_ + "\": no job " + id +
                                            " (never enqueued, removed, or its result expired "
                                            "or was not kept: result_ttl 0)");
    co_return std::nullopt;
}

asio::awaitable<job_result> producer::result(std::string id, std::chrono::milliseconds timeout) {
    using namespace asio::experimental::awaitable_operators;
    if (!events_)
        throw_error(error::invalid_config, "producer::result needs the client's subscriber hub "
                                           "(the `events` argument of the producer)");
    // The stored result; nullopt also when Redis could not be asked (the connection is away):
    // `recheck` then asks again at the next tick.
    bool recheck = false;
    std::string last_error; // why Redis could not be asked, for the timeout's message
    std::shared_ptr<messaging::subscription> sub;
    auto look = [&]() -> asio::awaitable<std::optional<job_result>> {
        try {
            recheck = false;
            co_return co_await stored_result(id);
        } catch (const boost::system::system_error& e) {
            if (e.code() == error::unknown_job) throw;
            recheck = true;
            last_error = e.what();
        }
        co_return std::nullopt;
    };
    auto fin = [&]() -> asio::awaitable<std::optional<job_result>> {
        asio::steady_timer tick(client_.get_executor());
        // Subscribe first, then look: a result stored in between is seen either way. A
        // subscribe that the connection's loss interrupts is tried again (within the timeout).
        while (!sub) {
            try {
                std::vector<std::string> channel(1, keys_.events);
                sub = co_await events_->ssubscribe(std::move(channel));
            } catch (const boost::system::system_error& e) {
                last_error = e.what();
            }
            if (sub) break;
            tick.expires_after(restored_check);
            co_await tick.async_wait(asio::use_awaitable);
        }
        if (auto r = co_await look()) co_return r;
        const std::string needle = " " + id;
        // A "done" published while the subscription was down (a reconnect, a failover) is
        // lost: once it is back, look at the stored result again, so that nothing hangs on it.
        std::uint64_t restored = events_->restored();
        for (;;) {
            tick.expires_after(restored_check);
            auto m = co_await (sub->receive() || tick.async_wait(asio::use_awaitable));
            if (m.index() == 1) {
                if (recheck || events_->restored() != restored) {
                    restored = events_->restored();
                    if (auto r = co_await look()) co_return r;
                }
                continue;
            }
            const auto& payload = std::get<0>(m).payload;
            if (payload.rfind("done ", 0) != 0) continue;
            // "done 12 13 14": look for the id as a whole word.
            std::string_view p = payload;
            for (std::size_t at = p.find(needle); at != std::string_view::npos;
                 at = p.find(needle, at + 1)) {
                std::size_t end = at + needle.size();
                if (end == p.size() || p[end] == ' ') {
                    if (auto r = co_await look()) co_return r;
                }
            }
        }
    };
    // settled(): what fin() throws must end the wait at once, not at the timeout.
    asio::steady_timer timer(client_.get_executor(), timeout);
    std::optional<job_result> outcome;
    std::exception_ptr failure;
    try {
        auto r = co_await (akv::detail::settled(fin()) || timer.async_wait(asio::use_awaitable));
        if (r.index() == 0) outcome = std::move(std::get<0>(r)).get();
    } catch (...) {
        failure = std::current_exception();
    }
    try {
        if (sub) co_await sub->unsubscribe();
    } catch (const boost::system::system_error&) {
        // The connection is away: so is the subscription. The outcome stands.
    }
    if (failure) std::rethrow_exception(failure);
    if (!outcome)
        throw_error(error::timeout, "queue \"" + queue_ + "\": job " + id +
                                        " did not finish within " +
                                        std::to_string(timeout.count()) + " ms" +
                                        (last_error.empty() ? "" : " (Redis: " + last_error + ")"));
    co_return std::move(*outcome);
}

} // namespace akv::queue
