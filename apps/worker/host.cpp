#include "host.hpp"

#include "common/metrics.hpp"

#include <akv/messaging/consumer_group.hpp>
#include <akv/messaging/subscriber.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <unistd.h>

namespace akv::worker_app {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct queue_figures {
    metrics::histogram duration; // the handler's run
    metrics::histogram wait;     // enqueue to start
};

struct stream_figures {
    std::uint64_t batches = 0;
    std::uint64_t entries = 0;
    std::uint64_t failures = 0;
};

// The handler, timed: how long jobs waited and how long they ran.
queue::handler timed(queue::handler inner, queue_figures& figures) {
    return [inner = std::move(inner),
            &figures](queue::job_context& job) -> asio::awaitable<std::string> {
        const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        if (job.job().enqueued_ms > 0)
            figures.wait.observe(
                static_cast<double>(std::max<std::int64_t>(0, now_ms - job.job().enqueued_ms)) /
                1000);
        const auto start = std::chrono::steady_clock::now();
        std::exception_ptr failure;
        std::string result;
        try {
            result = co_await inner(job);
        } catch (...) {
            failure = std::current_exception();
        }
        figures.duration.observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        if (failure) std::rethrow_exception(failure);
        co_return result;
    };
}

std::string metrics_text(const std::vector<std::unique_ptr<queue::worker>>& workers,
                         const std::map<std::string, queue_figures>& queues,
                         const std::map<std::string, stream_figures>& streams,
                         const akv::client& redis) {
    metrics::exposition out;
    auto per_queue = [&](const char* name, const char* type, const char* help, auto value) {
        out.family(name, type, help);
        for (const auto& w : workers)
            out.sample({{"queue", w->queue()}}, static_cast<double>(value(*w)));
    };
    using worker = queue::worker;
    per_queue("akv_queue_jobs_processed_total", "counter", "Jobs whose handler returned.",
              [](const worker& w) { return w.stats().completed; });
    per_queue("akv_queue_jobs_failed_total", "counter",
              "Runs that threw, timed out or were cancelled.",
              [](const worker& w) { return w.stats().failed; });
    per_queue("akv_queue_jobs_running", "gauge", "Jobs running now.",
              [](const worker& w) { return w.running(); });
    per_queue("akv_queue_lost_leases_total", "counter",
              "Runs whose job had been recovered meanwhile (their result not kept).",
              [](const worker& w) { return w.stats().lost_leases; });
    per_queue("akv_queue_recovered_total", "counter", "Expired leases this worker put back.",
              [](const worker& w) { return w.stats().recovered; });
    per_queue("akv_queue_claims_total", "counter", "Claims that returned jobs.",
              [](const worker& w) { return w.stats().claims; });
    per_queue("akv_queue_errors_total", "counter", "Redis calls that failed and were retried.",
              [](const worker& w) { return w.stats().errors; });
    for (const auto& [queue, f] : queues)
        f.duration.write(out, "akv_queue_job_duration_seconds", "How long the handler ran.",
                         {{"queue", queue}});
    for (const auto& [queue, f] : queues)
        f.wait.write(out, "akv_queue_job_wait_seconds",
                     "From enqueue to the handler's start (a delayed job's delay included).",
                     {{"queue", queue}});
    auto per_stream = [&](const char* name, const char* help, auto value) {
        if (streams.empty()) return;
        out.family(name, "counter", help);
        for (const auto& [stream, f] : streams)
            out.sample({{"stream", stream}}, static_cast<double>(value(f)));
    };
    per_stream("akv_stream_batches_total", "Batches handled and acked.",
               [](const stream_figures& f) { return f.batches; });
    per_stream("akv_stream_entries_total", "Entries handled and acked.",
               [](const stream_figures& f) { return f.entries; });
    per_stream("akv_stream_failures_total", "Batches whose handler failed (left pending).",
               [](const stream_figures& f) { return f.failures; });
    metrics::write_client_metrics(out, redis);
    return out.text();
}

} // namespace

host::host(std::string program, std::string summary)
    : program_(std::move(program))
    , summary_(std::move(summary)) {}

void host::add_flag(app::flag f) {
    flags_.push_back(std::move(f));
}

void host::add_queue_handler(std::string name, std::string help, queue_factory make) {
    queue_handlers_.push_back({std::move(name), std::move(help), std::move(make)});
}

void host::add_stream_handler(std::string name, std::string help, stream_factory make) {
    stream_handlers_.push_back({std::move(name), std::move(help), std::move(make)});
}

void host::add_celery_tasks(celery_tasks add) {
    celery_tasks_.push_back(std::move(add));
}

