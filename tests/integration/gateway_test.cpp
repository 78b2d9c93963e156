// The WebSocket gateway against a real server: protocol, fan-out, slow consumers, history and
// resume, two gateways on one Redis, auth, limits, HTTP routes, graceful shutdown (over TLS:
// gateway_tls_test.cpp).
#include "support/gateway_client.hpp"

#include <akv/config.hpp>
#include <akv/gateway/publish.hpp>
#include <akv/gateway/token.hpp>
#include <akv/response.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <chrono>

namespace {

using namespace akv::test;
namespace gw = akv::gateway;

const std::string secret = "test-secret-of-the-gateway-tests";

std::string token_for(std::vector<std::string> channels, std::vector<std::string> publish = {},
                      std::int64_t expires_in = 3600) {
    gw::token_claims c;
    c.subject = "alice";
    c.expires = std::time(nullptr) + expires_in;
    c.channels = std::move(channels);
    c.publish = std::move(publish);
    return gw::sign_token(c, secret);
}

gw::options base_options() {
    gw::options o;
    o.token_secret = secret;
    o.api_key = "key-1";
    o.history = {{"h.*", 1000, std::chrono::seconds(0)}, {"short.*", 3, std::chrono::seconds(0)}};
    return o;
}

std::string text(const json::value& v) { return std::string(v.as_string()); }

// gateway::publish with views for arguments (g++ 12: no temporaries in co_await expressions).
asio::awaitable<std::optional<gw::position>> pub(akv::client& c, const gw::options& o,
                                                 std::string_view channel, std::string_view data) {
    std::string ch(channel), d(data);
    co_return co_await gw::publish(c, o, std::move(ch), std::move(d));
}

TEST(Gateway, ConnectSubscribeAndReceive) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), base_options());
    run_task(io, [&]() -> asio::awaitable<void> {
        gateway_client c(io);
        co_await c.open(g.port());
        const std::string tok = token_for({"news", "h.*"}, {"h.*"});
        auto hello = co_await c.connect(tok);
        EXPECT_EQ(text(hello.at("op")), "connected");
        EXPECT_EQ(text(hello.at("sub")), "alice");

        auto ok = co_await c.subscribe("news");
        EXPECT_TRUE(ok.at("ok").as_bool());
        EXPECT_FALSE(ok.contains("offset")) << "news has no history";
        co_await redis_publish(g.redis(), "news", R"({"a":1})");
        co_await redis_publish(g.redis(), "news", "plain text\nwith a newline");
        auto m1 = co_await c.push();
        EXPECT_EQ(text(m1.at("channel")), "news");
        EXPECT_EQ(m1.at("data").as_object().at("a").as_int64(), 1);
        EXPECT_FALSE(m1.contains("offset"));
        auto m2 = co_await c.push();
        EXPECT_EQ(text(m2.at("data")), "plain text\nwith a newline");

        auto h = co_await c.subscribe("h.1");
        EXPECT_EQ(text(h.at("offset")), "0-0");
        auto published = co_await c.call(R"({"op":"publish","channel":"h.1","data":{"n":7}})");
        EXPECT_TRUE(published.at("ok").as_bool()) << json::serialize(published);
        auto m3 = co_await c.push();
        EXPECT_EQ(text(m3.at("offset")), text(published.at("offset")));
        EXPECT_EQ(m3.at("data").as_object().at("n").as_int64(), 7);

        auto pong = co_await c.call(R"({"op":"ping"})");
        EXPECT_EQ(text(pong.at("op")), "pong");
        auto un = co_await c.call(R"({"op":"unsubscribe","channel":"news"})");
        EXPECT_TRUE(un.at("ok").as_bool());
        auto again = co_await c.call(R"({"op":"unsubscribe","channel":"news"})");
        EXPECT_EQ(text(again.at("error").as_object().at("code")), "not_subscribed");
        // After unsubscribing, news no longer arrives; h.1 still does, and comes first.
        co_await redis_publish(g.redis(), "news", R"("gone")");
        co_await pub(g.redis(), g.server->get_options(), "h.1", R"("still")");
        auto m4 = co_await c.push();
        EXPECT_EQ(text(m4.at("data")), "still");
    }());
}

