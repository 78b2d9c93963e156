// akv::client on a six-node Redis Cluster over TLS (rediss): seeds are the nodes' TLS ports,
// the router takes every node's "tls-port" from CLUSTER SHARDS, the CA is made at test time.
#include "support/running_client.hpp"
#include "support/tls_certs.hpp"

#include <akv/client.hpp>
#include <akv/cluster_slot.hpp>
#include <akv/config.hpp>
#include <akv/error.hpp>
#include <akv/testing/embedded_cluster.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <optional>
#include <set>

using namespace akv::test;
using boost::system::error_code;
namespace asio = boost::asio;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

akv::testing::embedded_cluster_options tls_cluster_options(const tls_certs& certs) {
    akv::testing::embedded_cluster_options options;
    options.tls_port = true;
    options.tls_cert_file = certs("server.crt");
    options.tls_key_file = certs("server.key");
    options.tls_ca_cert_file = certs("ca.crt");
    return options;
}

akv::config tls_config(const akv::testing::embedded_cluster& cluster, const std::string& ca_file) {
    akv::config cfg;
    cfg.topology = akv::config::mode::cluster;
    cfg.hosts = cluster.tls_seeds();
    cfg.use_tls = true;
    cfg.tls.ca_file = ca_file;
    cfg.tls.verify_peer = true;
    return cfg;
}

// A key whose slot is served by node `master` of the fixture.
std::string key_on(const akv::testing::embedded_cluster& cluster, std::size_t master,
                   std::string prefix) {
    for (std::size_t i = 0;; ++i) {
        std::string k = prefix + std::to_string(i);
        if (cluster.master_of(akv::cluster_slot(k)) == master) return k;
    }
}

bool mentions_certificate(const std::string& text) {
    return text.find("certificate") != std::string::npos ||
           text.find("handshake") != std::string::npos;
}

} // namespace

TEST(ClusterTls, FixtureGivesEveryNodeItsOwnTlsPort) {
    tls_certs certs;
    akv::testing::embedded_cluster cluster(tls_cluster_options(certs));
    std::set<std::uint16_t> ports;
    for (std::size_t i = 0; i < cluster.size(); ++i) {
        EXPECT_NE(cluster.tls_port(i), 0u);
        EXPECT_NE(cluster.tls_port(i), cluster.node(i).port());
        ports.insert(cluster.tls_port(i));
        ports.insert(cluster.node(i).port());
        ports.insert(cluster.node(i).cluster_bus_port());
    }
    EXPECT_EQ(ports.size(), 3 * cluster.size());
    ASSERT_EQ(cluster.tls_seeds().size(), cluster.size());
    EXPECT_EQ(cluster.tls_seeds()[2].port, cluster.tls_port(2));
    // CLUSTER SHARDS (asked over plain TCP) names each node's TLS port.
    const std::string shards = cluster.command(0, {"CLUSTER", "SHARDS"});
    for (std::size_t i = 0; i < cluster.size(); ++i)
        EXPECT_NE(shards.find(std::to_string(cluster.tls_port(i))), std::string::npos)
            << "node " << i << " tls port missing in:\n"
            << shards;
}

