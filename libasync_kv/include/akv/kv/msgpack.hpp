// MessagePack (msgpack.org) for the subset that Python programs exchange as dicts: nil, bool,
// integers, floats, str, bin, arrays and maps with string keys. Django Channels' Redis layers
// (channels_redis) serialize every message with it, so the gateway reads and writes it here.
//
//   std::string bytes = akv::kv::msgpack::encode(json::value{{"type", "chat.message"}});
//   json::value v = akv::kv::msgpack::decode(bytes);   // {"type":"chat.message"}
//
// Our own, not Debian's libmsgpack-cxx-dev: that package depends on libboost-dev (1.74), which
// cannot be installed beside the Boost 1.81 we build with.
//
// The reader is strict, because its input comes from other programs: exactly one value that
// fills the bytes, lengths that fit in what is left (so a hostile length never allocates), map
// keys that are strings and appear once, UTF-8 strings, finite floats, nesting up to
// decode_options::max_depth. Ext types (timestamps and the like) are refused: Python's msgpack
// does not write them for plain dicts. Anything else throws system_error(error::type_mismatch)
// saying what was wrong and at which byte; deeper than max_depth, error::object_too_large.
#pragma once

#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace akv::kv::msgpack {

// What a bin value (bytes) becomes in JSON, which has no bytes.
enum class bin_policy {
    refuse, // error::type_mismatch, naming where it was
    base64, // a string of its standard base64 (RFC 4648, padded)
};

struct decode_options {
    std::size_t max_depth = 64;
    bin_policy bin = bin_policy::refuse;
};

boost::json::value decode(std::string_view bytes, const decode_options& options = {});

// Appends values to `out`, each in its shortest form; a container's header first, then its
// `count` values (a map's as key, value, key, value...).
class writer {
public:
    explicit writer(std::string& out)
        : out_(out) {}
    void nil();
    void boolean(bool b);
    void integer(std::int64_t i);
    void unsigned_integer(std::uint64_t u);
    void real(double d); // always float 64
    void str(std::string_view s);
    void bin(std::string_view bytes);
    void array(std::size_t count);
    void map(std::size_t count);

private:
    void header(std::uint8_t tag, std::uint64_t value, int bytes);
    std::string& out_;
};

// A JSON value as msgpack: strings as str, numbers as int, uint or float 64.
void encode(const boost::json::value& value, std::string& out);
std::string encode(const boost::json::value& value);

} // namespace akv::kv::msgpack
