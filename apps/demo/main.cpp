// akv-demo: seed 004's realtime pipeline on one machine. Starts (or uses) Redis, puts the
// interest classifier in the model registry if it is not there, then runs and supervises
// akv-gateway, akv-worker and akv-batcher (restarted when one dies), publishes the pipeline's
// counters every second, and prints the admin page's address. See README.md, "The demo".
//
//   akv-demo [--listen HOST:PORT] [--redis URL] [--data-dir DIR] [--workers N] ...
#include "common/app.hpp"
#include "demo/pipeline.hpp"
#include "demo_web.hpp"

#include <akv/client.hpp>
#include <akv/kv/model_registry.hpp>
#include <akv/queue/admin.hpp>
#include <akv/request.hpp>
#include <akv/response.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

akv::app::command_line command_line() {
    return akv::app::command_line(
        "akv-demo",
        "Seed 004's pipeline: webhook -> queue -> featurizer -> stream -> batcher (model) ->\n"
        "stream -> SQLite -> browser. Starts and supervises akv-gateway, akv-worker and\n"
        "akv-batcher, then prints the admin page's address.",
        {
            {"listen", "HOST:PORT", "the gateway's address (default 127.0.0.1:8080)"},
            {"workers", "N", "akv-worker processes (default 1)"},
            {"batch", "N", "the batcher's batch size (default 64)"},
            {"lease-ms", "N", "a job of a dead worker runs again after this (default 5000)"},
            {"claim-idle-ms", "N",
             "a stream entry of a dead consumer is taken over after this "
             "(default 5000)"},
            {"bin-dir", "DIR",
             "where akv-gateway, akv-worker, akv-batcher are (default: beside "
             "akv-demo)"},
        },
        "Ctrl-C (SIGINT) or SIGTERM stops every process gracefully. Data (Redis's append-only\n"
        "file, the SQLite database) stay in the data dir for the next run.");
}

std::filesystem::path own_dir() {
    std::error_code ec;
    auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::filesystem::current_path() : p.parent_path();
}

// One supervised process; restarted after it dies unless we are stopping.
struct child {
    std::string name;
    std::vector<std::string> args;
    pid_t pid = -1;
    int restarts = 0;
    std::chrono::steady_clock::time_point started;

    void start() {
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        const pid_t parent = ::getpid();
        pid = ::fork();
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGTERM); // a killed demo leaves no orphans
            if (::getppid() != parent) ::_exit(127);
            ::execv(argv[0], argv.data());
            std::fprintf(stderr, "akv-demo: cannot run %s: %s\n", argv[0], std::strerror(errno));
            ::_exit(127);
        }
        started = std::chrono::steady_clock::now();
    }
};

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("signal ") + ::strsignal(WTERMSIG(status));
    return "status " + std::to_string(status);
}

asio::awaitable<void> seed_model(akv::client& redis) {
    akv::kv::model_registry registry(redis, std::string(akv::demo::model_name));
    const bool exists = co_await registry.exists();
    if (exists) co_return;
    const akv::kv::model m = akv::demo::interest_model_files();
    const std::uint64_t v = co_await registry.save(m);
    spdlog::info("model registry: saved {} v{}", akv::demo::model_name, v);
}

// The counters the admin page shows, published on demo:stats.
asio::awaitable<std::string> gather_stats(akv::client& redis) {
    akv::queue::admin posts(redis, std::string(akv::demo::posts_queue));
    akv::queue::admin comments(redis, std::string(akv::demo::comments_queue));
    const akv::queue::state_counts pc = co_await posts.counts();
    const akv::queue::state_counts cc = co_await comments.counts();
    akv::request req;
    req.push("XLEN", akv::demo::embeddings_stream);
    req.push("XLEN", akv::demo::interest_stream);
    req.push("HGETALL", "akv:batcher:" + std::string(akv::demo::interest_stream));
    req.push("HGETALL", akv::demo::signup_stats_key);
    req.push("XINFO", "GROUPS", akv::demo::embeddings_stream);
    akv::generic_response resp;
    co_await redis.exec(req, resp);
    boost::json::object o;
    o["posts_queue"] = pc.waiting + pc.delayed + pc.active;
    o["comments_queue"] = cc.waiting + cc.delayed + cc.active;
    auto integer = [&](std::size_t i) -> std::int64_t {
        return i < resp.size() && resp[i].has_value() ? std::atoll(resp[i].value().str.c_str()) : 0;
    };
    o["embeddings"] = integer(0);
    o["interest"] = integer(1);
    auto hash = [&](std::size_t i) {
        std::map<std::string, std::string> m;
        if (i >= resp.size() || !resp[i].has_value()) return m;
        const auto& v = resp[i].value();
        for (std::size_t k = 0; k + 1 < v.elements.size(); k += 2)
            m[v.elements[k].str] = v.elements[k + 1].str;
        return m;
    };
    for (auto& [k, v] : hash(2))
        if (k == "batches" || k == "last_batch" || k == "entries") o[k] = std::atoll(v.c_str());
    for (auto& [k, v] : hash(3))
        if (k == "written" || k == "latency_p50_ms" || k == "latency_p99_ms")
            o[k] = std::atoll(v.c_str());
    // XINFO GROUPS: the batcher's group's lag (entries not yet read) plus pending.
    if (resp.size() > 4 && resp[4].has_value()) {
        for (const auto& g : resp[4].value().elements) {
            std::map<std::string, std::string> f;
            for (std::size_t k = 0; k + 1 < g.elements.size(); k += 2)
                f[g.elements[k].str] = g.elements[k + 1].str;
            if (f["name"] == akv::demo::batcher_group)
                o["batch_lag"] = std::atoll(f["lag"].c_str()) + std::atoll(f["pending"].c_str());
        }
    }
    co_return boost::json::serialize(o);
}

} // namespace

