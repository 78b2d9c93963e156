// The gateway's connection tokens: HS256 JWTs, checked without I/O.
#include <akv/gateway/token.hpp>

#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>

using namespace akv::gateway;
using namespace std::chrono_literals;

namespace {
const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
const std::int64_t now_s = 1'800'000'000;

token_claims alice() {
    token_claims c;
    c.subject = "alice";
    c.expires = now_s + 60;
    c.channels = {"news.*", "post:42"};
    c.publish = {"post:42"};
    return c;
}

// The error a verification ends with, and its message ("" when it passed).
std::pair<boost::system::error_code, std::string> refusal(std::string_view token,
                                                          std::string_view secret = "s3cret") {
    try {
        verify_token(token, secret, now);
    } catch (const boost::system::system_error& e) {
        return {e.code(), e.what()};
    }
    return {};
}

std::string part(std::string_view json) {
    return detail::base64url_encode(json);
}
} // namespace

TEST(GatewayToken, SignedTokenVerifiesWithItsClaims) {
    const auto token = sign_token(alice(), "s3cret");
    const auto c = verify_token(token, "s3cret", now);
    EXPECT_EQ(c.subject, "alice");
    EXPECT_EQ(c.expires, now_s + 60);
    EXPECT_EQ(c.channels, alice().channels);
    EXPECT_EQ(c.publish, alice().publish);
}

TEST(GatewayToken, KnownTokenFromAnotherLibraryPassesItsSignatureCheck) {
    // jwt.io's HS256 example (secret "your-256-bit-secret"): it has no "exp", so the check
    // that follows the signature refuses it: the signature itself matched.
    const std::string jwt =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
        "aWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    EXPECT_EQ(refusal(jwt, "your-256-bit-secret").first, token_error::missing_claim);
    EXPECT_EQ(refusal(jwt, "another secret").first, token_error::bad_signature);
}

TEST(GatewayToken, WrongSecretOrChangedPayloadIsABadSignature) {
    const auto token = sign_token(alice(), "s3cret");
    EXPECT_EQ(refusal(token, "guess").first, token_error::bad_signature);
    auto forged = alice();
    forged.channels = {"*"};
    const auto other = sign_token(forged, "attacker");
    // Alice's header and signature around the attacker's payload.
    const auto d1 = token.find('.'), d2 = token.rfind('.');
    const auto o1 = other.find('.'), o2 = other.rfind('.');
    const std::string spliced = token.substr(0, d1) + other.substr(o1, o2 - o1) + token.substr(d2);
    EXPECT_EQ(refusal(spliced).first, token_error::bad_signature);
}

