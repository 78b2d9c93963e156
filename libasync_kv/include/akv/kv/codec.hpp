// akv::kv codecs: how a C++ value becomes the bytes of one Redis value (a string, a hash field, a
// list element) and back.
//
// codec<T> has two static functions:
//
//   static void encode(const T& value, std::string& out);   // appends the bytes to `out`
//   static void decode(std::string_view bytes, T& value);   // throws type_mismatch_error
//
// The layouts are the natural ones, so redis-cli and other clients read and write them too:
//
//   bool                        "1" or "0"
//   integers (not char types)   decimal text, "-42": INCRBY / HINCRBY work on it
//   float, double               shortest decimal text that reads back exactly, "0.1", "1e+300":
//                               INCRBYFLOAT / HINCRBYFLOAT work on it; "inf" and "nan" as such
//   std::string, kv::bytes      the bytes as they are
//   std::vector<E>              an akv tensor of one dimension, E one of float, double, int8_t,
//   std::span<const E>          int16_t, int32_t, int64_t, uint8_t (a span encodes only)
//   ml::tensor                  an akv tensor of any dtype and shape
//   described structs           JSON (BOOST_DESCRIBE_STRUCT: one line describes the members)
//
// The akv tensor (akv/ml/tensor.hpp, shared with the ML runtime) is an 8-byte header then the dims
// then the raw elements, all little-endian:
//
//   offset     size       field
//   0          4          magic "AKVT"
//   4          1          version, 1
//   5          1          dtype: 1 f32, 2 f64, 3 i8, 4 i16, 5 i32, 6 i64, 7 u8
//   6          1          ndim (1 for a std::vector)
//   7          1          reserved, 0
//   8          8 x ndim   dims, int64 each
//   8+8*ndim   ...        the elements, row-major (C order), no padding
//
// so NumPy reads one with
//
//   ndim = b[6]; dims = np.frombuffer(b, "<i8", ndim, 8)
//   dt = {1: "<f4", 2: "<f8", 3: "i1", 4: "<i2", 5: "<i4", 6: "<i8", 7: "u1"}[b[5]]
//   x = np.frombuffer(b, dt, offset=8 + 8 * ndim).reshape(dims)
//
// A struct is described once, beside its definition, and is then stored as a JSON object whose
// members are the described ones (extra members in the JSON are ignored, so a newer writer can
// add one; a missing member is an error):
//
//   struct job_state { std::string graph; int step; std::vector<double> loss; };
//   BOOST_DESCRIBE_STRUCT(job_state, (), (graph, step, loss))     // {"graph":"g1","step":3,...}
//
// A NaN or Infinity member is refused as it is encoded (error::type_mismatch, naming it, as
// "value.loss[1] is NaN"): JSON has no such number, and no parser would read it back.
//
// Decoding checks what it reads: a value written as one type and read as another throws
// type_mismatch_error (code error::type_mismatch) saying what was expected and what was found,
// and the containers add the key: `kv: "params"["weights"]: expected a tensor of f32, got "42"`.
// Any other type takes part by specializing codec<T> (see the `codable` concept).
#pragma once

#include <akv/error.hpp>
#include <akv/json_text.hpp>
#include <akv/ml/tensor.hpp>
#include <akv/resp/writer.hpp>

#include <boost/describe/members.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <boost/mp11/algorithm.hpp>

#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace akv::kv {

// Raw bytes that are not text, stored as they are (a std::vector<std::uint8_t> is a u8 tensor).
using bytes = std::vector<std::byte>;

// A value that does not decode as the type asked for. what() reads
// `kv: "key"["field"]: expected an integer, got "abc"` (the part before the detail is empty
// when the codec is called directly).
class type_mismatch_error : public boost::system::system_error {
public:
    type_mismatch_error(std::string where, std::string detail);

    const std::string& where() const noexcept { return where_; }   // `"key"["field"]`, or empty
    const std::string& detail() const noexcept { return detail_; } // what was expected and found

private:
    std::string where_;
    std::string detail_;
};

// For codecs: throws type_mismatch_error("expected <expected>, got <describe(found)>").
[[noreturn]] void throw_mismatch(std::string_view expected, std::string_view found);

// How a message shows a value's bytes: a tensor as `a tensor of f64 [3]`, anything else as a
// quoted, escaped and (past 40 bytes) shortened string: `"abc"`, `"\x00\x01..." (300 bytes)`.
std::string describe(std::string_view bytes);

template <class T> struct codec; // specialized below; undefined for unsupported types

template <class T>
concept encodable = requires(const T& value, std::string& out) {
    codec<T>::encode(value, out);
};

template <class T>
concept codable = encodable<T> && std::default_initializable<T> &&
    requires(std::string_view in, T& value) {
    codec<T>::decode(in, value);
};

// Shorthands: encode(v) returns the bytes; decode<T>(bytes) returns the value.
template <encodable T> std::string encode(const T& value) {
    std::string out;
    codec<T>::encode(value, out);
    return out;
}

template <codable T> T decode(std::string_view bytes) {
    T value{};
    codec<T>::decode(bytes, value);
    return value;
}

// ---- scalars

template <> struct codec<bool> {
    static void encode(bool value, std::string& out) { out += value ? '1' : '0'; }
    static void decode(std::string_view in, bool& value);
};

// Integers; the character types are excluded (a char is a byte of a string, not a number).
template <class T>
concept integer = std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char> &&
                  !std::same_as<T, wchar_t> && !std::same_as<T, char8_t> &&
                  !std::same_as<T, char16_t> && !std::same_as<T, char32_t>;

