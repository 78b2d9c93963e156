#include <akv/detail/adapt.hpp>
#include <akv/detail/printable.hpp>

#include <cmath>

namespace akv::detail {
namespace {

bool is_text(resp::type t) {
    return t == resp::type::simple_string || t == resp::type::blob_string ||
           t == resp::type::verbatim_string || t == resp::type::big_number ||
           t == resp::type::number || t == resp::type::doublean;
}

} // namespace

void cursor::skip_subtree() {
    const std::uint32_t depth = nodes[index].depth;
    ++index;
    while (index < nodes.size() && nodes[index].depth > depth)
        ++index;
}

void cursor::skip_attributes() {
    while (index < nodes.size() && nodes[index].data_type == resp::type::attribute)
        skip_subtree();
}

error_info mismatch(const cursor& c, std::string_view expected) {
    const resp::node& n = c.current();
    std::string got(resp::to_string(n.data_type));
    if (resp::is_aggregate(n.data_type))
        got += " of " + std::to_string(n.size);
    else
        got += " \"" + printable(c.text(), 64) + "\"";
    return {make_error_code(error::type_mismatch),
            "expected " + std::string(expected) + ", got " + got};
}

error_info unexpected_null(std::string_view expected) {
    return {make_error_code(error::unexpected_null),
            "expected " + std::string(expected) + ", got null (use std::optional)"};
}

error_info server_error_from(const cursor& c) {
    // The one server error a caller must act on differently (use a hash tag) has its own code,
    // whether the server said it or a cluster client refused the command before sending.
    const std::string_view text = c.text();
    const error code = text.starts_with("CROSSSLOT") ? error::cross_slot : error::server_error;
    return {make_error_code(code), std::string(text)};
}

bool parse_integer(std::string_view t, long long& out) {
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    return !t.empty() && ec == std::errc{} && ptr == t.data() + t.size();
}

bool parse_unsigned(std::string_view t, unsigned long long& out) {
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    return !t.empty() && ec == std::errc{} && ptr == t.data() + t.size();
}

bool parse_double(std::string_view t, double& out) {
    if (t == "inf" || t == "+inf") return out = INFINITY, true;
    if (t == "-inf") return out = -INFINITY, true;
    if (t == "nan" || t == "-nan") return out = NAN, true;
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    return !t.empty() && ec == std::errc{} && ptr == t.data() + t.size();
}

std::optional<error_info> converter<std::string>::apply(cursor& c, std::string& out) {
    const resp::node& n = c.current();
    if (n.data_type == resp::type::null) return unexpected_null("a string");
    if (resp::is_error(n.data_type)) return server_error_from(c);
    if (!is_text(n.data_type) && n.data_type != resp::type::boolean) return mismatch(c, "a string");
    std::string_view t = c.text();
    if (n.data_type == resp::type::verbatim_string) t.remove_prefix(4); // "txt:"
    out.assign(t.data(), t.size());
    ++c.index;
    return std::nullopt;
}

std::optional<error_info> converter<bool>::apply(cursor& c, bool& out) {
    const resp::node& n = c.current();
    if (n.data_type == resp::type::null) return unexpected_null("a boolean");
    if (resp::is_error(n.data_type)) return server_error_from(c);
    const std::string_view t = c.text();
    if (n.data_type == resp::type::boolean) {
        out = t == "t";
    } else if (n.data_type == resp::type::number || n.data_type == resp::type::blob_string ||
               n.data_type == resp::type::simple_string) {
        long long v = 0;
        if (!parse_integer(t, v)) return mismatch(c, "a boolean (or 0/1)");
        out = v != 0;
    } else {
        return mismatch(c, "a boolean");
    }
    ++c.index;
    return std::nullopt;
}

std::optional<error_info> converter<double>::apply(cursor& c, double& out) {
    const resp::node& n = c.current();
    if (n.data_type == resp::type::null) return unexpected_null("a double");
    if (resp::is_error(n.data_type)) return server_error_from(c);
    if (!is_text(n.data_type) || !parse_double(c.text(), out)) return mismatch(c, "a double");
    ++c.index;
    return std::nullopt;
}

std::optional<error_info> converter<resp::value>::apply(cursor& c, resp::value& out) {
    const resp::node& n = c.current();
    out.data_type = n.data_type;
    out.elements.clear();
    if (!resp::is_aggregate(n.data_type)) {
        out.str.assign(c.text());
        ++c.index;
        return std::nullopt;
    }
    out.str.clear();
    const std::size_t count = n.size * resp::element_multiplicity(n.data_type);
    ++c.index;
    out.elements.resize(count);
    for (auto& e : out.elements) {
        c.skip_attributes();
        if (auto err = apply(c, e)) return err;
    }
    return std::nullopt;
}

std::optional<error_info> enter_aggregate(cursor& c, std::string_view expected,
                                          std::size_t& elements) {
    const resp::node& n = c.current();
    if (n.data_type == resp::type::null) return unexpected_null(expected);
    if (resp::is_error(n.data_type)) return server_error_from(c);
    if (!resp::is_aggregate(n.data_type) || n.data_type == resp::type::attribute)
        return mismatch(c, expected);
    elements = n.size * resp::element_multiplicity(n.data_type);
    ++c.index;
    return std::nullopt;
}

std::optional<error_info> check_tuple_size(cursor& c, std::size_t expected) {
    const resp::node& n = c.current();
    std::size_t elements = 0;
    const std::string what = "an aggregate of " + std::to_string(expected);
    if (auto e = enter_aggregate(c, what, elements)) return e;
    if (elements != expected) {
        --c.index; // report the aggregate itself
        return mismatch(c, what);
    }
    (void)n;
    return std::nullopt;
}

} // namespace akv::detail
