// Bytes from the network shown in an error message: printable ASCII as is, anything else (and
// the quote and backslash that would make the message ambiguous) as \xNN, cut after `max`.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace akv::detail {

inline std::string printable(std::string_view text, std::size_t max) {
    std::string out;
    for (char c : text.substr(0, max)) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') {
            out += c;
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", u);
            out += buf;
        }
    }
    if (text.size() > max) out += "...";
    return out;
}

} // namespace akv::detail
