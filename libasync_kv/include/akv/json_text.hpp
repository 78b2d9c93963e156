// JSON text that any parser reads back. Boost.JSON 1.81 writes a non-finite double as
// Infinity or NaN, which no JSON parser accepts (Boost's own included): what was stored that
// way could never be read again. Such a number is refused here instead, naming where it is.
#pragma once

#include <boost/json/value.hpp>

#include <string>

namespace akv {

// serialize(v), or throws system_error(error::type_mismatch) naming the first NaN or
// Infinity, e.g. "scores[2]" (`what` starts the message: whose JSON it is).
std::string json_text(const boost::json::value& v, std::string_view what = "value");

} // namespace akv
