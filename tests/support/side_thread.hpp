// A blocking step (a cluster failover, a server restart) on its own thread while the test's
// io_context goes on running the client: `done` tells when it finished, `failure` what it threw.
#pragma once

#include <atomic>
#include <exception>
#include <string>
#include <thread>

namespace akv::test {

struct side_thread {
    template <class F> explicit side_thread(F step) {
        worker = std::thread([this, step]() mutable {
            try {
                step();
            } catch (const std::exception& e) {
                failure = e.what();
            }
            done = true;
        });
    }
    ~side_thread() {
        if (worker.joinable()) worker.join();
    }
    std::thread worker;
    std::atomic<bool> done{false};
    std::string failure;
};

} // namespace akv::test
