// Recovery that never lies: a resume answers "recovered":false whenever the history may be
// missing messages (trimmed, lost with its keys, a restart without persistence, FLUSHALL, an
// eviction), and true, with every message, when nothing was lost (a restart from persistence).
// A session subscribed while its history is lost is told to resync.
#include "support/gateway_client.hpp"

#include <akv/gateway/publish.hpp>
#include <akv/gateway/token.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <ctime>
#include <string>

using namespace akv::test;
namespace gw = akv::gateway;

namespace {

constexpr const char* secret = "history-test-secret";

gw::options history_options() {
    gw::options o;
    o.token_secret = secret;
    o.history = {{"h.*", 1000, std::chrono::seconds(0)}};
    return o;
}

std::string token() {
    gw::token_claims c;
    c.subject = "reader";
    c.expires = std::time(nullptr) + 3600;
    c.channels = {"h.*"};
    return gw::sign_token(c, secret);
}

std::string text(const json::value& v) {
    return std::string(v.as_string());
}

asio::awaitable<gw::position> publish_at(akv::client& c, const gw::options& o, std::string_view ch,
                                         std::string_view data) {
    std::string channel(ch), d(data);
    auto at = co_await gw::publish(c, o, std::move(channel), std::move(d));
    if (!at) throw std::runtime_error("no position for a history channel");
    co_return *at;
}

asio::awaitable<void> command(akv::client& c, std::string_view a, std::string_view b = {}) {
    akv::request req;
    if (b.empty())
        req.push(a);
    else
        req.push(a, b);
    akv::generic_response resp;
    co_await c.exec(req, resp);
}

// A session that subscribes to `channel` from `at` and returns the reply.
asio::awaitable<json::object> resume(asio::io_context& io, std::uint16_t port,
                                     std::string_view channel, const gw::position& at) {
    gateway_client c(io);
    co_await c.open(port);
    const std::string tok = token();
    co_await c.connect(tok);
    co_return co_await c.subscribe(channel, at.offset, at.epoch);
}

} // namespace

TEST(GatewayHistory, ResumeOfTheSameEpochRecoversEveryMessage) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), history_options());
    const auto& opts = g.server->get_options();
    run_task(io, [&]() -> asio::awaitable<void> {
        const gw::position at = co_await publish_at(g.redis(), opts, "h.a", "0");
        EXPECT_FALSE(at.epoch.empty());
        const gw::position later = co_await publish_at(g.redis(), opts, "h.a", "1");
        EXPECT_EQ(later.epoch, at.epoch) << "one epoch while nothing is lost";
        gateway_client c(io);
        co_await c.open(g.port());
        const std::string tok = token();
        co_await c.connect(tok);
        auto ok = co_await c.subscribe("h.a", at.offset, at.epoch);
        EXPECT_TRUE(ok.at("recovered").as_bool()) << json::serialize(ok);
        EXPECT_EQ(text(ok.at("epoch")), at.epoch);
        auto m = co_await c.push();
        EXPECT_EQ(m.at("data").as_int64(), 1);
    }());
}

TEST(GatewayHistory, AResumeWithoutItsEpochIsAGap) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), history_options());
    const auto& opts = g.server->get_options();
    run_task(io, [&]() -> asio::awaitable<void> {
        const gw::position at = co_await publish_at(g.redis(), opts, "h.b", "0");
        co_await publish_at(g.redis(), opts, "h.b", "1");
        gateway_client c(io);
        co_await c.open(g.port());
        const std::string tok = token();
        co_await c.connect(tok);
        auto ok = co_await c.subscribe("h.b", at.offset);
        EXPECT_FALSE(ok.at("recovered").as_bool()) << json::serialize(ok);
        const gw::position foreign{at.offset, "abc"};
        auto other = co_await resume(io, g.port(), "h.b", foreign);
        EXPECT_FALSE(other.at("recovered").as_bool()) << json::serialize(other);
    }());
}

