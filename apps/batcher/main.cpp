// akv-batcher: reads a stream in batches (a consumer group), runs a model from the model
// registry on each batch at once, and writes the results to an output stream; outputs and the
// inputs' acks go in one MULTI/EXEC, so a crash loses nothing and acks nothing unanswered
// (akv::messaging::batcher). `akv-batcher --help` lists the flags.
//
//   akv-batcher --input demo:embeddings --output demo:interest --model interest --threshold 0.5
#include "common/app.hpp"
#include "demo/pipeline.hpp"

#include <akv/client.hpp>
#include <akv/kv/model_registry.hpp>
#include <akv/messaging/batcher.hpp>
#include <akv/ml/model.hpp>
#include <akv/ml/tensor.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <unistd.h>

namespace asio = boost::asio;
namespace ml = akv::ml;
namespace msg = akv::messaging;
using namespace std::chrono_literals;

namespace {

akv::app::command_line command_line() {
    return akv::app::command_line(
        "akv-batcher",
        "Runs a model from the model registry on batches of a stream; results to another stream.",
        {
            {"input", "STREAM", "the stream to read (required)"},
            {"output", "STREAM", "where results go (required)"},
            {"group", "NAME", "consumer group on the input (default akv-batcher)"},
            {"model", "NAME[@REF]",
             "model in the registry (akv model put), REF latest (default), vN or a tag"},
            {"input-field", "FIELD",
             "the entry's features: AKVT f32 tensor [n] (default embedding)"},
            {"threshold", "X", "write only entries whose first output is >= X (default: all)"},
            {"max-batch", "N", "entries per batch (default 64)"},
            {"max-wait-ms", "N", "longest wait for a batch to fill (default 50)"},
            {"claim-idle-ms", "N", "entries pending this long are taken over (default 30000)"},
            {"output-maxlen", "N", "trim the output stream to about N entries (default 100000)"},
            {"reload-ms", "N",
             "check the registry for a newer model at least this often (default 5000); a move "
             "of latest or of the tag is seen at once (client-side caching)"},
            {"stats-key", "KEY",
             "hash of counters, written every second (default akv:batcher:OUTPUT)"},
        },
        "Each output entry has the input's fields but the features, plus \"score\" (the model's\n"
        "outputs, comma-separated). An input whose features cannot be read gets an output with\n"
        "\"error\" naming why instead of a score (and is acked: retrying would not fix it).");
}

struct model_state {
    std::shared_ptr<const ml::batch_model> model;
    std::uint64_t version = 0;
};

asio::awaitable<model_state> load_model(akv::client& redis, const std::string& name,
                                        const std::string& ref) {
    akv::kv::model_registry registry(redis, name);
    akv::kv::model m = co_await registry.load(ref);
    model_state s;
    s.model = akv::demo::model_from_files(m);
    s.version = m.version;
    co_return s;
}

} // namespace

