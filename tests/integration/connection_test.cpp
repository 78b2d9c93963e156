// The pipelined connection against a real redis-server.
#include "support/harness.hpp"

#include <akv/connection.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <map>
#include <optional>
#include <vector>

using namespace akv::test;
using namespace boost::asio::experimental::awaitable_operators;
using boost::system::error_code;
namespace asio = boost::asio;

namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
}

TEST(Connection, PipelineOfTenWithOneErrorReturnsTheOtherNine) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_connection rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        for (int i = 0; i < 10; ++i) {
            if (i == 4)
                req.push("LPUSH", "k0", "x"); // k0 holds a string: WRONGTYPE
            else
                req.push("SET", "k" + std::to_string(i), i);
        }
        akv::generic_response resp;
        co_await rc.conn.exec(req, resp);
        EXPECT_EQ(resp.size(), 10u);
        for (std::size_t i = 0; i < resp.size(); ++i) {
            if (i == 4) {
                EXPECT_TRUE(resp[i].has_error());
                EXPECT_EQ(resp[i].error().message.substr(0, 9), "WRONGTYPE");
            } else {
                EXPECT_EQ(resp[i].value().str, "OK") << i;
            }
        }
    }());
}

TEST(Connection, TypedRepliesInOneRoundTrip) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_connection rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("SET", "name", "ada");
        req.push("INCRBY", "n", 41);
        req.push("GET", "missing");
        req.push("RPUSH", "list", "a", "b");
        req.push("LRANGE", "list", 0, -1);
        req.push("HSET", "h", "f1", 1, "f2", 2);
        req.push("HGETALL", "h");
        req.push("GET", "name");
        akv::response<std::string, long long, std::optional<std::string>, int,
                      std::vector<std::string>, int, std::map<std::string, int>, std::string>
            resp;
        const std::size_t bytes = co_await rc.conn.exec(req, resp);
        EXPECT_GT(bytes, 0u);
        EXPECT_EQ(std::get<0>(resp).value(), "OK");
        EXPECT_EQ(std::get<1>(resp).value(), 41);
        EXPECT_FALSE(std::get<2>(resp).value().has_value());
        EXPECT_EQ(std::get<4>(resp).value(), (std::vector<std::string>{"a", "b"}));
        EXPECT_EQ(std::get<6>(resp).value(), (std::map<std::string, int>{{"f1", 1}, {"f2", 2}}));
        EXPECT_EQ(std::get<7>(resp).value(), "ada");
    }());
}

TEST(Connection, ResponseOfTheWrongSizeIsRefusedBeforeSending) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_connection rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("SET", "a", 1);
        req.push("SET", "b", 2);
        akv::response<std::string> resp;
        auto [ec, n] = co_await rc.conn.exec(req, resp, nothrow);
        EXPECT_EQ(ec, akv::error::incompatible_size);
        akv::request empty;
        std::tie(ec, n) = co_await rc.conn.exec(empty, akv::ignore, nothrow);
        EXPECT_EQ(ec, akv::error::empty_request);
        EXPECT_EQ(rc.conn.stats().requests_written, 0u);
    }());
}

TEST(Connection, TenThousandConcurrentCoroutinesGetTheirOwnReplies) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_connection rc(io, server.config());
    constexpr int coroutines = 10000;
    int correct = 0, finished = 0;
    int disconnects = 0;
    rc.conn.set_event_handler([&](const akv::connection_event& e) {
        if (e.what == akv::connection_event::kind::disconnected) {
            ++disconnects;
            ADD_FAILURE() << "disconnected: " << e.reason.message() << ": " << e.detail;
        }
    });
    ASSERT_TRUE(run_until(
        io, [&] { return rc.conn.is_connected(); }, 10s));
    const auto written_before = rc.conn.stats().requests_written; // the HELLO
    for (int i = 0; i < coroutines; ++i) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                const std::string key = "key:" + std::to_string(i);
                const std::string value = "value-" + std::to_string(i * 7);
                akv::request req;
                req.push("SET", key, value);
                req.push("GET", key);
                akv::response<akv::ignore_t, std::string> resp;
                co_await rc.conn.exec(req, resp);
                if (std::get<1>(resp).value() == value) ++correct;
            },
            [&](std::exception_ptr e) {
                ++finished;
                if (e) {
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                        ADD_FAILURE() << ex.what();
                    }
                }
            });
    }
    ASSERT_TRUE(run_until(
        io, [&] { return finished == coroutines; }, 60s));
    EXPECT_EQ(correct, coroutines);
    EXPECT_EQ(disconnects, 0);
    // Every request written once and each of its two commands answered once.
    EXPECT_EQ(rc.conn.stats().requests_written - written_before,
              static_cast<std::uint64_t>(coroutines));
    EXPECT_GE(rc.conn.stats().replies, 2u * coroutines);
    rc.conn.set_event_handler(nullptr);
}

