// The transports for clients without a WebSocket: Server-Sent Events (GET /connection/sse) and
// HTTP streaming (POST /connection/http_stream), read here from a raw socket exactly as a
// browser's EventSource or fetch() gets them, with requests POSTed to /connection/emulation.
// Same auth, limits, history and presence as a WebSocket session; an EventSource's
// Last-Event-ID resumes the server-side channels; bad requests are named and refused.
#include "support/eventually.hpp"
#include "support/gateway_client.hpp"

#include <akv/gateway/publish.hpp>
#include <akv/gateway/token.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/pchars.hpp>

#include <gtest/gtest.h>

#include <ctime>
#include <deque>
#include <string>

using namespace akv::test;
namespace gw = akv::gateway;
using tcp = asio::ip::tcp;

namespace {

constexpr const char* secret = "stream-test-secret";

gw::options stream_options() {
    gw::options o;
    o.token_secret = secret;
    o.history = {{"h.*", 1000, std::chrono::seconds(0)}};
    o.presence = {{"room.*", true}};
    return o;
}

std::string token(std::vector<std::string> subs = {}) {
    gw::token_claims c;
    c.subject = "streamer";
    c.expires = std::time(nullptr) + 3600;
    c.channels = {"*"};
    c.publish = {"*"};
    c.presence = {"*"};
    c.subs = std::move(subs);
    return gw::sign_token(c, secret);
}

std::string connect_message(std::string_view tok) {
    return json::serialize(json::object{{"op", "connect"}, {"token", tok}});
}

std::string url_encoded(std::string_view text) {
    return boost::urls::encode(text, boost::urls::unreserved_chars);
}

// One streaming session read from a raw socket: the response's head, then its messages, one
// line each (an SSE event's data lines; a line of the chunked ndjson body).
class stream_session {
public:
    explicit stream_session(asio::io_context& io)
        : socket_(io) {}

    // Sends `request` (a whole HTTP request) and reads the head; the status.
    asio::awaitable<int> open(std::uint16_t port, std::string request) {
        co_await socket_.async_connect({asio::ip::make_address("127.0.0.1"), port},
                                       asio::use_awaitable);
        co_await asio::async_write(socket_, asio::buffer(request), asio::use_awaitable);
        std::size_t end;
        while ((end = raw_.find("\r\n\r\n")) == std::string::npos)
            if (!co_await fill()) throw std::runtime_error("no response head: " + raw_);
        head = raw_.substr(0, end);
        raw_.erase(0, end + 4);
        sse_ = head.find("text/event-stream") != std::string::npos;
        co_return std::stoi(head.substr(9, 3));
    }

    // SSE: GET /connection/sse?connect=...; `last_event_id` as an EventSource that reconnects.
    asio::awaitable<int> open_sse(std::uint16_t port, std::string_view connect,
                                  std::string_view last_event_id = {},
                                  std::string_view origin = {}) {
        std::string req = "GET /connection/sse?connect=" + url_encoded(connect) +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
        if (!last_event_id.empty()) req += "Last-Event-ID: " + std::string(last_event_id) + "\r\n";
        if (!origin.empty()) req += "Origin: " + std::string(origin) + "\r\n";
        req += "\r\n";
        co_return co_await open(port, std::move(req));
    }

    asio::awaitable<int> open_http_stream(std::uint16_t port, std::string_view connect) {
        std::string req = "POST /connection/http_stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Content-Type: application/json\r\nContent-Length: " +
                          std::to_string(connect.size()) + "\r\n\r\n" + std::string(connect);
        co_return co_await open(port, std::move(req));
    }

    // The session's key (its first message) and the connect's answer.
    asio::awaitable<json::object> start() {
        json::object first = co_await next();
        if (first["op"] != "session" || !first["key"].is_string())
            throw std::runtime_error("first message is not the session key: " +
                                     json::serialize(first));
        key = std::string(first["key"].as_string());
        co_return co_await next();
    }

