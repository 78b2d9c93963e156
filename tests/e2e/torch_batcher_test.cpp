// akv-batcher running PyTorch models as processes: `akv model put` of a directory that
// tests/support/torch_models.py made (model.pt + model.json), entries in, scores out, each
// compared with what PyTorch computed for the same row within 1e-5.
#include "support/cdp.hpp"
#include "support/errors.hpp"
#include "support/harness.hpp"
#include "support/running_client.hpp"
#include "support/torch_models.hpp"

#include <akv/messaging/stream.hpp>
#include <akv/ml/tensor.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/steady_timer.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

using namespace akv::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t features = 44;
constexpr std::size_t rows = 10000;

std::string bin(const std::string& name) {
    return std::string(AKV_BIN_DIR) + "/" + name;
}

fs::path models() {
    return torch_models::dir();
}

std::vector<float> floats_of(const std::string& file) {
    return torch_models::values<float>(file);
}

// `akv model put classifier DIR`: the name of the version it made ("classifier:v2").
std::string put(const temp_dir& dir, const akv::testing::embedded_server& redis,
                const std::string& model_dir) {
    const auto r = run_to_end(dir, {bin("akv"), "--redis", redis.url(), "model", "put",
                                    "classifier", (models() / model_dir).string()});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output.substr(0, r.output.find('\n'));
}

// Entries [first, first + count) of inputs.f32: "n" and the row as an AKVT f32 [44].
asio::awaitable<void> add_rows(akv::client& redis, const std::vector<float>& inputs,
                               std::size_t first, std::size_t count) {
    std::vector<akv::messaging::field_list> entries;
    const std::int64_t shape[] = {features};
    for (std::size_t n = first; n < first + count; ++n) {
        const std::span<const float> row(inputs.data() + n * features, features);
        entries.push_back({{"n", std::to_string(n)}, {"embedding", akv::ml::encode(row, shape)}});
    }
    akv::messaging::stream_producer producer(redis, "in");
    co_await producer.add_many(entries);
}

std::vector<akv::messaging::stream_entry> outputs(asio::io_context& io, akv::client& redis) {
    std::vector<akv::messaging::stream_entry> out;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request range;
        range.push("XRANGE", "out", "-", "+");
        akv::response<akv::resp::value> resp;
        co_await redis.exec(range, resp);
        out = akv::messaging::entries_from(std::get<0>(resp).value());
    }());
    return out;
}

long long length_of(asio::io_context& io, akv::client& redis, const std::string& key,
                    const char* command = "XLEN") {
    long long n = 0;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push(command, key);
        akv::response<long long> resp;
        co_await redis.exec(req, resp);
        n = std::get<0>(resp).value();
    }());
    return n;
}

std::string batcher_version(asio::io_context& io, akv::client& redis) {
    std::optional<std::string> v;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("HGET", "akv:batcher:out", "model_version");
        akv::response<std::optional<std::string>> resp;
        co_await redis.exec(req, resp);
        v = std::get<0>(resp).value();
    }());
    return v.value_or("");
}

std::vector<std::string> batcher_args(const akv::testing::embedded_server& redis,
                                      const std::string& max_batch) {
    return {bin("akv-batcher"), "--redis",       redis.url(), "--input",     "in",
            "--output",         "out",           "--model",   "classifier",  "--max-batch",
            max_batch,          "--max-wait-ms", "5",         "--reload-ms", "600000"};
}

// Each output's scores against PyTorch's for its row and the version that scored it.
void expect_pytorch_scores(const std::vector<akv::messaging::stream_entry>& out,
                           const std::map<std::string, std::vector<float>>& expected) {
    std::size_t far = 0;
    for (const auto& o : out) {
        const std::size_t n = std::stoul(*o.field("n"));
        const auto& want = expected.at(*o.field("model_version"));
        const auto scores = akv::ml::decode(*o.field("scores"));
        ASSERT_EQ(scores.shape, (std::vector<std::int64_t>{2}));
        const auto got = scores.values<float>();
        for (std::size_t k = 0; k < 2; ++k)
            if (std::abs(got[k] - want[n * 2 + k]) > 1e-5 && ++far <= 5)
                ADD_FAILURE() << "row " << n << " output " << k << ": " << got[k] << ", PyTorch "
                              << want[n * 2 + k];
    }
    EXPECT_EQ(far, 0u);
}

// A private server, `akv model put` of classifier_v1, and akv-batcher running it.
struct batcher_run {
    explicit batcher_run(const std::string& max_batch)
        : rc(io, redis.config()) {
        EXPECT_EQ(put(dir, redis, "classifier_v1"), "classifier:v1");
        batcher.emplace(batcher_args(redis, max_batch), std::vector<std::string>{},
                        dir.path() / "batcher.log");
    }
    // Whether the batcher says (in its stats) it runs `version`, within the limit.
    bool runs_version(const std::string& version, std::chrono::milliseconds limit = 30s) {
        return poll_until([&] { return batcher_version(io, rc.client) == version; }, limit);
    }
    bool has_outputs(long long n, std::chrono::milliseconds limit = 60s) {
        return poll_until([&] { return length_of(io, rc.client, "out") >= n; }, limit);
    }

