// An akv::client whose run() goes on for the object's lifetime (see running_connection).
#pragma once

#include "support/harness.hpp"

#include <akv/client.hpp>
#include <akv/config.hpp>

namespace akv::test {

class running_client {
public:
    running_client(asio::io_context& io, config cfg);
    ~running_client();

    asio::io_context& io_;
    akv::client client;
    bool finished = false;
};

} // namespace akv::test
