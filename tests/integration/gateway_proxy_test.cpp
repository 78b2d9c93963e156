// Backend proxies: the application's HTTP endpoints decide connects (from the client's own
// cookie), subscribes the claims do not allow, publishes (allow, refuse, replace the data) and
// answer RPCs. A proxy that is slow, down, answers 5xx, a reply that is not JSON or too big:
// a clear error to the client, and a circuit breaker that stops asking for a while. The
// backend here is a small HTTP server on the test's io_context whose answers the test decides.
#include "support/eventually.hpp"
#include "support/gateway_client.hpp"

#include <akv/gateway/error.hpp>
#include <akv/gateway/token.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <ctime>
#include <functional>
#include <map>
#include <string>
#include <vector>

using namespace akv::test;
namespace gw = akv::gateway;
using tcp = asio::ip::tcp;

namespace {

constexpr const char* secret = "proxy-test-secret";

// The application's backend: answers each POST as `decide` says, after its delay.
class fake_backend {
public:
    struct call {
        std::string target;
        json::object body;
        std::map<std::string, std::string> headers;
    };
    struct answer {
        unsigned status = 200;
        std::string body = R"({"result":{}})";
        std::chrono::milliseconds delay{0};
    };

    fake_backend(asio::io_context& io, std::function<answer(const call&)> decide)
        : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0))
        , decide_(std::move(decide)) {
        asio::co_spawn(io, serve(), asio::detached);
    }
    ~fake_backend() {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
    }

    std::string url(std::string_view path) const {
        return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) +
               std::string(path);
    }
    std::size_t count(std::string_view target) const {
        std::size_t n = 0;
        for (const auto& c : calls)
            if (c.target == target) ++n;
        return n;
    }

    std::vector<call> calls;
    std::function<answer(const call&)> decide_;

private:
    asio::awaitable<void> serve() {
        for (;;) {
            auto [ec, sock] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            asio::co_spawn(acceptor_.get_executor(), answer_one(std::move(sock)), asio::detached);
        }
    }

    asio::awaitable<void> answer_one(tcp::socket sock) {
        beast::flat_buffer buf;
        http::request<http::string_body> req;
        auto [ec, n] =
            co_await http::async_read(sock, buf, req, asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        call c;
        c.target = std::string(req.target());
        c.body = json::parse(req.body()).as_object();
        for (const auto& f : req)
            c.headers[std::string(f.name_string())] = std::string(f.value());
        calls.push_back(c);
        const answer a = decide_(c);
        if (a.delay.count() > 0) {
            asio::steady_timer t(sock.get_executor());
            t.expires_after(a.delay);
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        http::response<http::string_body> res{static_cast<http::status>(a.status), 11};
        res.set(http::field::content_type, "application/json");
        res.body() = a.body;
        res.prepare_payload();
        co_await http::async_write(sock, res, asio::as_tuple(asio::use_awaitable));
        boost::system::error_code ignored;
        sock.shutdown(tcp::socket::shutdown_both, ignored);
    }

    tcp::acceptor acceptor_;
};

std::string token(std::vector<std::string> channels) {
    gw::token_claims c;
    c.subject = "tok";
    c.expires = std::time(nullptr) + 3600;
    c.channels = channels;
    c.publish = std::move(channels);
    return gw::sign_token(c, secret);
}

// Opens a session with `cookie` and sends a connect without a token (with `data`); the first
// thing the server says: {"op":"connected",...}, or {"close":code,"reason":...}.
asio::awaitable<json::object> connect_with_cookie(gateway_client& c, std::uint16_t port,
                                                  std::string_view cookie,
                                                  std::string_view data = "{}") {
    co_await c.open(port, {}, cookie);
    co_await c.send(R"({"op":"connect","data":)" + std::string(data) + "}");
    auto l = co_await c.line();
    if (!l) co_return json::object{{"close", c.close_code()}, {"reason", c.close_reason()}};
    co_return json::parse(*l).as_object();
}

} // namespace