TEST(Gateway, FansOutToAThousandSessions) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    auto opts = base_options();
    opts.anonymous = {"fan"};
    running_gateway g(io, redis.config(), opts);
    constexpr int sessions = 1000, messages = 20;
    std::vector<std::unique_ptr<gateway_client>> clients;
    std::vector<int> received(sessions, 0);
    std::vector<int> out_of_order(sessions, 0);
    int subscribed = 0;
    for (int i = 0; i < sessions; ++i) clients.push_back(std::make_unique<gateway_client>(io));
    for (int i = 0; i < sessions; ++i) {
        asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
            auto& c = *clients[i];
            co_await c.open(g.port());
            co_await c.connect();
            auto ok = co_await c.subscribe("fan");
            if (ok.contains("ok")) ++subscribed;
            for (int n = 0; n < messages; ++n) {
                auto m = co_await c.push();
                if (m.at("data").as_int64() != n) ++out_of_order[i];
                ++received[i];
            }
        }, [](std::exception_ptr e) { if (e) ADD_FAILURE() << "a session failed"; });
    }
    ASSERT_TRUE(run_until(io, [&] { return subscribed == sessions; }, 60s))
        << subscribed << " of " << sessions << " subscribed";
    EXPECT_EQ(g.server->snapshot().sessions, sessions);
    EXPECT_EQ(g.server->snapshot().channels, 1u) << "one Redis subscription for every session";
    run_task(io, [&]() -> asio::awaitable<void> {
        for (int n = 0; n < messages; ++n) {
            const std::string v = std::to_string(n);
            co_await redis_publish(g.redis(), "fan", v);
        }
    }());
    const bool all = run_until(io, [&] {
        for (int r : received)
            if (r < messages) return false;
        return true;
    }, 60s);
    int total = 0, disorder = 0;
    for (int i = 0; i < sessions; ++i) total += received[i], disorder += out_of_order[i];
    EXPECT_TRUE(all) << total << " of " << sessions * messages << " delivered";
    EXPECT_EQ(total, sessions * messages);
    EXPECT_EQ(disorder, 0);
    const auto s = g.server->snapshot();
    EXPECT_EQ(s.messages_in, static_cast<std::uint64_t>(messages));
    EXPECT_EQ(s.messages_out, static_cast<std::uint64_t>(sessions * (messages + 2))) // + 2 replies
        << "frames " << s.frames_out;
    EXPECT_EQ(s.dropped, 0u);
    for (auto& c : clients) c->drop();
    EXPECT_TRUE(run_until(io, [&] { return g.server->snapshot().sessions == 0; }, 20s));
    EXPECT_EQ(g.server->snapshot().channels, 0u) << "the last session out unsubscribes";
}

// A session that reads nothing: its queue fills and it is cut off (or loses its oldest
// messages); a session that reads gets everything, in order, meanwhile.
void slow_consumer(gw::slow_consumer_policy policy) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    auto opts = base_options();
    opts.anonymous = {"*"};
    opts.send_queue = 64;
    opts.slow_policy = policy;
    running_gateway g(io, redis.config(), opts);
    gateway_client fast(io), slow(io);
    constexpr int messages = 3000;
    const std::string pad(4096, 'x');
    int fast_got = 0, fast_disorder = 0;
    bool slow_ready = false, fast_ready = false;
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await slow.open(g.port());
        co_await slow.connect();
        co_await slow.subscribe("load");
        slow_ready = true;
        co_await fast.open(g.port());
        co_await fast.connect();
        co_await fast.subscribe("load");
        fast_ready = true;
    }());
    // The slow client reads nothing from here on; its socket buffers fill, then its queue.
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        for (int n = 0; n < messages; ++n) {
            auto m = co_await fast.push();
            if (m.at("data").as_object().at("n").as_int64() != n) ++fast_disorder;
            ++fast_got;
        }
    }, [](std::exception_ptr e) { if (e) ADD_FAILURE() << "the fast session failed"; });
    run_task(io, [&]() -> asio::awaitable<void> {
        for (int n = 0; n < messages; ++n) {
            json::object o;
            o["n"] = n;
            o["pad"] = pad;
            const std::string v = json::serialize(o);
            co_await redis_publish(g.redis(), "load", v);
        }
    }());
    EXPECT_TRUE(run_until(io, [&] { return fast_got == messages; }, 60s))
        << "fast session got " << fast_got << " of " << messages;
    EXPECT_EQ(fast_disorder, 0);
    const auto s = g.server->snapshot();
    if (policy == gw::slow_consumer_policy::disconnect) {
        EXPECT_EQ(s.slow_disconnects, 1u);
        int code = 0;
        run_task(io, [&]() -> asio::awaitable<void> { code = co_await slow.closed_with(); }());
        EXPECT_EQ(code, 4008) << slow.close_reason();
    } else {
        EXPECT_EQ(s.slow_disconnects, 0u);
        EXPECT_GT(s.dropped, 0u);
        // It still gets messages: the newest ones.
        int last = -1;
        run_task(io, [&]() -> asio::awaitable<void> {
            while (last < messages - 1) {
                auto m = co_await slow.push();
                if (m.contains("data")) last = static_cast<int>(m.at("data").as_object().at("n").as_int64());
            }
        }());
        EXPECT_EQ(last, messages - 1);
    }
    (void)slow_ready;
    (void)fast_ready;
}

