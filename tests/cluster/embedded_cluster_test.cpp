#include <akv/cluster_slot.hpp>
#include <akv/config.hpp>
#include <akv/error.hpp>
#include <akv/testing/embedded_cluster.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using akv::testing::embedded_cluster;
using akv::testing::embedded_cluster_options;
using steady_clock = std::chrono::steady_clock;

long long ms_since(steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - start)
        .count();
}

// The slots node i says it owns: the ranges at the end of its own CLUSTER NODES line.
std::size_t own_slot_count(const embedded_cluster& cluster, std::size_t i) {
    const std::string nodes = cluster.command(i, {"CLUSTER", "NODES"});
    const auto myself = nodes.find("myself");
    const auto line_start =
        nodes.rfind('\n', myself) == std::string::npos ? 0 : nodes.rfind('\n', myself) + 1;
    const std::string line = nodes.substr(line_start, nodes.find('\n', myself) - line_start);
    std::size_t count = 0;
    std::size_t field = 0;
    for (std::size_t pos = 0; pos < line.size();) {
        auto end = line.find(' ', pos);
        if (end == std::string::npos) end = line.size();
        const std::string token = line.substr(pos, end - pos);
        if (++field > 8 && !token.empty() && token[0] != '[') {
            const auto dash = token.find('-');
            count += dash == std::string::npos ? 1
                                               : std::stoul(token.substr(dash + 1)) -
                                                     std::stoul(token.substr(0, dash)) + 1;
        }
        pos = end + 1;
    }
    return count;
}

std::string info_field(const std::string& info, const std::string& key) {
    const auto at = info.find(key + ":");
    if (at == std::string::npos) return {};
    const auto start = at + key.size() + 1;
    return info.substr(start, info.find("\r\n", start) - start);
}

// Keys that all hash to one slot: the hash tag decides.
std::vector<std::string> keys_in_one_slot(std::string_view tag, std::size_t count) {
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < count; ++i)
        keys.push_back("{" + std::string(tag) + "}:" + std::to_string(i));
    return keys;
}

// Whether node i's CLUSTER SLOTS names the node on `port` (as master or replica).
bool slots_list_port(const embedded_cluster& cluster, std::size_t i, std::uint16_t port) {
    return cluster.command(i, {"CLUSTER", "SLOTS"}).find("\n:" + std::to_string(port) + "\n") !=
           std::string::npos;
}

std::size_t other_master(const embedded_cluster& cluster, std::size_t master) {
    for (const auto m : cluster.masters())
        if (m != master) return m;
    ADD_FAILURE() << "no master other than " << master;
    return master;
}

std::string moved_to(const embedded_cluster& cluster, std::uint16_t slot, std::size_t node) {
    return "-MOVED " + std::to_string(slot) +
           " 127.0.0.1:" + std::to_string(cluster.node(node).port());
}

TEST(EmbeddedCluster, ComesUpWithThreeMastersSplittingTheSlotsAndAReplicaEach) {
    const auto start = steady_clock::now();
    embedded_cluster cluster;
    std::cout << "cluster ready in " << ms_since(start) << " ms\n";

    ASSERT_EQ(cluster.size(), 6u);
    EXPECT_EQ(cluster.masters(), (std::vector<std::size_t>{0, 1, 2}));
    std::size_t total = 0;
    for (std::size_t m = 0; m < 3; ++m) {
        const auto owned = own_slot_count(cluster, m);
        EXPECT_GE(owned, 5461u) << "master " << m;
        EXPECT_LE(owned, 5462u) << "master " << m;
        total += owned;
        EXPECT_EQ(cluster.replicas_of(m), (std::vector<std::size_t>{m + 3}));
    }
    EXPECT_EQ(total, akv::cluster_slots);
    for (std::size_t i = 0; i < cluster.size(); ++i) {
        const std::string info = cluster.command(i, {"CLUSTER", "INFO"});
        EXPECT_EQ(info_field(info, "cluster_state"), "ok") << "node " << i;
        EXPECT_EQ(info_field(info, "cluster_known_nodes"), "6") << "node " << i;
        EXPECT_EQ(info_field(info, "cluster_slots_assigned"), "16384") << "node " << i;
    }
    for (std::size_t r = 3; r < 6; ++r) {
        const std::string replication = cluster.command(r, {"INFO", "replication"});
        EXPECT_EQ(info_field(replication, "role"), "slave") << "node " << r;
        EXPECT_EQ(info_field(replication, "master_port"),
                  std::to_string(cluster.node(r - 3).port()))
            << "node " << r;
        EXPECT_EQ(info_field(replication, "master_link_status"), "up") << "node " << r;
        // A client that reads from replicas finds them where it looks.
        for (std::size_t i = 0; i < cluster.size(); ++i)
            EXPECT_TRUE(slots_list_port(cluster, i, cluster.node(r).port()))
                << "node " << i << "'s CLUSTER SLOTS lacks replica " << r;
    }

    const akv::config config = cluster.config();
    EXPECT_EQ(config.topology, akv::config::mode::cluster);
    ASSERT_EQ(config.hosts.size(), 6u);
    for (std::size_t i = 0; i < 6; ++i)
        EXPECT_EQ(config.hosts[i], (akv::endpoint{"127.0.0.1", cluster.node(i).port()}));
}