TEST(GatewayProxy, TheConnectProxyDecidesWhoConnectsFromTheClientsOwnCookie) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    fake_backend app(io, [](const fake_backend::call& c) {
        fake_backend::answer a;
        const auto cookie = c.headers.find("Cookie");
        const std::string jar = cookie == c.headers.end() ? "" : cookie->second;
        if (jar.find("session=alice") != std::string::npos)
            a.body = R"({"result":{"user":"alice","channels":["news*"],"publish":["news*"],)"
                     R"("subs":["news.alice"],"info":{"name":"Alice"}}})";
        else if (jar.find("session=banned") != std::string::npos)
            a.body = R"({"disconnect":{"code":4403,"reason":"banned"}})";
        else
            a.body = R"({"error":{"code":"login","message":"please log in"}})";
        return a;
    });
    gw::options o;
    o.token_secret = secret;
    o.proxy.connect_url = app.url("/akv/connect");
    running_gateway g(io, redis.config(), o);
    run_task(io, [&]() -> asio::awaitable<void> {
        gateway_client alice(io);
        json::object hello =
            co_await connect_with_cookie(alice, g.port(), "session=alice; x=1", R"({"app":"web"})");
        EXPECT_EQ(hello["op"], "connected") << json::serialize(hello);
        EXPECT_EQ(hello["sub"], "alice") << json::serialize(hello);
        // The app's "subs": subscribed by the server.
        json::object subscribed = co_await alice.next();
        EXPECT_EQ(subscribed["op"], "subscribed") << json::serialize(subscribed);
        EXPECT_EQ(subscribed["channel"], "news.alice");
        // Its "channels" and "publish": what the session may do, as a token's claims.
        json::object ok = co_await alice.subscribe("news.world");
        EXPECT_FALSE(ok.contains("error")) << json::serialize(ok);
        json::object no = co_await alice.subscribe("secret");
        EXPECT_EQ(no["error"].at("code"), "forbidden") << json::serialize(no);
        // What the application got: the cookie, and the client's own data.
        if (app.calls.empty()) {
            ADD_FAILURE() << "the connect proxy was not asked";
            co_return;
        }
        const auto& first = app.calls.front();
        EXPECT_EQ(first.target, "/akv/connect");
        EXPECT_EQ(first.headers.at("Cookie"), "session=alice; x=1");
        EXPECT_EQ(first.body.at("transport"), "websocket");
        EXPECT_EQ(first.body.at("data").at("app"), "web");
        EXPECT_TRUE(first.body.at("client").is_string());

        gateway_client stranger(io);
        json::object refused = co_await connect_with_cookie(stranger, g.port(), "other=1");
        EXPECT_EQ(refused["close"], 4001) << json::serialize(refused);
        EXPECT_EQ(refused["reason"], "please log in");
        gateway_client banned(io);
        json::object out = co_await connect_with_cookie(banned, g.port(), "session=banned");
        EXPECT_EQ(out["close"], 4403) << json::serialize(out);
        EXPECT_EQ(out["reason"], "banned");
        // A token still works without asking the application.
        const std::size_t asked = app.calls.size();
        gateway_client with_token(io);
        co_await with_token.open(g.port());
        const std::string tok = token({"*"});
        EXPECT_EQ((co_await with_token.connect(tok))["op"], "connected");
        EXPECT_EQ(app.calls.size(), asked);
    }());
}

