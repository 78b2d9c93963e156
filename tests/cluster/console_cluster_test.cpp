// The operator's console on a six-node Redis Cluster: queues and streams found on every master
// (a SCAN each), every master and replica in the Redis view (a dead one too, with its error),
// the sampler's snapshots over sharded pub/sub, and a master that does not answer its SCAN
// named in a 503.
#include "support/errors.hpp"
#include "support/running_client.hpp"

#include <akv/cluster_slot.hpp>
#include <akv/console/api.hpp>
#include <akv/console/sampler.hpp>
#include <akv/messaging/subscriber.hpp>
#include <akv/queue/producer.hpp>
#include <akv/testing/embedded_cluster.hpp>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <set>
#include <string>

using namespace akv::test;
namespace json = boost::json;

namespace {

// A name (prefix0, prefix1, ...) whose hash slot master `m` serves.
std::string name_on(const akv::testing::embedded_cluster& cluster, std::size_t m,
                    const std::string& prefix) {
    for (int i = 0;; ++i) {
        std::string name = prefix + std::to_string(i);
        if (cluster.master_of(akv::cluster_slot(name)) == m) return name;
    }
}

std::string address(const akv::testing::embedded_server& node) {
    return node.host() + ":" + std::to_string(node.port());
}

// The console's handler, called as the gateway would (on the client's executor).
std::pair<int, json::value> get(asio::io_context& io, const akv::gateway::http_handler& api,
                                const std::string& path) {
    akv::gateway::http_request req;
    req.method = "GET";
    req.path = path;
    req.headers["authorization"] = "Basic b3BzOnB3"; // ops:pw
    akv::gateway::http_reply reply;
    run_task(io, [&]() -> asio::awaitable<void> { reply = co_await api(req); }());
    return {static_cast<int>(reply.status), json::parse(reply.body)};
}

std::string text(const json::value& v) {
    return json::value_to<std::string>(v);
}

} // namespace