    // The next message line; nullopt at the end of the response.
    asio::awaitable<std::optional<std::string>> line() {
        while (lines_.empty()) {
            if (!co_await parse_more()) co_return std::nullopt;
        }
        std::string l = std::move(lines_.front());
        lines_.pop_front();
        co_return l;
    }

    // Reads until the next heartbeat; false if the stream ended first.
    asio::awaitable<bool> heartbeat() {
        const std::size_t before = heartbeats;
        while (heartbeats == before)
            if (!co_await parse_more()) co_return false;
        co_return true;
    }

    asio::awaitable<json::object> next() {
        auto l = co_await line();
        if (!l) throw std::runtime_error("the stream ended");
        co_return json::parse(*l).as_object();
    }

    // POSTs `requests` (one per line) to the session's emulation endpoint: (status, body).
    asio::awaitable<std::pair<int, std::string>> post(std::string_view requests) {
        const std::string target = "/connection/emulation?session=" + key;
        co_return co_await http_call(port_of(), http::verb::post, target, requests);
    }

    // Sends `request` with an id and returns its reply (pushes before it are kept in held).
    asio::awaitable<json::object> call(std::string_view request) {
        json::object req = json::parse(request).as_object();
        const std::int64_t id = ++ids_;
        req["id"] = id;
        auto [status, body] = co_await post(json::serialize(req));
        if (status != 200) throw std::runtime_error("emulation: " + std::to_string(status) + body);
        for (;;) {
            json::object m = co_await next();
            if (m.contains("id") && m["id"] == id) co_return m;
            held.push_back(std::move(m));
        }
    }

    asio::awaitable<json::object> push() {
        if (!held.empty()) {
            json::object m = std::move(held.front());
            held.pop_front();
            co_return m;
        }
        co_return co_await next();
    }

    void drop() {
        boost::system::error_code ignored;
        socket_.close(ignored);
    }

    std::string head, key, last_id;
    std::size_t heartbeats = 0;
    std::deque<json::object> held;

private:
    std::uint16_t port_of() const { return socket_.remote_endpoint().port(); }

    asio::awaitable<bool> fill() {
        char buf[4096];
        auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf),
                                                        asio::as_tuple(asio::use_awaitable));
        if (ec) co_return false;
        raw_.append(buf, n);
        co_return true;
    }

    // One more event (SSE) or chunk (HTTP streaming) into lines_; false at the end.
    asio::awaitable<bool> parse_more() {
        if (sse_) {
            std::size_t end;
            while ((end = raw_.find("\n\n")) == std::string::npos)
                if (!co_await fill()) co_return false;
            const std::string event = raw_.substr(0, end + 1);
            raw_.erase(0, end + 2);
            for (std::size_t at = 0; at < event.size();) {
                const std::size_t eol = event.find('\n', at);
                const std::string l = event.substr(at, eol - at);
                at = eol + 1;
                if (l.rfind("data: ", 0) == 0)
                    lines_.push_back(l.substr(6));
                else if (l.rfind("id: ", 0) == 0)
                    last_id = l.substr(4);
                else if (l.rfind(":", 0) == 0)
                    ++heartbeats;
            }
            co_return true;
        }
        std::size_t eol;
        while ((eol = raw_.find("\r\n")) == std::string::npos)
            if (!co_await fill()) co_return false;
        const std::size_t size = std::stoul(raw_.substr(0, eol), nullptr, 16);
        if (size == 0) co_return false; // the last chunk
        while (raw_.size() < eol + 2 + size + 2)
            if (!co_await fill()) co_return false;
        const std::string data = raw_.substr(eol + 2, size);
        raw_.erase(0, eol + 2 + size + 2);
        if (data == "\n") ++heartbeats;
        for (std::size_t at = 0; at < data.size();) {
            const std::size_t end = data.find('\n', at);
            if (end > at) lines_.push_back(data.substr(at, end - at));
            at = end + 1;
        }
        co_return true;
    }

    tcp::socket socket_;
    std::string raw_;
    std::deque<std::string> lines_;
    bool sse_ = false;
    std::int64_t ids_ = 0;
};

