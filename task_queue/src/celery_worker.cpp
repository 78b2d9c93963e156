#include <akv/queue/celery.hpp>

#include "queue_lua_scripts.hpp"

#include <akv/error.hpp>
#include <akv/json_text.hpp>
#include <akv/messaging/subscriber.hpp>
#include <akv/response.hpp>
#include <akv/script.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace akv::queue::celery {

namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

const script& take_script() {
    static const script s(lua::celery_take);
    return s;
}
const script& restore_script() {
    static const script s(lua::celery_restore);
    return s;
}

constexpr std::string_view unacked_key = "unacked";
constexpr std::string_view unacked_index_key = "unacked_index";
constexpr std::size_t revoked_capacity = 50000;
constexpr auto revoked_ttl = std::chrono::hours(3);

double epoch_seconds(clock::time_point t) {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string seconds_text(clock::time_point t) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6f", epoch_seconds(t));
    return buf;
}

exception_info revoked_error(std::string why) {
    return {"TaskRevokedError", "celery.exceptions", json::array{json::string(why)}};
}

std::string traceback_of(const exception_info& e, const std::string& host) {
    std::string msg;
    if (!e.args.empty() && e.args[0].is_string()) msg = e.args[0].get_string();
    return "Traceback (most recent call last):\n  (a C++ task, in akv worker " + host + ")\n" +
           e.type + (msg.empty() ? "" : ": " + msg) + "\n";
}

} // namespace

void task_context::retry(std::chrono::milliseconds countdown, std::string reason) const {
    retry_request r;
    r.countdown = countdown;
    r.reason = std::move(reason);
    throw r;
}

struct worker::delivery {
    enum class stop_reason { none, time_limit, soft_time_limit, revoked, shutdown };
    std::string list, raw, tag;
    task_message message;
    const registered* task = nullptr;
    asio::cancellation_signal cancel;
    stop_reason stopped_for = stop_reason::none;
    std::unique_ptr<asio::steady_timer> eta_timer; // while waiting for its eta
    bool counted = false;                          // in taken_
    bool running = false;
    clock::time_point started;
};

struct worker::outcome {
    std::string tag;       // to ack ('' none)
    std::string result_id; // to store the record under ('' none)
    std::string record;
    std::string requeue_list, requeue_message; // a retry: LPUSH
    std::string dead_letter;                   // a record for the dead-letter list
    bool hand_back = false;                    // put back on its queue instead of acked
};

worker::worker(client& c, worker_options options, messaging::subscriber* control)
    : client_(c)
    , options_(std::move(options))
    , control_(control)
    , random_(std::random_device{}())
    , pump_wake_(c.get_executor())
    , flush_wake_(c.get_executor())
    , drain_wake_(c.get_executor())
    , refresh_timer_(c.get_executor())
    , restore_timer_(c.get_executor())
    , heartbeat_timer_(c.get_executor()) {
    if (options_.queues.empty()) throw_error(error::invalid_config, "celery worker: no queues");
    if (options_.concurrency == 0)
        throw_error(error::invalid_config, "celery worker: concurrency must be at least 1");
    if (options_.visibility_timeout < 10ms)
        throw_error(error::invalid_config, "celery worker: visibility_timeout below 10 ms");
    if (options_.hostname.empty()) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        options_.hostname = "akv-" + std::to_string(::getpid()) + "@" + host;
    }
    const std::string prefix = "/" + std::to_string(client_.get_config().db) + ".";
    pidbox_channel_ = prefix + "celery.pidbox";
    event_prefix_ = prefix + "celeryev/";
}

worker::~worker() = default;

void worker::add_task(std::string name, task_handler handler, int max_retries) {
    tasks_[std::move(name)] =
        registered{std::move(handler), max_retries < 0 ? options_.max_retries : max_retries};
}

std::string worker::new_uuid() {
    const std::uint64_t a = random_(), b = random_();
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                  static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                  static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                  static_cast<unsigned long long>(b & 0xffffffffffffULL));
    return buf;
}

std::vector<std::string> worker::list_keys() const {
    std::vector<std::string> keys;
    for (int p : priority_steps)
        for (const auto& q : options_.queues)
            keys.push_back(priority_list(q, p));
    return keys;
}

