// akv-worker: runs handlers on the jobs of named queues (akv::queue::worker) and on batches of
// streams' consumer groups. Handlers are registered by name in this file; an app that links the
// library registers its own the same way. `akv-worker --help` lists the flags.
//
//   akv-worker --queue emails=exec --exec-allow sendmail
//   akv-worker --queue demo.comments=demo.preprocess --stream demo:interest=demo.signups
#include "common/app.hpp"
#include "common/gateway_flags.hpp"
#include "demo/handlers.hpp"
#include "demo/pipeline.hpp"
#include "exec.hpp"

#include <akv/client.hpp>
#include <akv/messaging/consumer_group.hpp>
#include <akv/queue/worker.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

using stream_handler =
    std::function<asio::awaitable<void>(std::vector<akv::messaging::stream_entry>)>;

akv::app::command_line command_line() {
    return akv::app::command_line(
        "akv-worker", "Runs handlers on the jobs of task queues and on batches of streams.",
        {
            {"queue", "NAME=HANDLER", "run HANDLER on the jobs of queue NAME", true},
            {"stream", "STREAM=HANDLER",
             "run HANDLER on batches of STREAM, in the consumer group named HANDLER", true},
            {"concurrency", "N", "jobs at once per queue (default 16)"},
            {"lease-ms", "N", "a job whose worker died runs again after this (default 30000)"},
            {"claim-idle-ms", "N",
             "a stream entry pending this long is taken over from its consumer (default 30000)"},
            {"batch", "N", "stream entries per batch (default 256)"},
            {"exec-allow", "PROGRAM", "programs the exec handler may run (* any)", true},
            {"db", "FILE", "the demo's SQLite database (default DATA-DIR/demo.sqlite)"},
            {"history", "PATTERN[=MAXLEN[,AGE_S]]",
             "gateway channels with history, as given to akv-gateway (for publishing)", true},
            {"prefix", "P", "gateway channel prefix, as given to akv-gateway"},
        },
        "queue handlers:  exec             {\"argv\": [...], \"stdin\": ...}: runs a program\n"
        "                 demo.posts       the demo: a signup post into the database\n"
        "                 demo.preprocess  the demo: a comment -> 44 features -> demo:embeddings\n"
        "stream handlers: demo.signups     the demo: interest entries -> database -> post:<id>");
}

} // namespace

