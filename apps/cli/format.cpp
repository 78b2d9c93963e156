#include "format.hpp"

#include <cstdio>

namespace akv::cli {
namespace {

std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '\\':
            out += "\\\\";
            break;
        case '"':
            out += "\\\"";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20 || c >= 0x7f) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\x%02x", c);
                out += buf;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    return out + "\"";
}

void format_into(std::string& out, const resp::value& v, std::size_t indent) {
    using resp::type;
    switch (v.data_type) {
    case type::simple_string:
        out += v.str;
        break;
    case type::blob_string:
        out += quoted(v.str);
        break;
    case type::verbatim_string:
        out += v.str.size() >= 4 ? v.str.substr(4) : v.str;
        break;
    case type::number:
        out += "(integer) " + v.str;
        break;
    case type::doublean:
        out += "(double) " + v.str;
        break;
    case type::big_number:
        out += "(big number) " + v.str;
        break;
    case type::boolean:
        out += v.str == "t" ? "(true)" : "(false)";
        break;
    case type::null:
        out += "(nil)";
        break;
    case type::simple_error:
    case type::blob_error:
        out += "(error) " + v.str;
        break;
    case type::array:
    case type::set:
    case type::push:
    case type::map:
    case type::attribute: {
        const bool pairs = v.data_type == type::map || v.data_type == type::attribute;
        const std::size_t count = pairs ? v.elements.size() / 2 : v.elements.size();
        if (count == 0) {
            out += v.data_type == type::set ? "(empty set)"
                   : pairs                  ? "(empty hash)"
                                            : "(empty array)";
            break;
        }
        const std::size_t width = std::to_string(count).size();
        for (std::size_t i = 0; i < count; ++i) {
            if (i > 0) out += "\n" + std::string(indent, ' ');
            std::string number = std::to_string(i + 1);
            number.insert(0, width - number.size(), ' ');
            const std::string label = number + (pairs ? "# " : ") ");
            out += label;
            if (pairs) {
                format_into(out, v.elements[2 * i], indent + label.size());
                out += " => ";
                format_into(out, v.elements[2 * i + 1], indent + label.size());
            } else {
                format_into(out, v.elements[i], indent + label.size());
            }
        }
        break;
    }
    }
}

void raw_into(std::string& out, const resp::value& v) {
    if (v.is_aggregate()) {
        for (std::size_t i = 0; i < v.elements.size(); ++i) {
            if (i > 0) out += '\n';
            raw_into(out, v.elements[i]);
        }
        return;
    }
    if (v.data_type == resp::type::verbatim_string && v.str.size() >= 4)
        out += v.str.substr(4);
    else if (!v.is_null())
        out += v.str;
}

} // namespace

std::string format_reply(const resp::value& v) {
    std::string out;
    format_into(out, v, 0);
    return out;
}

std::string quote(const std::string& s) { return quoted(s); }

std::string format_raw(const resp::value& v) {
    std::string out;
    raw_into(out, v);
    return out;
}

} // namespace akv::cli