void worker::stop() {
    if (stopping_) return;
    stopping_ = true;
    pump_wake_.cancel();
    drain_wake_.cancel();
    for (auto& [tag, d] : held_)
        if (d->eta_timer) d->eta_timer->cancel();
    while (!ready_.empty()) {
        auto d = ready_.front();
        ready_.pop_front();
        hand_back(d);
    }
}

void worker::revoke(const std::string& task_id, bool terminate) {
    if (revoked_.size() >= revoked_capacity && !revoked_order_.empty()) {
        revoked_.erase(revoked_order_.front());
        revoked_order_.pop_front();
    }
    if (revoked_.emplace(task_id, clock::now()).second) revoked_order_.push_back(task_id);
    for (auto& [tag, d] : held_) {
        if (d->message.id != task_id) continue;
        if (d->eta_timer) d->eta_timer->cancel();
        if (terminate && d->running) {
            d->stopped_for = delivery::stop_reason::revoked;
            d->cancel.emit(asio::cancellation_type::terminal);
        }
    }
}

bool worker::is_revoked(const std::string& id) {
    auto it = revoked_.find(id);
    if (it == revoked_.end()) return false;
    if (clock::now() - it->second > revoked_ttl) {
        revoked_.erase(it);
        return false;
    }
    return true;
}

void worker::event(std::string_view type, json::object fields) {
    if (!options_.send_events) return;
    const auto now = clock::now();
    fields["hostname"] = options_.hostname;
    fields["utcoffset"] = 0;
    fields["pid"] = static_cast<std::int64_t>(::getpid());
    fields["clock"] = ++clock_;
    fields["timestamp"] = epoch_seconds(now);
    fields["type"] = type;
    std::string routing_key(type);
    if (auto dash = routing_key.find('-'); dash != std::string::npos) routing_key[dash] = '.';
    json::object envelope{
        {"body", base64_encode(json_text(fields, "celery event"))},
        {"content-encoding", "utf-8"},
        {"content-type", "application/json"},
        {"headers", json::object{{"hostname", options_.hostname}}},
        {"properties",
         json::object{
             {"delivery_mode", 1},
             {"delivery_info",
              json::object{{"exchange", "celeryev"}, {"routing_key", routing_key}}},
             {"priority", 0},
             {"body_encoding", "base64"},
             {"delivery_tag", new_uuid()},
         }},
    };
    event_messages_.emplace_back(event_prefix_ + routing_key, json::serialize(envelope));
    flush_wake_.cancel();
}

void worker::dead_letter(const std::string& list, const std::string& raw, const std::string& tag,
                         const std::string& reason, const std::string& task_id,
                         const exception_info* exc) {
    ++stats_.dead_lettered;
    outcome o;
    o.tag = tag;
    o.dead_letter = json::serialize(json::object{{"reason", reason},
                                                 {"queue", queue_of_list(list)},
                                                 {"message", raw},
                                                 {"at", iso8601(clock::now())}});
    if (!task_id.empty() && exc) {
        o.result_id = task_id;
        o.record = result_record(task_id, states::failure, encode_exception(*exc),
                                 traceback_of(*exc, options_.hostname), clock::now());
    }
    pending_.push_back(std::move(o));
    flush_wake_.cancel();
}