    temp_dir dir{"akv-e2e-torch-"};
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_client rc;
    const std::vector<float> inputs = floats_of("inputs.f32");
    std::optional<child_process> batcher;
};

} // namespace

TEST(TorchBatcher, ScoresTenThousandEntriesAsPyTorchDoes) {
    batcher_run run("64");
    ASSERT_EQ(run.inputs.size(), rows * features);
    run_task(run.io, add_rows(run.rc.client, run.inputs, 0, rows));
    ASSERT_TRUE(run.has_outputs(rows)) << run.batcher->log_tail();

    const auto out = outputs(run.io, run.rc.client);
    ASSERT_EQ(out.size(), rows);
    std::set<std::string> seen;
    for (const auto& o : out) {
        EXPECT_EQ(o.field("error"), nullptr) << *o.field("error");
        EXPECT_EQ(*o.field("model_version"), "1");
        EXPECT_EQ(o.field("embedding"), nullptr); // the features are not copied out
        seen.insert(*o.field("n"));
    }
    EXPECT_EQ(seen.size(), rows);
    expect_pytorch_scores(out, {{"1", floats_of("expected_v1.f32")}});
    EXPECT_NE(run.batcher->log().find("inputs embedding f32 [44], outputs scores f32 [2]"),
              std::string::npos)
        << run.batcher->log_tail();
    run.batcher->signal(SIGTERM);
    EXPECT_TRUE(poll_until([&] { return !run.batcher->running(); }, 20s));
}

// `latest` moves while entries stream in: each entry is scored once, by v1 or by v2, and the
// entries of one batch by the same version.
TEST(TorchBatcher, AVersionChangeUnderLoadScoresEveryEntryOnceAndEachBatchByOneVersion) {
    batcher_run run("256");
    ASSERT_TRUE(run.runs_version("1", 60s)) << run.batcher->log_tail();

    // A producer of its own, 50 entries every 5 ms, while the version changes.
    std::atomic<bool> produced{false};
    std::thread producer([&] {
        asio::io_context pio;
        running_client pc(pio, run.redis.config());
        run_task(
            pio,
            [&]() -> asio::awaitable<void> {
                asio::steady_timer pace(pio);
                for (std::size_t first = 0; first < rows; first += 50) {
                    co_await add_rows(pc.client, run.inputs, first, 50);
                    pace.expires_after(5ms);
                    co_await pace.async_wait(asio::use_awaitable);
                }
            }(),
            120s);
        produced = true;
    });
    EXPECT_TRUE(run.has_outputs(1000)) << run.batcher->log_tail();
    EXPECT_EQ(put(run.dir, run.redis, "classifier_v2"), "classifier:v2");
    EXPECT_TRUE(run.runs_version("2")) << run.batcher->log_tail();
    EXPECT_TRUE(poll_until([&] { return produced.load(); }, 120s));
    producer.join();
    ASSERT_TRUE(run.has_outputs(rows)) << run.batcher->log_tail();

    const auto out = outputs(run.io, run.rc.client);
    ASSERT_EQ(out.size(), rows);
    std::set<std::string> seen;
    std::map<std::string, std::string> version_of_batch;
    std::map<std::string, std::size_t> per_version;
    std::string last_version = "1";
    for (const auto& o : out) {
        seen.insert(*o.field("n"));
        const std::string& v = *o.field("model_version");
        ++per_version[v];
        const auto [it, fresh] = version_of_batch.emplace(*o.field("batch"), v);
        EXPECT_EQ(it->second, v) << "batch " << *o.field("batch") << " mixes versions";
        EXPECT_GE(v, last_version) << "v" << v << " after v" << last_version;
        last_version = v;
    }
    EXPECT_EQ(seen.size(), rows);
    EXPECT_GT(per_version["1"], 0u);
    EXPECT_GT(per_version["2"], 0u);
    EXPECT_EQ(per_version["1"] + per_version["2"], rows);
    expect_pytorch_scores(
        out, {{"1", floats_of("expected_v1.f32")}, {"2", floats_of("expected_v2.f32")}});
    EXPECT_NE(run.batcher->log().find("v1 -> v2"), std::string::npos) << run.batcher->log_tail();
}

