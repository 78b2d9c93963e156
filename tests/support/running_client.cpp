#include "support/running_client.hpp"

namespace akv::test {

running_client::running_client(asio::io_context& io, config cfg)
    : io_(io)
    , client(io.get_executor(), cfg) {
    asio::co_spawn(io, client.run(), [this](std::exception_ptr) { finished = true; });
}

running_client::~running_client() {
    client.cancel();
    EXPECT_TRUE(run_until(
        io_, [this] { return finished && client.stats().blocking_connections == 0; }, 10s));
}

} // namespace akv::test
