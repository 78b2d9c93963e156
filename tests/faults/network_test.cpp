// The network misbehaving between the client and a real server (tcp_proxy): a link that
// stalls, connections reset or closed under load, a server that refuses for a while. Timeouts
// must fire, reconnects must happen, nothing may hang, and no acknowledged write may be lost.
#include "support/harness.hpp"
#include "support/read_integer.hpp"
#include "support/tcp_proxy.hpp"

#include <akv/connection.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <gtest/gtest.h>

using namespace akv::test;
using boost::system::error_code;
namespace asio = boost::asio;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

akv::config through(const akv::testing::embedded_server& server, const tcp_proxy& proxy) {
    akv::config cfg = server.config();
    cfg.hosts = {{"127.0.0.1", proxy.port()}};
    cfg.reconnect_wait_min = std::chrono::milliseconds(10);
    cfg.reconnect_wait_max = std::chrono::milliseconds(200);
    return cfg;
}

asio::awaitable<error_code> ping(akv::connection& conn) {
    akv::request req;
    req.push("PING");
    auto [ec, n] = co_await conn.exec(req, akv::ignore, nothrow);
    co_return ec;
}

// Runs ping() until one succeeds; false if none did within `limit`.
bool ping_succeeds_within(asio::io_context& io, akv::connection& conn, std::chrono::milliseconds limit) {
    bool ok = false, running = false;
    return run_until(
        io,
        [&] {
            if (!ok && !running) {
                running = true;
                asio::co_spawn(io, ping(conn), [&](std::exception_ptr, error_code ec) {
                    ok = !ec;
                    running = false;
                });
            }
            return ok;
        },
        limit);
}

} // namespace

// A link that stops moving bytes: requests time out (request_timeout) instead of hanging, the
// health check gives up on the connection, and once bytes flow again requests succeed.
TEST(NetworkFaults, StalledLinkTimesOutRequestsAndRecovers) {
    akv::testing::embedded_server server;
    tcp_proxy proxy(server.port());
    akv::config cfg = through(server, proxy);
    cfg.request_timeout = std::chrono::milliseconds(300);
    cfg.health_check_interval = std::chrono::milliseconds(200);
    asio::io_context io;
    running_connection rc(io, cfg);
    ASSERT_TRUE(ping_succeeds_within(io, rc.conn, 5s));

    proxy.stall(true);
    error_code stalled;
    const auto start = std::chrono::steady_clock::now();
    run_task(io, [&]() -> asio::awaitable<void> { stalled = co_await ping(rc.conn); }(), 10s);
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(stalled, akv::error::timeout) << stalled.message();
    EXPECT_LT(waited, 5s); // the timeout, not the test's deadline, ended it

    // Still stalled: the health check's PING goes unanswered and the connection is dropped.
    const auto connects_before = rc.conn.stats().connects;
    proxy.stall(false);
    ASSERT_TRUE(ping_succeeds_within(io, rc.conn, 10s)) << "no request succeeded after the stall";
    EXPECT_GE(rc.conn.stats().connects, connects_before);
}

// Under 20 x 500 pipelined INCRs the proxy resets every connection (RST) five times: every
// request completes (acknowledged, or failed with connection_lost), every acknowledged INCR is
// in the counter, and the client reconnected each time.
TEST(NetworkFaults, ResetsUnderPipelinedLoadLoseNoAcknowledgedWrite) {
    akv::testing::embedded_server server;
    tcp_proxy proxy(server.port());
    asio::io_context io;
    running_connection rc(io, through(server, proxy));
    ASSERT_TRUE(ping_succeeds_within(io, rc.conn, 5s));

    constexpr int workers = 20, per_worker = 500, resets = 5;
    int acknowledged = 0, lost = 0, other = 0, finished = 0, done_resets = 0;
    for (int w = 0; w < workers; ++w)
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                akv::request incr;
                incr.push("INCR", "counter");
                for (int i = 0; i < per_worker; ++i) {
                    auto [ec, n] = co_await rc.conn.exec(incr, akv::ignore, nothrow);
                    if (!ec)
                        ++acknowledged;
                    else if (ec == akv::error::connection_lost || ec == akv::error::not_connected)
                        ++lost;
                    else
                        ++other;
                    // A reset each time another sixth of the work is acknowledged.
                    if (done_resets < resets && acknowledged >= (done_resets + 1) * workers * per_worker / 6) {
                        ++done_resets;
                        proxy.reset_all();
                    }
                }
            },
            [&](std::exception_ptr e) {
                EXPECT_FALSE(e);
                ++finished;
            });
    ASSERT_TRUE(run_until(io, [&] { return finished == workers; }, 120s))
        << "requests hung: " << finished << " of " << workers << " workers done";
    EXPECT_EQ(done_resets, resets);
    EXPECT_EQ(other, 0);
    EXPECT_EQ(acknowledged + lost, workers * per_worker);
    EXPECT_GE(rc.conn.stats().connects, 1u + resets);

    // Read behind the proxy's back: every acknowledged INCR is there.
    asio::io_context direct_io;
    running_connection direct(direct_io, server.config());
    const long long value = read_integer(direct_io, direct.conn, "counter");
    EXPECT_GE(value, acknowledged);
    EXPECT_LE(value, acknowledged + lost);
    std::printf("resets under load: %d acknowledged, %d lost in flight, counter %lld\n", acknowledged, lost, value);
}

// The server hangs up (FIN) and then refuses connections for a while: requests fail or wait
// without hanging, reconnect attempts back off (no storm), and the first connection after the
// refusal ends serves requests.
TEST(NetworkFaults, RefusedConnectionsBackOffAndRecover) {
    akv::testing::embedded_server server;
    tcp_proxy proxy(server.port());
    akv::config cfg = through(server, proxy);
    cfg.reconnect_wait_min = std::chrono::milliseconds(20);
    cfg.reconnect_wait_max = std::chrono::milliseconds(400);
    cfg.request_timeout = std::chrono::milliseconds(250);
    asio::io_context io;
    running_connection rc(io, cfg);
    ASSERT_TRUE(ping_succeeds_within(io, rc.conn, 5s));

    proxy.refuse(true);
    proxy.close_all();
    const std::size_t accepted_before = proxy.accepted();
    // Two seconds of refusal, with requests arriving all the while: none may hang.
    int failed = 0, succeeded = 0;
    bool done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer t(co_await asio::this_coro::executor);
            const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
            while (std::chrono::steady_clock::now() < end) {
                error_code ec = co_await ping(rc.conn);
                (ec ? failed : succeeded)++;
                t.expires_after(std::chrono::milliseconds(50));
                co_await t.async_wait(nothrow);
            }
        },
        [&](std::exception_ptr) { done = true; });
    ASSERT_TRUE(run_until(io, [&] { return done; }, 20s));
    EXPECT_GT(failed, 0);
    EXPECT_EQ(succeeded, 0);
    const std::size_t attempts = proxy.accepted() - accepted_before;
    EXPECT_GE(attempts, 2u) << "the client stopped trying";
    // Exponential backoff capped at 400 ms: about a dozen attempts in two seconds, not hundreds.
    EXPECT_LE(attempts, 30u) << "a reconnect storm";

    proxy.refuse(false);
    EXPECT_TRUE(ping_succeeds_within(io, rc.conn, 10s)) << "no request succeeded after the refusal ended";
}
