#include "support/gateway_client.hpp"

#include <akv/response.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <stdexcept>

namespace akv::test {

namespace {
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);
}

running_gateway::running_gateway(asio::io_context& io, config cfg, gateway::options opts)
    : io_(io)
    , redis_(std::make_unique<running_client>(io, cfg)) {
    opts.port = 0;
    server = std::make_unique<gateway::server>(redis_->client, opts);
    asio::co_spawn(io, server->run(), [this](std::exception_ptr e) {
        error = e;
        finished = true;
    });
    EXPECT_TRUE(run_until(
        io, [this] { return server->listening() || finished; }, 10s));
}

running_gateway::~running_gateway() {
    stop();
    server.reset();
}

void running_gateway::stop() {
    if (stopped_) return;
    stopped_ = true;
    server->stop();
    EXPECT_TRUE(run_until(
        io_, [this] { return finished; }, 20s))
        << "gateway did not stop";
}

asio::awaitable<void> redis_publish(akv::client& c, std::string_view channel,
                                    std::string_view payload) {
    akv::request req;
    req.push("PUBLISH", channel, payload);
    akv::response<std::int64_t> resp;
    co_await c.exec(req, resp);
}

struct gateway_client::session {
    explicit session(asio::io_context& io)
        : ws(io) {}

    websocket::stream<beast::tcp_stream> ws;
    std::deque<std::string> lines;
    std::int64_t last_id = 0;
};

gateway_client::gateway_client(asio::io_context& io)
    : session_(std::make_unique<session>(io)) {}

gateway_client::~gateway_client() = default;
gateway_client::gateway_client(gateway_client&&) noexcept = default;
gateway_client& gateway_client::operator=(gateway_client&&) noexcept = default;

asio::awaitable<void> gateway_client::open(std::uint16_t port, std::string_view origin_view,
                                           std::string_view cookie_view) {
    auto& ws = session_->ws;
    const std::string origin(origin_view), cookie(cookie_view);
    auto ep = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
    co_await beast::get_lowest_layer(ws).async_connect(ep, asio::use_awaitable);
    ws.set_option(websocket::stream_base::decorator([origin, cookie](websocket::request_type& req) {
        if (!origin.empty()) req.set(http::field::origin, origin);
        if (!cookie.empty()) req.set(http::field::cookie, cookie);
    }));
    ws.read_message_max(64 * 1024 * 1024);
    websocket::response_type res;
    const std::string host = "127.0.0.1:" + std::to_string(port);
    auto [ec] = co_await ws.async_handshake(res, host, "/ws", tuple_awaitable);
    if (ec)
        throw boost::system::system_error(
            ec, "upgrade refused: HTTP " + std::to_string(res.result_int()) + " " + res.body());
}

asio::awaitable<void> gateway_client::send(std::string_view text) {
    session_->ws.text(true);
    co_await session_->ws.async_write(asio::buffer(text), asio::use_awaitable);
}

asio::awaitable<void> gateway_client::send_binary(std::string_view bytes) {
    session_->ws.binary(true);
    co_await session_->ws.async_write(asio::buffer(bytes), asio::use_awaitable);
}

asio::awaitable<std::optional<std::string>> gateway_client::line() {
    auto& lines = session_->lines;
    while (lines.empty()) {
        beast::flat_buffer buf;
        auto [ec, n] = co_await session_->ws.async_read(buf, tuple_awaitable);
        if (ec) {
            closed = true;
            co_return std::nullopt;
        }
        ++frames;
        const std::string text = beast::buffers_to_string(buf.data());
        std::size_t start = 0;
        for (;;) {
            const auto nl = text.find('\n', start);
            lines.push_back(text.substr(start, nl - start));
            if (nl == std::string::npos) break;
            start = nl + 1;
        }
    }
    std::string l = std::move(lines.front());
    lines.pop_front();
    co_return l;
}

asio::awaitable<json::object> gateway_client::next() {
    auto l = co_await line();
    if (!l)
        throw std::runtime_error("session closed: " + std::to_string(close_code()) + " " +
                                 close_reason());
    co_return json::parse(*l).as_object();
}

asio::awaitable<json::object> gateway_client::call(std::string_view request_json) {
    json::object request = json::parse(request_json).as_object();
    const std::int64_t id = ++session_->last_id;
    request["id"] = id;
    const std::string text = json::serialize(request);
    co_await send(text);
    for (;;) {
        json::object m = co_await next();
        if (m.contains("id") && m.at("id").as_int64() == id) co_return m;
        held.push_back(std::move(m));
    }
}

asio::awaitable<json::object> gateway_client::connect(std::string_view token) {
    json::object req;
    req["op"] = "connect";
    if (!token.empty()) req["token"] = token;
    const std::string text = json::serialize(req);
    co_await send(text);
    co_return co_await next();
}

asio::awaitable<json::object> gateway_client::subscribe(std::string_view channel,
                                                        std::string_view offset,
                                                        std::string_view epoch) {
    json::object req;
    req["op"] = "subscribe";
    req["channel"] = channel;
    if (!offset.empty()) req["offset"] = offset;
    if (!epoch.empty()) req["epoch"] = epoch;
    const std::string text = json::serialize(req);
    co_return co_await call(text);
}

asio::awaitable<json::object> gateway_client::push() {
    if (!held.empty()) {
        json::object m = std::move(held.front());
        held.pop_front();
        co_return m;
    }
    co_return co_await next();
}

asio::awaitable<int> gateway_client::closed_with() {
    for (;;) {
        auto l = co_await line(); // named: g++ 12 and temporaries in co_await expressions
        if (!l) break;
    }
    co_return close_code();
}

int gateway_client::close_code() const {
    return session_->ws.reason().code;
}

std::string gateway_client::close_reason() const {
    return std::string(session_->ws.reason().reason.c_str());
}

void gateway_client::drop() {
    beast::error_code ec;
    beast::get_lowest_layer(session_->ws).socket().close(ec);
}

websocket::stream<beast::tcp_stream>& gateway_client::stream() {
    return session_->ws;
}

asio::awaitable<std::pair<int, std::string>>
http_call(std::uint16_t port, http::verb verb, std::string_view target, std::string_view body,
          std::string_view header, std::string_view header_value) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!header.empty()) headers.emplace_back(header, header_value);
    co_return co_await http_call(port, verb, target, body, headers);
}

asio::awaitable<std::pair<int, std::string>>
http_call(std::uint16_t port, http::verb verb, std::string_view target, std::string_view body,
          const std::vector<std::pair<std::string, std::string>>& headers) {
    beast::tcp_stream s(co_await asio::this_coro::executor);
    co_await s.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                             asio::use_awaitable);
    http::request<http::string_body> req;
    req.method(verb);
    req.target(target);
    req.version(11);
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    for (const auto& [name, value] : headers)
        req.set(name, value);
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
