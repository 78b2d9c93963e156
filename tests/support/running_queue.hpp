// A task-queue worker or scheduler whose run() goes on for the object's lifetime: stop() and
// wait for the drain on destruction (see running_client).
#pragma once

#include "support/harness.hpp"

#include <akv/queue/scheduler.hpp>
#include <akv/queue/worker.hpp>

namespace akv::test {

// Runs `Runner::run()` from construction; stop() + wait (20 s at most) on destruction.
template <class Runner> struct running {
    template <class... Args>
    running(boost::asio::io_context& io, Args&&... args)
        : io_(io)
        , runner(std::forward<Args>(args)...) {
        boost::asio::co_spawn(io, runner.run(), [this](std::exception_ptr e) {
            failure = e;
            finished = true;
        });
    }
    ~running() {
        runner.stop();
        EXPECT_TRUE(run_until(io_, [this] { return finished; }, std::chrono::seconds(20)));
        EXPECT_FALSE(failure);
    }
    boost::asio::io_context& io_;
    Runner runner;
    bool finished = false;
    std::exception_ptr failure;
};

struct running_worker : running<queue::worker> {
    running_worker(boost::asio::io_context& io, client& c, std::string queue, queue::handler h,
                   queue::worker_options o = {}, messaging::subscriber* events = nullptr)
        : running(io, c, std::move(queue), std::move(h), o, events)
        , w(runner) {}
    queue::worker& w;
};

struct running_scheduler : running<queue::scheduler> {
    running_scheduler(boost::asio::io_context& io, client& c, std::string queue,
                      queue::scheduler_options o = {})
        : running(io, c, std::move(queue), o)
        , s(runner) {}
    queue::scheduler& s;
};

} // namespace akv::test
