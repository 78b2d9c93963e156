// A blocking RESP2 client over a loopback TCP socket, for the process fixtures (embedded_server's
// readiness probe, embedded_cluster's setup and waits). Every send and receive has a deadline,
// so a server that hangs fails the caller instead of stalling it. Replies are read by the
// library's own parser (akv/resp/parser.hpp). Private to akv::testing.
#pragma once

#include <akv/resp/parser.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace akv::testing::detail {

// Owns a file descriptor; close() on destruction.
class unique_fd {
public:
    explicit unique_fd(int fd = -1) noexcept
        : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        std::swap(fd_, other.fd_);
        return *this;
    }
    ~unique_fd();

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept { *this = unique_fd(); }

private:
    int fd_;
};

// One RESP2 reply. An error reply is a value here, not an exception: the caller decides.
struct sync_reply {
    enum class kind { simple_string, error, integer, bulk_string, null, array };

    kind type = kind::null;
    std::string text; // simple string, error (without the '-'), bulk string
    std::int64_t integer = 0;
    std::vector<sync_reply> elements; // array

    bool is_error() const noexcept { return type == kind::error; }

    // For tests and messages: a bulk string as its contents, null as "(nil)", any other scalar
    // as the server sent it ("+OK", "-MOVED 3999 127.0.0.1:7001", ":1"), an array as its
    // elements in that form, one per line.
    std::string to_text() const;
};

// I/O and protocol failures throw std::runtime_error whose message names the port and what
// went wrong ("127.0.0.1:7001: recv: timed out after 1000 ms").
class sync_client {
public:
    // Connects to 127.0.0.1:port. `timeout` bounds the connect and every later send and recv.
    sync_client(std::uint16_t port, std::chrono::milliseconds timeout);

    std::uint16_t port() const noexcept { return port_; }

    // Sends the command and reads its reply.
    sync_reply call(const std::vector<std::string>& args);

    // call(), throwing std::runtime_error with the server's message if the reply is an error.
    sync_reply call_ok(const std::vector<std::string>& args);

private:
    [[noreturn]] void fail(const std::string& what) const;
    void send_all(std::string_view bytes);
    sync_reply read_reply();
    void fill();

    std::uint16_t port_;
    std::chrono::milliseconds timeout_;
    unique_fd socket_;
    std::string buffer_; // received; the reply being parsed starts at buffer_[0]
    resp::parser parser_;
    std::vector<resp::node> nodes_; // of the reply being parsed
};

// "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
std::string resp_command(const std::vector<std::string>& args);

} // namespace akv::testing::detail
