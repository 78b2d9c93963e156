// akv::ml::tensor: an n-dimensional array as one plain binary Redis value.
//
// What RedisAI's TENSORSET/TENSORGET keep inside a module, stored here as an ordinary string
// (a hash field, a stream entry field, a key) that any client can read without a module.
//
// Serialized form, version 1 (all integers little-endian):
//
//   offset  size       field
//   0       4          magic "AKVT"
//   4       1          version, 1
//   5       1          dtype: 1 f32, 2 f64, 3 i8, 4 i16, 5 i32, 6 i64, 7 u8
//   6       1          ndim, 0..8 (0: a scalar)
//   7       1          reserved, 0
//   8       8 x ndim   dims, int64 each, >= 0
//   8+8*ndim ...       the elements, row-major (C order), little-endian, no padding
//
// Reading it with NumPy:
//
//   ndim = b[6]; dims = np.frombuffer(b, "<i8", ndim, 8)
//   dt = {1: "<f4", 2: "<f8", 3: "i1", 4: "<i2", 5: "<i4", 6: "<i8", 7: "u1"}[b[5]]
//   x = np.frombuffer(b, dt, offset=8 + 8 * ndim).reshape(dims)
//
// Every decoding failure throws boost::system::system_error with error::type_mismatch and a
// message naming the problem ("tensor: shape [4,44] of f32 needs 704 data bytes, got 700").
#pragma once

#include <akv/error.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace akv::ml {

// The data are copied to and from memory as they are: the wire format is little-endian, so a
// big-endian host would need a byte swap per element, which nobody has asked for yet.
static_assert(std::endian::native == std::endian::little,
              "akv::ml::tensor assumes a little-endian host");

enum class dtype : std::uint8_t { f32 = 1, f64, i8, i16, i32, i64, u8 };

std::size_t dtype_size(dtype t) noexcept;     // bytes per element; 0 for a value outside the enum
std::string_view to_string(dtype t) noexcept; // "f32", "f64", ...; "unknown" outside the enum

inline constexpr std::size_t tensor_header_size = 8;
inline constexpr std::size_t tensor_max_ndim = 8;

template <class T> struct dtype_of;
template <> struct dtype_of<float> : std::integral_constant<dtype, dtype::f32> {};
template <> struct dtype_of<double> : std::integral_constant<dtype, dtype::f64> {};
template <> struct dtype_of<std::int8_t> : std::integral_constant<dtype, dtype::i8> {};
template <> struct dtype_of<std::int16_t> : std::integral_constant<dtype, dtype::i16> {};
template <> struct dtype_of<std::int32_t> : std::integral_constant<dtype, dtype::i32> {};
template <> struct dtype_of<std::int64_t> : std::integral_constant<dtype, dtype::i64> {};
template <> struct dtype_of<std::uint8_t> : std::integral_constant<dtype, dtype::u8> {};

template <class T>
concept tensor_element = requires {
    dtype_of<T>::value;
};

template <tensor_element T> inline constexpr dtype dtype_of_v = dtype_of<T>::value;

// "[2,3]", "[]" for a scalar: how messages print a shape.
std::string format_shape(std::span<const std::int64_t> shape);

namespace detail {
[[noreturn]] void throw_values_mismatch(dtype held, dtype asked);
}

// An owning tensor, as decode() returns it.
struct tensor {
    dtype type = dtype::f32;
    std::vector<std::int64_t> shape;
    std::string data; // raw little-endian elements, row-major

    // The product of the dims; 1 for a scalar (shape {}).
    std::size_t elements() const;

    // The elements as T; throws error::type_mismatch when T is not the tensor's dtype.
    template <tensor_element T> std::span<const T> values() const {
        if (type != dtype_of_v<T>) detail::throw_values_mismatch(type, dtype_of_v<T>);
        // A std::string's buffer comes from operator new (or is the in-object buffer, aligned
        // as the string itself), so it is aligned for every element type above.
        return {reinterpret_cast<const T*>(data.data()), data.size() / sizeof(T)};
    }

    friend bool operator==(const tensor&, const tensor&) = default;
};

// Appends the serialized tensor to `out` (no allocation when `out` has the capacity). Throws
// error::type_mismatch if data.size() != product(shape) * dtype_size(t), if a dim is negative,
// if ndim > 8 or if the size overflows: "tensor: shape [2,3] of f32 needs 24 bytes, got 20".
void encode_into(std::string& out, dtype t, std::span<const std::int64_t> shape,
                 std::span<const std::byte> data);

std::string encode(dtype t, std::span<const std::int64_t> shape, std::span<const std::byte> data);

// From typed values: encode<float>(values, shape).
template <tensor_element T>
void encode_into(std::string& out, std::span<const T> values, std::span<const std::int64_t> shape) {
    encode_into(out, dtype_of_v<T>, shape, std::as_bytes(values));
}

template <tensor_element T>
std::string encode(std::span<const T> values, std::span<const std::int64_t> shape) {
    return encode(dtype_of_v<T>, shape, std::as_bytes(values));
}

// Parses and copies. Throws error::type_mismatch naming the problem: bad magic, truncated
// header, unknown version or dtype, ndim > 8, a negative dim, a size that overflows, or data
// that is not exactly product(shape) * dtype_size bytes.
tensor decode(std::string_view bytes);

// The batcher's hot path: checks that `bytes` is an f32 tensor of exactly `expected_shape`
// (dim by dim) and copies its elements into `out`, which must hold product(expected_shape)
// floats. No allocation. Throws error::type_mismatch on any difference, naming both sides.
void decode_f32_into(std::string_view bytes, std::span<float> out,
                     std::span<const std::int64_t> expected_shape);

// The same for any dtype: checks that `bytes` is a tensor of dtype `type` and exactly
// `expected_shape`, and copies its data into `out` (product(expected_shape) * dtype_size bytes).
void decode_into(std::string_view bytes, dtype type, std::span<const std::int64_t> expected_shape,
                 std::span<std::byte> out);

// A bare array of little-endian float32 (what numpy's `x.astype("<f4").tobytes()` gives, and
// what the seed's producers put in a stream field): checks raw.size() == out.size() * 4 and
// copies. Throws error::type_mismatch otherwise.
void raw_f32_into(std::string_view raw, std::span<float> out);

} // namespace akv::ml
