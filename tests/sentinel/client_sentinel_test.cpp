// akv::client behind Sentinel: finds the master, follows a failover, reads from a replica, and
// says clearly why it cannot connect.
#include "support/errors.hpp"
#include "support/running_client.hpp"

#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/error.hpp>
#include <akv/testing/embedded_sentinel.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <optional>
#include <thread>

using namespace akv::test;
using boost::system::error_code;
namespace asio = boost::asio;
using steady_clock = std::chrono::steady_clock;

namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// A loopback port where nothing listens (it was free a moment ago).
std::uint16_t closed_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    return acceptor.local_endpoint().port();
}

akv::endpoint endpoint_of(akv::testing::embedded_server& server) {
    return {server.host(), server.port()};
}

// Runs the client (reconnection off in its config) and returns what run() threw.
boost::system::system_error run_failure(asio::io_context& io, akv::client& client) {
    boost::system::system_error failure(error_code{}, "run() returned normally");
    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            try {
                co_await client.run();
            } catch (const boost::system::system_error& e) {
                failure = e;
            }
        }(),
        10s);
    return failure;
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

TEST(SentinelClient, FindsTheMasterAndServesCommands) {
    akv::testing::embedded_sentinel deployment;
    asio::io_context io;
    running_client rc(io, deployment.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request set;
        set.push("SET", "greeting", "hello");
        set.push("RPUSH", "jobs", "job-1");
        co_await rc.client.exec(set, akv::ignore);
        EXPECT_EQ((co_await command(rc.client, "GET", "greeting")).value(), "hello");
        // A blocking command runs on a pooled connection, which finds the master too.
        akv::request blpop;
        blpop.push("BLPOP", "jobs", 1);
        akv::response<std::vector<std::string>> popped;
        co_await rc.client.exec(blpop, popped);
        EXPECT_EQ(std::get<0>(popped).value().at(1), "job-1");
        EXPECT_EQ(rc.client.remote_endpoint(), endpoint_of(deployment.master()));
    }());
    EXPECT_EQ(deployment.node_command(endpoint_of(deployment.master()), {"GET", "greeting"}),
              "hello");
}

TEST(SentinelClient, SkipsASentinelThatIsDown) {
    akv::testing::embedded_sentinel_options options;
    options.replicas = 0;
    options.sentinels = 1;
    akv::testing::embedded_sentinel deployment(options);
    auto cfg = deployment.config();
    cfg.hosts.insert(cfg.hosts.begin(), akv::endpoint{"127.0.0.1", closed_port()});
    asio::io_context io;
    running_client rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request ping;
        ping.push("PING");
        akv::response<std::string> pong;
        co_await rc.client.exec(ping, pong);
        EXPECT_EQ(std::get<0>(pong).value(), "PONG");
        EXPECT_EQ(rc.client.remote_endpoint(), endpoint_of(deployment.master()));
    }());
}

TEST(SentinelClient, FollowsAFailoverUnderLoad) {
    akv::testing::embedded_sentinel deployment;
    const akv::endpoint old_master = deployment.current_master();
    asio::io_context io;
    running_client rc(io, deployment.config());

    std::atomic<bool> failover_done = false;
    akv::endpoint new_master;
    std::string failover_error;
    steady_clock::time_point failover_start;
    std::jthread failover_thread;

    std::int64_t last_acked = -1;
    int acked_on_new = 0;
    int failed = 0;
    std::string a_failure;
    std::optional<steady_clock::time_point> first_write_on_new;
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto give_up = steady_clock::now() + 20s;
        for (std::int64_t i = 0; acked_on_new < 200 && steady_clock::now() < give_up; ++i) {
            akv::request::options safe_to_resend;
            safe_to_resend.idempotent = true;
            akv::request set(safe_to_resend);
            set.push("SET", "k", i);
            akv::response<std::string> resp;
            auto [ec, n] = co_await rc.client.exec(set, resp, nothrow);
            if (ec || !std::get<0>(resp).has_value()) {
                ++failed;
                a_failure = ec ? ec.message() : std::get<0>(resp).error().message;
                continue;
            }
            last_acked = i;
            if (!failover_thread.joinable()) {
                // The load is flowing: fail the master over underneath it.
                failover_start = steady_clock::now();
                failover_thread = std::jthread([&] {
                    try {
                        new_master = deployment.failover(15s);
                    } catch (const std::exception& e) {
                        failover_error = e.what();
                    }
                    failover_done = true;
                });
            }
            if (failover_done && failover_error.empty() &&
                rc.client.remote_endpoint() == new_master) {
                if (!first_write_on_new) first_write_on_new = steady_clock::now();
                ++acked_on_new;
            }
        }
    }());
    failover_thread.join();
    ASSERT_EQ(failover_error, "");
    EXPECT_NE(new_master, old_master);
    ASSERT_TRUE(first_write_on_new)
        << "no write reached the new master; " << failed << " failed writes, e.g. " << a_failure;
    RecordProperty("first_write_on_new_master_ms",
                   std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      *first_write_on_new - failover_start)
                                      .count()));
    RecordProperty("failed_writes", failed);
    EXPECT_LT(*first_write_on_new - failover_start, 5s);
    EXPECT_LE(failed, 20) << "e.g. " << a_failure;
    // The last acknowledged write is on the new master.
    EXPECT_EQ(deployment.node_command(new_master, {"GET", "k"}), std::to_string(last_acked));
    EXPECT_TRUE(deployment.node_command(new_master, {"ROLE"}).starts_with("master\n"));
}

