// The batcher with a TorchScript model against the Python loop (issue #21): the same stream,
// the same model, in the same run.
//
//   akv_bench_ml [--quick]
//
// N = 200000 entries (--quick: 20000) {t: AKVT f32 [44], id: "<i>"}, rows that PyTorch drew:
// tests/support/torch_models.py makes them, the 44 -> 16 -> 2 classifier (classifier_v1, one
// intra-op thread) and PyTorch's own scores of those rows. For each batch size (64, 256), on
// one private redis-server, emptied and filled with the same N entries before each side:
//
//   python  bench/peers/ml/loop.py under /usr/bin/python3 (redis-py + torch): XREADGROUP, one
//           forward() per batch, XADD of each output + XACK in a MULTI
//   akv     akv::messaging::batcher with akv::ml::model_handler(torch_model), one client: what
//           akv-batcher runs (max_wait 5 ms, no output trimming, as the peer)
//
// until all N entries are committed; entries/s = N / (first read -> last commit).
//
// Beside it, the model's own forward time per batch: ours times torch_model::run on a batch of
// that many rows in a loop, outside the pipeline; the peer times its forward() calls in its
// loop. *_forward_share is that time over the pipeline's time per batch: the rest is Redis and
// the decoding and encoding. akv_forward_in_pipeline_us_per_batch is ours timed in the
// pipeline as the peer's is, akv_handler_us_per_batch the whole handler (decode, forward,
// encode); *_redis_cpu_us_per_entry is the server's CPU (INFO cpu) per entry of each side.
//
// ok: each side leaves N outputs and nothing pending, every output's scores are within 1e-5
// of PyTorch's, and the two sides' scores of each row are within 1e-5 of each other.
#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/messaging/batcher.hpp>
#include <akv/messaging/stream.hpp>
#include <akv/ml/model_handler.hpp>
#include <akv/ml/tensor.hpp>
#include <akv/ml/torch_model.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include "bench_support.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using akv::messaging::field_list;
using akv::messaging::stream_entry;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

using namespace akv::bench; // the helpers every benchmark shares (bench_support.hpp)

constexpr std::size_t dim = 44;                        // the model's inputs per row
constexpr std::size_t classes = 2;                     // its outputs per row
constexpr std::size_t row_bytes = dim * sizeof(float); // one row of inputs.f32
constexpr std::size_t fill_pipeline = 1000;            // XADDs per request when filling
// A batch short of max_batch waits this long for more: only the run's last batch is short.
constexpr auto batch_max_wait = 5ms;
constexpr double tolerance = 1e-5;
constexpr double goal_ratio = 3;
constexpr auto forward_timing = 500ms;         // each batch size's forward() loop, at least
const char* const python = "/usr/bin/python3"; // Debian's, with python3-redis and python3-torch

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// What torch_models.py writes for n rows: the inputs, the model and PyTorch's scores.
struct workload {
    long n = 0;
    std::string inputs;          // n x 44 f32, row-major
    std::vector<float> expected; // n x 2, classifier_v1's softmax
    fs::path model_dir;          // classifier_v1/: model.json, model.pt
};

workload make_workload(const fs::path& dir, long n) {
    const fs::path script = fs::path(AKV_SOURCE_DIR) / "tests/support/torch_models.py";
    const std::string cmd = std::string(python) + " '" + script.string() + "' '" + dir.string() +
                            "' " + std::to_string(n) + " >&2";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
    workload w;
    w.n = n;
    w.inputs = read_file(dir / "inputs.f32");
    const std::string expected = read_file(dir / "expected_v1.f32");
    if (w.inputs.size() != std::size_t(n) * row_bytes ||
        expected.size() != std::size_t(n) * classes * sizeof(float))
        throw std::runtime_error("torch_models.py wrote other sizes than " + std::to_string(n) +
                                 " rows");
    w.expected.resize(std::size_t(n) * classes);
    std::memcpy(w.expected.data(), expected.data(), expected.size());
    w.model_dir = dir / "classifier_v1";
    return w;
}

