// Client-side caching across a Redis restart: the connection's loss drops every entry before
// any cached read is answered, and the history of reads and writes around it has no stale read.
#include "support/cache_history.hpp"
#include "support/eventually.hpp"
#include "support/running_client.hpp"

#include <akv/client.hpp>
#include <akv/testing/embedded_server.hpp>

using namespace akv::test;
namespace asio = boost::asio;

TEST(CacheFaults, HistoryAcrossARedisRestartHasNoStaleRead) {
    // Append-only, so that no acknowledged write is lost by the restart itself.
    akv::testing::embedded_server server({.append_only = true});
    asio::io_context io;
    akv::config cached = server.config();
    cached.cache.kind = akv::cache_options::mode::tracking;
    running_client reader(io, cached);
    running_client writer(io, server.config());
    cache_workload w;
    bool restarted = false;
    w.fault = [&]() -> asio::awaitable<void> {
        // On this thread: a server started by a thread dies with it (PR_SET_PDEATHSIG). The
        // clients see the loss once the loop runs again.
        server.restart();
        restarted = true;
        co_return;
    };
    expect_no_stale_read(io, reader.client, writer.client, w, 1000u, 120s);
    EXPECT_TRUE(restarted);
    const auto s = reader.client.stats();
    EXPECT_GE(s.connections.disconnects, 1u);
    EXPECT_GE(s.cache.flushes, 1u);
    EXPECT_GT(s.cache.hits, 1000u);
}
