#include <akv/ml/model_spec.hpp>

#include <akv/error.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <limits>

namespace akv::ml {

namespace {

namespace json = boost::json;

// Thrown inside parse(), which adds its context.
struct bad_key {
    std::string text;
};

[[noreturn]] void bad(const std::string& where, const std::string& what) {
    throw bad_key{where + ": " + what};
}

std::string kind_of(const json::value& v) {
    switch (v.kind()) {
    case json::kind::null:
        return "null";
    case json::kind::bool_:
        return "a boolean";
    case json::kind::string:
        return "a string";
    case json::kind::array:
        return "an array";
    case json::kind::object:
        return "an object";
    default:
        return "a number";
    }
}

std::string string_at(const json::object& o, std::string_view key, const std::string& where) {
    const json::value* v = o.if_contains(key);
    if (!v) bad(where, "missing \"" + std::string(key) + "\"");
    if (!v->is_string() || v->get_string().empty())
        bad(where + "." + std::string(key), "must be a non-empty string, got " + kind_of(*v));
    return std::string(v->get_string());
}

std::vector<std::int64_t> shape_at(const json::object& o, const std::string& where) {
    const json::value* v = o.if_contains("shape");
    if (!v) bad(where, "missing \"shape\"");
    if (!v->is_array()) bad(where + ".shape", "must be an array of dims, got " + kind_of(*v));
    const json::array& dims = v->get_array();
    // The batch adds a dim in front, and a tensor has at most tensor_max_ndim.
    if (dims.size() + 1 > tensor_max_ndim)
        bad(where + ".shape", "at most " + std::to_string(tensor_max_ndim - 1) + " dims, got " +
                                  std::to_string(dims.size()));
    std::vector<std::int64_t> shape;
    for (const json::value& d : dims) {
        if (!d.is_int64() || d.get_int64() <= 0)
            bad(where + ".shape", "a dim must be a whole number > 0, got " + json::serialize(d));
        shape.push_back(d.get_int64());
    }
    return shape;
}

// One entry's tensor is read into memory whole: its size is bounded (and cannot wrap).
void check_size(const tensor_spec& s, const std::string& where) {
    std::uint64_t bytes = dtype_size(s.type);
    for (std::int64_t d : s.shape) {
        if (static_cast<std::uint64_t>(d) > max_entry_tensor_bytes / bytes) {
            bad(where + ".shape", format_shape(s.shape) + " of " + std::string(to_string(s.type)) +
                                      " is over " + std::to_string(max_entry_tensor_bytes) +
                                      " bytes per entry");
        }
        bytes *= static_cast<std::uint64_t>(d);
    }
}

std::vector<tensor_spec> tensors_at(const json::object& doc, std::string_view key) {
    const std::string where(key);
    const json::value* v = doc.if_contains(key);
    if (!v->is_array() || v->get_array().empty())
        bad(where,
            "must be a non-empty array of {\"name\", \"dtype\", \"shape\"}, got " + kind_of(*v));
    std::vector<tensor_spec> specs;
    for (std::size_t i = 0; i < v->get_array().size(); ++i) {
        const std::string at = where + "[" + std::to_string(i) + "]";
        const json::value& item = v->get_array()[i];
        if (!item.is_object()) bad(at, "must be an object, got " + kind_of(item));
        const json::object& o = item.get_object();
        tensor_spec s;
        s.name = string_at(o, "name", at);
        const std::string type = string_at(o, "dtype", at);
        try {
            s.type = dtype_from_string(type);
        } catch (const boost::system::system_error&) {
            bad(at + ".dtype",
                "unknown dtype \"" + type + "\" (f32, f64, i8, i16, i32, i64 or u8)");
        }
        s.shape = shape_at(o, at);
        check_size(s, at);
        if (o.if_contains("field")) s.field = string_at(o, "field", at);
        const bool taken = std::any_of(specs.begin(), specs.end(),
                                       [&](const tensor_spec& t) { return t.name == s.name; });
        if (taken) bad(at + ".name", "\"" + s.name + "\" appears twice");
        specs.push_back(std::move(s));
    }
    return specs;
}

} // namespace

std::size_t tensor_spec::elements() const {
    std::size_t n = 1;
    for (std::int64_t d : shape)
        n *= static_cast<std::size_t>(d);
    return n;
}

std::size_t tensor_spec::bytes() const {
    return elements() * dtype_size(type);
}

std::string tensor_spec::describe() const {
    return name + " " + std::string(to_string(type)) + " " + format_shape(shape);
}

dtype dtype_from_string(std::string_view name) {
    for (auto t :
         {dtype::f32, dtype::f64, dtype::i8, dtype::i16, dtype::i32, dtype::i64, dtype::u8})
        if (to_string(t) == name) return t;
    throw_error(error::invalid_model,
                "unknown dtype \"" + std::string(name) + "\" (f32, f64, i8, i16, i32, i64 or u8)");
}

model_spec model_spec::parse(std::string_view json_text, std::string_view context) {
    const std::string prefix = std::string(context) + ": ";
    boost::system::error_code ec;
    const json::value doc = json::parse(json_text, ec);
    if (ec) throw_error(error::invalid_model, prefix + "not JSON: " + ec.message());
    if (!doc.is_object())
        throw_error(error::invalid_model, prefix + "must be an object, got " + kind_of(doc));
    const json::object& o = doc.get_object();
    model_spec spec;
    try {
        spec.kind = string_at(o, "kind", "the document");
        const bool torchscript = spec.kind == "torchscript";
        for (std::string_view key : {"inputs", "outputs"})
            if (torchscript && !o.if_contains(key))
                bad("the document", "missing \"" + std::string(key) + "\" (kind torchscript)");
        if (o.if_contains("inputs")) spec.inputs = tensors_at(o, "inputs");
        if (o.if_contains("outputs")) spec.outputs = tensors_at(o, "outputs");
        if (torchscript)
            spec.file = o.if_contains("file") ? string_at(o, "file", "the document")
                                              : std::string("model.pt");
        // One of the model's own files: relative, inside its directory.
        if (!spec.file.empty() &&
            (spec.file.front() == '/' || spec.file.find("..") != std::string::npos))
            bad("file", "must name a file of the model's directory, got \"" + spec.file + "\"");
        if (const json::value* t = o.if_contains("intra_op_threads")) {
            if (!t->is_int64() || t->get_int64() < 0 || t->get_int64() > 1024)
                bad("intra_op_threads",
                    "must be a whole number from 0 to 1024, got " + json::serialize(*t));
            spec.intra_op_threads = static_cast<int>(t->get_int64());
        }
    } catch (const bad_key& e) {
        throw_error(error::invalid_model, prefix + e.text);
    }
    return spec;
}

} // namespace akv::ml