std::shared_ptr<const akv::ml::torch_model> load_model(const fs::path& dir) {
    std::map<std::string, std::string> files;
    for (const char* name : {"model.json", "model.pt"})
        files[name] = read_file(dir / name);
    return akv::ml::torch_model::from_files(files, "classifier:v1");
}

// The mean time of the model's forward() on `rows` rows (torch_model::run: the forward and
// the copies in and out), outside any pipeline.
double forward_us_per_batch(const akv::ml::torch_model& model, const workload& w,
                            std::size_t rows) {
    const std::string batch = w.inputs.substr(0, rows * row_bytes);
    const std::string_view input(batch);
    std::vector<std::string> outputs;
    const auto run = [&] { model.run(std::span(&input, 1), rows, outputs); };
    for (int i = 0; i < 20; ++i) // the profiling executor optimizes over the first calls
        run();
    long runs = 0;
    const auto start = clock_type::now();
    do {
        run();
        ++runs;
    } while (runs < 200 || clock_type::now() - start < forward_timing);
    return seconds_between(start, clock_type::now()) * 1e6 / double(runs);
}

// Empties the server and writes the N input entries, the same for either side.
asio::awaitable<void> fill(akv::client& redis, const workload& w) {
    co_await flushall(redis);
    akv::messaging::stream_producer producer(redis, "in");
    const std::vector<std::int64_t> shape{dim};
    for (long done = 0; done < w.n;) {
        const long end = std::min(w.n, done + long(fill_pipeline));
        std::vector<field_list> entries;
        for (long i = done; i < end; ++i) {
            const std::span<const float> row(
                reinterpret_cast<const float*>(w.inputs.data()) + std::size_t(i) * dim, dim);
            entries.push_back(
                {{"t", akv::ml::encode<float>(row, shape)}, {"id", std::to_string(i)}});
        }
        co_await producer.add_many(entries);
        done = end;
    }
}

// What a side left behind: its outputs' scores by input row, read back from the server.
struct outputs_read {
    long long outputs = 0;
    long long refused = 0; // outputs with "error", without scores, or for no input row
    std::size_t pending = 0;
    std::vector<float> scores; // n x 2; NaN for a row without output
    double max_abs_err = 0;    // against PyTorch's scores
};

asio::awaitable<outputs_read> read_outputs(akv::client& redis, const workload& w) {
    outputs_read r;
    r.scores.assign(w.expected.size(), std::numeric_limits<float>::quiet_NaN());
    const std::vector<std::int64_t> shape{classes};
    for (std::string from = "-";;) {
        akv::request range;
        range.push("XRANGE", "out", from, "+", "COUNT", 10000);
        akv::response<akv::resp::value> resp;
        co_await redis.exec(range, resp);
        const std::vector<stream_entry> entries =
            akv::messaging::entries_from(std::move(std::get<0>(resp).value()));
        if (entries.empty()) break;
        for (const stream_entry& e : entries) {
            ++r.outputs;
            const std::string* id = e.field("id");
            const std::string* scores = e.field("scores");
            const long row = id ? std::strtol(id->c_str(), nullptr, 10) : -1;
            if (!scores || row < 0 || row >= w.n) {
                ++r.refused;
                continue;
            }
            akv::ml::decode_f32_into(*scores, std::span(r.scores).subspan(std::size_t(row) * 2, 2),
                                     shape);
        }
        from = "(" + entries.back().id;
    }
    for (std::size_t i = 0; i < r.scores.size(); ++i)
        r.max_abs_err = std::max(r.max_abs_err, std::abs(double(r.scores[i]) - w.expected[i]));
    if (std::ranges::any_of(r.scores, [](float s) { return std::isnan(s); }))
        r.max_abs_err = INFINITY;
    // A named group: GCC 12 destroyed a temporary one, built in the co_await expression, twice
    // (free(): invalid pointer).
    akv::messaging::group_options group;
    group.stream = "in";
    group.group = "g";
    akv::messaging::consumer_group in(redis, std::move(group));
    r.pending = co_await in.pending();
    co_return r;
}

