// Fuzzes the msgpack reader (akv/kv/msgpack.hpp): Django Channels' messages in Redis are
// untrusted bytes (anyone who can write to the server can put them in a group's sorted set).
//
// decode() must return a JSON value or throw system_error (type_mismatch, or object_too_large
// past the depth limit); a decoded value must encode and decode back to itself. Anything else is
// a crash.
#include <akv/error.hpp>
#include <akv/kv/msgpack.hpp>

#include <boost/system/system_error.hpp>

#include <cstdint>
#include <string_view>

#define AKV_FUZZ_CHECK(cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

namespace mp = akv::kv::msgpack;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    for (const auto bin : {mp::bin_policy::refuse, mp::bin_policy::base64}) {
        mp::decode_options options;
        options.bin = bin;
        try {
            const boost::json::value v = mp::decode(bytes, options);
            AKV_FUZZ_CHECK(mp::decode(mp::encode(v), options) == v);
        } catch (const boost::system::system_error& e) {
            AKV_FUZZ_CHECK(e.code() == akv::error::type_mismatch ||
                           e.code() == akv::error::object_too_large);
        }
    }
    return 0;
}
