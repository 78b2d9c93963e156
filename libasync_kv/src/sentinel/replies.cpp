#include "replies.hpp"

#include <charconv>
#include <stdexcept>

namespace akv::sentinel {
namespace {

std::optional<std::uint16_t> parse_port(std::string_view text) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

// A RESP3 map or a RESP2 flat array of field, value, field, value, ...
std::string_view field(const resp::value& fields, std::string_view name) {
    for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2)
        if (fields.elements[i].str == name) return fields.elements[i + 1].str;
    return {};
}

} // namespace

bool has_flag(std::string_view flags, std::string_view flag) {
    while (!flags.empty()) {
        const auto comma = flags.find(',');
        if (flags.substr(0, comma) == flag) return true;
        if (comma == std::string_view::npos) break;
        flags.remove_prefix(comma + 1);
    }
    return false;
}

std::optional<endpoint> master_address(const resp::value& reply) {
    if (reply.is_null()) return std::nullopt;
    if (!reply.is_aggregate() || reply.elements.size() != 2)
        throw std::invalid_argument("GET-MASTER-ADDR-BY-NAME: expected [host, port]");
    const auto port = parse_port(reply.elements[1].str);
    if (!port)
        throw std::invalid_argument("GET-MASTER-ADDR-BY-NAME: bad port \"" + reply.elements[1].str +
                                    "\"");
    return endpoint{reply.elements[0].str, *port};
}

std::vector<endpoint> usable_replicas(const resp::value& reply) {
    std::vector<endpoint> usable;
    for (const resp::value& replica : reply.elements) {
        const std::string_view flags = field(replica, "flags");
        if (has_flag(flags, "s_down") || has_flag(flags, "o_down") ||
            has_flag(flags, "disconnected"))
            continue;
        const std::string_view role = field(replica, "role-reported");
        if (!role.empty() && role != "slave") continue;
        const auto port = parse_port(field(replica, "port"));
        const std::string_view host = field(replica, "ip");
        if (!port || host.empty()) continue;
        usable.push_back(endpoint{std::string(host), *port});
    }
    return usable;
}

std::optional<endpoint> switched_master(const resp::value& push, std::string_view master_name) {
    // ["message", "+switch-master", "mymaster 127.0.0.1 6379 127.0.0.1 6380"]
    if (!push.is_aggregate() || push.elements.size() != 3) return std::nullopt;
    if (push.elements[0].str != "message" || push.elements[1].str != "+switch-master")
        return std::nullopt;
    std::vector<std::string_view> words;
    std::string_view text = push.elements[2].str;
    while (!text.empty()) {
        const auto space = text.find(' ');
        if (space != 0) words.push_back(text.substr(0, space));
        if (space == std::string_view::npos) break;
        text.remove_prefix(space + 1);
    }
    if (words.size() != 5 || words[0] != master_name) return std::nullopt;
    const auto port = parse_port(words[4]);
    if (!port) return std::nullopt;
    return endpoint{std::string(words[3]), *port};
}

} // namespace akv::sentinel
