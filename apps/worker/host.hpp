// A worker process whose handlers are registered by name by the program that links it:
// akv-worker registers the bundled ones (apps/worker/main.cpp); your own worker registers yours
// the same way and gets the same flags, config file, logging, embedded default, signals and
// exit codes.
//
//   int main(int argc, char** argv) {
//       akv::worker_app::host host("thumbnailer", "Makes thumbnails.");
//       host.add_queue_handler("thumb", "an image key -> a thumbnail", [](auto& ctx) {
//           return [&redis = ctx.redis](akv::queue::job_context& job) ->
//           asio::awaitable<std::string> {
//               ...
//           };
//       });
//       return host.run(argc, argv);   // thumbnailer --queue images=thumb --concurrency 8
//   }
#pragma once

#include "common/app.hpp"

#include <akv/client.hpp>
#include <akv/messaging/stream.hpp>
#include <akv/queue/celery.hpp>
#include <akv/queue/worker.hpp>

#include <boost/asio/awaitable.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace akv::worker_app {

// What a handler factory is given, once Redis is configured and the flags are read.
struct host_context {
    akv::client& redis;
    const app::command_line& flags;
    std::filesystem::path data_dir; // --data-dir, or the embedded default's
};

// Handles a batch of a stream's consumer group; the batch is acked after it returns. Throwing
// leaves it pending: it is taken over again after --claim-idle-ms.
using stream_handler =
    std::function<boost::asio::awaitable<void>(std::vector<messaging::stream_entry>)>;

// Factories run once per --queue / --stream that names their handler. They may throw
// app::usage_error (a bad flag of theirs: exit 2) or anything else (exit 2 too, named).
using queue_factory = std::function<queue::handler(host_context&)>;
using stream_factory = std::function<stream_handler(host_context&)>;
// Registers Celery tasks (worker.add_task) on the Celery worker that --celery-queue starts.
using celery_tasks = std::function<void(queue::celery::worker&, host_context&)>;

class host {
public:
    host(std::string program, std::string summary);

    // A flag for the handlers to read (beside the host's --queue, --stream, --concurrency, ...).
    void add_flag(app::flag f);
    void add_queue_handler(std::string name, std::string help, queue_factory make);
    void add_stream_handler(std::string name, std::string help, stream_factory make);
    // Celery tasks, for --celery-queue QUEUE (a Celery worker on kombu's Redis transport,
    // akv/queue/celery.hpp): called once that worker exists, before it runs.
    void add_celery_tasks(celery_tasks add);

    // Reads the flags, starts the handlers named by --queue NAME=HANDLER and
    // --stream STREAM=HANDLER, and runs until SIGINT/SIGTERM (running jobs finish) or a failure.
    // Returns the exit code (app::exit_code).
    int run(int argc, char** argv);

private:
    struct named_queue {
        std::string name, help;
        queue_factory make;
    };
    struct named_stream {
        std::string name, help;
        stream_factory make;
    };
    app::command_line command_line() const;

    std::string program_, summary_;
    std::vector<app::flag> flags_;
    std::vector<named_queue> queue_handlers_;
    std::vector<named_stream> stream_handlers_;
    std::vector<celery_tasks> celery_tasks_;
};

} // namespace akv::worker_app
