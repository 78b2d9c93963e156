// The only file that includes libtorch: its headers take seconds to compile, and nothing else
// needs them.
#include <akv/ml/torch_model.hpp>

#include <akv/error.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <torch/script.h>

#include <algorithm>
#include <cstring>

namespace akv::ml {

struct torch_model::module_holder {
    // forward() is not const, but the interpreter may run it from several threads at once.
    mutable torch::jit::Module module;
};

namespace {

// The module's bytes as libtorch reads them: no copy into a stream.
class memory_reader final : public caffe2::serialize::ReadAdapterInterface {
public:
    explicit memory_reader(std::string_view bytes)
        : bytes_(bytes) {}
    size_t size() const override { return bytes_.size(); }
    size_t read(std::uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
        if (pos >= bytes_.size()) return 0;
        n = std::min<std::uint64_t>(n, bytes_.size() - pos);
        std::memcpy(buf, bytes_.data() + pos, n);
        return n;
    }

private:
    std::string_view bytes_;
};

at::ScalarType scalar_type(dtype t) {
    switch (t) {
    case dtype::f32:
        return at::kFloat;
    case dtype::f64:
        return at::kDouble;
    case dtype::i8:
        return at::kChar;
    case dtype::i16:
        return at::kShort;
    case dtype::i32:
        return at::kInt;
    case dtype::i64:
        return at::kLong;
    case dtype::u8:
        return at::kByte;
    }
    return at::kFloat;
}

// A libtorch dtype by our name ("f32"), or libtorch's for one we do not have.
std::string dtype_name(at::ScalarType t) {
    for (auto d :
         {dtype::f32, dtype::f64, dtype::i8, dtype::i16, dtype::i32, dtype::i64, dtype::u8})
        if (scalar_type(d) == t) return std::string(to_string(d));
    return c10::toString(t);
}

// A libtorch message without its C++ backtrace.
std::string message_of(const std::exception& e) {
    if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
    return e.what();
}

std::vector<std::int64_t> batch_shape(std::size_t rows, const tensor_spec& spec) {
    std::vector<std::int64_t> shape{static_cast<std::int64_t>(rows)};
    shape.insert(shape.end(), spec.shape.begin(), spec.shape.end());
    return shape;
}

std::string names_of(const std::vector<tensor_spec>& specs) {
    std::string out;
    for (const auto& s : specs)
        out += (out.empty() ? "" : ", ") + s.name;
    return "(" + out + ")";
}

} // namespace

torch_model::torch_model(std::string_view module, model_spec spec, std::string name)
    : spec_(std::move(spec))
    , name_(std::move(name))
    , module_(std::make_unique<module_holder>()) {
    const std::string prefix = "model " + name_ + ": ";
    if (spec_.kind != "torchscript")
        throw_error(error::invalid_model,
                    prefix + "kind \"" + spec_.kind + "\" is not \"torchscript\"");
    if (spec_.inputs.empty() || spec_.outputs.empty())
        throw_error(error::invalid_model, prefix + "declares no inputs or no outputs");
    try {
        module_->module = torch::jit::load(std::make_shared<memory_reader>(module));
    } catch (const std::exception& e) {
        throw_error(error::invalid_model,
                    prefix + spec_.file + " is not a TorchScript module: " + message_of(e));
    }
    module_->module.eval();

    // forward(self, a, b, ...): the declared inputs, in order, by name.
    const auto method = module_->module.find_method("forward");
    if (!method) throw_error(error::invalid_model, prefix + spec_.file + " has no forward()");
    const auto& arguments = method->function().getSchema().arguments();
    std::vector<tensor_spec> taken;
    for (std::size_t i = 1; i < arguments.size(); ++i)
        taken.push_back(tensor_spec{arguments[i].name(), dtype::f32, {}, {}});
    bool same = taken.size() == spec_.inputs.size();
    for (std::size_t i = 0; same && i < taken.size(); ++i)
        same = taken[i].name == spec_.inputs[i].name;
    if (!same)
        throw_error(error::invalid_model, prefix + "model.json declares the inputs " +
                                              names_of(spec_.inputs) + ", forward() takes " +
                                              names_of(taken));
    for (std::size_t i = 1; i < arguments.size(); ++i)
        if (arguments[i].type()->kind() != c10::TypeKind::TensorType)
            throw_error(error::invalid_model, prefix + "forward()'s argument " +
                                                  arguments[i].name() + " is " +
                                                  arguments[i].type()->str() + ", not a Tensor");

    // Two rows of zeros (two, so that a module ignoring the batch dimension shows): the
    // outputs must be what model.json declares. A module that refuses zeros is not judged
    // here: every batch checks its outputs as well.
    std::vector<std::string> zeros, outputs;
    std::vector<std::string_view> views;
    for (const auto& s : spec_.inputs)
        zeros.emplace_back(2 * s.bytes(), '\0');
    for (const auto& z : zeros)
        views.emplace_back(z);
    try {
        run(views, 2, outputs);
    } catch (const boost::system::system_error& e) {
        if (e.code() != error::model_failed) throw;
    }
}

torch_model::~torch_model() = default;

std::shared_ptr<const torch_model>
torch_model::from_files(const std::map<std::string, std::string>& files, std::string name) {
    const auto spec_file = files.find("model.json");
    if (spec_file == files.end())
        throw_error(error::invalid_model, "model " + name + ": no model.json");
    model_spec spec = model_spec::parse(spec_file->second, "model " + name + ": model.json");
    const auto module = files.find(spec.file);
    if (module == files.end())
        throw_error(error::invalid_model,
                    "model " + name + ": no " + spec.file + " (the module model.json names)");
    return std::make_shared<const torch_model>(module->second, std::move(spec), std::move(name));
}

namespace {

asio::awaitable<std::shared_ptr<const torch_model>>
load_here(std::map<std::string, std::string> files, std::string name) {
    co_return torch_model::from_files(files, std::move(name));
}

} // namespace

asio::awaitable<std::shared_ptr<const torch_model>>
torch_model::load(std::map<std::string, std::string> files, std::string name,
                  asio::any_io_executor pool) {
    co_return co_await asio::co_spawn(pool, load_here(std::move(files), std::move(name)),
                                      asio::use_awaitable);
}

void torch_model::predict(std::span<const float> inputs, std::size_t rows,
                          std::span<float> outputs) const {
    if (spec_.inputs.size() != 1 || spec_.outputs.size() != 1 ||
        spec_.inputs[0].type != dtype::f32 || spec_.outputs[0].type != dtype::f32)
        throw_error(error::type_mismatch, "model " + name_ +
                                              ": predict() needs one f32 input and one f32 "
                                              "output; this model takes run()");
    if (inputs.size() != rows * input_size() || outputs.size() != rows * output_size())
        throw_error(error::type_mismatch,
                    "model " + name_ + ": a batch of " + std::to_string(rows) + " rows needs " +
                        std::to_string(rows * input_size()) + " inputs and " +
                        std::to_string(rows * output_size()) + " outputs, got " +
                        std::to_string(inputs.size()) + " and " + std::to_string(outputs.size()));
    const std::string_view in(reinterpret_cast<const char*>(inputs.data()), inputs.size_bytes());
    std::vector<std::string> out;
    run(std::span<const std::string_view>(&in, 1), rows, out);
    if (!out[0].empty()) std::memcpy(outputs.data(), out[0].data(), out[0].size());
}

void torch_model::run(std::span<const std::string_view> inputs, std::size_t rows,
                      std::vector<std::string>& outputs) const {
    // Built only for an error: a batch that goes through allocates no message.
    const auto prefix = [this] { return "model " + name_ + ": "; };
    if (inputs.size() != spec_.inputs.size())
        throw_error(error::type_mismatch, prefix() + "takes " +
                                              std::to_string(spec_.inputs.size()) +
                                              " inputs, given " + std::to_string(inputs.size()));
    c10::InferenceMode inference;
    std::vector<c10::IValue> args;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const tensor_spec& s = spec_.inputs[i];
        if (inputs[i].size() != rows * s.bytes())
            throw_error(error::type_mismatch,
                        prefix() + "input " + s.name + ": " + std::to_string(rows) + " rows of " +
                            s.describe() + " need " + std::to_string(rows * s.bytes()) +
                            " bytes, got " + std::to_string(inputs[i].size()));
        // A copy: a module may change its arguments in place, and the caller's rows are
        // const (model_batch runs them again when the module refuses some).
        try {
            args.emplace_back(at::from_blob(const_cast<char*>(inputs[i].data()),
                                            batch_shape(rows, s),
                                            at::TensorOptions().dtype(scalar_type(s.type)))
                                  .clone());
        } catch (const std::exception& e) {
            throw_error(error::model_failed, prefix() + "input " + s.name + ": " + message_of(e));
        }
    }
    if (spec_.intra_op_threads > 0 && at::get_num_threads() != spec_.intra_op_threads)
        at::set_num_threads(spec_.intra_op_threads);

