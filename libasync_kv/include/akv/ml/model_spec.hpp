// What a model declares about itself: model.json, beside its files in the model registry.
//
//   {"kind": "torchscript",
//    "file": "model.pt",
//    "inputs":  [{"name": "embedding", "dtype": "f32", "shape": [44]}],
//    "outputs": [{"name": "scores", "dtype": "f32", "shape": [2]}],
//    "intra_op_threads": 1}
//
// A shape is one entry's: the batch puts its rows in front, so a batch of 64 gives the module a
// [64, 44] input. Inputs are the module's forward() arguments, in order and by name; an input's
// optional "field" names the stream entry field it is read from (default: its name). Outputs
// are what forward() returns: one tensor, a tuple or list of them in order, or a dict by name.
// dtype is one of f32, f64, i8, i16, i32, i64, u8 (tensor.hpp). "file" defaults to model.pt,
// "intra_op_threads" to 0 (the runtime's own choice).
//
// The other kinds ("logistic", "mlp") keep their own keys; parse() reads "kind" and, when
// present, "inputs" and "outputs", and requires both for "torchscript".
#pragma once

#include <akv/ml/tensor.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace akv::ml {

// The most one entry's tensor may hold (256 MiB): a shape beyond it is refused by parse().
inline constexpr std::uint64_t max_entry_tensor_bytes = 256ull << 20;

// One named input or output of a model, for one entry.
struct tensor_spec {
    std::string name;
    dtype type = dtype::f32;
    std::vector<std::int64_t> shape;
    std::string field; // inputs: the entry field it comes from; empty: `name`

    std::size_t elements() const; // the product of the dims
    std::size_t bytes() const;    // elements() * dtype_size(type)
    // "embedding f32 [44]"
    std::string describe() const;

    friend bool operator==(const tensor_spec&, const tensor_spec&) = default;
};

struct model_spec {
    std::string kind;
    std::string file; // torchscript: the module's file among the model's files
    std::vector<tensor_spec> inputs;
    std::vector<tensor_spec> outputs;
    int intra_op_threads = 0;

    // Throws system_error(error::invalid_model) naming the key and what is wrong, after
    // `context`: "model.json: inputs[1].shape: a dim must be a whole number > 0, got -3".
    static model_spec parse(std::string_view json_text, std::string_view context = "model.json");
};

// "f32" -> dtype::f32; throws system_error(error::invalid_model) for an unknown name.
dtype dtype_from_string(std::string_view name);

} // namespace akv::ml