asio::awaitable<gw::position> publish_to(akv::client& c, const gw::options& o, std::string_view ch,
                                         std::string_view data) {
    std::string channel(ch), d(data);
    auto at = co_await gw::publish(c, o, std::move(channel), std::move(d));
    co_return at.value_or(gw::position{});
}

} // namespace

TEST(GatewayStream, SseDeliversPushesAndTakesRequestsByPost) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), stream_options());
    const auto& opts = g.server->get_options();
    run_task(io, [&]() -> asio::awaitable<void> {
        stream_session s(io);
        const std::string hello = connect_message(token());
        EXPECT_EQ(co_await s.open_sse(g.port(), hello), 200) << s.head;
        EXPECT_NE(s.head.find("Content-Type: text/event-stream"), std::string::npos) << s.head;
        json::object connected = co_await s.start();
        EXPECT_EQ(connected["op"], "connected") << json::serialize(connected);
        EXPECT_EQ(s.key.size(), 32u);

        json::object sub = co_await s.call(R"({"op":"subscribe","channel":"h.a"})");
        EXPECT_TRUE(sub.contains("offset") && sub.contains("epoch")) << json::serialize(sub);
        const gw::position one = co_await publish_to(g.redis(), opts, "h.a", "1");
        json::object m = co_await s.push();
        EXPECT_EQ(m["channel"], "h.a");
        EXPECT_EQ(m["data"], 1);
        EXPECT_EQ(m["offset"], json::value(one.offset));
        // The event's id is the positions reached: what Last-Event-ID gives back.
        const json::value id = json::parse(s.last_id);
        EXPECT_EQ(id.at("h.a").at("offset"), json::value(one.offset)) << s.last_id;
        EXPECT_EQ(id.at("h.a").at("epoch"), json::value(one.epoch)) << s.last_id;

        // Publishing and presence work as over a WebSocket.
        json::object pub = co_await s.call(R"({"op":"publish","channel":"h.a","data":{"n":2}})");
        EXPECT_TRUE(pub.contains("offset")) << json::serialize(pub);
        json::object echo = co_await s.push();
        EXPECT_EQ(echo["data"].at("n"), 2);
        co_await s.call(R"({"op":"subscribe","channel":"room.1"})");
        json::object who = co_await s.call(R"({"op":"presence","channel":"room.1"})");
        if (!who.contains("clients")) {
            ADD_FAILURE() << json::serialize(who);
            co_return;
        }
        EXPECT_EQ(who["clients"].as_array().size(), 1u) << json::serialize(who);
        // Several requests in one POST, in order.
        auto [status, body] =
            co_await s.post("{\"op\":\"ping\",\"id\":100}\n{\"op\":\"ping\",\"id\":101}\n");
        EXPECT_EQ(status, 200) << body;
        json::object p1 = co_await s.next(), p2 = co_await s.next();
        EXPECT_EQ(p1["id"], 100);
        EXPECT_EQ(p2["id"], 101);
    }());
}

TEST(GatewayStream, LastEventIdResumesTheServerSideChannels) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), stream_options());
    const auto& opts = g.server->get_options();
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::string hello = connect_message(token({"h.s"}));
        std::string last_id;
        {
            stream_session s(io);
            EXPECT_EQ(co_await s.open_sse(g.port(), hello), 200);
            co_await s.start();
            json::object subscribed = co_await s.next();
            EXPECT_EQ(subscribed["op"], "subscribed") << json::serialize(subscribed);
            co_await publish_to(g.redis(), opts, "h.s", "1");
            EXPECT_EQ((co_await s.next())["data"], 1);
            last_id = s.last_id;
            s.drop(); // the network went away
        }
        co_await publish_to(g.redis(), opts, "h.s", "2");
        co_await publish_to(g.redis(), opts, "h.s", "3");
        // What an EventSource does on its own: the same URL, with the last id it saw.
        stream_session again(io);
        EXPECT_EQ(co_await again.open_sse(g.port(), hello, last_id), 200) << again.head;
        co_await again.start();
        json::object resumed = co_await again.next();
        EXPECT_EQ(resumed["op"], "subscribed") << json::serialize(resumed);
        EXPECT_EQ(resumed["recovered"], true) << json::serialize(resumed);
        EXPECT_EQ((co_await again.next())["data"], 2);
        EXPECT_EQ((co_await again.next())["data"], 3);
    }());
}

