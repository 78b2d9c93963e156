// akv-gateway: Redis channels pushed to browsers over WebSocket (websocket_gateway/README.md).
// Without --redis it starts a private redis-server (the embedded default).
//
//   akv-gateway [--listen HOST:PORT] [--redis URL] [--history PATTERN[=MAXLEN[,AGE_S]]]...
//               [--anonymous PATTERN]... [--origin ORIGIN]... [--static DIR] [--prefix P]
//               [--tls-cert FILE --tls-key FILE] [--send-queue N] [--slow disconnect|drop-oldest]
//               [--max-channels N] [--max-frame BYTES] [--max-rate N] [--max-sessions N]
//               [--grace-ms N] [--demo]
//   Secrets come from the environment, never flags: AKV_GATEWAY_SECRET (token secret),
//   AKV_GATEWAY_API_KEY (POST /api/publish).
//   Prints "akv-gateway listening on http[s]://HOST:PORT" once it serves; --demo also prints a
//   demo page address with a token good for a day (channels demo*, needs a secret; one is made
//   up when none is set). SIGINT/SIGTERM: close every session with 1001, drain, exit 0.
#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/embedded_server.hpp>
#include <akv/gateway/server.hpp>
#include <akv/gateway/token.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
namespace gw = akv::gateway;

namespace {

struct flags {
    gw::options opts;
    std::optional<std::string> redis_url;
    bool demo = false;
};

template <class T> T number(const std::string& flag, const std::string& text) {
    T v{};
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || p != text.data() + text.size())
        throw std::invalid_argument(flag + ": expected a number, got '" + text + "'");
    return v;
}

// PATTERN[=MAXLEN[,AGE_S]]
gw::history_rule history_rule(const std::string& text) {
    gw::history_rule r;
    const auto eq = text.find('=');
    r.pattern = text.substr(0, eq);
    if (r.pattern.empty()) throw std::invalid_argument("--history: empty channel pattern");
    if (eq != std::string::npos) {
        const std::string rest = text.substr(eq + 1);
        const auto comma = rest.find(',');
        r.max_length = number<std::size_t>("--history", rest.substr(0, comma));
        if (comma != std::string::npos)
            r.max_age = std::chrono::seconds(number<long>("--history", rest.substr(comma + 1)));
    }
    return r;
}

flags parse(int argc, char** argv) {
    flags f;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "--listen") {
            const std::string v = value();
            const auto colon = v.rfind(':');
            if (colon == std::string::npos)
                throw std::invalid_argument("--listen: expected HOST:PORT, got '" + v + "'");
            f.opts.address = v.substr(0, colon);
            if (f.opts.address.size() > 2 && f.opts.address.front() == '[')
                f.opts.address = f.opts.address.substr(1, f.opts.address.size() - 2);
            f.opts.port = number<std::uint16_t>("--listen", v.substr(colon + 1));
        } else if (arg == "--redis") {
            f.redis_url = value();
        } else if (arg == "--history") {
            f.opts.history.push_back(history_rule(value()));
        } else if (arg == "--anonymous") {
            f.opts.anonymous.push_back(value());
        } else if (arg == "--origin") {
            f.opts.allowed_origins.push_back(value());
        } else if (arg == "--static") {
            f.opts.static_dir = value();
        } else if (arg == "--prefix") {
            f.opts.channel_prefix = value();
        } else if (arg == "--tls-cert") {
            f.opts.tls_cert_file = value();
        } else if (arg == "--tls-key") {
            f.opts.tls_key_file = value();
        } else if (arg == "--send-queue") {
            f.opts.send_queue = number<std::size_t>(arg, value());
        } else if (arg == "--slow") {
            const std::string v = value();
            if (v == "disconnect")
                f.opts.slow_policy = gw::slow_consumer_policy::disconnect;
            else if (v == "drop-oldest")
                f.opts.slow_policy = gw::slow_consumer_policy::drop_oldest;
            else
                throw std::invalid_argument("--slow: expected disconnect or drop-oldest, got '" + v + "'");
        } else if (arg == "--max-channels") {
            f.opts.max_channels = number<std::size_t>(arg, value());
        } else if (arg == "--max-frame") {
            f.opts.max_frame = number<std::size_t>(arg, value());
        } else if (arg == "--max-rate") {
            f.opts.max_rate = number<double>(arg, value());
            f.opts.max_burst = std::max(f.opts.max_burst, f.opts.max_rate * 2);
        } else if (arg == "--max-sessions") {
            f.opts.max_sessions = number<std::size_t>(arg, value());
        } else if (arg == "--grace-ms") {
            f.opts.shutdown_grace = std::chrono::milliseconds(number<long>(arg, value()));
        } else if (arg == "--demo") {
            f.demo = true;
        } else if (arg == "--help" || arg == "-h") {
            throw std::invalid_argument("");
        } else {
            throw std::invalid_argument("unknown option " + arg);
        }
    }
    if (const char* s = std::getenv("AKV_GATEWAY_SECRET")) f.opts.token_secret = s;
    if (const char* k = std::getenv("AKV_GATEWAY_API_KEY")) f.opts.api_key = k;
    return f;
}

