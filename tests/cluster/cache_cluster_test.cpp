// Client-side caching on a cluster: tracking on every node connection, and a slot migration
// under load: the entries of the moved slot go when the reader learns the slot's new master, and
// the history has no stale read.
#include "support/cache_history.hpp"
#include "support/eventually.hpp"
#include "support/running_client.hpp"
#include "support/side_thread.hpp"

#include <akv/client.hpp>
#include <akv/cluster_slot.hpp>
#include <akv/testing/embedded_cluster.hpp>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace akv::test;
namespace asio = boost::asio;

TEST(CacheCluster, HistoryAcrossASlotMigrationHasNoStaleRead) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    akv::config cached = cluster.config();
    cached.cache.kind = akv::cache_options::mode::tracking;
    running_client reader(io, cached);
    running_client writer(io, cluster.config());
    cache_workload w;
    w.prefix = "{cache}:"; // one slot: MGETs stay on one node, and the migration moves them all
    const std::uint16_t slot = akv::cluster_slot(w.prefix);
    const std::size_t from = cluster.master_of(slot);
    const auto masters = cluster.masters();
    const std::size_t to = masters.at(0) == from ? masters.at(1) : masters.at(0);
    bool moved = false;
    w.fault = [&]() -> asio::awaitable<void> {
        auto migrate = std::make_unique<side_thread>([&] {
            cluster.begin_migration(slot, from, to);
            cluster.migrate_keys(slot, 10);
            cluster.finish_migration(slot, to);
        });
        co_await eventually([&]() -> asio::awaitable<bool> { co_return migrate->done.load(); },
                            std::chrono::seconds(60));
        EXPECT_EQ(migrate->failure, "");
        moved = migrate->done && migrate->failure.empty();
    };
    expect_no_stale_read(io, reader.client, writer.client, w, 1000u, 180s);
    EXPECT_TRUE(moved);
    EXPECT_EQ(cluster.master_of(slot), to);
    const auto s = reader.client.stats();
    EXPECT_GT(s.cache.hits, 1000u);
    EXPECT_GT(s.cache.invalidations, 0u);
}

// Every mode on a cluster: reads on several nodes kept, another client's writes announced by
// the node that owns the key, and fresh reads after.
TEST(CacheCluster, EveryModeTracksOnTheNodeOfTheKey) {
    akv::testing::embedded_cluster cluster;
    for (auto mode : {akv::cache_options::mode::tracking, akv::cache_options::mode::broadcast,
                      akv::cache_options::mode::optin}) {
        asio::io_context io;
        akv::config cached = cluster.config();
        cached.cache.kind = mode;
        running_client reader(io, cached);
        running_client writer(io, cluster.config());
        invalidation_log told(reader.client);
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::request::options o;
            o.cache = true;
            std::vector<std::string> keys;
            for (int i = 0; i < 12; ++i) // spread over the three masters
                keys.push_back("mode" + std::to_string(int(mode)) + ":" + std::to_string(i));
            for (const auto& k : keys) {
                akv::request set;
                set.push("SET", k, "1");
                co_await writer.client.exec(set, akv::ignore);
            }
            auto read_all = [&](const std::string& want) -> asio::awaitable<void> {
                for (const auto& k : keys) {
                    akv::request get(o);
                    get.push("GET", k);
                    akv::response<std::string> resp;
                    co_await reader.client.exec(get, resp);
                    EXPECT_EQ(std::get<0>(resp).value(), want) << k;
                }
            };
            co_await read_all("1");
            const auto misses = reader.client.stats().cache.misses;
            co_await read_all("1");
            EXPECT_EQ(reader.client.stats().cache.misses, misses) << int(mode);
            for (const auto& k : keys) {
                akv::request set;
                set.push("SET", k, "2");
                co_await writer.client.exec(set, akv::ignore);
            }
            EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
                co_return std::all_of(keys.begin(), keys.end(),
                                      [&](const std::string& k) { return told.seen.count(k) > 0; });
            })) << int(mode);
            co_await read_all("2");
        }());
    }
}
