// akv::ml batch models: the arithmetic against hand-computed networks, batches against
// rows, and the constructor's checks.
#include <akv/ml/model.hpp>
#include <akv/ml/model_handler.hpp>

#include <gtest/gtest.h>

#include "support/errors.hpp"
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <optional>
#include <vector>

using akv::test::contains;
using akv::test::error_of;

using namespace akv::ml;
using shape_t = std::vector<std::int64_t>;

namespace {

tensor f32(const shape_t& shape, const std::vector<float>& values) {
    return decode(encode<float>(values, shape));
}

double sigmoid(double x) {
    return 1 / (1 + std::exp(-x));
}

// in=2, hidden=2, out=1, small enough to follow by hand.
mlp_model tiny_network() {
    return mlp_model(f32({2, 2}, {1, -1,   // w1 row of input 0
                                  2, 1}),  // w1 row of input 1
                     f32({2}, {0.5f, -2}), // b1
                     f32({2, 1}, {0.2f, 3}), f32({1}, {-1}));
}

std::vector<float> inputs_for(std::size_t rows, std::size_t in) {
    std::vector<float> x(rows * in);
    for (std::size_t i = 0; i < x.size(); ++i)
        x[i] = std::sin(static_cast<float>(i) * 0.37f);
    return x;
}

} // namespace

// ---- mlp_model arithmetic

TEST(MlpModel, MatchesAHandComputedNetwork) {
    const mlp_model model = tiny_network();
    EXPECT_EQ(model.input_size(), 2u);
    EXPECT_EQ(model.hidden_size(), 2u);
    EXPECT_EQ(model.output_size(), 1u);
    // Row 0, x = [1, 2]: hidden = relu([1 + 4 + 0.5, -1 + 2 - 2]) = [5.5, 0];
    //   y = sigmoid(5.5 * 0.2 + 0 * 3 - 1) = sigmoid(0.1).
    // Row 1, x = [-1, 0]: hidden = relu([-1 + 0.5, 1 - 2]) = [0, 0]; y = sigmoid(-1).
    const std::vector<float> x{1, 2, -1, 0};
    std::vector<float> y(2);
    model.predict(x, 2, y);
    EXPECT_NEAR(y[0], sigmoid(0.1), 1e-6);
    EXPECT_NEAR(y[1], sigmoid(-1), 1e-6);
}

TEST(MlpModel, SeveralOutputsAreASoftmax) {
    // in=1, hidden=1, out=2: x = 1 gives logits [1, -1].
    const mlp_model model(f32({1, 1}, {1}), f32({1}, {0}), f32({1, 2}, {1, -1}), f32({2}, {0, 0}));
    const std::vector<float> x{1};
    std::vector<float> y(2);
    model.predict(x, 1, y);
    EXPECT_NEAR(y[0], std::exp(1.0) / (std::exp(1.0) + std::exp(-1.0)), 1e-6);
    EXPECT_NEAR(y[1], std::exp(-1.0) / (std::exp(1.0) + std::exp(-1.0)), 1e-6);
}

TEST(MlpModel, SoftmaxRowsSumToOne) {
    const mlp_model model = mlp_model::random(44, 16, 5, 42);
    const std::size_t rows = 50;
    const auto x = inputs_for(rows, 44);
    std::vector<float> y(rows * 5);
    model.predict(x, rows, y);
    for (std::size_t i = 0; i < rows; ++i) {
        const auto row = std::span(y).subspan(i * 5, 5);
        EXPECT_NEAR(std::accumulate(row.begin(), row.end(), 0.0), 1.0, 1e-5) << "row " << i;
        for (float v : row)
            EXPECT_TRUE(v > 0 && v < 1) << v;
    }
}

TEST(MlpModel, SoftmaxOfHugeLogitsStaysFinite) {
    const mlp_model model(f32({1, 1}, {1}), f32({1}, {0}), f32({1, 2}, {1000, -1000}),
                          f32({2}, {0, 0}));
    const std::vector<float> x{1};
    std::vector<float> y(2);
    model.predict(x, 1, y);
    EXPECT_FLOAT_EQ(y[0], 1.0f);
    EXPECT_FLOAT_EQ(y[1], 0.0f);
}