TEST(GatewayProxy, AProxyThatFailsIsNamedToTheClient) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    std::string mode;
    fake_backend app(io, [&](const fake_backend::call&) {
        fake_backend::answer a;
        if (mode == "slow") {
            a.delay = std::chrono::milliseconds(1500);
            a.body = R"({"result":{"user":"late"}})";
        } else if (mode == "5xx") {
            a.status = 502;
        } else if (mode == "text") {
            a.body = "<html>oops</html>";
        } else if (mode == "huge") {
            a.body = R"({"result":{"user":")" + std::string(4000, 'x') + "\"}}";
        } else if (mode == "shape") {
            a.body = R"({"result":{"channels":"news"}})";
        } else if (mode == "nothing") {
            a.body = R"({"ok":true})";
        }
        return a;
    });
    gw::options o;
    o.token_secret = secret;
    o.proxy.connect_url = app.url("/connect");
    o.proxy.timeout = std::chrono::milliseconds(300);
    o.proxy.max_reply = 1024;
    o.proxy.breaker_failures = 100; // not this test's subject
    running_gateway g(io, redis.config(), o);
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::pair<const char*, const char*> cases[] = {
            {"slow", "no answer within 300 ms"},
            {"5xx", "HTTP 502"},
            {"text", "not a JSON object"},
            {"huge", "over 1024 bytes"},
            {"shape", "\"channels\" must be an array of strings"},
            {"nothing", "none of \"result\""},
        };
        for (const auto& [m, words] : cases) {
            mode = m;
            gateway_client c(io);
            json::object out = co_await connect_with_cookie(c, g.port(), "session=x");
            EXPECT_EQ(out["close"], 1013) << m << ": " << json::serialize(out);
            const std::string reason =
                out["reason"].is_string() ? std::string(out["reason"].as_string()) : "";
            EXPECT_NE(reason.find(words), std::string::npos) << m << ": " << reason;
        }
    }());
    EXPECT_GE(g.server->snapshot().refused_total, 6u);
}

TEST(GatewayProxy, TheBreakerStopsAskingAFailingProxyAndTriesAgainLater) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    bool healthy = false;
    fake_backend app(io, [&](const fake_backend::call&) {
        fake_backend::answer a;
        if (healthy)
            a.body = R"({"result":{"user":"back"}})";
        else
            a.status = 503;
        return a;
    });
    gw::options o;
    o.token_secret = secret;
    o.proxy.connect_url = app.url("/connect");
    o.proxy.breaker_failures = 2;
    o.proxy.breaker_cooldown = std::chrono::milliseconds(500);
    running_gateway g(io, redis.config(), o);
    run_task(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 2; ++i) {
            gateway_client c(io);
            json::object out = co_await connect_with_cookie(c, g.port(), "s=1");
            EXPECT_EQ(out["close"], 1013) << json::serialize(out);
        }
        EXPECT_EQ(app.count("/connect"), 2u);
        // Open: refused at once, the application not asked.
        gateway_client fast(io);
        json::object out = co_await connect_with_cookie(fast, g.port(), "s=1");
        EXPECT_EQ(out["close"], 1013);
        EXPECT_NE(json::serialize(out).find("not asked"), std::string::npos)
            << json::serialize(out);
        EXPECT_EQ(app.count("/connect"), 2u);
        auto [status, metrics] = co_await http_call(g.port(), http::verb::get, "/metrics");
        EXPECT_NE(metrics.find("akv_gateway_proxy_circuit_open{proxy=\"connect\"} 1"),
                  std::string::npos)
            << metrics;
        EXPECT_NE(metrics.find("akv_gateway_proxy_short_circuited_total{proxy=\"connect\"} 1"),
                  std::string::npos)
            << metrics;
        // The application recovers; after the cool-down one connect tries it, and it works.
        healthy = true;
        const bool back = co_await eventually([&]() -> asio::awaitable<bool> {
            gateway_client c(io);
            json::object r = co_await connect_with_cookie(c, g.port(), "s=1");
            co_return r["op"] == "connected";
        });
        EXPECT_TRUE(back);
        auto [s2, after] = co_await http_call(g.port(), http::verb::get, "/metrics");
        EXPECT_NE(after.find("akv_gateway_proxy_circuit_open{proxy=\"connect\"} 0"),
                  std::string::npos)
            << after;
    }());
}