void worker::accept(std::string list, std::string raw, std::string tag) {
    ++stats_.received;
    if (tag.empty()) { // set aside by the take script already
        ++stats_.dead_lettered;
        return;
    }
    auto d = std::make_shared<delivery>();
    try {
        d->message = decode_task(raw);
    } catch (const boost::system::system_error& e) {
        // The id, when the envelope reads at all: its caller then hears why.
        std::string id;
        json::error_code ec;
        const json::value v = json::parse(raw, ec);
        if (const auto* o = ec ? nullptr : v.if_object())
            if (const auto* h = o->if_contains("headers"); h && h->is_object())
                if (const auto* i = h->get_object().if_contains("id"); i && i->is_string())
                    id = i->get_string();
        const std::string why = e.code() == error::bad_job ? e.what() : e.what();
        const bool content = why.find("content type") != std::string::npos;
        const exception_info exc{content ? "ContentDisallowed" : "DecodeError", "kombu.exceptions",
                                 json::array{json::string(why)}};
        dead_letter(list, raw, tag, why, id, &exc);
        return;
    }
    const auto& m = d->message;
    auto task = tasks_.find(m.task);
    if (task == tasks_.end()) {
        const exception_info exc{"NotRegistered", "celery.exceptions",
                                 json::array{json::string(m.task)}};
        dead_letter(list, raw, tag,
                    "celery: unknown task \"" + m.task + "\" (no handler registered by that name)",
                    m.id, &exc);
        return;
    }
    d->task = &task->second;
    d->list = std::move(list);
    d->raw = std::move(raw);
    d->tag = std::move(tag);
    event("task-received",
          json::object{{"uuid", m.id},
                       {"name", m.task},
                       {"args", json::serialize(m.args)},
                       {"kwargs", json::serialize(m.kwargs)},
                       {"root_id", m.root_id},
                       {"parent_id", m.parent_id},
                       {"retries", m.retries},
                       {"eta", m.eta ? json::value(iso8601(*m.eta)) : nullptr},
                       {"expires", m.expires ? json::value(iso8601(*m.expires)) : nullptr}});
    held_[d->tag] = d;
    if (stopping_) {
        hand_back(d);
        return;
    }
    if (m.eta && *m.eta > clock::now()) {
        ++tasks_alive_;
        asio::co_spawn(client_.get_executor(), hold(d), asio::detached);
        return;
    }
    d->counted = true;
    ++taken_;
    ready_.push_back(d);
    start_ready();
}

asio::awaitable<void> worker::hold(std::shared_ptr<delivery> d) {
    d->eta_timer = std::make_unique<asio::steady_timer>(client_.get_executor());
    while (!stopping_ && !is_revoked(d->message.id)) {
        const auto left = *d->message.eta - clock::now();
        if (left <= clock::duration::zero()) break;
        d->eta_timer->expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(left) +
                                    1ms);
        co_await d->eta_timer->async_wait(asio::as_tuple(asio::use_awaitable));
    }
    d->eta_timer.reset();
    --tasks_alive_;
    if (stopping_) {
        hand_back(d);
    } else {
        d->counted = true;
        ++taken_;
        ready_.push_back(d);
        start_ready();
    }
    drain_wake_.cancel();
}

void worker::hand_back(std::shared_ptr<delivery> d) {
    ++stats_.handed_back;
    outcome o;
    o.tag = d->tag;
    o.hand_back = true;
    finish(d, std::move(o));
}

void worker::start_ready() {
    while (running_count_ < options_.concurrency && !ready_.empty()) {
        auto d = ready_.front();
        ready_.pop_front();
        const auto& m = d->message;
        const auto now = clock::now();
        const bool expired = m.expires && *m.expires <= now;
        if (is_revoked(m.id) || expired) {
            ++stats_.revoked;
            const auto exc = revoked_error(expired ? "expired" : "revoked");
            outcome o;
            o.tag = d->tag;
            o.result_id = m.id;
            o.record = result_record(m.id, states::revoked, encode_exception(exc),
                                     traceback_of(exc, options_.hostname), now);
            event("task-revoked", json::object{{"uuid", m.id},
                                               {"terminated", false},
                                               {"signum", nullptr},
                                               {"expired", expired}});
            finish(d, std::move(o));
            continue;
        }
        ++running_count_;
        ++tasks_alive_;
        d->running = true;
        asio::co_spawn(client_.get_executor(), run_task(d), asio::detached);
    }
}