TEST(Gateway, SlowConsumerIsDisconnectedOthersGoOn) {
    slow_consumer(gw::slow_consumer_policy::disconnect);
}

TEST(Gateway, SlowConsumerLosesOldestOthersGoOn) {
    slow_consumer(gw::slow_consumer_policy::drop_oldest);
}

TEST(Gateway, ResumesFromOffsetWithNothingLostOrTwice) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), base_options());
    const auto& opts = g.server->get_options();
    run_task(io, [&]() -> asio::awaitable<void> {
        std::string last, epoch;
        {
            gateway_client c(io);
            co_await c.open(g.port());
            const std::string tok = token_for({"h.*"});
            co_await c.connect(tok);
            auto ok = co_await c.subscribe("h.room");
            last = text(ok.at("offset"));
            epoch = text(ok.at("epoch"));
            for (int n = 0; n < 3; ++n) {
                const std::string v = std::to_string(n);
                co_await pub(g.redis(), opts, "h.room", v);
            }
            for (int n = 0; n < 3; ++n) {
                auto m = co_await c.push();
                EXPECT_EQ(m.at("data").as_int64(), n);
                last = text(m.at("offset"));
            }
            c.drop();
        }
        // Missed while away.
        for (int n = 3; n < 8; ++n) {
            const std::string v = std::to_string(n);
            co_await pub(g.redis(), opts, "h.room", v);
        }
        gateway_client c(io);
        co_await c.open(g.port());
        const std::string tok = token_for({"h.*"});
        co_await c.connect(tok);
        // Live messages race the resume: published while it runs.
        bool publishing_done = false;
        asio::co_spawn(io, [&]() -> asio::awaitable<void> {
            for (int n = 8; n < 40; ++n) {
                const std::string v = std::to_string(n);
                co_await pub(g.redis(), opts, "h.room", v);
            }
            publishing_done = true;
        }, asio::detached);
        auto ok = co_await c.subscribe("h.room", last, epoch);
        EXPECT_TRUE(ok.at("recovered").as_bool()) << json::serialize(ok);
        std::string prev = last;
        for (int n = 3; n < 40; ++n) {
            auto m = co_await c.push();
            EXPECT_EQ(m.at("data").as_int64(), n) << "in order, none lost, none twice";
            const std::string off = text(m.at("offset"));
            auto split = [](const std::string& o) {
                const auto dash = o.find('-');
                return std::pair{std::stoull(o.substr(0, dash)), std::stoull(o.substr(dash + 1))};
            };
            EXPECT_LT(split(prev), split(off)) << prev << " then " << off;
            prev = off;
        }
        EXPECT_TRUE(publishing_done);
        auto ping = co_await c.call(R"({"op":"ping"})");
        EXPECT_TRUE(c.held.empty()) << "no further pushes (duplicates) before the pong";
        (void)ping;
    }());
}

// The gateway's own Redis connection drops mid-stream: what was published meanwhile is read
// back from the history, so the session still gets every message once, in order.
TEST(Gateway, CatchesUpFromHistoryAfterLosingRedis) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    auto cfg = redis.config();
    cfg.client_name = "gateway-under-test";
    running_gateway g(io, cfg, base_options());
    running_client publisher(io, redis.config());
    const auto& opts = g.server->get_options();
    constexpr int messages = 200;
    run_task(io, [&]() -> asio::awaitable<void> {
        gateway_client c(io);
        co_await c.open(g.port());
        const std::string tok = token_for({"h.*"});
        co_await c.connect(tok);
        co_await c.subscribe("h.cu");
        for (int n = 0; n < messages / 2; ++n) {
            const std::string v = std::to_string(n);
            co_await pub(publisher.client, opts, "h.cu", v);
        }
        for (int n = 0; n < messages / 2; ++n) {
            auto m = co_await c.push();
            EXPECT_EQ(m.at("data").as_int64(), n);
        }
        akv::request kill;
        kill.push("CLIENT", "KILL", "USER", "default", "SKIPME", "yes");
        akv::response<std::int64_t> killed;
        co_await publisher.client.exec(kill, killed);
        EXPECT_GE(std::get<0>(killed).value(), 1);
        for (int n = messages / 2; n < messages; ++n) {
            const std::string v = std::to_string(n);
            co_await pub(publisher.client, opts, "h.cu", v);
        }
        for (int n = messages / 2; n < messages; ++n) {
            auto m = co_await c.push();
            EXPECT_EQ(m.at("data").as_int64(), n) << "every message once, in order";
        }
        auto pong = co_await c.call(R"({"op":"ping"})");
        EXPECT_TRUE(c.held.empty()) << "nothing twice";
        (void)pong;
    }());
    EXPECT_GT(g.server->snapshot().recovered, 0u);
}

