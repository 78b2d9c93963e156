// A small blocking HTTP/1.1 client for POSTing JSON to the gateway's webhooks from the CLI,
// tests and benchmarks: one keep-alive connection, no TLS. Not for library code (it blocks).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace akv::app {

class http_poster {
public:
    // "http://host:port" (a path after it is ignored). Throws std::invalid_argument on another
    // form, std::runtime_error when it cannot connect.
    explicit http_poster(std::string_view base_url);

    // (status, body). Reconnects once if the server closed the kept-alive connection. Throws
    // std::runtime_error on a transport error or a reply that is not HTTP/1.1 with a length.
    std::pair<int, std::string> post(std::string_view path, std::string_view json_body);

    const std::string& host() const noexcept { return host_; }
    const std::string& port() const noexcept { return port_; }

private:
    void connect();
    std::pair<int, std::string> exchange(const std::string& request);

    boost::asio::io_context io_;
    boost::asio::ip::tcp::socket socket_{io_};
    std::string host_, port_;
    std::string buffer_;
};

} // namespace akv::app
