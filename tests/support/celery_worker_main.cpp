// akv_celery_test_worker: one celery::worker with the test tasks (support/celery_tasks.hpp) in
// a process of its own, to be SIGKILLed by tests/integration/celery_test.cpp.
//
//   akv_celery_test_worker REDIS_URL VISIBILITY_MS RESTORE_MS
//
// Prints "ready" once the client is connected and the worker runs; SIGTERM drains and exits 0.
#include "support/celery_tasks.hpp"

#include <akv/config.hpp>
#include <akv/messaging/subscriber.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace asio = boost::asio;

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: akv_celery_test_worker REDIS_URL VISIBILITY_MS RESTORE_MS\n";
        return 2;
    }
    asio::io_context io(1);
    akv::client redis(io.get_executor(), akv::config::from_url(argv[1]));
    akv::queue::celery::worker_options o;
    o.visibility_timeout = std::chrono::milliseconds(std::atol(argv[2]));
    o.restore_interval = std::chrono::milliseconds(std::atol(argv[3]));
    o.shutdown_grace = std::chrono::milliseconds(100);
    akv::queue::celery::worker w(redis, o);
    akv::test::add_celery_test_tasks(w, redis);
    int status = 0;
    asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](auto ec, int) {
        if (!ec) w.stop();
    });
    asio::co_spawn(io, redis.run(), asio::detached);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            akv::request ping;
            ping.push("PING");
            co_await redis.exec(ping, akv::ignore);
            std::printf("ready\n");
            std::fflush(stdout);
            co_await w.run();
        },
        [&](std::exception_ptr e) {
            if (e) status = 1;
            signals.cancel();
            redis.cancel();
        });
    io.run();
    return status;
}
