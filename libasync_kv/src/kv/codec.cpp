#include <akv/kv/codec.hpp>

#include <boost/json/parse.hpp>

#include <cstdio>

namespace akv::kv {

namespace {

constexpr std::size_t shown_bytes = 40; // how much of a value a message quotes

std::string quoted(std::string_view bytes) {
    std::string out = "\"";
    for (char c : bytes.substr(0, shown_bytes)) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u >= 0x20 && u < 0x7f) {
            out += c;
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", u);
            out += buf;
        }
    }
    out += '"';
    if (bytes.size() > shown_bytes) out += "... (" + std::to_string(bytes.size()) + " bytes)";
    return out;
}

std::string message(const std::string& where, const std::string& detail) {
    return where.empty() ? "kv: " + detail : "kv: " + where + ": " + detail;
}

} // namespace

type_mismatch_error::type_mismatch_error(std::string where, std::string detail)
    : boost::system::system_error(make_error_code(error::type_mismatch), message(where, detail))
    , where_(std::move(where))
    , detail_(std::move(detail)) {}

std::string describe(std::string_view bytes) {
    if (bytes.substr(0, 4) == "AKVT") {
        try {
            const ml::tensor t = ml::decode(bytes);
            return "a tensor of " + std::string(ml::to_string(t.type)) + " " +
                   ml::format_shape(t.shape);
        } catch (const boost::system::system_error&) {
            // Not a well-formed tensor: shown as bytes below.
        }
    }
    return quoted(bytes);
}

void throw_mismatch(std::string_view expected, std::string_view found) {
    throw type_mismatch_error({}, "expected " + std::string(expected) + ", got " + describe(found));
}

void codec<bool>::decode(std::string_view in, bool& value) {
    if (in == "1")
        value = true;
    else if (in == "0")
        value = false;
    else
        throw_mismatch("a bool (\"1\" or \"0\")", in);
}

void codec<ml::tensor>::decode(std::string_view in, ml::tensor& t) {
    if (in.substr(0, 4) != "AKVT") throw_mismatch("a tensor", in);
    try {
        t = ml::decode(in);
    } catch (const boost::system::system_error& e) {
        // what() ends with the category's text: keep only what tensor.cpp said.
        std::string detail = e.what();
        const std::string suffix = ": " + e.code().message();
        if (detail.ends_with(suffix)) detail.resize(detail.size() - suffix.size());
        throw type_mismatch_error({}, "expected a tensor, got a malformed one (" + detail + ")");
    }
}

namespace detail {

void throw_integer_mismatch(std::string_view in, long long min, unsigned long long max) {
    long long parsed = 0;
    const auto [end, ec] = std::from_chars(in.data(), in.data() + in.size(), parsed);
    const bool out_of_range = !in.empty() && end == in.data() + in.size() &&
                              (ec == std::errc{} || ec == std::errc::result_out_of_range);
    if (out_of_range) {
        throw_mismatch("an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]",
                       in);
    }
    throw_mismatch("an integer", in);
}

void throw_number_mismatch(std::string_view in) {
    throw_mismatch("a number", in);
}

std::string_view vector_elements(std::string_view in, ml::dtype type) {
    const std::string expected = "a tensor of " + std::string(ml::to_string(type));
    if (in.substr(0, 4) != "AKVT") throw_mismatch(expected, in);
    ml::tensor t;
    codec<ml::tensor>::decode(in, t);
    if (t.type != type || t.shape.size() != 1) {
        throw_mismatch(t.type != type ? expected : "a one-dimensional " + expected.substr(2), in);
    }
    // The elements are the tail of `in`: a view of them, not of the decoded copy.
    return in.substr(in.size() - t.data.size());
}

boost::json::value parse_json_object(std::string_view in) {
    boost::system::error_code ec;
    boost::json::value json = boost::json::parse(in, ec);
    if (ec || !json.is_object()) throw_mismatch("a JSON object", in);
    return json;
}

void throw_missing_member(std::string_view member, std::string_view in) {
    throw_mismatch("a JSON object with member \"" + std::string(member) + "\"", in);
}

void throw_bad_member(std::string_view member, const boost::system::error_code& ec,
                      const boost::json::value& found) {
    throw type_mismatch_error({}, "JSON member \"" + std::string(member) + "\": " + ec.message() +
                                      ", got " + boost::json::serialize(found));
}

} // namespace detail

} // namespace akv::kv
