// Redis' own clock (TIME), for tests that check windows and due times where the server decides
// them: ms since the epoch.
#pragma once

#include <akv/client.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>

namespace akv::test {

boost::asio::awaitable<std::int64_t> server_ms(client& c);

} // namespace akv::test
