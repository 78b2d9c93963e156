// The bundled binaries as processes: --help, flags and --config files, exit codes, the exec
// handler of akv-worker, the batcher's model from the registry, and the embedded default whose
// data dir outlives a run (and is locked while one runs).
#include "support/cdp.hpp"
#include "support/fake_server.hpp"
#include "support/harness.hpp"
#include "support/running_client.hpp"

#include "common/http_post.hpp"
#include "demo/pipeline.hpp"

#include <akv/kv/model_registry.hpp>
#include <akv/messaging/stream.hpp>
#include <akv/ml/tensor.hpp>
#include <akv/queue/admin.hpp>
#include <akv/queue/producer.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <map>
#include <thread>
#include <regex>
#include <sys/wait.h>

#ifndef AKV_BIN_DIR
#error "AKV_BIN_DIR must name the directory of the bundled binaries (tests/CMakeLists.txt)"
#endif

using namespace akv::test;
using namespace std::chrono_literals;

namespace {

std::string bin(const std::string& name) {
    return std::string(AKV_BIN_DIR) + "/" + name;
}

void write_file(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

TEST(Apps, HelpListsTheCommonFlagsAndBadFlagsExitTwoNamingThem) {
    temp_dir dir{"akv-e2e-apps-"};
    for (const std::string app : {"akv-gateway", "akv-worker", "akv-batcher", "akv-demo"}) {
        const auto help = run_to_end(dir, {bin(app), "--help"});
        EXPECT_EQ(help.exit_code, 0) << app << "\n" << help.output;
        for (const char* flag : {"usage: ", "--redis URL", "--config FILE", "--log-level LEVEL",
                                 "--data-dir DIR", "exit status"})
            EXPECT_NE(help.output.find(flag), std::string::npos) << app << " --help lacks " << flag;

        const auto unknown = run_to_end(dir, {bin(app), "--frobnicate"});
        EXPECT_EQ(unknown.exit_code, 2) << app;
        EXPECT_NE(unknown.output.find("unknown option --frobnicate"), std::string::npos)
            << unknown.output;

        const auto level = run_to_end(dir, {bin(app), "--log-level", "loud"});
        EXPECT_EQ(level.exit_code, 2) << app;
        EXPECT_NE(level.output.find(
                      "--log-level: expected trace, debug, info, warn, error or off, got 'loud'"),
                  std::string::npos)
            << level.output;

        const auto missing =
            run_to_end(dir, {bin(app), "--config", (dir.path() / "none.json").string()});
        EXPECT_EQ(missing.exit_code, 2) << app;
        EXPECT_NE(missing.output.find("--config: cannot read"), std::string::npos)
            << missing.output;
    }
    const auto nothing = run_to_end(dir, {bin("akv-worker"), "--redis", "redis://127.0.0.1:1"});
    EXPECT_EQ(nothing.exit_code, 2);
    EXPECT_NE(nothing.output.find("nothing to do"), std::string::npos) << nothing.output;
    const auto batcher = run_to_end(dir, {bin("akv-batcher"), "--input", "in", "--output", "out"});
    EXPECT_EQ(batcher.exit_code, 2);
    EXPECT_NE(batcher.output.find("--model is required"), std::string::npos) << batcher.output;
    // Unsigned webhooks only when asked for; a bad $AKV_REDIS is named as such.
    const auto unsigned_hooks = run_to_end(
        dir, {bin("akv-gateway"), "--redis", "redis://127.0.0.1:1", "--webhook", "/w=q"});
    EXPECT_EQ(unsigned_hooks.exit_code, 2);
    EXPECT_NE(unsigned_hooks.output.find("set AKV_GATEWAY_WEBHOOK_SECRET"), std::string::npos) << unsigned_hooks.output;
    {
        child_process p({bin("akv-worker"), "--queue", "q=exec"}, {"AKV_REDIS=nope://x"}, dir.path() / "env.log");
        ASSERT_TRUE(poll_until([&] { return !p.running(); }, 20s));
        EXPECT_TRUE(WIFEXITED(p.status()) && WEXITSTATUS(p.status()) == 2) << p.log();
        EXPECT_NE(p.log().find("AKV_REDIS: "), std::string::npos) << p.log();
    }
    const auto handler = run_to_end(dir, {bin("akv-worker"), "--queue", "q=nosuch"});
    EXPECT_EQ(handler.exit_code, 2);
    EXPECT_NE(handler.output.find("no queue handler 'nosuch'"), std::string::npos)
        << handler.output;
}

// The sample configurations shipped in apps/config/ are valid for their binaries.
TEST(Apps, SampleConfigFilesAreValid) {
    temp_dir dir{"akv-e2e-samples-"};
    for (const std::string app : {"akv-gateway", "akv-worker", "akv-batcher", "akv-demo"}) {
        const std::string file = std::string(AKV_SOURCE_DIR) + "/apps/config/" + app + ".json";
        const auto r = run_to_end(dir, {bin(app), "--config", file, "--help"});
        EXPECT_EQ(r.exit_code, 0) << app << ": " << r.output;
    }
}

TEST(Apps, ConfigFilesAreReadAndTheirMistakesNamed) {
    temp_dir dir{"akv-e2e-config-"};
    const auto file = dir.path() / "worker.json";
    write_file(file, R"({"queue": ["jobs=exec"], "colour": "blue"})");
    auto r = run_to_end(dir, {bin("akv-worker"), "--config", file.string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find(file.string() + ": unknown key \"colour\""), std::string::npos)
        << r.output;

    write_file(file, R"({"queue": "jobs=exec", )");
    r = run_to_end(dir, {bin("akv-worker"), "--config", file.string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find(": not JSON"), std::string::npos) << r.output;

    write_file(file, R"({"concurrency": ["1", "2"]})");
    r = run_to_end(dir, {bin("akv-worker"), "--config", file.string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find("\"concurrency\": takes one value, not a list"), std::string::npos)
        << r.output;

    // A file's values are used; the command line wins over them.
    write_file(file, R"({"queue": ["jobs=nosuch"], "log-level": "warn"})");
    r = run_to_end(dir, {bin("akv-worker"), "--config", file.string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find("no queue handler 'nosuch'"), std::string::npos) << r.output;
    r = run_to_end(dir, {bin("akv-worker"), "--config", file.string(), "--queue", "jobs=alsonot"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find("no queue handler 'alsonot'"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("nosuch"), std::string::npos) << r.output;
}

// A job enqueued through a webhook of one process's embedded server is run by the next
// process on the same data dir: the append-only file kept it. A second process on a data dir
// in use is refused with exit 3.
TEST(Apps, EmbeddedDataOutliveTheProcessAndTheirDirIsLocked) {
    temp_dir dir{"akv-e2e-data-"};
    const std::string data = (dir.path() / "data").string();
    const auto marker = dir.path() / "ran";
    {
        const std::uint16_t port = free_port();
        child_process gateway({bin("akv-gateway"), "--data-dir", data, "--listen",
                               "127.0.0.1:" + std::to_string(port), "--webhook", "/jobs=work", "--open-webhooks"},
                              {}, dir.path() / "gateway.log");
        ASSERT_TRUE(poll_until(
            [&] {
                return gateway.log().find("listening on") != std::string::npos ||
                       !gateway.running();
            },
            20s));
        ASSERT_TRUE(gateway.running()) << gateway.log();

        const auto second =
            run_to_end(dir, {bin("akv-worker"), "--data-dir", data, "--queue", "work=exec"});
        EXPECT_EQ(second.exit_code, 3) << second.output;
        EXPECT_NE(second.output.find("is in use by another process"), std::string::npos)
            << second.output;

        akv::app::http_poster http("http://127.0.0.1:" + std::to_string(port));
        const auto [status, body] =
            http.post("/jobs", R"({"argv": ["touch", ")" + marker.string() + R"("]})");
        EXPECT_EQ(status, 202) << body;
        EXPECT_NE(body.find("\"queued\":1"), std::string::npos) << body;
        const auto [bad, why] = http.post("/jobs", "[1, 2]");
        EXPECT_EQ(bad, 400);
        EXPECT_NE(why.find("expected a JSON object or an array of objects"), std::string::npos)
            << why;

        gateway.signal(SIGTERM);
        ASSERT_TRUE(poll_until([&] { return !gateway.running(); }, 20s));
        EXPECT_TRUE(WIFEXITED(gateway.status()) && WEXITSTATUS(gateway.status()) == 0)
            << gateway.log();
    }
    EXPECT_FALSE(std::filesystem::exists(marker));
    child_process worker(
        {bin("akv-worker"), "--data-dir", data, "--queue", "work=exec", "--exec-allow", "touch"},
        {}, dir.path() / "worker.log");
    EXPECT_TRUE(
        poll_until([&] { return std::filesystem::exists(marker) || !worker.running(); }, 30s))
        << worker.log();
    EXPECT_TRUE(std::filesystem::exists(marker)) << worker.log();
    worker.signal(SIGTERM);
    ASSERT_TRUE(poll_until([&] { return !worker.running(); }, 20s));
    EXPECT_TRUE(WIFEXITED(worker.status()) && WEXITSTATUS(worker.status()) == 0) << worker.log();
}

// akv demo-load: a post, then N comments in arrays of --per-request, through the webhooks.
TEST(Apps, DemoLoadPostsThroughTheWebhooks) {
    temp_dir dir{"akv-e2e-load-"};
    akv::testing::embedded_server redis;
    const std::uint16_t port = free_port();
    child_process gateway({bin("akv-gateway"), "--redis", redis.url(), "--listen", "127.0.0.1:" + std::to_string(port),
                           "--webhook", "/webhook/posts=posts", "--webhook", "/webhook/comments=comments",
                           "--open-webhooks"},
                          {}, dir.path() / "gateway.log");
    ASSERT_TRUE(poll_until([&] { return gateway.log().find("listening on") != std::string::npos || !gateway.running(); },
                           20s));
    const std::string url = "http://127.0.0.1:" + std::to_string(port);
    const auto r =
        run_to_end(dir, {bin("akv"), "demo-load", "250", "--gateway", url, "--per-request", "40"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("posted 250 comments to post "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(url + "/?post="), std::string::npos) << r.output;

    asio::io_context io;
    running_client rc(io, redis.config());
    akv::queue::state_counts posts, comments;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::queue::admin p(rc.client, "posts"), c(rc.client, "comments");
        posts = co_await p.counts();
        comments = co_await c.counts();
    }());
    EXPECT_EQ(posts.waiting, 1u);
    EXPECT_EQ(comments.waiting, 250u);

    const auto bad = run_to_end(dir, {bin("akv"), "demo-load", "many"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.output.find("expected a positive number of comments, got 'many'"), std::string::npos) << bad.output;
    const auto away =
        run_to_end(dir, {bin("akv"), "demo-load", "5", "--gateway", "http://127.0.0.1:1"});
    EXPECT_EQ(away.exit_code, 2);
    EXPECT_NE(away.output.find("cannot connect to 127.0.0.1:1"), std::string::npos) << away.output;
}

// exec: the output is the result; a program not allowed, or a non-zero exit, fails the job with
// a message naming it. So do the demo stages' bad payloads (not JSON, no text, a title empty,
// too long or not a string), and the worker goes on.
TEST(Apps, ExecHandlerRunsAllowedProgramsOnly) {
    temp_dir dir{"akv-e2e-exec-"};
    akv::testing::embedded_server redis;
    child_process worker({bin("akv-worker"), "--redis", redis.url(), "--heartbeat-ms", "700",
                          "--queue", "cmds=exec", "--exec-allow", "echo", "--exec-allow", "sh",
                          "--queue",
                          "comments=demo.preprocess", "--queue", "posts=demo.posts", "--db",
                          (dir.path() / "demo.sqlite").string()},
                         {}, dir.path() / "worker.log");
    asio::io_context io;
    running_client rc(io, redis.config());
    std::string ok, refused, failing, shapeless, not_json, no_text, no_title, long_title,
        number_title;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::queue::producer p(rc.client, "cmds");
        akv::queue::job_options once;
        once.max_attempts = 1;
        ok = co_await p.enqueue(R"({"argv": ["echo", "hello", "there"]})", once);
        refused = co_await p.enqueue(R"({"argv": ["rm", "-rf", "/nonexistent"]})", once);
        failing = co_await p.enqueue(R"({"argv": ["sh", "-c", "echo oops; exit 3"]})", once);
        shapeless = co_await p.enqueue(R"({"cmd": "echo hi"})", once);
        // Bad payloads for a demo stage: named in the job's error, never a crash.
        akv::queue::producer c(rc.client, "comments");
        not_json = co_await c.enqueue("not json", once);
        no_text = co_await c.enqueue(R"({"id": "c1", "post": "1", "user": "u"})", once);
        akv::queue::producer posts(rc.client, "posts");
        no_title = co_await posts.enqueue(R"({"title": ""})", once);
        const std::string long_one = R"({"title": ")" + std::string(501, 'x') + "\"}";
        long_title = co_await posts.enqueue(long_one, once);
        number_title = co_await posts.enqueue(R"({"title": 42})", once);
    }());
    akv::queue::job_info a, b, c, d, e, f, g, h, i;
    ASSERT_TRUE(poll_until(
        [&] {
            run_task(io, [&]() -> asio::awaitable<void> {
                akv::queue::admin cmds(rc.client, "cmds"), comments(rc.client, "comments");
                a = co_await cmds.get(ok);
                b = co_await cmds.get(refused);
                c = co_await cmds.get(failing);
                d = co_await cmds.get(shapeless);
                e = co_await comments.get(not_json);
                f = co_await comments.get(no_text);
                akv::queue::admin posts(rc.client, "posts");
                g = co_await posts.get(no_title);
                h = co_await posts.get(long_title);
                i = co_await posts.get(number_title);
            }());
            return a.state == akv::queue::job_state::completed &&
                   b.state == akv::queue::job_state::failed &&
                   c.state == akv::queue::job_state::failed &&
                   d.state == akv::queue::job_state::failed &&
                   e.state == akv::queue::job_state::failed &&
                   f.state == akv::queue::job_state::failed &&
                   g.state == akv::queue::job_state::failed &&
                   h.state == akv::queue::job_state::failed &&
                   i.state == akv::queue::job_state::failed;
        },
        30s, 100ms))
        << worker.log();
    ASSERT_TRUE(a.result.has_value());
    EXPECT_EQ(a.result->value, "hello there\n");
    EXPECT_NE(b.last_error.find("program 'rm' is not allowed"), std::string::npos) << b.last_error;
    EXPECT_NE(c.last_error.find("sh: exit status 3: oops"), std::string::npos) << c.last_error;
    EXPECT_NE(d.last_error.find("payload must be {\"argv\": [\"program\", ...]}"), std::string::npos)
        << d.last_error;
    EXPECT_NE(e.last_error.find("payload is not a JSON object"), std::string::npos) << e.last_error;
    EXPECT_NE(f.last_error.find("\"text\" must be a string"), std::string::npos) << f.last_error;
    EXPECT_NE(g.last_error.find("a title needs 1 to 500 bytes"), std::string::npos) << g.last_error;
    EXPECT_NE(h.last_error.find("a title needs 1 to 500 bytes"), std::string::npos) << h.last_error;
    // Its live record carries the heartbeat it was given.
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto live = co_await akv::queue::admin(rc.client, "cmds").workers();
        EXPECT_EQ(live.size(), 1u);
        if (!live.empty()) EXPECT_EQ(live[0].heartbeat, 700ms);
    }());
    EXPECT_NE(i.last_error.find("\"title\" must be a string"), std::string::npos) << i.last_error;
    EXPECT_TRUE(worker.running()) << worker.log();
}

// The demo's classifier on the demo's own sample phrases, and on the features' layout.
TEST(Apps, DemoClassifierSaysYesToIntentAndNoToTheRest) {
    for (const char* yes : {"I'm interested!", "Count me in please", "I want to join, sign me up",
                            "Yes! Register me for this", "Interested, I will attend with a friend",
                            "Please sign me up, I want to attend"})
        EXPECT_TRUE(akv::demo::interested(yes)) << yes;
    for (const char* no :
         {"Nice photo", "What time does it start?", "Where is this happening?", "Not for me, sorry",
          "Great work everyone", "Is there parking nearby?", "No thanks, can't make it", "lol",
          "Shared with my family", "Looks like fun but I'm busy", "Who organises this?",
          "Beautiful place", "Can I join? No, not interested"})
        EXPECT_FALSE(akv::demo::interested(no)) << no;
    const auto x = akv::demo::featurize("Count me in!!");
    EXPECT_EQ(x.size(), 44u);
    EXPECT_FLOAT_EQ(x[40], 2.0f / 3.0f); // two '!'
    EXPECT_FLOAT_EQ(x[41], 0.0f);        // no '?'
    EXPECT_FLOAT_EQ(x[42], 3.0f / 20.0f);
    EXPECT_FLOAT_EQ(x[43], 1.0f);
    float words = 0;
    for (std::size_t i = 0; i < 40; ++i)
        words += x[i];
    EXPECT_FLOAT_EQ(words, 3.0f);
    // About a third of the sample comments show interest.
    std::size_t yes = 0;
    for (std::uint64_t n = 0; n < 3000; ++n)
        yes += akv::demo::interested(akv::demo::sample_comment("r", n, "p").text);
    EXPECT_GT(yes, 800u);
    EXPECT_LT(yes, 1200u);
}

// akv-batcher: the model comes from the registry; with --threshold only the positives go out,
// each with its score and the input's other fields; an unreadable input gets an error entry.
TEST(Apps, BatcherRunsTheRegistrysModelAndWritesPositives) {
    temp_dir dir{"akv-e2e-batcher-"};
    akv::testing::embedded_server redis({.append_only = true});
    asio::io_context io;
    running_client rc(io, redis.config());
    const std::vector<std::string> texts = {"I'm interested!", "Nice photo", "Count me in please",
                                            "Where is this happening?"};
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::kv::model_registry reg(rc.client, "interest");
        const akv::kv::model m = akv::demo::interest_model_files();
        co_await reg.save(m);
        akv::messaging::stream_producer in(rc.client, "in");
        for (std::size_t i = 0; i < texts.size(); ++i) {
            const auto x = akv::demo::featurize(texts[i]);
            const std::int64_t shape[] = {44};
            akv::messaging::field_list f{{"id", "c" + std::to_string(i)},
                                         {"text", texts[i]},
                                         {"embedding", akv::ml::encode<float>(x, shape)}};
            co_await in.add(f);
        }
        akv::messaging::field_list broken{{"id", "broken"}, {"embedding", "not a tensor"}};
        co_await in.add(broken);
    }());
    child_process batcher({bin("akv-batcher"), "--redis", redis.url(), "--input", "in", "--output",
                           "out", "--model", "interest", "--threshold", "0.5"},
                          {}, dir.path() / "batcher.log");
    std::size_t expected = 1; // the broken one
    for (const auto& t : texts)
        expected += akv::demo::interested(t) ? 1 : 0;
    ASSERT_EQ(expected, 3u) << "two of the four texts are a yes";
    ASSERT_TRUE(akv::demo::interested(texts[0]) && akv::demo::interested(texts[2]))
        << akv::demo::interested(texts[0]) << akv::demo::interested(texts[1])
        << akv::demo::interested(texts[2]) << akv::demo::interested(texts[3]);
    std::vector<akv::messaging::stream_entry> out;
    ASSERT_TRUE(poll_until(
        [&] {
            run_task(io, [&]() -> asio::awaitable<void> {
                akv::request req;
                req.push("XRANGE", "out", "-", "+");
                akv::generic_response resp;
                co_await rc.client.exec(req, resp);
                out = akv::messaging::entries_from(resp.at(0).value());
            }());
            return out.size() >= expected;
        },
        30s, 100ms))
        << batcher.log();
    ASSERT_EQ(out.size(), expected);
    std::map<std::string, const akv::messaging::stream_entry*> by_id;
    for (const auto& e : out)
        by_id[*e.field("id")] = &e;
    ASSERT_TRUE(by_id.count("c0") && by_id.count("c2") && by_id.count("broken"));
    EXPECT_GE(std::stod(*by_id["c0"]->field("score")), 0.5);
    EXPECT_EQ(*by_id["c2"]->field("text"), "Count me in please");
    EXPECT_EQ(by_id["c0"]->field("embedding"), nullptr); // the features are not copied
    ASSERT_NE(by_id["broken"]->field("error"), nullptr);
    EXPECT_NE(by_id["broken"]->field("error")->find("tensor"), std::string::npos)
        << *by_id["broken"]->field("error");

    // Redis killed and restarted under it: the batcher retries instead of exiting, and goes on.
    redis.kill();
    redis.start();
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto x = akv::demo::featurize("I want to join");
        const std::int64_t shape[] = {44};
        akv::messaging::field_list f{{"id", "after-restart"},
                                     {"embedding", akv::ml::encode<float>(x, shape)}};
        akv::messaging::stream_producer in(rc.client, "in");
        co_await in.add(f);
    }());
    ASSERT_TRUE(poll_until(
        [&] {
            run_task(io, [&]() -> asio::awaitable<void> {
                akv::request req;
                req.push("XLEN", "out");
                akv::response<std::int64_t> n;
                co_await rc.client.exec(req, n);
                out.resize(static_cast<std::size_t>(std::get<0>(n).value()));
            }());
            return out.size() > expected;
        },
        30s, 100ms))
        << batcher.log();
    EXPECT_TRUE(batcher.running()) << batcher.log();

