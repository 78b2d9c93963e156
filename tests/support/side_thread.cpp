#include "support/side_thread.hpp"

#include <exception>

namespace akv::test {

side_thread::side_thread(std::function<void()> step) {
    worker = std::thread([this, step = std::move(step)]() mutable {
        try {
            step();
        } catch (const std::exception& e) {
            failure = e.what();
        }
        done = true;
    });
}

side_thread::~side_thread() {
    if (worker.joinable()) worker.join();
}

} // namespace akv::test
