// Presence across gateway processes sharing one Redis: who is subscribed (client, user, the
// token's info), counts, join and leave pushes in order, permissions, entries that outlive a
// gateway only by the ttl, and server-side subscriptions from the token.
#include "support/eventually.hpp"
#include "support/gateway_client.hpp"

#include <akv/gateway/publish.hpp>
#include <akv/gateway/token.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <ctime>
#include <set>
#include <string>

using namespace akv::test;
namespace gw = akv::gateway;

namespace {

constexpr const char* secret = "presence-test-secret";

gw::options presence_options() {
    gw::options o;
    o.token_secret = secret;
    o.presence = {{"room.*", true}, {"quiet.*", false}};
    o.history = {{"room.*", 100, std::chrono::seconds(0)}};
    return o;
}

std::string token(const std::string& user, std::string info = {},
                  std::vector<std::string> presence = {"room.*", "quiet.*", "plain"},
                  std::vector<std::string> subs = {}) {
    gw::token_claims c;
    c.subject = user;
    c.expires = std::time(nullptr) + 3600;
    c.channels = {"*"};
    c.presence = std::move(presence);
    c.subs = std::move(subs);
    c.info = std::move(info);
    return gw::sign_token(c, secret);
}

std::string text(const json::value& v) {
    return std::string(v.as_string());
}

asio::awaitable<std::unique_ptr<gateway_client>> connected(asio::io_context& io, std::uint16_t port,
                                                           std::string_view tok) {
    auto c = std::make_unique<gateway_client>(io);
    co_await c->open(port);
    co_await c->connect(tok);
    co_return c;
}

std::set<std::string> users_of(const json::object& reply) {
    std::set<std::string> out;
    for (const auto& e : reply.at("clients").as_array())
        out.insert(text(e.at("user")));
    return out;
}

} // namespace

TEST(GatewayPresence, WhoIsSubscribedAcrossTwoGateways) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway a(io, redis.config(), presence_options());
    running_gateway b(io, redis.config(), presence_options());
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::string alice = token("alice", R"({"name":"Alice"})");
        const std::string bob = token("bob");
        auto ca = co_await connected(io, a.port(), alice);
        auto cb = co_await connected(io, b.port(), bob);
        auto cb2 = co_await connected(io, b.port(), bob); // bob twice: two clients, one user
        co_await ca->subscribe("room.1");
        co_await cb->subscribe("room.1");
        co_await cb2->subscribe("room.1");
        auto who = co_await ca->call(R"({"op":"presence","channel":"room.1"})");
        if (!who.contains("clients")) {
            ADD_FAILURE() << json::serialize(who);
            co_return;
        }
        EXPECT_EQ(who.at("clients").as_array().size(), 3u);
        EXPECT_EQ(users_of(who), (std::set<std::string>{"alice", "bob"}));
        bool alice_info = false;
        for (const auto& e : who.at("clients").as_array())
            if (text(e.at("user")) == "alice")
                alice_info =
                    e.as_object().contains("info") && text(e.at("info").at("name")) == "Alice";
        EXPECT_TRUE(alice_info) << json::serialize(who);
        auto stats = co_await cb->call(R"({"op":"presence_stats","channel":"room.1"})");
        EXPECT_EQ(stats.at("clients").as_int64(), 3);
        EXPECT_EQ(stats.at("users").as_int64(), 2);
        // Leaving, by unsubscribe or by closing, takes the entry away.
        co_await cb2->call(R"({"op":"unsubscribe","channel":"room.1"})");
        cb->drop();
        const bool left = co_await eventually([&]() -> asio::awaitable<bool> {
            auto s = co_await ca->call(R"({"op":"presence_stats","channel":"room.1"})");
            co_return s.at("clients").as_int64() == 1;
        });
        EXPECT_TRUE(left);
    }());
}

