#include "http_post.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cctype>
#include <charconv>
#include <optional>
#include <stdexcept>

namespace akv::app {

namespace asio = boost::asio;

namespace {
// The server closed a kept-alive connection before answering: safe to send again.
struct closed_before_reply : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The digits of `text` (after spaces) as a number, or nothing.
std::optional<std::size_t> number_in(std::string_view text) {
    const auto start = text.find_first_not_of(" \t");
    if (start == std::string_view::npos) return std::nullopt;
    text.remove_prefix(start);
    std::size_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end == text.data()) return std::nullopt;
    const std::string_view rest(end, text.size() - static_cast<std::size_t>(end - text.data()));
    if (rest.find_first_not_of(" \t") != std::string_view::npos) return std::nullopt;
    return value;
}
} // namespace

http_poster::http_poster(std::string_view base_url, std::chrono::milliseconds timeout)
    : timeout_(timeout) {
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
    } catch (const closed_before_reply&) {
        connect(); // a kept-alive connection the server closed meanwhile
        return exchange(request);
    }
}

std::pair<int, std::string> http_poster::exchange(const std::string& request) {
    const std::string where = "HTTP reply from " + host_ + ":" + port_;
    if (!socket_.is_open()) connect(); // closed after a timeout or a malformed reply
    boost::system::error_code ec;
    std::size_t n = 0;
    // One operation, run on our io_context for at most timeout_: asio's blocking calls have
    // no timeout (and go back to waiting when SO_RCVTIMEO fires).
    auto finish = [&](const char* doing) {
        io_.restart();
        io_.run_for(timeout_);
        if (io_.stopped()) return;
        socket_.cancel();
        io_.run();
        socket_.close(ec);
        throw std::runtime_error(where + ": " + doing + " took over " +
                                 std::to_string(timeout_.count()) + " ms");
    };
    auto done = [&](boost::system::error_code e, std::size_t bytes) {
        ec = e;
        n = bytes;
    };
    asio::async_write(socket_, asio::buffer(request), done);
    finish("sending the request");
    std::array<char, 8192> chunk;
    // What follows a bad reply cannot be framed: the next post starts on a new connection.
    auto unframed = [&] {
        socket_.close(ec);
        buffer_.clear();
    };
    auto read_more = [&] {
        socket_.async_read_some(asio::buffer(chunk), done);
        finish("waiting for the reply");
        if (ec && buffer_.empty() &&
            (ec == asio::error::eof || ec == asio::error::connection_reset ||
             ec == asio::error::broken_pipe))
            throw closed_before_reply(where + ": connection closed");
        if (ec) throw std::runtime_error(where + ": " + ec.message());
        buffer_.append(chunk.data(), n);
    };
    if (ec && ec != asio::error::broken_pipe && ec != asio::error::connection_reset)
        throw std::runtime_error("HTTP request to " + host_ + ":" + port_ + ": " + ec.message());
    std::size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
        read_more();
        if (buffer_.size() > 64 * 1024) {
            const std::string start = buffer_.substr(0, 80);
            unframed();
            throw std::runtime_error(where + ": header over 64 KiB in '" + start + "'");
        }
    }
    const std::string head = buffer_.substr(0, header_end);
    auto malformed = [&](const std::string& what) {
        unframed();
        return std::runtime_error(where + ": " + what + " in '" + head.substr(0, 80) + "'");
    };
    if (head.compare(0, 9, "HTTP/1.1 ") != 0) throw malformed("not HTTP/1.1");
    const auto status = number_in(std::string_view(head).substr(9, 3));
    if (head.size() < 12 || !status || *status < 100 || *status > 599 ||
        (head.size() > 12 && head[12] != ' ' && head[12] != '\r'))
        throw malformed("no three-digit status");
    std::string lower = head;
    for (auto& c : lower)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto cl = lower.find("\r\ncontent-length:");
    if (cl == std::string::npos) throw malformed("no Content-Length");
    const auto line_end = lower.find("\r\n", cl + 2);
    const auto length = number_in(std::string_view(head).substr(
        cl + 17, line_end == std::string::npos ? std::string::npos : line_end - cl - 17));
    if (!length) throw malformed("a Content-Length that is not a number");
    if (*length > max_body)
        throw malformed("a body of " + std::to_string(*length) + " bytes, over the " +
                        std::to_string(max_body) + " limit");
    const std::size_t total = header_end + 4 + *length;
    while (buffer_.size() < total)
        read_more();
    std::string body = buffer_.substr(header_end + 4, *length);
    buffer_.erase(0, total);
    if (lower.find("\r\nconnection: close") != std::string::npos) connect();
    return {static_cast<int>(*status), std::move(body)};
}

} // namespace akv::app
