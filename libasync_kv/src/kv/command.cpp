#include <akv/kv/detail/command.hpp>

#include <charconv>

namespace akv::kv::detail {

namespace {
// describe() without its tensor reading: a key or field is shown as (escaped) bytes.
std::string quote(std::string_view bytes) {
    return bytes.substr(0, 4) == "AKVT" ? "\"AKVT...\"" : describe(bytes);
}
} // namespace

std::string where(std::string_view key) {
    return quote(key);
}

std::string where(std::string_view key, std::string_view field) {
    return quote(key) + "[" + quote(field) + "]";
}

void throw_reply_error(const error_info& e, std::string_view key, std::string_view command) {
    throw boost::system::system_error(e.code, "kv: " + where(key) + ": " + std::string(command) +
                                                  ": " + e.message);
}

std::uint64_t parse_cursor(std::string_view text, std::string_view key) {
    std::uint64_t cursor = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), cursor);
    if (ec != std::errc{} || end != text.data() + text.size()) {
        throw_error(error::type_mismatch,
                    "kv: " + where(key) + ": expected a SCAN cursor, got " + describe(text));
    }
    return cursor;
}

} // namespace akv::kv::detail
