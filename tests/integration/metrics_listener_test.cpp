// akv::gateway::metrics_listener: what a scraper gets, and what a hostile or idle peer cannot
// do to the process (hold every descriptor, keep it from stopping).
#include "support/gateway_client.hpp"
#include "support/harness.hpp"

#include <akv/gateway/metrics_listener.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <list>

using namespace akv::test;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

// Everything the peer sends until it closes (or the deadline of the surrounding task).
asio::awaitable<std::string> read_all(tcp::socket& s) {
    std::string out;
    auto [ec, n] = co_await asio::async_read(s, asio::dynamic_buffer(out),
                                             asio::as_tuple(asio::use_awaitable));
    co_return out;
}

asio::awaitable<tcp::socket> connect_to(std::uint16_t port) {
    tcp::socket s(co_await asio::this_coro::executor);
    co_await s.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                             asio::use_awaitable);
    co_return s;
}

} // namespace

TEST(MetricsListener, AnswersScrapesAndRefusesWhatIsNotOne) {
    asio::io_context io;
    int scrapes = 0;
    akv::gateway::metrics_listener listener(io.get_executor(), "127.0.0.1", 0, [&] {
        ++scrapes;
        return std::string("# TYPE x_total counter\nx_total 1\n");
    });
    asio::co_spawn(io, listener.run(), asio::detached);
    const std::uint16_t port = listener.port();
    run_task(io, [&]() -> asio::awaitable<void> {
        auto [status, body] = co_await http_call(port, http::verb::get, "/metrics");
        EXPECT_EQ(status, 200);
        EXPECT_EQ(body, "# TYPE x_total counter\nx_total 1\n");
        EXPECT_EQ((co_await http_call(port, http::verb::get, "/nope")).first, 404);
        EXPECT_EQ((co_await http_call(port, http::verb::delete_, "/metrics")).first, 405);

        // HEAD: the GET's Content-Length, no body.
        tcp::socket head = co_await connect_to(port);
        const std::string head_request = "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        co_await asio::async_write(head, asio::buffer(head_request), asio::use_awaitable);
        const std::string head_reply = co_await read_all(head);
        EXPECT_NE(head_reply.find("Content-Length: 33\r\n"), std::string::npos) << head_reply;
        EXPECT_TRUE(head_reply.ends_with("\r\n\r\n")) << head_reply;

        // Not HTTP: 400, and the connection closed.
        tcp::socket ssh = co_await connect_to(port);
        const std::string junk = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
        co_await asio::async_write(ssh, asio::buffer(junk), asio::use_awaitable);
        const std::string refusal = co_await read_all(ssh);
        EXPECT_TRUE(refusal.starts_with("HTTP/1.1 400")) << refusal;
    }());
    EXPECT_EQ(scrapes, 2); // the GET and the HEAD
    listener.stop();
}

// Idle peers hold at most 32 connections: the next one is closed at once, and stop() closes
// the ones it holds, so neither descriptors nor a shutdown wait on them.
TEST(MetricsListener, IdlePeersCannotHoldItOpen) {
    asio::io_context io;
    akv::gateway::metrics_listener listener(io.get_executor(), "127.0.0.1", 0,
                                            [] { return std::string(); });
    asio::co_spawn(io, listener.run(), asio::detached);
    const std::uint16_t port = listener.port();
    std::list<tcp::socket> idle;
    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            for (int i = 0; i < 32; ++i)
                idle.push_back(co_await connect_to(port));
            // The listener accepts them one by one: a scrape beyond the limit is refused.
            std::string beyond;
            for (int attempt = 0; attempt < 100 && beyond.empty(); ++attempt) {
                tcp::socket extra = co_await connect_to(port);
                const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
                co_await asio::async_write(extra, asio::buffer(request),
                                           asio::as_tuple(asio::use_awaitable));
                const std::string reply = co_await read_all(extra);
                if (reply.empty()) beyond = "closed";
            }
            EXPECT_EQ(beyond, "closed");
            listener.stop();
            for (auto& s : idle)
                EXPECT_EQ(co_await read_all(s), ""); // closed by stop(), not after 5 s
        }(),
        4s);
}
