// The C++ side of the Celery tests' tasks (tests/integration/celery/celery_tasks.py is the
// Python side, under the same names): registered on a celery::worker in the test process or
// in akv_celery_test_worker.
//
//   tests.add(x, y)      x + y
//   tests.fail(msg)      raises ValueError(msg)
//   tests.sleep(ms)      waits ms, returns ms; counts starts and ends in the hashes
//                        akvtest:celery:starts / akvtest:celery:ends (task id -> count)
//   tests.retry(times)   retries (10 ms apart) until its retries reach `times`; returns them
//   tests.noop()         null
#pragma once

#include <akv/client.hpp>
#include <akv/queue/celery.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace akv::test {

inline void add_celery_test_tasks(queue::celery::worker& w, akv::client& redis) {
    namespace json = boost::json;
    using queue::celery::task_context;
    w.add_task("tests.add", [](task_context& t) -> asio::awaitable<json::value> {
        const auto& a = t.args();
        if (a.size() != 2 || !a[0].is_int64() || !a[1].is_int64())
            throw queue::celery::task_error("TypeError", "add() takes two integers");
        co_return a[0].get_int64() + a[1].get_int64();
    });
    w.add_task("tests.fail", [](task_context& t) -> asio::awaitable<json::value> {
        const auto& a = t.args();
        throw queue::celery::task_error(
            "ValueError", a.size() == 1 && a[0].is_string() ? std::string(a[0].get_string()) : "");
        co_return nullptr;
    });
    w.add_task("tests.sleep", [&redis](task_context& t) -> asio::awaitable<json::value> {
        const auto& a = t.args();
        const std::int64_t ms = a.size() == 1 && a[0].is_int64() ? a[0].get_int64() : 0;
        request start;
        start.push("HINCRBY", "akvtest:celery:starts", t.message().id, 1);
        co_await redis.exec(start, ignore);
        asio::steady_timer timer(co_await asio::this_coro::executor);
        timer.expires_after(std::chrono::milliseconds(ms));
        co_await timer.async_wait(asio::use_awaitable);
        request end;
        end.push("HINCRBY", "akvtest:celery:ends", t.message().id, 1);
        co_await redis.exec(end, ignore);
        co_return ms;
    });
    w.add_task(
        "tests.retry",
        [](task_context& t) -> asio::awaitable<json::value> {
            const auto& a = t.args();
            const std::int64_t times = a.size() == 1 && a[0].is_int64() ? a[0].get_int64() : 0;
            if (t.message().retries < times) t.retry(std::chrono::milliseconds(10));
            co_return t.message().retries;
        },
        5);
    w.add_task("tests.noop",
               [](task_context&) -> asio::awaitable<json::value> { co_return nullptr; });
}

} // namespace akv::test