// A version whose model.json disagrees with its module is refused: the batcher says why and
// goes on with the version it has, until `latest` moves to one that loads.
TEST(TorchBatcher, AModelThatDoesNotLoadIsRefusedAndTheOldVersionScoresOn) {
    batcher_run run("64");
    ASSERT_TRUE(run.runs_version("1", 60s)) << run.batcher->log_tail();

    EXPECT_EQ(put(run.dir, run.redis, "wrong_inputs"), "classifier:v2");
    const auto says = [&](const std::string& text) {
        return run.batcher->log().find(text) != std::string::npos;
    };
    EXPECT_TRUE(poll_until([&] { return says("model classifier v2 refused"); }, 30s))
        << run.batcher->log_tail();
    EXPECT_TRUE(says("model.json declares the inputs (x), forward() takes (embedding)"))
        << run.batcher->log_tail();
    run_task(run.io, add_rows(run.rc.client, run.inputs, 0, 100));
    ASSERT_TRUE(run.has_outputs(100)) << run.batcher->log_tail();
    for (const auto& o : outputs(run.io, run.rc.client))
        EXPECT_EQ(*o.field("model_version"), "1");

    EXPECT_EQ(put(run.dir, run.redis, "classifier_v2"), "classifier:v3");
    EXPECT_TRUE(run.runs_version("3")) << run.batcher->log_tail();
    EXPECT_TRUE(run.batcher->running());
}

// Entries the model cannot take are answered with an error naming the model, its version and
// the field; the rest of their batch is scored.
TEST(TorchBatcher, EntriesThatDoNotFitTheModelGetAnErrorEntry) {
    batcher_run run("64");
    const auto& inputs = run.inputs;
    run_task(run.io, [&]() -> asio::awaitable<void> {
        co_await add_rows(run.rc.client, inputs, 0, 2);
        const std::int64_t short_shape[] = {43};
        const std::int64_t i64_shape[] = {features};
        const std::vector<std::int64_t> ints(features);
        std::vector<akv::messaging::field_list> bad{
            {{"n", "short"},
             {"embedding", akv::ml::encode(std::span(inputs).first(43), short_shape)}},
            {{"n", "ints"}, {"embedding", akv::ml::encode<std::int64_t>(ints, i64_shape)}},
            {{"n", "none"}, {"features", "x"}},
        };
        akv::messaging::stream_producer producer(run.rc.client, "in");
        co_await producer.add_many(bad);
        co_await add_rows(run.rc.client, inputs, 2, 2);
    }());
    ASSERT_TRUE(run.has_outputs(7)) << run.batcher->log_tail();
    std::map<std::string, std::string> errors;
    std::size_t scored = 0;
    for (const auto& o : outputs(run.io, run.rc.client)) {
        if (const std::string* e = o.field("error"))
            errors[*o.field("n")] = *e;
        else
            ++scored;
    }
    EXPECT_EQ(scored, 4u);
    EXPECT_TRUE(contains(errors["short"], "classifier:v1: field \"embedding\": tensor: expected "
                                          "f32 [44], got f32 [43]"))
        << errors["short"];
    EXPECT_TRUE(contains(errors["ints"], "classifier:v1: field \"embedding\": tensor: expected "
                                         "f32 [44], got i64 [44]"))
        << errors["ints"];
    EXPECT_TRUE(contains(errors["none"], "classifier:v1: no field \"embedding\""))
        << errors["none"];
}

// `akv model put` checks a TorchScript directory before it stores anything.
TEST(TorchBatcher, ModelPutRefusesADirectoryThatIsNotAModel) {
    temp_dir dir{"akv-e2e-torch-put-"};
    akv::testing::embedded_server redis;
    auto put_dir = [&](const fs::path& d) {
        return run_to_end(dir,
                          {bin("akv"), "--redis", redis.url(), "model", "put", "m", d.string()});
    };
    const auto not_torchscript = put_dir(models() / "not_torchscript");
    EXPECT_EQ(not_torchscript.exit_code, 2) << not_torchscript.output;
    EXPECT_TRUE(contains(not_torchscript.output, "model.pt\" is not a TorchScript file"))
        << not_torchscript.output;

    const fs::path bad_json = dir.path() / "bad_json";
    fs::create_directories(bad_json);
    fs::copy_file(models() / "classifier_v1" / "model.pt", bad_json / "model.pt");
    std::ofstream(bad_json / "model.json")
        << R"({"kind": "torchscript", "inputs": [{"name": "embedding", "dtype": "f32",
               "shape": [44, -1]}], "outputs": [{"name": "s", "dtype": "f32", "shape": [2]}]})";
    const auto bad = put_dir(bad_json);
    EXPECT_EQ(bad.exit_code, 2) << bad.output;
    EXPECT_TRUE(contains(bad.output, "model.json: inputs[0].shape: a dim must be a whole number "
                                     "> 0, got -1"))
        << bad.output;

    const fs::path no_module = dir.path() / "no_module";
    fs::create_directories(no_module);
    fs::copy_file(models() / "classifier_v1" / "model.json", no_module / "model.json");
    const auto missing = put_dir(no_module);
    EXPECT_EQ(missing.exit_code, 2) << missing.output;
    EXPECT_TRUE(contains(missing.output, "no model.pt")) << missing.output;

    asio::io_context io;
    running_client rc(io, redis.config());
    EXPECT_EQ(length_of(io, rc.client, "model:{m}:versions", "ZCARD"), 0);
}
