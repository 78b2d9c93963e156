// akv-batcher: reads a stream in batches (a consumer group), runs a model from the model
// registry on each batch at once, and writes the results to an output stream; outputs and the
// inputs' acks go in one MULTI/EXEC, so a crash loses nothing and acks nothing unanswered
// (akv::messaging::batcher). `akv-batcher --help` lists the flags.
//
//   akv-batcher --input demo:embeddings --output demo:interest --model interest --threshold 0.5
#include "common/app.hpp"
#include "common/metrics.hpp"
#include "demo/pipeline.hpp"

#include <akv/client.hpp>
#include <akv/detail/settled.hpp>
#include <akv/error.hpp>
#include <akv/kv/model_registry.hpp>
#include <akv/messaging/batcher.hpp>
#include <akv/ml/model.hpp>
#include <akv/ml/model_handler.hpp>
#include <akv/ml/tensor.hpp>
#ifdef AKV_HAVE_TORCH
#include <akv/ml/torch_model.hpp>
#endif

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>
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
             "the entry's features, for a model of one input: an AKVT tensor of its dtype and "
             "shape, f32 also as raw floats (default embedding)"},
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
            {"status-ms", "N",
             "a status record for the console (akv:batcher:INPUT:GROUP:CONSUMER: counters, "
             "rates, model) every N ms, expiring after three (default 2000; 0: none)"},
            akv::app::metrics_listen_flag(),
        },
        "Each output entry has the input's fields but the features, plus \"score\" (the model's\n"
        "first output, comma-separated), \"input_id\", \"model_version\" and \"batch\" (the\n"
        "batch's number: one batch, one version). A TorchScript model (model.json kind\n"
        "\"torchscript\") reads each declared input from the field of its name (one input: from\n"
        "--input-field) and writes each output as an AKVT tensor under its name. An input that\n"
        "cannot be read or scored gets an output with \"error\" naming the model, its version\n"
        "and why instead of a score (and is acked: retrying would not fix it).");
}

struct model_state {
    std::shared_ptr<const ml::batch_model> model;
    std::uint64_t version = 0;
    std::string name;                // "interest:v3", how errors name it
    std::vector<std::string> fields; // the entry field of each model input
    bool named_outputs = false;      // each output also as an AKVT field of its name
};

// A model's files as the registry holds them. TorchScript modules are compiled on `loader`,
// so the event loop goes on serving Redis meanwhile; the JSON kinds are quick to read.
asio::awaitable<model_state> load_model(akv::client& redis, const std::string& name,
                                        const std::string& ref, const std::string& input_field,
                                        asio::any_io_executor loader) {
    akv::kv::model_registry registry(redis, name);
    akv::kv::model m = co_await registry.load(ref);
    model_state s;
    s.version = m.version;
    s.name = registry.version_name(m.version);
    const auto spec = m.files.find("model.json");
    const bool torchscript =
        spec != m.files.end() &&
        ml::model_spec::parse(spec->second, s.name + ": model.json").kind == "torchscript";
    if (torchscript) {
#ifdef AKV_HAVE_TORCH
        s.model = co_await ml::torch_model::load(std::move(m.files), s.name, loader);
        s.named_outputs = true;
#else
        (void)loader;
        throw std::invalid_argument(s.name + ": a TorchScript model, and this akv-batcher was "
                                             "built without libtorch (libtorch-dev)");
#endif
    } else {
        try {
            s.model = akv::demo::model_from_files(m);
        } catch (const std::exception& e) {
            // Files that do not make a model: refused like a TorchScript module that does not
            // load (not tried again until the reference moves on).
            akv::throw_error(akv::error::invalid_model, s.name + ": " + e.what());
        }
    }
    // Outputs are written beside the batcher's own fields: a name of theirs would be ambiguous.
    if (s.named_outputs)
        for (const auto& o : s.model->outputs())
            for (const char* own : {"score", "error", "input_id", "model_version", "batch"})
                if (o.name == own)
                    akv::throw_error(akv::error::invalid_model,
                                     s.name + ": output \"" + o.name +
                                         "\" is a field the batcher writes itself; rename it");
    s.fields = ml::input_fields(*s.model, input_field);
    co_return s;
}

// "embedding f32 [44], ..."
std::string describe(const std::vector<ml::tensor_spec>& specs) {
    std::string out;
    for (const auto& s : specs)
        out += (out.empty() ? "" : ", ") + s.describe();
    return out;
}

// The shortest text that reads back as the same float: "0.5", "0.87654322".
std::string float_text(float v) {
    char buf[32];
    const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    return std::string(buf, end);
}

