// A loopback TCP proxy for fault tests: the client connects to port(), the proxy to the real
// server, and the test makes the network misbehave in between. It runs on its own thread and
// io_context, so a client stuck on the test's thread cannot stall it.
//
//   stall(true)    bytes stop flowing both ways (held, not lost); connections stay open
//   reset_all()    every connection is reset (RST, as a crashed peer or a NAT drop)
//   close_all()    every connection is closed (FIN, as a server that hung up)
//   refuse(true)   new connections are accepted and closed at once
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace akv::test {

class tcp_proxy {
public:
    explicit tcp_proxy(std::uint16_t upstream_port);
    ~tcp_proxy();

    tcp_proxy(const tcp_proxy&) = delete;
    tcp_proxy& operator=(const tcp_proxy&) = delete;

    std::uint16_t port() const;
    void stall(bool on);
    void refuse(bool on);
    void reset_all();
    void close_all();
    std::size_t accepted() const;
    std::uint64_t bytes_forwarded() const;

private:
    struct proxy; // its io_context, thread, acceptor and links
    std::unique_ptr<proxy> proxy_;
};

} // namespace akv::test