TEST(Gateway, ResumeTooFarBackIsAGap) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), base_options());
    const auto& opts = g.server->get_options();
    run_task(io, [&]() -> asio::awaitable<void> {
        auto first = co_await pub(g.redis(), opts, "short.x", "0");
        for (int n = 1; n < 10; ++n) {
            const std::string v = std::to_string(n);
            co_await pub(g.redis(), opts, "short.x", v);
        }
        const std::string tok = token_for({"short.*"});
        gateway_client c(io);
        co_await c.open(g.port());
        co_await c.connect(tok);
        auto ok = co_await c.subscribe("short.x", first->offset, first->epoch);
        EXPECT_FALSE(ok.at("recovered").as_bool()) << json::serialize(ok);
        // From an offset still kept (the third newest minus one): recovered.
        gateway_client d(io);
        co_await d.open(g.port());
        co_await d.connect(tok);
        akv::request req;
        req.push("XRANGE", "akvgw:{short.x}:history", "-", "+");
        akv::response<std::vector<std::pair<std::string, std::vector<std::string>>>> r;
        co_await g.redis().exec(req, r);
        const auto& kept = std::get<0>(r).value();
        EXPECT_EQ(kept.size(), 3u);
        auto ok2 = co_await d.subscribe("short.x", kept.front().first, first->epoch);
        EXPECT_TRUE(ok2.at("recovered").as_bool()) << json::serialize(ok2);
        auto a = co_await d.push();
        auto b = co_await d.push();
        EXPECT_EQ(a.at("data").as_int64(), 8);
        EXPECT_EQ(b.at("data").as_int64(), 9);
        // An offset from the future (the history was reset) is a gap too.
        gateway_client e(io);
        co_await e.open(g.port());
        co_await e.connect(tok);
        auto ok3 = co_await e.subscribe("short.x", "99999999999999-0", first->epoch);
        EXPECT_FALSE(ok3.at("recovered").as_bool());
    }());
}

TEST(Gateway, TwoGatewaysOnOneRedisBothDeliver) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway a(io, redis.config(), base_options());
    running_gateway b(io, redis.config(), base_options());
    run_task(io, [&]() -> asio::awaitable<void> {
        gateway_client ca(io), cb(io);
        co_await ca.open(a.port());
        co_await cb.open(b.port());
        const std::string tok = token_for({"h.*"}, {"h.*"});
        co_await ca.connect(tok);
        co_await cb.connect(tok);
        co_await ca.subscribe("h.shared");
        co_await cb.subscribe("h.shared");
        auto published = co_await ca.call(R"({"op":"publish","channel":"h.shared","data":"from a"})");
        auto [status, body] = co_await http_call(b.port(), http::verb::post, "/api/publish",
                                                 R"({"channel":"h.shared","data":"from b"})",
                                                 "Authorization", "apikey key-1");
        EXPECT_EQ(status, 200) << body;
        for (auto* c : {&ca, &cb}) {
            auto m1 = co_await c->push();
            auto m2 = co_await c->push();
            EXPECT_EQ(text(m1.at("data")), "from a");
            EXPECT_EQ(text(m2.at("data")), "from b");
            EXPECT_EQ(text(m1.at("offset")), text(published.at("offset")));
        }
    }());
}

