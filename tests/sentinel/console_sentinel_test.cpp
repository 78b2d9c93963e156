// The operator's console behind Sentinel: the Redis view lists the master and its replica,
// whether the client talks to the master or (read_from_replicas) to the replica.
#include "support/running_client.hpp"

#include <akv/console/api.hpp>
#include <akv/testing/embedded_sentinel.hpp>

#include <boost/json.hpp>

#include <gtest/gtest.h>

using namespace akv::test;
namespace json = boost::json;

namespace {

std::string address(akv::testing::embedded_server& node) {
    return node.host() + ":" + std::to_string(node.port());
}

// What /console/api/redis answers through a console on a client with `cfg`.
json::object redis_through(asio::io_context& io, const akv::config& cfg) {
    running_client rc(io, cfg);
    akv::console::options co;
    co.password = "pw";
    const auto api = akv::console::api(rc.client, co);
    akv::gateway::http_request req;
    req.method = "GET";
    req.path = "/console/api/redis";
    req.headers["authorization"] = "Basic b3BzOnB3"; // ops:pw
    akv::gateway::http_reply reply;
    run_task(io, [&]() -> asio::awaitable<void> { reply = co_await api(req); }());
    EXPECT_EQ(reply.status, 200u) << reply.body;
    return json::parse(reply.body).as_object();
}

std::string text(const json::value& v) {
    return json::value_to<std::string>(v);
}

} // namespace

TEST(ConsoleSentinel, TheMasterAndItsReplicaFromEitherSide) {
    akv::testing::embedded_sentinel_options options;
    options.sentinels = 1;
    options.password = "data-secret"; // the console's own connections to the nodes need it too
    akv::testing::embedded_sentinel deployment(options);
    asio::io_context io;
    const std::string master = address(deployment.master());
    const std::string replica = address(deployment.replica(0));

    const json::object redis = redis_through(io, deployment.config());
    EXPECT_EQ(redis.at("info").at("role"), "master"); // the client's own server
    const json::array& from_master = redis.at("nodes").as_array();
    ASSERT_EQ(from_master.size(), 2u) << json::serialize(from_master);
    EXPECT_EQ(text(from_master[0].at("address")), master);
    EXPECT_EQ(from_master[0].at("role"), "master");
    EXPECT_EQ(from_master[0].at("connected_slaves"), 1);
    EXPECT_EQ(text(from_master[1].at("address")), replica);
    EXPECT_EQ(from_master[1].at("role"), "replica");
    EXPECT_EQ(text(from_master[1].at("master")), master);
    EXPECT_EQ(from_master[1].at("master_link_status"), "up");
    for (const auto& n : from_master)
        EXPECT_FALSE(n.as_object().contains("error")) << json::serialize(n);

    // A client on the replica: its master first, found from the replica's INFO replication.
    akv::config on_replica = deployment.config();
    on_replica.read_from_replicas = true;
    const json::object redis_on_replica = redis_through(io, on_replica);
    EXPECT_EQ(redis_on_replica.at("info").at("role"), "slave");
    const json::array& from_replica = redis_on_replica.at("nodes").as_array();
    ASSERT_EQ(from_replica.size(), 2u) << json::serialize(from_replica);
    EXPECT_EQ(text(from_replica[0].at("address")), master);
    EXPECT_EQ(from_replica[0].at("role"), "master");
    EXPECT_EQ(text(from_replica[1].at("address")), replica);
    EXPECT_EQ(from_replica[1].at("role"), "replica");
    for (const auto& n : from_replica)
        EXPECT_FALSE(n.as_object().contains("error")) << json::serialize(n);
}