    batcher.signal(SIGTERM);
    ASSERT_TRUE(poll_until([&] { return !batcher.running(); }, 20s));
    EXPECT_TRUE(WIFEXITED(batcher.status()) && WEXITSTATUS(batcher.status()) == 0) << batcher.log();

    // A model that is not in the registry: exit 2 naming it.
    const auto missing = run_to_end(dir, {bin("akv-batcher"), "--redis", redis.url(), "--input",
                                          "in", "--output", "out", "--model", "nosuch"});
    EXPECT_EQ(missing.exit_code, 2) << missing.output;
    EXPECT_NE(missing.output.find("--model nosuch@latest"), std::string::npos) << missing.output;
}

// A new version in the registry reaches a running batcher at once: Redis tells it that `latest`
// moved (client-side caching), long before its reload-ms.
TEST(Apps, BatcherReloadsTheModelWhenLatestMoves) {
    temp_dir dir{"akv-e2e-batcher-reload-"};
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_client rc(io, redis.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::kv::model_registry reg(rc.client, "interest");
        co_await reg.save(akv::demo::interest_model_files());
    }());
    child_process batcher({bin("akv-batcher"), "--redis", redis.url(), "--input", "in", "--output",
                           "out", "--model", "interest", "--reload-ms", "600000"},
                          {}, dir.path() / "batcher.log");
    auto version_in_stats = [&] {
        std::optional<std::string> v;
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::request req;
            req.push("HGET", "akv:batcher:out", "model_version");
            akv::response<std::optional<std::string>> resp;
            co_await rc.client.exec(req, resp);
            v = std::get<0>(resp).value();
        }());
        return v.value_or("");
    };
    ASSERT_TRUE(poll_until([&] { return version_in_stats() == "1"; }, 30s, 50ms)) << batcher.log();
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::kv::model_registry reg(rc.client, "interest");
        co_await reg.save(akv::demo::interest_model_files());
    }());
    EXPECT_TRUE(poll_until([&] { return version_in_stats() == "2"; }, 20s, 50ms)) << batcher.log();
    EXPECT_NE(batcher.log().find("v1 -> v2"), std::string::npos) << batcher.log();
    // Its status record (for the console) is there while it runs, and gone as soon as it has
    // stopped, not at its expiry.
    auto status_records = [&] {
        std::vector<std::string> keys;
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::request req;
            req.push("KEYS", "akv:batcher:in:*");
            akv::response<std::vector<std::string>> resp;
            co_await rc.client.exec(req, resp);
            keys = std::get<0>(resp).value();
        }());
        return keys.size();
    };
    EXPECT_TRUE(poll_until([&] { return status_records() == 1; }, 20s, 50ms)) << batcher.log();
    batcher.signal(SIGTERM);
    ASSERT_TRUE(poll_until([&] { return !batcher.running(); }, 20s));
    EXPECT_EQ(status_records(), 0u) << batcher.log();
}

} // namespace

