// A small blocking HTTP/1.1 client for POSTing JSON to the gateway's webhooks from the CLI,
// tests and benchmarks: one keep-alive connection, no TLS. Not for library code (it blocks).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace akv::app {

class http_poster {
public:
    // "http://host:port" (a path after it is ignored). Throws std::invalid_argument on another
    // form, std::runtime_error when it cannot connect. `timeout` bounds each send and each
    // read: a server that stops answering is an error, not a hang.
    explicit http_poster(std::string_view base_url,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

    // (status, body). Sends again on a new connection only when the server had closed the
    // kept-alive one before answering anything. Throws std::runtime_error, saying what was
    // wrong, on a transport error, a timeout, or a reply that is not HTTP/1.1 with a status
    // and a Content-Length (at most max_body).
    std::pair<int, std::string> post(std::string_view path, std::string_view json_body);

    static constexpr std::size_t max_body = 64 << 20;

    const std::string& host() const noexcept { return host_; }
    const std::string& port() const noexcept { return port_; }

private:
    void connect();
    std::pair<int, std::string> exchange(const std::string& request);

    boost::asio::io_context io_;
    boost::asio::ip::tcp::socket socket_{io_};
    std::string host_, port_;
    std::chrono::milliseconds timeout_;
    std::string buffer_;
};

} // namespace akv::app