TEST(ConsoleCluster, QueuesStreamsAndEveryNodeOfTheCluster) {
    akv::testing::embedded_cluster cluster; // 3 masters, a replica each
    asio::io_context io;
    running_client rc(io, cluster.config());
    akv::console::options co;
    co.password = "pw";
    co.node_timeout = std::chrono::milliseconds(500);
    const auto api = akv::console::api(rc.client, co);

    // A queue and a stream on each master, with 1, 2 and 3 jobs or entries.
    std::map<std::string, std::int64_t> queues, streams;
    for (std::size_t m = 0; m < 3; ++m) {
        queues[name_on(cluster, m, "jobs")] = static_cast<std::int64_t>(m + 1);
        streams[name_on(cluster, m, "events")] = static_cast<std::int64_t>(m + 1);
    }
    run_task(io, [&]() -> asio::awaitable<void> {
        for (const auto& [name, n] : queues) {
            akv::queue::producer p(rc.client, name);
            for (std::int64_t i = 0; i < n; ++i)
                co_await p.enqueue("job " + std::to_string(i));
        }
        for (const auto& [name, n] : streams) {
            akv::request req;
            for (std::int64_t i = 0; i < n; ++i)
                req.push("XADD", name, "*", "n", i);
            co_await rc.client.exec(req, akv::ignore);
        }
    }());

    const auto listed_queues = get(io, api, "/console/api/queues");
    ASSERT_EQ(listed_queues.first, 200) << json::serialize(listed_queues.second);
    std::map<std::string, std::int64_t> seen;
    for (const auto& q : listed_queues.second.at("queues").as_array())
        seen[text(q.at("name"))] = q.at("waiting").as_int64();
    EXPECT_EQ(seen, queues);

    const auto listed_streams = get(io, api, "/console/api/streams");
    ASSERT_EQ(listed_streams.first, 200) << json::serialize(listed_streams.second);
    seen.clear();
    for (const auto& s : listed_streams.second.at("streams").as_array())
        if (streams.count(text(s.at("name")))) // not the queues' own (their journals)
            seen[text(s.at("name"))] = s.at("length").as_int64();
    EXPECT_EQ(seen, streams);

    // Every master and its replica, each with its role; the masters hold every key.
    const auto redis = get(io, api, "/console/api/redis");
    ASSERT_EQ(redis.first, 200) << json::serialize(redis.second);
    EXPECT_TRUE(redis.second.at("info").as_object().contains("used_memory")); // the top level
    std::set<std::string> masters, replicas_masters, expected_masters;
    std::int64_t keys = 0;
    for (std::size_t m = 0; m < 3; ++m)
        expected_masters.insert(address(cluster.node(m)));
    const auto& nodes = redis.second.at("nodes").as_array();
    ASSERT_EQ(nodes.size(), 6u) << json::serialize(redis.second);
    for (const auto& n : nodes) {
        EXPECT_FALSE(n.as_object().contains("error")) << json::serialize(n);
        if (n.at("role") == "master") {
            masters.insert(text(n.at("address")));
            EXPECT_EQ(n.at("connected_slaves"), 1);
            keys += n.at("keys").as_int64();
        } else {
            EXPECT_EQ(n.at("role"), "replica");
            EXPECT_EQ(n.at("master_link_status"), "up");
            replicas_masters.insert(text(n.at("master")));
            EXPECT_TRUE(n.as_object().contains("lag_bytes")) << json::serialize(n);
        }
        EXPECT_TRUE(n.at("slowlog").is_array());
    }
    EXPECT_EQ(masters, expected_masters);
    EXPECT_EQ(replicas_masters, expected_masters); // one replica of each
    // Each queue has a few keys of its own besides its jobs; each stream is one key.
    EXPECT_GE(keys, static_cast<std::int64_t>(queues.size() + streams.size()));

    // The sampler finds the same, with nothing failing.
    akv::console::sampler s(rc.client);
    std::string snapshot_text;
    run_task(io, [&]() -> asio::awaitable<void> { snapshot_text = co_await s.sample(); }());
    const json::value snapshot = json::parse(snapshot_text);
    EXPECT_FALSE(snapshot.as_object().contains("error")) << snapshot_text;
    EXPECT_EQ(snapshot.at("queues").as_array().size(), 3u);
    EXPECT_EQ(snapshot.at("streams").as_array().size(),
              listed_streams.second.at("streams").as_array().size());
    EXPECT_EQ(snapshot.at("redis").at("nodes").as_array().size(), 6u);

    // Its snapshots reach the gateway's pages, which subscribe with sharded pub/sub here.
    akv::messaging::subscriber hub(rc.client);
    std::shared_ptr<akv::messaging::subscription> snapshots;
    const std::vector<std::string> channel{"akv:console:snapshot"};
    run_task(io,
             [&]() -> asio::awaitable<void> { snapshots = co_await hub.ssubscribe(channel); }());
    akv::console::sampler_options live_options;
    live_options.interval = std::chrono::milliseconds(50);
    akv::console::sampler live(rc.client, live_options);
    bool live_done = false;
    asio::co_spawn(io, live.run(), [&](std::exception_ptr) { live_done = true; });
    std::string received;
    run_task(
        io,
        [&]() -> asio::awaitable<void> { received = (co_await snapshots->receive()).payload; }(),
        std::chrono::seconds(10));
    EXPECT_EQ(json::parse(received).at("redis").at("nodes").as_array().size(), 6u) << received;
    live.stop();
    EXPECT_TRUE(run_until(
        io, [&] { return live_done; }, std::chrono::seconds(10)));
    hub.stop();

    // A replica that died stays listed, as the cluster lists it (failed), with why it cannot be
    // read; once a connect has been refused its reads fail at once, not at the deadline.
    const std::size_t dead = 3; // the replica of master 0
    cluster.node(dead).kill();
    json::value dead_node;
    EXPECT_TRUE(run_until(
        io,
        [&] {
            const auto r = get(io, api, "/console/api/redis");
            for (const auto& n : r.second.at("nodes").as_array())
                if (text(n.at("address")) == address(cluster.node(dead))) dead_node = n;
            return dead_node.is_object() && dead_node.as_object().contains("health") &&
                   dead_node.as_object().contains("error");
        },
        20s))
        << json::serialize(dead_node);
    EXPECT_EQ(dead_node.at("health"), "fail");
    EXPECT_EQ(dead_node.at("role"), "replica");
    EXPECT_TRUE(contains(text(dead_node.at("error")), address(cluster.node(dead))))
        << json::serialize(dead_node);
    const auto reads_start = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(get(io, api, "/console/api/redis").second.at("nodes").as_array().size(), 6u);
    EXPECT_LT(std::chrono::steady_clock::now() - reads_start, std::chrono::milliseconds(1000));

    // A master that does not answer its SCAN: the listing fails within the deadline, naming it
    // (before the cluster fails it over, which takes its node timeout of 1 s and more).
    const std::size_t stopped = cluster.master_of(akv::cluster_slot(queues.begin()->first));
    ASSERT_EQ(::kill(cluster.node(stopped).pid(), SIGSTOP), 0);
    const auto start = std::chrono::steady_clock::now();
    const auto refused = get(io, api, "/console/api/queues");
    const auto took = std::chrono::steady_clock::now() - start;
    ::kill(cluster.node(stopped).pid(), SIGCONT);
    EXPECT_EQ(refused.first, 503) << json::serialize(refused.second);
    EXPECT_LT(took, std::chrono::seconds(2));
    const std::string why = text(refused.second.at("error"));
    EXPECT_TRUE(contains(why, address(cluster.node(stopped)))) << why;
}
