// akv::ml tensor codec: the documented byte layout, round trips and every decode error.
#include <akv/ml/tensor.hpp>

#include <gtest/gtest.h>

#include "support/errors.hpp"
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

using akv::test::contains;
using akv::test::error_of;

using namespace akv::ml;
using shape_t = std::vector<std::int64_t>;

namespace {

// A hand-made serialized tensor: header bytes, then `dims` as int64 LE, then `data_size` bytes.
std::string craft(std::uint8_t version, std::uint8_t type, std::uint8_t ndim, const shape_t& dims,
                  std::size_t data_size) {
    std::string out = "AKVT";
    out += static_cast<char>(version);
    out += static_cast<char>(type);
    out += static_cast<char>(ndim);
    out += '\0';
    for (std::int64_t d : dims)
        out.append(reinterpret_cast<const char*>(&d), sizeof d);
    out.append(data_size, '\x01');
    return out;
}

std::string f32_tensor(const shape_t& shape, std::size_t data_size) {
    return craft(1, 1, static_cast<std::uint8_t>(shape.size()), shape, data_size);
}

void expect_decode_error(const std::string& bytes, std::string_view message) {
    auto e = error_of([&] { decode(bytes); });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), message));
}

} // namespace

// ---- round trips

template <class T> class TensorRoundTrip : public testing::Test {};
using element_types = testing::Types<float, double, std::int8_t, std::int16_t, std::int32_t,
                                     std::int64_t, std::uint8_t>;
TYPED_TEST_SUITE(TensorRoundTrip, element_types);

TYPED_TEST(TensorRoundTrip, KeepsDtypeShapeAndValues) {
    using T = TypeParam;
    for (const shape_t& shape : {shape_t{}, shape_t{3}, shape_t{2, 3}, shape_t{1, 1, 4}}) {
        std::size_t n = 1;
        for (auto d : shape)
            n *= static_cast<std::size_t>(d);
        std::vector<T> values;
        for (std::size_t i = 0; i < n; ++i) {
            values.push_back(static_cast<T>(std::is_signed_v<T> ? 3 * static_cast<int>(i) - 5
                                                                : 7 * static_cast<int>(i) + 1));
        }
        const std::string bytes = encode<T>(values, shape);
        EXPECT_EQ(bytes.size(), 8 + 8 * shape.size() + n * sizeof(T));
        const tensor t = decode(bytes);
        EXPECT_EQ(t.type, dtype_of_v<T>);
        EXPECT_EQ(t.shape, shape);
        EXPECT_EQ(t.elements(), n);
        const auto got = t.values<T>();
        EXPECT_EQ(std::vector<T>(got.begin(), got.end()), values) << format_shape(shape);
    }
}

TEST(Tensor, EncodesAFloatSpan) {
    const std::vector<float> values{0.5f, -1.25f, 3e9f, std::numeric_limits<float>::denorm_min()};
    const shape_t shape{2, 2};
    const tensor t = decode(encode<float>(values, shape));
    const auto got = t.values<float>();
    EXPECT_EQ(std::vector<float>(got.begin(), got.end()), values);
}

TEST(Tensor, EncodesRawBytesWithAnExplicitDtype) {
    const std::array<std::uint8_t, 2> raw{200, 7};
    const shape_t shape{2};
    const tensor t = decode(encode(dtype::u8, shape, std::as_bytes(std::span(raw))));
    EXPECT_EQ(t.type, dtype::u8);
    EXPECT_EQ(t.data, "\xc8\x07");
}

TEST(Tensor, ZeroDimMakesAnEmptyTensorWhateverTheOtherDims) {
    const shape_t shape{0, std::int64_t{1} << 62};
    const tensor t = decode(encode<float>({}, shape));
    EXPECT_EQ(t.elements(), 0u);
    EXPECT_EQ(t.shape, shape);
}

// ---- the byte layout, as documented in tensor.hpp