app::command_line host::command_line() const {
    std::vector<app::flag> flags{
        {"queue", "NAME=HANDLER", "run HANDLER on the jobs of queue NAME", true},
        {"stream", "STREAM=HANDLER",
         "run HANDLER on batches of STREAM, in the consumer group named HANDLER", true},
        {"concurrency", "N", "jobs at once per queue (default 16)"},
        {"lease-ms", "N", "a job whose worker died runs again after this (default 30000)"},
        {"heartbeat-ms", "N",
         "the worker's live record is written this often; gone after 3 missed (default 5000)"},
        {"claim-idle-ms", "N",
         "a stream entry pending this long is taken over from its consumer (default 30000)"},
        {"batch", "N", "stream entries per batch (default 256)"},
        {"celery-queue", "QUEUE",
         "run Celery tasks sent to QUEUE (kombu's Redis transport, Celery's result backend)", true},
        {"celery-visibility-ms", "N",
         "a Celery task whose worker died runs again after this; as Celery's "
         "visibility_timeout (default 3600000)"},
        {"celery-dead-letters", "KEY",
         "list of the Celery messages set aside "
         "(default akv:celery:dead-letters)"},
        {"celery-events", "", "send Celery task events (celery worker -E), for Flower"},
        app::metrics_listen_flag(),
    };
    flags.insert(flags.end(), flags_.begin(), flags_.end());
    std::string epilog;
    for (const auto& h : queue_handlers_)
        epilog += (epilog.empty() ? "queue handlers:  " : "                 ") + h.name +
                  std::string(h.name.size() < 16 ? 17 - h.name.size() : 1, ' ') + h.help + "\n";
    bool first = true;
    for (const auto& h : stream_handlers_) {
        epilog += (first ? "stream handlers: " : "                 ") + h.name +
                  std::string(h.name.size() < 16 ? 17 - h.name.size() : 1, ' ') + h.help + "\n";
        first = false;
    }
    if (!epilog.empty()) epilog.pop_back();
    return app::command_line(program_, summary_, std::move(flags), std::move(epilog));
}