namespace detail {
[[noreturn]] void throw_integer_mismatch(std::string_view in, long long min,
                                         unsigned long long max);
[[noreturn]] void throw_number_mismatch(std::string_view in);
} // namespace detail

template <integer T> struct codec<T> {
    static void encode(T value, std::string& out) {
        char buf[24];
        const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
        out.append(buf, end);
    }
    static void decode(std::string_view in, T& value) {
        const auto [end, ec] = std::from_chars(in.data(), in.data() + in.size(), value);
        if (ec != std::errc{} || end != in.data() + in.size() || in.empty()) {
            detail::throw_integer_mismatch(
                in, static_cast<long long>(std::numeric_limits<T>::min()),
                static_cast<unsigned long long>(std::numeric_limits<T>::max()));
        }
    }
};

template <std::floating_point T> struct codec<T> {
    static void encode(T value, std::string& out) {
        char buf[32];
        const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
        out.append(buf, end);
    }
    // Reads what Redis writes too ("10.5", "3", "1.5e+20", "inf").
    static void decode(std::string_view in, T& value) {
        const auto [end, ec] = std::from_chars(in.data(), in.data() + in.size(), value);
        if (ec != std::errc{} || end != in.data() + in.size() || in.empty())
            detail::throw_number_mismatch(in);
    }
};

template <> struct codec<std::string> {
    static void encode(const std::string& value, std::string& out) { out += value; }
    static void decode(std::string_view in, std::string& value) { value.assign(in); }
};

template <> struct codec<bytes> {
    static void encode(const bytes& value, std::string& out) {
        out.append(reinterpret_cast<const char*>(value.data()), value.size());
    }
    static void decode(std::string_view in, bytes& value) {
        const auto* p = reinterpret_cast<const std::byte*>(in.data());
        value.assign(p, p + in.size());
    }
};

// ---- tensors

namespace detail {
// Checks that `in` is a one-dimensional tensor of `type` and returns its element bytes.
std::string_view vector_elements(std::string_view in, ml::dtype type);
} // namespace detail

template <ml::tensor_element E> struct codec<std::span<const E>> {
    static void encode(std::span<const E> values, std::string& out) {
        const std::int64_t dims[1] = {static_cast<std::int64_t>(values.size())};
        ml::encode_into(out, values, std::span<const std::int64_t>(dims));
    }
};

template <ml::tensor_element E> struct codec<std::vector<E>> {
    static void encode(const std::vector<E>& values, std::string& out) {
        codec<std::span<const E>>::encode(values, out);
    }
    static void decode(std::string_view in, std::vector<E>& values) {
        const std::string_view data = detail::vector_elements(in, ml::dtype_of_v<E>);
        values.resize(data.size() / sizeof(E));
        if (!data.empty()) std::memcpy(values.data(), data.data(), data.size());
    }
};

template <> struct codec<ml::tensor> {
    static void encode(const ml::tensor& t, std::string& out) {
        ml::encode_into(out, t.type, t.shape, std::as_bytes(std::span(t.data)));
    }
    static void decode(std::string_view in, ml::tensor& t);
};

// ---- described structs, as JSON

template <class T>
concept described_struct = std::is_class_v<T> && boost::describe::has_describe_members<T>::value;

namespace detail {
// Parses `in` as a JSON object; throws type_mismatch_error otherwise.
boost::json::value parse_json_object(std::string_view in);
[[noreturn]] void throw_missing_member(std::string_view member, std::string_view in);
[[noreturn]] void throw_bad_member(std::string_view member, const boost::system::error_code& ec,
                                   const boost::json::value& found);
} // namespace detail

template <described_struct T> struct codec<T> {
    static void encode(const T& value, std::string& out) {
        out += json_text(boost::json::value_from(value)); // refuses NaN / Infinity members
    }
    static void decode(std::string_view in, T& value) {
        const boost::json::value json = detail::parse_json_object(in);
        const boost::json::object& object = json.get_object();
        using members = boost::describe::describe_members<T, boost::describe::mod_public>;
        boost::mp11::mp_for_each<members>([&](auto member) {
            const auto found = object.find(member.name);
            if (found == object.end()) detail::throw_missing_member(member.name, in);
            using M = std::remove_cvref_t<decltype(value.*member.pointer)>;
            auto converted = boost::json::try_value_to<M>(found->value());
            if (!converted)
                detail::throw_bad_member(member.name, converted.error(), found->value());
            value.*member.pointer = std::move(*converted);
        });
    }
};

// ---- request arguments

namespace detail {

// A value to be encoded straight into a request's payload (request::push finds to_bulk by ADL).
template <class T> struct encoded { const T& value; };

template <class T> void to_bulk(std::string& out, const encoded<T>& e) {
    std::string bytes;
    codec<T>::encode(e.value, bytes);
    resp::write_bulk(out, bytes);
}

// What request::push gets for a value: the value itself where request writes exactly what
// codec<T> would (strings, bool as 1/0, numbers by std::to_chars), an encoding wrapper otherwise.
template <encodable T> auto arg(const T& value) {
    if constexpr (std::is_same_v<T, std::string>)
        return std::string_view(value);
    else if constexpr (std::is_arithmetic_v<T>)
        return value;
    else
        return encoded<T>{value};
}

} // namespace detail

} // namespace akv::kv
