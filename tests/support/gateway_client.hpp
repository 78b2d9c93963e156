// Tests of the WebSocket gateway: a server running for the object's lifetime, and a protocol
// client (Beast, coroutines) on the same io_context.
#pragma once

#include "support/harness.hpp"
#include "support/running_client.hpp"

#include <akv/gateway/server.hpp>
#include <akv/response.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <deque>
#include <memory>
#include <optional>
#include <string>

namespace akv::test {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
namespace json = boost::json;
inline constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// A gateway on its own akv::client, listening on a free port until destroyed.
class running_gateway {
public:
    running_gateway(asio::io_context& io, config cfg, gateway::options opts)
        : io_(io)
        , redis_(std::make_unique<running_client>(io, cfg)) {
        opts.port = 0;
        server = std::make_unique<gateway::server>(redis_->client, opts);
        asio::co_spawn(io, server->run(), [this](std::exception_ptr e) {
            error = e;
            finished = true;
        });
        EXPECT_TRUE(run_until(io, [this] { return server->listening() || finished; }, 10s));
    }
    // The server goes before the client it uses.
    ~running_gateway() {
        stop();
        server.reset();
    }
    void stop() {
        if (stopped_) return;
        stopped_ = true;
        server->stop();
        EXPECT_TRUE(run_until(io_, [this] { return finished; }, 20s)) << "gateway did not stop";
    }
    std::uint16_t port() const { return server->port(); }
    akv::client& redis() { return redis_->client; }

    std::unique_ptr<gateway::server> server;
    bool finished = false;
    std::exception_ptr error;

private:
    asio::io_context& io_;
    std::unique_ptr<running_client> redis_;
    bool stopped_ = false;
};

// PUBLISH straight to Redis (what another program would do).
inline asio::awaitable<void> redis_publish(akv::client& c, std::string_view channel,
                                           std::string_view payload) {
    akv::request req;
    req.push("PUBLISH", channel, payload);
    akv::response<std::int64_t> resp;
    co_await c.exec(req, resp);
}

// One WebSocket session speaking the gateway protocol; frames are split into lines.
class gateway_client {
public:
    explicit gateway_client(asio::io_context& io)
        : ws_(io) {}

    // TCP connect + upgrade; throws on a refused upgrade (the HTTP status is in the message).
    asio::awaitable<void> open(std::uint16_t port, std::string_view origin_view = {}) {
        const std::string origin(origin_view);
        auto ep = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
        co_await ws_.next_layer().async_connect(ep, asio::use_awaitable);
        ws_.set_option(websocket::stream_base::decorator([origin](websocket::request_type& req) {
            if (!origin.empty()) req.set(http::field::origin, origin);
        }));
        ws_.read_message_max(64 * 1024 * 1024);
        websocket::response_type res;
        const std::string host = "127.0.0.1:" + std::to_string(port);
        auto [ec] = co_await ws_.async_handshake(res, host, "/ws", tuple_awaitable);
        if (ec)
            throw boost::system::system_error(
                ec, "upgrade refused: HTTP " + std::to_string(res.result_int()) + " " + res.body());
    }

    asio::awaitable<void> send(std::string_view text) {
        ws_.text(true);
        co_await ws_.async_write(asio::buffer(text), asio::use_awaitable);
    }
    asio::awaitable<void> send_binary(std::string_view bytes) {
        ws_.binary(true);
        co_await ws_.async_write(asio::buffer(bytes), asio::use_awaitable);
    }

    // The next line; nullopt once the session is closed (close_code() tells why).
    asio::awaitable<std::optional<std::string>> line() {
        while (lines_.empty()) {
            beast::flat_buffer buf;
            auto [ec, n] = co_await ws_.async_read(buf, tuple_awaitable);
            if (ec) {
                closed = true;
                co_return std::nullopt;
            }
            ++frames;
            const std::string text = beast::buffers_to_string(buf.data());
            std::size_t start = 0;
            for (;;) {
                const auto nl = text.find('\n', start);
                lines_.push_back(text.substr(start, nl - start));
                if (nl == std::string::npos) break;
                start = nl + 1;
            }
        }
        std::string l = std::move(lines_.front());
        lines_.pop_front();
        co_return l;
    }

    // The next line as a JSON object (throws if closed).
    asio::awaitable<json::object> next() {
        auto l = co_await line();
        if (!l) throw std::runtime_error("session closed: " + std::to_string(close_code()) + " " + close_reason());
        co_return json::parse(*l).as_object();
    }

    // Sends `request` with a fresh id and returns its reply (pushes before it are kept).
    // (Arguments are views: g++ 12 mishandles temporaries in co_await expressions.)
    asio::awaitable<json::object> call(std::string_view request_json) {
        json::object request = json::parse(request_json).as_object();
        const std::int64_t id = ++last_id_;
        request["id"] = id;
        const std::string text = json::serialize(request);
        co_await send(text);
        for (;;) {
            json::object m = co_await next();
            if (m.contains("id") && m.at("id").as_int64() == id) co_return m;
            held.push_back(std::move(m));
        }
    }

    asio::awaitable<json::object> connect(std::string_view token = {}) {
        json::object req;
        req["op"] = "connect";
        if (!token.empty()) req["token"] = token;
        const std::string text = json::serialize(req);
        co_await send(text);
        co_return co_await next();
    }

    asio::awaitable<json::object> subscribe(std::string_view channel, std::string_view offset = {}) {
        json::object req;
        req["op"] = "subscribe";
        req["channel"] = channel;
        if (!offset.empty()) req["offset"] = offset;
        const std::string text = json::serialize(req);
        co_return co_await call(text);
    }

    // The next push (held ones first).
    asio::awaitable<json::object> push() {
        if (!held.empty()) {
            json::object m = std::move(held.front());
            held.pop_front();
            co_return m;
        }
        co_return co_await next();
    }

    // Reads until the session closes; the close code (0 if none came).
    asio::awaitable<int> closed_with() {
        for (;;) {
            auto l = co_await line(); // named: g++ 12 and temporaries in co_await expressions
            if (!l) break;
        }
        co_return close_code();
    }

    int close_code() const { return ws_.reason().code; }
    std::string close_reason() const { return std::string(ws_.reason().reason.c_str()); }
    void drop() {
        beast::error_code ec;
        ws_.next_layer().close(ec);
    }
    websocket::stream<asio::ip::tcp::socket>& stream() { return ws_; }

    std::deque<json::object> held;
    bool closed = false;
    std::size_t frames = 0;

private:
    // A bare socket, as the gateway's sessions use: Beast's operations over tcp_stream (timers
    // a test client never sets) were a third of gateway_test.cpp's compile time.
    websocket::stream<asio::ip::tcp::socket> ws_;
    std::deque<std::string> lines_;
    std::int64_t last_id_ = 0;
};

// A plain HTTP request to the gateway: (status, body).
inline asio::awaitable<std::pair<int, std::string>>
http_call(std::uint16_t port, http::verb verb, std::string_view target, std::string_view body = {},
          std::string_view header = {}, std::string_view header_value = {}) {
    asio::ip::tcp::socket s(co_await asio::this_coro::executor);
    co_await s.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                             asio::use_awaitable);
    http::request<http::string_body> req;
    req.method(verb);
    req.target(target);
    req.version(11);
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    if (!header.empty()) req.set(header, header_value);
    req.body() = std::string(body);
    req.prepare_payload();
    co_await http::async_write(s, req, asio::use_awaitable);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    co_await http::async_read(s, buf, parser, asio::use_awaitable);
    co_return std::pair{parser.get().result_int(), parser.get().body()};
}

} // namespace akv::test