TEST(GatewayHistory, FromTheStartWithoutAnEpochIsTheWholeHistoryUntilItLosesItsStart) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), history_options());
    const auto& opts = g.server->get_options();
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await publish_at(g.redis(), opts, "h.s", "0");
        co_await publish_at(g.redis(), opts, "h.s", "1");
        gateway_client c(io);
        co_await c.open(g.port());
        const std::string tok = token();
        co_await c.connect(tok);
        auto ok = co_await c.subscribe("h.s", "0-0");
        EXPECT_TRUE(ok.at("recovered").as_bool()) << json::serialize(ok);
        EXPECT_EQ((co_await c.push()).at("data").as_int64(), 0);
        EXPECT_EQ((co_await c.push()).at("data").as_int64(), 1);
        // The stream survives but its meta is lost: the new epoch starts after what it holds.
        co_await command(g.redis(), "DEL", "akvgw:{h.s}:meta");
        co_await publish_at(g.redis(), opts, "h.s", "2");
        const gw::position start{"0-0", ""};
        auto late = co_await resume(io, g.port(), "h.s", start);
        EXPECT_FALSE(late.at("recovered").as_bool()) << json::serialize(late);
    }());
}

TEST(GatewayHistory, FlushallStartsANewEpochAndAResumeIsAGap) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), history_options());
    const auto& opts = g.server->get_options();
    run_task(io, [&]() -> asio::awaitable<void> {
        const gw::position at = co_await publish_at(g.redis(), opts, "h.c", "0");
        co_await publish_at(g.redis(), opts, "h.c", "1");
        co_await command(g.redis(), "FLUSHALL");
        const gw::position after = co_await publish_at(g.redis(), opts, "h.c", "2");
        EXPECT_NE(after.epoch, at.epoch);
        auto ok = co_await resume(io, g.port(), "h.c", at);
        EXPECT_FALSE(ok.at("recovered").as_bool()) << json::serialize(ok);
        EXPECT_EQ(text(ok.at("epoch")), after.epoch);
        EXPECT_EQ(text(ok.at("offset")), after.offset);
    }());
}

TEST(GatewayHistory, ALostStreamOrMetaIsAGap) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), history_options());
    const auto& opts = g.server->get_options();
    run_task(io, [&]() -> asio::awaitable<void> {
        for (const char* lost : {"history", "meta"}) {
            const std::string ch = std::string("h.lost-") + lost;
            const gw::position at = co_await publish_at(g.redis(), opts, ch, "0");
            co_await publish_at(g.redis(), opts, ch, "1");
            co_await command(g.redis(), "DEL", "akvgw:{" + ch + "}:" + lost);
            auto ok = co_await resume(io, g.port(), ch, at);
            EXPECT_FALSE(ok.at("recovered").as_bool()) << lost << ": " << json::serialize(ok);
            EXPECT_NE(text(ok.at("epoch")), at.epoch) << lost;
        }
    }());
}

TEST(GatewayHistory, AnEvictedHistoryIsAGap) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), history_options());
    running_client filler(io, redis.config());
    const auto& opts = g.server->get_options();
    run_task(io, [&]() -> asio::awaitable<void> {
        const gw::position at = co_await publish_at(g.redis(), opts, "h.evicted", "0");
        co_await publish_at(g.redis(), opts, "h.evicted", "1");
        // Real eviction: a small maxmemory with allkeys-random, then keys until the history's
        // stream (or its meta) is gone.
        akv::request cfg;
        cfg.push("CONFIG", "SET", "maxmemory-policy", "allkeys-random");
        cfg.push("CONFIG", "SET", "maxmemory", "4mb");
        co_await filler.client.exec(cfg, akv::ignore);
        bool gone = false;
        const std::string value(1024, 'x');
        for (int batch = 0; batch < 200 && !gone; ++batch) {
            akv::request fill;
            for (int i = 0; i < 100; ++i)
                fill.push("SET", "filler:" + std::to_string(batch * 100 + i), value);
            co_await filler.client.exec(fill, akv::ignore);
            akv::request exists;
            exists.push("EXISTS", "akvgw:{h.evicted}:history");
            exists.push("EXISTS", "akvgw:{h.evicted}:meta");
            akv::response<long long, long long> e;
            co_await filler.client.exec(exists, e);
            gone = std::get<0>(e).value() == 0 || std::get<1>(e).value() == 0;
        }
        if (!gone) {
            ADD_FAILURE() << "nothing of the history was evicted";
            co_return;
        }
        akv::request reset;
        reset.push("CONFIG", "SET", "maxmemory", "0");
        co_await filler.client.exec(reset, akv::ignore);
        auto ok = co_await resume(io, g.port(), "h.evicted", at);
        EXPECT_FALSE(ok.at("recovered").as_bool()) << json::serialize(ok);
    }());
}