TEST(EmbeddedCluster, OptionsChooseHowManyMastersAndReplicas) {
    embedded_cluster_options options;
    options.masters = 2;
    options.replicas_per_master = 2;
    embedded_cluster cluster(options);

    ASSERT_EQ(cluster.size(), 6u);
    EXPECT_EQ(cluster.masters(), (std::vector<std::size_t>{0, 1}));
    EXPECT_EQ(cluster.replicas_of(0), (std::vector<std::size_t>{2, 3}));
    EXPECT_EQ(cluster.replicas_of(1), (std::vector<std::size_t>{4, 5}));
    EXPECT_EQ(cluster.master_of(0), 0u);
    EXPECT_EQ(cluster.master_of(akv::cluster_slots - 1), 1u);
}

TEST(EmbeddedCluster, MasterOfIsTheNodeThatServesTheKeysOfTheSlot) {
    embedded_cluster cluster;
    for (const std::string key : {"a", "user:1000", "{tag}:x", "zzz"}) {
        const std::uint16_t slot = akv::cluster_slot(key);
        ASSERT_EQ(cluster.command(0, {"CLUSTER", "KEYSLOT", key}), ":" + std::to_string(slot));
        const std::size_t owner = cluster.master_of(slot);

        EXPECT_EQ(cluster.command(owner, {"SET", key, "v"}), "+OK") << key;
        EXPECT_EQ(cluster.command(owner, {"GET", key}), "v") << key;
        EXPECT_EQ(cluster.command(other_master(cluster, owner), {"GET", key}),
                  moved_to(cluster, slot, owner))
            << key;
    }
}

