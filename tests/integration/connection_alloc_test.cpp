// Steady-state requests allocate nothing for the pipeline itself: buffers, queue slots and
// operation state are reused. Counted by replacing operator new in this test binary only.
#include "support/harness.hpp"

#include <akv/config.hpp>
#include <akv/connection.hpp>
#include <akv/testing/embedded_server.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<std::size_t> allocations{0};
}

void* operator new(std::size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

using namespace akv::test;
namespace asio = boost::asio;

TEST(ConnectionAllocations, SteadyStateExecAllocatesNothing) {
    akv::testing::embedded_server server;
    asio::io_context io(1);
    running_connection rc(io, server.config());
    std::size_t during = 0;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request set, get;
        set.push("SET", "key", std::string(100, 'v'));
        get.push("GET", "key");
        akv::response<std::string> reply;
        for (int i = 0; i < 2000; ++i)
            co_await rc.conn.exec(i % 2 ? get : set, reply); // warm up
        const std::size_t before = allocations.load();
        for (int i = 0; i < 10000; ++i)
            co_await rc.conn.exec(i % 2 ? get : set, reply);
        during = allocations.load() - before;
        EXPECT_EQ(std::get<0>(reply).value(), std::string(100, 'v'));
    }());
    EXPECT_EQ(during, 0u) << during << " allocations in 10,000 requests";
}
