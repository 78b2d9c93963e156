// Running coroutines in tests: a deadline on everything, no sleeps.
#pragma once

#include <akv/connection.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <functional>

namespace akv::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Runs the io_context until `done()` or the deadline; false on timeout.
bool run_until(asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds limit);

namespace detail {
// run_task's wait: runs `io` until `finished`, failing the test at the deadline, then rethrows
// `error`.
void wait_for_task(asio::io_context& io, const bool& finished, const std::exception_ptr& error,
                   std::chrono::milliseconds limit);
} // namespace detail

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
    detail::wait_for_task(io, finished, error, limit);
}

// Runs `conn` with reconnection off (set in its config) and returns what run() threw.
boost::system::system_error run_failure(asio::io_context& io, connection& conn);

// A connection whose run() is going for the object's lifetime; the destructor stops it and
// waits (bounded) for run() to return, so nothing outlives the connection.
class running_connection {
public:
    running_connection(asio::io_context& io, config cfg);
    ~running_connection();

    asio::io_context& io_;
    connection conn;
    bool finished = false;
    std::exception_ptr run_error;
};

} // namespace akv::test