TEST(GatewayPresence, JoinAndLeavePushesComeInOrderToThoseWhoAsked) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway a(io, redis.config(), presence_options());
    running_gateway b(io, redis.config(), presence_options());
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::string watcher_token = token("watcher"), deaf_token = token("deaf");
        auto watcher = co_await connected(io, a.port(), watcher_token);
        auto deaf = co_await connected(io, a.port(), deaf_token);
        auto ok =
            co_await watcher->call(R"({"op":"subscribe","channel":"room.2","join_leave":true})");
        EXPECT_TRUE(ok.contains("ok")) << json::serialize(ok);
        co_await deaf->subscribe("room.2");
        auto own = co_await watcher->push(); // the watcher's own join comes first
        EXPECT_EQ(text(own.at("op")), "join");
        auto deaf_join = co_await watcher->push();
        EXPECT_EQ(text(deaf_join.at("who").at("user")), "deaf");
        for (int round = 0; round < 3; ++round) {
            const std::string guest_token = token("guest" + std::to_string(round));
            auto guest = co_await connected(io, b.port(), guest_token);
            co_await guest->subscribe("room.2");
            co_await guest->call(R"({"op":"unsubscribe","channel":"room.2"})");
            auto join = co_await watcher->push();
            auto leave = co_await watcher->push();
            EXPECT_EQ(text(join.at("op")), "join");
            EXPECT_EQ(text(join.at("channel")), "room.2");
            EXPECT_EQ(text(leave.at("op")), "leave");
            EXPECT_EQ(text(join.at("who").at("client")), text(leave.at("who").at("client")));
            EXPECT_EQ(text(join.at("who").at("user")), "guest" + std::to_string(round));
        }
        // Messages and joins share one order; the one who did not ask gets only messages.
        std::string ch = "room.2", data = R"("hello")";
        co_await gw::publish(a.redis(), a.server->get_options(), std::move(ch), std::move(data));
        auto m = co_await deaf->push();
        EXPECT_EQ(text(m.at("data")), "hello") << json::serialize(m);
    }());
}

TEST(GatewayPresence, PermissionsAndChannelsWithoutPresence) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), presence_options());
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::vector<std::string> other{"other.*"};
        const std::string nosy_token = token("nosy", {}, other);
        auto nosy = co_await connected(io, g.port(), nosy_token);
        auto denied = co_await nosy->call(R"({"op":"presence","channel":"room.3"})");
        EXPECT_EQ(text(denied.at("error").at("code")), "forbidden");
        const std::string reader_token = token("reader");
        auto c = co_await connected(io, g.port(), reader_token);
        auto none = co_await c->call(R"({"op":"presence","channel":"plain"})");
        EXPECT_EQ(text(none.at("error").at("code")), "not_available");
        auto quiet =
            co_await c->call(R"({"op":"subscribe","channel":"quiet.1","join_leave":true})");
        EXPECT_EQ(text(quiet.at("error").at("code")), "not_available") << json::serialize(quiet);
        auto bad = co_await c->call(R"({"op":"presence"})");
        EXPECT_EQ(text(bad.at("error").at("code")), "bad_request");
        auto bad2 = co_await c->call(R"({"op":"subscribe","channel":"room.3","join_leave":1})");
        EXPECT_EQ(text(bad2.at("error").at("code")), "bad_request");
    }());
}

// server::channel_counts: each gateway counts its own subscribers, and the presence of every
// gateway's (without the entries of a gateway that stopped refreshing them); channels without a
// rule have none.
TEST(GatewayPresence, ChannelCountsCarryThePresenceOfEveryGateway) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway a(io, redis.config(), presence_options());
    running_gateway b(io, redis.config(), presence_options());
    running_client other(io, redis.config());
    std::vector<std::unique_ptr<gateway_client>> clients;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request stale; // a crashed gateway's entry
        stale.push("HSET", "akvgw:{room.5}:presence", "crashed.0.1",
                   R"({"client":"crashed.0.1","user":"ghost"})");
        stale.push("ZADD", "akvgw:{room.5}:presence_exp", "1", "crashed.0.1");
        co_await other.client.exec(stale, akv::ignore);
        const std::string tok = token("alice");
        for (std::uint16_t port : {a.port(), a.port(), b.port()}) {
            clients.push_back(co_await connected(io, port, tok));
            co_await clients.back()->subscribe("room.5");
        }
        co_await clients[0]->subscribe("plain");
    }());
    std::vector<gw::channel_count> on_a, on_b;
    run_task(io, [&]() -> asio::awaitable<void> {
        on_a = co_await a.server->channel_counts(10);
        on_b = co_await b.server->channel_counts(10);
    }());
    ASSERT_EQ(on_a.size(), 2u);
    EXPECT_EQ(on_a[0].name, "room.5");
    EXPECT_EQ(on_a[0].subscribers, 2u);
    EXPECT_EQ(on_a[0].present, std::optional<std::uint64_t>(3));
    EXPECT_EQ(on_a[1].name, "plain");
    EXPECT_EQ(on_a[1].subscribers, 1u);
    EXPECT_FALSE(on_a[1].present);
    ASSERT_EQ(on_b.size(), 1u);
    EXPECT_EQ(on_b[0].name, "room.5");
    EXPECT_EQ(on_b[0].subscribers, 1u);
    EXPECT_EQ(on_b[0].present, std::optional<std::uint64_t>(3));
}

