// akv-worker: the bundled worker. It registers its handlers with the worker host (host.hpp),
// as any program linking the library would register its own:
//
//   akv-worker --queue emails=exec --exec-allow sendmail
//   akv-worker --queue demo.comments=demo.preprocess --stream demo:interest=demo.signups
//   akv-worker --celery-queue celery --celery-task proj.tasks.resize=resize-image
#include "common/gateway_flags.hpp"
#include "demo/handlers.hpp"
#include "exec.hpp"
#include "host.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>

int main(int argc, char** argv) {
    akv::worker_app::host host(
        "akv-worker", "Runs handlers on the jobs of task queues and on batches of streams.");
    host.add_flag({"exec-allow", "PROGRAM", "programs the exec handler may run (* any)", true});
    host.add_flag({"db", "FILE", "the demo's SQLite database (default DATA-DIR/demo.sqlite)"});
    host.add_flag({"history", "PATTERN[=MAXLEN[,AGE_S]]",
                   "gateway channels with history, as given to akv-gateway (for publishing)",
                   true});
    host.add_flag({"prefix", "P", "gateway channel prefix, as given to akv-gateway"});
    host.add_flag({"celery-task", "NAME=PROGRAM",
                   "the Celery task NAME runs PROGRAM (words split at spaces): "
                   "{\"args\": [...], \"kwargs\": {...}} on its stdin, its JSON stdout the result",
                   true});

    host.add_queue_handler("exec", "{\"argv\": [...], \"stdin\": ...}: runs a program",
                           [](akv::worker_app::host_context& ctx) {
                               return akv::worker_app::exec_handler(ctx.flags.all("exec-allow"));
                           });

    // --celery-task NAME=PROGRAM: the exec handler's way of running a program, for a Celery task.
    host.add_celery_tasks([](akv::queue::celery::worker& w, akv::worker_app::host_context& ctx) {
        namespace json = boost::json;
        for (const auto& spec : ctx.flags.all("celery-task")) {
            const auto eq = spec.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
                throw akv::app::usage_error("--celery-task: expected NAME=PROGRAM, got '" + spec +
                                            "'");
            const std::string name = spec.substr(0, eq);
            std::vector<std::string> argv;
            std::istringstream words(spec.substr(eq + 1));
            for (std::string word; words >> word;)
                argv.push_back(word);
            w.add_task(name,
                       [name, argv](akv::queue::celery::task_context& t)
                           -> boost::asio::awaitable<json::value> {
                           json::object input;
                           input["args"] = t.args();
                           input["kwargs"] = t.kwargs();
                           const std::string out = co_await akv::worker_app::run_program(
                               argv, json::serialize(input),
                               "celery task " + name + "[" + t.message().id + "]", false);
                           json::error_code ec;
                           json::value result = json::parse(out, ec);
                           if (ec)
                               throw akv::queue::celery::task_error(
                                   "ValueError", "celery task " + name + ": " + argv[0] +
                                                     " printed no JSON: " + out.substr(0, 200));
                           co_return result;
                       });
            spdlog::info("celery task {}: {}", name, spec.substr(eq + 1));
        }
    });

    // The demo's stages share one database and the gateway's publishing rules.
    std::shared_ptr<akv::demo::stage_context> demo;
    auto demo_context = [&demo](akv::worker_app::host_context& ctx) {
        if (demo) return demo;
        akv::gateway::options publish;
        for (const auto& h : ctx.flags.all("history"))
            publish.history.push_back(akv::app::history_rule(h));
        publish.channel_prefix = ctx.flags.get_or("prefix", "");
        const std::string path = ctx.flags.get_or("db", (ctx.data_dir / "demo.sqlite").string());
        std::filesystem::create_directories(std::filesystem::path(path).parent_path());
        demo = std::make_shared<akv::demo::stage_context>(akv::demo::stage_context{
            ctx.redis, publish, std::make_shared<akv::demo::database>(path)});
        spdlog::info("database {}", path);
        return demo;
    };
    host.add_queue_handler("demo.posts", "the demo: a signup post into the database",
                           [&](akv::worker_app::host_context& ctx) {
                               return akv::demo::posts_handler(demo_context(ctx));
                           });
    host.add_queue_handler("demo.preprocess",
                           "the demo: a comment -> 44 features -> demo:embeddings",
                           [&](akv::worker_app::host_context& ctx) {
                               return akv::demo::preprocess_handler(demo_context(ctx));
                           });
    host.add_stream_handler(
        "demo.signups", "the demo: interest entries -> database -> post:<id>",
        [&](akv::worker_app::host_context& ctx) -> akv::worker_app::stream_handler {
            return [c = demo_context(ctx)](std::vector<akv::messaging::stream_entry> b) {
                return akv::demo::write_signups(c, std::move(b));
            };
        });
    return host.run(argc, argv);
}