// One side's run of one batch size.
struct side {
    std::optional<double> per_s;
    double seconds = 0;
    std::uint64_t batches = 0;
    double redis_cpu = 0; // s
    outputs_read out;
    bool ok(long n) const {
        return per_s && out.outputs == n && out.refused == 0 && out.pending == 0 &&
               out.max_abs_err < tolerance;
    }
};

// The model as the pipeline runs it, each run() timed.
class timed_model final : public akv::ml::batch_model {
public:
    explicit timed_model(std::shared_ptr<const akv::ml::batch_model> model)
        : model_(std::move(model)) {}
    std::size_t input_size() const override { return model_->input_size(); }
    std::size_t output_size() const override { return model_->output_size(); }
    void predict(std::span<const float> inputs, std::size_t rows,
                 std::span<float> outputs) const override {
        model_->predict(inputs, rows, outputs);
    }
    std::vector<akv::ml::tensor_spec> inputs() const override { return model_->inputs(); }
    std::vector<akv::ml::tensor_spec> outputs() const override { return model_->outputs(); }
    void run(std::span<const std::string_view> inputs, std::size_t rows,
             std::vector<std::string>& outputs) const override {
        const auto start = clock_type::now();
        model_->run(inputs, rows, outputs);
        seconds_ += seconds_between(start, clock_type::now());
    }
    double seconds() const { return seconds_; }

private:
    std::shared_ptr<const akv::ml::batch_model> model_;
    mutable double seconds_ = 0;
};

struct akv_side : side {
    double handler_seconds = 0;
    double forward_seconds = 0; // in the pipeline
};

akv_side run_akv(const akv::config& cfg, const workload& w,
                 const std::shared_ptr<const akv::ml::torch_model>& model, std::size_t batch) {
    akv_side s;
    run_with_client(cfg, [&](akv::client& redis) -> asio::awaitable<void> {
        co_await fill(redis, w);
        auto timed = std::make_shared<timed_model>(model);
        akv::messaging::batch_handler score = akv::ml::model_handler(timed);
        akv::messaging::batcher_options options;
        options.group = {.stream = "in", .group = "g", .consumer = "akv"};
        options.output_stream = "out";
        options.max_batch = batch;
        options.max_wait = batch_max_wait;
        akv::messaging::batcher batcher(
            redis, std::move(options),
            [&](std::span<const stream_entry> entries) -> asio::awaitable<std::vector<field_list>> {
                const auto start = clock_type::now();
                std::vector<field_list> outputs = co_await score(entries);
                s.handler_seconds += seconds_between(start, clock_type::now());
                co_return outputs;
            });
        co_await batcher.group().create(); // at id 0: the whole stream

        const double cpu_before = co_await redis_cpu_seconds(redis);
        const auto start = clock_type::now();
        const auto deadline = start + 120s; // a batcher that stops committing must not hang
        long long committed = 0;
        auto last_commit = start;
        while (committed < w.n && clock_type::now() < deadline) {
            const std::size_t entries = co_await batcher.run_once();
            if (entries == 0) continue;
            committed += static_cast<long long>(entries);
            last_commit = clock_type::now();
        }
        s.seconds = seconds_between(start, last_commit);
        s.redis_cpu = co_await redis_cpu_seconds(redis) - cpu_before;
        if (committed == w.n) s.per_s = double(w.n) / s.seconds;
        s.batches = batcher.stats().batches;
        s.forward_seconds = timed->seconds();
        s.out = co_await read_outputs(redis, w);
    });
    return s;
}

struct python_side : side {
    std::optional<json::object> line; // what loop.py printed
};

