// akv-demo: the core on the embedded default. Starts a private redis-server (append-only on),
// then shows a pipeline, many coroutines sharing one connection, and a pub/sub round trip.
//
//   akv-demo [--redis URL] [--coroutines N] [--requests N]
#include <akv/connection.hpp>
#include <akv/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct options {
    std::optional<std::string> url;
    int coroutines = 500;
    int requests = 200; // per coroutine
};

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "--redis")
            o.url = value();
        else if (arg == "--coroutines")
            o.coroutines = std::stoi(value());
        else if (arg == "--requests")
            o.requests = std::stoi(value());
        else if (arg == "--help" || arg == "-h")
            throw std::invalid_argument("");
        else
            throw std::invalid_argument("unknown option " + arg);
    }
    if (o.coroutines < 1 || o.requests < 1)
        throw std::invalid_argument("--coroutines and --requests must be at least 1");
    return o;
}

asio::awaitable<void> pipeline(akv::connection& conn) {
    akv::request req;
    req.push("SET", "demo:greeting", "hello from async_kv");
    req.push("INCRBY", "demo:visits", 1);
    req.push("RPUSH", "demo:list", "a", "b", "c");
    req.push("HSET", "demo:user", "name", "ada", "lang", "c++");
    req.push("LPUSH", "demo:greeting", "oops"); // a wrong-type error: a value, not a crash
    req.push("HGETALL", "demo:user");
    akv::response<std::string, long long, long long, long long, long long,
                  std::map<std::string, std::string>>
        resp;
    co_await conn.exec(req, resp);
    spdlog::info("pipeline: 6 commands, one round trip");
    spdlog::info("  SET      -> {}", std::get<0>(resp).value());
    spdlog::info("  INCRBY   -> {}", std::get<1>(resp).value());
    spdlog::info("  RPUSH    -> {}", std::get<2>(resp).value());
    spdlog::info("  HSET     -> {}", std::get<3>(resp).value());
    spdlog::info("  LPUSH    -> error value: {}", std::get<4>(resp).error().message);
    for (const auto& [field, value] : std::get<5>(resp).value())
        spdlog::info("  HGETALL  -> {} = {}", field, value);
}

asio::awaitable<void> many_coroutines(akv::connection& conn, const options& o) {
    const auto start = std::chrono::steady_clock::now();
    const auto written_before = conn.stats().requests_written;
    int remaining = o.coroutines;
    asio::steady_timer all_done(co_await asio::this_coro::executor,
                                asio::steady_timer::time_point::max());
    for (int c = 0; c < o.coroutines; ++c) {
        asio::co_spawn(
            co_await asio::this_coro::executor,
            [&conn, c, n = o.requests]() -> asio::awaitable<void> {
                const std::string key = "demo:key:" + std::to_string(c);
                akv::request set, get;
                set.push("SET", key, std::string(100, 'x'));
                get.push("GET", key);
                akv::response<std::string> reply;
                for (int i = 0; i < n; ++i) {
                    co_await conn.exec(i % 2 ? get : set, reply);
                }
            },
            [&](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
                if (--remaining == 0) all_done.cancel();
            });
    }
    auto [ec] = co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double total = double(o.coroutines) * o.requests;
    spdlog::info(
        "{} coroutines x {} GET/SET on one connection: {:.0f} ops/s ({} requests in {:.2f} s)",
        o.coroutines, o.requests, total / seconds, conn.stats().requests_written - written_before,
        seconds);
}

asio::awaitable<void> pubsub(akv::connection& subscriber, akv::connection& publisher) {
    akv::request subscribe;
    subscribe.push("SUBSCRIBE", "demo:channel");
    co_await subscriber.exec(subscribe, akv::ignore);
    co_await subscriber.receive_push(); // the subscription's confirmation

    const auto sent = std::chrono::steady_clock::now();
    akv::request publish;
    publish.push("PUBLISH", "demo:channel", "ping over pub/sub");
    akv::response<long long> receivers;
    co_await publisher.exec(publish, receivers);
    akv::resp::value message = co_await subscriber.receive_push();
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - sent)
                            .count();
    spdlog::info("pub/sub: {} receiver(s); got [{}] on {} in {} us", std::get<0>(receivers).value(),
                 message.elements.at(2).str, message.elements.at(1).str, micros);
}

} // namespace

int main(int argc, char** argv) {
    spdlog::set_pattern("%H:%M:%S.%e %^%l%$ %v");
    options opts;
    try {
        opts = parse(argc, argv);
    } catch (const std::exception& e) {
        if (*e.what()) spdlog::error("{}", e.what());
        fmt::print("usage: akv-demo [--redis URL] [--coroutines N] [--requests N]\n"
                   "Without --redis, a private redis-server is started (append-only on).\n");
        return *e.what() ? 2 : 0;
    }

    std::unique_ptr<akv::embedded_server> server;
    akv::config cfg;
    try {
        if (opts.url) {
            cfg = akv::config::from_url(*opts.url);
        } else {
            server = std::make_unique<akv::embedded_server>(
                akv::embedded_server_options{.append_only = true});
            cfg = server->config();
            spdlog::info("started a private redis-server on port {} (data in {})", server->port(),
                         server->data_dir());
        }
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 2;
    }
    spdlog::info("connecting to {}", cfg.redacted_url());

    asio::io_context io;
    akv::connection conn(io.get_executor(), cfg);
    akv::connection subscriber(io.get_executor(), cfg);
    conn.set_event_handler([](const akv::connection_event& e) {
        if (e.what == akv::connection_event::kind::disconnected &&
            e.reason != akv::error::connection_closed) // not our own shutdown
            spdlog::warn("disconnected: {} ({})", e.reason.message(), e.detail);
    });
    int status = 0;
    auto stop = [&] {
        conn.cancel();
        subscriber.cancel();
    };
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int sig) {
        if (ec) return;
        spdlog::warn("signal {}: shutting down", sig);
        status = 130;
        stop();
    });
    asio::co_spawn(io, conn.run(), [&](std::exception_ptr e) {
        if (e) status = 1;
    });
    asio::co_spawn(io, subscriber.run(), [](std::exception_ptr) {});
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await pipeline(conn);
            co_await many_coroutines(conn, opts);
            co_await pubsub(subscriber, conn);
        },
        [&](std::exception_ptr e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    spdlog::error("demo failed: {} {}", ex.what(), conn.last_error_message());
                    if (status == 0) status = 1;
                }
            } else {
                spdlog::info("done");
            }
            stop();
            signals.cancel();
        });
    io.run();
    return status;
}
