// akv::ml::torch_model against PyTorch itself: tests/support/torch_models.py made the modules
// and wrote what PyTorch computes for them (AKV_TORCH_MODELS, at build time). Every score is
// compared with PyTorch's within 1e-5; every refused model names itself and what is wrong.
#include "support/errors.hpp"
#include "support/running_client.hpp"
#include "support/torch_models.hpp"

#include <akv/kv/model_registry.hpp>
#include <akv/messaging/batcher.hpp>
#include <akv/ml/model_handler.hpp>
#include <akv/ml/tensor.hpp>
#include <akv/ml/torch_model.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <ATen/Parallel.h>

#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <thread>

using namespace akv::test;
using namespace akv::ml;
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t features = 44;

// Rows [first, first + rows) of a rows x width file, as run() takes them.
std::string rows_of(const std::string& file, std::size_t width, std::size_t first,
                    std::size_t rows) {
    return torch_models::read(file).substr(first * width, rows * width);
}

std::span<const float> floats(const std::string& bytes) {
    return {reinterpret_cast<const float*>(bytes.data()), bytes.size() / sizeof(float)};
}

std::string row_tensor(std::span<const float> row) {
    const std::int64_t shape[] = {static_cast<std::int64_t>(row.size())};
    return encode<float>(row, shape);
}

akv::messaging::stream_entry entry(std::string id, akv::messaging::field_list fields) {
    akv::messaging::stream_entry e;
    e.id = std::move(id);
    e.fields = std::move(fields);
    return e;
}

} // namespace

TEST(TorchModel, ScoresEveryRowAsPyTorchDoesInBatchesOfAnySize) {
    const auto model =
        torch_model::from_files(torch_models::files("classifier_v1"), "classifier:v1");
    const std::vector<float> expected = torch_models::values<float>("expected_v1.f32");
    const std::size_t rows = expected.size() / 2;
    ASSERT_EQ(rows, 10000u);
    std::size_t compared = 0;
    const std::string all = torch_models::read("inputs.f32");
    for (std::size_t batch : {64u, 256u, 1000u, 1u}) {
        // One row at a time: the first 500 rows are enough for the odd size.
        const std::size_t end = batch == 1 ? 500 : rows;
        for (std::size_t first = 0; first < end; first += batch) {
            const std::size_t n = std::min(batch, end - first);
            const std::string_view view =
                std::string_view(all).substr(first * features * 4, n * features * 4);
            std::vector<std::string> out;
            model->run(std::span<const std::string_view>(&view, 1), n, out);
            ASSERT_EQ(out.size(), 1u);
            const auto got = floats(out[0]);
            ASSERT_EQ(got.size(), n * 2);
            for (std::size_t k = 0; k < got.size(); ++k)
                ASSERT_NEAR(got[k], expected[first * 2 + k], 1e-5)
                    << "batch " << batch << ", row " << first + k / 2;
            compared += got.size();
        }
    }
    EXPECT_EQ(compared, 3 * 20000u + 1000u);
}

TEST(TorchModel, PredictServesAModelOfOneF32InputAndOutput) {
    const auto model =
        torch_model::from_files(torch_models::files("classifier_v1"), "classifier:v1");
    EXPECT_EQ(model->input_size(), features);
    EXPECT_EQ(model->output_size(), 2u);
    const std::string in = rows_of("inputs.f32", features * 4, 0, 64);
    std::vector<float> out(64 * 2);
    model->predict(floats(in), 64, out);
    const std::vector<float> expected = torch_models::values<float>("expected_v1.f32");
    for (std::size_t k = 0; k < out.size(); ++k)
        EXPECT_NEAR(out[k], expected[k], 1e-5) << k;
    std::vector<float> too_small(10);
    EXPECT_EQ(error_of([&] { model->predict(floats(in), 64, too_small); }).code(),
              akv::error::type_mismatch);
}

TEST(TorchModel, ATracedModuleLoadsAndScoresTheSame) {
    const auto model = torch_model::from_files(torch_models::files("traced"), "traced:v1");
    const std::string in = rows_of("inputs.f32", features * 4, 0, 256);
    std::vector<float> out(256 * 2);
    model->predict(floats(in), 256, out);
    const std::vector<float> expected = torch_models::values<float>("expected_v1.f32");
    for (std::size_t k = 0; k < out.size(); ++k)
        EXPECT_NEAR(out[k], expected[k], 1e-5) << k;
}

