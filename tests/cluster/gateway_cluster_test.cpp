// The gateway on a Redis Cluster: channels over sharded pub/sub on the master of their slot
// (the masters split the traffic), two gateways delivering alike, a slot migrated under traffic
// with every message delivered once, in order, and a failover that makes a resume a gap.
#include "support/gateway_client.hpp"
#include "support/side_thread.hpp"

#include <akv/cluster_slot.hpp>
#include <akv/gateway/publish.hpp>
#include <akv/gateway/token.hpp>
#include <akv/testing/embedded_cluster.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <ctime>
#include <map>
#include <string>

using namespace akv::test;
namespace gw = akv::gateway;

namespace {

constexpr const char* secret = "cluster-gateway-secret";

gw::options options() {
    gw::options o;
    o.token_secret = secret;
    o.history = {{"h.*", 100000, std::chrono::seconds(0)}};
    return o;
}

std::string token() {
    gw::token_claims c;
    c.subject = "reader";
    c.expires = std::time(nullptr) + 3600;
    c.channels = {"*"};
    return gw::sign_token(c, secret);
}

// A channel name (prefix0, prefix1, ...) whose slot master `m` serves.
std::string channel_on(const akv::testing::embedded_cluster& cluster, std::size_t m,
                       const std::string& prefix) {
    for (int i = 0;; ++i) {
        std::string ch = prefix + std::to_string(i);
        if (cluster.master_of(akv::cluster_slot(ch)) == m) return ch;
    }
}

// Stream ids "ms-seq" compared as numbers.
bool offset_before(const std::string& a, const std::string& b) {
    const auto parse = [](const std::string& o) {
        const auto dash = o.find('-');
        return std::pair(std::stoull(o.substr(0, dash)), std::stoull(o.substr(dash + 1)));
    };
    return parse(a) < parse(b);
}

} // namespace

TEST(GatewayCluster, ChannelsAreShardedOnTheMasterOfTheirSlotAndBothGatewaysDeliver) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_gateway a(io, cluster.config(), options());
    running_gateway b(io, cluster.config(), options());
    std::vector<std::string> channels;
    for (std::size_t m = 0; m < 3; ++m)
        channels.push_back(channel_on(cluster, m, "h.s"));
    run_task(io, [&]() -> asio::awaitable<void> {
        gateway_client ca(io), cb(io);
        co_await ca.open(a.port());
        co_await cb.open(b.port());
        const std::string tok = token();
        co_await ca.connect(tok);
        co_await cb.connect(tok);
        for (const auto& ch : channels) {
            co_await ca.subscribe(ch);
            co_await cb.subscribe(ch);
        }
        for (std::size_t m = 0; m < 3; ++m) {
            std::string ch = channels[m], data = std::to_string(m);
            co_await gw::publish(b.redis(), b.server->get_options(), std::move(ch),
                                 std::move(data));
            for (auto* c : {&ca, &cb}) {
                auto msg = co_await c->push();
                EXPECT_EQ(std::string(msg.at("channel").as_string()), channels[m]);
                EXPECT_EQ(msg.at("data").as_int64(), static_cast<std::int64_t>(m));
            }
        }
    }());
    // Each channel is held by its own slot's master, once per gateway, and by no classic
    // subscription anywhere.
    for (std::size_t m = 0; m < 3; ++m) {
        EXPECT_EQ(cluster.command(m, {"PUBSUB", "SHARDNUMSUB", channels[m]}), channels[m] + "\n:2")
            << "node " << m;
        for (std::size_t n = 0; n < 3; ++n)
            EXPECT_EQ(cluster.command(n, {"PUBSUB", "NUMSUB", channels[m]}), channels[m] + "\n:0");
    }
}