TEST(SentinelClient, ReplicaModeReadsFromAReplicaAndWritesAreRefused) {
    akv::testing::embedded_sentinel deployment;
    const akv::endpoint master = endpoint_of(deployment.master());
    EXPECT_EQ(deployment.node_command(master, {"SET", "k", "from the master"}), "+OK");
    EXPECT_EQ(deployment.node_command(master, {"WAIT", "1", "5000"}), ":1");
    auto cfg = deployment.config();
    cfg.read_from_replicas = true;
    asio::io_context io;
    running_client rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request role;
        role.push("ROLE");
        akv::generic_response role_reply;
        co_await rc.client.exec(role, role_reply);
        EXPECT_EQ(role_reply.at(0).value().elements.at(0).str, "slave");
        EXPECT_EQ(rc.client.remote_endpoint(),
                  endpoint_of(deployment.replica(0)));
        EXPECT_EQ((co_await command(rc.client, "GET", "k")).value(), "from the master");
        // A write is the server's error, a value: the connection goes on.
        akv::request set;
        set.push("SET", "k", "from a replica client");
        akv::response<std::string> refused;
        co_await rc.client.exec(set, refused);
        EXPECT_TRUE(contains(std::get<0>(refused).error().message, "READONLY"));
        EXPECT_EQ((co_await command(rc.client, "GET", "k")).value(), "from the master");
    }());
}

TEST(SentinelClient, ReplicaModeFallsBackToTheMasterWithoutAReplica) {
    akv::testing::embedded_sentinel_options options;
    options.replicas = 0;
    options.sentinels = 1;
    akv::testing::embedded_sentinel deployment(options);
    auto cfg = deployment.config();
    cfg.read_from_replicas = true;
    asio::io_context io;
    running_client rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request set;
        set.push("SET", "k", "v");
        co_await rc.client.exec(set, akv::ignore);
        EXPECT_EQ((co_await command(rc.client, "GET", "k")).value(), "v");
        EXPECT_EQ(rc.client.remote_endpoint(), endpoint_of(deployment.master()));
    }());
}

TEST(SentinelClient, SentinelsAndDataNodesHaveTheirOwnPasswords) {
    akv::testing::embedded_sentinel_options options;
    options.password = "data-secret";
    options.sentinel_password = "sentinel-secret";
    akv::testing::embedded_sentinel deployment(options);
    asio::io_context io;
    running_client rc(io, deployment.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request set;
        set.push("SET", "k", "v");
        co_await rc.client.exec(set, akv::ignore);
        EXPECT_EQ((co_await command(rc.client, "GET", "k")).value(), "v");
    }());
}

TEST(SentinelClient, WrongSentinelPasswordIsAClearErrorAndBacksOff) {
    akv::testing::embedded_sentinel_options options;
    options.replicas = 0;
    options.sentinels = 1;
    options.sentinel_password = "right";
    akv::testing::embedded_sentinel deployment(options);
    auto cfg = deployment.config();
    cfg.sentinel_password = "wrong";
    asio::io_context io;
    running_client rc(io, cfg);
    std::vector<akv::client_event> attempts;
    rc.client.set_event_handler([&](const akv::client_event& e) {
        if (e.what == akv::client_event::kind::reconnecting) attempts.push_back(e);
    });
    ASSERT_TRUE(run_until(
        io, [&] { return !attempts.empty(); }, 5s));
    const std::string sentinel = "127.0.0.1:" + std::to_string(deployment.sentinel(0).port());
    EXPECT_EQ(attempts[0].reason, akv::error::auth_failed);
    EXPECT_TRUE(contains(attempts[0].detail, "authentication refused by sentinel " + sentinel));
    EXPECT_TRUE(contains(rc.client.last_error_message(), "WRONGPASS"));
    // Watch for a second: the attempts do not spin.
    const std::size_t before = attempts.size();
    run_until(
        io, [] { return false; }, 1s);
    EXPECT_LE(attempts.size() - before, 1u);
    // A request waiting for the connection is told why rather than left hanging.
    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            akv::request get;
            get.push("GET", "k");
            auto [ec, n] = co_await rc.client.exec(get, akv::ignore, nothrow);
            EXPECT_EQ(ec, akv::error::auth_failed);
        }(),
        5s);
}

TEST(SentinelClient, UnknownMasterNameIsMasterNotFound) {
    akv::testing::embedded_sentinel_options options;
    options.replicas = 0;
    options.sentinels = 1;
    akv::testing::embedded_sentinel deployment(options);
    auto cfg = deployment.config();
    cfg.master_name = "no-such-master";
    cfg.reconnect_wait_min = cfg.reconnect_wait_max = 0ms;
    asio::io_context io;
    akv::client client(io.get_executor(), cfg);
    const auto failure = run_failure(io, client);
    EXPECT_EQ(failure.code(), akv::error::master_not_found);
    EXPECT_TRUE(contains(failure.what(), "no sentinel knows master \"no-such-master\""));
}

TEST(SentinelClient, NoSentinelReachableNamesEachOne) {
    akv::config cfg;
    cfg.topology = akv::config::mode::sentinel;
    cfg.master_name = "mymaster";
    const akv::endpoint a{"127.0.0.1", closed_port()};
    const akv::endpoint b{"127.0.0.1", closed_port()};
    cfg.hosts = {a, b};
    cfg.reconnect_wait_min = cfg.reconnect_wait_max = 0ms;
    asio::io_context io;
    akv::client client(io.get_executor(), cfg);
    const auto failure = run_failure(io, client);
    EXPECT_EQ(failure.code(), akv::error::master_not_found);
    for (const auto& s : {a, b})
        EXPECT_TRUE(contains(failure.what(),
                             "sentinel 127.0.0.1:" + std::to_string(s.port) + ": connect to"));
}
