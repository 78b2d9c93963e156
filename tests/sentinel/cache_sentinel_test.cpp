// Client-side caching behind Sentinel: a failover moves the reader to a master that never
// tracked its keys, so every entry goes; the history around it has no stale read.
#include "support/cache_history.hpp"
#include "support/eventually.hpp"
#include "support/running_client.hpp"
#include "support/side_thread.hpp"

#include <akv/client.hpp>
#include <akv/testing/embedded_sentinel.hpp>

#include <memory>

using namespace akv::test;
namespace asio = boost::asio;

TEST(CacheSentinel, HistoryAcrossAFailoverHasNoStaleRead) {
    akv::testing::embedded_sentinel deployment;
    asio::io_context io;
    akv::config cached = deployment.config();
    cached.cache.kind = akv::cache_options::mode::tracking;
    running_client reader(io, cached);
    running_client writer(io, deployment.config());
    cache_workload w;
    akv::endpoint old_master, new_master;
    w.fault = [&]() -> asio::awaitable<void> {
        // Writes pause and reach every replica first: replication is asynchronous, and a
        // write the failover loses would read as stale here though the cache did nothing wrong.
        w.writes_paused = true;
        akv::request wait;
        wait.push("WAIT", deployment.replica_count(), 5000);
        co_await writer.client.exec(wait, akv::ignore);
        old_master = reader.client.remote_endpoint();
        auto failover =
            std::make_unique<side_thread>([&] { new_master = deployment.failover(20s); });
        co_await eventually([&]() -> asio::awaitable<bool> { co_return failover->done.load(); },
                            std::chrono::seconds(40));
        EXPECT_EQ(failover->failure, "");
        // Both clients on the new master before writes go on.
        EXPECT_TRUE(co_await eventually(
            [&]() -> asio::awaitable<bool> {
                co_return reader.client.remote_endpoint() ==
                        new_master&& writer.client.remote_endpoint() ==
                        new_master&& reader.client.is_connected() &&
                    writer.client.is_connected();
            },
            std::chrono::seconds(20)));
        w.writes_paused = false;
    };
    expect_no_stale_read(io, reader.client, writer.client, w, 1000u, 180s);
    EXPECT_NE(old_master, new_master);
    const auto s = reader.client.stats();
    EXPECT_GE(s.cache.flushes, 1u);
    EXPECT_GT(s.cache.hits, 1000u);
}
