#include <akv/ml/model_handler.hpp>
#include <akv/ml/tensor.hpp>

#include <cstring>
#include <stdexcept>

namespace akv::ml {

namespace {

constexpr std::size_t no_row = static_cast<std::size_t>(-1);

// Appends one entry's input to `stacked`: an AKVT tensor of the declared dtype and shape, or
// (f32 only) the bare floats, which is what the seed's producers write.
void append_input(std::string& stacked, const tensor_spec& spec, std::string_view bytes) {
    const std::size_t at = stacked.size();
    stacked.resize(at + spec.bytes());
    const std::span<std::byte> out(reinterpret_cast<std::byte*>(stacked.data()) + at, spec.bytes());
    if (spec.type != dtype::f32 || bytes.substr(0, 4) == "AKVT") {
        decode_into(bytes, spec.type, spec.shape, out);
    } else if (bytes.size() == spec.bytes()) {
        raw_f32_into(bytes, {reinterpret_cast<float*>(out.data()), spec.elements()});
    } else {
        throw_error(error::type_mismatch,
                    "tensor: no AKVT magic, and as bare f32: " + std::to_string(spec.elements()) +
                        " floats need " + std::to_string(spec.bytes()) + " bytes, got " +
                        std::to_string(bytes.size()));
    }
}

} // namespace

void model_batch::score(const batch_model& model, std::span<const std::string> fields,
                        std::span<const messaging::stream_entry> batch) {
    input_specs_ = model.inputs();
    output_specs_ = model.outputs();
    if (fields.size() != input_specs_.size())
        throw_error(error::type_mismatch,
                    "model_batch: the model has " + std::to_string(input_specs_.size()) +
                        " inputs, given " + std::to_string(fields.size()) + " fields");
    inputs_.resize(input_specs_.size());
    for (auto& stacked : inputs_)
        stacked.clear();
    errors_.assign(batch.size(), {});
    row_of_.assign(batch.size(), no_row);
    entry_of_.clear();
    for (std::size_t i = 0; i < batch.size(); ++i) {
        try {
            for (std::size_t j = 0; j < input_specs_.size(); ++j) {
                const std::string* bytes = batch[i].field(fields[j]);
                if (!bytes) throw std::invalid_argument("no field \"" + fields[j] + "\"");
                try {
                    append_input(inputs_[j], input_specs_[j], *bytes);
                } catch (const boost::system::system_error& e) {
                    throw std::invalid_argument("field \"" + fields[j] + "\": " + e.what());
                }
            }
            row_of_[i] = entry_of_.size();
            entry_of_.push_back(i);
        } catch (const std::invalid_argument& e) {
            // Drop what the entry's readable inputs appended.
            for (std::size_t k = 0; k < input_specs_.size(); ++k)
                inputs_[k].resize(entry_of_.size() * input_specs_[k].bytes());
            errors_[i] = e.what();
        }
    }
    const std::size_t rows = entry_of_.size();
    outputs_.resize(output_specs_.size());
    for (std::size_t j = 0; j < output_specs_.size(); ++j)
        outputs_[j].assign(rows * output_specs_[j].bytes(), '\0');
    runs_ = 0;
    if (rows > 0) run_range(model, 0, rows);
}

void model_batch::run_range(const batch_model& model, std::size_t first, std::size_t count) {
    const std::string failure = run_rows(model, first, count);
    if (failure.empty()) return;
    if (count == 1) {
        errors_[entry_of_[first]] = failure;
        row_of_[entry_of_[first]] = no_row;
        return;
    }
    // Halves until the rows the model refuses are alone: k bad rows cost about 2k log n runs,
    // not one run per row.
    run_range(model, first, count / 2);
    run_range(model, first + count / 2, count - count / 2);
}

std::string model_batch::run_rows(const batch_model& model, std::size_t first, std::size_t count) {
    std::vector<std::string_view> views;
    for (std::size_t j = 0; j < input_specs_.size(); ++j) {
        const std::size_t bytes = input_specs_[j].bytes();
        views.emplace_back(inputs_[j].data() + first * bytes, count * bytes);
    }
    ++runs_;
    try {
        model.run(views, count, scratch_);
    } catch (const boost::system::system_error& e) {
        // Rows the model refuses; anything else (a model whose outputs disagree with what it
        // declares) fails the batch, whose entries stay pending.
        if (e.code() == error::model_failed) return e.what();
        throw;
    }
    if (scratch_.size() != output_specs_.size())
        throw_error(error::invalid_model, "the model gave " + std::to_string(scratch_.size()) +
                                              " outputs, it declares " +
                                              std::to_string(output_specs_.size()));
    for (std::size_t j = 0; j < output_specs_.size(); ++j) {
        const std::size_t bytes = output_specs_[j].bytes();
        if (scratch_[j].size() != count * bytes)
            throw_error(error::invalid_model, "output \"" + output_specs_[j].name +
                                                  "\": " + std::to_string(count) + " rows need " +
                                                  std::to_string(count * bytes) + " bytes, got " +
                                                  std::to_string(scratch_[j].size()));
        if (bytes > 0)
            std::memcpy(outputs_[j].data() + first * bytes, scratch_[j].data(), count * bytes);
    }
    return {};
}

std::string_view model_batch::output(std::size_t entry, std::size_t j) const {
    const std::size_t bytes = output_specs_[j].bytes();
    return {outputs_[j].data() + row_of_[entry] * bytes, bytes};
}

std::string model_batch::encoded_output(std::size_t entry, std::size_t j) const {
    const std::string_view bytes = output(entry, j);
    return encode(output_specs_[j].type, output_specs_[j].shape,
                  {reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()});
}

std::vector<std::string> input_fields(const batch_model& model, const std::string& single_field) {
    const std::vector<tensor_spec> specs = model.inputs();
    if (specs.size() == 1) return {specs[0].field.empty() ? single_field : specs[0].field};
    std::vector<std::string> fields;
    for (const auto& s : specs)
        fields.push_back(s.field.empty() ? s.name : s.field);
    return fields;
}

namespace {

// Kept between batches, so a steady stream of batches does not reallocate its buffers.
struct handler_state {
    std::shared_ptr<const batch_model> model;
    model_handler_options options;
    std::vector<std::string> fields;
    model_batch scored;
};

} // namespace

messaging::batch_handler model_handler(std::shared_ptr<const batch_model> model,
                                       model_handler_options options) {
    auto state = std::make_shared<handler_state>();
    state->fields = input_fields(*model, options.input_field);
    state->model = std::move(model);
    state->options = std::move(options);
    return [state](std::span<const messaging::stream_entry> batch)
               -> asio::awaitable<std::vector<messaging::field_list>> {
        handler_state& s = *state;
        s.scored.score(*s.model, s.fields, batch);
        const auto& specs = s.scored.output_specs();
        std::vector<messaging::field_list> outputs(batch.size());
        for (std::size_t i = 0; i < batch.size(); ++i) {
            for (const auto& name : s.options.copy_fields)
                if (const std::string* v = batch[i].field(name)) outputs[i].emplace_back(name, *v);
            if (!s.scored.error(i).empty()) {
                outputs[i].emplace_back("error", s.scored.error(i));
                continue;
            }
            for (std::size_t j = 0; j < specs.size(); ++j)
                outputs[i].emplace_back(specs.size() == 1 ? s.options.output_field : specs[j].name,
                                        s.scored.encoded_output(i, j));
        }
        co_return outputs;
    };
}

} // namespace akv::ml
