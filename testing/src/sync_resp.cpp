#include "sync_resp.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <system_error>

namespace akv::testing::detail {
namespace {

// Deeper than any reply the fixtures ask for; a bound so a hostile stream cannot recurse forever.
constexpr int max_depth = 16;

std::optional<std::int64_t> parse_integer(std::string_view text) {
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

} // namespace

unique_fd::~unique_fd() {
    if (fd_ >= 0) ::close(fd_);
}

std::string sync_reply::to_text() const {
    switch (type) {
    case kind::simple_string:
        return "+" + text;
    case kind::error:
        return "-" + text;
    case kind::integer:
        return ":" + std::to_string(integer);
    case kind::bulk_string:
        return text;
    case kind::null:
        return "(nil)";
    case kind::array: {
        std::string out;
        for (const auto& element : elements) {
            if (!out.empty()) out += '\n';
            out += element.to_text();
        }
        return out;
    }
    }
    return {};
}

std::string resp_command(const std::vector<std::string>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& arg : args) {
        out += "$" + std::to_string(arg.size()) + "\r\n";
        out += arg;
        out += "\r\n";
    }
    return out;
}

sync_client::sync_client(std::uint16_t port, std::chrono::milliseconds timeout)
    : port_(port)
    , timeout_(timeout)
    , socket_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (!socket_) fail(std::string("socket: ") + std::strerror(errno));
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    const timeval limit{static_cast<time_t>(micros / 1000000),
                        static_cast<suseconds_t>(micros % 1000000)};
    // On Linux SO_SNDTIMEO also bounds connect().
    ::setsockopt(socket_.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(socket_.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    int result;
    do {
        result = ::connect(socket_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    } while (result != 0 && errno == EINTR);
    if (result != 0) fail(std::string("connect: ") + std::strerror(errno));
}

void sync_client::fail(const std::string& what) const {
    throw std::runtime_error("127.0.0.1:" + std::to_string(port_) + ": " + what);
}

sync_reply sync_client::call(const std::vector<std::string>& args) {
    send_all(resp_command(args));
    return read_reply();
}

sync_reply sync_client::call_ok(const std::vector<std::string>& args) {
    sync_reply reply = call(args);
    if (reply.is_error()) {
        std::string command;
        for (const auto& arg : args) {
            if (!command.empty()) command += ' ';
            command += arg;
        }
        // AUTH's argument is a password: keep it out of the message.
        if (!args.empty() && (args[0] == "AUTH" || args[0] == "auth")) command = "AUTH ***";
        fail(command + ": " + reply.text);
    }
    return reply;
}

void sync_client::send_all(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t sent = ::send(socket_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR) continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            fail("send: timed out after " + std::to_string(timeout_.count()) + " ms");
        if (sent <= 0) fail(std::string("send: ") + std::strerror(errno));
        bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
}

void sync_client::fill() {
    char chunk[16384];
    ssize_t received;
    do {
        received = ::recv(socket_.get(), chunk, sizeof chunk, 0);
    } while (received < 0 && errno == EINTR);
    if (received == 0) fail("the server closed the connection");
    if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        fail("recv: timed out after " + std::to_string(timeout_.count()) + " ms");
    if (received < 0) fail(std::string("recv: ") + std::strerror(errno));
    buffer_.append(chunk, static_cast<std::size_t>(received));
}

std::string sync_client::read_line() {
    std::size_t searched = 0;
    for (;;) {
        if (const auto end = buffer_.find("\r\n", searched); end != std::string::npos) {
            std::string line = buffer_.substr(0, end);
            buffer_.erase(0, end + 2);
            return line;
        }
        searched = buffer_.empty() ? 0 : buffer_.size() - 1;
        fill();
    }
}

std::string sync_client::read_bytes(std::size_t count) {
    while (buffer_.size() < count)
        fill();
    std::string bytes = buffer_.substr(0, count);
    buffer_.erase(0, count);
    return bytes;
}

sync_reply sync_client::read_reply(int depth) {
    if (depth > max_depth) fail("reply nested deeper than " + std::to_string(max_depth));
    const std::string line = read_line();
    if (line.empty()) fail("empty reply line");
    const std::string_view rest = std::string_view(line).substr(1);
    sync_reply reply;
    switch (line[0]) {
    case '+':
        reply.type = sync_reply::kind::simple_string;
        reply.text = rest;
        return reply;
    case '-':
        reply.type = sync_reply::kind::error;
        reply.text = rest;
        return reply;
    case ':':
        if (const auto value = parse_integer(rest)) {
            reply.type = sync_reply::kind::integer;
            reply.integer = *value;
            return reply;
        }
        break;
    case '$':
        if (const auto length = parse_integer(rest); length && *length >= -1) {
            if (*length == -1) return reply; // null
            reply.type = sync_reply::kind::bulk_string;
            reply.text = read_bytes(static_cast<std::size_t>(*length) + 2);
            if (!reply.text.ends_with("\r\n")) fail("bulk string without its CRLF");
            reply.text.resize(reply.text.size() - 2);
            return reply;
        }
        break;
    case '*':
        if (const auto count = parse_integer(rest); count && *count >= -1) {
            if (*count == -1) return reply; // null array
            reply.type = sync_reply::kind::array;
            reply.elements.reserve(static_cast<std::size_t>(std::min<std::int64_t>(*count, 1024)));
            for (std::int64_t i = 0; i < *count; ++i)
                reply.elements.push_back(read_reply(depth + 1));
            return reply;
        }
        break;
    }
    fail("malformed reply line \"" + line.substr(0, 64) + "\"");
}

} // namespace akv::testing::detail