TEST(GatewayToken, AChangedLastCharacterIsRefusedToo) {
    // 32 signature bytes are 43 base64url characters: the last one holds 4 bits and 2 of
    // padding. Setting a padding bit must not leave a token that still verifies.
    const auto token = sign_token(alice(), "s3cret");
    std::string changed = token;
    const auto at =
        std::string_view("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
            .find(changed.back());
    changed.back() = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[at ^ 1];
    EXPECT_NE(changed, token);
    EXPECT_TRUE(refusal(changed).first) << "accepted " << changed;
}

TEST(GatewayToken, OnlyHs256IsAccepted) {
    const std::string payload = part(R"({"sub":"x","exp":1900000000})");
    EXPECT_EQ(refusal(part(R"({"alg":"none"})") + "." + payload + ".").first,
              token_error::bad_algorithm);
    EXPECT_EQ(refusal(part(R"({"alg":"RS256"})") + "." + payload + ".c2ln").first,
              token_error::bad_algorithm);
    EXPECT_EQ(refusal(part(R"({"typ":"JWT"})") + "." + payload + ".c2ln").first,
              token_error::bad_algorithm);
}

TEST(GatewayToken, ExpiryAndNotBeforeAreEnforced) {
    auto c = alice();
    c.expires = now_s;
    const auto [code, message] = refusal(sign_token(c, "s3cret"));
    EXPECT_EQ(code, token_error::expired);
    EXPECT_NE(message.find("expired at 1800000000"), std::string::npos) << message;
    c = alice();
    c.not_before = now_s + 10;
    EXPECT_EQ(refusal(sign_token(c, "s3cret")).first, token_error::not_yet_valid);
    c.not_before = now_s;
    EXPECT_EQ(refusal(sign_token(c, "s3cret")).first, boost::system::error_code{});
}

TEST(GatewayToken, MalformedTokensAreNamedNeverThrownOtherwise) {
    const std::vector<std::string> bad = {"",
                                          "abc",
                                          "a.b",
                                          "a.b.c.d",
                                          "!!!.e30.sig",
                                          part("[]") + ".e30.c2ln",
                                          part(R"({"alg":"HS256"})") + ".%%%.c2ln",
                                          part(R"({"alg":"HS256"})") + ".e30.***",
                                          part("not json") + ".e30.c2ln",
                                          "a.b.c"};
    for (const auto& t : bad) {
        const auto [code, message] = refusal(t);
        EXPECT_TRUE(code == token_error::malformed || code == token_error::bad_algorithm ||
                    code == token_error::bad_signature)
            << "\"" << t << "\": " << code.message();
        EXPECT_EQ(message.rfind("token: ", 0), 0u) << message;
        EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
    }
}

TEST(GatewayToken, ClaimsOfTheWrongTypeOrMissingAreRefused) {
    auto with = [](std::string_view json) { return refusal(detail::sign_payload(json, "s3cret")); };
    EXPECT_EQ(with(R"({"exp":1900000000})").first, token_error::missing_claim);
    EXPECT_EQ(with(R"({"sub":"","exp":1900000000})").first, token_error::missing_claim);
    EXPECT_EQ(with(R"({"sub":"x"})").first, token_error::missing_claim);
    EXPECT_EQ(with(R"({"sub":7,"exp":1900000000})").first, token_error::missing_claim);
    EXPECT_EQ(with(R"({"sub":"x","exp":"soon"})").first, token_error::malformed);
    const auto [code, message] = with(R"({"sub":"x","exp":1900000000,"channels":"news"})");
    EXPECT_EQ(code, token_error::malformed);
    EXPECT_NE(message.find("\"channels\""), std::string::npos) << message;
    EXPECT_EQ(with(R"({"sub":"x","exp":1900000000,"publish":[1]})").first, token_error::malformed);
    EXPECT_EQ(with(R"([1,2])").first, token_error::malformed);
    EXPECT_EQ(with(R"({"sub":"x","exp":1900000000})").first, boost::system::error_code{});
}

TEST(GatewayToken, PatternsMatchWithStars) {
    EXPECT_TRUE(pattern_matches("news.*", "news.sport"));
    EXPECT_TRUE(pattern_matches("news.*", "news."));
    EXPECT_FALSE(pattern_matches("news.*", "news"));
    EXPECT_TRUE(pattern_matches("*", "anything"));
    EXPECT_TRUE(pattern_matches("a*b*c", "aXXbYYc"));
    EXPECT_FALSE(pattern_matches("a*b*c", "aXXbYY"));
    EXPECT_TRUE(pattern_matches("post:42", "post:42"));
    EXPECT_FALSE(pattern_matches("post:42", "post:420"));
    EXPECT_TRUE(pattern_matches("**x", "x"));
    // Long inputs stay fast (no exponential backtracking).
    const std::string many(5000, 'a');
    EXPECT_FALSE(pattern_matches("*a*a*a*a*a*a*b", many));
    const auto c = alice();
    EXPECT_TRUE(may_subscribe(c, "news.tech"));
    EXPECT_FALSE(may_subscribe(c, "admin"));
    EXPECT_TRUE(may_publish(c, "post:42"));
    EXPECT_FALSE(may_publish(c, "news.tech"));
    EXPECT_FALSE(may_subscribe(token_claims{}, "news.tech")); // no list: nothing allowed
}

TEST(GatewayToken, Base64UrlRoundTripsAndRefusesOtherAlphabets) {
    EXPECT_EQ(detail::base64url_encode("f"), "Zg");
    EXPECT_EQ(detail::base64url_encode("fo"), "Zm8");
    EXPECT_EQ(detail::base64url_encode("foo"), "Zm9v");
    EXPECT_EQ(detail::base64url_encode("foob"), "Zm9vYg");
    EXPECT_EQ(detail::base64url_encode("\xfb\xff"), "-_8");
    std::string out;
    EXPECT_TRUE(detail::base64url_decode("Zm9vYg", out));
    EXPECT_EQ(out, "foob");
    EXPECT_FALSE(detail::base64url_decode("Zm9v+g", out)); // '+' is plain base64
    EXPECT_FALSE(detail::base64url_decode("Zm9vY", out));  // impossible length
    for (int n = 0; n < 64; ++n) {
        std::string bytes;
        for (int i = 0; i < n; ++i)
            bytes += static_cast<char>(i * 37 + n);
        EXPECT_TRUE(detail::base64url_decode(detail::base64url_encode(bytes), out));
        EXPECT_EQ(out, bytes);
    }
}

// The console's claim: true (read and act) or "read"; anything else is a malformed token.
TEST(GatewayToken, TheAdminClaimIsTrueOrRead) {
    for (const std::string admin : {"write", "read", ""}) {
        token_claims c = alice();
        c.admin = admin;
        EXPECT_EQ(verify_token(sign_token(c, "s3cret"), "s3cret", now).admin, admin) << admin;
    }
    auto with = [](std::string_view json) { return refusal(detail::sign_payload(json, "s3cret")); };
    EXPECT_EQ(with(R"({"sub":"x","exp":1900000000,"admin":false})").first,
              boost::system::error_code{});
    const auto [code, message] = with(R"({"sub":"x","exp":1900000000,"admin":"root"})");
    EXPECT_EQ(code, token_error::malformed);
    EXPECT_NE(message.find("\"admin\" must be true, false, \"read\" or \"write\""),
              std::string::npos)
        << message;
}

// The console's channels: subscribed to only with an "admin" claim, published to by no token.
TEST(GatewayToken, ConsoleChannelsAreTheConsolesOwn) {
    token_claims c = alice();
    c.channels = {"*"};
    c.publish = {"*"};
    EXPECT_FALSE(may_subscribe(c, "akv:console:snapshot"));
    EXPECT_FALSE(may_publish(c, "akv:console:snapshot"));
    EXPECT_TRUE(may_subscribe(c, "news"));
    c.admin = "read";
    EXPECT_TRUE(may_subscribe(c, "akv:console:snapshot"));
    EXPECT_FALSE(may_publish(c, "akv:console:snapshot"));
}
