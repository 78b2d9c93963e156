// The connection when things go wrong: server killed, malformed replies, silence.
#include "support/fake_server.hpp"
#include "support/harness.hpp"
#include "support/read_integer.hpp"

#include <akv/connection.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

using namespace akv::test;
using boost::system::error_code;
namespace asio = boost::asio;

namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

akv::config fast_reconnect(akv::config cfg) {
    cfg.reconnect_wait_min = std::chrono::milliseconds(5);
    cfg.reconnect_wait_max = std::chrono::milliseconds(50);
    return cfg;
}
} // namespace

TEST(ConnectionFaults, ServerKilledMidLoadLosesNoAcknowledgedWrite) {
    akv::testing::embedded_server server({.append_only = true});
    asio::io_context io;
    running_connection rc(io, fast_reconnect(server.config()));

    constexpr int workers = 50;
    constexpr int per_worker = 200;
    int acknowledged = 0, lost = 0, other = 0, finished = 0, killed_at = -1;
    bool restarted = false;

    for (int w = 0; w < workers; ++w) {
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                akv::request incr;
                incr.push("INCR", "counter");
                for (int i = 0; i < per_worker; ++i) {
                    auto [ec, n] = co_await rc.conn.exec(incr, akv::ignore, nothrow);
                    if (!ec)
                        ++acknowledged;
                    else if (ec == akv::error::connection_lost)
                        ++lost; // written, outcome unknown: allowed, and counted
                    else
                        ++other;
                    if (acknowledged == workers * per_worker / 3 && killed_at < 0) {
                        killed_at = acknowledged;
                        server.kill();  // SIGKILL: AOF (fsync always) keeps what was acked
                        server.start(); // same port; the client must come back by itself
                        restarted = true;
                    }
                }
            },
            [&](std::exception_ptr e) {
                EXPECT_FALSE(e);
                ++finished;
            });
    }
    ASSERT_TRUE(run_until(
        io, [&] { return finished == workers; }, 120s))
        << "requests hung after the restart: " << finished << " of " << workers << " done";
    EXPECT_TRUE(restarted);
    EXPECT_EQ(other, 0);
    EXPECT_EQ(acknowledged + lost, workers * per_worker);
    EXPECT_GT(acknowledged, killed_at) << "nothing completed after the reconnect";
    EXPECT_GE(rc.conn.stats().connects, 2u);

    const long long value = read_integer(io, rc.conn, "counter");
    // Every acknowledged INCR is there; a lost one may or may not have happened.
    EXPECT_GE(value, acknowledged);
    EXPECT_LE(value, acknowledged + lost);
}

TEST(ConnectionFaults, UnwrittenRequestsCompleteAfterReconnect) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_connection rc(io, fast_reconnect(server.config()));
    ASSERT_TRUE(run_until(
        io, [&] { return rc.conn.is_connected(); }, 10s));
    server.kill();
    // Queue requests while the server is gone: they wait, unwritten, for the reconnect.
    int done = 0;
    std::vector<std::string> values(20);
    for (int i = 0; i < 20; ++i) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                akv::request req;
                req.push("ECHO", std::to_string(i));
                akv::response<std::string> resp;
                co_await rc.conn.exec(req, resp);
                values[i] = std::get<0>(resp).value();
            },
            [&](std::exception_ptr e) {
                EXPECT_FALSE(e);
                ++done;
            });
    }
    ASSERT_TRUE(run_until(
        io, [&] { return !rc.conn.is_connected(); }, 10s));
    server.start();
    ASSERT_TRUE(run_until(
        io, [&] { return done == 20; }, 20s));
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(values[i], std::to_string(i));
}

