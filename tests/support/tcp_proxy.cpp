#include "support/tcp_proxy.hpp"

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
#include <future>
#include <list>
#include <thread>

namespace akv::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct tcp_proxy::proxy {
    // One client connection and its connection to the server.
    struct link {
        tcp::socket client, server;
        explicit link(asio::io_context& io)
            : client(io)
            , server(io) {}
        void close(bool reset) {
            boost::system::error_code ec;
            for (tcp::socket* s : {&client, &server}) {
                if (!s->is_open()) continue;
                if (reset)
                    s->set_option(asio::socket_base::linger(true, 0), ec); // RST
                else
                    s->shutdown(tcp::socket::shutdown_both, ec);
                s->close(ec);
            }
        }
    };

    explicit proxy(std::uint16_t upstream_port)
        : upstream(asio::ip::make_address("127.0.0.1"), upstream_port)
        , acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        port = acceptor.local_endpoint().port();
        asio::co_spawn(io, accept_loop(), asio::detached);
        thread = std::thread([this] { io.run(); });
    }

    ~proxy() {
        asio::post(io, [this] {
            boost::system::error_code ec;
            acceptor.close(ec);
            for (auto& l : links)
                l->close(false);
            io.stop();
        });
        thread.join();
    }

    template <class F> void on_proxy_thread(F f) {
        std::promise<void> done;
        asio::post(io, [&] {
            f();
            done.set_value();
        });
        done.get_future().wait();
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto l = std::make_shared<link>(io);
            boost::system::error_code ec;
            co_await acceptor.async_accept(l->client,
                                           asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return; // closed
            ++accepted;
            if (refusing) {
                l->close(false);
                continue;
            }
            co_await l->server.async_connect(upstream,
                                             asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {
                l->close(true);
                continue;
            }
            links.push_back(l);
            asio::co_spawn(io, pump(l, l->client, l->server), asio::detached);
            asio::co_spawn(io, pump(l, l->server, l->client), asio::detached);
        }
    }

    asio::awaitable<void> pump(std::shared_ptr<link> l, tcp::socket& from, tcp::socket& to) {
        std::array<char, 16384> buf;
        asio::steady_timer wait(io);
        for (;;) {
            boost::system::error_code ec;
            const std::size_t n = co_await from.async_read_some(
                asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
            if (ec) break;
            while (stalled && from.is_open()) { // held while stalled, then delivered
                wait.expires_after(std::chrono::milliseconds(5));
                co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            }
            co_await asio::async_write(to, asio::buffer(buf.data(), n),
                                       asio::redirect_error(asio::use_awaitable, ec));
            if (ec) break;
            bytes += n;
        }
        l->close(false); // one side gone: so is the other
        links.remove(l);
    }

    asio::io_context io;
    tcp::endpoint upstream;
    tcp::acceptor acceptor;
    std::uint16_t port = 0;
    std::list<std::shared_ptr<link>> links;
    std::atomic<bool> stalled{false}, refusing{false};
    std::atomic<std::size_t> accepted{0};
    std::atomic<std::uint64_t> bytes{0};
    std::thread thread;
};

tcp_proxy::tcp_proxy(std::uint16_t upstream_port)
    : proxy_(std::make_unique<proxy>(upstream_port)) {}

tcp_proxy::~tcp_proxy() = default;

std::uint16_t tcp_proxy::port() const {
    return proxy_->port;
}
void tcp_proxy::stall(bool on) {
    proxy_->stalled = on;
}
void tcp_proxy::refuse(bool on) {
    proxy_->refusing = on;
}
std::size_t tcp_proxy::accepted() const {
    return proxy_->accepted;
}
std::uint64_t tcp_proxy::bytes_forwarded() const {
    return proxy_->bytes;
}

void tcp_proxy::reset_all() {
    proxy_->on_proxy_thread([this] {
        for (auto& l : proxy_->links)
            l->close(true);
    });
}

void tcp_proxy::close_all() {
    proxy_->on_proxy_thread([this] {
        for (auto& l : proxy_->links)
            l->close(false);
    });
}

} // namespace akv::test