// loop.py's JSON line (nullopt if it printed none); its stderr is appended to `log_path`.
std::optional<json::object> run_loop_py(std::uint16_t port, const workload& w, std::size_t batch,
                                        const std::string& log_path) {
    const fs::path script = bench_source_dir() / "peers/ml/loop.py";
    const std::string cmd =
        std::string(python) + " '" + script.string() + "' --port " + std::to_string(port) +
        " --model '" + (w.model_dir / "model.pt").string() + "' --batch " + std::to_string(batch) +
        " --entries " + std::to_string(w.n) + " 2>>'" + log_path + "'";
    std::optional<json::object> line;
    std::istringstream out(run_command(cmd));
    for (std::string text; std::getline(out, text);) {
        json::error_code ec;
        json::value v = json::parse(text, ec);
        if (!ec && v.is_object()) line = std::move(v.as_object());
    }
    return line;
}

python_side run_python(const akv::config& cfg, std::uint16_t port, const workload& w,
                       std::size_t batch, const std::string& log_path) {
    python_side s;
    double cpu_before = 0;
    run_with_client(cfg, [&](akv::client& redis) -> asio::awaitable<void> {
        co_await fill(redis, w);
        cpu_before = co_await redis_cpu_seconds(redis);
    });
    s.line = run_loop_py(port, w, batch, log_path);
    const json::object* line = s.line ? &*s.line : nullptr;
    if (const auto done = number_field(line, "entries"); done && *done == double(w.n))
        s.per_s = number_field(line, "entries_per_s");
    s.seconds = number_field(line, "seconds").value_or(0);
    s.batches = std::uint64_t(number_field(line, "batches").value_or(0));
    run_with_client(cfg, [&](akv::client& redis) -> asio::awaitable<void> {
        s.redis_cpu = co_await redis_cpu_seconds(redis) - cpu_before;
        s.out = co_await read_outputs(redis, w);
    });
    return s;
}

// The largest difference between the two sides' scores of a row.
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        d = std::max(d, std::isnan(a[i]) || std::isnan(b[i]) ? INFINITY
                                                             : std::abs(double(a[i]) - b[i]));
    return d;
}

std::optional<double> per_batch_us(const side& s) {
    if (s.batches == 0 || !s.per_s) return std::nullopt;
    return s.seconds * 1e6 / double(s.batches);
}

// "python 3.11.2, redis-py 4.3.4, torch 1.13.0", as loop.py says.
std::string peer_name(const json::object* line) {
    std::string name;
    for (const auto& [key, label] :
         {std::pair{"python", "python "}, std::pair{"redis_py", "redis-py "},
          std::pair{"torch", "torch "}})
        if (const json::value* v = line ? line->if_contains(key) : nullptr; v && v->is_string())
            name += (name.empty() ? "" : ", ") + std::string(label) + std::string(v->as_string());
    return name.empty() ? "python" : name;
}