TEST(ConnectionFaults, MalformedReplyIsAProtocolErrorAndTheConnectionRecovers) {
    asio::io_context io;
    akv::test::fake_server fake(io, [](const std::string& req, int connection) -> std::string {
        if (req.find("HELLO") != std::string::npos) return fake_server::hello_reply();
        if (connection == 1) return "?this is not RESP\r\n";
        return "+PONG\r\n";
    });
    akv::config cfg =
        fast_reconnect(akv::config::from_url("redis://127.0.0.1:" + std::to_string(fake.port())));
    std::vector<akv::connection_event> events;
    running_connection rc(io, cfg);
    rc.conn.set_event_handler([&](const akv::connection_event& e) { events.push_back(e); });
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request ping;
        ping.push("PING");
        akv::response<std::string> resp;
        auto [ec, n] = co_await rc.conn.exec(ping, resp, nothrow);
        EXPECT_EQ(ec, akv::error::connection_lost); // written, then the connection was dropped
        // The next one goes over a fresh connection.
        co_await rc.conn.exec(ping, resp);
        EXPECT_EQ(std::get<0>(resp).value(), "PONG");
    }());
    EXPECT_EQ(fake.connections(), 2);
    bool saw_protocol_error = false;
    for (const auto& e : events) {
        if (e.what == akv::connection_event::kind::disconnected &&
            e.reason == akv::error::resp_protocol) {
            saw_protocol_error = true;
            EXPECT_NE(e.detail.find("unexpected type byte 0x3f"), std::string::npos) << e.detail;
        }
    }
    EXPECT_TRUE(saw_protocol_error);
}

TEST(ConnectionFaults, IdempotentRequestIsRetriedAfterAMalformedReply) {
    asio::io_context io;
    akv::test::fake_server fake(io, [](const std::string& req, int connection) -> std::string {
        if (req.find("HELLO") != std::string::npos) return fake_server::hello_reply();
        if (connection == 1) return "$-7\r\n";
        return "$5\r\nvalue\r\n";
    });
    running_connection rc(io, fast_reconnect(akv::config::from_url("redis://127.0.0.1:" +
                                                                   std::to_string(fake.port()))));
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request get({.idempotent = true});
        get.push("GET", "k");
        akv::response<std::string> resp;
        co_await rc.conn.exec(get, resp);
        EXPECT_EQ(std::get<0>(resp).value(), "value");
    }());
}

TEST(ConnectionFaults, SilentServerFailsTheHealthCheck) {
    asio::io_context io;
    akv::test::fake_server fake(io, [](const std::string& req, int) -> std::string {
        if (req.find("HELLO") != std::string::npos) return fake_server::hello_reply();
        return ""; // accepts everything, answers nothing
    });
    auto cfg = akv::config::from_url("redis://127.0.0.1:" + std::to_string(fake.port()));
    cfg.health_check_interval = std::chrono::milliseconds(30);
    cfg.reconnect_wait_min = cfg.reconnect_wait_max = std::chrono::milliseconds(0);
    akv::connection conn(io.get_executor(), cfg);
    const auto failure = run_failure(io, conn);
    EXPECT_EQ(failure.code(), akv::error::health_check_timeout) << failure.what();
    EXPECT_EQ(conn.stats().health_pings, 1u);
}

TEST(ConnectionFaults, ConnectTimeoutIsReported) {
    asio::io_context io;
    // A server that accepts but never answers HELLO.
    akv::test::fake_server fake(io, [](const std::string&, int) { return std::string(); });
    auto cfg = akv::config::from_url("redis://127.0.0.1:" + std::to_string(fake.port()));
    cfg.connect_timeout = std::chrono::milliseconds(50);
    cfg.reconnect_wait_min = cfg.reconnect_wait_max = std::chrono::milliseconds(0);
    akv::connection conn(io.get_executor(), cfg);
    const auto failure = run_failure(io, conn);
    EXPECT_EQ(failure.code(), akv::error::connect_timeout) << failure.what();
    EXPECT_NE(std::string(failure.what()).find("50 ms"), std::string::npos) << failure.what();
}

TEST(ConnectionFaults, RefusedConnectionNamesTheAddress) {
    asio::io_context io;
    auto cfg = akv::config::from_url("redis://127.0.0.1:1");
    cfg.reconnect_wait_min = cfg.reconnect_wait_max = std::chrono::milliseconds(0);
    akv::connection conn(io.get_executor(), cfg);
    const auto failure = run_failure(io, conn);
    EXPECT_EQ(failure.code(), asio::error::connection_refused);
    EXPECT_NE(std::string(failure.what()).find("127.0.0.1:1"), std::string::npos) << failure.what();
}
