// Calls from other threads are dispatched to the connection's executor, and completions come
// back on the caller's executor. (Also the TSan target: ./script/test builds it with
// -fsanitize=thread.)
#include "support/harness.hpp"

#include <akv/config.hpp>
#include <akv/connection.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/bind_executor.hpp>

#include <atomic>
#include <thread>

using namespace akv::test;
namespace asio = boost::asio;

TEST(ConnectionThreads, ExecFromOtherThreadsCompletesOnTheCallersExecutor) {
    akv::testing::embedded_server server;
    asio::io_context conn_io(1);
    akv::connection conn(conn_io.get_executor(), server.config());
    std::atomic<bool> run_finished{false};
    asio::co_spawn(conn_io, conn.run(), [&](std::exception_ptr) { run_finished = true; });
    std::thread conn_thread([&] { conn_io.run(); });

    constexpr int threads = 3, coroutines = 50, requests = 100;
    std::atomic<int> correct{0}, wrong_thread{0}, finished{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < threads; ++t) {
        callers.emplace_back([&, t] {
            asio::io_context io(1);
            for (int c = 0; c < coroutines; ++c) {
                asio::co_spawn(
                    io,
                    [&, t, c]() -> asio::awaitable<void> {
                        const auto me = std::this_thread::get_id();
                        const std::string key = std::to_string(t) + ":" + std::to_string(c);
                        akv::request req;
                        req.push("SET", key, key);
                        req.push("GET", key);
                        akv::response<akv::ignore_t, std::string> resp;
                        for (int i = 0; i < requests; ++i) {
                            co_await conn.exec(req, resp);
                            if (std::this_thread::get_id() != me) ++wrong_thread;
                            if (std::get<1>(resp).value() == key) ++correct;
                        }
                    },
                    [&](std::exception_ptr e) {
                        EXPECT_FALSE(e);
                        ++finished;
                    });
            }
            io.run();
        });
    }
    for (auto& th : callers)
        th.join();
    EXPECT_EQ(finished.load(), threads * coroutines);
    EXPECT_EQ(correct.load(), threads * coroutines * requests);
    EXPECT_EQ(wrong_thread.load(), 0);

    conn.cancel(); // from this thread: dispatched to the connection's
    conn_thread.join();
    EXPECT_TRUE(run_finished.load());
}

TEST(ConnectionThreads, CallbackCallersContextKeepsWorkWhileTheRequestIsOut) {
    akv::testing::embedded_server server;
    asio::io_context conn_io(1);
    akv::connection conn(conn_io.get_executor(), server.config());
    asio::co_spawn(conn_io, conn.run(), [](std::exception_ptr) {});
    std::thread conn_thread([&] { conn_io.run(); });

    asio::io_context caller(1);
    akv::request req;
    req.push("ECHO", "back");
    akv::response<std::string> resp;
    bool done = false;
    conn.exec(req, resp,
              asio::bind_executor(caller, [&](boost::system::error_code ec, std::size_t) {
                  EXPECT_FALSE(ec);
                  done = true;
              }));
    caller.run(); // returns only once the completion ran: the request held work on `caller`
    EXPECT_TRUE(done);
    EXPECT_EQ(std::get<0>(resp).value(), "back");

    conn.cancel();
    conn_thread.join();
}
