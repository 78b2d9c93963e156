#include <akv/ml/model_handler.hpp>
#include <akv/ml/tensor.hpp>

namespace akv::ml {

namespace {

// Buffers kept between batches, so a steady stream of batches does not reallocate them.
struct handler_state {
    std::shared_ptr<const batch_model> model;
    model_handler_options options;
    std::vector<float> inputs;
    std::vector<float> outputs;
    std::vector<std::size_t> rows; // entry index of each matrix row
};

void read_row(const handler_state& s, std::string_view bytes, std::span<float> row) {
    const std::int64_t shape[] = {static_cast<std::int64_t>(row.size())};
    if (bytes.substr(0, 4) == "AKVT")
        decode_f32_into(bytes, row, shape);
    else
        raw_f32_into(bytes, row);
    (void)s;
}

messaging::field_list output_for(const handler_state& s, const messaging::stream_entry& e) {
    messaging::field_list out;
    for (const auto& name : s.options.copy_fields)
        if (const std::string* v = e.field(name)) out.emplace_back(name, *v);
    return out;
}

} // namespace

messaging::batch_handler model_handler(std::shared_ptr<const batch_model> model,
                                       model_handler_options options) {
    auto state = std::make_shared<handler_state>();
    state->model = std::move(model);
    state->options = std::move(options);
    return [state](std::span<const messaging::stream_entry> batch)
               -> asio::awaitable<std::vector<messaging::field_list>> {
        handler_state& s = *state;
        const std::size_t in = s.model->input_size();
        const std::size_t out = s.model->output_size();
        s.inputs.resize(batch.size() * in);
        s.rows.clear();
        std::vector<messaging::field_list> outputs(batch.size());
        for (std::size_t i = 0; i < batch.size(); ++i) {
            outputs[i] = output_for(s, batch[i]);
            const std::string* bytes = batch[i].field(s.options.input_field);
            try {
                if (!bytes)
                    throw_error(error::type_mismatch, "no field \"" + s.options.input_field + "\"");
                read_row(s, *bytes, std::span<float>(s.inputs).subspan(s.rows.size() * in, in));
                s.rows.push_back(i);
            } catch (const boost::system::system_error& e) {
                outputs[i].emplace_back("error", e.what());
            }
        }
        s.outputs.resize(s.rows.size() * out);
        if (!s.rows.empty())
            s.model->predict(std::span<const float>(s.inputs).first(s.rows.size() * in),
                             s.rows.size(), s.outputs);
        const std::int64_t shape[] = {static_cast<std::int64_t>(out)};
        for (std::size_t r = 0; r < s.rows.size(); ++r) {
            std::string scores;
            encode_into(scores, std::span<const float>(s.outputs).subspan(r * out, out), shape);
            outputs[s.rows[r]].emplace_back(s.options.output_field, std::move(scores));
        }
        co_return outputs;
    };
}

} // namespace akv::ml
