// A scripted TCP server for replies Redis would never send (malformed bytes, silence).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <functional>
#include <memory>
#include <string>

namespace akv::test {

class fake_server {
public:
    // Called with each complete request's bytes (one read's worth) and the connection number;
    // returns the bytes to answer with ("" = stay silent).
    using script = std::function<std::string(const std::string& request, int connection)>;

    fake_server(boost::asio::io_context& io, script s)
        : acceptor_(io, {boost::asio::ip::make_address("127.0.0.1"), 0})
        , script_(std::move(s)) {
        boost::asio::co_spawn(io, accept_loop(), boost::asio::detached);
    }
    ~fake_server() {
        boost::system::error_code ec;
        acceptor_.close(ec);
    }

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    int connections() const { return connections_; }

    // The answer Redis gives to HELLO 3.
    static std::string hello_reply() {
        return "%3\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n$4\r\nmode\r\n$"
               "10\r\nstandalone\r\n";
    }

private:
    boost::asio::awaitable<void> accept_loop() {
        constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(nothrow);
            if (ec) co_return;
            boost::asio::co_spawn(acceptor_.get_executor(),
                                  serve(std::move(socket), ++connections_), boost::asio::detached);
        }
    }

    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket, int number) {
        constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
        char buf[4096];
        for (;;) {
            auto [ec, n] = co_await socket.async_read_some(boost::asio::buffer(buf), nothrow);
            if (ec) co_return;
            const std::string answer = script_(std::string(buf, n), number);
            if (answer.empty()) continue;
            auto [wec, wn] =
                co_await boost::asio::async_write(socket, boost::asio::buffer(answer), nothrow);
            if (wec) co_return;
        }
    }

    boost::asio::ip::tcp::acceptor acceptor_;
    script script_;
    int connections_ = 0;
};

} // namespace akv::test
