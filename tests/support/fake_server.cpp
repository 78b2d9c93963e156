#include "support/fake_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace akv::test {

namespace asio = boost::asio;

struct fake_server::listener {
    listener(asio::io_context& io, script s)
        : acceptor(io, {asio::ip::make_address("127.0.0.1"), 0})
        , answer(std::move(s)) {}

    asio::awaitable<void> accept_loop() {
        constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(nothrow);
            if (ec) co_return;
            asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), ++connections),
                           asio::detached);
        }
    }

    asio::awaitable<void> serve(asio::ip::tcp::socket socket, int number) {
        constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
        char buf[4096];
        for (;;) {
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), nothrow);
            if (ec) co_return;
            const std::string reply = answer(std::string(buf, n), number);
            if (reply.empty()) continue;
            auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(reply), nothrow);
            if (wec) co_return;
        }
    }

    asio::ip::tcp::acceptor acceptor;
    script answer;
    int connections = 0;
};

fake_server::fake_server(asio::io_context& io, script s)
    : listener_(std::make_unique<listener>(io, std::move(s))) {
    asio::co_spawn(io, listener_->accept_loop(), asio::detached);
}

fake_server::~fake_server() {
    boost::system::error_code ec;
    listener_->acceptor.close(ec);
}

std::uint16_t fake_server::port() const {
    return listener_->acceptor.local_endpoint().port();
}

int fake_server::connections() const {
    return listener_->connections;
}

std::string fake_server::hello_reply() {
    return "%3\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n$4\r\nmode\r\n$"
           "10\r\nstandalone\r\n";
}

} // namespace akv::test