// The first output's elements as numbers, comma-separated: what "score" holds.
std::vector<double> numbers_of(std::string_view bytes, ml::dtype type) {
    std::vector<double> out;
    auto take = [&]<class T>(T) {
        for (std::size_t i = 0; i + sizeof(T) <= bytes.size(); i += sizeof(T)) {
            T v;
            std::memcpy(&v, bytes.data() + i, sizeof(T));
            out.push_back(static_cast<double>(v));
        }
    };
    switch (type) {
    case ml::dtype::f32:
        take(float{});
        break;
    case ml::dtype::f64:
        take(double{});
        break;
    case ml::dtype::i8:
        take(std::int8_t{});
        break;
    case ml::dtype::i16:
        take(std::int16_t{});
        break;
    case ml::dtype::i32:
        take(std::int32_t{});
        break;
    case ml::dtype::i64:
        take(std::int64_t{});
        break;
    case ml::dtype::u8:
        take(std::uint8_t{});
        break;
    }
    return out;
}

std::string score_text(std::span<const double> values, ml::dtype type) {
    std::string out;
    for (double v : values) {
        if (!out.empty()) out += ',';
        out += type == ml::dtype::f32 ? float_text(static_cast<float>(v)) : fmt::format("{}", v);
    }
    return out;
}

struct batcher_figures {
    akv::metrics::histogram batch_size{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}};
    akv::metrics::histogram model_seconds{
        {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}};
    std::uint64_t entry_errors = 0;
    std::uint64_t reloads = 0;
    std::uint64_t refused = 0;
};