// Sizes that cross every block edge of the blocked product (32 rows, 64 deep, 256 wide).
TEST(MlpModel, BatchEqualsRowByRowAndAPlainProduct) {
    const std::size_t in = 300, hidden = 270, out = 3, rows = 70;
    const mlp_model model = mlp_model::random(in, hidden, out, 7);
    const auto x = inputs_for(rows, in);
    std::vector<float> batch(rows * out);
    model.predict(x, rows, batch);
    for (std::size_t i = 0; i < rows; ++i) {
        std::vector<float> one(out);
        model.predict(std::span(x).subspan(i * in, in), 1, one);
        for (std::size_t j = 0; j < out; ++j) {
            EXPECT_FLOAT_EQ(batch[i * out + j], one[j]) << "row " << i << " output " << j;
        }
    }
}

TEST(MlpModel, BlockedProductMatchesANaiveOne) {
    // The same weights through mlp_model and through a textbook triple loop in double.
    const std::size_t in = 130, hidden = 300, out = 1, rows = 40;
    std::vector<float> w1(in * hidden), b1(hidden), w2(hidden * out), b2{0.25f};
    for (std::size_t i = 0; i < w1.size(); ++i)
        w1[i] = std::cos(static_cast<float>(i)) * 0.1f;
    for (std::size_t i = 0; i < b1.size(); ++i)
        b1[i] = 0.01f * static_cast<float>(i % 7);
    for (std::size_t i = 0; i < w2.size(); ++i)
        w2[i] = std::sin(static_cast<float>(i)) * 0.1f;
    const mlp_model model(f32({130, 300}, w1), f32({300}, b1), f32({300, 1}, w2), f32({1}, b2));
    const auto x = inputs_for(rows, in);
    std::vector<float> y(rows);
    model.predict(x, rows, y);
    for (std::size_t r = 0; r < rows; ++r) {
        double z = b2[0];
        for (std::size_t h = 0; h < hidden; ++h) {
            double a = b1[h];
            for (std::size_t p = 0; p < in; ++p)
                a += double(x[r * in + p]) * w1[p * hidden + h];
            z += std::max(a, 0.0) * w2[h];
        }
        EXPECT_NEAR(y[r], sigmoid(z), 1e-5) << "row " << r;
    }
}

TEST(MlpModel, RandomIsReproducibleFromItsSeed) {
    EXPECT_EQ(mlp_model::random(44, 8, 2, 1), mlp_model::random(44, 8, 2, 1));
    EXPECT_FALSE(mlp_model::random(44, 8, 2, 1) == mlp_model::random(44, 8, 2, 2));
}

TEST(MlpModel, EmptyBatchIsANoOp) {
    const mlp_model model = tiny_network();
    model.predict({}, 0, {});
}

TEST(MlpModel, PredictRejectsSpansThatDoNotFitTheRows) {
    const mlp_model model = tiny_network();
    const std::vector<float> x(5);
    std::vector<float> y(2);
    auto e = error_of([&] { model.predict(x, 2, y); });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "mlp_model: a batch of 2 rows needs 4 inputs and 2 outputs, "
                                   "got 5 and 2"));
}

// ---- mlp_model construction

TEST(MlpModelConstruction, RejectsAW1ThatIsNotAMatrixOfF32) {
    const std::vector<double> w{1, 2};
    auto e = error_of([&] {
        mlp_model(decode(encode<double>(w, shape_t{1, 2})), f32({2}, {0, 0}), f32({2, 1}, {1, 1}),
                  f32({1}, {0}));
    });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "mlp_model: w1 must be f32 [in,hidden] with in, hidden > 0, "
                                   "got f64 [1,2]"));
    auto flat = error_of([&] {
        mlp_model(f32({2}, {1, 2}), f32({2}, {0, 0}), f32({2, 1}, {1, 1}), f32({1}, {0}));
    });
    EXPECT_TRUE(contains(flat.what(), "w1 must be f32 [in,hidden]"));
}

TEST(MlpModelConstruction, RejectsAB1OfAnotherHiddenSize) {
    auto e = error_of([&] {
        mlp_model(f32({2, 2}, {1, 2, 3, 4}), f32({3}, {0, 0, 0}), f32({2, 1}, {1, 1}),
                  f32({1}, {0}));
    });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "mlp_model: b1 must be f32 [2] (hidden = 2 from w1 [2,2]), "
                                   "got f32 [3]"));
}

TEST(MlpModelConstruction, RejectsAW2ThatDoesNotFollowW1) {
    auto e = error_of([&] {
        mlp_model(f32({2, 2}, {1, 2, 3, 4}), f32({2}, {0, 0}), f32({3, 1}, {1, 1, 1}),
                  f32({1}, {0}));
    });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "mlp_model: w2 must be f32 [2,out] with out > 0 (hidden = 2 "
                                   "from w1 [2,2]), got f32 [3,1]"));
}

