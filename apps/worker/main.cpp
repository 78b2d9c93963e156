// akv-worker: the bundled worker. It registers its handlers with the worker host (host.hpp),
// as any program linking the library would register its own:
//
//   akv-worker --queue emails=exec --exec-allow sendmail
//   akv-worker --queue demo.comments=demo.preprocess --stream demo:interest=demo.signups
#include "common/gateway_flags.hpp"
#include "demo/handlers.hpp"
#include "exec.hpp"
#include "host.hpp"

#include <spdlog/spdlog.h>

#include <memory>

int main(int argc, char** argv) {
    akv::worker_app::host host(
        "akv-worker", "Runs handlers on the jobs of task queues and on batches of streams.");
    host.add_flag({"exec-allow", "PROGRAM", "programs the exec handler may run (* any)", true});
    host.add_flag({"db", "FILE", "the demo's SQLite database (default DATA-DIR/demo.sqlite)"});
    host.add_flag({"history", "PATTERN[=MAXLEN[,AGE_S]]",
                   "gateway channels with history, as given to akv-gateway (for publishing)",
                   true});
    host.add_flag({"prefix", "P", "gateway channel prefix, as given to akv-gateway"});

    host.add_queue_handler("exec", "{\"argv\": [...], \"stdin\": ...}: runs a program",
                           [](akv::worker_app::host_context& ctx) {
                               return akv::worker_app::exec_handler(ctx.flags.all("exec-allow"));
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
