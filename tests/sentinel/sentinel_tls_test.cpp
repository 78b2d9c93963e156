// akv::client behind Sentinel over TLS (rediss): the client asks the sentinels on their TLS
// ports, the sentinels name the master's TLS port, and the client follows a failover there.
// The CA is made at test time.
#include "support/errors.hpp"
#include "support/running_client.hpp"
#include "support/tls_certs.hpp"

#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/error.hpp>
#include <akv/testing/embedded_sentinel.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <optional>
#include <set>
#include <thread>

using namespace akv::test;
using boost::system::error_code;
namespace asio = boost::asio;
using steady_clock = std::chrono::steady_clock;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

akv::testing::embedded_sentinel_options tls_options(const tls_certs& certs) {
    akv::testing::embedded_sentinel_options options;
    options.tls_port = true;
    options.tls_cert_file = certs("server.crt");
    options.tls_key_file = certs("server.key");
    options.tls_ca_cert_file = certs("ca.crt");
    return options;
}

akv::endpoint tls_endpoint_of(akv::testing::embedded_server& server) {
    return {server.host(), server.tls_port()};
}

asio::awaitable<akv::result<std::string>> command(akv::client& client, std::string_view name,
                                                  std::string_view key) {
    akv::request req;
    req.push(name, key);
    akv::response<std::string> resp;
    co_await client.exec(req, resp);
    co_return std::get<0>(resp);
}

} // namespace

TEST(SentinelTls, FixtureAnnouncesTlsAddresses) {
    tls_certs certs;
    akv::testing::embedded_sentinel deployment(tls_options(certs));
    const akv::endpoint master = tls_endpoint_of(deployment.master());
    EXPECT_NE(master.port, 0u);
    EXPECT_NE(master.port, deployment.master().port());
    // The sentinels name the master's TLS port...
    EXPECT_EQ(deployment.current_master(), master);
    // ... and its replica's TLS port, learnt from the master's INFO (tls-replication yes).
    const std::string replicas =
        deployment.sentinel_command(0, {"SENTINEL", "REPLICAS", "mymaster"});
    EXPECT_TRUE(contains(replicas, std::to_string(deployment.replica(0).tls_port()))) << replicas;
    EXPECT_FALSE(contains(replicas, std::to_string(deployment.replica(0).port()))) << replicas;
    // Every sentinel has a TLS port of its own.
    const auto sentinels = deployment.tls_sentinel_endpoints();
    ASSERT_EQ(sentinels.size(), 3u);
    std::set<std::uint16_t> ports;
    for (std::size_t i = 0; i < sentinels.size(); ++i) {
        EXPECT_EQ(sentinels[i].port, deployment.sentinel(i).tls_port());
        ports.insert(sentinels[i].port);
        ports.insert(deployment.sentinel(i).port());
    }
    EXPECT_EQ(ports.size(), 6u);
    // The fixture's node methods take the TLS endpoint.
    EXPECT_EQ(&deployment.node_at(master), &deployment.master());
    EXPECT_EQ(deployment.node_command(master, {"PING"}), "+PONG");
    // The plain config is as before.
    EXPECT_EQ(deployment.config().hosts, deployment.sentinel_endpoints());
    EXPECT_FALSE(deployment.config().use_tls);
}

TEST(SentinelTls, FindsTheMasterOverTlsAndServesCommands) {
    tls_certs certs;
    akv::testing::embedded_sentinel deployment(tls_options(certs));
    auto cfg = deployment.tls_config(certs("ca.crt"));
    ASSERT_TRUE(cfg.use_tls);
    ASSERT_TRUE(cfg.tls.verify_peer);
    asio::io_context io;
    running_client rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request set;
        set.push("SET", "greeting", "hello over tls");
        auto [ec, n] = co_await rc.client.exec(set, akv::ignore, nothrow);
        EXPECT_FALSE(ec) << ec.message() << " | "
                         << rc.client.last_error_message();
        if (ec) co_return;
        EXPECT_EQ((co_await command(rc.client, "GET", "greeting")).value(), "hello over tls");
        EXPECT_EQ(rc.client.remote_endpoint(),
                  tls_endpoint_of(deployment.master()));
    }());
    // The write landed on the master (read back over plain TCP) and reached the replica.
    EXPECT_EQ(deployment.node_command({"127.0.0.1", deployment.master().port()},
                                      {"GET", "greeting"}),
              "hello over tls");
}