std::string random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size()));
    std::string out;
    for (unsigned char c : raw) out += fmt::format("{:02x}", c);
    return out;
}

} // namespace

int main(int argc, char** argv) {
    spdlog::set_pattern("%H:%M:%S.%e %^%l%$ %v");
    flags f;
    try {
        f = parse(argc, argv);
    } catch (const std::invalid_argument& e) {
        if (*e.what()) std::cerr << "akv-gateway: " << e.what() << "\n";
        std::cerr << "usage: akv-gateway [--listen HOST:PORT] [--redis URL] "
                     "[--history PATTERN[=MAXLEN[,AGE_S]]]... [--anonymous PATTERN]... "
                     "[--origin ORIGIN]... [--static DIR] [--prefix P] [--tls-cert F --tls-key F] "
                     "[--send-queue N] [--slow disconnect|drop-oldest] [--max-channels N] "
                     "[--max-frame BYTES] [--max-rate N] [--max-sessions N] [--grace-ms N] [--demo]\n"
                     "env: AKV_GATEWAY_SECRET (token secret), AKV_GATEWAY_API_KEY (publish API)\n";
        return 2;
    }
    if (f.demo) {
        if (f.opts.token_secret.empty()) f.opts.token_secret = random_hex(32);
        if (f.opts.api_key.empty()) f.opts.api_key = random_hex(16);
        bool has_demo_history = false;
        for (const auto& r : f.opts.history) has_demo_history |= gw::pattern_matches(r.pattern, "demo");
        if (!has_demo_history) f.opts.history.push_back({"demo*", 1000, std::chrono::seconds(0)});
    }

    std::unique_ptr<akv::embedded_server> redis_server;
    akv::config cfg;
    try {
        if (f.redis_url) {
            cfg = akv::config::from_url(*f.redis_url);
        } else {
            redis_server = std::make_unique<akv::embedded_server>(
                akv::embedded_server_options{.append_only = true});
            cfg.hosts = {{"127.0.0.1", redis_server->port()}};
            spdlog::info("started a private redis-server on port {}", redis_server->port());
        }
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 2;
    }
    cfg.client_name = "akv-gateway";

    asio::io_context io(1);
    akv::client redis(io.get_executor(), cfg);
    std::unique_ptr<gw::server> server;
    try {
        server = std::make_unique<gw::server>(redis, f.opts);
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 2;
    }

    int status = 0;
    asio::co_spawn(io, redis.run(), [](std::exception_ptr) {});
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int sig) {
        if (ec) return;
        spdlog::info("signal {}: closing sessions", sig);
        server->stop();
    });
    asio::co_spawn(io, server->run(), [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("{}", ex.what());
            }
            status = 1;
        }
        signals.cancel();
        redis.cancel();
    });
    // Announce once bound (the port may have been 0).
    bool announced = false;
    while (!io.stopped()) {
        io.run_one();
        if (!announced && server->listening()) {
            announced = true;
            const std::string scheme = f.opts.tls_cert_file.empty() ? "http" : "https";
            const std::string base = fmt::format("{}://{}:{}", scheme, f.opts.address, server->port());
            std::printf("akv-gateway listening on %s\n", base.c_str());
            if (f.demo) {
                gw::token_claims c;
                c.subject = "demo";
                c.expires = std::time(nullptr) + 24 * 3600;
                c.channels = {"demo*"};
                c.publish = {"demo*"};
                std::printf("demo page: %s/?token=%s\n", base.c_str(),
                            gw::sign_token(c, f.opts.token_secret).c_str());
            }
            std::fflush(stdout);
        }
    }
    return status;
}