TEST(TorchModel, SeveralInputsAndOutputsByNameAndDtype) {
    const auto model = torch_model::from_files(torch_models::files("multi"), "multi:v1");
    ASSERT_EQ(model->inputs().size(), 2u);
    EXPECT_EQ(model->inputs()[1].describe(), "counts i64 [3]");
    EXPECT_EQ(model->outputs()[1].describe(), "total i64 [1]");
    const std::size_t n = 300;
    const std::string embedding = rows_of("inputs.f32", features * 4, 0, n);
    const std::string counts = rows_of("counts.i64", 3 * 8, 0, n);
    const std::string_view views[] = {embedding, counts};
    std::vector<std::string> out;
    model->run(views, n, out);
    ASSERT_EQ(out.size(), 2u);
    // The module returns a dict {"total", "scores"}: outputs come in declared order.
    const std::vector<float> scores = torch_models::values<float>("expected_multi_scores.f32");
    const std::vector<std::int64_t> totals =
        torch_models::values<std::int64_t>("expected_multi_total.i64");
    const auto got_scores = floats(out[0]);
    ASSERT_EQ(got_scores.size(), n * 2);
    for (std::size_t k = 0; k < got_scores.size(); ++k)
        EXPECT_NEAR(got_scores[k], scores[k], 1e-5) << k;
    ASSERT_EQ(out[1].size(), n * 8);
    for (std::size_t r = 0; r < n; ++r) {
        std::int64_t total;
        std::memcpy(&total, out[1].data() + r * 8, 8);
        EXPECT_EQ(total, totals[r]) << r;
    }
}

TEST(TorchModel, AFileThatIsNotTorchScriptIsRefusedNamingTheModel) {
    const auto e =
        error_of([] { torch_model::from_files(torch_models::files("not_torchscript"), "m:v7"); });
    EXPECT_EQ(e.code(), akv::error::invalid_model);
    EXPECT_TRUE(contains(e.what(), "model m:v7: model.pt is not a TorchScript module")) << e.what();

    auto files = torch_models::files("classifier_v1");
    files.erase("model.pt");
    const auto missing = error_of([&] { torch_model::from_files(files, "m:v8"); });
    EXPECT_EQ(missing.code(), akv::error::invalid_model);
    EXPECT_TRUE(contains(missing.what(), "model m:v8: no model.pt")) << missing.what();

    files = torch_models::files("classifier_v1");
    files["model.json"] = R"({"kind": "torchscript", "inputs": [{"name": "embedding",
        "dtype": "f16", "shape": [44]}], "outputs": [{"name": "s", "dtype": "f32", "shape": [2]}]})";
    const auto dtype = error_of([&] { torch_model::from_files(files, "m:v9"); });
    EXPECT_EQ(dtype.code(), akv::error::invalid_model);
    EXPECT_TRUE(contains(dtype.what(), "model m:v9: model.json: inputs[0].dtype: unknown dtype "
                                       "\"f16\""))
        << dtype.what();
}

TEST(TorchModel, DeclaredInputsOrOutputsThatDisagreeWithTheModuleAreRefusedAtLoad) {
    const auto inputs =
        error_of([] { torch_model::from_files(torch_models::files("wrong_inputs"), "w:v1"); });
    EXPECT_EQ(inputs.code(), akv::error::invalid_model);
    EXPECT_TRUE(contains(inputs.what(),
                         "model w:v1: model.json declares the inputs (x), forward() takes "
                         "(embedding)"))
        << inputs.what();

    const auto outputs =
        error_of([] { torch_model::from_files(torch_models::files("wrong_outputs"), "w:v2"); });
    EXPECT_EQ(outputs.code(), akv::error::invalid_model);
    EXPECT_TRUE(contains(
        outputs.what(),
        "model w:v2: output scores is f32 [2,2], model.json declares f32 [2,3] for 2 rows"))
        << outputs.what();
}