TEST(Connection, TimeoutLeavesTheConnectionUsable) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_connection rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request slow;
        slow.push("BLPOP", "nothing", "0.3"); // occupies the server side of this connection
        akv::request quick({.timeout = std::chrono::milliseconds(50)});
        quick.push("GET", "k");
        akv::request after;
        after.push("ECHO", "after");
        akv::response<std::optional<std::vector<std::string>>> slow_resp;
        akv::response<std::optional<std::string>> quick_resp;
        akv::response<std::string> after_resp;

        auto outcome = co_await (rc.conn.exec(slow, slow_resp, nothrow) &&
                                 rc.conn.exec(quick, quick_resp, nothrow));
        auto [slow_ec, slow_n, quick_outcome] = outcome;
        auto [quick_ec, quick_n] = quick_outcome;
        EXPECT_FALSE(slow_ec);
        EXPECT_EQ(quick_ec, akv::error::timeout);
        // The timed-out request's reply came later and was discarded, not given to the next.
        co_await rc.conn.exec(after, after_resp);
        EXPECT_EQ(std::get<0>(after_resp).value(), "after");
    }());
}

TEST(Connection, CancellationLeavesTheConnectionUsable) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_connection rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request slow;
        slow.push("BLPOP", "nothing", "0.3");
        asio::steady_timer timer(io, std::chrono::milliseconds(30));
        auto outcome =
            co_await (rc.conn.exec(slow, akv::ignore, nothrow) || timer.async_wait(nothrow));
        EXPECT_EQ(outcome.index(), 1u); // the timer won, exec was cancelled
        akv::request ping;
        ping.push("PING");
        akv::response<std::string> pong;
        co_await rc.conn.exec(ping, pong);
        EXPECT_EQ(std::get<0>(pong).value(), "PONG");
    }());
}

TEST(Connection, CancelledBeforeWriteIsNeverSent) {
    akv::testing::embedded_server server;
    asio::io_context io;
    // Not running: the request waits in the queue, unwritten, until cancelled.
    akv::connection conn(io.get_executor(), server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("SET", "never", 1);
        asio::steady_timer timer(io, std::chrono::milliseconds(20));
        auto outcome = co_await (conn.exec(req, akv::ignore, nothrow) || timer.async_wait(nothrow));
        EXPECT_EQ(outcome.index(), 1u);
        EXPECT_EQ(conn.stats().requests_written, 0u);
    }());
    conn.cancel();
    run_until(
        io, [] { return false; }, 50ms);
}

TEST(Connection, FailIfNotConnectedFailsAtOnce) {
    asio::io_context io;
    akv::connection conn(io.get_executor(), akv::config::from_url("redis://127.0.0.1:1"));
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req({.fail_if_not_connected = true});
        req.push("PING");
        auto [ec, n] = co_await conn.exec(req, akv::ignore, nothrow);
        EXPECT_EQ(ec, akv::error::not_connected);
    }());
}

TEST(Connection, WrongPasswordIsAClearError) {
    akv::testing::embedded_server server({.password = "right"});
    asio::io_context io;
    auto cfg = server.config();
    cfg.password = "wrong";
    cfg.reconnect_wait_min = cfg.reconnect_wait_max = std::chrono::milliseconds(0);
    akv::connection conn(io.get_executor(), cfg);
    const auto failure = run_failure(io, conn);
    const std::string what = failure.what();
    EXPECT_EQ(failure.code(), akv::error::auth_failed);
    EXPECT_NE(what.find("WRONGPASS"), std::string::npos) << what;
    EXPECT_EQ(what.find("wrong"), std::string::npos) << what; // the password is never shown
}

TEST(Connection, WrongPasswordFailsQueuedRequestsInsteadOfHanging) {
    akv::testing::embedded_server server({.password = "right"});
    asio::io_context io;
    auto cfg = server.config();
    cfg.password = "wrong";
    running_connection rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("PING");
        auto [ec, n] = co_await rc.conn.exec(req, akv::ignore, nothrow);
        EXPECT_EQ(ec, akv::error::auth_failed);
        EXPECT_NE(rc.conn.last_error_message().find("WRONGPASS"), std::string::npos);
    }());
}

TEST(Connection, PasswordAndDatabaseFromConfig) {
    akv::testing::embedded_server server({.password = "s3cret"});
    asio::io_context io;
    auto cfg = server.config();
    cfg.db = 3;
    cfg.client_name = "akv-test";
    running_connection rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("SET", "where", "db3");
        req.push("CLIENT", "GETNAME");
        req.push("CLIENT", "INFO");
        akv::response<std::string, std::string, std::string> resp;
        co_await rc.conn.exec(req, resp);
        EXPECT_EQ(std::get<1>(resp).value(), "akv-test");
        EXPECT_NE(std::get<2>(resp).value().find(" db=3 "), std::string::npos);
    }());
}

