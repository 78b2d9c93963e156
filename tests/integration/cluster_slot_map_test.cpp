// slot_map on the CLUSTER SHARDS and CLUSTER SLOTS replies of a real one-node cluster.
#include "support/harness.hpp"

#include <akv/cluster/slot_map.hpp>
#include <akv/cluster_slot.hpp>
#include <akv/config.hpp>
#include <akv/connection.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <string>
#include <vector>

using namespace akv::test;
namespace asio = boost::asio;

namespace {

std::string reply_text(const akv::result<akv::resp::value>& reply) {
    return reply.has_error() ? reply.error().message : reply.value().str;
}

} // namespace

TEST(ClusterSlotMap, ParsesShardsAndSlotsOfAOneNodeCluster) {
    akv::testing::embedded_server_options options;
    options.cluster_enabled = true;
    akv::testing::embedded_server server(options);
    const akv::endpoint self{server.host(), server.port()};

    asio::io_context io;
    running_connection rc(io, server.config());
    akv::generic_response setup;
    akv::generic_response replies;
    bool cluster_ok = false;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request add;
        add.push("CLUSTER", "ADDSLOTSRANGE", 0, 16383);
        add.push("CLUSTER", "MYID");
        co_await rc.conn.exec(add, setup);
        // The node says ok once it has seen its slots through its own cron (about a second).
        asio::steady_timer pause(io);
        for (int attempt = 0; attempt < 200 && !cluster_ok; ++attempt) {
            akv::request info;
            info.push("CLUSTER", "INFO");
            akv::response<std::string> state;
            co_await rc.conn.exec(info, state);
            cluster_ok = std::get<0>(state).value().find("cluster_state:ok") != std::string::npos;
            pause.expires_after(std::chrono::milliseconds(50));
            if (!cluster_ok) co_await pause.async_wait(asio::use_awaitable);
        }
        akv::request maps;
        maps.push("CLUSTER", "SHARDS");
        maps.push("CLUSTER", "SLOTS");
        co_await rc.conn.exec(maps, replies);
    }());
    ASSERT_EQ(setup.size(), 2u);
    ASSERT_EQ(reply_text(setup[0]), "OK");
    const std::string my_id = reply_text(setup[1]);
    ASSERT_TRUE(cluster_ok) << server.log_tail();
    ASSERT_EQ(replies.size(), 2u);
    ASSERT_TRUE(replies[0].has_value()) << replies[0].error().message;
    ASSERT_TRUE(replies[1].has_value()) << replies[1].error().message;

    // Nobody has met this node, so it does not know its own address: the origin host stands in.
    akv::cluster::slot_map from_shards;
    akv::cluster::slot_map from_slots;
    EXPECT_NE(akv::cluster::slot_map::from_shards(replies[0].value(), from_shards), std::nullopt);
    ASSERT_EQ(
        akv::cluster::slot_map::from_shards(replies[0].value(), from_shards, false, server.host()),
        std::nullopt);
    ASSERT_EQ(
        akv::cluster::slot_map::from_slots(replies[1].value(), from_slots, false, server.host()),
        std::nullopt);

    for (const auto* map : {&from_shards, &from_slots}) {
        EXPECT_EQ(map->covered_slots(), 16384u);
        EXPECT_EQ(map->masters(), std::vector<akv::endpoint>{self});
        EXPECT_EQ(map->nodes(), std::vector<akv::endpoint>{self});
        std::size_t served = 0;
        for (std::uint32_t slot = 0; slot < akv::cluster_slots; ++slot) {
            const auto* shard = map->owner(static_cast<std::uint16_t>(slot));
            if (shard != nullptr && shard->master == self && shard->master_id == my_id &&
                shard->replicas.empty())
                ++served;
        }
        EXPECT_EQ(served, 16384u);
    }
}