void report(const workload& w, std::size_t batch, double akv_forward_us, const akv_side& ours,
            const python_side& theirs) {
    const json::object* line = theirs.line ? &*theirs.line : nullptr;
    const auto ratio_now = ratio(ours.per_s, theirs.per_s);
    const auto python_forward_us = number_field(line, "forward_us_per_batch");
    const double sides_diff = max_abs_diff(ours.out.scores, theirs.out.scores);
    const bool ok = ours.ok(w.n) && theirs.ok(w.n) && sides_diff < tolerance;
    const auto in_pipeline = [&](double seconds) -> std::optional<double> {
        if (ours.batches == 0) return std::nullopt;
        return seconds * 1e6 / double(ours.batches);
    };
    const auto per_entry_us = [&](const side& s) -> std::optional<double> {
        if (!s.per_s) return std::nullopt;
        return s.redis_cpu * 1e6 / double(w.n);
    };

    json_line out;
    out.text("bench", "ml").text("scenario", "batch_" + std::to_string(batch));
    out.number("akv_entries_per_s", ours.per_s, 0).number("python_entries_per_s", theirs.per_s, 0);
    out.number("ratio", ratio_now, 2);
    out.number("akv_forward_us_per_batch", akv_forward_us, 1);
    out.number("python_forward_us_per_batch", python_forward_us, 1);
    out.number("akv_pipeline_us_per_batch", per_batch_us(ours), 1);
    out.number("python_pipeline_us_per_batch", per_batch_us(theirs), 1);
    out.number("akv_forward_share", ratio(akv_forward_us, per_batch_us(ours)), 3);
    out.number("python_forward_share", ratio(python_forward_us, per_batch_us(theirs)), 3);
    out.text("goal", "ratio>=3").set("goal_met", ok && ratio_now && *ratio_now >= goal_ratio);
    out.set("entries", w.n).set("batch", batch).set("max_wait_ms", batch_max_wait.count());
    out.number("akv_forward_in_pipeline_us_per_batch", in_pipeline(ours.forward_seconds), 1);
    out.number("akv_handler_us_per_batch", in_pipeline(ours.handler_seconds), 1);
    out.number("python_decode_us_per_batch", number_field(line, "decode_us_per_batch"), 1);
    out.number("akv_redis_cpu_us_per_entry", per_entry_us(ours), 3);
    out.number("python_redis_cpu_us_per_entry", per_entry_us(theirs), 3);
    out.number("akv_seconds", ours.seconds, 3).number("python_seconds", theirs.seconds, 3);
    out.set("akv_batches", ours.batches).set("python_batches", theirs.batches);
    out.set("akv_outputs", ours.out.outputs).set("python_outputs", theirs.out.outputs);
    out.set("akv_pending", ours.out.pending).set("python_pending", theirs.out.pending);
    // Against PyTorch's scores of the same rows (torch_models.py), and between the sides.
    out.number("akv_max_abs_err", ours.out.max_abs_err, 9);
    out.number("python_max_abs_err", theirs.out.max_abs_err, 9);
    out.number("sides_max_abs_diff", sides_diff, 9);
    out.set("ok", ok).text("peer", peer_name(line) + (line ? "" : " (no result)"));
    out.copy("peer_hiredis", line, "hiredis").copy("peer_threads", line, "threads");
    out.print();
}

} // namespace

int main(int argc, char** argv) {
    const auto quick = quick_option(argc, argv, "akv_bench_ml");
    if (!quick) return 2;
    const long n = *quick ? 20000 : 200000;
    const fs::path dir = fs::temp_directory_path() / ("akv_bench_ml." + std::to_string(::getpid()));
    int status = 0;
    try {
        fs::create_directories(dir);
        std::cerr << "ml: PyTorch makes the model and " << n << " rows (torch_models.py)\n";
        const workload w = make_workload(dir / "models", n);
        const auto model = load_model(w.model_dir);
        akv::testing::embedded_server server;
        const std::string log_path = (dir / "peer.log").string();
        for (const std::size_t batch : {64u, 256u}) {
            std::cerr << "ml: batch " << batch << ": forward() alone\n";
            const double forward_us = forward_us_per_batch(*model, w, batch);
            std::cerr << "ml: batch " << batch << ": python (log " << log_path << ")\n";
            const python_side theirs =
                run_python(server.config(), server.port(), w, batch, log_path);
            if (!theirs.line) {
                std::cerr << "ml: loop.py printed no result; its log ends with:\n";
                for (const std::string& l : last_lines(log_path, 20))
                    std::cerr << "  " << l << "\n";
            }
            std::cerr << "ml: batch " << batch << ": akv\n";
            const akv_side ours = run_akv(server.config(), w, model, batch);
            report(w, batch, forward_us, ours, theirs);
        }
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_ml: " << e.what() << "\n";
        status = 1;
    }
    std::error_code ignored;
    fs::remove_all(dir, ignored);
    return status;
}
