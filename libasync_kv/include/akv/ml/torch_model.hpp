// akv::ml::torch_model: a TorchScript module (PyTorch's torch.jit.script or trace, saved with
// .save("model.pt")) as a batch_model, run on the CPU by libtorch. What RedisAI's AI.MODELRUN
// did inside Redis, here in the batcher's process: one forward() per batch.
//
//   asio::thread_pool loader(1); // loading compiles the module: never on the event loop
//   akv::kv::model m = co_await registry.load("latest");    // model.json + model.pt
//   std::shared_ptr<const akv::ml::torch_model> model = co_await akv::ml::torch_model::load(
//       m.files, registry.version_name(m.version), loader.get_executor());
//   akv::messaging::batcher b(redis, options, akv::ml::model_handler(model));
//
// model.json declares the inputs and outputs (model_spec.hpp). Each input is the entries'
// tensors stacked: a batch of 64 rows of f32 [44] is one f32 [64, 44] argument. forward()
// returns one tensor, a tuple or list of them (in declared order) or a dict (by name), each
// with the batch's rows in front. The declaration is checked against the module when it loads
// (argument count and names; the outputs of a forward on one row of zeros) and against every
// batch (dtype and shape of each output).
//
// Built when CMake finds libtorch (Debian's libtorch-dev): target akv::ml_torch.
#pragma once

#include <akv/ml/model.hpp>
#include <akv/ml/model_spec.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace akv::ml {

class torch_model final : public batch_model {
public:
    // Reads `module` (a TorchScript file's bytes) for the model `spec` declares; `name` names
    // the model in every error ("interest:v3"). Blocking: compiling a big module takes
    // seconds. Throws system_error(error::invalid_model) naming the model and what is wrong:
    // not TorchScript, forward() arguments that disagree with the declared inputs, outputs
    // that disagree with the declared ones.
    torch_model(std::string_view module, model_spec spec, std::string name);
    ~torch_model() override;
    torch_model(const torch_model&) = delete;
    torch_model& operator=(const torch_model&) = delete;

    // A model's files as the registry keeps them: model.json (kind "torchscript") and the
    // module it names. Throws as the constructor, and invalid_model for a missing file.
    static std::shared_ptr<const torch_model>
    from_files(const std::map<std::string, std::string>& files, std::string name);
    // from_files on `pool` (a thread pool's executor), so the caller's event loop goes on
    // serving Redis meanwhile; resumes on the caller's executor. A load cannot be interrupted:
    // cancelling the caller only drops its result.
    static asio::awaitable<std::shared_ptr<const torch_model>>
    load(std::map<std::string, std::string> files, std::string name, asio::any_io_executor pool);

    const std::string& name() const noexcept { return name_; }
    const model_spec& spec() const noexcept { return spec_; }

    // The first input's and output's elements per row. predict() serves models with one f32
    // input and one f32 output (error::type_mismatch otherwise); run() serves every model.
    std::size_t input_size() const override { return spec_.inputs.front().elements(); }
    std::size_t output_size() const override { return spec_.outputs.front().elements(); }
    void predict(std::span<const float> inputs, std::size_t rows,
                 std::span<float> outputs) const override;

    std::vector<tensor_spec> inputs() const override { return spec_.inputs; }
    std::vector<tensor_spec> outputs() const override { return spec_.outputs; }
    // Safe from several threads at once. libtorch's intra-op thread pool belongs to the
    // process: with spec().intra_op_threads > 0 each run sets it (at::set_num_threads) when
    // it differs. Throws error::model_failed when forward() throws (its message kept) and
    // error::invalid_model for outputs that disagree with the declaration.
    void run(std::span<const std::string_view> inputs, std::size_t rows,
             std::vector<std::string>& outputs) const override;

private:
    struct module_holder;

    model_spec spec_;
    std::string name_;
    std::unique_ptr<module_holder> module_;
};

} // namespace akv::ml
