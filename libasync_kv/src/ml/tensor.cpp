#include <akv/detail/printable.hpp>
#include <akv/ml/tensor.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>

namespace akv::ml {

namespace {

constexpr std::string_view magic = "AKVT";
constexpr std::uint8_t format_version = 1;

[[noreturn]] void fail(const std::string& detail) {
    throw_error(error::type_mismatch, "tensor: " + detail);
}

bool known_dtype(std::uint8_t code) {
    return code >= static_cast<std::uint8_t>(dtype::f32) &&
           code <= static_cast<std::uint8_t>(dtype::u8);
}

// The element count, or nullopt when it does not fit in size_t. A zero dim makes the product
// zero whatever the others are.
std::optional<std::size_t> checked_elements(std::span<const std::int64_t> shape) {
    std::size_t n = 1;
    bool overflow = false;
    for (std::int64_t d : shape) {
        const auto dim = static_cast<std::uint64_t>(d);
        if (dim == 0) return 0;
        if (dim > std::numeric_limits<std::size_t>::max() / n)
            overflow = true;
        else
            n *= dim;
    }
    if (overflow) return std::nullopt;
    return n;
}

// Bytes of data a shape of `type` needs; throws on a negative dim, too many dims or overflow.
std::size_t data_bytes(dtype type, std::span<const std::int64_t> shape) {
    if (shape.size() > tensor_max_ndim) {
        fail("ndim " + std::to_string(shape.size()) + " exceeds the maximum of " +
             std::to_string(tensor_max_ndim));
    }
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] < 0) {
            fail("dim " + std::to_string(i) + " of shape " + format_shape(shape) + " is negative");
        }
    }
    const std::size_t size = dtype_size(type);
    auto n = checked_elements(shape);
    if (!n || *n > std::numeric_limits<std::size_t>::max() / size) {
        fail("shape " + format_shape(shape) + " of " + std::string(to_string(type)) +
             " overflows the size of a tensor");
    }
    return *n * size;
}

std::int64_t load_i64(const char* p) {
    std::int64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// A parsed header; `data` points into the decoded bytes.
struct header {
    dtype type;
    std::size_t ndim;
    std::array<std::int64_t, tensor_max_ndim> dims;
    std::string_view data;

    std::span<const std::int64_t> shape() const { return {dims.data(), ndim}; }
};

header parse(std::string_view bytes) {
    if (bytes.size() < tensor_header_size) {
        fail(std::to_string(bytes.size()) + " bytes is shorter than the " +
             std::to_string(tensor_header_size) + "-byte header");
    }
    if (bytes.substr(0, 4) != magic) {
        fail("bad magic \"" + akv::detail::printable(bytes.substr(0, 4), 4) +
             "\" (expected \"AKVT\")");
    }
    const auto version = static_cast<std::uint8_t>(bytes[4]);
    if (version != format_version) {
        fail("unknown version " + std::to_string(version) + " (this build reads version " +
             std::to_string(format_version) + ")");
    }
    const auto code = static_cast<std::uint8_t>(bytes[5]);
    if (!known_dtype(code)) fail("unknown dtype " + std::to_string(code) + " at byte 5");
    header h;
    h.type = static_cast<dtype>(code);
    h.ndim = static_cast<std::uint8_t>(bytes[6]);
    if (h.ndim > tensor_max_ndim) {
        fail("ndim " + std::to_string(h.ndim) + " exceeds the maximum of " +
             std::to_string(tensor_max_ndim));
    }
    if (bytes[7] != 0) {
        fail("reserved byte 7 is " + std::to_string(static_cast<std::uint8_t>(bytes[7])) +
             ", expected 0");
    }
    const std::size_t dims_end = tensor_header_size + 8 * h.ndim;
    if (bytes.size() < dims_end) {
        fail("truncated: " + std::to_string(h.ndim) + " dims need " + std::to_string(dims_end) +
             " header bytes, got " + std::to_string(bytes.size()));
    }
    for (std::size_t i = 0; i < h.ndim; ++i) {
        h.dims[i] = load_i64(bytes.data() + tensor_header_size + 8 * i);
    }
    h.data = bytes.substr(dims_end);
    const std::size_t needed = data_bytes(h.type, h.shape());
    if (h.data.size() != needed) {
        fail("shape " + format_shape(h.shape()) + " of " + std::string(to_string(h.type)) +
             " needs " + std::to_string(needed) + " data bytes, got " +
             std::to_string(h.data.size()));
    }
    return h;
}

} // namespace

