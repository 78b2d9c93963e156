// A loopback TCP proxy for fault tests: the client connects to port(), the proxy to the real
// server, and the test makes the network misbehave in between. It runs on its own thread and
// io_context, so a client stuck on the test's thread cannot stall it.
//
//   stall(true)    bytes stop flowing both ways (held, not lost); connections stay open
//   reset_all()    every connection is reset (RST, as a crashed peer or a NAT drop)
//   close_all()    every connection is closed (FIN, as a server that hung up)
//   refuse(true)   new connections are accepted and closed at once
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <list>
#include <memory>
#include <thread>

namespace akv::test {

class tcp_proxy {
    using tcp = boost::asio::ip::tcp;

public:
    explicit tcp_proxy(std::uint16_t upstream_port)
        : upstream_(boost::asio::ip::make_address("127.0.0.1"), upstream_port)
        , acceptor_(io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
        port_ = acceptor_.local_endpoint().port();
        boost::asio::co_spawn(io_, accept_loop(), boost::asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }

    ~tcp_proxy() {
        boost::asio::post(io_, [this] {
            boost::system::error_code ec;
            acceptor_.close(ec);
            for (auto& l : links_) l->close(false);
            io_.stop();
        });
        thread_.join();
    }

    tcp_proxy(const tcp_proxy&) = delete;
    tcp_proxy& operator=(const tcp_proxy&) = delete;

    std::uint16_t port() const { return port_; }
    void stall(bool on) { stalled_ = on; }
    void refuse(bool on) { refusing_ = on; }
    void reset_all() { on_proxy_thread([this] { for (auto& l : links_) l->close(true); }); }
    void close_all() { on_proxy_thread([this] { for (auto& l : links_) l->close(false); }); }
    std::size_t accepted() const { return accepted_; }
    std::uint64_t bytes_forwarded() const { return bytes_; }

private:
    struct link {
        tcp::socket client, server;
        explicit link(boost::asio::io_context& io)
            : client(io)
            , server(io) {}
        void close(bool reset) {
            boost::system::error_code ec;
            for (tcp::socket* s : {&client, &server}) {
                if (!s->is_open()) continue;
                if (reset) s->set_option(boost::asio::socket_base::linger(true, 0), ec); // RST
                else s->shutdown(tcp::socket::shutdown_both, ec);
                s->close(ec);
            }
        }
    };

    template <class F> void on_proxy_thread(F f) {
        std::promise<void> done;
        boost::asio::post(io_, [&] {
            f();
            done.set_value();
        });
        done.get_future().wait();
    }

    boost::asio::awaitable<void> accept_loop() {
        for (;;) {
            auto l = std::make_shared<link>(io_);
            boost::system::error_code ec;
            co_await acceptor_.async_accept(l->client, boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            if (ec) co_return; // closed
            ++accepted_;
            if (refusing_) {
                l->close(false);
                continue;
            }
            co_await l->server.async_connect(upstream_, boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            if (ec) {
                l->close(true);
                continue;
            }
            links_.push_back(l);
            boost::asio::co_spawn(io_, pump(l, l->client, l->server), boost::asio::detached);
            boost::asio::co_spawn(io_, pump(l, l->server, l->client), boost::asio::detached);
        }
    }

    boost::asio::awaitable<void> pump(std::shared_ptr<link> l, tcp::socket& from, tcp::socket& to) {
        std::array<char, 16384> buf;
        boost::asio::steady_timer wait(io_);
        for (;;) {
            boost::system::error_code ec;
            const std::size_t n =
                co_await from.async_read_some(boost::asio::buffer(buf), boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            if (ec) break;
            while (stalled_ && from.is_open()) { // held while stalled, then delivered
                wait.expires_after(std::chrono::milliseconds(5));
                co_await wait.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            }
            co_await boost::asio::async_write(to, boost::asio::buffer(buf.data(), n),
                                              boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            if (ec) break;
            bytes_ += n;
        }
        l->close(false); // one side gone: so is the other
        links_.remove(l);
    }

    boost::asio::io_context io_;
    tcp::endpoint upstream_;
    tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
    std::list<std::shared_ptr<link>> links_;
    std::atomic<bool> stalled_{false}, refusing_{false};
    std::atomic<std::size_t> accepted_{0};
    std::atomic<std::uint64_t> bytes_{0};
    std::thread thread_;
};

} // namespace akv::test