asio::awaitable<void> worker::run_task(std::shared_ptr<delivery> d) {
    const auto& m = d->message;
    auto ex = co_await asio::this_coro::executor;
    d->started = clock::now();
    event("task-started", json::object{{"uuid", m.id}});
    // The first of the two limits cancels the run.
    std::optional<double> limit;
    bool soft = false;
    if (m.time_limit && *m.time_limit > 0) limit = *m.time_limit;
    if (m.soft_time_limit && *m.soft_time_limit > 0 && (!limit || *m.soft_time_limit < *limit)) {
        limit = *m.soft_time_limit;
        soft = true;
    }
    asio::steady_timer wake(ex);
    const auto deadline = limit
                              ? std::chrono::steady_clock::now() +
                                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                        std::chrono::duration<double>(*limit))
                              : std::chrono::steady_clock::time_point::max();
    bool done = false;
    std::exception_ptr failure;
    json::value value;
    task_context ctx(m);
    asio::co_spawn(
        ex, d->task->handler(ctx),
        asio::bind_cancellation_slot(d->cancel.slot(), [&](std::exception_ptr e, json::value v) {
            failure = e;
            value = std::move(v);
            done = true;
            wake.cancel();
        }));
    wake.expires_at(deadline);
    while (!done) {
        co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
        if (done) break;
        if (limit && std::chrono::steady_clock::now() >= deadline &&
            d->stopped_for == delivery::stop_reason::none) {
            d->stopped_for =
                soft ? delivery::stop_reason::soft_time_limit : delivery::stop_reason::time_limit;
            d->cancel.emit(asio::cancellation_type::terminal);
        }
        if (!done) wake.expires_at(std::chrono::steady_clock::time_point::max());
    }
    --running_count_;
    --tasks_alive_;

    const auto now = clock::now();
    const double runtime = std::chrono::duration<double>(now - d->started).count();
    outcome o;
    o.tag = d->tag;
    auto fail = [&](const exception_info& exc) {
        ++stats_.failed;
        o.result_id = m.id;
        o.record = result_record(m.id, states::failure, encode_exception(exc),
                                 traceback_of(exc, options_.hostname), now);
        std::string text = exc.type;
        if (!exc.args.empty() && exc.args[0].is_string())
            text += "(" + std::string(exc.args[0].get_string()) + ")";
        event("task-failed", json::object{{"uuid", m.id},
                                          {"exception", text},
                                          {"traceback", traceback_of(exc, options_.hostname)}});
    };
    using reason = delivery::stop_reason;
    if (d->stopped_for == reason::shutdown) {
        ++stats_.handed_back;
        o.hand_back = true;
    } else if (d->stopped_for == reason::revoked) {
        ++stats_.revoked;
        const auto exc = revoked_error("terminated");
        o.result_id = m.id;
        o.record = result_record(m.id, states::revoked, encode_exception(exc),
                                 traceback_of(exc, options_.hostname), now);
        event(
            "task-revoked",
            json::object{{"uuid", m.id}, {"terminated", true}, {"signum", 15}, {"expired", false}});
    } else if (d->stopped_for == reason::time_limit || d->stopped_for == reason::soft_time_limit) {
        fail({d->stopped_for == reason::time_limit ? "TimeLimitExceeded" : "SoftTimeLimitExceeded",
              "billiard.exceptions", json::array{*limit}});
    } else if (!failure) {
        ++stats_.succeeded;
        if (!m.ignore_result) {
            o.result_id = m.id;
            try {
                o.record = result_record(m.id, states::success, value, "", now);
            } catch (const std::exception& e) { // a NaN in the result
                --stats_.succeeded;
                fail({"ValueError", "builtins", json::array{json::string(e.what())}});
            }
        }
        if (!o.record.empty() || m.ignore_result)
            event("task-succeeded", json::object{{"uuid", m.id},
                                                 {"result", json::serialize(value)},
                                                 {"runtime", runtime}});
    } else {
        try {
            std::rethrow_exception(failure);
        } catch (const retry_request& r) {
            if (m.retries >= d->task->max_retries) {
                fail({"MaxRetriesExceededError", "celery.exceptions",
                      json::array{json::string("Can't retry " + m.task + "[" + m.id +
                                               "] args:" + json::serialize(m.args) +
                                               " kwargs:" + json::serialize(m.kwargs))}});
            } else {
                ++stats_.retried;
                try {
                    o.requeue_message =
                        retry_envelope(d->raw, m.retries + 1, now + r.countdown, new_uuid());
                    o.requeue_list = d->list;
                    const std::string why =
                        r.reason.empty() ? "Retry in " + std::to_string(r.countdown.count()) + "ms"
                                         : r.reason;
                    const exception_info exc{"Retry", "celery.exceptions",
                                             json::array{json::string(why)}};
                    o.result_id = m.id;
                    o.record = result_record(m.id, states::retry, encode_exception(exc),
                                             traceback_of(exc, options_.hostname), now);
                    event("task-retried", json::object{{"uuid", m.id},
                                                       {"exception", "Retry(" + why + ")"},
                                                       {"traceback", ""}});
                } catch (const std::exception& e) {
                    --stats_.retried;
                    fail({"RuntimeError", "builtins", json::array{json::string(e.what())}});
                }
            }
        } catch (const task_error& e) {
            fail({e.type, e.module, json::array{json::string(e.what())}});
        } catch (const std::exception& e) {
            fail({"RuntimeError", "builtins", json::array{json::string(e.what())}});
        } catch (...) {
            fail({"RuntimeError", "builtins", json::array{json::string("unknown exception")}});
        }
    }
    finish(d, std::move(o));
    start_ready();
}

