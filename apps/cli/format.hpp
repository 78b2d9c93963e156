// How the CLI prints a reply: redis-cli's layout, so its users read it without thinking.
#pragma once

#include <akv/resp/value.hpp>

#include <string>

namespace akv::cli {

// `"text"` with escapes, `(integer) 5`, `(nil)`, numbered nested lists, `(error) ...`.
std::string format_reply(const resp::value& v);
// --raw: bare values, one per line, as scripts want them.
std::string format_raw(const resp::value& v);
// `s` in double quotes with C-like escapes (\n, \", \xNN for other bytes outside ASCII text).
std::string quote(const std::string& s);

} // namespace akv::cli
