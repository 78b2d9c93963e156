// A blocking step (a cluster failover, a server restart) on its own thread while the test's
// io_context goes on running the client: `done` tells when it finished, `failure` what it threw.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace akv::test {

struct side_thread {
    explicit side_thread(std::function<void()> step);
    ~side_thread();

    std::thread worker;
    std::atomic<bool> done{false};
    std::string failure;
};

} // namespace akv::test
