// akv_queue_test_worker: one akv::queue::worker in a process of its own, for the
// multi-process tests of the task queue (tests/integration/queue_process_test.cpp).
//
//   akv_queue_test_worker --redis URL --queue NAME [--concurrency N] [--lease-ms N]
//                         [--mode record|slow] [--slow-ms N] [--grace-ms N] [--heartbeat-ms N]
//                         [--die-at hand-off]
//
// The handler records each run: HINCRBY akvtest:{<queue>}:runs <payload> 1 (mode slow first
// waits slow-ms). Prints "ready <worker token>" once the worker runs and the client is
// connected. SIGTERM/SIGINT: worker.stop(), wait for run() to drain, then prints
// "drained completed=<n> handed_back=<n>" and exits 0. --die-at hand-off: the process
// SIGKILLs itself after an ack that left notices for parents of a flow in the outbox, before
// they are applied (tests/integration/queue_flow_test.cpp).
//
// Exit status: 0 drained after a signal, 1 the worker or client failed, 2 bad arguments.
#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/queue/worker.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr const char* usage =
    "usage: akv_queue_test_worker --redis URL --queue NAME [--concurrency N] [--lease-ms N]\n"
    "                             [--mode record|slow] [--slow-ms N] [--grace-ms N]\n"
    "                             [--heartbeat-ms N] [--die-at hand-off]\n";

struct options {
    std::string redis;
    std::string queue;
    std::size_t concurrency = 16;
    long long lease_ms = 30000;
    bool slow = false;
    long long slow_ms = 0;
    long long grace_ms = 10000;
    bool die_before_hand_off = false;
    long long heartbeat_ms = 5000;
};

struct bad_args {
    std::string what;
};

long long number(const std::string& flag, const std::string& text, long long min) {
    long long v = 0;
    const auto* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc() || p != end || text.empty())
        throw bad_args{flag + ": expected a number, got \"" + text + "\""};
    if (v < min) throw bad_args{flag + ": must be at least " + std::to_string(min) + ", got " + text};
    return v;
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (i + 1 >= argc) throw bad_args{flag + ": missing value"};
        const std::string value = argv[++i];
        if (flag == "--redis") o.redis = value;
        else if (flag == "--queue") o.queue = value;
        else if (flag == "--concurrency") o.concurrency = static_cast<std::size_t>(number(flag, value, 1));
        else if (flag == "--lease-ms") o.lease_ms = number(flag, value, 30);
        else if (flag == "--slow-ms") o.slow_ms = number(flag, value, 0);
        else if (flag == "--grace-ms") o.grace_ms = number(flag, value, 0);
        else if (flag == "--heartbeat-ms") o.heartbeat_ms = number(flag, value, 10);
        else if (flag == "--die-at") {
            if (value != "hand-off")
                throw bad_args{"--die-at: expected hand-off, got \"" + value + "\""};
            o.die_before_hand_off = true;
        } else if (flag == "--mode") {
            if (value == "record") o.slow = false;
            else if (value == "slow") o.slow = true;
            else throw bad_args{"--mode: expected record or slow, got \"" + value + "\""};
        } else
            throw bad_args{"unknown option \"" + flag + "\""};
    }
    if (o.redis.empty()) throw bad_args{"--redis is required"};
    if (o.queue.empty()) throw bad_args{"--queue is required"};
    return o;
}

} // namespace

int main(int argc, char** argv) {
    options opt;
    akv::config cfg;
    try {
        opt = parse(argc, argv);
        cfg = akv::config::from_url(opt.redis);
    } catch (const bad_args& e) {
        std::cerr << "akv_queue_test_worker: " << e.what << "\n" << usage;
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "akv_queue_test_worker: --redis: " << e.what() << "\n" << usage;
        return 2;
    }

    asio::io_context io;
    akv::client client(io.get_executor(), cfg);
    const std::string runs_key = "akvtest:{" + opt.queue + "}:runs";
    const bool slow = opt.slow;
    const auto slow_for = std::chrono::milliseconds(opt.slow_ms);

    akv::queue::handler h = [&client, runs_key, slow,
                             slow_for](akv::queue::job_context& ctx) -> asio::awaitable<std::string> {
        if (slow) {
            asio::steady_timer t(co_await asio::this_coro::executor, slow_for);
            co_await t.async_wait(asio::use_awaitable); // throws when cancelled (shutdown)
        }
        akv::request req;
        req.push("HINCRBY", runs_key, ctx.job().payload, 1);
        akv::response<long long> resp;
        co_await client.exec(req, resp);
        std::get<0>(resp).value(); // an error reply fails the run
        co_return std::string();
    };

    akv::queue::worker_options wo;
    wo.concurrency = opt.concurrency;
    wo.lease_time = std::chrono::milliseconds(opt.lease_ms);
    wo.shutdown_grace = std::chrono::milliseconds(opt.grace_ms);
    wo.heartbeat = std::chrono::milliseconds(opt.heartbeat_ms);
    if (opt.die_before_hand_off) wo.before_hand_off = [] { ::kill(::getpid(), SIGKILL); };

    std::optional<akv::queue::worker> w;
    try {
        w.emplace(client, opt.queue, std::move(h), wo);
    } catch (const std::exception& e) {
        std::cerr << "akv_queue_test_worker: " << e.what() << "\n" << usage;
        return 2;
    }

    int status = 0;
    bool signalled = false;
    asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (ec) return;
        signalled = true;
        w->stop();
    });

    asio::co_spawn(io, client.run(), [](std::exception_ptr) {});
    asio::co_spawn(io, w->run(), [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                std::cerr << "akv_queue_test_worker: worker run() failed: " << x.what() << "\n";
            } catch (...) {
                std::cerr << "akv_queue_test_worker: worker run() failed\n";
            }
            status = 1;
        } else if (!signalled) {
            std::cerr << "akv_queue_test_worker: worker run() returned without a signal\n";
            status = 1;
        }
        signals.cancel();
        client.cancel();
        std::cout << "drained completed=" << w->stats().completed
                  << " handed_back=" << w->stats().handed_back << std::endl;
    });
    // Ready once the client has a connection (its first reply) and run() has begun.
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            akv::request req;
            req.push("PING");
            akv::response<std::string> resp;
            co_await client.exec(req, resp);
            std::cout << "ready " << w->token() << std::endl;
        },
        [&](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                std::cerr << "akv_queue_test_worker: first PING failed: " << x.what() << "\n";
            }
        });

    try {
        io.run();
    } catch (const std::exception& e) {
        std::cerr << "akv_queue_test_worker: " << e.what() << "\n";
        return 1;
    }
    return status;
}