TEST(GatewayCluster, ASlotMigratedUnderTrafficLosesNoMessage) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_gateway g(io, cluster.config(), options());
    running_client publisher(io, cluster.config());
    const std::string ch = channel_on(cluster, 0, "h.m");
    const std::uint16_t slot = akv::cluster_slot(ch);
    constexpr int messages = 600;
    std::map<int, int> seen;
    bool ordered = true;
    int resyncs = 0;
    std::atomic<bool> migrate{false};
    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            gateway_client c(io);
            co_await c.open(g.port());
            const std::string tok = token();
            co_await c.connect(tok);
            auto ok = co_await c.subscribe(ch);
            std::string offset(ok.at("offset").as_string()), epoch(ok.at("epoch").as_string());
            std::optional<side_thread> mover;
            asio::steady_timer pause(io);
            for (int n = 0; n < messages; ++n) {
                if (n == messages / 3)
                    mover.emplace([&] {
                        cluster.begin_migration(slot, 0, 1);
                        cluster.migrate_keys(slot);
                        cluster.finish_migration(slot, 1);
                    });
                // Retried until acknowledged, as a producer would (a retry may duplicate).
                for (;;) {
                    std::string channel = ch, data = std::to_string(n);
                    try {
                        co_await gw::publish(publisher.client, g.server->get_options(),
                                             std::move(channel), std::move(data));
                        break;
                    } catch (const boost::system::system_error&) {
                    }
                    pause.expires_after(std::chrono::milliseconds(10));
                    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                }
                if (n % 20 == 0) { // a pace that leaves the migration time to happen meanwhile
                    pause.expires_after(std::chrono::milliseconds(5));
                    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                }
            }
            while (mover && !mover->done) {
                pause.expires_after(std::chrono::milliseconds(20));
                co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            if (mover) EXPECT_TRUE(mover->failure.empty()) << mover->failure;
            std::string last;
            while (static_cast<int>(seen.size()) < messages) {
                json::object m = co_await c.push();
                if (m.contains("op") && m.at("op").as_string() == "resync") {
                    // Allowed only if the history says nothing was missed on resubscribing.
                    ++resyncs;
                    auto again = co_await c.subscribe(ch, offset, epoch);
                    EXPECT_TRUE(again.at("recovered").as_bool()) << json::serialize(again);
                    continue;
                }
                offset = std::string(m.at("offset").as_string());
                if (!last.empty() && !offset_before(last, offset)) ordered = false;
                last = offset;
                ++seen[static_cast<int>(m.at("data").as_int64())];
            }
        }(),
        120s);
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(messages));
    EXPECT_TRUE(ordered) << "offsets not increasing";
    EXPECT_EQ(cluster.master_of(slot), 1u) << "the slot did not move";
    EXPECT_EQ(cluster.command(1, {"PUBSUB", "SHARDNUMSUB", ch}), ch + "\n:1")
        << "the subscription did not follow its slot";
    std::printf("slot migration under traffic: %d messages, %d resyncs, %llu recovered\n", messages,
                resyncs, static_cast<unsigned long long>(g.server->snapshot().recovered));
}

TEST(GatewayCluster, AResumeAfterAFailoverIsAGap) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    auto cfg = cluster.config();
    cfg.reconnect_wait_min = std::chrono::milliseconds(10);
    cfg.reconnect_wait_max = std::chrono::milliseconds(200);
    running_gateway g(io, cfg, options());
    const std::string ch = channel_on(cluster, 0, "h.f");
    std::optional<gw::position> at;
    run_task(io, [&]() -> asio::awaitable<void> {
        std::string channel = ch, data = R"("before")";
        at = co_await gw::publish(g.redis(), g.server->get_options(), std::move(channel),
                                  std::move(data));
    }());
    ASSERT_TRUE(at);
    // The promoted replica may lack the tail: the history cannot vouch for a resume.
    side_thread failover([&] { cluster.kill_master_and_wait_failover(0); });
    ASSERT_TRUE(run_until(
        io, [&] { return failover.done.load(); }, 40s));
    ASSERT_TRUE(failover.failure.empty()) << failover.failure;
    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            gateway_client c(io);
            co_await c.open(g.port());
            const std::string tok = token();
            co_await c.connect(tok);
            json::object ok;
            // The gateway's client finds the new master on its own; until then a subscribe is
            // refused as unavailable.
            asio::steady_timer wait(io);
            for (int i = 0; i < 200; ++i) {
                ok = co_await c.subscribe(ch, at->offset, at->epoch);
                if (!ok.contains("error")) break;
                wait.expires_after(std::chrono::milliseconds(100));
                co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            if (!ok.contains("recovered")) {
                ADD_FAILURE() << json::serialize(ok);
                co_return;
            }
            EXPECT_FALSE(ok.at("recovered").as_bool()) << json::serialize(ok);
            EXPECT_NE(std::string(ok.at("epoch").as_string()), at->epoch);
        }(),
        60s);
}