TEST(GatewayProxy, SubscribePublishAndRpcProxiesDecideForTheApplication) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    fake_backend app(io, [](const fake_backend::call& c) {
        fake_backend::answer a;
        const std::string channel =
            c.body.contains("channel") ? std::string(c.body.at("channel").as_string()) : "";
        if (c.target == "/subscribe") {
            if (channel.rfind("room.", 0) != 0)
                a.body = R"({"error":{"code":"nope","message":"members only"}})";
        } else if (c.target == "/publish") {
            const auto& data = c.body.at("data").as_object();
            if (data.at("text") == "spam")
                a.body = R"({"error":{"code":"spam","message":"no spam here"}})";
            else
                a.body = R"({"result":{"data":{"text":)" + json::serialize(data.at("text")) +
                         R"(,"by":")" + std::string(c.body.at("user").as_string()) + "\"}}}";
        } else if (c.target == "/rpc") {
            if (c.body.at("method") == "sum") {
                const auto& xs = c.body.at("data").as_array();
                a.body = R"({"result":{"data":)" +
                         std::to_string(xs.at(0).as_int64() + xs.at(1).as_int64()) + "}}";
            } else {
                a.body = R"({"error":{"code":"boom","message":"no such method"}})";
            }
        }
        return a;
    });
    gw::options o;
    o.token_secret = secret;
    o.proxy.subscribe_url = app.url("/subscribe");
    o.proxy.publish_url = app.url("/publish");
    o.proxy.rpc_url = app.url("/rpc");
    running_gateway g(io, redis.config(), o);
    run_task(io, [&]() -> asio::awaitable<void> {
        gateway_client c(io);
        co_await c.open(g.port());
        const std::string tok = token({"open.*"});
        co_await c.connect(tok);
        // The claims allow open.*: the application is not asked.
        EXPECT_FALSE((co_await c.subscribe("open.a")).contains("error"));
        EXPECT_EQ(app.count("/subscribe"), 0u);
        // Beyond them, the subscribe proxy decides.
        json::object room = co_await c.subscribe("room.1");
        EXPECT_FALSE(room.contains("error")) << json::serialize(room);
        json::object vip = co_await c.subscribe("vip");
        EXPECT_EQ(vip["error"].at("code"), "forbidden") << json::serialize(vip);
        EXPECT_EQ(vip["error"].at("message"), "members only");
        EXPECT_EQ(app.count("/subscribe"), 2u);
        // Every publish goes through the publish proxy, which may rewrite it.
        json::object pub =
            co_await c.call(R"({"op":"publish","channel":"room.1","data":{"text":"hi"}})");
        EXPECT_FALSE(pub.contains("error")) << json::serialize(pub);
        json::object m = co_await c.push();
        EXPECT_EQ(m["data"].at("by"), "tok") << json::serialize(m);
        json::object spam =
            co_await c.call(R"({"op":"publish","channel":"room.1","data":{"text":"spam"}})");
        EXPECT_EQ(spam["error"].at("code"), "forbidden") << json::serialize(spam);
        EXPECT_EQ(spam["error"].at("message"), "no spam here");
        // RPC: the application's answer, or its error.
        json::object sum = co_await c.call(R"({"op":"rpc","method":"sum","data":[2,3]})");
        EXPECT_EQ(sum["data"], 5) << json::serialize(sum);
        json::object unknown = co_await c.call(R"({"op":"rpc","method":"nope"})");
        EXPECT_EQ(unknown["error"].at("code"), "boom") << json::serialize(unknown);
        json::object bad = co_await c.call(R"({"op":"rpc"})");
        EXPECT_EQ(bad["error"].at("code"), "bad_request") << json::serialize(bad);
    }());
}

TEST(GatewayProxy, WithoutAnRpcProxyRpcIsNotAvailableAndBadUrlsAreNamed) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    gw::options o;
    o.token_secret = secret;
    running_gateway g(io, redis.config(), o);
    run_task(io, [&]() -> asio::awaitable<void> {
        gateway_client c(io);
        co_await c.open(g.port());
        const std::string tok = token({"*"});
        co_await c.connect(tok);
        json::object r = co_await c.call(R"({"op":"rpc","method":"x"})");
        EXPECT_EQ(r["error"].at("code"), "not_available") << json::serialize(r);
    }());
    for (const char* url : {"https://app.example/akv", "not a url", "http:///nohost"}) {
        gw::options bad;
        bad.proxy.connect_url = url;
        try {
            running_gateway nope(io, redis.config(), bad);
            ADD_FAILURE() << url << " was accepted";
        } catch (const boost::system::system_error& e) {
            EXPECT_EQ(e.code(), gw::gateway_error::bad_options) << url;
            EXPECT_NE(std::string(e.what()).find(url), std::string::npos) << e.what();
        }
    }
}