TEST(EmbeddedCluster, MigrationMovesTheKeysOfASlotAndTheTargetServesThem) {
    embedded_cluster cluster;
    const auto keys = keys_in_one_slot("migrating", 250);
    const std::uint16_t slot = akv::cluster_slot(keys.front());
    const std::size_t from = cluster.master_of(slot);
    const std::size_t to = other_master(cluster, from);
    for (const auto& key : keys)
        ASSERT_EQ(cluster.command(from, {"SET", key, "value of " + key}), "+OK");

    cluster.begin_migration(slot, from, to);
    EXPECT_EQ(cluster.migrate_keys(slot, 100), keys.size());
    // Mid-migration the source sends a client to the target for a key it no longer has.
    EXPECT_EQ(cluster.command(from, {"GET", keys.front()}),
              "-ASK " + std::to_string(slot) +
                  " 127.0.0.1:" + std::to_string(cluster.node(to).port()));
    cluster.finish_migration(slot, to);

    EXPECT_EQ(cluster.master_of(slot), to);
    EXPECT_EQ(cluster.command(from, {"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)}), ":0");
    EXPECT_EQ(cluster.command(to, {"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)}),
              ":" + std::to_string(keys.size()));
    EXPECT_EQ(cluster.command(to, {"GET", keys.back()}), "value of " + keys.back());
    EXPECT_EQ(cluster.command(from, {"GET", keys.back()}), moved_to(cluster, slot, to));
    for (std::size_t i = 0; i < cluster.size(); ++i)
        if (i != from && i != to)
            EXPECT_EQ(cluster.command(i, {"GET", keys.back()}), moved_to(cluster, slot, to))
                << "node " << i;
}

TEST(EmbeddedCluster, PasswordProtectsEveryNodeAndMigrationStillWorks) {
    embedded_cluster_options options;
    options.password = "s3cret";
    embedded_cluster cluster(options);
    EXPECT_EQ(cluster.config().password, "s3cret");

    const auto keys = keys_in_one_slot("auth", 3);
    const std::uint16_t slot = akv::cluster_slot(keys.front());
    const std::size_t from = cluster.master_of(slot);
    const std::size_t to = other_master(cluster, from);
    for (const auto& key : keys)
        ASSERT_EQ(cluster.command(from, {"SET", key, "v"}), "+OK");

    cluster.begin_migration(slot, from, to);
    EXPECT_EQ(cluster.migrate_keys(slot), keys.size()); // MIGRATE needs AUTH to reach the target
    cluster.finish_migration(slot, to);
    EXPECT_EQ(cluster.command(to, {"GET", keys.front()}), "v");
}

TEST(EmbeddedCluster, KillingAMasterPromotesItsReplica) {
    embedded_cluster cluster;
    const std::string key = "survives-failover";
    const std::uint16_t slot = akv::cluster_slot(key);
    const std::size_t master = cluster.master_of(slot);
    const auto replicas = cluster.replicas_of(master);
    ASSERT_EQ(replicas.size(), 1u);
    ASSERT_EQ(cluster.command(master, {"SET", key, "v"}), "+OK");
    ASSERT_EQ(cluster.command(master, {"WAIT", "1", "5000"}), ":1");

    const auto start = steady_clock::now();
    const std::size_t promoted = cluster.kill_master_and_wait_failover(master);
    std::cout << "failover took " << ms_since(start) << " ms\n";

    EXPECT_EQ(promoted, replicas.front());
    EXPECT_FALSE(cluster.node(master).running());
    EXPECT_EQ(cluster.master_of(slot), promoted);
    const auto masters = cluster.masters();
    EXPECT_EQ(std::count(masters.begin(), masters.end(), promoted), 1);
    EXPECT_EQ(std::count(masters.begin(), masters.end(), master), 0);
    EXPECT_EQ(cluster.command(promoted, {"GET", key}), "v");
    for (const auto i : masters)
        EXPECT_EQ(info_field(cluster.command(i, {"CLUSTER", "INFO"}), "cluster_state"), "ok");
}

TEST(EmbeddedCluster, RestartedFormerMasterRejoinsAsAReplicaOfItsSuccessor) {
    embedded_cluster cluster;
    const std::size_t master = cluster.master_of(0);
    const std::size_t promoted = cluster.kill_master_and_wait_failover(master);

    cluster.restart_node(master);

    EXPECT_TRUE(cluster.node(master).running());
    EXPECT_EQ(cluster.replicas_of(promoted), (std::vector<std::size_t>{master}));
    EXPECT_EQ(cluster.master_of(0), promoted);
    const std::string replication = cluster.command(master, {"INFO", "replication"});
    EXPECT_EQ(info_field(replication, "role"), "slave");
    EXPECT_EQ(info_field(replication, "master_link_status"), "up");
}

TEST(EmbeddedCluster, WaitUntilOkWaitsForAStoppedReplicaToLeaveAndARestartedOneToReturn) {
    embedded_cluster cluster;
    const std::size_t replica = cluster.replicas_of(1).at(0);
    const std::uint16_t port = cluster.node(replica).port();

    cluster.node(replica).kill();
    cluster.wait_until_ok();
    for (std::size_t i = 0; i < cluster.size(); ++i)
        if (i != replica)
            EXPECT_FALSE(slots_list_port(cluster, i, port)) << "node " << i << " still lists it";

    cluster.restart_node(replica);
    EXPECT_EQ(info_field(cluster.command(replica, {"INFO", "replication"}), "master_link_status"),
              "up");
    for (std::size_t i = 0; i < cluster.size(); ++i)
        EXPECT_TRUE(slots_list_port(cluster, i, port)) << "node " << i << " does not list it";
}

TEST(EmbeddedCluster, DestructionStopsEveryNodeAndRemovesItsData) {
    std::vector<int> pids;
    std::vector<std::string> dirs;
    std::optional<embedded_cluster> cluster(std::in_place);
    for (std::size_t i = 0; i < cluster->size(); ++i) {
        pids.push_back(cluster->node(i).pid());
        dirs.push_back(cluster->node(i).data_dir());
        ASSERT_GT(pids.back(), 0);
        ASSERT_EQ(::kill(pids.back(), 0), 0) << "node " << i << " is not running";
    }

    const auto start = steady_clock::now();
    cluster.reset();
    std::cout << "teardown took " << ms_since(start) << " ms\n";

    for (std::size_t i = 0; i < pids.size(); ++i) {
        errno = 0;
        EXPECT_EQ(::kill(pids[i], 0), -1) << "process " << pids[i] << " still exists";
        EXPECT_EQ(errno, ESRCH) << "process " << pids[i];
        EXPECT_FALSE(std::filesystem::exists(dirs[i])) << dirs[i];
    }
}

TEST(EmbeddedCluster, StartFailureThrowsServerStartFailed) {
    embedded_cluster_options options;
    options.extra_args = {"--no-such-option", "x"};
    try {
        embedded_cluster cluster(options);
        FAIL() << "a cluster of nodes with a bad option started";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::error::server_start_failed) << e.what();
    }
}

} // namespace