TEST(Tensor, ByteLayoutIsTheDocumentedOne) {
    const std::array<std::int16_t, 3> values{1, -2, 0x0304};
    const shape_t shape{3};
    const std::string bytes = encode<std::int16_t>(values, shape);
    // clang-format off
    const unsigned char expected[] = {
        'A', 'K', 'V', 'T',     // magic
        1,                      // version
        4,                      // dtype i16
        1,                      // ndim
        0,                      // reserved
        3, 0, 0, 0, 0, 0, 0, 0, // dim 0, int64 LE
        0x01, 0x00,             // 1
        0xfe, 0xff,             // -2
        0x04, 0x03,             // 0x0304
    };
    // clang-format on
    ASSERT_EQ(bytes.size(), sizeof expected);
    for (std::size_t i = 0; i < sizeof expected; ++i) {
        EXPECT_EQ(static_cast<unsigned char>(bytes[i]), expected[i]) << "byte " << i;
    }
}

TEST(Tensor, ScalarHasNoDims) {
    const std::array<double, 1> value{2.0};
    const std::string bytes = encode<double>(value, shape_t{});
    ASSERT_EQ(bytes.size(), 16u);
    EXPECT_EQ(bytes.substr(0, 8), std::string("AKVT\x01\x02\x00\x00", 8));
    double back;
    std::memcpy(&back, bytes.data() + 8, 8);
    EXPECT_EQ(back, 2.0);
}

TEST(Tensor, EncodeIntoAppendsWithoutReallocating) {
    std::string out = "prefix";
    out.reserve(256);
    const char* buffer = out.data();
    const std::array<float, 2> values{1, 2};
    encode_into<float>(out, values, shape_t{2});
    EXPECT_EQ(out.data(), buffer);
    EXPECT_EQ(out.substr(0, 6), "prefix");
    EXPECT_EQ(decode(std::string_view(out).substr(6)).values<float>()[1], 2.0f);
}

TEST(Tensor, DtypeNamesAndSizes) {
    EXPECT_EQ(to_string(dtype::f32), "f32");
    EXPECT_EQ(to_string(dtype::i16), "i16");
    EXPECT_EQ(to_string(dtype::u8), "u8");
    EXPECT_EQ(dtype_size(dtype::f64), 8u);
    EXPECT_EQ(dtype_size(dtype::i8), 1u);
    EXPECT_EQ(dtype_size(dtype::i32), 4u);
}

// ---- encode errors

TEST(Tensor, EncodeRejectsDataOfTheWrongSize) {
    const std::array<std::byte, 20> data{};
    auto e = error_of([&] { encode(dtype::f32, shape_t{2, 3}, data); });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "tensor: shape [2,3] of f32 needs 24 bytes, got 20"));
}

TEST(Tensor, EncodeRejectsNegativeDimAndTooManyDims) {
    auto negative = error_of([] { encode<float>({}, shape_t{2, -1}); });
    EXPECT_EQ(negative.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(negative.what(), "dim 1 of shape [2,-1] is negative"));
    auto deep = error_of([] { encode<float>({}, shape_t(9, 0)); });
    EXPECT_EQ(deep.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(deep.what(), "ndim 9 exceeds the maximum of 8"));
}

// ---- decode errors

TEST(TensorDecode, RejectsBadMagic) {
    std::string bytes = f32_tensor({1}, 4);
    bytes[0] = 'X';
    bytes[3] = '\x01';
    expect_decode_error(bytes, "tensor: bad magic \"XKV\\x01\" (expected \"AKVT\")");
}

TEST(TensorDecode, RejectsATruncatedHeader) {
    expect_decode_error("AKVT\x01", "tensor: 5 bytes is shorter than the 8-byte header");
    expect_decode_error("", "tensor: 0 bytes is shorter");
}

TEST(TensorDecode, RejectsTruncatedDims) {
    const std::string bytes = f32_tensor({2, 3}, 0).substr(0, 20);
    expect_decode_error(bytes, "tensor: truncated: 2 dims need 24 header bytes, got 20");
}

TEST(TensorDecode, RejectsAnUnknownVersion) {
    expect_decode_error(craft(2, 1, 1, {1}, 4), "tensor: unknown version 2");
}

TEST(TensorDecode, RejectsAnUnknownDtype) {
    expect_decode_error(craft(1, 8, 1, {1}, 4), "tensor: unknown dtype 8");
    expect_decode_error(craft(1, 0, 1, {1}, 4), "tensor: unknown dtype 0");
}

TEST(TensorDecode, RejectsNdimAbove8) {
    expect_decode_error(craft(1, 1, 9, shape_t(9, 1), 4),
                        "tensor: ndim 9 exceeds the maximum of 8");
}

