#include "sync_resp.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/system/error_code.hpp>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <span>
#include <stdexcept>

namespace akv::testing::detail {
namespace {

// Deeper than any reply the fixtures ask for; a bound so a hostile stream cannot recurse forever.
constexpr std::size_t max_depth = 16;

// What a RESP2 server sends; the fixtures never say HELLO 3.
bool is_resp2(resp::type t) {
    return t == resp::type::simple_string || t == resp::type::simple_error ||
           t == resp::type::number || t == resp::type::blob_string || t == resp::type::null ||
           t == resp::type::array;
}

// The reply whose first node is nodes[next], which it moves past. The nodes are one complete
// RESP2 reply from the parser, in order, each array followed by its elements.
sync_reply to_reply(std::span<const resp::node> nodes, std::size_t& next,
                    std::string_view message) {
    const resp::node& node = nodes[next++];
    sync_reply reply; // null: $-1 and *-1
    switch (node.data_type) {
    case resp::type::simple_string:
        reply.type = sync_reply::kind::simple_string;
        reply.text = node.value(message);
        break;
    case resp::type::simple_error:
        reply.type = sync_reply::kind::error;
        reply.text = node.value(message);
        break;
    case resp::type::number: {
        reply.type = sync_reply::kind::integer;
        const std::string_view digits = node.value(message); // checked by the parser
        std::from_chars(digits.data(), digits.data() + digits.size(), reply.integer);
        break;
    }
    case resp::type::blob_string:
        reply.type = sync_reply::kind::bulk_string;
        reply.text = node.value(message);
        break;
    case resp::type::array:
        reply.type = sync_reply::kind::array;
        reply.elements.reserve(node.size);
        for (std::size_t i = 0; i < node.size; ++i)
            reply.elements.push_back(to_reply(nodes, next, message));
        break;
    default: // not reached: read_reply() lets RESP2 types only through
        break;
    }
    return reply;
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
    , socket_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0))
    , parser_(resp::limits{.max_depth = max_depth}) {
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

// Parses what has arrived, reading more until one whole reply is there; bytes after it stay in
// buffer_ for the next call.
sync_reply sync_client::read_reply() {
    for (;;) {
        boost::system::error_code ec;
        while (const auto node = parser_.next(buffer_, ec)) {
            if (!is_resp2(node->data_type))
                fail("unexpected " + std::string(resp::to_string(node->data_type)) +
                     " in a RESP2 reply");
            nodes_.push_back(*node);
            if (!parser_.done()) continue;
            const std::size_t size = parser_.consumed();
            std::size_t next = 0;
            sync_reply reply = to_reply(nodes_, next, std::string_view(buffer_).substr(0, size));
            buffer_.erase(0, size);
            parser_.reset();
            nodes_.clear();
            return reply;
        }
        if (ec) fail(parser_.error_message());
        fill();
    }
}

} // namespace akv::testing::detail