TEST(Gateway, RefusesBadTokensAndEnforcesPermissions) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), base_options());
    run_task(io, [&]() -> asio::awaitable<void> {
        auto closes_with = [&](std::string_view token) -> asio::awaitable<std::pair<int, std::string>> {
            gateway_client c(io);
            co_await c.open(g.port());
            json::object req;
            req["op"] = "connect";
            if (!token.empty()) req["token"] = token;
            const std::string hello = json::serialize(req);
            co_await c.send(hello);
            const int code = co_await c.closed_with();
            co_return std::pair{code, c.close_reason()};
        };
        auto none = co_await closes_with("");
        EXPECT_EQ(none.first, 4001);
        EXPECT_NE(none.second.find("token is required"), std::string::npos) << none.second;
        std::string forged = token_for({"*"});
        // Not the last character: its low bits are padding in base64url.
        char& c5 = forged[forged.size() - 5];
        c5 = c5 == 'A' ? 'B' : 'A';
        auto forged_result = co_await closes_with(forged);
        EXPECT_EQ(forged_result.first, 4001);
        auto malformed = co_await closes_with("not.a.token");
        EXPECT_EQ(malformed.first, 4001);
        const std::string old = token_for({"*"}, {}, -10);
        auto expired = co_await closes_with(old);
        EXPECT_EQ(expired.first, 4003);
        EXPECT_NE(expired.second.find("expired"), std::string::npos) << expired.second;

        gateway_client c(io);
        co_await c.open(g.port());
        const std::string tok = token_for({"h.a*"}, {"h.a1"});
        co_await c.connect(tok);
        auto denied = co_await c.subscribe("h.b");
        EXPECT_EQ(text(denied.at("error").as_object().at("code")), "forbidden");
        auto allowed = co_await c.subscribe("h.a2");
        EXPECT_TRUE(allowed.contains("ok"));
        auto twice = co_await c.subscribe("h.a2");
        EXPECT_EQ(text(twice.at("error").as_object().at("code")), "already_subscribed");
        auto bad = co_await c.subscribe("h.a*");
        EXPECT_EQ(text(bad.at("error").as_object().at("code")), "bad_request");
        auto no_pub = co_await c.call(R"({"op":"publish","channel":"h.a2","data":1})");
        EXPECT_EQ(text(no_pub.at("error").as_object().at("code")), "forbidden");
        auto missing = co_await c.call(R"({"op":"publish","channel":"h.a1"})");
        EXPECT_EQ(text(missing.at("error").as_object().at("code")), "bad_request");
        EXPECT_NE(json::serialize(missing).find("data"), std::string::npos);
        auto yes = co_await c.call(R"({"op":"publish","channel":"h.a1","data":1})");
        EXPECT_TRUE(yes.contains("ok")) << json::serialize(yes);

        // Anonymous sessions may subscribe to what options::anonymous allows, never publish.
        // (base_options has none: covered above by "a token is required".)

        // Origin: the gateway's own, or none, or a listed one.
        gateway_client same(io), other(io);
        const std::string own = "http://127.0.0.1:" + std::to_string(g.port());
        co_await same.open(g.port(), own);
        std::string refused;
        try {
            co_await other.open(g.port(), "https://evil.example");
        } catch (const std::exception& e) {
            refused = e.what();
        }
        EXPECT_NE(refused.find("403"), std::string::npos) << refused;
    }());
}

TEST(Gateway, TokenExpiryEndsTheSession) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), base_options());
    run_task(io, [&]() -> asio::awaitable<void> {
        gateway_client c(io);
        co_await c.open(g.port());
        // Expiry is in whole seconds and a token is refused from its second on: 2 s from now
        // leaves at least one second for the connect (1 failed under ASan at a second's edge).
        const std::string tok = token_for({"*"}, {}, 2);
        auto hello = co_await c.connect(tok);
        EXPECT_EQ(text(hello.at("op")), "connected");
        const int code1 = co_await c.closed_with();
        EXPECT_EQ(code1, 4003);
    }());
}

