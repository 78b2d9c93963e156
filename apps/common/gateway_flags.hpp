// Gateway flags more than one app reads: akv-gateway serves the channels, akv-worker publishes
// to them, and both must agree on which keep history.
#pragma once

#include "app.hpp"

#include <akv/gateway/options.hpp>

#include <string>

namespace akv::app {

// --history PATTERN[=MAXLEN[,AGE_S]]
inline gateway::history_rule history_rule(const std::string& text) {
    gateway::history_rule r;
    const auto eq = text.find('=');
    r.pattern = text.substr(0, eq);
    if (r.pattern.empty()) throw usage_error("--history: empty channel pattern");
    if (eq != std::string::npos) {
        const std::string rest = text.substr(eq + 1);
        const auto comma = rest.find(',');
        r.max_length = command_line::parse_number<std::size_t>("history", rest.substr(0, comma));
        if (comma != std::string::npos)
            r.max_age = std::chrono::seconds(
                command_line::parse_number<long>("history", rest.substr(comma + 1)));
    }
    return r;
}

} // namespace akv::app
