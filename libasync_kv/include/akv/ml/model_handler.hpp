// The batch -> model -> outputs pattern: each entry's input fields become one row of the
// model's inputs, the model runs once on the whole batch, each row of its outputs becomes one
// output entry. model_batch is the middle part, for handlers that shape their output entries
// themselves (akv-batcher); model_handler is a whole batcher handler.
#pragma once

#include <akv/messaging/batcher.hpp>
#include <akv/ml/model.hpp>

#include <memory>

namespace akv::ml {

// One batch as a model's run() takes it, and what came out. Kept between batches, so a steady
// stream of batches does not reallocate its buffers.
class model_batch {
public:
    // Reads each entry's inputs (fields[i] names the entry field of model.inputs()[i]): an AKVT
    // tensor of the declared dtype and shape, or for f32 also the bare little-endian floats.
    // An entry with an input that cannot be read is no row; error(entry) says why, naming the
    // field. Then runs the model once on the rows. When the model refuses them
    // (error::model_failed), the rows are split in halves until the ones it refuses are alone,
    // so an entry the model cannot take costs only that entry: its error is the model's
    // message. Any other exception (a model whose outputs disagree with what it declares)
    // propagates: the batch fails and its entries stay pending.
    void score(const batch_model& model, std::span<const std::string> fields,
               std::span<const messaging::stream_entry> batch);

    // Empty when entry `i` was scored.
    const std::string& error(std::size_t entry) const { return errors_[entry]; }
    // Output j of entry `i` (scored): outputs_spec()[j].bytes() bytes of its dtype.
    std::string_view output(std::size_t entry, std::size_t j) const;
    const std::vector<tensor_spec>& output_specs() const noexcept { return output_specs_; }
    // Output j of entry `i` as an AKVT tensor of the declared shape.
    std::string encoded_output(std::size_t entry, std::size_t j) const;
    // How many times the model ran for the last score() (1 when no row was refused).
    std::size_t runs() const noexcept { return runs_; }

private:
    void run_range(const batch_model& model, std::size_t first, std::size_t count);
    // Runs rows [first, first + count) into outputs_; the model's message when it refuses them.
    std::string run_rows(const batch_model& model, std::size_t first, std::size_t count);

    std::vector<tensor_spec> input_specs_;
    std::vector<tensor_spec> output_specs_;
    std::vector<std::string> inputs_;   // per input, the rows stacked
    std::vector<std::string> outputs_;  // per output, the rows stacked
    std::vector<std::string> scratch_;  // the outputs of one run
    std::vector<std::size_t> row_of_;   // per entry, its row (when it has one)
    std::vector<std::size_t> entry_of_; // per row, its entry
    std::vector<std::string> errors_;   // per entry
    std::size_t runs_ = 0;
};

struct model_handler_options {
    // With one model input: its model.json "field" when it names one, else input_field: an AKVT
    // tensor of the declared dtype and shape ([input_size] f32 for mlp and logistic), or f32 raw
    // little-endian floats. With several: each input's field as model.json names it
    // (tensor_spec::field, default its name).
    std::string input_field = "t";
    // Copied from each input entry to its output entry, when present (e.g. a request id).
    std::vector<std::string> copy_fields{"id"};
    // With one model output, the row's outputs as an AKVT tensor of the declared shape; with
    // several, each under its own name.
    std::string output_field = "scores";
};

// The fields a batch reads the model's inputs from, by the rule of model_handler_options.
std::vector<std::string> input_fields(const batch_model& model, const std::string& single_field);

// An entry whose input cannot be read (or that the model refuses) still gets its output entry,
// with an "error" field naming the problem instead of scores: it is acked (retrying would not
// fix it), and the rest of its batch goes through.
messaging::batch_handler model_handler(std::shared_ptr<const batch_model> model,
                                       model_handler_options options = {});

} // namespace akv::ml
