// Gateway fan-out across a redis-server SIGKILL and restart (append-only on): sessions keep
// their WebSockets, the gateway's hub reconnects and reads the channel's history back from the
// newest offset it fanned out, so every session gets every acknowledged message, in order.
#include "support/gateway_client.hpp"

#include <akv/gateway/publish.hpp>
#include <akv/gateway/token.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>

#include <gtest/gtest.h>

#include <map>

using namespace akv::test;
namespace gw = akv::gateway;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// gateway::publish, retried until acknowledged (a publish whose reply the kill swallowed may
// have happened: its retry is a second message, which the receivers count as a duplicate).
asio::awaitable<int> publish_until_acked(akv::client& c, const gw::options& o, int n) {
    int attempts = 0;
    asio::steady_timer wait(co_await asio::this_coro::executor);
    for (;;) {
        ++attempts;
        bool ok = false;
        try {
            std::string channel = "h.feed", data = std::to_string(n);
            co_await gw::publish(c, o, std::move(channel), std::move(data));
            ok = true;
        } catch (const boost::system::system_error&) {
        }
        if (ok) co_return attempts;
        wait.expires_after(std::chrono::milliseconds(20));
        co_await wait.async_wait(nothrow);
    }
}

} // namespace

TEST(GatewayFaults, SessionsGetEveryMessageAcrossARedisKillAndRestart) {
    akv::testing::embedded_server redis({.append_only = true});
    auto cfg = redis.config();
    cfg.reconnect_wait_min = std::chrono::milliseconds(10);
    cfg.reconnect_wait_max = std::chrono::milliseconds(100);
    // The gateway comes back after the publisher: what is published in between reaches the
    // sessions only through the history (the path under test).
    auto gateway_cfg = cfg;
    gateway_cfg.reconnect_wait_min = std::chrono::milliseconds(500);
    gateway_cfg.reconnect_wait_max = std::chrono::milliseconds(1000);
    asio::io_context io;
    gw::options opts;
    opts.token_secret = "fault-test-secret";
    opts.history = {{"h.*", 10000, std::chrono::seconds(0)}};
    running_gateway g(io, gateway_cfg, opts);
    running_client publisher(io, cfg);

    gw::token_claims claims;
    claims.subject = "faults";
    claims.expires = std::time(nullptr) + 3600;
    claims.channels = {"h.*"};
    const std::string token = gw::sign_token(claims, opts.token_secret);

    constexpr int sessions = 3, messages = 300;
    int retries = 0;
    std::vector<std::map<int, int>> seen(sessions); // message -> times received
    std::vector<bool> ordered(sessions, true);
    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            std::vector<std::unique_ptr<gateway_client>> clients;
            for (int s = 0; s < sessions; ++s) {
                clients.push_back(std::make_unique<gateway_client>(io));
                co_await clients.back()->open(g.port());
                co_await clients.back()->connect(token);
                co_await clients.back()->subscribe("h.feed");
            }
            for (int n = 0; n < messages; ++n) {
                if (n == messages / 3) {
                    redis.kill();  // SIGKILL: the AOF (fsync always) keeps every acked publish
                    redis.start(); // same port and data dir
                }
                retries += co_await publish_until_acked(publisher.client, g.server->get_options(), n) - 1;
            }
            // Each session reads until it has every message (a duplicate is counted, not fatal).
            for (int s = 0; s < sessions; ++s) {
                std::string last_offset;
                while (static_cast<int>(seen[s].size()) < messages) {
                    json::object m = co_await clients[s]->push();
                    const std::string offset(m.at("offset").as_string());
                    const auto parse = [](const std::string& o) {
                        const auto dash = o.find('-');
                        return std::pair(std::stoull(o.substr(0, dash)), std::stoull(o.substr(dash + 1)));
                    };
                    if (!last_offset.empty() && !(parse(last_offset) < parse(offset))) ordered[s] = false;
                    last_offset = offset;
                    ++seen[s][static_cast<int>(m.at("data").as_int64())];
                }
            }
        }(),
        120s);
    for (int s = 0; s < sessions; ++s) {
        EXPECT_EQ(seen[s].size(), static_cast<std::size_t>(messages)) << "session " << s;
        EXPECT_TRUE(ordered[s]) << "session " << s << ": offsets not increasing";
        int duplicates = 0;
        for (const auto& [n, times] : seen[s]) duplicates += times - 1;
        EXPECT_LE(duplicates, retries) << "session " << s << ": more duplicates than retried publishes";
    }
    EXPECT_GT(g.server->snapshot().recovered, 0u) << "nothing came back through the history";
    std::printf("gateway across a Redis kill: %d sessions x %d messages, %d publishes retried, %llu "
                "recovered from history\n",
                sessions, messages, retries, static_cast<unsigned long long>(g.server->snapshot().recovered));
}
