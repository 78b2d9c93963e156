#include <akv/detail/handshake.hpp>

#include <akv/error.hpp>

namespace akv::detail {

using boost::system::error_code;

handshake::handshake(const config& cfg, std::string_view required_role, const request& setup)
    : required_role_(required_role)
    , db_(cfg.db) {
    if (!cfg.password.empty()) {
        const std::string user = cfg.username.empty() ? "default" : cfg.username;
        if (!cfg.client_name.empty())
            req_.push("HELLO", "3", "AUTH", user, cfg.password, "SETNAME", cfg.client_name);
        else
            req_.push("HELLO", "3", "AUTH", user, cfg.password);
    } else if (!cfg.client_name.empty()) {
        req_.push("HELLO", "3", "SETNAME", cfg.client_name);
    } else {
        req_.push("HELLO", "3");
    }
    if (cfg.db != 0) req_.push("SELECT", cfg.db);
    role_index_ = req_.size();
    if (!required_role_.empty()) req_.push("ROLE");
    setup_index_ = req_.size();
    if (!setup.empty()) req_.append(setup);
}

error_code handshake::judge(const generic_response& replies, const endpoint& server,
                            std::string& why) const {
    if (replies.size() != req_.expected_replies()) {
        why = "handshake: " + std::to_string(replies.size()) + " replies to " +
              std::to_string(req_.expected_replies()) + " commands";
        return error::handshake_failed;
    }
    for (std::size_t i = 0; i < replies.size(); ++i) {
        if (replies[i].has_value()) continue;
        const std::string& text = replies[i].error().message;
        if (i == 0) {
            // Redis says WRONGPASS for a wrong password and for an unknown or disabled user.
            if (text.starts_with("WRONGPASS") || text.starts_with("NOAUTH") ||
                text.starts_with("NOPERM")) {
                why = "authentication refused: " + text;
                return error::auth_failed;
            }
            why = text.starts_with("ERR unknown command")
                      ? "server does not speak RESP3 (HELLO needs Redis 6 or later): " + text
                      : "HELLO refused: " + text;
        } else if (i < role_index_) {
            why = "SELECT " + std::to_string(db_) + " refused: " + text;
        } else if (i < setup_index_) {
            why = "ROLE refused: " + text;
        } else {
            why = "setup command " + std::to_string(i - setup_index_ + 1) + " refused: " + text;
        }
        return error::handshake_failed;
    }
    if (!required_role_.empty()) {
        const resp::value& role = replies[role_index_].value();
        const std::string got = role.is_aggregate() && !role.elements.empty()
                                    ? role.elements.front().str
                                    : std::string("?");
        if (got != required_role_) {
            why = "server " + server.host + ":" + std::to_string(server.port) + " has role " + got +
                  ", expected " + required_role_;
            return error::wrong_role;
        }
    }
    return {};
}

} // namespace akv::detail
