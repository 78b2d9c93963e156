// The connection's handshake with no socket: what a new connection sends first, and what the
// server's replies to it mean.
#include <akv/detail/handshake.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using akv::detail::handshake;
using boost::system::error_code;

akv::request commands(std::initializer_list<std::vector<std::string>> list) {
    akv::request r;
    for (const auto& args : list)
        r.push_range(args.front(), std::vector<std::string>(args.begin() + 1, args.end()));
    return r;
}

akv::result<akv::resp::value> ok(std::string text = "OK") {
    return akv::resp::value{akv::resp::type::simple_string, std::move(text), {}};
}

akv::result<akv::resp::value> refused(std::string text) {
    return akv::error_info{akv::error::server_error, std::move(text)};
}

akv::result<akv::resp::value> role(std::string name) {
    using akv::resp::type;
    return akv::resp::value{
        type::array, {}, {{type::blob_string, std::move(name), {}}, {type::number, "0", {}}}};
}

const akv::endpoint server{"10.0.0.7", 6380};

} // namespace

TEST(Handshake, PlainHelloWhenNothingIsConfigured) {
    akv::config cfg;
    handshake hs(cfg, "", akv::request{});
    EXPECT_EQ(hs.get_request().payload(), commands({{"HELLO", "3"}}).payload());
}

TEST(Handshake, AuthUsesTheDefaultUserWhenOnlyAPasswordIsGiven) {
    akv::config cfg;
    cfg.password = "pw";
    handshake hs(cfg, "", akv::request{});
    EXPECT_EQ(hs.get_request().payload(),
              commands({{"HELLO", "3", "AUTH", "default", "pw"}}).payload());
}

TEST(Handshake, AuthAndNameRideOnHelloThenSelectRoleAndSetup) {
    akv::config cfg;
    cfg.username = "app";
    cfg.password = "pw";
    cfg.client_name = "worker-1";
    cfg.db = 3;
    akv::request setup;
    setup.push("READONLY");
    handshake hs(cfg, "slave", setup);
    EXPECT_EQ(hs.get_request().payload(),
              commands({{"HELLO", "3", "AUTH", "app", "pw", "SETNAME", "worker-1"},
                        {"SELECT", "3"},
                        {"ROLE"},
                        {"READONLY"}})
                  .payload());
}

TEST(Handshake, NameWithoutPassword) {
    akv::config cfg;
    cfg.client_name = "gw";
    handshake hs(cfg, "", akv::request{});
    EXPECT_EQ(hs.get_request().payload(), commands({{"HELLO", "3", "SETNAME", "gw"}}).payload());
}

TEST(Handshake, AcceptedRepliesMeanConnected) {
    akv::config cfg;
    cfg.db = 1;
    handshake hs(cfg, "master", akv::request{});
    std::string why;
    EXPECT_FALSE(hs.judge({ok(), ok(), role("master")}, server, why));
    EXPECT_TRUE(why.empty()) << why;
}

TEST(Handshake, WrongPasswordIsAnAuthFailure) {
    akv::config cfg;
    cfg.password = "wrong";
    handshake hs(cfg, "", akv::request{});
    std::string why;
    const error_code ec = hs.judge(
        {refused("WRONGPASS invalid username-password pair or user is disabled.")}, server, why);
    EXPECT_EQ(ec, akv::error::auth_failed);
    EXPECT_EQ(why, "authentication refused: WRONGPASS invalid username-password pair or user is "
                   "disabled.");
    EXPECT_EQ(why.find("wrong"), std::string::npos) << "the password leaked: " << why;
}

TEST(Handshake, NoSuchUserAndNoPermissionAreAuthFailures) {
    akv::config cfg;
    cfg.username = "ghost";
    cfg.password = "pw";
    handshake hs(cfg, "", akv::request{});
    std::string why;
    EXPECT_EQ(hs.judge({refused("NOAUTH HELLO must be called with the client already "
                                "authenticated")},
                       server, why),
              akv::error::auth_failed);
    EXPECT_EQ(hs.judge({refused("NOPERM this user has no permissions to run the 'hello' command")},
                       server, why),
              akv::error::auth_failed);
    EXPECT_TRUE(why.starts_with("authentication refused: NOPERM")) << why;
}

TEST(Handshake, AServerWithoutResp3IsNamedAsSuch) {
    handshake hs(akv::config{}, "", akv::request{});
    std::string why;
    EXPECT_EQ(hs.judge({refused("ERR unknown command 'HELLO', with args beginning with: '3' ")},
                       server, why),
              akv::error::handshake_failed);
    EXPECT_TRUE(why.starts_with("server does not speak RESP3 (HELLO needs Redis 6 or later)"))
        << why;
}

TEST(Handshake, EachRefusedCommandIsNamed) {
    akv::config cfg;
    cfg.db = 99;
    akv::request setup;
    setup.push("READONLY");
    setup.push("CLIENT", "NO-EVICT", "on");
    handshake hs(cfg, "master", setup);
    std::string why;
    EXPECT_EQ(hs.judge({refused("ERR bad"), ok(), role("master"), ok(), ok()}, server, why),
              akv::error::handshake_failed);
    EXPECT_EQ(why, "HELLO refused: ERR bad");
    EXPECT_EQ(hs.judge({ok(), refused("ERR DB index is out of range"), role("master"), ok(), ok()},
                       server, why),
              akv::error::handshake_failed);
    EXPECT_EQ(why, "SELECT 99 refused: ERR DB index is out of range");
    EXPECT_EQ(hs.judge({ok(), ok(), refused("NOPERM role"), ok(), ok()}, server, why),
              akv::error::handshake_failed);
    EXPECT_EQ(why, "ROLE refused: NOPERM role");
    EXPECT_EQ(hs.judge({ok(), ok(), role("master"), ok(), refused("ERR syntax")}, server, why),
              akv::error::handshake_failed);
    EXPECT_EQ(why, "setup command 2 refused: ERR syntax");
}

TEST(Handshake, AWrongRoleNamesTheServerAndBothRoles) {
    handshake hs(akv::config{}, "master", akv::request{});
    std::string why;
    EXPECT_EQ(hs.judge({ok(), role("slave")}, server, why), akv::error::wrong_role);
    EXPECT_EQ(why, "server 10.0.0.7:6380 has role slave, expected master");
}

TEST(Handshake, AMalformedRoleReplyIsAWrongRole) {
    handshake hs(akv::config{}, "master", akv::request{});
    std::string why;
    EXPECT_EQ(hs.judge({ok(), ok("master")}, server, why), akv::error::wrong_role);
    EXPECT_EQ(why, "server 10.0.0.7:6380 has role ?, expected master");
}

TEST(Handshake, TooFewRepliesFailWithoutReadingPastThem) {
    handshake hs(akv::config{}, "master", akv::request{});
    std::string why;
    EXPECT_EQ(hs.judge({ok()}, server, why), akv::error::handshake_failed);
    EXPECT_EQ(why, "handshake: 1 replies to 2 commands");
}
