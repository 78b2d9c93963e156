// Waiting, inside a coroutine, for a condition that Redis makes true on its own time (an entry
// becoming idle long enough to claim): re-check every few ms until a deadline.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>

namespace akv::test {

boost::asio::awaitable<bool> eventually(std::function<boost::asio::awaitable<bool>()> check,
                                        std::chrono::milliseconds limit = std::chrono::seconds(10));

} // namespace akv::test