int main(int argc, char** argv) {
    auto cl = command_line();
    std::vector<std::pair<std::string, std::string>> queues, streams;
    akv::gateway::options publish;
    if (auto done = akv::app::start(cl, argc, argv, [&] {
            auto split = [](const std::string& flag, const std::string& v) {
                const auto eq = v.find('=');
                if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
                    throw akv::app::usage_error("--" + flag + ": expected NAME=HANDLER, got '" + v +
                                                "'");
                return std::make_pair(v.substr(0, eq), v.substr(eq + 1));
            };
            for (const auto& q : cl.all("queue")) {
                queues.push_back(split("queue", q));
                const auto& h = queues.back().second;
                if (h != "exec" && h != "demo.posts" && h != "demo.preprocess")
                    throw akv::app::usage_error("--queue: no queue handler '" + h +
                                                "' (exec, demo.posts, demo.preprocess)");
            }
            for (const auto& s : cl.all("stream")) {
                streams.push_back(split("stream", s));
                if (streams.back().second != "demo.signups")
                    throw akv::app::usage_error("--stream: no stream handler '" +
                                                streams.back().second + "' (demo.signups)");
            }
            if (queues.empty() && streams.empty())
                throw akv::app::usage_error(
                    "nothing to do: give --queue NAME=HANDLER or --stream STREAM=HANDLER");
            for (const auto& h : cl.all("history"))
                publish.history.push_back(akv::app::history_rule(h));
            publish.channel_prefix = cl.get_or("prefix", "");
            cl.require_positive({"concurrency", "lease-ms", "claim-idle-ms", "batch"});
        }))
        return *done;

    int failure = akv::app::exit_ok;
    const auto target = akv::app::open_redis(cl, "akv-worker", failure);
    if (!target) return failure;

    asio::io_context io(1);
    akv::client redis(io.get_executor(), target->config());
    auto ctx = std::make_shared<akv::demo::stage_context>(
        akv::demo::stage_context{redis, publish, nullptr});
    const bool needs_db = std::any_of(queues.begin(), queues.end(),
                                      [](auto& q) { return q.second == "demo.posts"; }) ||
                          !streams.empty();
    if (needs_db) {
        const std::string path = cl.get_or("db", (target->data_dir() / "demo.sqlite").string());
        try {
            std::filesystem::create_directories(std::filesystem::path(path).parent_path());
            ctx->db = std::make_shared<akv::demo::database>(path);
        } catch (const std::exception& e) {
            spdlog::error("{}", e.what());
            return akv::app::exit_usage;
        }
        spdlog::info("database {}", path);
    }

    akv::queue::worker_options wopts;
    wopts.concurrency = cl.number<std::size_t>("concurrency", 16);
    wopts.lease_time = std::chrono::milliseconds(cl.number<long>("lease-ms", 30000));
    std::vector<std::unique_ptr<akv::queue::worker>> workers;
    for (const auto& [queue, name] : queues) {
        akv::queue::handler h = name == "exec" ? akv::worker_app::exec_handler(cl.all("exec-allow"))
                                : name == "demo.posts" ? akv::demo::posts_handler(ctx)
                                                       : akv::demo::preprocess_handler(ctx);
        try {
            workers.push_back(
                std::make_unique<akv::queue::worker>(redis, queue, std::move(h), wopts));
        } catch (const std::exception& e) {
            spdlog::error("--queue {}: {}", queue, e.what());
            return akv::app::exit_usage;
        }
        spdlog::info("queue {}: handler {}", queue, name);
    }

    const std::string consumer = "akv-worker-" + std::to_string(::getpid());
    std::vector<std::unique_ptr<akv::messaging::consumer_group>> groups;
    for (const auto& [stream, name] : streams) {
        akv::messaging::group_options g;
        g.stream = stream;
        g.group = std::string(akv::demo::signups_group);
        g.consumer = consumer;
        g.claim_idle = std::chrono::milliseconds(cl.number<long>("claim-idle-ms", 30000));
        groups.push_back(std::make_unique<akv::messaging::consumer_group>(redis, g));
        spdlog::info("stream {}: handler {} (group {}, consumer {})", stream, name, g.group,
                     consumer);
    }
    const std::size_t batch = cl.number<std::size_t>("batch", 256);

    bool stopping = false;
    int status = akv::app::exit_ok;
    std::size_t running = workers.size() + groups.size();
    asio::signal_set signals(io, SIGINT, SIGTERM);
    auto stop_all = [&] {
        stopping = true;
        for (auto& w : workers)
            w->stop();
    };
    auto finished = [&] {
        if (--running > 0) return;
        signals.cancel();
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
                status = akv::app::exit_failure;
                stop_all(); // one part failing takes the process down: a supervisor restarts it
            }
            finished();
        };
    };

    asio::co_spawn(io, redis.run(), [](std::exception_ptr) {});
    for (auto& w : workers)
        asio::co_spawn(io, w->run(), on_end("queue " + w->queue()));
    for (auto& g : groups) {
        stream_handler handler = [ctx](std::vector<akv::messaging::stream_entry> b) {
            return akv::demo::write_signups(ctx, std::move(b));
        };
        asio::co_spawn(
            io,
            [&, group = g.get(), handler]() -> asio::awaitable<void> {
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
                        std::vector<akv::messaging::stream_entry> entries;
                        if (std::chrono::steady_clock::now() >= next_claim) {
                            entries = co_await group->claim_stale(batch);
                            next_claim = std::chrono::steady_clock::now() + 1s;
                        }
                        if (entries.empty()) entries = co_await group->read(batch, 1000ms);
                        if (entries.empty()) continue;
                        std::vector<std::string> ids;
                        for (const auto& e : entries)
                            ids.push_back(e.id);
                        co_await handler(std::move(entries));
                        co_await group->ack(ids);
                    } catch (const std::exception& e) {
                        failure = e.what(); // left pending: taken over again after claim-idle
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
    std::printf("akv-worker running: %zu queue(s), %zu stream(s)\n", workers.size(), groups.size());
    std::fflush(stdout);
    io.run();
    return status;
}