TEST(TorchModel, AForwardThatThrowsCostsOnlyTheEntriesItRefuses) {
    const auto model = torch_model::from_files(torch_models::files("picky"), "picky:v3");
    const std::string in = rows_of("inputs.f32", features * 4, 0, 8);
    std::vector<akv::messaging::stream_entry> batch;
    for (std::size_t i = 0; i < 8; ++i) {
        std::vector<float> row(floats(in).begin() + i * features,
                               floats(in).begin() + (i + 1) * features);
        if (i == 5) row[3] = 1000; // the module raises for any |x| > 100
        batch.push_back(entry(std::to_string(i), {{"embedding", row_tensor(row)}}));
    }
    // The whole batch throws: model_failed, with the module's own message.
    const std::string_view view = in;
    std::vector<std::string> out;
    std::string bad = in;
    reinterpret_cast<float*>(bad.data())[3] = 1000;
    const std::string_view bad_view = bad;
    const auto failed = error_of([&] { model->run(std::span(&bad_view, 1), 8, out); });
    EXPECT_EQ(failed.code(), akv::error::model_failed);
    EXPECT_TRUE(contains(failed.what(), "model picky:v3: forward() failed")) << failed.what();
    EXPECT_TRUE(contains(failed.what(), "an input over 100")) << failed.what();

    model_batch scored;
    const std::vector<std::string> fields{"embedding"};
    scored.score(*model, fields, batch);
    model->run(std::span(&view, 1), 8, out);
    for (std::size_t i = 0; i < 8; ++i) {
        if (i == 5) {
            EXPECT_TRUE(contains(scored.error(i), "an input over 100")) << scored.error(i);
            continue;
        }
        ASSERT_EQ(scored.error(i), "") << i;
        EXPECT_EQ(scored.output(i, 0), std::string_view(out[0]).substr(i * 8, 8)) << i;
    }
}

TEST(ModelBatch, EntriesThatDoNotFitTheDeclaredInputsGetAnErrorNamingTheField) {
    const auto model = torch_model::from_files(torch_models::files("multi"), "multi:v1");
    const std::string in = rows_of("inputs.f32", features * 4, 0, 1);
    const std::int64_t counts_shape[] = {3};
    const std::int64_t one[] = {1, 2, 3};
    const std::string counts = encode<std::int64_t>(one, counts_shape);
    const std::string embedding = row_tensor(floats(in));
    std::vector<akv::messaging::stream_entry> batch{
        entry("ok", {{"embedding", embedding}, {"counts", counts}}),
        entry("raw", {{"embedding", in}, {"counts", counts}}), // bare floats: accepted for f32
        entry("missing", {{"embedding", embedding}}),
        entry("shape", {{"embedding", row_tensor(floats(in).first(43))}, {"counts", counts}}),
        entry("dtype", {{"embedding", embedding}, {"counts", row_tensor(std::vector<float>(3))}}),
        entry("garbage", {{"embedding", "not a tensor"}, {"counts", counts}}),
    };
    model_batch scored;
    const std::vector<std::string> fields = input_fields(*model, "ignored with two inputs");
    ASSERT_EQ(fields, (std::vector<std::string>{"embedding", "counts"}));
    scored.score(*model, fields, batch);
    EXPECT_EQ(scored.error(0), "");
    EXPECT_EQ(scored.error(1), "");
    EXPECT_EQ(scored.output(0, 0), scored.output(1, 0));
    EXPECT_TRUE(contains(scored.error(2), "no field \"counts\"")) << scored.error(2);
    EXPECT_TRUE(contains(scored.error(3), "field \"embedding\": tensor: expected f32 [44], got "
                                          "f32 [43]"))
        << scored.error(3);
    EXPECT_TRUE(
        contains(scored.error(4), "field \"counts\": tensor: expected i64 [3], got f32 [3]"))
        << scored.error(4);
    EXPECT_TRUE(contains(scored.error(5),
                         "field \"embedding\": tensor: no AKVT magic, and as bare f32: 44 "
                         "floats need 176 bytes, got 12"))
        << scored.error(5);
    std::int64_t total;
    std::memcpy(&total, scored.output(0, 1).data(), 8);
    EXPECT_EQ(total, 6);
}

// libtorch's intra-op pool is the process's: a model that declares a count sets it when it runs.
TEST(TorchModel, IntraOpThreadsComeFromModelJson) {
    for (int threads : {2, 1}) {
        auto files = torch_models::files("classifier_v1");
        files["model.json"] =
            R"({"kind": "torchscript", "intra_op_threads": )" + std::to_string(threads) + R"(,
            "inputs": [{"name": "embedding", "dtype": "f32", "shape": [44]}],
            "outputs": [{"name": "scores", "dtype": "f32", "shape": [2]}]})";
        const auto model = torch_model::from_files(files, "threads:v1");
        const std::string in = rows_of("inputs.f32", features * 4, 0, 4);
        std::vector<float> out(8);
        model->predict(floats(in), 4, out);
        EXPECT_EQ(at::get_num_threads(), threads);
    }
}

