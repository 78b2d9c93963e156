// ACL users and passwords: a refused command is a value, bad credentials a clear error with
// no retry storm.
#include "support/running_client.hpp"

#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

using namespace akv::test;
using boost::system::error_code;
namespace asio = boost::asio;

namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
} // namespace

TEST(Acl, RestrictedUserGetsNopermAsAValue) {
    akv::testing::embedded_server server(
        {.extra_args = {"--user", "reader", "on", ">r3ad", "~public:*", "+@connection", "+get",
                        "+set"}});
    asio::io_context io;
    akv::config cfg = server.config();
    cfg.username = "reader";
    cfg.password = "r3ad";
    running_client rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("SET", "public:a", "1");
        req.push("GET", "secret:b");      // key outside the user's pattern
        req.push("DEL", "public:a");      // command outside the user's set
        req.push("GET", "public:a");
        akv::response<std::string, std::optional<std::string>, long long, std::string> resp;
        co_await rc.client.exec(req, resp);
        EXPECT_EQ(std::get<0>(resp).value(), "OK");
        EXPECT_TRUE(std::get<1>(resp).has_error());
        if (!std::get<1>(resp).has_error()) co_return;
        EXPECT_EQ(std::get<1>(resp).error().code, akv::error::server_error);
        EXPECT_TRUE(std::get<1>(resp).error().message.starts_with("NOPERM"))
            << std::get<1>(resp).error().message;
        EXPECT_TRUE(std::get<2>(resp).has_error());
        if (!std::get<2>(resp).has_error()) co_return;
        EXPECT_TRUE(std::get<2>(resp).error().message.starts_with("NOPERM"));
        // The connection goes on: the refusal was a reply, not a failure.
        EXPECT_EQ(std::get<3>(resp).value(), "1");
        EXPECT_TRUE(rc.client.is_connected());
    }());
}

TEST(Acl, WrongUserPasswordIsAClearErrorWithoutARetryStorm) {
    akv::testing::embedded_server server(
        {.extra_args = {"--user", "app", "on", ">right", "~*", "+@all"}});
    asio::io_context io;
    akv::config cfg = server.config();
    cfg.username = "app";
    cfg.password = "wrong";
    cfg.reconnect_wait_min = std::chrono::milliseconds(10);
    cfg.reconnect_wait_max = std::chrono::milliseconds(500);
    akv::client client(io.get_executor(), cfg);
    int attempts = 0;
    std::string detail;
    client.set_event_handler([&](const akv::client_event& e) {
        if (e.what == akv::client_event::kind::reconnecting) {
            ++attempts;
            detail = e.detail;
        }
    });
    bool finished = false;
    asio::co_spawn(io, client.run(), [&](std::exception_ptr) { finished = true; });
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("PING");
        auto [ec, n] = co_await client.exec(req, akv::ignore, nothrow);
        EXPECT_EQ(ec, akv::error::auth_failed);
    }());
    // Over 1.2 s, with a 10 ms minimum wait, bad credentials are tried at most a few times.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1200);
    run_until(io, [&] { return std::chrono::steady_clock::now() >= until; }, 2s);
    EXPECT_GE(attempts, 1);
    EXPECT_LE(attempts, 4);
    EXPECT_NE(detail.find("WRONGPASS"), std::string::npos) << detail;
    EXPECT_EQ(detail.find("wrong"), std::string::npos) << detail; // the password is not shown
    client.cancel();
    EXPECT_TRUE(run_until(io, [&] { return finished; }, 5s));
}
