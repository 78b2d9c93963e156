// The RESP3 data types, as sent by Redis 6+ after HELLO 3.
#pragma once

#include <string_view>

namespace akv::resp {

enum class type : unsigned char {
    simple_string,   // +
    simple_error,    // -
    number,          // :
    doublean,        // ,
    null,            // _  (and RESP2's $-1 / *-1)
    boolean,         // #
    blob_string,     // $
    blob_error,      // !
    verbatim_string, // =  (value keeps its "txt:" prefix)
    big_number,      // (
    array,           // *
    map,             // %
    set,             // ~
    attribute,       // |
    push,            // >
};

constexpr bool is_aggregate(type t) noexcept {
    return t == type::array || t == type::map || t == type::set || t == type::attribute ||
           t == type::push;
}

// Maps and attributes hold key/value pairs: their header counts pairs, not elements.
constexpr std::size_t element_multiplicity(type t) noexcept {
    return (t == type::map || t == type::attribute) ? 2 : 1;
}

constexpr bool is_error(type t) noexcept {
    return t == type::simple_error || t == type::blob_error;
}

std::string_view to_string(type t) noexcept;

} // namespace akv::resp
