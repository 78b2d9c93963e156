// The batch -> model -> outputs pattern as a ready batcher handler: each entry's tensor field
// becomes one row of a matrix, the model runs once on the whole matrix, each row of its output
// becomes one output entry.
#pragma once

#include <akv/messaging/batcher.hpp>
#include <akv/ml/model.hpp>

#include <memory>

namespace akv::ml {

struct model_handler_options {
    // An AKVT f32 tensor of shape [input_size], or input_size raw little-endian float32s.
    std::string input_field = "t";
    // Copied from each input entry to its output entry, when present (e.g. a request id).
    std::vector<std::string> copy_fields{"id"};
    // The model's row of outputs, as an AKVT f32 tensor of shape [output_size].
    std::string output_field = "scores";
};

// An entry whose input cannot be read still gets its output entry, with an "error" field
// naming the problem instead of scores: it is acked (retrying would not fix it), and the rest
// of its batch goes through.
messaging::batch_handler model_handler(std::shared_ptr<const batch_model> model,
                                       model_handler_options options = {});

} // namespace akv::ml
