// akv::client on a six-node Redis Cluster: routing, pipelines split per node, refusals.
#include "support/running_client.hpp"

#include <akv/client.hpp>
#include <akv/cluster_slot.hpp>
#include <akv/config.hpp>
#include <akv/testing/embedded_cluster.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <map>
#include <optional>
#include <set>

using namespace akv::test;
using namespace boost::asio::experimental::awaitable_operators;
using boost::system::error_code;
namespace asio = boost::asio;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

std::string key(std::size_t i) {
    return "key:" + std::to_string(i);
}

// A key whose slot is served by node `master` of the fixture.
std::string key_on(const akv::testing::embedded_cluster& cluster, std::size_t master,
                   std::string prefix) {
    for (std::size_t i = 0;; ++i) {
        std::string k = prefix + std::to_string(i);
        if (cluster.master_of(akv::cluster_slot(k)) == master) return k;
    }
}

long long dbsize(const akv::testing::embedded_cluster& cluster, std::size_t node) {
    const std::string text = cluster.command(node, {"DBSIZE"});
    return std::stoll(text.substr(text.front() == ':' ? 1 : 0));
}

} // namespace

TEST(ClusterClient, HundredThousandKeysLandOnEveryMasterAndReadBack) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    constexpr std::size_t total = 100000;
    constexpr std::size_t batch = 1000;
    run_task(io, [&]() -> asio::awaitable<void> {
        // Pipelines of 1000 commands: every one spans all three masters.
        for (std::size_t start = 0; start < total; start += batch) {
            akv::request req;
            for (std::size_t i = start; i < start + batch; ++i)
                req.push("SET", key(i), i);
            akv::generic_response resp;
            co_await rc.client.exec(req, resp);
            EXPECT_EQ(resp.size(), batch);
            for (auto& r : resp)
                if (!r.has_value()) {
                    ADD_FAILURE() << r.error().message;
                    co_return;
                }
        }
        std::size_t mismatches = 0;
        for (std::size_t start = 0; start < total; start += batch) {
            akv::request req;
            for (std::size_t i = start; i < start + batch; ++i)
                req.push("GET", key(i));
            akv::generic_response resp;
            co_await rc.client.exec(req, resp);
            for (std::size_t i = 0; i < batch; ++i)
                if (!resp.at(i).has_value() || resp[i].value().str != std::to_string(start + i))
                    ++mismatches;
        }
        EXPECT_EQ(mismatches, 0u);
    }(), 120s);
    long long sum = 0;
    for (std::size_t m : cluster.masters()) {
        const long long n = dbsize(cluster, m);
        EXPECT_GT(n, static_cast<long long>(total / 4)) << "master " << m;
        sum += n;
    }
    EXPECT_EQ(sum, static_cast<long long>(total));
    ASSERT_EQ(rc.client.get_config().topology, akv::config::mode::cluster);
    EXPECT_EQ(rc.client.masters().size(), 3u);
}

TEST(ClusterClient, MixedPipelineAcrossSlotsRepliesInOrder) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    const std::string a = key_on(cluster, 0, "a"), b = key_on(cluster, 1, "b"),
                      c = key_on(cluster, 2, "c");
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("SET", a, "on-0");
        req.push("SET", b, "on-1");
        req.push("INCRBY", c, 41);
        req.push("PING");
        req.push("GET", a);
        req.push("INCR", c);
        req.push("GET", b);
        req.push("MGET", "{t}x", "{t}y");
        req.push("ECHO", "last");
        akv::response<std::string, std::string, long long, std::string, std::string, long long,
                      std::string, std::vector<std::optional<std::string>>, std::string>
            resp;
        co_await rc.client.exec(req, resp);
        EXPECT_EQ(std::get<0>(resp).value(), "OK");
        EXPECT_EQ(std::get<2>(resp).value(), 41);
        EXPECT_EQ(std::get<3>(resp).value(), "PONG");
        EXPECT_EQ(std::get<4>(resp).value(), "on-0");
        EXPECT_EQ(std::get<5>(resp).value(), 42);
        EXPECT_EQ(std::get<6>(resp).value(), "on-1");
        EXPECT_EQ(std::get<7>(resp).value().size(), 2u);
        EXPECT_EQ(std::get<8>(resp).value(), "last");
    }());
    EXPECT_EQ(cluster.command(0, {"GET", a}), "on-0");
    EXPECT_EQ(cluster.command(1, {"GET", b}), "on-1");
}

TEST(ClusterClient, CrossSlotCommandIsRefusedUnsentNamingItsKeys) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("MSET", "apple", "1", "banana", "2");
        req.push("MSET", "{fruit}apple", "1", "{fruit}banana", "2");
        req.push("GET", "{fruit}banana");
        akv::response<std::string, std::string, std::string> resp;
        co_await rc.client.exec(req, resp);
        EXPECT_TRUE(std::get<0>(resp).has_error());
        if (!std::get<0>(resp).has_error()) co_return;
        const akv::error_info& e = std::get<0>(resp).error();
        EXPECT_EQ(e.code, akv::error::cross_slot);
        EXPECT_NE(e.message.find("\"apple\""), std::string::npos) << e.message;
        EXPECT_NE(e.message.find("\"banana\""), std::string::npos) << e.message;
        EXPECT_NE(e.message.find("hash tag"), std::string::npos) << e.message;
        EXPECT_EQ(std::get<1>(resp).value(), "OK");
        EXPECT_EQ(std::get<2>(resp).value(), "2");
    }());
    // Nothing of the refused MSET reached any node.
    EXPECT_EQ(cluster.command(cluster.master_of(akv::cluster_slot("apple")), {"EXISTS", "apple"}),
              ":0");
}