TEST(Gateway, LimitsCloseWithTheRightCode) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    auto opts = base_options();
    opts.anonymous = {"*"};
    opts.max_channels = 3;
    opts.max_frame = 1024;
    opts.max_rate = 5;
    opts.max_burst = 20;
    opts.connect_timeout = std::chrono::milliseconds(300);
    running_gateway g(io, redis.config(), opts);
    run_task(io, [&]() -> asio::awaitable<void> {
        auto connected = [&]() -> asio::awaitable<std::unique_ptr<gateway_client>> {
            auto c = std::make_unique<gateway_client>(io);
            co_await c->open(g.port());
            co_await c->connect();
            co_return c;
        };
        {
            auto c = co_await connected();
            for (int i = 0; i < 3; ++i) {
                const std::string ch = "ch" + std::to_string(i);
                co_await c->subscribe(ch);
            }
            co_await c->send(R"({"op":"subscribe","channel":"ch3"})");
            const int code2 = co_await c->closed_with();
            EXPECT_EQ(code2, 1008);
            EXPECT_NE(c->close_reason().find("too many channels"), std::string::npos) << c->close_reason();
        }
        {
            auto c = co_await connected();
            const std::string big = R"({"op":"ping","pad":")" + std::string(2000, 'x') + "\"}";
            co_await c->send(big);
            const int code3 = co_await c->closed_with();
            EXPECT_EQ(code3, 1009);
        }
        {
            auto c = co_await connected();
            for (int i = 0; i < 40; ++i) co_await c->send(R"({"op":"ping"})");
            const int code4 = co_await c->closed_with();
            EXPECT_EQ(code4, 1008);
            EXPECT_NE(c->close_reason().find("rate"), std::string::npos) << c->close_reason();
        }
        {
            auto c = co_await connected();
            co_await c->send_binary("\x01\x02");
            const int code5 = co_await c->closed_with();
            EXPECT_EQ(code5, 1003);
        }
        {
            auto c = co_await connected();
            co_await c->send("{not json");
            const int code6 = co_await c->closed_with();
            EXPECT_EQ(code6, 1007);
            EXPECT_NE(c->close_reason().find("not JSON"), std::string::npos) << c->close_reason();
        }
        {
            auto c = co_await connected();
            co_await c->send(R"({"op":"shout"})");
            const int code7 = co_await c->closed_with();
            EXPECT_EQ(code7, 1007);
            EXPECT_NE(c->close_reason().find("shout"), std::string::npos) << c->close_reason();
        }
        {
            gateway_client c(io);
            co_await c.open(g.port());
            co_await c.send(R"({"op":"ping"})");
            const int code8 = co_await c.closed_with();
            EXPECT_EQ(code8, 1008) << "connect must come first";
        }
        {
            gateway_client c(io);
            co_await c.open(g.port());
            const int code9 = co_await c.closed_with();
            EXPECT_EQ(code9, 1008) << "no connect within the timeout";
            EXPECT_NE(c.close_reason().find("connect"), std::string::npos) << c.close_reason();
        }
        // The gateway is still fine.
        auto c = co_await connected();
        auto pong = co_await c->call(R"({"op":"ping"})");
        EXPECT_EQ(text(pong.at("op")), "pong");
    }());
}

// With client-side caching on (config::cache), its counters are exported beside the gateway's.
TEST(Gateway, MetricsIncludeTheRedisClientCache) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    akv::config cfg = redis.config();
    cfg.cache.kind = akv::cache_options::mode::tracking;
    running_gateway g(io, cfg, base_options());
    run_task(io, [&]() -> asio::awaitable<void> {
        auto metrics = co_await http_call(g.port(), http::verb::get, "/metrics");
        EXPECT_EQ(metrics.first, 200);
        for (const char* series : {"akv_redis_cache_hits_total 0", "akv_redis_cache_bytes 0",
                                   "# TYPE akv_redis_cache_invalidations_total counter"})
            EXPECT_NE(metrics.second.find(series), std::string::npos) << series << "\n"
                                                                      << metrics.second;
    }());
}