TEST(ClusterTls, PipelineAcrossAllMastersOverTls) {
    tls_certs certs;
    akv::testing::embedded_cluster cluster(tls_cluster_options(certs));
    const std::string a = key_on(cluster, 0, "a"), b = key_on(cluster, 1, "b"),
                      c = key_on(cluster, 2, "c");
    asio::io_context io;
    running_client rc(io, tls_config(cluster, certs("ca.crt")));
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
        auto [ec, n] = co_await rc.client.exec(req, resp, nothrow);
        const std::string why = ec.message() + " | " + rc.client.last_error_message();
        EXPECT_FALSE(ec) << why;
        if (ec) co_return;
        EXPECT_EQ(std::get<0>(resp).value(), "OK");
        EXPECT_EQ(std::get<1>(resp).value(), "OK");
        EXPECT_EQ(std::get<2>(resp).value(), 41);
        EXPECT_EQ(std::get<3>(resp).value(), "PONG");
        EXPECT_EQ(std::get<4>(resp).value(), "on-0");
        EXPECT_EQ(std::get<5>(resp).value(), 42);
        EXPECT_EQ(std::get<6>(resp).value(), "on-1");
        EXPECT_EQ(std::get<7>(resp).value().size(), 2u);
        EXPECT_EQ(std::get<8>(resp).value(), "last");
    }());
    // The writes really landed on the three masters (read back over plain TCP).
    EXPECT_EQ(cluster.command(0, {"GET", a}), "on-0");
    EXPECT_EQ(cluster.command(1, {"GET", b}), "on-1");
    EXPECT_EQ(cluster.command(2, {"GET", c}), "42");

    // The router's masters are the nodes' TLS ports (CLUSTER SHARDS "tls-port").
    ASSERT_EQ(rc.client.get_config().topology, akv::config::mode::cluster);
    std::set<std::uint16_t> expected;
    for (const std::size_t m : cluster.masters())
        expected.insert(cluster.tls_port(m));
    std::set<std::uint16_t> got;
    for (const auto& ep : rc.client.masters()) {
        EXPECT_EQ(ep.host, "127.0.0.1");
        got.insert(ep.port);
    }
    EXPECT_EQ(got, expected);
    EXPECT_EQ(got.size(), 3u);
}

TEST(ClusterTls, WrongCaFailsClearlyAndPromptly) {
    tls_certs certs;
    akv::testing::embedded_cluster cluster(tls_cluster_options(certs));
    asio::io_context io;
    auto cfg = tls_config(cluster, certs("other.crt"));
    cfg.cluster_failover_wait = std::chrono::milliseconds(1500);
    running_client rc(io, cfg);
    error_code got;
    const auto started = std::chrono::steady_clock::now();
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("SET", "k", "v");
        akv::response<std::string> resp;
        auto [ec, n] = co_await rc.client.exec(req, resp, nothrow);
        got = ec;
        if (!ec && !std::get<0>(resp).has_value()) got = akv::error::server_error;
    }(), std::chrono::seconds(20));
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(got) << "a client trusting the wrong CA got a reply";
    EXPECT_LT(took, std::chrono::seconds(10));
    // A cluster's: the slot map's refresh error, naming the connection's own failure.
    const std::string refresh_error = rc.client.last_error_message();
    const std::string conn_error = refresh_error;
    ::testing::Test::RecordProperty("exec_error", got.message());
    ::testing::Test::RecordProperty("connection_error", conn_error);
    ::testing::Test::RecordProperty("refresh_error", refresh_error);
    EXPECT_TRUE(mentions_certificate(conn_error) || mentions_certificate(refresh_error))
        << "exec: " << got.message() << "\nconnection: " << conn_error
        << "\nrefresh: " << refresh_error;
    EXPECT_TRUE(conn_error.find("certificate verify failed") != std::string::npos ||
                refresh_error.find("certificate verify failed") != std::string::npos)
        << "connection: " << conn_error << "\nrefresh: " << refresh_error;
}

TEST(ClusterTls, RestartedNodeKeepsItsTlsPort) {
    tls_certs certs;
    auto options = tls_cluster_options(certs);
    options.masters = 1;
    options.replicas_per_master = 1;
    akv::testing::embedded_cluster cluster(options);
    const std::uint16_t before = cluster.tls_port(1);
    cluster.node(1).stop();
    cluster.restart_node(1);
    EXPECT_EQ(cluster.tls_port(1), before);
    const std::string shards = cluster.command(0, {"CLUSTER", "SHARDS"});
    EXPECT_NE(shards.find(std::to_string(before)), std::string::npos) << shards;
}
