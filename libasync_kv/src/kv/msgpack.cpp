#include <akv/error.hpp>
#include <akv/kv/msgpack.hpp>

#include <boost/json/object.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <string>

namespace akv::kv::msgpack {

namespace {

namespace json = boost::json;

// True when `s` is well-formed UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF
// (what Python's strict utf-8 codec accepts).
bool valid_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        int extra = 0;
        std::uint32_t cp = 0, min = 0;
        if ((c & 0xe0) == 0xc0) {
            extra = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (s.size() - i <= static_cast<std::size_t>(extra)) return false;
        for (int k = 1; k <= extra; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if ((b & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (b & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += extra + 1;
    }
    return true;
}

std::string base64(std::string_view bytes) {
    static constexpr char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t n = (std::uint32_t(std::uint8_t(bytes[i])) << 16) |
                                (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) |
                                std::uint8_t(bytes[i + 2]);
        out += digits[n >> 18];
        out += digits[(n >> 12) & 63];
        out += digits[(n >> 6) & 63];
        out += digits[n & 63];
    }
    if (const std::size_t left = bytes.size() - i; left > 0) {
        std::uint32_t n = std::uint32_t(std::uint8_t(bytes[i])) << 16;
        if (left == 2) n |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
        out += digits[n >> 18];
        out += digits[(n >> 12) & 63];
        out += left == 2 ? digits[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

class reader {
public:
    reader(std::string_view bytes, const decode_options& options)
        : bytes_(bytes)
        , options_(options) {}

    json::value document() {
        json::value v = value(0);
        if (pos_ != bytes_.size())
            fail(pos_, std::to_string(bytes_.size() - pos_) + " bytes after the value");
        return v;
    }

private:
    [[noreturn]] void fail(std::size_t at, const std::string& what) const {
        throw_error(error::type_mismatch, "msgpack: byte " + std::to_string(at) + ": " + what);
    }

    std::uint64_t big_endian(int n) {
        if (bytes_.size() - pos_ < static_cast<std::size_t>(n))
            fail(pos_, "truncated: " + std::to_string(n) + " bytes expected, " +
                           std::to_string(bytes_.size() - pos_) + " left");
        std::uint64_t v = 0;
        for (int i = 0; i < n; ++i)
            v = (v << 8) | static_cast<unsigned char>(bytes_[pos_++]);
        return v;
    }

    std::string_view take(std::uint64_t n, std::size_t at, const char* what) {
        if (n > bytes_.size() - pos_)
            fail(at, std::string(what) + " of " + std::to_string(n) + " bytes, only " +
                         std::to_string(bytes_.size() - pos_) + " left");
        const std::string_view s = bytes_.substr(pos_, n);
        pos_ += n;
        return s;
    }

    json::string text(std::uint64_t n, std::size_t at) {
        const std::string_view s = take(n, at, "a str");
        if (!valid_utf8(s)) fail(at, "a str that is not UTF-8");
        return json::string(s);
    }

    json::value real(double d, std::size_t at) {
        if (!std::isfinite(d))
            fail(at, "a float that is not finite (JSON has no NaN nor Infinity)");
        return d;
    }

    json::value array(std::uint64_t n, std::size_t at, std::size_t depth) {
        // Each element takes a byte at least: a count beyond what is left is a lie.
        if (n > bytes_.size() - pos_)
            fail(at, "an array of " + std::to_string(n) + " elements in " +
                         std::to_string(bytes_.size() - pos_) + " bytes");
        json::array a;
        a.reserve(n);
        for (std::uint64_t i = 0; i < n; ++i)
            a.push_back(value(depth + 1));
        return a;
    }

    json::value map(std::uint64_t n, std::size_t at, std::size_t depth) {
        if (n > (bytes_.size() - pos_) / 2)
            fail(at, "a map of " + std::to_string(n) + " entries in " +
                         std::to_string(bytes_.size() - pos_) + " bytes");
        json::object o;
        o.reserve(n);
        for (std::uint64_t i = 0; i < n; ++i) {
            const std::size_t key_at = pos_;
            if (pos_ >= bytes_.size()) fail(key_at, "truncated: a map key expected");
            const auto tag = static_cast<unsigned char>(bytes_[pos_++]);
            std::uint64_t len = 0;
            if (tag >= 0xa0 && tag <= 0xbf)
                len = tag & 0x1f;
            else if (tag == 0xd9)
                len = big_endian(1);
            else if (tag == 0xda)
                len = big_endian(2);
            else if (tag == 0xdb)
                len = big_endian(4);
            else
                fail(key_at, "a map key that is not a str");
            json::string key = text(len, key_at);
            if (o.contains(key)) fail(key_at, "the map key \"" + std::string(key) + "\" twice");
            json::value v = value(depth + 1);
            o.emplace(key, std::move(v));
        }
        return o;
    }

    json::value value(std::size_t depth) {
        const std::size_t at = pos_;
        if (depth >= options_.max_depth)
            throw_error(error::object_too_large, "msgpack: byte " + std::to_string(at) +
                                                     ": nested deeper than " +
                                                     std::to_string(options_.max_depth));
        if (pos_ >= bytes_.size()) fail(at, "truncated: a value expected");
        const auto tag = static_cast<unsigned char>(bytes_[pos_++]);
        if (tag <= 0x7f) return std::int64_t(tag);
        if (tag >= 0xe0) return std::int64_t(static_cast<std::int8_t>(tag));
        if (tag <= 0x8f) return map(tag & 0x0f, at, depth);
        if (tag <= 0x9f) return array(tag & 0x0f, at, depth);
        if (tag <= 0xbf) return text(tag & 0x1f, at);
        switch (tag) {
        case 0xc0:
            return nullptr;
        case 0xc2:
            return false;
        case 0xc3:
            return true;
        case 0xc4:
        case 0xc5:
        case 0xc6: {
            const std::string_view b = take(big_endian(tag == 0xc4   ? 1
                                                       : tag == 0xc5 ? 2
                                                                     : 4),
                                            at, "a bin");
            if (options_.bin == bin_policy::refuse)
                fail(at, "a bin (bytes), which JSON cannot hold");
            return json::string(base64(b));
        }
        case 0xca:
            return real(std::bit_cast<float>(static_cast<std::uint32_t>(big_endian(4))), at);
        case 0xcb:
            return real(std::bit_cast<double>(big_endian(8)), at);
        case 0xcc:
            return std::uint64_t(big_endian(1));
        case 0xcd:
            return std::uint64_t(big_endian(2));
        case 0xce:
            return std::uint64_t(big_endian(4));
        case 0xcf:
            return std::uint64_t(big_endian(8));
        case 0xd0:
            return std::int64_t(static_cast<std::int8_t>(big_endian(1)));
        case 0xd1:
            return std::int64_t(static_cast<std::int16_t>(big_endian(2)));
        case 0xd2:
            return std::int64_t(static_cast<std::int32_t>(big_endian(4)));
        case 0xd3:
            return static_cast<std::int64_t>(big_endian(8));
        case 0xd9:
            return text(big_endian(1), at);
        case 0xda:
            return text(big_endian(2), at);
        case 0xdb:
            return text(big_endian(4), at);
        case 0xdc:
            return array(big_endian(2), at, depth);
        case 0xdd:
            return array(big_endian(4), at, depth);
        case 0xde:
            return map(big_endian(2), at, depth);
        case 0xdf:
            return map(big_endian(4), at, depth);
        case 0xc1:
            fail(at, "the reserved tag 0xc1");
        default:
            fail(at, "an ext type (tag " + std::to_string(tag) + "), not supported");
        }
    }

    std::string_view bytes_;
    const decode_options& options_;
    std::size_t pos_ = 0;
};

} // namespace

json::value decode(std::string_view bytes, const decode_options& options) {
    return reader(bytes, options).document();
}

void writer::header(std::uint8_t tag, std::uint64_t value, int bytes) {
    out_ += static_cast<char>(tag);
    for (int i = bytes - 1; i >= 0; --i)
        out_ += static_cast<char>((value >> (8 * i)) & 0xff);
}

void writer::nil() {
    out_ += '\xc0';
}
void writer::boolean(bool b) {
    out_ += b ? '\xc3' : '\xc2';
}

void writer::unsigned_integer(std::uint64_t u) {
    if (u <= 0x7f)
        out_ += static_cast<char>(u);
    else if (u <= 0xff)
        header(0xcc, u, 1);
    else if (u <= 0xffff)
        header(0xcd, u, 2);
    else if (u <= 0xffffffff)
        header(0xce, u, 4);
    else
        header(0xcf, u, 8);
}

void writer::integer(std::int64_t i) {
    if (i >= 0) return unsigned_integer(static_cast<std::uint64_t>(i));
    const auto bits = static_cast<std::uint64_t>(i);
    if (i >= -32)
        out_ += static_cast<char>(i);
    else if (i >= INT8_MIN)
        header(0xd0, bits, 1);
    else if (i >= INT16_MIN)
        header(0xd1, bits, 2);
    else if (i >= INT32_MIN)
        header(0xd2, bits, 4);
    else
        header(0xd3, bits, 8);
}

void writer::real(double d) {
    header(0xcb, std::bit_cast<std::uint64_t>(d), 8);
}

void writer::str(std::string_view s) {
    if (s.size() <= 31)
        out_ += static_cast<char>(0xa0 | s.size());
    else if (s.size() <= 0xff)
        header(0xd9, s.size(), 1);
    else if (s.size() <= 0xffff)
        header(0xda, s.size(), 2);
    else
        header(0xdb, s.size(), 4);
    out_.append(s);
}

void writer::bin(std::string_view bytes) {
    if (bytes.size() <= 0xff)
        header(0xc4, bytes.size(), 1);
    else if (bytes.size() <= 0xffff)
        header(0xc5, bytes.size(), 2);
    else
        header(0xc6, bytes.size(), 4);
    out_.append(bytes);
}

void writer::array(std::size_t count) {
    if (count <= 15)
        out_ += static_cast<char>(0x90 | count);
    else if (count <= 0xffff)
        header(0xdc, count, 2);
    else
        header(0xdd, count, 4);
}

void writer::map(std::size_t count) {
    if (count <= 15)
        out_ += static_cast<char>(0x80 | count);
    else if (count <= 0xffff)
        header(0xde, count, 2);
    else
        header(0xdf, count, 4);
}

void encode(const json::value& value, std::string& out) {
    writer w(out);
    switch (value.kind()) {
    case json::kind::null:
        w.nil();
        break;
    case json::kind::bool_:
        w.boolean(value.get_bool());
        break;
    case json::kind::int64:
        w.integer(value.get_int64());
        break;
    case json::kind::uint64:
        w.unsigned_integer(value.get_uint64());
        break;
    case json::kind::double_:
        w.real(value.get_double());
        break;
    case json::kind::string:
        w.str(value.get_string());
        break;
    case json::kind::array:
        w.array(value.get_array().size());
        for (const auto& e : value.get_array())
            encode(e, out);
        break;
    case json::kind::object:
        w.map(value.get_object().size());
        for (const auto& [k, v] : value.get_object()) {
            w.str(k);
            encode(v, out);
        }
        break;
    }
}

std::string encode(const json::value& value) {
    std::string out;
    encode(value, out);
    return out;
}

} // namespace akv::kv::msgpack
