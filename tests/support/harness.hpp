// Running coroutines in tests: a deadline on everything, no sleeps.
#pragma once

#include <akv/connection.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <functional>

namespace akv::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Runs the io_context until `done()` or the deadline; false on timeout.
inline bool run_until(asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        io.run_one_for(20ms);
        if (io.stopped()) io.restart();
    }
    return true;
}

// Spawns `task` and runs the context until it finishes (rethrowing what it threw) or fails
// the test at the deadline.
template <class Task>
void run_task(asio::io_context& io, Task&& task, std::chrono::milliseconds limit = 60s) {
    bool finished = false;
    std::exception_ptr error;
    asio::co_spawn(io, std::forward<Task>(task), [&](std::exception_ptr e) {
        error = e;
        finished = true;
    });
    ASSERT_TRUE(run_until(
        io, [&] { return finished; }, limit))
        << "test coroutine still running after " << limit.count() << " ms";
    if (error) std::rethrow_exception(error);
}

// Runs `conn` with reconnection off (set in its config) and returns what run() threw.
inline boost::system::system_error run_failure(asio::io_context& io, connection& conn) {
    boost::system::system_error failure(boost::system::error_code{}, "run() returned normally");
    run_task(io, [&]() -> asio::awaitable<void> {
        try {
            co_await conn.run();
        } catch (const boost::system::system_error& e) {
            failure = e;
        }
    }());
    return failure;
}

// A connection whose run() is going for the object's lifetime; the destructor stops it and
// waits (bounded) for run() to return, so nothing outlives the connection.
class running_connection {
public:
    running_connection(asio::io_context& io, config cfg)
        : io_(io)
        , conn(io.get_executor(), cfg) {
        asio::co_spawn(io, conn.run(), [this](std::exception_ptr e) {
            run_error = e;
            finished = true;
        });
    }
    ~running_connection() {
        conn.cancel();
        EXPECT_TRUE(run_until(
            io_, [this] { return finished; }, 10s))
            << "run() did not stop";
    }

    asio::io_context& io_;
    connection conn;
    bool finished = false;
    std::exception_ptr run_error;
};

} // namespace akv::test