TEST(GatewayHistory, ARestartWithoutPersistenceIsAGap) {
    akv::testing::embedded_server redis; // no append-only file: a restart loses everything
    asio::io_context io;
    auto cfg = redis.config();
    cfg.reconnect_wait_min = std::chrono::milliseconds(10);
    cfg.reconnect_wait_max = std::chrono::milliseconds(100);
    running_gateway g(io, cfg, history_options());
    const auto& opts = g.server->get_options();
    gw::position at;
    run_task(io, [&]() -> asio::awaitable<void> {
        at = co_await publish_at(g.redis(), opts, "h.restart", "0");
        co_await publish_at(g.redis(), opts, "h.restart", "1");
    }());
    redis.kill();
    redis.start();
    run_task(io, [&]() -> asio::awaitable<void> {
        auto ok = co_await resume(io, g.port(), "h.restart", at);
        EXPECT_FALSE(ok.at("recovered").as_bool()) << json::serialize(ok);
        EXPECT_NE(text(ok.at("epoch")), at.epoch);
    }());
}

TEST(GatewayHistory, ARestartFromPersistenceKeepsTheEpochAndRecovers) {
    akv::testing::embedded_server redis({.append_only = true}); // fsync always
    asio::io_context io;
    auto cfg = redis.config();
    cfg.reconnect_wait_min = std::chrono::milliseconds(10);
    cfg.reconnect_wait_max = std::chrono::milliseconds(100);
    running_gateway g(io, cfg, history_options());
    const auto& opts = g.server->get_options();
    gw::position at;
    run_task(io, [&]() -> asio::awaitable<void> {
        at = co_await publish_at(g.redis(), opts, "h.kept", "0");
    }());
    redis.kill();
    redis.start();
    run_task(io, [&]() -> asio::awaitable<void> {
        // The gateway's client reconnects on its own; a publish is retried until it gets there.
        std::optional<gw::position> after;
        asio::steady_timer wait(io);
        for (int i = 0; i < 200 && !after; ++i) {
            try {
                after = co_await publish_at(g.redis(), opts, "h.kept", "1");
            } catch (const boost::system::system_error&) {
            }
            if (after) break;
            wait.expires_after(std::chrono::milliseconds(20));
            co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        if (!after) {
            ADD_FAILURE() << "no publish reached the restarted server";
            co_return;
        }
        EXPECT_EQ(after->epoch, at.epoch) << "the same history, restarted from its own data";
        auto ok = co_await resume(io, g.port(), "h.kept", at);
        EXPECT_TRUE(ok.at("recovered").as_bool()) << json::serialize(ok);
    }());
}

TEST(GatewayHistory, ASubscribedSessionIsToldToResyncWhenItsHistoryIsLost) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), history_options());
    const auto& opts = g.server->get_options();
    run_task(io, [&]() -> asio::awaitable<void> {
        gateway_client c(io);
        co_await c.open(g.port());
        const std::string tok = token();
        co_await c.connect(tok);
        auto ok = co_await c.subscribe("h.live");
        const gw::position first{text(ok.at("offset")), text(ok.at("epoch"))};
        co_await publish_at(g.redis(), opts, "h.live", "1");
        auto m = co_await c.push();
        EXPECT_EQ(m.at("data").as_int64(), 1);
        const gw::position seen{text(m.at("offset")), first.epoch};
        co_await command(g.redis(), "FLUSHALL");
        co_await publish_at(g.redis(), opts, "h.live", "2"); // a new epoch
        auto told = co_await c.push();
        EXPECT_EQ(text(told.at("op")), "resync") << json::serialize(told);
        EXPECT_EQ(text(told.at("channel")), "h.live");
        // Dropped by the server: subscribing again from its position says what happened.
        auto again = co_await c.subscribe("h.live", seen.offset, seen.epoch);
        EXPECT_FALSE(again.at("recovered").as_bool()) << json::serialize(again);
        co_await publish_at(g.redis(), opts, "h.live", "3");
        auto next = co_await c.push();
        EXPECT_EQ(next.at("data").as_int64(), 3);
    }());
}
