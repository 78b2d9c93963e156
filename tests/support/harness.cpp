#include "support/harness.hpp"

namespace akv::test {

bool run_until(asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        io.run_one_for(20ms);
        if (io.stopped()) io.restart();
    }
    return true;
}

void detail::wait_for_task(asio::io_context& io, const bool& finished,
                           const std::exception_ptr& error, std::chrono::milliseconds limit) {
    ASSERT_TRUE(run_until(
        io, [&] { return finished; }, limit))
        << "test coroutine still running after " << limit.count() << " ms";
    if (error) std::rethrow_exception(error);
}

boost::system::system_error run_failure(asio::io_context& io, connection& conn) {
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

running_connection::running_connection(asio::io_context& io, config cfg)
    : io_(io)
    , conn(io.get_executor(), cfg) {
    asio::co_spawn(io, conn.run(), [this](std::exception_ptr e) {
        run_error = e;
        finished = true;
    });
}

running_connection::~running_connection() {
    conn.cancel();
    EXPECT_TRUE(run_until(
        io_, [this] { return finished; }, 10s))
        << "run() did not stop";
}

} // namespace akv::test