std::size_t dtype_size(dtype t) noexcept {
    switch (t) {
    case dtype::f32:
        return 4;
    case dtype::f64:
        return 8;
    case dtype::i8:
        return 1;
    case dtype::i16:
        return 2;
    case dtype::i32:
        return 4;
    case dtype::i64:
        return 8;
    case dtype::u8:
        return 1;
    }
    return 0;
}

std::string_view to_string(dtype t) noexcept {
    switch (t) {
    case dtype::f32:
        return "f32";
    case dtype::f64:
        return "f64";
    case dtype::i8:
        return "i8";
    case dtype::i16:
        return "i16";
    case dtype::i32:
        return "i32";
    case dtype::i64:
        return "i64";
    case dtype::u8:
        return "u8";
    }
    return "unknown";
}

std::string format_shape(std::span<const std::int64_t> shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i > 0) out += ',';
        out += std::to_string(shape[i]);
    }
    out += ']';
    return out;
}

namespace detail {
void throw_values_mismatch(dtype held, dtype asked) {
    fail("values<" + std::string(to_string(asked)) + ">() of a " + std::string(to_string(held)) +
         " tensor");
}
} // namespace detail

std::size_t tensor::elements() const {
    std::size_t n = 1;
    for (std::int64_t d : shape)
        n *= static_cast<std::size_t>(d);
    return n;
}

void encode_into(std::string& out, dtype t, std::span<const std::int64_t> shape,
                 std::span<const std::byte> data) {
    if (dtype_size(t) == 0) fail("unknown dtype " + std::to_string(static_cast<unsigned>(t)));
    const std::size_t needed = data_bytes(t, shape);
    if (data.size() != needed) {
        fail("shape " + format_shape(shape) + " of " + std::string(to_string(t)) + " needs " +
             std::to_string(needed) + " bytes, got " + std::to_string(data.size()));
    }
    const std::size_t start = out.size();
    out.resize(start + tensor_header_size + 8 * shape.size() + data.size());
    char* p = out.data() + start;
    std::memcpy(p, magic.data(), magic.size());
    p[4] = static_cast<char>(format_version);
    p[5] = static_cast<char>(t);
    p[6] = static_cast<char>(shape.size());
    p[7] = 0;
    p += tensor_header_size;
    if (!shape.empty()) std::memcpy(p, shape.data(), shape.size_bytes());
    p += shape.size_bytes();
    if (!data.empty()) std::memcpy(p, data.data(), data.size());
}

std::string encode(dtype t, std::span<const std::int64_t> shape, std::span<const std::byte> data) {
    std::string out;
    encode_into(out, t, shape, data);
    return out;
}

tensor decode(std::string_view bytes) {
    const header h = parse(bytes);
    tensor t;
    t.type = h.type;
    t.shape.assign(h.dims.begin(), h.dims.begin() + static_cast<std::ptrdiff_t>(h.ndim));
    t.data.assign(h.data);
    return t;
}

void decode_into(std::string_view bytes, dtype type, std::span<const std::int64_t> expected_shape,
                 std::span<std::byte> out) {
    const header h = parse(bytes);
    const std::span<const std::int64_t> shape = h.shape();
    if (h.type != type ||
        !std::equal(shape.begin(), shape.end(), expected_shape.begin(), expected_shape.end())) {
        fail("expected " + std::string(to_string(type)) + " " + format_shape(expected_shape) +
             ", got " + std::string(to_string(h.type)) + " " + format_shape(shape));
    }
    if (h.data.size() != out.size()) {
        const std::size_t size = dtype_size(type);
        const std::string unit =
            type == dtype::f32 ? " floats" : " " + std::string(to_string(type)) + " elements";
        fail("shape " + format_shape(shape) + " of " + std::string(to_string(type)) + " holds " +
             std::to_string(h.data.size() / size) + unit + ", the output " +
             std::to_string(out.size() / size));
    }
    if (!out.empty()) std::memcpy(out.data(), h.data.data(), h.data.size());
}

void decode_f32_into(std::string_view bytes, std::span<float> out,
                     std::span<const std::int64_t> expected_shape) {
    decode_into(bytes, dtype::f32, expected_shape, std::as_writable_bytes(out));
}

void raw_f32_into(std::string_view raw, std::span<float> out) {
    if (raw.size() != out.size_bytes()) {
        throw_error(error::type_mismatch, "raw f32: " + std::to_string(out.size()) +
                                              " floats need " + std::to_string(out.size_bytes()) +
                                              " bytes, got " + std::to_string(raw.size()));
    }
    if (!out.empty()) std::memcpy(out.data(), raw.data(), raw.size());
}

} // namespace akv::ml