TEST(Gateway, HttpRoutes) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    auto opts = base_options();
    opts.max_publish = 1000;
    running_gateway g(io, redis.config(), opts);
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto port = g.port();
        auto health = co_await http_call(port, http::verb::get, "/healthz");
        EXPECT_EQ(health.first, 200);
        auto page = co_await http_call(port, http::verb::get, "/");
        EXPECT_EQ(page.first, 200);
        EXPECT_NE(page.second.find("akv.js"), std::string::npos);
        { auto r_ = co_await http_call(port, http::verb::get, "/akv.js"); EXPECT_EQ(r_.first, 200); }
        { auto r_ = co_await http_call(port, http::verb::get, "/akv.mjs"); EXPECT_EQ(r_.first, 200); }
        { auto r_ = co_await http_call(port, http::verb::get, "/nope"); EXPECT_EQ(r_.first, 404); }
        { auto r_ = co_await http_call(port, http::verb::get, "/../etc/passwd"); EXPECT_EQ(r_.first, 404); }

        auto ok = co_await http_call(port, http::verb::post, "/api/publish",
                                     R"({"channel":"h.api","data":[1,2]})", "Authorization", "apikey key-1");
        EXPECT_EQ(ok.first, 200);
        EXPECT_NE(ok.second.find("offset"), std::string::npos) << ok.second;
        auto plain = co_await http_call(port, http::verb::post, "/api/publish",
                                        R"({"channel":"nohist","data":1})", "X-API-Key", "key-1");
        EXPECT_EQ(plain.first, 200);
        EXPECT_EQ(plain.second, "{}");
        auto wrong = co_await http_call(port, http::verb::post, "/api/publish",
                                        R"({"channel":"x","data":1})", "Authorization", "apikey nope");
        EXPECT_EQ(wrong.first, 401);
        auto nokey = co_await http_call(port, http::verb::post, "/api/publish", R"({"channel":"x","data":1})");
        EXPECT_EQ(nokey.first, 401);
        auto notjson = co_await http_call(port, http::verb::post, "/api/publish", "{", "Authorization", "apikey key-1");
        EXPECT_EQ(notjson.first, 400);
        EXPECT_NE(notjson.second.find("not JSON"), std::string::npos) << notjson.second;
        auto nochannel = co_await http_call(port, http::verb::post, "/api/publish", R"({"data":1})", "Authorization", "apikey key-1");
        EXPECT_EQ(nochannel.first, 400);
        EXPECT_NE(nochannel.second.find("channel"), std::string::npos) << nochannel.second;
        auto badchannel = co_await http_call(port, http::verb::post, "/api/publish",
                                             R"({"channel":"a*","data":1})", "Authorization", "apikey key-1");
        EXPECT_EQ(badchannel.first, 400);
        const std::string big_body = R"({"channel":"x","data":")" + std::string(5000, 'y') + "\"}";
        auto big = co_await http_call(port, http::verb::post, "/api/publish", big_body, "Authorization",
                                      "apikey key-1");
        EXPECT_EQ(big.first, 413);
        auto get = co_await http_call(port, http::verb::get, "/api/publish");
        EXPECT_EQ(get.first, 405);

        auto metrics = co_await http_call(port, http::verb::get, "/metrics");
        EXPECT_EQ(metrics.first, 200);
        EXPECT_NE(metrics.second.find("akv_gateway_published_total 2"), std::string::npos) << metrics.second;
        EXPECT_NE(metrics.second.find("akv_gateway_sessions 0"), std::string::npos);
        EXPECT_NE(metrics.second.find("akv_gateway_redis_latency_seconds"), std::string::npos);
        EXPECT_EQ(metrics.second.find("akv_redis_cache"), std::string::npos)
            << "no cache, no series";
        // A WebSocket upgrade anywhere but /ws is refused.
        gateway_client c(io);
        std::string refused;
        try {
            auto ep = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
            co_await beast::get_lowest_layer(c.stream()).async_connect(ep, asio::use_awaitable);
            co_await c.stream().async_handshake("127.0.0.1", "/other", asio::use_awaitable);
        } catch (const std::exception& e) {
            refused = e.what();
        }
        EXPECT_FALSE(refused.empty());
    }());
}

// Webhooks: the app's handler gets the body; signatures are checked when a secret is set;
// the handler's failures become 400 (a gateway_error) or 503 (anything else).
TEST(Gateway, WebhooksReachTheirHandlerSignedOrRefused) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    auto opts = base_options();
    opts.max_publish = 1000;
    opts.webhook_secret = "hook-secret";
    std::vector<akv::gateway::webhook_request> seen;
    opts.webhooks["/hooks/echo"] = [&](akv::gateway::webhook_request in) -> asio::awaitable<akv::gateway::webhook_reply> {
        seen.push_back(in);
        if (in.body == "bad")
            throw boost::system::system_error(akv::gateway::gateway_error::bad_message, "no good: bad");
        if (in.body == "down") throw std::runtime_error("the queue is down");
        akv::gateway::webhook_reply r;
        r.status = 202;
        r.body = R"({"took":)" + std::to_string(in.body.size()) + "}";
        co_return r;
    };
    running_gateway g(io, redis.config(), opts);
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto port = g.port();
        const std::string body = R"({"comment":"count me in"})";
        const std::string sig = akv::gateway::hub_signature(body, "hook-secret");
        EXPECT_EQ(sig.substr(0, 7), "sha256=");
        EXPECT_EQ(sig.size(), 7u + 64u);
        auto ok = co_await http_call(port, http::verb::post, "/hooks/echo", body, "X-Hub-Signature-256", sig);
        EXPECT_EQ(ok.first, 202) << ok.second;
        EXPECT_EQ(ok.second, R"({"took":25})");
        auto unsigned_ = co_await http_call(port, http::verb::post, "/hooks/echo", body);
        EXPECT_EQ(unsigned_.first, 401);
        EXPECT_NE(unsigned_.second.find("missing X-Hub-Signature-256"), std::string::npos) << unsigned_.second;
        const std::string other = body + " ";
        auto forged = co_await http_call(port, http::verb::post, "/hooks/echo", other, "X-Hub-Signature-256", sig);
        EXPECT_EQ(forged.first, 401);
        EXPECT_NE(forged.second.find("does not match the body"), std::string::npos) << forged.second;
        const std::string bad_sig = akv::gateway::hub_signature("bad", "hook-secret");
        auto bad = co_await http_call(port, http::verb::post, "/hooks/echo", "bad", "X-Hub-Signature-256", bad_sig);
        EXPECT_EQ(bad.first, 400);
        EXPECT_NE(bad.second.find("no good: bad"), std::string::npos) << bad.second;
        const std::string down_sig = akv::gateway::hub_signature("down", "hook-secret");
        auto down = co_await http_call(port, http::verb::post, "/hooks/echo", "down", "X-Hub-Signature-256", down_sig);
        EXPECT_EQ(down.first, 503);
        EXPECT_NE(down.second.find("the queue is down"), std::string::npos) << down.second;
        auto get = co_await http_call(port, http::verb::get, "/hooks/echo");
        EXPECT_EQ(get.first, 405);
        const std::string big(5000, 'x');
        auto too_big = co_await http_call(port, http::verb::post, "/hooks/echo", big, "X-Hub-Signature-256",
                                          akv::gateway::hub_signature(big, "hook-secret"));
        EXPECT_EQ(too_big.first, 413);
        auto metrics = co_await http_call(port, http::verb::get, "/metrics");
        EXPECT_NE(metrics.second.find("akv_gateway_webhooks_total 1"), std::string::npos) << metrics.second;
    }());
    ASSERT_EQ(seen.size(), 3u); // the good one, "bad" and "down": never an unsigned or forged one
    EXPECT_EQ(seen[0].path, "/hooks/echo");
    EXPECT_EQ(seen[0].body, R"({"comment":"count me in"})");
    EXPECT_TRUE(akv::gateway::check_hub_signature(akv::gateway::hub_signature("x", "k"), "x", "k"));
    EXPECT_FALSE(akv::gateway::check_hub_signature("sha256=00", "x", "k"));
    EXPECT_FALSE(akv::gateway::check_hub_signature("", "x", "k"));
}