TEST(GatewayStream, HttpStreamingDeliversChunksAndEndsOnShutdown) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_gateway g(io, redis.config(), stream_options());
    const auto& opts = g.server->get_options();
    stream_session s(io);
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::string hello = connect_message(token());
        EXPECT_EQ(co_await s.open_http_stream(g.port(), hello), 200) << s.head;
        EXPECT_NE(s.head.find("Transfer-Encoding: chunked"), std::string::npos) << s.head;
        EXPECT_EQ((co_await s.start())["op"], "connected");
        co_await s.call(R"({"op":"subscribe","channel":"plain"})");
        co_await publish_to(g.redis(), opts, "plain", R"({"x":true})");
        json::object m = co_await s.push();
        EXPECT_EQ(m["data"].at("x"), true) << json::serialize(m);
    }());
    // Shutdown: a close message, then the last chunk (the end of the body).
    std::optional<json::object> closing;
    bool ended = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            closing = co_await s.next();
            ended = !(co_await s.line());
        },
        asio::detached);
    g.stop();
    ASSERT_TRUE(run_until(
        io, [&] { return ended; }, 10s));
    ASSERT_TRUE(closing);
    EXPECT_EQ((*closing)["op"], "close");
    EXPECT_EQ((*closing)["code"], 1001);
}

TEST(GatewayStream, TheSameAuthAndLimitsAsAWebSocket) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    gw::options o = stream_options();
    o.max_rate = 5;
    o.max_burst = 5;
    running_gateway g(io, redis.config(), o);
    run_task(io, [&]() -> asio::awaitable<void> {
        // A bad token: refused with the WebSocket's close code, as a message.
        stream_session bad(io);
        const std::string forged = connect_message("not-a-token");
        EXPECT_EQ(co_await bad.open_sse(g.port(), forged), 200);
        json::object first = co_await bad.next();
        EXPECT_EQ(first["op"], "session");
        json::object closed = co_await bad.next();
        EXPECT_EQ(closed["op"], "close") << json::serialize(closed);
        EXPECT_EQ(closed["code"], 4001) << json::serialize(closed);
        EXPECT_FALSE(co_await bad.line());

        // Not JSON: 1007, as a WebSocket frame would get.
        stream_session garbage(io);
        EXPECT_EQ(co_await garbage.open_sse(g.port(), "{nope"), 200);
        co_await garbage.next();
        EXPECT_EQ((co_await garbage.next())["code"], 1007);

        // A forbidden channel is an error reply; the rate limit closes with 1008.
        gw::token_claims c;
        c.subject = "narrow";
        c.expires = std::time(nullptr) + 3600;
        c.channels = {"mine"};
        stream_session s(io);
        const std::string narrow = connect_message(gw::sign_token(c, secret));
        EXPECT_EQ(co_await s.open_sse(g.port(), narrow), 200);
        co_await s.start();
        json::object no = co_await s.call(R"({"op":"subscribe","channel":"theirs"})");
        EXPECT_EQ(no["error"].at("code"), "forbidden") << json::serialize(no);
        std::string burst;
        for (int i = 0; i < 20; ++i)
            burst += "{\"op\":\"ping\"}\n";
        co_await s.post(burst);
        json::object last;
        for (;;) {
            auto l = co_await s.line();
            if (!l) break;
            last = json::parse(*l).as_object();
        }
        EXPECT_EQ(last["op"], "close") << json::serialize(last);
        EXPECT_EQ(last["code"], 1008) << json::serialize(last);
    }());
    EXPECT_GE(g.server->snapshot().refused_total, 1u);
}

