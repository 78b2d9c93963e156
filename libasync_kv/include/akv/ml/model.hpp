// Batch models: a batch of rows in, one output row per input row, one call per batch.
//
// The stream batcher reads N entries, packs their tensors into one rows x input_size matrix,
// calls predict() once and writes the N output rows back: what RedisGears + RedisAI did, here
// in process. Implement batch_model for your own model; mlp_model and logistic_model are two
// small real ones, computed as matrix products over the whole batch (no BLAS).
//
//   auto model = co_await akv::ml::mlp_model::load(redis, "model:interest");
//   std::vector<float> out(rows * model.output_size());
//   model.predict(inputs, rows, out);
#pragma once

#include <akv/client.hpp>
#include <akv/ml/model_spec.hpp>
#include <akv/ml/tensor.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace akv::ml {

class batch_model {
public:
    virtual ~batch_model() = default;

    virtual std::size_t input_size() const = 0;  // features per row
    virtual std::size_t output_size() const = 0; // outputs per row

    // inputs: rows x input_size floats, row-major; outputs: rows x output_size floats.
    // Implementations throw error::type_mismatch when a span's size does not match `rows`.
    virtual void predict(std::span<const float> inputs, std::size_t rows,
                         std::span<float> outputs) const = 0;

    // The named form, for models with several inputs or outputs, or dtypes other than f32
    // (torch_model). By default one f32 input "input" [input_size] and one f32 output "output"
    // [output_size], computed by predict().
    virtual std::vector<tensor_spec> inputs() const;
    virtual std::vector<tensor_spec> outputs() const;
    // inputs[i]: the rows' i-th tensors stacked, rows * inputs()[i].bytes() bytes, aligned
    // for its dtype (as a std::string's buffer is). Fills outputs[j] (resized) with the rows'
    // j-th outputs stacked. Throws error::type_mismatch for sizes that do not fit `rows`.
    virtual void run(std::span<const std::string_view> inputs, std::size_t rows,
                     std::vector<std::string>& outputs) const;
};

// A two-layer perceptron: hidden = relu(x W1 + b1), then y = sigmoid(hidden W2 + b2) for one
// output, softmax(hidden W2 + b2) for several. predict() is safe to call from several threads
// at once (its scratch buffer is per thread) and does not allocate once a thread's scratch
// buffer has grown to the largest batch.
class mlp_model final : public batch_model {
public:
    // w1: f32 [in, hidden], b1: f32 [hidden], w2: f32 [hidden, out], b2: f32 [out], every size
    // > 0. Throws error::type_mismatch naming the tensor, the shape it has and the one expected.
    mlp_model(tensor w1, tensor b1, tensor w2, tensor b2);

    // Glorot-uniform weights and small uniform biases drawn from std::mt19937(seed): the same
    // seed gives the same model on every platform. For demos and benchmarks.
    static mlp_model random(std::size_t in, std::size_t hidden, std::size_t out,
                            std::uint32_t seed);

    std::size_t input_size() const override { return in_; }
    std::size_t output_size() const override { return out_; }
    std::size_t hidden_size() const noexcept { return hidden_; }

    void predict(std::span<const float> inputs, std::size_t rows,
                 std::span<float> outputs) const override;

    // The weights live in Redis as a hash whose fields w1, b1, w2 and b2 are encoded tensors
    // (see tensor.hpp: readable by any client). save() writes all four in one HSET, so a
    // concurrent load() never sees half of an update. Other fields of the hash are left alone.
    // The request is built when save() is called: neither `key` nor the model need outlive
    // the returned awaitable (load() copies `key` likewise).
    asio::awaitable<void> save(client& redis, std::string_view key) const;

    // Throws boost::system::system_error:
    //   error::unexpected_null  model "k": no such key / model "k": missing field "b2"
    //   error::type_mismatch    model "k": field "w1": tensor: bad magic ... (a bad tensor or
    //                           shapes that do not fit together)
    //   error::server_error     model "k": WRONGTYPE ... (the key is not a hash)
    // and the transport errors of client::exec.
    static asio::awaitable<mlp_model> load(client& redis, std::string_view key);

    // Same sizes and equal weights.
    friend bool operator==(const mlp_model& a, const mlp_model& b);

private:
    mlp_model() = default;

    std::size_t in_ = 0;
    std::size_t hidden_ = 0;
    std::size_t out_ = 0;
    std::vector<float> w1_; // in x hidden, row-major
    std::vector<float> b1_; // hidden
    std::vector<float> w2_; // hidden x out, row-major
    std::vector<float> b2_; // out
};

// Logistic regression, the seed's interest classifier: y = sigmoid(dot(row, w) + b), one
// output per row.
class logistic_model final : public batch_model {
public:
    // Throws error::type_mismatch if `w` is empty.
    logistic_model(std::vector<float> w, float b);

    std::size_t input_size() const override { return w_.size(); }
    std::size_t output_size() const override { return 1; }

    void predict(std::span<const float> inputs, std::size_t rows,
                 std::span<float> outputs) const override;

private:
    std::vector<float> w_;
    float b_;
};

} // namespace akv::ml
