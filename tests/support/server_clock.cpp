#include "support/server_clock.hpp"

#include <string>
#include <vector>

namespace akv::test {

boost::asio::awaitable<std::int64_t> server_ms(client& c) {
    request req;
    req.push("TIME");
    response<std::vector<std::string>> resp;
    co_await c.exec(req, resp);
    const auto& t = std::get<0>(resp).value();
    co_return std::stoll(t.at(0)) * 1000 + std::stoll(t.at(1)) / 1000;
}

} // namespace akv::test
