// The integer at a key, read with GET through `conn`: how the fault tests check that every
// acknowledged INCR is there.
#pragma once

#include "support/harness.hpp"

#include <string>

namespace akv::test {

inline long long read_integer(asio::io_context& io, connection& conn, const std::string& key) {
    long long value = -1;
    run_task(io, [&]() -> asio::awaitable<void> {
        request get;
        get.push("GET", key);
        response<long long> resp;
        co_await conn.exec(get, resp);
        value = std::get<0>(resp).value();
    }());
    return value;
}

} // namespace akv::test
