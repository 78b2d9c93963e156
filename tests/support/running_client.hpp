// An akv::client whose run() goes on for the object's lifetime (see running_connection).
#pragma once

#include "support/harness.hpp"

#include <akv/client.hpp>
#include <akv/config.hpp>

namespace akv::test {

class running_client {
public:
    running_client(asio::io_context& io, config cfg)
        : io_(io)
        , client(io.get_executor(), cfg) {
        asio::co_spawn(io, client.run(), [this](std::exception_ptr) { finished = true; });
    }
    ~running_client() {
        client.cancel();
        EXPECT_TRUE(run_until(
            io_, [this] { return finished && client.stats().blocking_connections == 0; }, 10s));
    }
    asio::io_context& io_;
    akv::client client;
    bool finished = false;
};

} // namespace akv::test