int main(int argc, char** argv) {
    auto cl = command_line();
    std::string listen;
    std::size_t workers = 1;
    if (auto done = akv::app::start(cl, argc, argv, [&] {
            listen = cl.get_or("listen", "127.0.0.1:8080");
            if (listen.rfind(':') == std::string::npos)
                throw akv::app::usage_error("--listen: expected HOST:PORT, got '" + listen + "'");
            akv::app::command_line::parse_number<std::uint16_t>(
                "listen", listen.substr(listen.rfind(':') + 1));
            workers = cl.number<std::size_t>("workers", 1);
            if (workers < 1 || workers > 64) throw akv::app::usage_error("--workers: 1 to 64");
            cl.require_positive({"batch", "lease-ms", "claim-idle-ms"});
        }))
        return *done;

    int failure = akv::app::exit_ok;
    const auto target = akv::app::open_redis(cl, "akv-demo", failure);
    if (!target) return failure;
    // The children find Redis in $AKV_REDIS: a password stays off their command lines (ps).
    const std::string url = target->embedded() ? target->server()->url()
                            : cl.has("redis")  ? *cl.get("redis")
                                               : std::getenv("AKV_REDIS");
    ::setenv("AKV_REDIS", url.c_str(), 1);
    if (target->embedded())
        spdlog::info("redis-server on port {}, data in {}", target->server()->port(),
                     target->server()->data_dir());

    // The admin page, where the gateway serves static files from.
    const auto web = target->data_dir() / "web";
    std::filesystem::create_directories(web);
    std::ofstream(web / "index.html", std::ios::binary | std::ios::trunc)
        << akv::demo::web::index_html;

    const std::filesystem::path bin =
        cl.has("bin-dir") ? std::filesystem::path(*cl.get("bin-dir")) : own_dir();
    const std::string level = cl.get_or("log-level", "info");
    const std::string lease = std::to_string(cl.number<long>("lease-ms", 5000));
    const std::string claim = std::to_string(cl.number<long>("claim-idle-ms", 5000));
    const std::string db = (target->data_dir() / "demo.sqlite").string();
    std::vector<child> children;
    children.push_back({"akv-gateway",
                        {(bin / "akv-gateway").string(),
                         "--listen",
                         listen,
                         "--log-level",
                         level,
                         "--static",
                         web.string(),
                         "--anonymous",
                         "posts",
                         "--anonymous",
                         "post:*",
                         "--anonymous",
                         std::string(akv::demo::stats_channel),
                         "--history",
                         "posts=10000",
                         "--history",
                         "post:*=100000",
                         // The page posts from the browser, where no secret can be kept:
                         // the demo listens on loopback by default.
                         "--open-webhooks",
                         "--webhook",
                         "/webhook/posts=" + std::string(akv::demo::posts_queue),
                         "--webhook",
                         "/webhook/comments=" + std::string(akv::demo::comments_queue)}});
    for (std::size_t i = 0; i < workers; ++i)
        children.push_back({"akv-worker",
                            {(bin / "akv-worker").string(),
                             "--log-level",
                             level,
                             "--db",
                             db,
                             "--queue",
                             std::string(akv::demo::posts_queue) + "=demo.posts",
                             "--queue",
                             std::string(akv::demo::comments_queue) + "=demo.preprocess",
                             "--stream",
                             std::string(akv::demo::interest_stream) + "=demo.signups",
                             "--history",
                             "posts=10000",
                             "--history",
                             "post:*=100000",
                             "--lease-ms",
                             lease,
                             "--claim-idle-ms",
                             claim}});
    children.push_back({"akv-batcher",
                        {(bin / "akv-batcher").string(),
                         "--log-level",
                         level,
                         "--input",
                         std::string(akv::demo::embeddings_stream),
                         "--output",
                         std::string(akv::demo::interest_stream),
                         "--group",
                         std::string(akv::demo::batcher_group),
                         "--model",
                         std::string(akv::demo::model_name),
                         "--threshold",
                         "0.5",
                         "--max-batch",
                         std::to_string(cl.number<long>("batch", 64)),
                         // A realtime page: a batch waits at most 10 ms to fill (it fills
                         // at once under load).
                         "--max-wait-ms",
                         "10",
                         "--claim-idle-ms",
                         claim,
                         "--stats-key",
                         "akv:batcher:" + std::string(akv::demo::interest_stream)}});
    for (const auto& c : children)
        if (::access(c.args[0].c_str(), X_OK) != 0) {
            spdlog::error("{} not found (give --bin-dir)", c.args[0]);
            return akv::app::exit_usage;
        }

    asio::io_context io(1);
    akv::client redis(io.get_executor(), target->config());
    asio::co_spawn(io, redis.run(), [](std::exception_ptr) {});
    int status = akv::app::exit_ok;
    bool stopping = false;
    // The model before the batcher that loads it.
    asio::co_spawn(io, seed_model(redis), [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("model registry: {}", ex.what());
            }
            status = akv::app::exit_unavailable;
        }
        io.stop();
    });
    io.run();
    if (status != akv::app::exit_ok) return status;
    io.restart();

    asio::signal_set chld(io, SIGCHLD); // before the first child can die
    for (auto& c : children)
        c.start();

    asio::signal_set signals(io, SIGINT, SIGTERM);
    asio::steady_timer ticker(io);
    std::function<void()> wait_children = [&] {
        chld.async_wait([&](boost::system::error_code ec, int) {
            if (ec) return;
            int st = 0;
            pid_t pid;
            while ((pid = ::waitpid(-1, &st, WNOHANG)) > 0) {
                for (auto& c : children) {
                    if (c.pid != pid) continue;
                    c.pid = -1;
                    if (stopping) {
                        spdlog::info("{} stopped ({})", c.name, describe_status(st));
                        continue;
                    }
                    spdlog::warn("{} died ({}): restarting", c.name, describe_status(st));
                    ++c.restarts;
                    // Dying at once again and again: wait a little between attempts.
                    const auto delay = std::chrono::steady_clock::now() - c.started < 2s ? 1s : 0s;
                    auto t = std::make_shared<asio::steady_timer>(io, delay);
                    t->async_wait([&, t, &c = c](boost::system::error_code) {
                        if (!stopping) c.start();
                    });
                }
            }
            const bool all_gone = std::all_of(children.begin(), children.end(),
                                              [](const child& c) { return c.pid < 0; });
            if (stopping && all_gone) {
                signals.cancel();
                ticker.cancel();
                redis.cancel();
                return;
            }
            wait_children();
        });
    };
    wait_children();
    signals.async_wait([&](boost::system::error_code ec, int sig) {
        if (ec) return;
        spdlog::info("signal {}: stopping the pipeline", sig);
        stopping = true;
        for (auto& c : children)
            if (c.pid > 0) ::kill(c.pid, SIGTERM);
    });

    // Tell the user once the page is served; then the counters, every second.
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            const auto colon = listen.rfind(':');
            const std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
            asio::ip::tcp::resolver resolver(io);
            bool announced = false;
            while (!stopping) {
                if (!announced) {
                    asio::ip::tcp::socket probe(io);
                    auto [rec, results] = co_await resolver.async_resolve(
                        host, port, asio::as_tuple(asio::use_awaitable));
                    if (!rec) {
                        auto [cec, ep] = co_await asio::async_connect(
                            probe, results, asio::as_tuple(asio::use_awaitable));
                        if (!cec) {
                            announced = true;
                            std::printf("akv-demo: open http://%s/ (post comments there, or: akv "
                                        "demo-load 1000)\n",
                                        listen.c_str());
                            std::fflush(stdout);
                        }
                    }
                }
                ticker.expires_after(announced ? 1000ms : 100ms);
                co_await ticker.async_wait(asio::as_tuple(asio::use_awaitable));
                if (!announced || stopping) continue;
                std::string json, failure;
                try {
                    json = co_await gather_stats(redis);
                    akv::request pub;
                    pub.push("PUBLISH", akv::demo::stats_channel, json);
                    co_await redis.exec(pub, akv::ignore);
                } catch (const std::exception& e) {
                    failure = e.what();
                }
                if (!failure.empty()) spdlog::debug("stats: {}", failure);
            }
        },
        [](std::exception_ptr) {});

    io.run();
    return status;
}