    c10::IValue result;
    try {
        result = module_->module.forward(std::move(args));
    } catch (const std::exception& e) {
        throw_error(error::model_failed, prefix() + "forward() failed: " + message_of(e));
    }

    // One tensor, a tuple or list in declared order, or a dict by name.
    std::vector<c10::IValue> returned;
    if (result.isTensor()) {
        returned.push_back(result);
    } else if (result.isTuple()) {
        for (const auto& v : result.toTupleRef().elements())
            returned.push_back(v);
    } else if (result.isList()) {
        for (const auto& v : result.toListRef())
            returned.push_back(v);
    } else if (result.isGenericDict()) {
        const auto dict = result.toGenericDict();
        for (const auto& s : spec_.outputs) {
            const auto found = dict.find(c10::IValue(s.name));
            if (found == dict.end())
                throw_error(error::invalid_model,
                            prefix() + "forward() returned a dict without the output " + s.name);
            returned.push_back(found->value());
        }
    } else {
        throw_error(error::invalid_model, prefix() + "forward() returned " + result.tagKind() +
                                              ", not a tensor or a tuple, list or dict of them");
    }
    if (returned.size() != spec_.outputs.size())
        throw_error(error::invalid_model,
                    prefix() + "forward() returned " + std::to_string(returned.size()) +
                        " outputs, model.json declares " + std::to_string(spec_.outputs.size()) +
                        " " + names_of(spec_.outputs));
    outputs.resize(returned.size());
    for (std::size_t j = 0; j < returned.size(); ++j) {
        const tensor_spec& s = spec_.outputs[j];
        if (!returned[j].isTensor())
            throw_error(error::invalid_model, prefix() + "output " + s.name + " is " +
                                                  returned[j].tagKind() + ", not a tensor");
        at::Tensor t;
        try {
            t = returned[j].toTensor().contiguous();
        } catch (const std::exception& e) {
            throw_error(error::invalid_model, prefix() + "output " + s.name + ": " + message_of(e));
        }
        const std::vector<std::int64_t> expected = batch_shape(rows, s);
        const auto sizes = t.sizes();
        if (t.scalar_type() != scalar_type(s.type) ||
            !std::equal(sizes.begin(), sizes.end(), expected.begin(), expected.end()))
            throw_error(error::invalid_model,
                        prefix() + "output " + s.name + " is " + dtype_name(t.scalar_type()) + " " +
                            format_shape(std::vector<std::int64_t>(sizes.begin(), sizes.end())) +
                            ", model.json declares " + std::string(to_string(s.type)) + " " +
                            format_shape(expected) + " for " + std::to_string(rows) + " rows");
        if (rows * s.bytes() == 0)
            outputs[j].clear();
        else
            outputs[j].assign(static_cast<const char*>(t.data_ptr()), rows * s.bytes());
    }
}

} // namespace akv::ml
