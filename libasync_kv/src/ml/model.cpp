#include <akv/ml/model.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <random>
#include <string>
#include <tuple>

namespace akv::ml {

namespace {

// ---- the arithmetic

// c[m x n] = a[m x k] * b[k x n] + bias[n], all row-major.
//
// The i-p-j order makes the innermost loop run along contiguous rows of b and c, which the
// compiler vectorizes. The blocks keep a 64 x 256 tile of b (64 KiB) hot while it serves 32 rows
// of a, and the 32 x 256 tile of c they write (32 KiB) in cache across the whole depth. Every
// c[i][j] still sums its k products in order p = 0, 1, ..., so a row's result does not depend
// on the batch it came in.
void affine(const float* __restrict a, const float* __restrict b, const float* __restrict bias,
            float* __restrict c, std::size_t m, std::size_t k, std::size_t n) {
    constexpr std::size_t row_block = 32;
    constexpr std::size_t depth_block = 64;
    constexpr std::size_t col_block = 256;
    for (std::size_t i = 0; i < m; ++i)
        std::copy(bias, bias + n, c + i * n);
    for (std::size_t i0 = 0; i0 < m; i0 += row_block) {
        const std::size_t i_end = std::min(m, i0 + row_block);
        for (std::size_t j0 = 0; j0 < n; j0 += col_block) {
            const std::size_t j_end = std::min(n, j0 + col_block);
            for (std::size_t p0 = 0; p0 < k; p0 += depth_block) {
                const std::size_t p_end = std::min(k, p0 + depth_block);
                for (std::size_t i = i0; i < i_end; ++i) {
                    const float* a_row = a + i * k;
                    float* c_row = c + i * n;
                    for (std::size_t p = p0; p < p_end; ++p) {
                        const float a_ip = a_row[p];
                        const float* b_row = b + p * n;
                        for (std::size_t j = j0; j < j_end; ++j)
                            c_row[j] += a_ip * b_row[j];
                    }
                }
            }
        }
    }
}

float sigmoid(float x) {
    // Both branches keep exp() from overflowing.
    if (x >= 0) return 1.0f / (1.0f + std::exp(-x));
    const float e = std::exp(x);
    return e / (1.0f + e);
}

void softmax(std::span<float> row) {
    const float max = *std::max_element(row.begin(), row.end());
    float sum = 0;
    for (float& v : row) {
        v = std::exp(v - max);
        sum += v;
    }
    for (float& v : row)
        v /= sum;
}

// ---- validation

void check_batch(std::string_view model, std::size_t in, std::size_t out,
                 std::span<const float> inputs, std::size_t rows, std::span<float> outputs) {
    if (inputs.size() != rows * in || outputs.size() != rows * out) {
        throw_error(error::type_mismatch,
                    std::string(model) + ": a batch of " + std::to_string(rows) + " rows needs " +
                        std::to_string(rows * in) + " inputs and " + std::to_string(rows * out) +
                        " outputs, got " + std::to_string(inputs.size()) + " and " +
                        std::to_string(outputs.size()));
    }
}

std::string describe(const tensor& t) {
    return std::string(to_string(t.type)) + " " + format_shape(t.shape);
}

// The tensor's floats, after checking it is f32 of `ndim` positive dims (dims[i] must equal
// expected[i] where that is not 0) whose data fit the shape.
std::vector<float> floats_of(const tensor& t, std::string_view name, std::size_t ndim,
                             std::array<std::int64_t, 2> expected, std::string_view expectation) {
    bool ok = t.type == dtype::f32 && t.shape.size() == ndim;
    for (std::size_t i = 0; ok && i < ndim; ++i) {
        ok = t.shape[i] > 0 && (expected[i] == 0 || t.shape[i] == expected[i]);
    }
    if (!ok) {
        throw_error(error::type_mismatch, "mlp_model: " + std::string(name) + " must be " +
                                              std::string(expectation) + ", got " + describe(t));
    }
    if (t.data.size() != t.elements() * sizeof(float)) {
        throw_error(error::type_mismatch, "mlp_model: " + std::string(name) + " " + describe(t) +
                                              " needs " +
                                              std::to_string(t.elements() * sizeof(float)) +
                                              " data bytes, got " + std::to_string(t.data.size()));
    }
    std::vector<float> values(t.elements());
    if (!values.empty()) std::memcpy(values.data(), t.data.data(), t.data.size());
    return values;
}

std::string encode_floats(std::span<const float> values, std::initializer_list<std::int64_t> dims) {
    return encode<float>(values, std::span<const std::int64_t>(dims.begin(), dims.size()));
}

// ---- Redis

constexpr std::array<std::string_view, 4> fields{"w1", "b1", "w2", "b2"};

std::string model_prefix(std::string_view key) {
    return "model \"" + std::string(key) + "\": ";
}

// A system_error's own text, without the " [akv:6]"-like suffix its what() adds.
std::string detail_of(const boost::system::system_error& e) {
    std::string_view what = e.what();
    const std::string suffix = ": " + e.code().what();
    if (what.ends_with(suffix)) what.remove_suffix(suffix.size());
    return std::string(what);
}

template <class T> const T& value_or_throw(const result<T>& r, std::string_view key) {
    if (r.has_error()) {
        throw boost::system::system_error(r.error().code, model_prefix(key) + r.error().message);
    }
    return *r;
}

asio::awaitable<void> store(client& redis, request req, std::string key) {
    response<long long> resp;
    co_await redis.exec(req, resp);
    value_or_throw(std::get<0>(resp), key);
}

asio::awaitable<mlp_model> fetch(client& redis, std::string key) {
    request req({.idempotent = true});
    req.push("EXISTS", key);
    req.push("HMGET", key, fields[0], fields[1], fields[2], fields[3]);
    response<long long, std::vector<std::optional<std::string>>> resp;
    co_await redis.exec(req, resp);
    if (value_or_throw(std::get<0>(resp), key) == 0) {
        throw_error(error::unexpected_null, model_prefix(key) + "no such key");
    }
    const auto& values = value_or_throw(std::get<1>(resp), key);
    std::array<tensor, fields.size()> tensors;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        const std::string field = "field \"" + std::string(fields[i]) + "\"";
        if (i >= values.size() || !values[i]) {
            throw_error(error::unexpected_null, model_prefix(key) + "missing " + field);
        }
        try {
            tensors[i] = decode(*values[i]);
        } catch (const boost::system::system_error& e) {
            throw boost::system::system_error(e.code(),
                                              model_prefix(key) + field + ": " + detail_of(e));
        }
    }
    try {
        co_return mlp_model(std::move(tensors[0]), std::move(tensors[1]), std::move(tensors[2]),
                            std::move(tensors[3]));
    } catch (const boost::system::system_error& e) {
        throw boost::system::system_error(e.code(), model_prefix(key) + detail_of(e));
    }
}

} // namespace