TEST(Apps, HttpPosterNamesWhatIsWrongWithAReplyAndNeverHangs) {
    // The reply each request gets is chosen by its body: one case per post.
    const std::map<std::string, std::string> replies{
        {"ok", "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok"},
        {"not-http", "SSH-2.0-OpenSSH_9.2\r\n\r\n"},
        {"bad-status", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"},
        {"no-length", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n"},
        {"bad-length", "HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n"},
        {"huge", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n"},
        {"silent", ""},
        {"huge-header", "HTTP/1.1 200 OK\r\nX-Pad: " + std::string(70 * 1024, 'a')},
    };
    boost::asio::io_context io;
    fake_server server(io, [&](const std::string& request, int) {
        const auto body = request.substr(request.rfind("\r\n\r\n") + 4);
        const auto it = replies.find(body);
        return it == replies.end() ? std::string() : it->second;
    });
    auto guard = boost::asio::make_work_guard(io);
    std::thread serving([&] { io.run(); });

    akv::app::http_poster http("http://127.0.0.1:" + std::to_string(server.port()), 300ms);
    auto failure = [&](const std::string& body) -> std::string {
        try {
            http.post("/hook", body);
        } catch (const std::runtime_error& e) {
            return e.what();
        }
        return "no error";
    };
    auto expect_failure = [&](const std::string& body, const std::string& says) {
        const std::string what = failure(body);
        EXPECT_NE(what.find(says), std::string::npos) << body << ": " << what;
    };
    EXPECT_EQ(http.post("/hook", "ok"), (std::pair<int, std::string>{202, "ok"}));
    expect_failure("not-http", "not HTTP/1.1 in 'SSH-2.0");
    expect_failure("bad-status", "no three-digit status");
    expect_failure("no-length", "no Content-Length");
    expect_failure("bad-length", "Content-Length that is not a number");
    expect_failure("huge", "99999999999 bytes, over the");
    expect_failure("silent", "waiting for the reply took over 300 ms");
    expect_failure("huge-header", "header over 64 KiB in 'HTTP/1.1 200 OK");
    // Each bad reply closed its connection; the next post starts on a new one.
    EXPECT_EQ(http.post("/hook", "ok"), (std::pair<int, std::string>{202, "ok"}));
    EXPECT_GE(server.connections(), 8);

    guard.reset();
    io.stop();
    serving.join();
}
