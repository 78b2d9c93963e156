// The gateway with its sessions spread over several threads (options::threads): every session
// gets every message of its channels once, in order, whichever thread it is on; joins, leaves,
// resyncs and shutdown cross between the hub's thread and the workers'. Built under TSan too
// (script/test).
#include "support/gateway_client.hpp"

#include <akv/gateway/publish.hpp>
#include <akv/gateway/token.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <ctime>
#include <map>
#include <string>
#include <vector>

using namespace akv::test;
namespace gw = akv::gateway;

namespace {

constexpr const char* secret = "threads-test-secret";

gw::options threaded(std::size_t threads) {
    gw::options o;
    o.token_secret = secret;
    o.threads = threads;
    o.history = {{"h.*", 10000, std::chrono::seconds(0)}};
    return o;
}

std::string token() {
    gw::token_claims c;
    c.subject = "t";
    c.expires = std::time(nullptr) + 3600;
    c.channels = {"*"};
    return gw::sign_token(c, secret);
}

asio::awaitable<void> publish_to(akv::client& c, const gw::options& o, std::string channel,
                                 std::string data) {
    co_await gw::publish(c, o, std::move(channel), std::move(data));
}

} // namespace

TEST(GatewayThreads, EverySessionGetsEveryMessageInOrderOnEveryThread) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), threaded(3));
    const auto& opts = g.server->get_options();
    constexpr int sessions = 24, messages = 200;
    const std::vector<std::string> channels{"h.a", "h.b", "plain"};
    run_task(io, [&]() -> asio::awaitable<void> {
        std::vector<std::unique_ptr<gateway_client>> clients;
        const std::string tok = token();
        for (int s = 0; s < sessions; ++s) {
            clients.push_back(std::make_unique<gateway_client>(io));
            co_await clients.back()->open(g.port());
            co_await clients.back()->connect(tok);
            // Each session on two of the three channels.
            co_await clients.back()->subscribe(channels[s % 3]);
            co_await clients.back()->subscribe(channels[(s + 1) % 3]);
        }
        for (int n = 0; n < messages; ++n)
            for (const auto& ch : channels)
                co_await publish_to(g.redis(), opts, ch, std::to_string(n));
        for (int s = 0; s < sessions; ++s) {
            std::map<std::string, int> next;
            for (int k = 0; k < 2 * messages; ++k) {
                auto m = co_await clients[s]->push();
                const std::string ch(m.at("channel").as_string());
                EXPECT_EQ(m.at("data").as_int64(), next[ch]) << "session " << s << " " << ch;
                next[ch] = static_cast<int>(m.at("data").as_int64()) + 1;
            }
            EXPECT_EQ(next.size(), 2u);
        }
        // Sessions come and go on every thread while messages flow.
        for (int s = 0; s < sessions; s += 2)
            co_await clients[s]->call(R"({"op":"unsubscribe","channel":"h.a"})");
        for (int s = 0; s < sessions; s += 2)
            clients[s]->drop();
        co_await publish_to(g.redis(), opts, "h.b", R"("last")");
        for (int s = 1; s < sessions; s += 2) {
            if (s % 3 != 1 && (s + 1) % 3 != 1) continue; // not on h.b
            for (;;) {
                auto m = co_await clients[s]->push();
                if (m.at("channel").as_string() == "h.b" && m.at("data").is_string()) break;
            }
        }
    }());
    const auto stats = g.server->snapshot();
    EXPECT_GE(stats.messages_out, static_cast<std::uint64_t>(sessions * 2 * messages));
}

