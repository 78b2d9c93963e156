#include <akv/request.hpp>

#include <algorithm>
#include <array>
#include <cctype>

namespace akv {

namespace detail {

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::toupper(static_cast<unsigned char>(x)) ==
                      std::toupper(static_cast<unsigned char>(y));
           });
}

bool answers_with_push(std::string_view command) noexcept {
    static constexpr std::array<std::string_view, 6> names{
        "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"};
    return std::any_of(names.begin(), names.end(),
                       [&](std::string_view n) { return iequals(n, command); });
}

} // namespace detail

namespace {

using detail::answers_with_push;
using detail::iequals;

bool always_blocks(std::string_view command) {
    static constexpr std::array<std::string_view, 11> names{
        "BLPOP",    "BRPOP",  "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN",
        "BZPOPMAX", "BZMPOP", "WAIT",   "WAITAOF",    "MONITOR"};
    return std::any_of(names.begin(), names.end(),
                       [&](std::string_view n) { return iequals(n, command); });
}

} // namespace

// XREAD and XREADGROUP block only with a BLOCK argument: look for it among the bulk strings of
// the command just written.
bool request::payload_tail_args(std::string_view command) const {
    if (!iequals(command, "XREAD") && !iequals(command, "XREADGROUP")) return false;
    std::string_view rest(payload_);
    rest.remove_prefix(last_command_start_);
    for (std::size_t pos = rest.find('$'); pos != std::string_view::npos;
         pos = rest.find('$', pos + 1)) {
        const std::size_t crlf = rest.find("\r\n", pos);
        if (crlf == std::string_view::npos) break;
        std::size_t len = 0;
        std::from_chars(rest.data() + pos + 1, rest.data() + crlf, len);
        const std::string_view arg = rest.substr(crlf + 2, len);
        if (iequals(arg, "BLOCK")) return true;
        pos = crlf + 2 + len; // skip the argument's bytes: a '$' inside them is data
    }
    return false;
}

void request::note_command(std::string_view command, bool has_block_arg, std::size_t args) {
    ++commands_;
    if (!answers_with_push(command))
        ++expected_replies_;
    else if (args > 0)
        expected_pushes_ += args;
    else
        unknown_pushes_ = true;
    if (has_block_arg || always_blocks(command)) blocking_ = true;
    last_command_start_ = payload_.size();
}

} // namespace akv
