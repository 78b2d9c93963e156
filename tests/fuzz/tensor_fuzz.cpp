// Fuzzes the tensor codec (akv/ml/tensor.hpp): bytes from a stream entry or a hash field are
// untrusted (anyone who can write to the server can put them there).
//
// decode() must return a tensor or throw system_error(type_mismatch); a decoded tensor must
// encode back to exactly the same bytes, hold product(shape) * dtype_size bytes, and, if f32,
// read the same through decode_f32_into with its own shape. decode_f32_into against a fixed
// shape [4] must fill the four floats or throw type_mismatch. Anything else is a crash.
#include <akv/error.hpp>
#include <akv/ml/tensor.hpp>

#include <boost/system/system_error.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#define AKV_FUZZ_CHECK(cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

namespace ml = akv::ml;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    try {
        const ml::tensor t = ml::decode(bytes);
        AKV_FUZZ_CHECK(t.data.size() == t.elements() * ml::dtype_size(t.type));
        const std::string again =
            ml::encode(t.type, t.shape, std::as_bytes(std::span(t.data.data(), t.data.size())));
        AKV_FUZZ_CHECK(again == bytes);
        if (t.type == ml::dtype::f32) {
            std::vector<float> out(t.elements());
            ml::decode_f32_into(bytes, out, t.shape);
            AKV_FUZZ_CHECK(out.empty() || std::memcmp(out.data(), t.data.data(), t.data.size()) == 0);
        }
    } catch (const boost::system::system_error& e) {
        AKV_FUZZ_CHECK(e.code() == akv::error::type_mismatch);
    }
    try {
        float four[4];
        const std::int64_t shape[] = {4};
        ml::decode_f32_into(bytes, four, shape);
    } catch (const boost::system::system_error& e) {
        AKV_FUZZ_CHECK(e.code() == akv::error::type_mismatch);
    }
    return 0;
}
