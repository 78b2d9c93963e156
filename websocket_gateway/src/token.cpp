#include <akv/gateway/token.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/system/system_error.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>

namespace akv::gateway {

namespace {

class category : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "akv.gateway.token"; }
    std::string message(int ev) const override {
        switch (static_cast<token_error>(ev)) {
        case token_error::malformed:
            return "malformed token";
        case token_error::bad_algorithm:
            return "token algorithm is not HS256";
        case token_error::bad_signature:
            return "token signature does not match";
        case token_error::expired:
            return "token expired";
        case token_error::not_yet_valid:
            return "token not valid yet";
        case token_error::missing_claim:
            return "token lacks a required claim";
        }
        return "unknown token error";
    }
};

[[noreturn]] void fail(token_error e, const std::string& what) {
    throw boost::system::system_error(make_error_code(e), "token: " + what);
}

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string hmac_sha256(std::string_view key, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int length = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(),
              &length))
        fail(token_error::bad_signature, "HMAC-SHA256 failed");
    return std::string(reinterpret_cast<const char*>(mac.data()), length);
}

std::vector<std::string> string_list(const boost::json::object& o, std::string_view name) {
    std::vector<std::string> out;
    const auto* v = o.if_contains(name);
    if (!v) return out;
    const auto* array = v->if_array();
    if (!array) fail(token_error::malformed, "claim \"" + std::string(name) + "\" is not an array");
    for (const auto& item : *array) {
        const auto* s = item.if_string();
        if (!s)
            fail(token_error::malformed,
                 "claim \"" + std::string(name) + "\" holds something other than strings");
        out.emplace_back(*s);
    }
    return out;
}

std::int64_t seconds(const boost::json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    if (!v) return 0;
    if (const auto* i = v->if_int64()) return *i;
    if (const auto* u = v->if_uint64())
        return *u > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX
                                                          : static_cast<std::int64_t>(*u);
    if (const auto* d = v->if_double()) return static_cast<std::int64_t>(*d);
    fail(token_error::malformed, "claim \"" + std::string(name) + "\" is not a number");
}

boost::json::object json_part(std::string_view part, const char* what) {
    std::string text;
    if (!detail::base64url_decode(part, text))
        fail(token_error::malformed, std::string(what) + " is not base64url");
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec || !v.is_object())
        fail(token_error::malformed, std::string(what) + " is not a JSON object");
    return std::move(v.as_object());
}

} // namespace

const boost::system::error_category& token_category() noexcept {
    static const category instance; // immutable
    return instance;
}

namespace detail {

std::string base64url_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const auto n = (std::uint32_t(std::uint8_t(bytes[i])) << 16) |
                       (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) |
                       std::uint8_t(bytes[i + 2]);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    if (i + 1 == bytes.size()) {
        const auto n = std::uint32_t(std::uint8_t(bytes[i])) << 16;
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
    } else if (i + 2 == bytes.size()) {
        const auto n = (std::uint32_t(std::uint8_t(bytes[i])) << 16) |
                       (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
    }
    return out;
}

bool base64url_decode(std::string_view text, std::string& out) {
    if (text.size() % 4 == 1) return false;
    out.clear();
    out.reserve(text.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        const auto at = alphabet.find(c);
        if (at == std::string_view::npos) return false;
        acc = (acc << 6) | static_cast<std::uint32_t>(at);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    // The bits left over must be zero: otherwise several texts decode to one signature, and a
    // changed token would still verify.
    return bits == 0 || (acc & ((1u << bits) - 1)) == 0;
}

} // namespace detail

token_claims verify_token(std::string_view token, std::string_view secret,
                          std::chrono::system_clock::time_point now) {
    const auto dot1 = token.find('.');
    const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
        fail(token_error::malformed, "expected three dot-separated parts");
    const auto header = json_part(token.substr(0, dot1), "header");
    const auto* alg = header.if_contains("alg");
    if (!alg || !alg->is_string() || alg->as_string() != "HS256")
        fail(token_error::bad_algorithm, "header \"alg\" must be \"HS256\"");
    std::string signature;
    if (!detail::base64url_decode(token.substr(dot2 + 1), signature))
        fail(token_error::malformed, "signature is not base64url");
    const std::string expected = hmac_sha256(secret, token.substr(0, dot2));
    if (signature.size() != expected.size() ||
        CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) != 0)
        fail(token_error::bad_signature, "signature does not match");

