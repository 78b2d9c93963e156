// `akv console`: the operator's console for a quick look, without a gateway deployment: a
// local server on a free port (a gateway with only the console), its address and a one-time
// password printed, until Ctrl-C.
#include "commands.hpp"

#include "common/app.hpp"

#include <akv/client.hpp>
#include <akv/console/api.hpp>
#include <akv/console/sampler.hpp>
#include <akv/gateway/server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <openssl/rand.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <tuple>

namespace akv::cli {

const char* const console_usage = R"(usage: akv [OPTIONS] console [--listen HOST:PORT]

Serves the operator's console (queues, their jobs and actions, streams, the Redis server) on
a local port for a quick look, and prints its address and a password made for this run (any
user name). Runs until Ctrl-C (or SIGTERM). OPTIONS (--redis URL, ...) as for `akv --help`,
before the word `console`. For a deployment, use `akv-gateway --console`.

options:
  --listen HOST:PORT   where to listen (default 127.0.0.1:0, a free port)
  --help               this text

exit status: 0 stopped by a signal; 2 usage, configuration or a port that cannot be bound
)";

namespace {

namespace asio = boost::asio;

std::string one_time_password() {
    unsigned char bytes[12];
    if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("no random bytes (OpenSSL)");
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char b : bytes) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

} // namespace

int run_console_command(const akv::config& base, const std::vector<std::string>& args) {
    if (std::find(args.begin(), args.end(), "--help") != args.end()) {
        std::cout << console_usage;
        return 0;
    }
    gateway::options o;
    o.port = 0;
    try {
        for (std::size_t i = 0; i < args.size(); ++i) {
            if (args[i] == "--listen" && i + 1 < args.size())
                std::tie(o.address, o.port) = app::host_port("listen", args[++i]);
            else
                throw std::invalid_argument("console: unknown argument \"" + args[i] + "\"");
        }
    } catch (const std::exception& e) {
        std::cerr << "akv: " << e.what() << "\n(akv console --help)\n";
        return 2;
    }
    // A console stays up: it reconnects as a long-running client does (the CLI's one-shot
    // commands do not).
    akv::config cfg = base;
    const akv::config defaults;
    cfg.reconnect_wait_min = defaults.reconnect_wait_min;
    cfg.reconnect_wait_max = defaults.reconnect_wait_max;

    asio::io_context io(1);
    akv::client redis(io.get_executor(), cfg);
    console::options co;
    co.password = one_time_password();
    co.token_secret = one_time_password(); // for the live view's tokens only
    std::unique_ptr<gateway::server> server;
    auto figures = [&server] { return server ? server->snapshot() : gateway::stats{}; };
    co.gateway_stats = figures;
    // Called only while io runs, by then the server is made.
    auto busiest = [&server](std::size_t n) { return server->channel_counts(n); };
    co.gateway_channels = busiest;
    console::sampler_options so;
    so.gateway_stats = figures;
    so.gateway_channels = busiest;
    co.live_channel = so.channel;
    o.token_secret = co.token_secret;
    o.routes["/console"] = console::api(redis, co);
    console::sampler sampler(redis, so);
    try {
        server = std::make_unique<gateway::server>(redis, o);
    } catch (const std::exception& e) {
        std::cerr << "akv: console: " << e.what() << "\n";
        return 2;
    }
    int status = 0;
    asio::co_spawn(io, redis.run(), [](std::exception_ptr) {});
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (ec) return;
        sampler.stop();
        server->stop();
    });
    asio::co_spawn(io, sampler.run(), [](std::exception_ptr) {});
    asio::co_spawn(io, server->run(), [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                std::cerr << "akv: console: " << ex.what() << "\n";
            }
            status = 2;
        }
        sampler.stop();
        signals.cancel();
        redis.cancel();
    });
    bool announced = false;
    while (!io.stopped()) {
        io.run_one();
        if (!announced && server->listening()) {
            announced = true;
            std::printf("console at http://%s:%u/console (any user, password %s)\n",
                        o.address.c_str(), static_cast<unsigned>(server->port()),
                        co.password.c_str());
            std::fflush(stdout);
        }
    }
    return status;
}

} // namespace akv::cli