TEST(TensorDecode, RejectsANonZeroReservedByte) {
    std::string bytes = f32_tensor({1}, 4);
    bytes[7] = '\x05';
    expect_decode_error(bytes, "tensor: reserved byte 7 is 5, expected 0");
}

TEST(TensorDecode, RejectsANegativeDim) {
    expect_decode_error(f32_tensor({4, -44}, 0), "tensor: dim 1 of shape [4,-44] is negative");
}

TEST(TensorDecode, RejectsTooFewDataBytes) {
    expect_decode_error(f32_tensor({4, 44}, 700),
                        "tensor: shape [4,44] of f32 needs 704 data bytes, got 700");
}

TEST(TensorDecode, RejectsTooManyDataBytes) {
    expect_decode_error(f32_tensor({4, 44}, 708),
                        "tensor: shape [4,44] of f32 needs 704 data bytes, got 708");
}

TEST(TensorDecode, RejectsDimsWhoseProductOverflows) {
    const std::int64_t big = std::int64_t{1} << 40;
    expect_decode_error(f32_tensor({big, big}, 0),
                        "tensor: shape [1099511627776,1099511627776] of f32 overflows");
    // Fits in elements, but not once multiplied by the element size.
    const std::int64_t elements = std::int64_t{1} << 62;
    expect_decode_error(f32_tensor({elements}, 0), "of f32 overflows the size of a tensor");
}

// ---- typed access

TEST(Tensor, ValuesOfTheWrongTypeThrowNamingBoth) {
    const std::array<float, 1> one{1};
    const tensor t = decode(encode<float>(one, shape_t{1}));
    auto e = error_of([&] { t.values<double>(); });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "tensor: values<f64>() of a f32 tensor"));
    EXPECT_THROW(t.values<std::int32_t>(), boost::system::system_error);
}

// ---- the batcher's hot path

TEST(TensorDecodeF32Into, CopiesTheRows) {
    const std::vector<float> values{1, 2, 3, 4, 5, 6};
    const shape_t shape{2, 3};
    const std::string bytes = encode<float>(values, shape);
    std::vector<float> out(6);
    decode_f32_into(bytes, out, shape);
    EXPECT_EQ(out, values);
}

TEST(TensorDecodeF32Into, RejectsAnotherDtype) {
    const std::vector<double> values{1, 2, 3};
    const std::string bytes = encode<double>(values, shape_t{3});
    std::vector<float> out(3);
    auto e = error_of([&] { decode_f32_into(bytes, out, shape_t{3}); });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "tensor: expected f32 [3], got f64 [3]"));
}

TEST(TensorDecodeF32Into, RejectsAnotherShape) {
    const std::vector<float> values(44);
    const std::string bytes = encode<float>(values, shape_t{1, 44});
    std::vector<float> out(44);
    auto e = error_of([&] { decode_f32_into(bytes, out, shape_t{44}); });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "tensor: expected f32 [44], got f32 [1,44]"));
}

TEST(TensorDecodeF32Into, RejectsAnOutputOfTheWrongSize) {
    const std::vector<float> values(4);
    const std::string bytes = encode<float>(values, shape_t{4});
    std::vector<float> out(3);
    auto e = error_of([&] { decode_f32_into(bytes, out, shape_t{4}); });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "holds 4 floats, the output 3"));
}

TEST(TensorDecodeF32Into, RejectsACorruptTensor) {
    std::vector<float> out(44);
    auto e = error_of([&] { decode_f32_into(f32_tensor({44}, 170), out, shape_t{44}); });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "needs 176 data bytes, got 170"));
}

TEST(RawF32Into, CopiesLittleEndianFloats) {
    const std::array<float, 3> values{1.5f, -2.0f, 1e-3f};
    const std::string raw(reinterpret_cast<const char*>(values.data()), sizeof values);
    std::vector<float> out(3);
    raw_f32_into(raw, out);
    EXPECT_EQ(out, std::vector<float>(values.begin(), values.end()));
}

TEST(RawF32Into, RejectsTheWrongByteCount) {
    std::vector<float> out(44);
    auto e = error_of([&] { raw_f32_into(std::string(170, '\0'), out); });
    EXPECT_EQ(e.code(), akv::error::type_mismatch);
    EXPECT_TRUE(contains(e.what(), "raw f32: 44 floats need 176 bytes, got 170"));
}