// ---- batch_model

std::vector<tensor_spec> batch_model::inputs() const {
    return {tensor_spec{"input", dtype::f32, {static_cast<std::int64_t>(input_size())}, {}}};
}

std::vector<tensor_spec> batch_model::outputs() const {
    return {tensor_spec{"output", dtype::f32, {static_cast<std::int64_t>(output_size())}, {}}};
}

void batch_model::run(std::span<const std::string_view> inputs, std::size_t rows,
                      std::vector<std::string>& outputs) const {
    if (inputs.size() != 1)
        throw_error(error::type_mismatch,
                    "batch_model: one input, got " + std::to_string(inputs.size()));
    const std::size_t in = input_size(), out = output_size();
    if (inputs[0].size() != rows * in * sizeof(float))
        throw_error(error::type_mismatch, "batch_model: " + std::to_string(rows) + " rows of " +
                                              std::to_string(in) + " f32 need " +
                                              std::to_string(rows * in * sizeof(float)) +
                                              " bytes, got " + std::to_string(inputs[0].size()));
    outputs.resize(1);
    outputs[0].resize(rows * out * sizeof(float));
    predict({reinterpret_cast<const float*>(inputs[0].data()), rows * in}, rows,
            {reinterpret_cast<float*>(outputs[0].data()), rows * out});
}

// ---- mlp_model

mlp_model::mlp_model(tensor w1, tensor b1, tensor w2, tensor b2) {
    w1_ = floats_of(w1, "w1", 2, {0, 0}, "f32 [in,hidden] with in, hidden > 0");
    in_ = static_cast<std::size_t>(w1.shape[0]);
    hidden_ = static_cast<std::size_t>(w1.shape[1]);
    const auto hidden = static_cast<std::int64_t>(hidden_);
    const std::string from_w1 =
        " (hidden = " + std::to_string(hidden) + " from w1 " + format_shape(w1.shape) + ")";
    b1_ = floats_of(b1, "b1", 1, {hidden, 0}, "f32 [" + std::to_string(hidden) + "]" + from_w1);
    w2_ = floats_of(w2, "w2", 2, {hidden, 0},
                    "f32 [" + std::to_string(hidden) + ",out] with out > 0" + from_w1);
    out_ = static_cast<std::size_t>(w2.shape[1]);
    const auto out = static_cast<std::int64_t>(out_);
    b2_ = floats_of(b2, "b2", 1, {out, 0},
                    "f32 [" + std::to_string(out) + "] (out = " + std::to_string(out) +
                        " from w2 " + format_shape(w2.shape) + ")");
}