TEST(GatewayPresence, AnEntryOutlivesItsGatewayByTheTtlAtMost) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    auto opts = presence_options();
    opts.presence_ttl = std::chrono::seconds(2);
    running_gateway g(io, redis.config(), opts);
    running_client other(io, redis.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        // What a gateway that crashed leaves behind: its entry, no longer refreshed.
        akv::request stale;
        stale.push("HSET", "akvgw:{room.4}:presence", "crashed.0.1",
                   R"({"client":"crashed.0.1","user":"ghost"})");
        stale.push("ZADD", "akvgw:{room.4}:presence_exp", "1", "crashed.0.1");
        co_await other.client.exec(stale, akv::ignore);
        const std::string live_token = token("live");
        auto c = co_await connected(io, g.port(), live_token);
        co_await c->subscribe("room.4");
        auto who = co_await c->call(R"({"op":"presence","channel":"room.4"})");
        EXPECT_EQ(users_of(who), (std::set<std::string>{"live"})) << json::serialize(who);
        // A live session stays across many ttls: its gateway refreshes it.
        asio::steady_timer t(io, std::chrono::milliseconds(4500));
        co_await t.async_wait(asio::use_awaitable);
        auto still = co_await c->call(R"({"op":"presence","channel":"room.4"})");
        EXPECT_EQ(users_of(still), (std::set<std::string>{"live"})) << json::serialize(still);
    }());
}

TEST(GatewayPresence, ServerSideSubscriptionsFromTheTokenResume) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), presence_options());
    const auto& opts = g.server->get_options();
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::vector<std::string> no_presence, subs{"room.s", "plain.s"};
        const std::string tok = token("srv", {}, no_presence, subs);
        auto c = co_await connected(io, g.port(), tok);
        auto first = co_await c->push();
        auto second = co_await c->push();
        EXPECT_EQ(text(first.at("op")), "subscribed") << json::serialize(first);
        EXPECT_EQ(text(first.at("channel")), "room.s");
        EXPECT_EQ(text(second.at("channel")), "plain.s");
        const std::string offset = text(first.at("offset")), epoch = text(first.at("epoch"));
        c->drop();
        for (int n = 0; n < 3; ++n) {
            std::string ch = "room.s", data = std::to_string(n);
            co_await gw::publish(g.redis(), opts, std::move(ch), std::move(data));
        }
        // Reconnecting with the position it held: the missed messages follow its subscribed.
        gateway_client again(io);
        co_await again.open(g.port());
        json::object hello{{"op", "connect"}, {"token", tok}};
        hello["subs"] =
            json::object{{"room.s", json::object{{"offset", offset}, {"epoch", epoch}}}};
        const std::string hello_text = json::serialize(hello);
        co_await again.send(hello_text);
        auto conn = co_await again.next();
        EXPECT_EQ(text(conn.at("op")), "connected");
        auto sub = co_await again.next();
        EXPECT_EQ(text(sub.at("op")), "subscribed");
        EXPECT_TRUE(sub.at("recovered").as_bool()) << json::serialize(sub);
        for (int n = 0; n < 3; ++n)
            EXPECT_EQ((co_await again.next()).at("data").as_int64(), n);
    }());
}

TEST(GatewayPresence, ATokensSubsCannotNameTheConsolesChannelsWithoutAnAdminClaim) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), presence_options());
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::vector<std::string> no_presence, subs{"akv:console:snapshot", "plain.s"};
        auto c = co_await connected(io, g.port(), token("srv", {}, no_presence, subs));
        auto first = co_await c->push();
        auto second = co_await c->push();
        EXPECT_EQ(text(first.at("op")), "subscribe_failed") << json::serialize(first);
        EXPECT_EQ(text(first.at("error").at("code")), "forbidden");
        EXPECT_EQ(text(second.at("op")), "subscribed") << json::serialize(second);
        EXPECT_EQ(text(second.at("channel")), "plain.s");
        auto pub = co_await c->call(
            R"({"op":"publish","channel":"akv:console:snapshot","data":{"forged":true}})");
        EXPECT_EQ(text(pub.at("error").at("code")), "forbidden") << json::serialize(pub);
    }());
}
