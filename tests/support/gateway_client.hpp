// Tests of the WebSocket gateway: a server running for the object's lifetime, and a protocol
// client (Beast, coroutines) on the same io_context.
#pragma once

#include "support/harness.hpp"
#include "support/running_client.hpp"

#include <akv/gateway/server.hpp>

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/beast/websocket/stream_fwd.hpp>
#include <boost/json/object.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace akv::test {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
namespace json = boost::json;

// A gateway on its own akv::client, listening on a free port until destroyed.
class running_gateway {
public:
    running_gateway(asio::io_context& io, config cfg, gateway::options opts);
    // The server goes before the client it uses.
    ~running_gateway();
    void stop();
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
asio::awaitable<void> redis_publish(akv::client& c, std::string_view channel,
                                    std::string_view payload);

// One WebSocket session speaking the gateway protocol; frames are split into lines.
class gateway_client {
public:
    explicit gateway_client(asio::io_context& io);
    ~gateway_client();
    gateway_client(gateway_client&&) noexcept;
    gateway_client& operator=(gateway_client&&) noexcept;

    // TCP connect + upgrade (with an Origin and a Cookie header when given); throws on a
    // refused upgrade (the HTTP status is in the message).
    asio::awaitable<void> open(std::uint16_t port, std::string_view origin_view = {},
                               std::string_view cookie_view = {});

    asio::awaitable<void> send(std::string_view text);
    asio::awaitable<void> send_binary(std::string_view bytes);

    // The next line; nullopt once the session is closed (close_code() tells why).
    asio::awaitable<std::optional<std::string>> line();

    // The next line as a JSON object (throws if closed).
    asio::awaitable<json::object> next();

    // Sends `request` with a fresh id and returns its reply (pushes before it are kept).
    // (Arguments are views: g++ 12 mishandles temporaries in co_await expressions.)
    asio::awaitable<json::object> call(std::string_view request_json);

    asio::awaitable<json::object> connect(std::string_view token = {});

    // From a position (offset and epoch) when given: a resume.
    asio::awaitable<json::object> subscribe(std::string_view channel, std::string_view offset = {},
                                            std::string_view epoch = {});

    // The next push (held ones first).
    asio::awaitable<json::object> push();

    // Reads until the session closes; the close code (0 if none came).
    asio::awaitable<int> closed_with();

    int close_code() const;
    std::string close_reason() const;
    void drop();
    websocket::stream<beast::tcp_stream>& stream();

    std::deque<json::object> held;
    bool closed = false;
    std::size_t frames = 0;

private:
    struct session; // the WebSocket stream and the lines of its last frame not yet read
    std::unique_ptr<session> session_;
};

// A plain HTTP request to the gateway: (status, body).
asio::awaitable<std::pair<int, std::string>>
http_call(std::uint16_t port, http::verb verb, std::string_view target, std::string_view body = {},
          std::string_view header = {}, std::string_view header_value = {});
// The same with any number of headers.
asio::awaitable<std::pair<int, std::string>>
http_call(std::uint16_t port, http::verb verb, std::string_view target, std::string_view body,
          const std::vector<std::pair<std::string, std::string>>& headers);

} // namespace akv::test