    const auto payload = json_part(token.substr(dot1 + 1, dot2 - dot1 - 1), "payload");
    token_claims c;
    const auto* sub = payload.if_contains("sub");
    if (!sub || !sub->is_string() || sub->as_string().empty())
        fail(token_error::missing_claim, "no \"sub\" (subject)");
    c.subject = sub->as_string();
    if (!payload.contains("exp")) fail(token_error::missing_claim, "no \"exp\" (expiry)");
    c.expires = seconds(payload, "exp");
    c.not_before = seconds(payload, "nbf");
    c.channels = string_list(payload, "channels");
    c.publish = string_list(payload, "publish");
    c.presence = string_list(payload, "presence");
    c.subs = string_list(payload, "subs");
    if (const auto* info = payload.if_contains("info")) {
        if (!info->is_object()) fail(token_error::malformed, "claim \"info\" must be an object");
        c.info = boost::json::serialize(*info);
    }
    if (const auto* admin = payload.if_contains("admin")) {
        if (admin->is_bool())
            c.admin = admin->get_bool() ? "write" : "";
        else if (admin->is_string() &&
                 (admin->get_string() == "read" || admin->get_string() == "write"))
            c.admin = admin->get_string();
        else
            fail(token_error::malformed,
                 "claim \"admin\" must be true, false, \"read\" or \"write\"");
    }
    const auto t = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    if (t >= c.expires)
        fail(token_error::expired,
             "expired at " + std::to_string(c.expires) + " (now " + std::to_string(t) + ")");
    if (c.not_before != 0 && t < c.not_before)
        fail(token_error::not_yet_valid, "valid from " + std::to_string(c.not_before));
    return c;
}

std::string sign_token(const token_claims& c, std::string_view secret) {
    boost::json::object payload;
    payload["sub"] = c.subject;
    payload["exp"] = c.expires;
    if (c.not_before != 0) payload["nbf"] = c.not_before;
    boost::json::array channels(c.channels.begin(), c.channels.end());
    payload["channels"] = std::move(channels);
    boost::json::array publish(c.publish.begin(), c.publish.end());
    payload["publish"] = std::move(publish);
    if (!c.presence.empty())
        payload["presence"] = boost::json::array(c.presence.begin(), c.presence.end());
    if (!c.subs.empty()) payload["subs"] = boost::json::array(c.subs.begin(), c.subs.end());
    if (!c.info.empty()) {
        boost::system::error_code ec;
        boost::json::value info = boost::json::parse(c.info, ec);
        if (ec || !info.is_object())
            fail(token_error::malformed, "claims.info must be a JSON object");
        payload["info"] = std::move(info);
    }
    if (c.admin == "write")
        payload["admin"] = true;
    else if (!c.admin.empty())
        payload["admin"] = c.admin;
    return detail::sign_payload(boost::json::serialize(payload), secret);
}

std::string detail::sign_payload(std::string_view payload_json, std::string_view secret) {
    std::string signing_input = base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
    signing_input += '.';
    signing_input += base64url_encode(payload_json);
    const std::string mac = hmac_sha256(secret, signing_input);
    return signing_input + "." + base64url_encode(mac);
}

bool pattern_matches(std::string_view pattern, std::string_view channel) noexcept {
    // Iterative glob with one backtrack point: linear in practice, no recursion to exhaust.
    std::size_t p = 0, c = 0, star = std::string_view::npos, resume = 0;
    while (c < channel.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            resume = c;
        } else if (p < pattern.size() && pattern[p] == channel[c]) {
            ++p;
            ++c;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            c = ++resume;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*')
        ++p;
    return p == pattern.size();
}

namespace {
bool any_matches(const std::vector<std::string>& patterns, std::string_view channel) noexcept {
    for (const auto& p : patterns)
        if (pattern_matches(p, channel)) return true;
    return false;
}
} // namespace

bool is_console_channel(std::string_view channel) noexcept {
    return channel.starts_with(console_channel_prefix);
}

bool may_subscribe(const token_claims& c, std::string_view channel) noexcept {
    if (is_console_channel(channel) && c.admin.empty()) return false;
    return any_matches(c.channels, channel);
}

bool may_publish(const token_claims& c, std::string_view channel) noexcept {
    return !is_console_channel(channel) && any_matches(c.publish, channel);
}

bool may_read_presence(const token_claims& c, std::string_view channel) noexcept {
    return any_matches(c.presence, channel);
}

std::string hub_signature(std::string_view body, std::string_view secret) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "sha256=";
    for (unsigned char c : hmac_sha256(secret, body)) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

bool check_hub_signature(std::string_view header, std::string_view body,
                         std::string_view secret) noexcept {
    try {
        const std::string expected = hub_signature(body, secret);
        return header.size() == expected.size() &&
               CRYPTO_memcmp(header.data(), expected.data(), expected.size()) == 0;
    } catch (...) {
        return false;
    }
}

} // namespace akv::gateway