void worker::finish(std::shared_ptr<delivery> d, outcome o) {
    held_.erase(d->tag);
    if (d->counted) {
        d->counted = false;
        --taken_;
    }
    pending_.push_back(std::move(o));
    flush_wake_.cancel();
    pump_wake_.cancel();
    drain_wake_.cancel();
}

asio::awaitable<void> worker::pump() {
    const std::vector<std::string> lists = list_keys();
    std::vector<std::string> take_keys{std::string(unacked_key), std::string(unacked_index_key),
                                       options_.dead_letters};
    take_keys.insert(take_keys.end(), lists.begin(), lists.end());
    const std::size_t cap = options_.concurrency + options_.prefetch;
    std::vector<std::string> popped; // [list, message] from BRPOP
    while (!stopping_) {
        if (taken_ >= cap && popped.empty()) {
            pump_wake_.expires_after(1h);
            co_await pump_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        const std::size_t want = std::min(options_.max_batch, cap > taken_ ? cap - taken_ : 1);
        bool failed = false;
        try {
            const auto now = clock::now();
            std::vector<std::string> args{std::to_string(want), seconds_text(now), iso8601(now)};
            args.insert(args.end(), popped.begin(), popped.end());
            script_request req;
            req.call(take_script(), take_keys, args);
            generic_response resp;
            co_await req.run(client_, resp);
            popped.clear();
            const auto& reply = resp.at(0);
            if (reply.has_error())
                throw_error(error::script_error, "celery take: " + reply.error().message);
            const auto& items = reply.value().elements;
            for (std::size_t i = 0; i + 2 < items.size(); i += 3)
                accept(items[i].str, items[i + 1].str, items[i + 2].str);
            if (!items.empty() || stopping_) continue;
            // Nothing ready: block on the lists (kombu's BRPOP), then record what it gave.
            request brpop;
            brpop.push("BRPOP", lists, std::chrono::duration<double>(options_.idle_wait).count());
            generic_response got;
            co_await client_.exec(brpop, got);
            if (!got.at(0).has_error() && got[0].value().elements.size() == 2) {
                popped.push_back(got[0].value().elements[0].str);
                popped.push_back(got[0].value().elements[1].str);
            }
        } catch (const std::exception&) {
            ++stats_.errors;
            failed = true;
        }
        if (failed) {
            pump_wake_.expires_after(200ms);
            co_await pump_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }
    // A message popped but never recorded: back on its list, as it was.
    if (!popped.empty()) {
        request back;
        back.push("RPUSH", popped[0], popped[1]);
        generic_response ignored;
        co_await client_.exec(back, ignored, asio::as_tuple(asio::use_awaitable));
    }
}

asio::awaitable<void> worker::flusher() {
    std::vector<outcome> batch;
    std::vector<std::pair<std::string, std::string>> events;
    int failures = 0;
    for (;;) {
        if (pending_.empty() && event_messages_.empty()) {
            // Last to end: the other helpers may still have something to say (worker-offline).
            if (drained_ && helpers_ <= 1) break;
            flush_wake_.expires_after(1h);
            co_await flush_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        batch.swap(pending_);
        events.swap(event_messages_);
        script_request req;
        std::vector<std::string> acks, back;
        const auto expires = static_cast<std::int64_t>(options_.result_expires.count());
        for (const auto& o : batch) {
            if (!o.record.empty()) {
                const std::string key = result_key(o.result_id);
                req.push("SETEX", key, expires, o.record);
                req.push("PUBLISH", key, o.record);
            }
            if (!o.requeue_message.empty()) req.push("LPUSH", o.requeue_list, o.requeue_message);
            if (!o.dead_letter.empty()) req.push("RPUSH", options_.dead_letters, o.dead_letter);
            if (o.tag.empty()) continue;
            (o.hand_back ? back : acks).push_back(o.tag);
        }
        for (const auto& [channel, message] : events)
            req.push("PUBLISH", channel, message);
        if (!acks.empty()) {
            req.push("ZREM", unacked_index_key, acks);
            req.push("HDEL", unacked_key, acks);
        }
        if (!back.empty()) {
            std::vector<std::string> args{"tags"};
            args.insert(args.end(), back.begin(), back.end());
            args.push_back(iso8601(clock::now()));
            const std::array<std::string_view, 3> keys{unacked_key, unacked_index_key,
                                                       options_.dead_letters};
            req.call(restore_script(), keys, args);
        }
        bool ok = true;
        try {
            generic_response resp;
            co_await req.run(client_, resp);
        } catch (const std::exception&) {
            ok = false;
        }
        if (ok) {
            failures = 0;
            batch.clear();
            events.clear();
            continue;
        }
        // Kept for the next try, in their order; given up on only once drained and Redis stays
        // away (the messages then come back after the visibility timeout).
        ++stats_.errors;
        if (drained_ && ++failures > 20) break;
        batch.insert(batch.end(), std::make_move_iterator(pending_.begin()),
                     std::make_move_iterator(pending_.end()));
        pending_.swap(batch);
        batch.clear();
        events.insert(events.end(), event_messages_.begin(), event_messages_.end());
        event_messages_.swap(events);
        events.clear();
        flush_wake_.expires_after(200ms);
        co_await flush_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

asio::awaitable<void> worker::refresher() {
    const auto period = std::max<std::chrono::milliseconds>(options_.visibility_timeout / 3, 5ms);
    while (!drained_) {
        refresh_timer_.expires_after(period);
        co_await refresh_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (held_.empty() || drained_) continue;
        request req;
        const std::string now = seconds_text(clock::now());
        std::vector<std::string> args{"XX"};
        for (const auto& [tag, d] : held_) {
            args.push_back(now);
            args.push_back(tag);
        }
        req.push("ZADD", unacked_index_key, args);
        generic_response ignored;
        auto [ec, n] = co_await client_.exec(req, ignored, asio::as_tuple(asio::use_awaitable));
        if (ec) ++stats_.errors;
    }
}

asio::awaitable<void> worker::restorer() {
    const std::array<std::string_view, 3> keys{unacked_key, unacked_index_key,
                                               options_.dead_letters};
    constexpr int per_call = 100;
    auto period = options_.restore_interval;
    while (!drained_) {
        restore_timer_.expires_after(period);
        co_await restore_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (drained_) break;
        period = options_.restore_interval;
        try {
            const auto now = clock::now();
            const std::vector<std::string> args{"visible",
                                                seconds_text(now - options_.visibility_timeout),
                                                std::to_string(per_call), iso8601(now)};
            script_request req;
            req.call(restore_script(), keys, args);
            generic_response resp;
            co_await req.run(client_, resp);
            if (resp.at(0).has_error()) throw std::runtime_error(resp[0].error().message);
            const long n = std::atol(resp[0].value().str.c_str());
            stats_.restored += static_cast<std::uint64_t>(n);
            if (n >= per_call) period = 0ms; // more to put back
        } catch (const std::exception&) {
            ++stats_.errors;
        }
    }
}

asio::awaitable<void> worker::control_listener() {
    if (!control_) co_return;
    try {
        std::vector<std::string> channels{pidbox_channel_};
        control_sub_ = co_await control_->subscribe(std::move(channels));
    } catch (const std::exception&) {
        ++stats_.errors;
        co_return;
    }
    for (;;) {
        messaging::message msg;
        try {
            msg = co_await control_sub_->receive();
        } catch (const std::exception&) {
            break; // unsubscribed at the end of run()
        }
        json::error_code ec;
        const json::value env = json::parse(msg.payload, ec);
        const json::object* o = ec ? nullptr : env.if_object();
        if (!o) continue;
        const auto* body = o->if_contains("body");
        if (!body || !body->is_string()) continue;
        std::optional<std::string> decoded = std::string(body->get_string());
        if (const auto* p = o->if_contains("properties"); p && p->is_object())
            if (const auto* enc = p->get_object().if_contains("body_encoding");
                enc && enc->is_string() && enc->get_string() == "base64")
                decoded = base64_decode(body->get_string());
        if (!decoded) continue;
        const json::value cmd = json::parse(*decoded, ec);
        const json::object* c = ec ? nullptr : cmd.if_object();
        if (!c) continue;
        if (const auto* dest = c->if_contains("destination"); dest && dest->is_array()) {
            bool mine = false;
            for (const auto& h : dest->get_array())
                mine = mine || (h.is_string() && h.get_string() == options_.hostname);
            if (!mine) continue;
        }
        const auto* method = c->if_contains("method");
        const auto* args = c->if_contains("arguments");
        if (!method || !method->is_string() || method->get_string() != "revoke" || !args ||
            !args->is_object())
            continue;
        const auto& a = args->get_object();
        bool terminate = false;
        if (const auto* t = a.if_contains("terminate"); t && t->is_bool())
            terminate = t->get_bool();
        if (const auto* id = a.if_contains("task_id")) {
            if (id->is_string()) revoke(std::string(id->get_string()), terminate);
            if (id->is_array())
                for (const auto& i : id->get_array())
                    if (i.is_string()) revoke(std::string(i.get_string()), terminate);
        }
    }
}

asio::awaitable<void> worker::heartbeats() {
    if (!options_.send_events) co_return;
    auto worker_event = [this](std::string_view type) {
        double load[3] = {0, 0, 0};
        ::getloadavg(load, 3);
        event(type,
              json::object{{"freq", std::chrono::duration<double>(options_.heartbeat).count()},
                           {"active", running_count_},
                           {"processed", stats_.succeeded + stats_.failed},
                           {"loadavg", json::array{load[0], load[1], load[2]}},
                           {"sw_ident", "akv-celery"},
                           {"sw_ver", "5.2.6"},
                           {"sw_sys", "Linux"}});
    };
    worker_event("worker-online");
    while (!stopping_) {
        heartbeat_timer_.expires_after(options_.heartbeat);
        co_await heartbeat_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (!stopping_) worker_event("worker-heartbeat");
    }
    worker_event("worker-offline");
}

asio::awaitable<void> worker::helper(asio::awaitable<void> body) {
    ++helpers_;
    try {
        co_await std::move(body);
    } catch (const std::exception&) {
        ++stats_.errors;
    }
    --helpers_;
    drain_wake_.cancel();
    flush_wake_.cancel();
}

asio::awaitable<void> worker::run() {
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, helper(flusher()), asio::detached);
    asio::co_spawn(ex, helper(refresher()), asio::detached);
    asio::co_spawn(ex, helper(restorer()), asio::detached);
    asio::co_spawn(ex, helper(control_listener()), asio::detached);
    asio::co_spawn(ex, helper(heartbeats()), asio::detached);
    co_await pump();

    // Draining: what waits for an eta or a handler is handed back (stop()); running handlers
    // get the grace period, then are cancelled and handed back too.
    heartbeat_timer_.cancel();
    const auto grace_end = std::chrono::steady_clock::now() + options_.shutdown_grace;
    bool cancelled = false;
    while (tasks_alive_ > 0) {
        if (!cancelled && std::chrono::steady_clock::now() >= grace_end) {
            cancelled = true;
            for (auto& [tag, d] : held_)
                if (d->running) {
                    d->stopped_for = delivery::stop_reason::shutdown;
                    d->cancel.emit(asio::cancellation_type::terminal);
                }
        }
        drain_wake_.expires_at(cancelled ? std::chrono::steady_clock::now() + 1h : grace_end);
        co_await drain_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    drained_ = true;
    flush_wake_.cancel();
    refresh_timer_.cancel();
    restore_timer_.cancel();
    if (control_sub_) {
        try {
            co_await control_sub_->unsubscribe();
        } catch (const std::exception&) {
        }
    }
    while (helpers_ > 0) {
        drain_wake_.expires_after(1h);
        co_await drain_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

} // namespace akv::queue::celery