TEST(GatewayThreads, AResyncReachesSessionsOnEveryThread) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), threaded(2));
    const auto& opts = g.server->get_options();
    run_task(io, [&]() -> asio::awaitable<void> {
        std::vector<std::unique_ptr<gateway_client>> clients;
        const std::string tok = token();
        for (int s = 0; s < 6; ++s) {
            clients.push_back(std::make_unique<gateway_client>(io));
            co_await clients.back()->open(g.port());
            co_await clients.back()->connect(tok);
            co_await clients.back()->subscribe("h.r");
        }
        co_await publish_to(g.redis(), opts, "h.r", "1");
        for (auto& c : clients)
            EXPECT_EQ((co_await c->push()).at("data").as_int64(), 1);
        akv::request flush;
        flush.push("FLUSHALL");
        co_await g.redis().exec(flush, akv::ignore);
        co_await publish_to(g.redis(), opts, "h.r", "2"); // a new epoch: everyone resyncs
        for (auto& c : clients) {
            auto m = co_await c->push();
            EXPECT_EQ(std::string(m.at("op").as_string()), "resync");
        }
        // And can subscribe again, on whichever thread.
        for (auto& c : clients)
            co_await c->subscribe("h.r");
        co_await publish_to(g.redis(), opts, "h.r", "3");
        for (auto& c : clients)
            EXPECT_EQ((co_await c->push()).at("data").as_int64(), 3);
    }());
}

TEST(GatewayThreads, ShutdownClosesSessionsOnEveryThread) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), threaded(4));
    std::vector<std::unique_ptr<gateway_client>> clients;
    std::vector<int> codes;
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::string tok = token();
        for (int s = 0; s < 12; ++s) {
            clients.push_back(std::make_unique<gateway_client>(io));
            co_await clients.back()->open(g.port());
            co_await clients.back()->connect(tok);
            co_await clients.back()->subscribe("plain");
        }
    }());
    // Reading while the server stops, so each answers its close frame.
    for (auto& c : clients)
        asio::co_spawn(
            io,
            [&codes, &c]() -> asio::awaitable<void> { codes.push_back(co_await c->closed_with()); },
            asio::detached);
    g.stop();
    EXPECT_FALSE(g.error);
    ASSERT_TRUE(run_until(
        io, [&] { return codes.size() == clients.size(); }, 10s));
    for (int code : codes)
        EXPECT_EQ(code, 1001);
}

// The channels with the most subscribers add up every thread's sessions (each counted on its own
// thread), in order, ties by name, as many as asked; sessions that go are counted out.
TEST(GatewayThreads, ChannelCountsAddUpTheSessionsOfEveryThread) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), threaded(3));
    std::vector<std::unique_ptr<gateway_client>> clients;
    auto counts = [&](std::size_t limit) {
        std::vector<gw::channel_count> out;
        run_task(io, [&]() -> asio::awaitable<void> {
            out = co_await g.server->channel_counts(limit);
        }());
        std::vector<std::pair<std::string, std::uint64_t>> named;
        for (const auto& c : out) {
            EXPECT_FALSE(c.present) << c.name; // no presence rule
            named.emplace_back(c.name, c.subscribers);
        }
        return named;
    };
    using named = std::vector<std::pair<std::string, std::uint64_t>>;
    EXPECT_EQ(counts(10), named{});
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::string tok = token();
        // 10 sessions, round robin over the 3 threads: all on "a", 6 on "b", 3 on "c", 2 on
        // "d" and on "e".
        for (int s = 0; s < 10; ++s) {
            clients.push_back(std::make_unique<gateway_client>(io));
            co_await clients.back()->open(g.port());
            co_await clients.back()->connect(tok);
            co_await clients.back()->subscribe("a");
            if (s < 6) co_await clients.back()->subscribe("b");
            if (s < 3) co_await clients.back()->subscribe("c");
            if (s < 2) co_await clients.back()->subscribe("d");
            if (s >= 8) co_await clients.back()->subscribe("e");
        }
    }());
    EXPECT_EQ(counts(10), (named{{"a", 10}, {"b", 6}, {"c", 3}, {"d", 2}, {"e", 2}}));
    EXPECT_EQ(counts(4), (named{{"a", 10}, {"b", 6}, {"c", 3}, {"d", 2}}));
    EXPECT_EQ(counts(0), named{});

    run_task(io, [&]() -> asio::awaitable<void> {
        co_await clients[0]->call(R"({"op":"unsubscribe","channel":"b"})");
    }());
    for (int s = 1; s < 4; ++s)
        clients[s]->drop();
    const named after{{"a", 7}, {"b", 2}, {"e", 2}, {"c", 1}, {"d", 1}};
    EXPECT_TRUE(run_until(
        io, [&] { return counts(10) == after; }, 10s))
        << testing::PrintToString(counts(10));
}