mlp_model mlp_model::random(std::size_t in, std::size_t hidden, std::size_t out,
                            std::uint32_t seed) {
    if (in == 0 || hidden == 0 || out == 0) {
        throw_error(error::type_mismatch,
                    "mlp_model::random: sizes must be > 0, got in " + std::to_string(in) +
                        ", hidden " + std::to_string(hidden) + ", out " + std::to_string(out));
    }
    // std::uniform_real_distribution differs between standard libraries; mt19937 does not.
    std::mt19937 engine(seed);
    auto uniform = [&](float limit) {
        const float unit = static_cast<float>(engine() >> 8) * 0x1p-24f; // [0, 1)
        return (2 * unit - 1) * limit;
    };
    auto fill = [&](std::vector<float>& v, std::size_t n, float limit) {
        v.resize(n);
        for (float& x : v)
            x = uniform(limit);
    };
    mlp_model m;
    m.in_ = in;
    m.hidden_ = hidden;
    m.out_ = out;
    fill(m.w1_, in * hidden, std::sqrt(6.0f / static_cast<float>(in + hidden)));
    fill(m.b1_, hidden, 0.1f);
    fill(m.w2_, hidden * out, std::sqrt(6.0f / static_cast<float>(hidden + out)));
    fill(m.b2_, out, 0.1f);
    return m;
}

void mlp_model::predict(std::span<const float> inputs, std::size_t rows,
                        std::span<float> outputs) const {
    check_batch("mlp_model", in_, out_, inputs, rows, outputs);
    if (rows == 0) return;
    // One per thread, reused: a steady stream of batches allocates nothing.
    thread_local std::vector<float> hidden;
    if (hidden.size() < rows * hidden_) hidden.resize(rows * hidden_);
    affine(inputs.data(), w1_.data(), b1_.data(), hidden.data(), rows, in_, hidden_);
    for (std::size_t i = 0; i < rows * hidden_; ++i)
        hidden[i] = std::max(hidden[i], 0.0f);
    affine(hidden.data(), w2_.data(), b2_.data(), outputs.data(), rows, hidden_, out_);
    if (out_ == 1) {
        for (float& y : outputs)
            y = sigmoid(y);
    } else {
        for (std::size_t i = 0; i < rows; ++i)
            softmax(outputs.subspan(i * out_, out_));
    }
}

bool operator==(const mlp_model& a, const mlp_model& b) {
    return std::tie(a.in_, a.hidden_, a.out_, a.w1_, a.b1_, a.w2_, a.b2_) ==
           std::tie(b.in_, b.hidden_, b.out_, b.w1_, b.b1_, b.w2_, b.b2_);
}

asio::awaitable<void> mlp_model::save(client& redis, std::string_view key) const {
    const auto in = static_cast<std::int64_t>(in_);
    const auto hidden = static_cast<std::int64_t>(hidden_);
    const auto out = static_cast<std::int64_t>(out_);
    request req({.idempotent = true}); // the same HSET twice leaves the same hash
    req.push("HSET", key, "w1", encode_floats(w1_, {in, hidden}), "b1",
             encode_floats(b1_, {hidden}), "w2", encode_floats(w2_, {hidden, out}), "b2",
             encode_floats(b2_, {out}));
    return store(redis, std::move(req), std::string(key));
}

asio::awaitable<mlp_model> mlp_model::load(client& redis, std::string_view key) {
    return fetch(redis, std::string(key));
}

// ---- logistic_model

logistic_model::logistic_model(std::vector<float> w, float b)
    : w_(std::move(w))
    , b_(b) {
    if (w_.empty()) throw_error(error::type_mismatch, "logistic_model: no weights");
}

void logistic_model::predict(std::span<const float> inputs, std::size_t rows,
                             std::span<float> outputs) const {
    const std::size_t n = w_.size();
    check_batch("logistic_model", n, 1, inputs, rows, outputs);
    // A matrix-vector product: each row's dot product reads the row and w contiguously.
    for (std::size_t i = 0; i < rows; ++i) {
        const float* row = inputs.data() + i * n;
        float z = b_;
        for (std::size_t p = 0; p < n; ++p)
            z += row[p] * w_[p];
        outputs[i] = sigmoid(z);
    }
}

} // namespace akv::ml