TEST(GatewayStream, BadRequestsAreNamedAndTheGatewayGoesOn) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    gw::options o = stream_options();
    o.max_frame = 1024;
    running_gateway g(io, redis.config(), o);
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto expect = [&](std::pair<int, std::string> got, int status,
                                std::string_view words) {
            EXPECT_EQ(got.first, status) << got.second;
            EXPECT_NE(got.second.find(words), std::string::npos) << got.second;
        };
        expect(co_await http_call(g.port(), http::verb::get, "/connection/sse"), 400, "connect=");
        expect(co_await http_call(g.port(), http::verb::post, "/connection/sse", "{}"), 405, "GET");
        expect(co_await http_call(g.port(), http::verb::get, "/connection/http_stream"), 405,
               "POST");
        const std::string hello =
            "/connection/sse?connect=" + url_encoded(connect_message(token()));
        expect(co_await http_call(g.port(), http::verb::get, hello, {}, "Last-Event-ID", "{oops"),
               400, "Last-Event-ID");
        expect(co_await http_call(g.port(), http::verb::get, hello, {}, "Origin",
                                  "http://elsewhere.example"),
               403, "origin not allowed");
        const std::string huge = "/connection/sse?connect=" + std::string(2000, 'a');
        expect(co_await http_call(g.port(), http::verb::get, huge), 413, "over 1024 bytes");
        expect(co_await http_call(g.port(), http::verb::post, "/connection/emulation", "{}"), 400,
               "session=");
        expect(co_await http_call(g.port(), http::verb::post,
                                  "/connection/emulation?session=0123456789abcdef", "{}"),
               404, "no such streaming session");
        expect(co_await http_call(g.port(), http::verb::get, "/connection/emulation?session=x"),
               405, "POST");

        stream_session s(io);
        const std::string msg = connect_message(token());
        EXPECT_EQ(co_await s.open_sse(g.port(), msg), 200);
        co_await s.start();
        expect(co_await s.post("\n\n"), 400, "no request");
        expect(co_await s.post(std::string(1500, 'x')), 413, "over 1024 bytes");
        // The session is unharmed.
        json::object pong = co_await s.call(R"({"op":"ping"})");
        EXPECT_FALSE(pong.contains("error")) << json::serialize(pong);
        // And a WebSocket session too.
        gateway_client ws(io);
        co_await ws.open(g.port());
        const std::string tok = token();
        EXPECT_EQ((co_await ws.connect(tok))["op"], "connected");
    }());
}

TEST(GatewayStream, SessionsCountTowardsTheLimitAndAGonePeerEndsItsSession) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    gw::options o = stream_options();
    o.max_sessions = 1;
    running_gateway g(io, redis.config(), o);
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::string msg = connect_message(token());
        {
            stream_session first(io);
            EXPECT_EQ(co_await first.open_sse(g.port(), msg), 200);
            co_await first.start();
            stream_session second(io);
            EXPECT_EQ(co_await second.open_sse(g.port(), msg), 503) << second.head;
            first.drop();
        }
        // The first one's socket is gone: its session ends and frees the place.
        const bool freed = co_await eventually(
            [&]() -> asio::awaitable<bool> { co_return g.server->snapshot().sessions == 0; });
        EXPECT_TRUE(freed);
        stream_session third(io);
        EXPECT_EQ(co_await third.open_sse(g.port(), msg), 200);
        EXPECT_EQ((co_await third.start())["op"], "connected");
    }());
}

TEST(GatewayStream, AQuietStreamSaysItIsAlive) {
    akv::testing::embedded_server redis;
    asio::io_context io;
    gw::options o = stream_options();
    o.idle_timeout = std::chrono::seconds(2); // a heartbeat every second
    running_gateway g(io, redis.config(), o);
    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            stream_session s(io);
            const std::string msg = connect_message(token());
            EXPECT_EQ(co_await s.open_sse(g.port(), msg), 200);
            co_await s.start();
            // Nothing to say for a second: a heartbeat (an SSE comment) comes, and nothing else.
            EXPECT_TRUE(co_await s.heartbeat());
            EXPECT_GE(s.heartbeats, 1u);
            json::object pong = co_await s.call(R"({"op":"ping"})");
            EXPECT_FALSE(pong.contains("error")) << json::serialize(pong);
        }(),
        20s);
}