TEST(MlpModelConstruction, RejectsAB2OfAnotherOutputSize) {
    auto e = error_of([&] {
        mlp_model(f32({2, 2}, {1, 2, 3, 4}), f32({2}, {0, 0}), f32({2, 1}, {1, 1}),
                  f32({2}, {0, 0}));
    });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "mlp_model: b2 must be f32 [1] (out = 1 from w2 [2,1]), "
                                   "got f32 [2]"));
}

TEST(MlpModelConstruction, RejectsATensorWhoseDataDoNotFitItsShape) {
    tensor w1 = f32({2, 2}, {1, 2, 3, 4});
    w1.data.resize(12);
    auto e = error_of([&] {
        mlp_model(std::move(w1), f32({2}, {0, 0}), f32({2, 1}, {1, 1}), f32({1}, {0}));
    });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "mlp_model: w1 f32 [2,2] needs 16 data bytes, got 12"));
}

// ---- logistic_model

TEST(LogisticModel, MatchesAHandComputedRegression) {
    const logistic_model model({1, 2, 3}, -1);
    EXPECT_EQ(model.input_size(), 3u);
    EXPECT_EQ(model.output_size(), 1u);
    const std::vector<float> x{1, 0,  1,  // z = 1 + 3 - 1 = 3
                               0, 0,  0,  // z = -1
                               0, -2, 1}; // z = -4 + 3 - 1 = -2
    std::vector<float> y(3);
    model.predict(x, 3, y);
    EXPECT_NEAR(y[0], sigmoid(3), 1e-6);
    EXPECT_NEAR(y[1], sigmoid(-1), 1e-6);
    EXPECT_NEAR(y[2], sigmoid(-2), 1e-6);
}

TEST(LogisticModel, SigmoidOfHugeValuesStaysFinite) {
    const logistic_model model({1}, 0);
    const std::vector<float> x{1e6f, -1e6f};
    std::vector<float> y(2);
    model.predict(x, 2, y);
    EXPECT_EQ(y[0], 1.0f);
    EXPECT_EQ(y[1], 0.0f);
}

TEST(LogisticModel, BatchEqualsRowByRow) {
    std::vector<float> w(44);
    for (std::size_t i = 0; i < w.size(); ++i)
        w[i] = std::cos(static_cast<float>(i));
    const logistic_model model(w, 0.3f);
    const auto x = inputs_for(20, 44);
    std::vector<float> batch(20);
    model.predict(x, 20, batch);
    for (std::size_t i = 0; i < 20; ++i) {
        float one = 0;
        model.predict(std::span(x).subspan(i * 44, 44), 1, std::span(&one, 1));
        EXPECT_FLOAT_EQ(batch[i], one) << "row " << i;
    }
}

TEST(LogisticModel, RejectsEmptyWeightsAndMisfitSpans) {
    EXPECT_EQ(error_of([] { logistic_model({}, 0); }).code(), akv::error::type_mismatch);
    const logistic_model model({1, 2}, 0);
    const std::vector<float> x(4);
    std::vector<float> y(1);
    auto e = error_of([&] { model.predict(x, 2, y); });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "logistic_model: a batch of 2 rows needs 4 inputs and 2 "
                                   "outputs, got 4 and 1"));
}

TEST(BatchModel, IsUsableThroughTheInterface) {
    const logistic_model logistic({0.5f, 0.5f}, 0);
    const mlp_model mlp = tiny_network();
    for (const batch_model* model :
         {static_cast<const batch_model*>(&logistic), static_cast<const batch_model*>(&mlp)}) {
        const std::vector<float> x{1, 2, -1, 0};
        std::vector<float> y(2 * model->output_size());
        model->predict(x, 2, y);
        for (float v : y)
            EXPECT_TRUE(v > 0 && v < 1) << v;
    }
}

// ---- model.json (model_spec) and the named form of batch_model

TEST(ModelSpec, ReadsATorchScriptDeclaration) {
    const auto spec = model_spec::parse(R"({"kind": "torchscript", "intra_op_threads": 2,
        "inputs": [{"name": "embedding", "dtype": "f32", "shape": [44]},
                   {"name": "ids", "dtype": "i64", "shape": [2, 3], "field": "token_ids"}],
        "outputs": [{"name": "scores", "dtype": "f64", "shape": [2]}]})");
    EXPECT_EQ(spec.kind, "torchscript");
    EXPECT_EQ(spec.file, "model.pt");
    EXPECT_EQ(spec.intra_op_threads, 2);
    ASSERT_EQ(spec.inputs.size(), 2u);
    EXPECT_EQ(spec.inputs[1].describe(), "ids i64 [2,3]");
    EXPECT_EQ(spec.inputs[1].field, "token_ids");
    EXPECT_EQ(spec.inputs[1].bytes(), 48u);
    EXPECT_EQ(spec.outputs[0].type, dtype::f64);
    // Other kinds keep their own keys.
    EXPECT_EQ(model_spec::parse(R"({"kind": "logistic", "weights": [1], "bias": 0})").kind,
              "logistic");
}