// Loading compiles the module: it runs on the pool, while the caller's loop goes on serving
// Redis, and resumes on the caller's executor.
TEST(TorchModel, LoadingRunsOffTheEventLoop) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    asio::thread_pool pool(1);
    // The pool's only thread waits until the loop has served a command: the load, queued
    // behind it, cannot have run on the loop.
    std::promise<void> served;
    std::shared_future<void> served_future = served.get_future().share();
    asio::post(pool, [served_future] { served_future.wait_for(std::chrono::seconds(30)); });
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto loop_thread = std::this_thread::get_id();
        bool loaded = false;
        std::shared_ptr<const torch_model> model;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                model = co_await torch_model::load(torch_models::files("classifier_v1"), "c:v1",
                                                   pool.get_executor());
                EXPECT_EQ(std::this_thread::get_id(), loop_thread);
                loaded = true;
            },
            asio::detached);
        akv::request ping;
        ping.push("PING");
        akv::response<std::string> pong;
        co_await rc.client.exec(ping, pong);
        EXPECT_EQ(std::get<0>(pong).value(), "PONG");
        EXPECT_FALSE(loaded);
        served.set_value();
        asio::steady_timer wait(io);
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        while (!loaded && std::chrono::steady_clock::now() < deadline) {
            wait.expires_after(5ms);
            co_await wait.async_wait(asio::use_awaitable);
        }
        EXPECT_TRUE(loaded);
        if (model) EXPECT_EQ(model->input_size(), features);
    }());
}

// The pipeline of seed 004 with a PyTorch model: the registry holds the module, a batcher
// runs it on whole batches, every score equals PyTorch's.
TEST(TorchModel, ABatcherScoresEntriesWithAModelFromTheRegistry) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    asio::thread_pool pool(1);
    const std::size_t n = 1000;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::kv::model_registry reg(rc.client, "classifier");
        akv::kv::model m;
        m.files = torch_models::files("classifier_v1");
        co_await reg.save(m);
        const akv::kv::model stored = co_await reg.load("latest");
        std::shared_ptr<const batch_model> model = co_await torch_model::load(
            stored.files, reg.version_name(stored.version), pool.get_executor());

        const std::string in = rows_of("inputs.f32", features * 4, 0, n);
        std::vector<akv::messaging::field_list> entries;
        for (std::size_t i = 0; i < n; ++i)
            entries.push_back({{"id", std::to_string(i)},
                               {"t", row_tensor(floats(in).subspan(i * features, features))}});
        akv::messaging::stream_producer producer(rc.client, "{ml}:in");
        co_await producer.add_many(entries);

        akv::messaging::batcher_options o;
        o.group.stream = "{ml}:in";
        o.group.group = "scorers";
        o.group.consumer = "c1";
        o.output_stream = "{ml}:out";
        o.max_batch = 64;
        o.max_wait = std::chrono::milliseconds(20);
        akv::messaging::batcher b(rc.client, o, model_handler(model));
        co_await b.group().create();
        std::size_t done = 0;
        while (done < n) {
            const std::size_t got = co_await b.run_once();
            if (got == 0) break;
            done += got;
        }
        EXPECT_EQ(done, n);

        akv::request range;
        range.push("XRANGE", "{ml}:out", "-", "+");
        akv::response<akv::resp::value> resp;
        co_await rc.client.exec(range, resp);
        const auto outputs = akv::messaging::entries_from(std::get<0>(resp).value());
        EXPECT_EQ(outputs.size(), n);
        const std::vector<float> expected = torch_models::values<float>("expected_v1.f32");
        for (const auto& o : outputs) {
            const std::size_t i = std::stoul(*o.field("id"));
            const auto scores = decode(*o.field("scores"));
            EXPECT_EQ(scores.shape, (std::vector<std::int64_t>{2}));
            const auto got = scores.values<float>();
            for (std::size_t k = 0; k < 2; ++k)
                EXPECT_NEAR(got[k], expected[i * 2 + k], 1e-5) << "entry " << i;
        }
    }());
}