TEST(SentinelTls, FollowsAFailoverOverTls) {
    tls_certs certs;
    akv::testing::embedded_sentinel deployment(tls_options(certs));
    const akv::endpoint old_master = deployment.current_master();
    EXPECT_EQ(old_master, tls_endpoint_of(deployment.master()));
    asio::io_context io;
    running_client rc(io, deployment.tls_config());

    std::atomic<bool> failover_done = false;
    akv::endpoint new_master;
    std::string failover_error;
    std::jthread failover_thread;
    bool on_new_master = false;
    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            for (int i = 0; !on_new_master; ++i) {
                akv::request set;
                set.push("SET", "counter", i);
                auto [ec, n] = co_await rc.client.exec(set, akv::ignore, nothrow);
                if (!ec && !failover_thread.joinable()) {
                    EXPECT_EQ(rc.client.remote_endpoint(), old_master);
                    failover_thread = std::jthread([&] {
                        try {
                            new_master = deployment.failover(std::chrono::seconds(15));
                        } catch (const std::exception& e) {
                            failover_error = e.what();
                        }
                        failover_done = true;
                    });
                }
                if (failover_done && !failover_error.empty()) co_return;
                if (!ec && failover_done &&
                    rc.client.remote_endpoint() == new_master)
                    on_new_master = true;
                asio::steady_timer pause(co_await asio::this_coro::executor,
                                         std::chrono::milliseconds(20));
                co_await pause.async_wait(nothrow);
            }
        }(),
        std::chrono::seconds(40));
    if (failover_thread.joinable()) failover_thread.join();
    ASSERT_EQ(failover_error, "");
    EXPECT_TRUE(on_new_master);
    EXPECT_NE(new_master, old_master);
    EXPECT_EQ(new_master, tls_endpoint_of(deployment.replica(0)));
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request set;
        set.push("SET", "after", "failover");
        auto [ec, n] = co_await rc.client.exec(set, akv::ignore, nothrow);
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(rc.client.remote_endpoint(), new_master);
    }());
    EXPECT_EQ(deployment.node_command(new_master, {"GET", "after"}), "failover");
}

TEST(SentinelTls, WrongCaFailsClearlyAndPromptly) {
    tls_certs certs;
    auto options = tls_options(certs);
    options.replicas = 0;
    options.sentinels = 1;
    akv::testing::embedded_sentinel deployment(options);
    auto cfg = deployment.tls_config(certs("other.crt"));
    cfg.reconnect_wait_min = cfg.reconnect_wait_max = std::chrono::milliseconds(0);
    asio::io_context io;
    akv::client client(io.get_executor(), cfg);
    boost::system::system_error failure(error_code{}, "run() returned normally");
    const auto started = steady_clock::now();
    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            try {
                co_await client.run();
            } catch (const boost::system::system_error& e) {
                failure = e;
            }
        }(),
        std::chrono::seconds(15));
    const auto took = steady_clock::now() - started;
    ::testing::Test::RecordProperty("error", failure.what());
    EXPECT_TRUE(failure.code()) << failure.what();
    EXPECT_LT(took, std::chrono::seconds(5));
    EXPECT_TRUE(contains(failure.what(), "certificate verify failed")) << failure.what();
    const std::string sentinel =
        "sentinel 127.0.0.1:" + std::to_string(deployment.sentinel(0).tls_port());
    EXPECT_TRUE(contains(failure.what(), sentinel)) << failure.what();
}