int host::run(int argc, char** argv) {
    auto cl = command_line();
    std::vector<std::pair<std::string, const named_queue*>> queues;
    std::vector<std::pair<std::string, const named_stream*>> streams;
    if (auto done = app::start(cl, argc, argv, [&] {
            auto split = [](const std::string& flag, const std::string& v) {
                const auto eq = v.find('=');
                if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
                    throw app::usage_error("--" + flag + ": expected NAME=HANDLER, got '" + v +
                                           "'");
                return std::make_pair(v.substr(0, eq), v.substr(eq + 1));
            };
            auto known = [](const auto& list) {
                std::string names;
                for (const auto& h : list)
                    names += (names.empty() ? "" : ", ") + h.name;
                return names.empty() ? std::string("none") : names;
            };
            for (const auto& q : cl.all("queue")) {
                auto [name, handler] = split("queue", q);
                auto it = std::find_if(queue_handlers_.begin(), queue_handlers_.end(),
                                       [&](const named_queue& h) { return h.name == handler; });
                if (it == queue_handlers_.end())
                    throw app::usage_error("--queue: no queue handler '" + handler + "' (" +
                                           known(queue_handlers_) + ")");
                queues.emplace_back(name, &*it);
            }
            for (const auto& s : cl.all("stream")) {
                auto [name, handler] = split("stream", s);
                auto it = std::find_if(stream_handlers_.begin(), stream_handlers_.end(),
                                       [&](const named_stream& h) { return h.name == handler; });
                if (it == stream_handlers_.end())
                    throw app::usage_error("--stream: no stream handler '" + handler + "' (" +
                                           known(stream_handlers_) + ")");
                streams.emplace_back(name, &*it);
            }
            if (queues.empty() && streams.empty() && cl.all("celery-queue").empty())
                throw app::usage_error("nothing to do: give --queue NAME=HANDLER, --stream "
                                       "STREAM=HANDLER or --celery-queue QUEUE");
            cl.require_positive({"concurrency", "lease-ms", "heartbeat-ms", "claim-idle-ms",
                                 "batch", "celery-visibility-ms"});
        }))
        return *done;

    int failure = app::exit_ok;
    const auto target = app::open_redis(cl, program_, failure);
    if (!target) return failure;

    asio::io_context io(1);
    akv::client redis(io.get_executor(), target->config());
    host_context ctx{redis, cl, target->data_dir()};

    // What /metrics shows, per queue and per stream; node-stable (the handlers keep references).
    std::map<std::string, queue_figures> queue_stats;
    std::map<std::string, stream_figures> stream_stats;

    queue::worker_options wopts;
    wopts.concurrency = cl.number<std::size_t>("concurrency", 16);
    wopts.lease_time = std::chrono::milliseconds(cl.number<long>("lease-ms", 30000));
    wopts.heartbeat = std::chrono::milliseconds(cl.number<long>("heartbeat-ms", 5000));
    std::vector<std::unique_ptr<queue::worker>> workers;
    std::vector<std::pair<std::unique_ptr<messaging::consumer_group>, stream_handler>> groups;
    const std::string consumer = program_ + "-" + std::to_string(::getpid());
    try {
        for (const auto& [queue, h] : queues) {
            workers.push_back(std::make_unique<queue::worker>(
                redis, queue, timed(h->make(ctx), queue_stats[queue]), wopts));
            spdlog::info("queue {}: handler {}", queue, h->name);
        }
        for (const auto& [stream, h] : streams) {
            messaging::group_options g;
            g.stream = stream;
            g.group = h->name;
            g.consumer = consumer;
            g.claim_idle = std::chrono::milliseconds(cl.number<long>("claim-idle-ms", 30000));
            groups.emplace_back(std::make_unique<messaging::consumer_group>(redis, g),
                                h->make(ctx));
            spdlog::info("stream {}: handler {} (group {}, consumer {})", stream, h->name, g.group,
                         consumer);
        }
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return app::exit_usage;
    }
    const std::size_t batch = cl.number<std::size_t>("batch", 256);

    // One Celery worker for every --celery-queue, its tasks from the program's registrations.
    std::unique_ptr<messaging::subscriber> celery_control;
    std::unique_ptr<queue::celery::worker> celery;
    if (!cl.all("celery-queue").empty()) {
        queue::celery::worker_options co;
        co.queues = cl.all("celery-queue");
        co.concurrency = wopts.concurrency;
        co.visibility_timeout =
            std::chrono::milliseconds(cl.number<long>("celery-visibility-ms", 3600000));
        co.dead_letters = cl.get_or("celery-dead-letters", co.dead_letters);
        co.send_events = cl.has("celery-events");
        celery_control = std::make_unique<messaging::subscriber>(redis);
        try {
            celery = std::make_unique<queue::celery::worker>(redis, co, celery_control.get());
            for (const auto& add : celery_tasks_)
                add(*celery, ctx);
        } catch (const std::exception& e) {
            spdlog::error("{}", e.what());
            return app::exit_usage;
        }
        std::string names;
        for (const auto& q : co.queues)
            names += (names.empty() ? "" : ", ") + q;
        spdlog::info("celery queues {} as {}", names, celery->hostname());
    }

    bool stopping = false;
    int status = app::exit_ok;
    std::unique_ptr<gateway::metrics_listener> metrics;
    std::size_t running = workers.size() + groups.size() + (celery ? 1 : 0);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    auto stop_all = [&] {
        stopping = true;
        for (auto& w : workers)
            w->stop();
        if (celery) celery->stop();
    };
    auto finished = [&] {
        if (--running > 0) return;
        signals.cancel();
        if (metrics) metrics->stop();
        redis.cancel();
    };
    auto on_end = [&](std::string what) {
        return [&, what](std::exception_ptr e) {
            if (e && !stopping) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    spdlog::error("{}: {}", what, ex.what());
                }
                status = app::exit_failure;
                stop_all(); // one part failing takes the process down: a supervisor restarts it
            }
            finished();
        };
    };

    asio::co_spawn(io, redis.run(), [](std::exception_ptr) {});
    for (auto& w : workers)
        asio::co_spawn(io, w->run(), on_end("queue " + w->queue()));
    if (celery) asio::co_spawn(io, celery->run(), on_end("celery"));
    try {
        metrics = app::start_metrics(
            cl, io, [&] { return metrics_text(workers, queue_stats, stream_stats, redis); });
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return app::exit_usage;
    }
    for (auto& [g, handler] : groups) {
        asio::co_spawn(
            io,
            [&, group = g.get(), handle = handler,
             &figures = stream_stats[g->options().stream]]() -> asio::awaitable<void> {
                asio::steady_timer pause(co_await asio::this_coro::executor);
                bool created = false;
                auto next_claim = std::chrono::steady_clock::now();
                while (!stopping) {
                    std::string failure;
                    try {
                        if (!created) {
                            co_await group->create();
                            created = true;
                        }
                        std::vector<messaging::stream_entry> entries;
                        if (std::chrono::steady_clock::now() >= next_claim) {
                            entries = co_await group->claim_stale(batch);
                            next_claim = std::chrono::steady_clock::now() + 1s;
                        }
                        if (entries.empty()) entries = co_await group->read(batch, 1000ms);
                        if (entries.empty()) continue;
                        std::vector<std::string> ids;
                        for (const auto& e : entries)
                            ids.push_back(e.id);
                        co_await handle(std::move(entries));
                        co_await group->ack(ids);
                        ++figures.batches;
                        figures.entries += ids.size();
                    } catch (const std::exception& e) {
                        failure = e.what(); // left pending: taken over again after claim-idle
                        ++figures.failures;
                    }
                    if (!failure.empty() && !stopping) {
                        spdlog::warn("stream {}: {}", group->options().stream, failure);
                        pause.expires_after(500ms);
                        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                    }
                }
            },
            on_end("stream " + g->options().stream));
    }

    signals.async_wait([&](boost::system::error_code ec, int sig) {
        if (ec) return;
        spdlog::info("signal {}: finishing running jobs", sig);
        stop_all();
    });
    if (celery)
        std::printf("%s running: %zu queue(s), %zu stream(s), %zu celery queue(s)\n",
                    program_.c_str(), workers.size(), groups.size(), cl.all("celery-queue").size());
    else
        std::printf("%s running: %zu queue(s), %zu stream(s)\n", program_.c_str(), workers.size(),
                    groups.size());
    std::fflush(stdout);
    io.run();
    return status;
}

} // namespace akv::worker_app
