#include <akv/resp/writer.hpp>

#include <charconv>

namespace akv::resp {
namespace {

void append_number(std::string& out, std::size_t n) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, end);
}

char marker_of(type t) {
    switch (t) {
    case type::simple_string:
        return '+';
    case type::simple_error:
        return '-';
    case type::number:
        return ':';
    case type::doublean:
        return ',';
    case type::null:
        return '_';
    case type::boolean:
        return '#';
    case type::blob_string:
        return '$';
    case type::blob_error:
        return '!';
    case type::verbatim_string:
        return '=';
    case type::big_number:
        return '(';
    case type::array:
        return '*';
    case type::map:
        return '%';
    case type::set:
        return '~';
    case type::attribute:
        return '|';
    case type::push:
        return '>';
    }
    return '_';
}

} // namespace

void write_aggregate_header(std::string& out, char marker, std::size_t count) {
    out += marker;
    append_number(out, count);
    out += "\r\n";
}

void write_bulk(std::string& out, std::string_view bytes) {
    out += '$';
    append_number(out, bytes.size());
    out += "\r\n";
    out.append(bytes);
    out += "\r\n";
}

void write_command(std::string& out, std::string_view name) {
    write_aggregate_header(out, '*', 1);
    write_bulk(out, name);
}

void write(std::string& out, const value& v) {
    const char marker = marker_of(v.data_type);
    switch (v.data_type) {
    case type::blob_string:
    case type::blob_error:
    case type::verbatim_string:
        out += marker;
        append_number(out, v.str.size());
        out += "\r\n";
        out += v.str;
        out += "\r\n";
        return;
    case type::array:
    case type::set:
    case type::push:
        write_aggregate_header(out, marker, v.elements.size());
        break;
    case type::map:
    case type::attribute:
        write_aggregate_header(out, marker, v.elements.size() / 2);
        break;
    default:
        out += marker;
        out += v.str;
        out += "\r\n";
        return;
    }
    for (const value& e : v.elements)
        write(out, e);
}

} // namespace akv::resp
