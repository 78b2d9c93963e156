#include "http_post.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cctype>
#include <stdexcept>

namespace akv::app {

namespace asio = boost::asio;

http_poster::http_poster(std::string_view base_url) {
    constexpr std::string_view scheme = "http://";
    if (base_url.substr(0, scheme.size()) != scheme)
        throw std::invalid_argument("expected http://HOST:PORT, got '" + std::string(base_url) +
                                    "'");
    std::string_view rest = base_url.substr(scheme.size());
    rest = rest.substr(0, rest.find('/'));
    const auto colon = rest.rfind(':');
    host_ = std::string(rest.substr(0, colon));
    port_ = colon == std::string_view::npos ? "80" : std::string(rest.substr(colon + 1));
    if (host_.empty()) throw std::invalid_argument("no host in '" + std::string(base_url) + "'");
    connect();
}

void http_poster::connect() {
    boost::system::error_code ec;
    socket_.close(ec);
    socket_ = asio::ip::tcp::socket(io_);
    asio::ip::tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(host_, port_, ec);
    if (!ec) asio::connect(socket_, endpoints, ec);
    if (ec)
        throw std::runtime_error("cannot connect to " + host_ + ":" + port_ + ": " + ec.message());
    socket_.set_option(asio::ip::tcp::no_delay(true));
    buffer_.clear();
}

std::pair<int, std::string> http_poster::post(std::string_view path, std::string_view json_body) {
    std::string request = "POST " + std::string(path) + " HTTP/1.1\r\nHost: " + host_ + ":" +
                          port_ + "\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(json_body.size()) + "\r\n\r\n";
    request += json_body;
    try {
        return exchange(request);
    } catch (const boost::system::system_error&) {
        connect(); // a kept-alive connection the server closed meanwhile
        return exchange(request);
    }
}

std::pair<int, std::string> http_poster::exchange(const std::string& request) {
    asio::write(socket_, asio::buffer(request));
    std::array<char, 8192> chunk;
    std::size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
        const std::size_t n = socket_.read_some(asio::buffer(chunk));
        buffer_.append(chunk.data(), n);
        if (buffer_.size() > 64 * 1024) throw std::runtime_error("HTTP reply header over 64 KiB");
    }
    const std::string head = buffer_.substr(0, header_end);
    if (head.compare(0, 9, "HTTP/1.1 ") != 0 || head.size() < 12)
        throw std::runtime_error("not an HTTP/1.1 reply: " + head.substr(0, 40));
    const int status = std::stoi(head.substr(9, 3));
    std::string lower = head;
    for (auto& c : lower)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto cl = lower.find("\r\ncontent-length:");
    if (cl == std::string::npos) throw std::runtime_error("HTTP reply without Content-Length");
    const std::size_t length = std::stoul(head.substr(cl + 17));
    const std::size_t total = header_end + 4 + length;
    while (buffer_.size() < total) {
        const std::size_t n = socket_.read_some(asio::buffer(chunk));
        buffer_.append(chunk.data(), n);
    }
    std::string body = buffer_.substr(header_end + 4, length);
    buffer_.erase(0, total);
    if (lower.find("\r\nconnection: close") != std::string::npos) connect();
    return {status, std::move(body)};
}

} // namespace akv::app