TEST(Gateway, ShutdownClosesSessionsWith1001AfterTheirQueues) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    auto opts = base_options();
    opts.anonymous = {"*"};
    running_gateway g(io, redis.config(), opts);
    std::vector<std::unique_ptr<gateway_client>> clients;
    run_task(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 10; ++i) {
            clients.push_back(std::make_unique<gateway_client>(io));
            co_await clients.back()->open(g.port());
            co_await clients.back()->connect();
            co_await clients.back()->subscribe("bye");
        }
        for (int n = 0; n < 50; ++n) {
            const std::string v = std::to_string(n);
            co_await redis_publish(g.redis(), "bye", v);
        }
    }());
    // Wait until the gateway took all 50 from Redis, then stop it: they must still arrive.
    ASSERT_TRUE(run_until(io, [&] { return g.server->snapshot().messages_in == 50; }, 20s));
    g.server->stop();
    int done = 0;
    for (auto& c : clients)
        asio::co_spawn(io, [&, cp = c.get()]() -> asio::awaitable<void> {
            int got = 0;
            for (;;) {
                auto l = co_await cp->line();
                if (!l) break;
                if (l->find("\"data\"") != std::string::npos) ++got;
            }
            EXPECT_EQ(got, 50);
            EXPECT_EQ(cp->close_code(), 1001);
            ++done;
        }, asio::detached);
    EXPECT_TRUE(run_until(io, [&] { return done == 10 && g.finished; }, 20s));
    EXPECT_FALSE(g.error);
}

TEST(Gateway, BadOptionsAndTlsFilesAreNamed) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_client rc(io, redis.config());
    auto opts = base_options();
    opts.tls_cert_file = "/nonexistent/cert.pem";
    opts.tls_key_file = "/nonexistent/key.pem";
    try {
        gw::server s(rc.client, opts);
        ADD_FAILURE() << "missing TLS files accepted";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), gw::gateway_error::bad_tls);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/cert.pem"), std::string::npos) << e.what();
    }
    auto half = base_options();
    half.tls_cert_file = "x.pem";
    auto zero = base_options();
    zero.send_queue = 0;
    for (const auto* o : {&half, &zero}) {
        try {
            gw::server s(rc.client, *o);
            ADD_FAILURE() << "bad options accepted";
        } catch (const boost::system::system_error& e) {
            EXPECT_EQ(e.code(), gw::gateway_error::bad_options);
        }
    }
    // A port in use is named.
    running_gateway first(io, redis.config(), base_options());
    auto taken = base_options();
    taken.port = first.port();
    gw::server second(rc.client, taken);
    std::string failure;
    run_task(io, [&]() -> asio::awaitable<void> {
        try {
            co_await second.run();
        } catch (const boost::system::system_error& e) {
            EXPECT_EQ(e.code(), gw::gateway_error::bind_failed);
            failure = e.what();
        }
    }());
    EXPECT_NE(failure.find(std::to_string(first.port())), std::string::npos) << failure;
}

} // namespace
