// akv::testing::embedded_sentinel: a master, its replica and three sentinels that see each other.
#include <akv/config.hpp>
#include <akv/testing/embedded_sentinel.hpp>

#include <gtest/gtest.h>

TEST(EmbeddedSentinel, SentinelsNameTheMasterAndTheReplicaFollowsIt) {
    akv::testing::embedded_sentinel deployment;
    const akv::endpoint master = deployment.current_master();
    EXPECT_EQ(master.port, deployment.master().port());
    for (std::size_t i = 0; i < deployment.sentinel_count(); ++i) {
        const std::string reply =
            deployment.sentinel_command(i, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"});
        EXPECT_EQ(reply, "127.0.0.1\n" + std::to_string(master.port)) << "sentinel " << i;
    }
    const akv::endpoint replica{"127.0.0.1", deployment.replica(0).port()};
    EXPECT_TRUE(deployment.node_command(replica, {"ROLE"}).starts_with("slave\n"));
    const auto cfg = deployment.config();
    EXPECT_EQ(cfg.topology, akv::config::mode::sentinel);
    EXPECT_EQ(cfg.hosts, deployment.sentinel_endpoints());
    EXPECT_EQ(cfg.master_name, "mymaster");
}

TEST(EmbeddedSentinel, FailoverPromotesTheReplica) {
    akv::testing::embedded_sentinel deployment;
    const akv::endpoint promoted = deployment.failover();
    EXPECT_EQ(promoted.port, deployment.replica(0).port());
    EXPECT_EQ(deployment.current_master(), promoted);
    EXPECT_TRUE(deployment.node_command(promoted, {"ROLE"}).starts_with("master\n"));
}

TEST(EmbeddedSentinel, PasswordsProtectTheSentinelsAndTheDataNodes) {
    akv::testing::embedded_sentinel_options options;
    options.password = "data secret";
    options.sentinel_password = "sentinel \"secret\"";
    akv::testing::embedded_sentinel deployment(options);
    // The fixture's helpers authenticate with the right password for each kind of process.
    const akv::endpoint master = deployment.current_master();
    EXPECT_EQ(deployment.node_command(master, {"PING"}), "+PONG");
    EXPECT_EQ(deployment.sentinel_command(0, {"PING"}), "+PONG");
    const auto cfg = deployment.config();
    EXPECT_EQ(cfg.password, "data secret");
    EXPECT_EQ(cfg.sentinel_password, "sentinel \"secret\"");
}