TEST(Connection, UnixSocket) {
    akv::testing::embedded_server server;
    asio::io_context io;
    akv::config cfg;
    cfg.unix_socket = server.unix_socket_path();
    running_connection rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("PING");
        akv::response<std::string> resp;
        co_await rc.conn.exec(req, resp);
        EXPECT_EQ(std::get<0>(resp).value(), "PONG");
    }());
}

TEST(Connection, PushesArriveOnThePushChannel) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_connection sub(io, server.config());
    running_connection pub(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request subscribe;
        subscribe.push("SUBSCRIBE", "news");
        co_await sub.conn.exec(subscribe, akv::ignore);
        auto confirmation = co_await sub.conn.receive_push();
        EXPECT_EQ(confirmation.elements.at(0).str, "subscribe");
        akv::request publish;
        publish.push("PUBLISH", "news", "hello");
        akv::response<int> receivers;
        co_await pub.conn.exec(publish, receivers);
        EXPECT_EQ(std::get<0>(receivers).value(), 1);
        auto message = co_await sub.conn.receive_push();
        EXPECT_EQ(message.elements.size(), 3u);
        if (message.elements.size() == 3) {
            EXPECT_EQ(message.elements[0].str, "message");
            EXPECT_EQ(message.elements[1].str, "news");
            EXPECT_EQ(message.elements[2].str, "hello");
        }
        // Regular replies still work on a subscribed RESP3 connection.
        akv::request ping;
        ping.push("PING");
        akv::response<std::string> pong;
        co_await sub.conn.exec(ping, pong);
        EXPECT_EQ(std::get<0>(pong).value(), "PONG");
    }());
}

TEST(Connection, BusyConnectionIsNeverJudgedDead) {
    akv::testing::embedded_server server;
    asio::io_context io;
    auto cfg = server.config();
    cfg.health_check_interval = std::chrono::milliseconds(50);
    running_connection rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        // Keep requests flowing for ten health-check intervals.
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
        akv::request req;
        req.push("INCR", "n");
        while (std::chrono::steady_clock::now() < until)
            co_await rc.conn.exec(req, akv::ignore);
        EXPECT_EQ(rc.conn.stats().health_pings, 0u);
        EXPECT_EQ(rc.conn.stats().disconnects, 0u);
    }());
}

TEST(Connection, EventsReportConnectAndDisconnect) {
    akv::testing::embedded_server server;
    asio::io_context io;
    std::vector<akv::connection_event::kind> seen;
    auto cfg = server.config();
    cfg.reconnect_wait_min = std::chrono::milliseconds(10);
    cfg.reconnect_wait_max = std::chrono::milliseconds(50);
    running_connection rc(io, cfg);
    rc.conn.set_event_handler([&](const akv::connection_event& e) { seen.push_back(e.what); });
    ASSERT_TRUE(run_until(
        io, [&] { return rc.conn.is_connected(); }, 10s));
    server.restart();
    ASSERT_TRUE(run_until(
        io, [&] { return rc.conn.stats().connects >= 2; }, 10s));
    using k = akv::connection_event::kind;
    ASSERT_GE(seen.size(), 3u);
    EXPECT_EQ(seen[0], k::connected);
    EXPECT_EQ(seen[1], k::disconnected);
    EXPECT_EQ(seen[2], k::reconnecting);
    EXPECT_EQ(seen.back(), k::connected);
}

TEST(Connection, PushQueueDropsTheOldestWhenFullAndCounts) {
    akv::testing::embedded_server server;
    asio::io_context io;
    auto cfg = server.config();
    cfg.push_queue_capacity = 5;
    running_connection sub(io, cfg);
    running_connection pub(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request subscribe;
        subscribe.push("SUBSCRIBE", "c");
        subscribe.push("PING"); // answered after the subscription took effect
        co_await sub.conn.exec(subscribe, akv::ignore);
        akv::request publish;
        for (int i = 0; i < 20; ++i)
            publish.push("PUBLISH", "c", "m" + std::to_string(i));
        co_await pub.conn.exec(publish, akv::ignore);
    }());
    // The confirmation and 20 messages arrive; nobody reads them.
    ASSERT_TRUE(run_until(
        io, [&] { return sub.conn.stats().pushes == 21; }, 10s));
    EXPECT_EQ(sub.conn.stats().pushes_dropped, 16u);
    run_task(io, [&]() -> asio::awaitable<void> {
        auto oldest_kept = co_await sub.conn.receive_push();
        EXPECT_EQ(oldest_kept.elements.at(2).str, "m15");
    }());
}

TEST(Connection, RunningTwiceIsRefused) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_connection rc(io, server.config());
    ASSERT_TRUE(run_until(io, [&] { return rc.conn.is_connected(); }, 10s));
    const auto failure = run_failure(io, rc.conn);
    EXPECT_EQ(failure.code(), asio::error::already_started);
    EXPECT_TRUE(rc.conn.is_connected()); // the first run() goes on
}
