#include "support/read_integer.hpp"

#include "support/harness.hpp"

namespace akv::test {

long long read_integer(asio::io_context& io, connection& conn, const std::string& key) {
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