TEST(ModelSpec, NamesTheKeyThatIsWrong) {
    const std::pair<const char*, const char*> cases[] = {
        {"[1]", "model.json: must be an object, got an array"},
        {"{", "model.json: not JSON"},
        {R"({"inputs": []})", "model.json: the document: missing \"kind\""},
        {R"({"kind": "torchscript", "outputs": []})",
         "the document: missing \"inputs\" (kind torchscript)"},
        {R"({"kind": "torchscript", "inputs": [], "outputs": []})",
         "inputs: must be a non-empty array"},
        {R"({"kind": "torchscript", "inputs": [{"name": "x", "dtype": "f32", "shape": [0]}],
             "outputs": [{"name": "y", "dtype": "f32", "shape": [1]}]})",
         "inputs[0].shape: a dim must be a whole number > 0, got 0"},
        {R"({"kind": "torchscript", "inputs": [{"name": "x", "dtype": "f32", "shape": [1]}],
             "outputs": [{"name": "y", "dtype": "bf16", "shape": [1]}]})",
         "outputs[0].dtype: unknown dtype \"bf16\""},
        {R"({"kind": "torchscript", "inputs": [{"name": "x", "dtype": "f32", "shape": [1]},
             {"name": "x", "dtype": "f32", "shape": [1]}],
             "outputs": [{"name": "y", "dtype": "f32", "shape": [1]}]})",
         "inputs[1].name: \"x\" appears twice"},
        {R"({"kind": "torchscript", "inputs": [{"dtype": "f32", "shape": [1]}],
             "outputs": [{"name": "y", "dtype": "f32", "shape": [1]}]})",
         "inputs[0]: missing \"name\""},
        {R"({"kind": "torchscript", "inputs": [{"name": "x", "dtype": "f32",
             "shape": [1,1,1,1,1,1,1,1]}], "outputs": [{"name": "y", "dtype": "f32",
             "shape": [1]}]})",
         "inputs[0].shape: at most 7 dims, got 8"},
        {R"({"kind": "mlp", "intra_op_threads": -1})",
         "intra_op_threads: must be a whole number from 0 to 1024, got -1"},
    };
    for (const auto& [doc, says] : cases) {
        const auto e = error_of([&] { model_spec::parse(doc); });
        EXPECT_EQ(e.code(), akv::error::invalid_model) << doc;
        EXPECT_TRUE(contains(e.what(), says)) << doc;
    }
}

TEST(BatchModel, TheNamedFormOfAnMlpIsItsPredict) {
    const mlp_model m = tiny_network();
    ASSERT_EQ(m.inputs().size(), 1u);
    EXPECT_EQ(m.inputs()[0].describe(), "input f32 [2]");
    EXPECT_EQ(m.outputs()[0].describe(), "output f32 [1]");
    const std::vector<float> x = inputs_for(5, 2);
    std::vector<float> want(5);
    m.predict(x, 5, want);
    const std::string bytes(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
    const std::string_view view = bytes;
    std::vector<std::string> out;
    m.run(std::span(&view, 1), 5, out);
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].size(), 5 * sizeof(float));
    EXPECT_EQ(std::memcmp(out[0].data(), want.data(), out[0].size()), 0);
    EXPECT_EQ(error_of([&] { m.run(std::span(&view, 1), 4, out); }).code(),
              akv::error::type_mismatch);
}

// ---- model_batch: rows in, outputs and errors back to their entries

