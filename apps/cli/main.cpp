// akv: send one command to Redis and print the reply, like redis-cli; or look into a task
// queue and act on it (`akv queue ...`, see queue.cpp); or into streams, blobs, models and
// embedding tables, and watch live counters (commands.hpp: stream.cpp, blob.cpp, model.cpp,
// embedding.cpp, monitor.cpp).
//
//   akv [--redis URL] [--config FILE] [--raw] [--embedded] COMMAND [ARG...]
//   akv [--redis URL] ... queue SUBCOMMAND QUEUE [ARG...] [QUEUE-OPTIONS]
//   akv [--redis URL] ... stream|blob|model|embedding SUBCOMMAND [ARG...] [OPTIONS]
//   akv [--redis URL] ... monitor [OPTIONS]
//
// Exit status: 0 on a reply, 1 on an error reply (its text on stderr), 2 on a usage,
// configuration or connection error.
#include "commands.hpp"
#include "format.hpp"
#include "queue.hpp"

#include <akv/connection.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;

namespace {

constexpr const char* usage = R"(usage: akv [OPTIONS] COMMAND [ARG...]
       akv [OPTIONS] queue SUBCOMMAND QUEUE [ARG...]
       akv [OPTIONS] stream|blob|model|embedding SUBCOMMAND [ARG...]
       akv [OPTIONS] monitor [MONITOR-OPTIONS]

Sends one command to Redis and prints the reply as redis-cli does. Or (`akv WORD --help` for
the details of each):
  queue      a task queue: stats, list, get, flow, add, retry, remove, cancel, pause, resume,
             metrics
  stream     a stream and its consumer groups: groups, pending, info, requeue
  blob       objects of a blob store: put, get, list, rm
  model      versions of a model registry: put, get, list, tag
  embedding  an embedding table to and from a text file: export, import
  monitor    live counters of the server, queues and streams, every interval
  demo-load  N sample comments to the demo's webhook (akv-demo), to watch it under load
  console    the operator's console on a local port, for a quick look (Ctrl-C stops it)
(These words are lower case; the Redis command MONITOR is still `akv MONITOR`.)

options:
  --redis URL        server to use (default: $AKV_REDIS, else redis://127.0.0.1:6379)
                     redis://[user:pass@]host[:port][/db], rediss://..., unix:///path?db=N
  --config FILE      JSON configuration (native or TensorFlow Recommenders-Addons keys)
  --KEY VALUE        any configuration key, e.g. --connect-timeout-ms 500 --db 2
  --raw              print bare values, one per line
  --embedded         start a private redis-server for this one command (for trying things)
  --help             this text

exit status: 0 reply printed (queue, stream, ...: done), 1 error reply (queue, stream, ...:
refused, e.g. no such job, stream, group, object or model), 2 usage/configuration/connection
error
)";

struct options {
    akv::config cfg;
    bool raw = false;
    bool embedded = false;
    std::vector<std::string> command;
};

std::optional<options> parse(int argc, char** argv) {
    options o;
    std::optional<std::string> url, config_file;
    if (const char* env = std::getenv("AKV_REDIS")) url = env;
    std::vector<std::pair<std::string, std::string>> settings;
    int i = 1;
    for (; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.rfind("--", 0) != 0) break;
        if (arg == "--help" || arg == "-h") {
            std::cout << usage;
            std::exit(0);
        } else if (arg == "--raw") {
            o.raw = true;
        } else if (arg == "--embedded") {
            o.embedded = true;
        } else if (i + 1 >= argc) {
            throw std::invalid_argument("option " + arg + " needs a value");
        } else if (arg == "--redis") {
            url = argv[++i];
        } else if (arg == "--config") {
            config_file = argv[++i];
        } else {
            settings.emplace_back(arg.substr(2), argv[++i]);
        }
    }
    if (config_file && url && !std::getenv("AKV_REDIS"))
        throw std::invalid_argument("give either --redis or --config, not both");
    if (config_file)
        o.cfg = akv::config::from_json_file(*config_file);
    else if (url)
        o.cfg = akv::config::from_url(*url);
    for (const auto& [key, value] : settings)
        o.cfg.set(key, value);
    for (; i < argc; ++i)
        o.command.emplace_back(argv[i]);
    if (o.command.empty()) throw std::invalid_argument("no command given");
    return o;
}

} // namespace

int main(int argc, char** argv) {
    options opts;
    try {
        opts = *parse(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "akv: " << e.what() << "\n\n" << usage;
        return 2;
    }

    std::unique_ptr<akv::testing::embedded_server> server;
    if (opts.embedded) {
        try {
            server = std::make_unique<akv::testing::embedded_server>();
            opts.cfg = server->config();
        } catch (const std::exception& e) {
            std::cerr << "akv: " << e.what() << "\n";
            return 2;
        }
    }
    // One shot: no reconnect loop, a bounded connect.
    opts.cfg.reconnect_wait_min = opts.cfg.reconnect_wait_max = std::chrono::milliseconds(0);

    const std::string& word = opts.command.front();
    const std::vector<std::string> rest(opts.command.begin() + 1, opts.command.end());
    if (word == "queue") return akv::cli::run_queue_command(opts.cfg, rest);
    if (word == "stream") return akv::cli::run_stream_command(opts.cfg, rest);
    if (word == "blob") return akv::cli::run_blob_command(opts.cfg, rest);
    if (word == "model") return akv::cli::run_model_command(opts.cfg, rest);
    if (word == "embedding") return akv::cli::run_embedding_command(opts.cfg, rest);
    if (word == "monitor") return akv::cli::run_monitor_command(opts.cfg, rest);
    if (word == "demo-load") return akv::cli::run_demo_load(rest);
    if (word == "console") return akv::cli::run_console_command(opts.cfg, rest);

    asio::io_context io;
    akv::connection conn(io.get_executor(), opts.cfg);
    int status = 2;
    asio::co_spawn(io, conn.run(), [](std::exception_ptr) {});
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            akv::request req;
            req.push_range(opts.command.front(),
                           std::vector<std::string>(opts.command.begin() + 1, opts.command.end()));
            akv::generic_response resp;
            auto [ec, n] = co_await conn.exec(req, resp, asio::as_tuple(asio::use_awaitable));
            if (ec) {
                std::cerr << "akv: "
                          << (conn.last_error_message().empty() ? ec.message()
                                                                : conn.last_error_message())
                          << "\n";
                status = 2;
            } else if (resp.empty()) {
                status = 0; // (P)SUBSCRIBE-like commands answer with pushes
            } else if (resp[0].has_error()) {
                std::cerr << "(error) " << resp[0].error().message << "\n";
                status = 1;
            } else {
                std::cout << (opts.raw ? akv::cli::format_raw(resp[0].value())
                                       : akv::cli::format_reply(resp[0].value()))
                          << "\n";
                status = 0;
            }
            conn.cancel();
        },
        [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    io.run();
    return status;
}
