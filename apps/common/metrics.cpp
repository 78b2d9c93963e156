#include "common/metrics.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <spdlog/spdlog.h>

#include <cstdio>

namespace akv::app {

flag metrics_listen_flag() {
    return {"metrics-listen", "HOST:PORT",
            "answer Prometheus scrapes at http://HOST:PORT/metrics (default: off; port 0: any)"};
}

std::unique_ptr<gateway::metrics_listener> start_metrics(const command_line& cl,
                                                         boost::asio::io_context& io,
                                                         gateway::metrics_listener::source source) {
    const auto value = cl.get("metrics-listen");
    if (!value) return nullptr;
    const auto [host, port] = host_port("metrics-listen", *value);
    std::unique_ptr<gateway::metrics_listener> listener;
    try {
        listener = std::make_unique<gateway::metrics_listener>(io.get_executor(), host, port,
                                                               std::move(source));
    } catch (const boost::system::system_error& e) {
        throw usage_error("--metrics-listen " + *value + ": " + e.what());
    }
    boost::asio::co_spawn(io, listener->run(), boost::asio::detached);
    const std::string url = "http://" +
                            (host.find(':') == std::string::npos ? host : "[" + host + "]") + ":" +
                            std::to_string(listener->port()) + "/metrics";
    spdlog::info("metrics on {}", url);
    std::printf("metrics on %s\n", url.c_str());
    std::fflush(stdout);
    return listener;
}

} // namespace akv::app