TEST(ClusterClient, TransactionRunsOnTheNodeOfItsKeys) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("MULTI");
        req.push("INCR", "{acct}:1");
        req.push("INCRBY", "{acct}:2", 5);
        req.push("EXEC");
        akv::response<akv::ignore_t, akv::ignore_t, akv::ignore_t, std::vector<long long>> resp;
        co_await rc.client.exec(req, resp);
        EXPECT_EQ(std::get<3>(resp).value(), (std::vector<long long>{1, 5}));

        // Keys on different slots: refused as a whole, nothing sent.
        akv::request cross;
        cross.push("MULTI");
        cross.push("SET", "alpha", 1);
        cross.push("SET", "omega", 2);
        cross.push("EXEC");
        akv::generic_response r2;
        co_await rc.client.exec(cross, r2);
        EXPECT_EQ(r2.size(), 4u);
        for (auto& r : r2)
            EXPECT_EQ(r.has_error() ? r.error().code : error_code{}, akv::error::cross_slot);
    }());
    EXPECT_EQ(cluster.command(cluster.master_of(akv::cluster_slot("alpha")), {"EXISTS", "alpha"}),
              ":0");
}

TEST(ClusterClient, BlockingCommandRunsOnTheNodeOfItsKey) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        std::vector<std::string> order;
        auto pop = [&]() -> asio::awaitable<void> {
            akv::request blpop;
            blpop.push("BLPOP", "jobs", 5);
            akv::response<std::optional<std::vector<std::string>>> resp;
            co_await rc.client.exec(blpop, resp);
            order.push_back("popped " + std::get<0>(resp).value().value().at(1));
        };
        auto push = [&]() -> asio::awaitable<void> {
            akv::request ping;
            ping.push("PING");
            co_await rc.client.exec(ping, akv::ignore);
            order.push_back("pinged");
            akv::request lpush;
            lpush.push("LPUSH", "jobs", "job-1");
            co_await rc.client.exec(lpush, akv::ignore);
        };
        co_await (pop() && push());
        EXPECT_EQ(order, (std::vector<std::string>{"pinged", "popped job-1"}));
    }());
}

TEST(ClusterClient, FollowsMovedWhenItsMapIsStale) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    const std::string k = key_on(cluster, 0, "moving");
    const std::uint16_t slot = akv::cluster_slot(k);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request set;
        set.push("SET", k, "v1");
        co_await rc.client.exec(set, akv::ignore);
    }());
    // The slot moves behind the client's back; its next request meets MOVED.
    cluster.begin_migration(slot, 0, 1);
    cluster.migrate_keys(slot);
    cluster.finish_migration(slot, 1);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request get;
        get.push("GET", k);
        akv::response<std::string> resp;
        co_await rc.client.exec(get, resp);
        EXPECT_EQ(std::get<0>(resp).value(), "v1");
        EXPECT_EQ(rc.client.master_of(slot).value().port, cluster.node(1).port());
    }());
}

TEST(ClusterClient, FanOutCommandReachesEveryMaster) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        for (std::size_t i = 0; i < 100; ++i)
            req.push("SET", key(i), i);
        req.push("FLUSHALL");
        akv::generic_response resp;
        co_await rc.client.exec(req, resp);
        EXPECT_EQ(resp.size(), 101u);
        EXPECT_TRUE(resp.back().has_value());
        for (auto& r : resp)
            if (r.has_error()) ADD_FAILURE() << r.error().message;
        EXPECT_EQ(rc.client.stats().cluster.moved, 0u);
    }());
    for (std::size_t m : cluster.masters())
        EXPECT_EQ(dbsize(cluster, m), 0) << "master " << m;
}

TEST(ClusterClient, NoReachableSeedFailsWithinTheFailoverWait) {
    // A config naming only a closed port: requests fail with cluster_down, no hang.
    akv::config cfg;
    cfg.topology = akv::config::mode::cluster;
    cfg.hosts = {{"127.0.0.1", 1}};
    cfg.cluster_failover_wait = std::chrono::milliseconds(300);
    asio::io_context io;
    running_client rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("GET", "x");
        auto [ec, n] = co_await rc.client.exec(req, akv::ignore, nothrow);
        EXPECT_EQ(ec, akv::error::cluster_down);
    }());
}

TEST(ClusterClient, PasswordProtectedClusterAndWrongPassword) {
    akv::testing::embedded_cluster_options options;
    options.password = "cluster-pw";
    akv::testing::embedded_cluster cluster(options);
    asio::io_context io;
    {
        running_client rc(io, cluster.config());
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::request req;
            for (int i = 0; i < 30; ++i)
                req.push("SET", "p" + std::to_string(i), i);
            akv::generic_response resp;
            co_await rc.client.exec(req, resp);
            for (auto& r : resp)
                EXPECT_TRUE(r.has_value());
        }());
    }
    akv::config bad = cluster.config();
    bad.password = "nope";
    running_client rc(io, bad);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("GET", "p1");
        auto [ec, n] = co_await rc.client.exec(req, akv::ignore, nothrow);
        EXPECT_EQ(ec, akv::error::auth_failed);
        EXPECT_NE(rc.client.last_error_message().find("WRONGPASS"), std::string::npos)
            << rc.client.last_error_message();
    }());
}