std::string metrics_text(const msg::batcher_stats& s, const batcher_figures& f,
                         const std::string& stream, const std::string& model, std::uint64_t version,
                         const akv::client& redis) {
    akv::metrics::exposition out;
    const akv::metrics::labels on{{"stream", stream}};
    auto counter = [&](const char* name, const char* help, std::uint64_t value) {
        out.family(name, "counter", help).sample(on, static_cast<double>(value));
    };
    counter("akv_batcher_batches_total", "Batches scored and committed.", s.batches);
    counter("akv_batcher_entries_total", "Input entries acked.", s.entries);
    counter("akv_batcher_outputs_total", "Output entries written.", s.outputs);
    counter("akv_batcher_reclaimed_total", "Entries taken over from a consumer that stalled.",
            s.reclaimed);
    counter("akv_batcher_handler_failures_total", "Batches whose scoring failed (left pending).",
            s.handler_failures);
    counter("akv_batcher_entry_errors_total",
            "Entries answered with an error (unreadable input, refused by the model).",
            f.entry_errors);
    counter("akv_batcher_model_reloads_total", "New model versions loaded.", f.reloads);
    counter("akv_batcher_model_refused_total", "Model versions that did not load.", f.refused);
    out.family("akv_batcher_model_version", "gauge", "The model version scoring now.")
        .sample({{"stream", stream}, {"model", model}}, static_cast<double>(version));
    f.batch_size.write(out, "akv_batcher_batch_size", "Entries per batch.", on);
    f.model_seconds.write(out, "akv_batcher_model_seconds",
                          "Reading the inputs, the model's run and its outputs, per batch.", on);
    akv::metrics::write_client_metrics(out, redis);
    return out.text();
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
    const std::string input_field = cl.get_or("input-field", "embedding");
    asio::thread_pool loader(1); // compiles TorchScript modules off the event loop
    asio::co_spawn(io, load_model(redis, model_name, model_ref, input_field, loader.get_executor()),
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
    spdlog::info("model {}: inputs {}, outputs {}", current.name, describe(current.model->inputs()),
                 describe(current.model->outputs()));

    msg::batcher_options bo;
    bo.group.stream = *cl.get("input");
    bo.group.group = cl.get_or("group", "akv-batcher");
    bo.group.consumer = "akv-batcher-" + std::to_string(::getpid());
    bo.group.claim_idle = std::chrono::milliseconds(cl.number<long>("claim-idle-ms", 30000));
    bo.output_stream = *cl.get("output");
    bo.max_batch = cl.number<std::size_t>("max-batch", 64);
    bo.max_wait = std::chrono::milliseconds(cl.number<long>("max-wait-ms", 50));
    bo.output_trim = msg::trim_options::maxlen(cl.number<std::size_t>("output-maxlen", 100000));
    bo.status_every = std::chrono::milliseconds(cl.number<long>("status-ms", 2000));
    bo.status_fields = [&] {
        return msg::field_list{{"model", model_name},
                               {"model_version", std::to_string(current.version)}};
    };
    std::uint64_t last_batch = 0;

    // For /metrics: batch sizes and the model's time per batch, entries it could not score.
    batcher_figures figures;

    // A batch is scored by one model version: a reload swaps `current` between batches.
    std::uint64_t batch_number = 0;
    ml::model_batch scored;
    msg::batch_handler handler = [&current, &last_batch, &batch_number, &scored, &figures,
                                  threshold](std::span<const msg::stream_entry> batch)
        -> asio::awaitable<std::vector<msg::field_list>> {
        const model_state model = current;
        const auto start = std::chrono::steady_clock::now();
        scored.score(*model.model, model.fields, batch);
        const auto& specs = scored.output_specs();
        const std::string batch_text = std::to_string(++batch_number);
        const std::string version_text = std::to_string(model.version);
        std::vector<msg::field_list> outputs;
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const bool bad = !scored.error(i).empty();
            std::vector<double> score;
            if (!bad) score = numbers_of(scored.output(i, 0), specs[0].type);
            // NaN is below every threshold.
            if (!bad && threshold && (score.empty() || !(score[0] >= *threshold))) continue;
            msg::field_list f;
            for (const auto& [k, v] : batch[i].fields)
                if (std::find(model.fields.begin(), model.fields.end(), k) == model.fields.end())
                    f.emplace_back(k, v);
            if (bad) {
                f.emplace_back("error", model.name + ": " + scored.error(i));
            } else {
                f.emplace_back("score", score_text(score, specs[0].type));
                if (model.named_outputs)
                    for (std::size_t j = 0; j < specs.size(); ++j)
                        f.emplace_back(specs[j].name, scored.encoded_output(i, j));
            }
            f.emplace_back("input_id", batch[i].id);
            f.emplace_back("model_version", version_text);
            f.emplace_back("batch", batch_text);
            outputs.push_back(std::move(f));
        }
        last_batch = batch.size();
        figures.batch_size.observe(static_cast<double>(batch.size()));
        figures.model_seconds.observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        for (std::size_t i = 0; i < batch.size(); ++i)
            if (!scored.error(i).empty()) ++figures.entry_errors;
        co_return outputs;
    };

    msg::batcher batcher(redis, bo, handler);
    bool stopping = false;
    std::unique_ptr<akv::gateway::metrics_listener> metrics;
    try {
        metrics = akv::app::start_metrics(cl, io, [&] {
            return metrics_text(batcher.stats(), figures, bo.group.stream, model_name,
                                current.version, redis);
        });
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return akv::app::exit_usage;
    }
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
            // Stopped: what was read ahead is handled, and the status record goes now; within
            // a deadline, so that a Redis gone away does not hold the exit.
            using namespace asio::experimental::awaitable_operators;
            asio::steady_timer limit(co_await asio::this_coro::executor, std::chrono::seconds(5));
            auto finished = co_await (akv::detail::settled(batcher.finish()) ||
                                            limit.async_wait(asio::use_awaitable));
            try {
                if (finished.index() == 0) std::move(std::get<0>(finished)).get();
                else spdlog::warn("finishing took over 5 s: what was read ahead is claimed later");
            } catch (const boost::system::system_error& e) {
                spdlog::warn("finishing: {} (what was read ahead is claimed again later)",
                             e.what());
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
            if (metrics) metrics->stop();
            redis.cancel();
        });

    // Counters every second. The model again when the registry says it moved, and every
    // reload-ms as a safety net.
    const std::string stats_key = cl.get_or("stats-key", "akv:batcher:" + bo.output_stream);
    const auto reload_every = std::chrono::milliseconds(cl.number<long>("reload-ms", 5000));
    bool reload_due = false;
    std::uint64_t refused = 0; // a version that did not load
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
                        if (v && *v != current.version && *v != refused) {
                            refused = *v; // unless it loads
                            const std::string version_ref = "v" + std::to_string(*v);
                            model_state next = co_await load_model(
                                redis, model_name, version_ref, input_field, loader.get_executor());
                            refused = 0;
                            ++figures.reloads;
                            spdlog::info("model {}: v{} -> v{}", model_name, current.version,
                                         next.version);
                            current = std::move(next);
                        }
                    }
                } catch (const boost::system::system_error& e) {
                    failure = e.what();
                    // A model that does not load is not tried again until `latest` moves on;
                    // Redis failing meanwhile is.
                    if (e.code() != akv::error::invalid_model) refused = 0;
                } catch (const std::exception& e) {
                    failure = e.what();
                }
                if (!failure.empty() && refused != 0) {
                    ++figures.refused;
                    spdlog::error("model {} v{} refused, still scoring with v{}: {}", model_name,
                                  refused, current.version, failure);
                    failure.clear();
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
