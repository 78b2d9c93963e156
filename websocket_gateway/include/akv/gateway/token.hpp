// Connection tokens of the WebSocket gateway: JWTs signed with HMAC-SHA256 (HS256), as a web
// backend mints them for its users. No I/O: the gateway checks a token when a session connects.
//
//   claims: "sub" (who), "exp" (seconds since the epoch; required), "nbf" (optional),
//           "channels" (patterns the holder may subscribe to), "publish" (patterns it may
//           publish to), "presence" (patterns whose presence it may read), "subs" (channels
//           the server subscribes it to at connect), "info" (a JSON object shown with its
//           presence and join/leave), "admin" (true or "read": the operator's console).
//           A pattern is a channel name where `*` matches any run of
//           characters (so "news.*" allows "news.sport"); an absent list allows nothing.
//
// Only HS256 is accepted: a token naming another algorithm ("none", RS256...) is refused, so a
// forged header cannot choose how it is checked.
#pragma once

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace akv::gateway {

enum class token_error {
    malformed = 1,     // not three base64url parts, bad JSON, a claim of the wrong type
    bad_algorithm,     // the header's "alg" is not HS256
    bad_signature,     // the HMAC does not match: wrong secret or a changed token
    expired,           // now >= exp
    not_yet_valid,     // now < nbf
    missing_claim,     // no "exp" or no "sub"
};

const boost::system::error_category& token_category() noexcept;
inline boost::system::error_code make_error_code(token_error e) noexcept {
    return {static_cast<int>(e), token_category()};
}

struct token_claims {
    std::string subject;
    std::int64_t expires = 0;    // seconds since the epoch
    std::int64_t not_before = 0; // 0: none
    std::vector<std::string> channels;
    std::vector<std::string> publish;
    std::vector<std::string> presence;
    std::vector<std::string> subs; // channel names, not patterns
    std::string info;              // compact JSON object text; empty: none
    // The operator's console: "write" ("admin": true in the token: its actions too) or "read"
    // ("admin": "read"); empty: no console.
    std::string admin;
};

// Throws boost::system::system_error with a token_error and a message saying what was wrong
// (never the secret, never the signature).
token_claims verify_token(std::string_view token, std::string_view secret,
                          std::chrono::system_clock::time_point now);

// A signed token for these claims (for backends, tests and the demo).
std::string sign_token(const token_claims& claims, std::string_view secret);

// Webhook signatures as Facebook and GitHub send them: the X-Hub-Signature-256 header is
// "sha256=" + hex(HMAC-SHA256(secret, body)). The check takes the same time whatever differs.
std::string hub_signature(std::string_view body, std::string_view secret);
bool check_hub_signature(std::string_view header, std::string_view body,
                         std::string_view secret) noexcept;

// `*` matches any run of characters, everything else itself.
bool pattern_matches(std::string_view pattern, std::string_view channel) noexcept;
// Channels under "akv:console:" carry the operator's console (its live snapshots): only a
// token with an "admin" claim may subscribe to them, and no one may publish to them but the
// console's own sampler (straight to Redis).
inline constexpr std::string_view console_channel_prefix = "akv:console:";
bool is_console_channel(std::string_view channel) noexcept;
bool may_subscribe(const token_claims& c, std::string_view channel) noexcept;
bool may_publish(const token_claims& c, std::string_view channel) noexcept;
bool may_read_presence(const token_claims& c, std::string_view channel) noexcept;

namespace detail {
// A token for this payload text as it is (HS256 header): for tests of odd claims.
std::string sign_payload(std::string_view payload_json, std::string_view secret);
std::string base64url_encode(std::string_view bytes);
// False on a character outside the base64url alphabet or an impossible length.
bool base64url_decode(std::string_view text, std::string& out);
} // namespace detail

} // namespace akv::gateway

template <> struct boost::system::is_error_code_enum<akv::gateway::token_error> : std::true_type {};
