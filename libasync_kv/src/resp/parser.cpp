#include <akv/detail/printable.hpp>
#include <akv/error.hpp>
#include <akv/resp/parser.hpp>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace akv::resp {
namespace {

bool parse_length(std::string_view text, std::size_t& out) {
    if (text.empty()) return false;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && ptr == text.data() + text.size();
}

bool valid_integer(std::string_view text) {
    std::int64_t v;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    return !text.empty() && ec == std::errc{} && ptr == text.data() + text.size();
}

bool valid_big_number(std::string_view text) {
    if (!text.empty() && (text.front() == '-' || text.front() == '+')) text.remove_prefix(1);
    if (text.empty()) return false;
    for (char c : text)
        if (c < '0' || c > '9') return false;
    return true;
}

bool valid_double(std::string_view text) {
    if (text == "inf" || text == "-inf" || text == "nan" || text == "-nan") return true;
    double v;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    return !text.empty() && ec == std::errc{} && ptr == text.data() + text.size();
}

} // namespace

std::string_view to_string(type t) noexcept {
    switch (t) {
    case type::simple_string:
        return "simple_string";
    case type::simple_error:
        return "simple_error";
    case type::number:
        return "number";
    case type::doublean:
        return "double";
    case type::null:
        return "null";
    case type::boolean:
        return "boolean";
    case type::blob_string:
        return "blob_string";
    case type::blob_error:
        return "blob_error";
    case type::verbatim_string:
        return "verbatim_string";
    case type::big_number:
        return "big_number";
    case type::array:
        return "array";
    case type::map:
        return "map";
    case type::set:
        return "set";
    case type::attribute:
        return "attribute";
    case type::push:
        return "push";
    }
    return "unknown";
}

parser::parser(limits lim)
    : limits_(lim) {
    stack_.reserve(limits_.max_depth + 1);
}

void parser::reset() noexcept {
    stream_offset_ += pos_;
    pos_ = 0;
    done_ = false;
    stack_.clear();
}

std::optional<node> parser::fail(boost::system::error_code& ec, int code, std::string message) {
    ec = make_error_code(static_cast<error>(code));
    error_message_ =
        "resp: " + std::move(message) + " at byte " + std::to_string(stream_offset_ + pos_);
    return std::nullopt;
}

void parser::element_done(bool was_attribute) {
    // An attribute annotates the element that follows it: it is not an element itself.
    if (was_attribute) return;
    while (!stack_.empty()) {
        frame& top = stack_.back();
        if (--top.remaining > 0) return;
        const bool attribute = top.attribute;
        stack_.pop_back();
        if (attribute) return;
    }
    done_ = true;
}

std::optional<node> parser::next(std::string_view message, boost::system::error_code& ec) {
    if (done_ || pos_ >= message.size()) return std::nullopt;

    const std::string_view rest = message.substr(pos_);
    const std::size_t crlf = rest.find("\r\n");
    if (crlf == std::string_view::npos) {
        // A header line is short; a simple string may be long but is still bounded.
        if (rest.size() > limits_.max_bulk_length + 2)
            return fail(ec, static_cast<int>(error::resp_too_large),
                        "line without CRLF longer than max_bulk_length");
        return std::nullopt;
    }

    const char marker = rest[0];
    const std::string_view line = rest.substr(1, crlf - 1);
    const std::size_t line_end = pos_ + crlf + 2;
    const auto depth = static_cast<std::uint32_t>(stack_.size());

    auto scalar = [&](type t) -> std::optional<node> {
        node n{t, depth, 0, pos_ + 1, line.size()};
        pos_ = line_end;
        element_done(false);
        return n;
    };
    auto bad = [&](std::string_view what) {
        return fail(ec, static_cast<int>(error::resp_protocol),
                    std::string(what) + " \"" + detail::printable(line, 32) + "\"");
    };

    switch (marker) {
    case '+':
        return scalar(type::simple_string);
    case '-':
        return scalar(type::simple_error);
    case ':':
        if (!valid_integer(line)) return bad("bad integer");
        return scalar(type::number);
    case ',':
        if (!valid_double(line)) return bad("bad double");
        return scalar(type::doublean);
    case '_':
        if (!line.empty()) return bad("null with a payload");
        return scalar(type::null);
    case '#':
        if (line != "t" && line != "f") return bad("bad boolean");
        return scalar(type::boolean);
    case '(':
        if (!valid_big_number(line)) return bad("bad big number");
        return scalar(type::big_number);

    case '$':
    case '!':
    case '=': {
        if (line == "?")
            return fail(ec, static_cast<int>(error::resp_unsupported), "streamed string");
        if (marker == '$' && line == "-1") return scalar(type::null); // RESP2 null bulk
        std::size_t length = 0;
        if (!parse_length(line, length)) return bad("bad string length");
        if (length > limits_.max_bulk_length)
            return fail(ec, static_cast<int>(error::resp_too_large),
                        "string length " + std::to_string(length) + " exceeds max_bulk_length " +
                            std::to_string(limits_.max_bulk_length));
        const std::size_t end = line_end + length;
        if (message.size() < end + 2) return std::nullopt; // header re-read next time: cheap
        if (message[end] != '\r' || message[end + 1] != '\n') {
            pos_ = end;
            return fail(ec, static_cast<int>(error::resp_protocol),
                        "string of length " + std::to_string(length) + " not followed by CRLF");
        }
        const type t = marker == '$'   ? type::blob_string
                       : marker == '!' ? type::blob_error
                                       : type::verbatim_string;
        if (t == type::verbatim_string && (length < 4 || message[line_end + 3] != ':'))
            return bad("verbatim string without a 3-letter format");
        node n{t, depth, 0, line_end, length};
        pos_ = end + 2;
        element_done(false);
        return n;
    }

    case '*':
    case '%':
    case '~':
    case '|':
    case '>': {
        if (line == "?")
            return fail(ec, static_cast<int>(error::resp_unsupported), "streamed aggregate");
        if (marker == '*' && line == "-1") return scalar(type::null); // RESP2 null array
        const type t = marker == '*'   ? type::array
                       : marker == '%' ? type::map
                       : marker == '~' ? type::set
                       : marker == '|' ? type::attribute
                                       : type::push;
        std::size_t count = 0;
        if (!parse_length(line, count)) return bad("bad aggregate length");
        if (count > limits_.max_aggregate_length)
            return fail(ec, static_cast<int>(error::resp_too_large),
                        "aggregate of " + std::to_string(count) +
                            " elements exceeds max_aggregate_length " +
                            std::to_string(limits_.max_aggregate_length));
        if (stack_.size() >= limits_.max_depth)
            return fail(ec, static_cast<int>(error::resp_too_deep),
                        "nesting deeper than max_depth " + std::to_string(limits_.max_depth));
        node n{t, depth, count, pos_ + 1, 0};
        pos_ = line_end;
        const bool attribute = t == type::attribute;
        if (count == 0)
            element_done(attribute);
        else
            stack_.push_back({count * element_multiplicity(t), attribute});
        return n;
    }

    default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(marker));
        return fail(ec, static_cast<int>(error::resp_protocol),
                    std::string("unexpected type byte ") + hex);
    }
    }
}

} // namespace akv::resp