namespace {

// y = 2x; refuses (error::model_failed) any run with a negative x, as a module that asserts on
// its inputs would. Counts its runs.
class doubling_model final : public batch_model {
public:
    std::size_t input_size() const override { return 1; }
    std::size_t output_size() const override { return 1; }
    void predict(std::span<const float> in, std::size_t rows, std::span<float> out) const override {
        ++runs;
        for (std::size_t i = 0; i < rows; ++i)
            if (in[i] < 0) akv::throw_error(akv::error::model_failed, "negative input");
        for (std::size_t i = 0; i < rows; ++i)
            out[i] = 2 * in[i];
    }
    mutable std::size_t runs = 0;
};

// Declares one output and gives none: a model that disagrees with itself.
class broken_model final : public batch_model {
public:
    std::size_t input_size() const override { return 1; }
    std::size_t output_size() const override { return 1; }
    void predict(std::span<const float>, std::size_t, std::span<float>) const override {}
    void run(std::span<const std::string_view>, std::size_t,
             std::vector<std::string>& outputs) const override {
        outputs.clear();
    }
};

akv::messaging::stream_entry entry_of(std::optional<float> x) {
    akv::messaging::stream_entry e;
    if (x) e.fields.emplace_back("x", std::string(reinterpret_cast<const char*>(&*x), 4));
    return e;
}

float output_of(const model_batch& b, std::size_t i) {
    float y;
    std::memcpy(&y, b.output(i, 0).data(), 4);
    return y;
}

} // namespace

TEST(ModelBatch, EachEntryGetsItsOwnOutputOrTheReasonItHasNone) {
    const doubling_model m;
    std::vector<akv::messaging::stream_entry> batch{
        entry_of(1), entry_of(std::nullopt), entry_of(-1), entry_of(2), entry_of(-2), entry_of(3)};
    batch[1].fields.emplace_back("x", "12345"); // five bytes: neither AKVT nor one float
    model_batch b;
    const std::vector<std::string> fields{"x"};
    b.score(m, fields, batch);
    EXPECT_EQ(b.error(0), "");
    EXPECT_EQ(output_of(b, 0), 2);
    EXPECT_TRUE(contains(b.error(1), "field \"x\": tensor: no AKVT magic")) << b.error(1);
    EXPECT_TRUE(contains(b.error(2), "negative input")) << b.error(2);
    EXPECT_EQ(output_of(b, 3), 4);
    EXPECT_TRUE(contains(b.error(4), "negative input")) << b.error(4);
    EXPECT_EQ(output_of(b, 5), 6);
    EXPECT_EQ(b.runs(), m.runs);
}

TEST(ModelBatch, OneRefusedRowAmongManyCostsAFewRunsNotOnePerRow) {
    const doubling_model m;
    std::vector<akv::messaging::stream_entry> batch;
    for (int i = 0; i < 256; ++i)
        batch.push_back(entry_of(i == 100 ? -1.0f : float(i)));
    model_batch b;
    const std::vector<std::string> fields{"x"};
    b.score(m, fields, batch);
    for (int i = 0; i < 256; ++i) {
        if (i == 100) {
            EXPECT_TRUE(contains(b.error(i), "negative input"));
            continue;
        }
        ASSERT_EQ(b.error(i), "") << i;
        EXPECT_EQ(output_of(b, i), 2.0f * float(i)) << i;
    }
    EXPECT_LE(b.runs(), 1 + 2 * 8u); // halving: two runs per level of 256 = 2^8
}

TEST(ModelBatch, AModelThatDisagreesWithItsOwnDeclarationFailsTheBatch) {
    const broken_model m;
    const std::vector<akv::messaging::stream_entry> batch{entry_of(1), entry_of(2)};
    model_batch b;
    const std::vector<std::string> fields{"x"};
    const auto e = error_of([&] { b.score(m, fields, batch); });
    EXPECT_EQ(e.code(), akv::error::invalid_model);
    EXPECT_TRUE(contains(e.what(), "the model gave 0 outputs, it declares 1")) << e.what();
}

TEST(ModelSpec, AShapeTooLargeForOneEntryIsRefused) {
    for (const char* shape : {"[4294967296, 4294967296]", "[100000, 100000]"}) {
        const std::string doc = std::string(R"({"kind": "torchscript", "inputs": [{"name": "x",
            "dtype": "f32", "shape": )") +
                                shape + R"(}], "outputs": [{"name": "y",
            "dtype": "f32", "shape": [1]}]})";
        const auto e = error_of([&] { model_spec::parse(doc); });
        EXPECT_EQ(e.code(), akv::error::invalid_model) << shape;
        EXPECT_TRUE(contains(e.what(), "bytes per entry")) << e.what();
    }
    const auto e = error_of([] {
        model_spec::parse(R"({"kind": "torchscript", "file": "../elsewhere.pt",
            "inputs": [{"name": "x", "dtype": "f32", "shape": [1]}],
            "outputs": [{"name": "y", "dtype": "f32", "shape": [1]}]})");
    });
    EXPECT_TRUE(contains(e.what(), "file: must name a file of the model's directory")) << e.what();
}
