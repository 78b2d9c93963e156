// The WebSocket gateway over TLS: sessions and HTTP routes on the TLS port, plain HTTP refused.
// A file apart from gateway_test.cpp: Beast's operations over TLS took most of its compile time.
#include "support/gateway_client.hpp"
#include "support/tls_certs.hpp"

#include <akv/testing/embedded_server.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <gtest/gtest.h>

namespace {

using namespace akv::test;
namespace gw = akv::gateway;

TEST(Gateway, ServesWebSocketsAndHttpOverTls) {
    tls_certs certs;
    akv::testing::embedded_server redis;
    asio::io_context io;
    gw::options opts;
    opts.anonymous = {"*"};
    opts.tls_cert_file = certs("server.crt");
    opts.tls_key_file = certs("server.key");
    running_gateway g(io, redis.config(), opts);
    namespace ssl = asio::ssl;
    ssl::context ctx(ssl::context::tls_client);
    ctx.load_verify_file(certs("ca.crt"));
    ctx.set_verify_mode(ssl::verify_peer);
    run_task(io, [&]() -> asio::awaitable<void> {
        // asio's TLS stream on a bare socket: over Beast's ssl_stream on a tcp_stream, layers a
        // test client does not need, this file took twice as long to compile.
        websocket::stream<ssl::stream<asio::ip::tcp::socket>> ws(io, ctx);
        const auto ep = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), g.port());
        co_await beast::get_lowest_layer(ws).async_connect(ep, asio::use_awaitable);
        SSL_set_tlsext_host_name(ws.next_layer().native_handle(), "localhost");
        co_await ws.next_layer().async_handshake(ssl::stream_base::client, asio::use_awaitable);
        const std::string host = "localhost:" + std::to_string(g.port());
        co_await ws.async_handshake(host, "/ws", asio::use_awaitable);
        const std::string hello = R"({"op":"connect"})";
        co_await ws.async_write(asio::buffer(hello), asio::use_awaitable);
        beast::flat_buffer buf;
        co_await ws.async_read(buf, asio::use_awaitable);
        EXPECT_NE(beast::buffers_to_string(buf.data()).find("connected"), std::string::npos);
        const std::string sub = R"({"op":"subscribe","id":1,"channel":"secure"})";
        co_await ws.async_write(asio::buffer(sub), asio::use_awaitable);
        buf.clear();
        co_await ws.async_read(buf, asio::use_awaitable);
        EXPECT_NE(beast::buffers_to_string(buf.data()).find("\"ok\":true"), std::string::npos);
        co_await redis_publish(g.redis(), "secure", R"({"over":"tls"})");
        buf.clear();
        co_await ws.async_read(buf, asio::use_awaitable);
        EXPECT_NE(beast::buffers_to_string(buf.data()).find(R"({"over":"tls"})"),
                  std::string::npos);
        co_await ws.async_close(websocket::close_code::normal, asio::use_awaitable);

        // Plain HTTP on the TLS port gets nowhere; HTTPS works.
        ssl::stream<asio::ip::tcp::socket> https(io, ctx);
        co_await beast::get_lowest_layer(https).async_connect(ep, asio::use_awaitable);
        SSL_set_tlsext_host_name(https.native_handle(), "localhost");
        co_await https.async_handshake(ssl::stream_base::client, asio::use_awaitable);
        http::request<http::string_body> req{http::verb::get, "/healthz", 11};
        req.set(http::field::host, host);
        co_await http::async_write(https, req, asio::use_awaitable);
        http::response<http::string_body> res;
        beast::flat_buffer hbuf;
        co_await http::async_read(https, hbuf, res, asio::use_awaitable);
        EXPECT_EQ(res.result_int(), 200);
        bool plain_failed = false;
        try {
            auto plain = co_await http_call(g.port(), http::verb::get, "/healthz");
            (void)plain;
        } catch (const std::exception&) {
            plain_failed = true;
        }
        EXPECT_TRUE(plain_failed) << "plain HTTP answered on the TLS port";
    }());
}

} // namespace