int main(int argc, char** argv) {
    auto cl = command_line();
    std::string model_name, model_ref = "latest";
    std::optional<float> threshold;
    if (auto done = akv::app::start(cl, argc, argv, [&] {
            for (const char* required : {"input", "output", "model"})
                if (!cl.has(required))
                    throw akv::app::usage_error(std::string("--") + required + " is required");
            const std::string m = *cl.get("model");
            const auto at = m.find('@');
            model_name = m.substr(0, at);
            if (at != std::string::npos) model_ref = m.substr(at + 1);
            if (model_name.empty() || model_ref.empty())
                throw akv::app::usage_error("--model: expected NAME[@REF], got '" + m + "'");
            if (cl.has("threshold")) threshold = cl.number<float>("threshold", 0);
            cl.require_positive(
                {"max-batch", "max-wait-ms", "claim-idle-ms", "output-maxlen", "reload-ms"});
        }))
        return *done;

    int failure = akv::app::exit_ok;
    const auto target = akv::app::open_redis(cl, "akv-batcher", failure);
    if (!target) return failure;

    asio::io_context io(1);
    // The registry is watched through client-side caching: Redis says when `latest` (or the
    // tag) moves, and the batcher reloads then instead of polling. Broadcast mode on the
    // registry's keys only, unless the configuration asks for a cache of its own.
    akv::config redis_cfg = target->config();
    if (redis_cfg.cache.kind == akv::cache_options::mode::off) {
        redis_cfg.cache.kind = akv::cache_options::mode::broadcast;
        redis_cfg.cache.prefixes = {akv::kv::model_registry::key_prefix(model_name)};
    }
    akv::client redis(io.get_executor(), redis_cfg);
    asio::co_spawn(io, redis.run(), [](std::exception_ptr) {});

    // The model first: without it there is nothing to run.
    model_state current;
    int status = akv::app::exit_ok;
    asio::co_spawn(io, load_model(redis, model_name, model_ref),
                   [&](std::exception_ptr e, model_state s) {
                       if (e) {
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::exception& ex) {
                               spdlog::error("--model {}@{}: {}", model_name, model_ref, ex.what());
                           }
                           status = akv::app::exit_usage;
                       }
                       current = std::move(s);
                       io.stop();
                   });
    io.run();
    if (status != akv::app::exit_ok) return status;
    io.restart();
    spdlog::info("model {} v{}: {} inputs, {} outputs", model_name, current.version,
                 current.model->input_size(), current.model->output_size());

    const std::string input_field = cl.get_or("input-field", "embedding");
    msg::batcher_options bo;
    bo.group.stream = *cl.get("input");
    bo.group.group = cl.get_or("group", "akv-batcher");
    bo.group.consumer = "akv-batcher-" + std::to_string(::getpid());
    bo.group.claim_idle = std::chrono::milliseconds(cl.number<long>("claim-idle-ms", 30000));
    bo.output_stream = *cl.get("output");
    bo.max_batch = cl.number<std::size_t>("max-batch", 64);
    bo.max_wait = std::chrono::milliseconds(cl.number<long>("max-wait-ms", 50));
    bo.output_trim = msg::trim_options::maxlen(cl.number<std::size_t>("output-maxlen", 100000));
    std::uint64_t last_batch = 0;

    msg::batch_handler handler = [&current, &last_batch, input_field,
                                  threshold](std::span<const msg::stream_entry> batch)
        -> asio::awaitable<std::vector<msg::field_list>> {
        const auto model = current.model; // a reload may swap it meanwhile
        const std::size_t in = model->input_size(), out = model->output_size();
        const std::int64_t shape[] = {static_cast<std::int64_t>(in)};
        std::vector<float> x(batch.size() * in), y(batch.size() * out);
        std::vector<std::string> errors(batch.size());
        std::size_t rows = 0;
        std::vector<std::size_t> row_of(batch.size(), 0);
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const std::string* t = batch[i].field(input_field);
            try {
                if (!t) throw std::invalid_argument("no field \"" + input_field + "\"");
                ml::decode_f32_into(*t, std::span<float>(x).subspan(rows * in, in), shape);
                row_of[i] = rows++;
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        }
        if (rows > 0)
            model->predict(std::span<const float>(x.data(), rows * in), rows,
                           std::span<float>(y.data(), rows * out));
        std::vector<msg::field_list> outputs;
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const bool bad = !errors[i].empty();
            const float first = bad ? 0.0f : y[row_of[i] * out];
            if (!bad && threshold && first < *threshold) continue;
            msg::field_list f;
            for (const auto& [k, v] : batch[i].fields)
                if (k != input_field) f.emplace_back(k, v);
            if (bad) {
                f.emplace_back("error", errors[i]);
            } else {
                std::ostringstream s;
                for (std::size_t j = 0; j < out; ++j)
                    s << (j ? "," : "") << y[row_of[i] * out + j];
                f.emplace_back("score", s.str());
            }
            f.emplace_back("input_id", batch[i].id);
            outputs.push_back(std::move(f));
        }
        last_batch = batch.size();
        co_return outputs;
    };

    msg::batcher batcher(redis, bo, handler);
    bool stopping = false;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    asio::steady_timer ticker(io);
    signals.async_wait([&](boost::system::error_code ec, int sig) {
        if (ec) return;
        spdlog::info("signal {}: finishing the batch in hand", sig);
        stopping = true;
        batcher.stop();
    });
    // Batches until stopped. A batch that fails (Redis restarting, a failover) is retried with
    // a growing pause: its entries stay pending, and are read again or claimed back.
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer pause(co_await asio::this_coro::executor);
            auto backoff = std::chrono::milliseconds(100);
            bool created = false;
            while (!stopping) {
                std::string failure;
                try {
                    if (!created) {
                        co_await batcher.group().create();
                        created = true;
                    }
                    co_await batcher.run_once();
                    backoff = std::chrono::milliseconds(100);
                } catch (const boost::system::system_error& e) {
                    failure = e.what();
                }
                if (failure.empty() || stopping) continue;
                spdlog::warn("batch failed, retrying in {} ms: {}", backoff.count(), failure);
                pause.expires_after(backoff);
                co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
            }
        },
        [&](std::exception_ptr e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    spdlog::error("batcher: {}", ex.what());
                }
                status = akv::app::exit_failure;
            }
            stopping = true;
            signals.cancel();
            ticker.cancel();
            redis.cancel();
        });

    // Counters every second. The model again when the registry says it moved, and every
    // reload-ms as a safety net.
    const std::string stats_key = cl.get_or("stats-key", "akv:batcher:" + bo.output_stream);
    const auto reload_every = std::chrono::milliseconds(cl.number<long>("reload-ms", 5000));
    bool reload_due = false;
    akv::kv::model_registry registry(redis, model_name);
    redis.add_invalidation_listener(
        [&, watched = registry.watched_keys(model_ref)](std::span<const std::string_view> keys) {
            const bool moved =
                keys.empty() || std::any_of(keys.begin(), keys.end(), [&](std::string_view k) {
                    return std::find(watched.begin(), watched.end(), k) != watched.end();
                });
            if (!moved || reload_due) return;
            reload_due = true;
            ticker.cancel(); // now, not at the next second
        });
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto next_reload = std::chrono::steady_clock::now() + reload_every;
            auto next_stats = std::chrono::steady_clock::now();
            while (!stopping) {
                if (!reload_due) {
                    ticker.expires_at(std::min(next_stats + 1s, next_reload));
                    co_await ticker.async_wait(asio::as_tuple(asio::use_awaitable));
                }
                if (stopping) break;
                std::string failure;
                try {
                    const auto now = std::chrono::steady_clock::now();
                    if (now >= next_stats + 1s) {
                        next_stats = now;
                        const auto& s = batcher.stats();
                        akv::request req;
                        req.push("HSET", stats_key, "batches", s.batches, "entries", s.entries,
                                 "outputs", s.outputs, "reclaimed", s.reclaimed, "handler_failures",
                                 s.handler_failures, "last_batch", last_batch, "model_version",
                                 current.version);
                        co_await redis.exec(req, akv::ignore);
                    }
                    if (reload_due || now >= next_reload) {
                        reload_due = false;
                        next_reload = now + reload_every;
                        std::optional<std::uint64_t> v = co_await registry.resolve(model_ref);
                        if (v && *v != current.version) {
                            model_state next = co_await load_model(redis, model_name, model_ref);
                            spdlog::info("model {}: v{} -> v{}", model_name, current.version,
                                         next.version);
                            current = std::move(next);
                        }
                    }
                } catch (const std::exception& e) {
                    failure = e.what();
                }
                if (!failure.empty()) spdlog::warn("{}", failure);
            }
        },
        asio::detached);

    std::printf("akv-batcher running: %s -> %s, model %s v%llu\n", bo.group.stream.c_str(),
                bo.output_stream.c_str(), model_name.c_str(),
                static_cast<unsigned long long>(current.version));
    std::fflush(stdout);
    io.run();
    return status;
}
