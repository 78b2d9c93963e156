#include "support/running_client.hpp"

#include <akv/testing/embedded_server.hpp>
#include <akv/script.hpp>

#include "support/errors.hpp"

#include <array>

using namespace akv::test;

namespace {

// The prelude defines what the bodies use, as lib.lua does for the queue's scripts.
constexpr std::string_view prelude = "local function tagged(text) return text .. '!' end\n";
// Counts its runs in KEYS[1]: a call run twice would show.
constexpr std::string_view echo_body = "redis.call('INCR', KEYS[1])\nreturn tagged(ARGV[1])\n";
constexpr std::string_view refuse_body = "return redis.error_reply('ERR refused ' .. ARGV[1])\n";

asio::awaitable<akv::resp::value> command(akv::client& c, std::string_view name,
                                          std::string_view arg) {
    akv::request req;
    req.push(name, arg);
    akv::response<akv::resp::value> resp;
    co_await c.exec(req, resp);
    co_return std::move(std::get<0>(resp).value());
}

// A reply as text: its value, or "error: " and the message.
std::string text_of(const akv::result<akv::resp::value>& r) {
    return r.has_error() ? "error: " + r.error().message : r.value().str;
}

} // namespace

TEST(Script, APreludeGoesInFrontOfTheBodyInOneSourceAndOneSha1) {
    const akv::script s(prelude, echo_body);
    EXPECT_EQ(s.source(), std::string(prelude) + std::string(echo_body));
    EXPECT_EQ(s.sha1(), akv::script(s.source()).sha1());
    EXPECT_EQ(akv::script("return 1").sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

TEST(Script, RunAloneLoadsItselfAfterScriptFlush) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        const akv::script echo(prelude, echo_body);
        const std::array<std::string_view, 1> keys{"runs"};
        const std::array<std::string_view, 1> args{"hello"};
        for (int round = 0; round < 2; ++round) {
            co_await command(rc.client, "SCRIPT", "FLUSH");
            akv::response<std::string> resp;
            co_await echo.run(rc.client, keys, args, resp);
            EXPECT_EQ(std::get<0>(resp).value(), "hello!");
        }
        EXPECT_EQ((co_await command(rc.client, "GET", "runs")).str, "2");
    }());
}

TEST(ScriptRequest, CallsTheServerForgotRunOnceMoreAmongPlainCommandsTheirRepliesInOrder) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        const akv::script echo(prelude, echo_body);
        const akv::script refuse(prelude, refuse_body);
        co_await command(rc.client, "SCRIPT", "FLUSH");
        const auto requests = [&] { return rc.client.stats().connections.requests_written; };
        const auto written = requests();

        akv::script_request req;
        req.push("SET", "plain", "1");
        req.call(echo, std::array<std::string_view, 1>{"first:runs"}, std::array{"first"});
        req.push("INCR", "plain");
        req.call(refuse, std::array<std::string_view, 1>{"refused:runs"}, std::array{"x"});
        req.call(echo, std::array<std::string_view, 1>{"second:runs"}, std::array{"second"});
        req.push("GET", "plain");
        EXPECT_EQ(req.size(), 6u);
        akv::generic_response replies;
        co_await req.run(rc.client, replies);

        EXPECT_EQ(requests() - written, 2u); // the EVALs went together
        EXPECT_EQ(replies.size(), 6u);
        if (replies.size() != 6) co_return;
        EXPECT_EQ(text_of(replies[0]), "OK");
        EXPECT_EQ(text_of(replies[1]), "first!");
        EXPECT_EQ(text_of(replies[2]), "2");
        EXPECT_TRUE(contains(text_of(replies[3]), "error: ERR refused x"));
        EXPECT_EQ(text_of(replies[4]), "second!");
        EXPECT_EQ(text_of(replies[5]), "2");
        EXPECT_EQ((co_await command(rc.client, "GET", "first:runs")).str, "1");
        EXPECT_EQ((co_await command(rc.client, "GET", "second:runs")).str, "1");
    }());
}

TEST(ScriptRequest, KnownScriptsTakeOneRoundTrip) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        const akv::script echo(prelude, echo_body);
        const std::array<std::string_view, 1> keys{"runs"};
        akv::response<std::string> loaded;
        co_await echo.run(rc.client, keys, std::array{"warm"}, loaded);
        const auto requests = [&] { return rc.client.stats().connections.requests_written; };
        const auto written = requests();

        akv::script_request req;
        req.call(echo, keys, std::array{"a"});
        req.push("GET", "runs");
        req.call(echo, keys, std::array{"b"});
        akv::generic_response replies;
        co_await req.run(rc.client, replies);

        EXPECT_EQ(requests() - written, 1u);
        EXPECT_EQ(replies.size(), 3u);
        if (replies.size() != 3) co_return;
        EXPECT_EQ(text_of(replies[0]), "a!");
        EXPECT_EQ(text_of(replies[1]), "2");
        EXPECT_EQ(text_of(replies[2]), "b!");
    }());
}
