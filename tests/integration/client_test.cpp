// akv::client: ordinary commands on the shared connection, blocking ones on a pool.
#include "support/running_client.hpp"

#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <ctime>
#include <optional>

using namespace akv::test;
using namespace boost::asio::experimental::awaitable_operators;
using boost::system::error_code;
namespace asio = boost::asio;

namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

} // namespace

TEST(Client, BlockingCommandDoesNotStallTheSharedConnection) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        std::vector<std::string> order;
        auto pop = [&]() -> asio::awaitable<void> {
            akv::request blpop;
            blpop.push("BLPOP", "jobs", 5);
            akv::response<std::optional<std::vector<std::string>>> resp;
            co_await rc.client.exec(blpop, resp);
            order.push_back("popped " + std::get<0>(resp).value().value().at(1));
        };
        auto push = [&]() -> asio::awaitable<void> {
            // While BLPOP blocks, the shared connection still answers at once.
            akv::request ping;
            ping.push("PING");
            co_await rc.client.exec(ping, akv::ignore);
            order.push_back("pinged");
            akv::request lpush;
            lpush.push("LPUSH", "jobs", "job-1");
            co_await rc.client.exec(lpush, akv::ignore);
        };
        co_await (pop() && push());
        EXPECT_EQ(order, (std::vector<std::string>{"pinged", "popped job-1"}));
        EXPECT_EQ(rc.client.stats().blocking_connections, 1u);
    }());
}

TEST(Client, CancelledBlockingCommandRetiresItsConnection) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request blpop;
        blpop.push("BLPOP", "never", 0); // blocks forever server-side
        asio::steady_timer timer(io, std::chrono::milliseconds(50));
        auto outcome =
            co_await (rc.client.exec(blpop, akv::ignore, nothrow) || timer.async_wait(nothrow));
        EXPECT_EQ(outcome.index(), 1u);
        // The blocked connection is not reused: a new BLPOP gets a fresh one and its answer.
        akv::request push;
        push.push("LPUSH", "q2", "x");
        co_await rc.client.exec(push, akv::ignore);
        akv::request blpop2;
        blpop2.push("BLPOP", "q2", 1);
        akv::response<std::optional<std::vector<std::string>>> resp;
        co_await rc.client.exec(blpop2, resp);
        EXPECT_EQ(std::get<0>(resp).value().value().at(1), "x");
    }());
}

// client::cancel() while blocking commands are out: they complete with an error (the pooled
// connections they hold go once released, not before: ASan caught a use after free here).
TEST(Client, CancelWithBlockingCommandsOutCompletesThem) {
    akv::testing::embedded_server server;
    asio::io_context io;
    akv::client c(io.get_executor(), server.config());
    bool run_over = false;
    asio::co_spawn(io, c.run(), [&](std::exception_ptr) { run_over = true; });
    int completed = 0, failed = 0;
    for (int i = 0; i < 3; ++i)
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                akv::request blpop;
                blpop.push("BLPOP", "never", 0);
                auto [ec, n] = co_await c.exec(blpop, akv::ignore, nothrow);
                ++completed;
                if (ec) ++failed;
            },
            asio::detached);
    ASSERT_TRUE(run_until(io, [&] { return c.stats().blocking_connections == 3; }, 10s));
    c.cancel();
    ASSERT_TRUE(run_until(io, [&] { return completed == 3 && run_over && c.stats().blocking_connections == 0; }, 10s))
        << completed << " completed, run over " << run_over << ", " << c.stats().blocking_connections << " pooled";
    EXPECT_EQ(failed, 3);
}

TEST(Client, PoolSizeBoundsBlockingConnections) {
    akv::testing::embedded_server server;
    asio::io_context io;
    auto cfg = server.config();
    cfg.pool_size = 2;
    running_client rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        int done = 0;
        auto pop = [&](std::string key) -> asio::awaitable<void> {
            akv::request blpop;
            blpop.push("BLPOP", key, 5);
            akv::response<std::optional<std::vector<std::string>>> resp;
            co_await rc.client.exec(blpop, resp);
            ++done;
        };
        auto feed = [&]() -> asio::awaitable<void> {
            akv::request push;
            push.push("RPUSH", "a", 1);
            push.push("RPUSH", "b", 1);
            push.push("RPUSH", "c", 1);
            co_await rc.client.exec(push, akv::ignore);
        };
        co_await (pop("a") && pop("b") && pop("c") && feed());
        EXPECT_EQ(done, 3);
        EXPECT_LE(rc.client.stats().blocking_connections, 2u);
    }());
}

TEST(Client, PoolWaitTimeoutIsAClearError) {
    akv::testing::embedded_server server;
    asio::io_context io;
    auto cfg = server.config();
    cfg.pool_size = 1;
    cfg.pool_wait_timeout = std::chrono::milliseconds(50);
    running_client rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request slow;
        slow.push("BLPOP", "nothing", "0.5");
        akv::request second;
        second.push("BLPOP", "nothing", "0.5");
        auto [a_ec, a_n, b] = co_await (rc.client.exec(slow, akv::ignore, nothrow) &&
                                        rc.client.exec(second, akv::ignore, nothrow));
        auto [b_ec, b_n] = b;
        EXPECT_FALSE(a_ec);
        EXPECT_EQ(b_ec, akv::error::pool_exhausted);
    }());
}

TEST(Client, ManyWaitersShareOneBlockingConnectionInTurn) {
    akv::testing::embedded_server server;
    asio::io_context io;
    auto cfg = server.config();
    cfg.pool_size = 1;
    running_client rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        int done = 0;
        auto pop = [&]() -> asio::awaitable<void> {
            akv::request blpop;
            blpop.push("BLPOP", "q", "0.05"); // times out: nil
            co_await rc.client.exec(blpop, akv::ignore);
            ++done;
        };
        const auto cpu_before = std::clock();
        co_await (pop() && pop() && pop() && pop());
        EXPECT_EQ(done, 4);
        EXPECT_EQ(rc.client.stats().blocking_connections, 1u);
        // Four 50 ms waits in turn: waiting must not spin the CPU meanwhile.
        EXPECT_LT(double(std::clock() - cpu_before) / CLOCKS_PER_SEC, 0.1);
    }());
}
