// A scripted TCP server for replies Redis would never send (malformed bytes, silence).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace akv::test {

class fake_server {
public:
    // Called with each complete request's bytes (one read's worth) and the connection number;
    // returns the bytes to answer with ("" = stay silent).
    using script = std::function<std::string(const std::string& request, int connection)>;

    fake_server(boost::asio::io_context& io, script s);
    ~fake_server();

    std::uint16_t port() const;
    int connections() const;

    // The answer Redis gives to HELLO 3.
    static std::string hello_reply();

private:
    struct listener; // the acceptor and its connections
    std::unique_ptr<listener> listener_;
};

} // namespace akv::test
