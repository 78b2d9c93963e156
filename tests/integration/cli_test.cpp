// The akv binary: output and exit status against a real server.
#include "support/eventually.hpp"
#include "support/running_client.hpp"

#include <akv/queue/admin.hpp>
#include <akv/queue/flow.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <sys/wait.h>

namespace {

struct outcome {
    std::string out; // stdout and stderr
    int status = -1;
};

outcome run(const std::string& args) {
    const std::string cmd = std::string(AKV_CLI_PATH) + " " + args + " 2>&1";
    outcome o;
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) return o;
    std::array<char, 4096> buf;
    while (std::fgets(buf.data(), buf.size(), pipe))
        o.out += buf.data();
    const int raw = pclose(pipe);
    o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    return o;
}

} // namespace

TEST(Cli, PrintsRepliesLikeRedisCli) {
    akv::testing::embedded_server server;
    const std::string redis = "--redis " + server.url() + " ";
    auto set = run(redis + "SET greeting hello");
    EXPECT_EQ(set.status, 0);
    EXPECT_EQ(set.out, "OK\n");
    EXPECT_EQ(run(redis + "GET greeting").out, "\"hello\"\n");
    EXPECT_EQ(run(redis + "INCR n").out, "(integer) 1\n");
    EXPECT_EQ(run(redis + "GET missing").out, "(nil)\n");
    run(redis + "RPUSH l a b");
    EXPECT_EQ(run(redis + "LRANGE l 0 -1").out, "1) \"a\"\n2) \"b\"\n");
    EXPECT_EQ(run("--raw " + redis + "LRANGE l 0 -1").out, "a\nb\n");
}

TEST(Cli, ErrorReplyExitsOneWithTheServersText) {
    akv::testing::embedded_server server;
    auto r = run("--redis " + server.url() + " LPUSH");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("(error) ERR wrong number of arguments"), std::string::npos) << r.out;
}

TEST(Cli, UnreachableServerExitsTwoNamingIt) {
    auto r = run("--redis redis://127.0.0.1:1 PING");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.out.find("127.0.0.1:1"), std::string::npos) << r.out;
}

TEST(Cli, BadUrlAndMissingCommandAreUsageErrors) {
    auto bad = run("--redis http://x PING");
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.out.find("http"), std::string::npos) << bad.out;
    auto none = run("--redis redis://127.0.0.1:1");
    EXPECT_EQ(none.status, 2);
    EXPECT_NE(none.out.find("no command given"), std::string::npos) << none.out;
}

TEST(Cli, PasswordFromUrlAndConfigFlags) {
    akv::testing::embedded_server server({.password = "pw"});
    auto r = run("--redis " + server.url() + " --db 2 CLIENT INFO");
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find(" db=2 "), std::string::npos) << r.out;
}

TEST(Cli, HelpExitsZero) {
    auto r = run("--help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("usage: akv"), std::string::npos);
}

// ---- akv queue ----

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// The first line of `text` that starts with `key` (a table row), or "".
std::string row(const std::string& text, const std::string& key) {
    std::size_t at = 0;
    while (at < text.size()) {
        const auto end = text.find('\n', at);
        const std::string line = text.substr(at, end == std::string::npos ? end : end - at);
        if (line.rfind(key, 0) == 0) return line;
        if (end == std::string::npos) break;
        at = end + 1;
    }
    return "";
}

// The id `akv queue add` printed, without its newline.
std::string added(const outcome& o) {
    EXPECT_EQ(o.status, 0) << o.out;
    if (o.out.empty() || o.out.back() != '\n') return o.out;
    return o.out.substr(0, o.out.size() - 1);
}

boost::json::object json_of(const outcome& o) {
    EXPECT_EQ(o.status, 0) << o.out;
    try {
        return boost::json::parse(o.out).as_object();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "not a JSON object: " << e.what() << "\n" << o.out;
        return {};
    }
}

struct queue_cli {
    explicit queue_cli(const akv::testing::embedded_server& server)
        : prefix("--redis " + server.url() + " queue ") {}
    outcome operator()(const std::string& args) const { return run(prefix + args); }
    std::string prefix;
};

} // namespace

TEST(CliQueue, AddThenStatsCountsEveryState) {
    akv::testing::embedded_server server;
    queue_cli q(server);
    const auto first = added(q("add jobs hello"));
    EXPECT_FALSE(first.empty());
    added(q("add jobs world"));
    added(q("add jobs later --delay-ms 600000"));
    auto j = json_of(q("stats jobs --json"));
    EXPECT_EQ(j["queue"].as_string(), "jobs");
    EXPECT_EQ(j["waiting"].to_number<int>(), 2);
    EXPECT_EQ(j["delayed"].to_number<int>(), 1);
    EXPECT_EQ(j["active"].to_number<int>(), 0);
    EXPECT_EQ(j["failed"].to_number<int>(), 0);
    EXPECT_EQ(j["completed"].to_number<int>(), 0);
    EXPECT_FALSE(j["paused"].as_bool());
    EXPECT_EQ(j["totals"].as_object()["completed"].to_number<int>(), 0);

    auto table = q("stats jobs");
    EXPECT_EQ(table.status, 0) << table.out;
    EXPECT_EQ(row(table.out, "waiting"), "waiting          2") << table.out;
    EXPECT_EQ(row(table.out, "delayed"), "delayed          1") << table.out;
    EXPECT_EQ(row(table.out, "paused"), "paused  no") << table.out;
    EXPECT_EQ(row(table.out, "queue"), "queue   jobs") << table.out;

    // A unique key already pending gives back the pending job's id.
    const auto u1 = added(q("add jobs x --unique k1 --attempts 1 --priority -3"));
    EXPECT_EQ(added(q("add jobs y --unique k1")), u1);
    // A throttle within its window, and a debounce that replaces the waiting job.
    const auto t1 = added(q("add jobs t --throttle report=60000"));
    EXPECT_EQ(added(q("add jobs t2 --throttle report=60000")), t1);
    const auto d1 = added(q("add jobs d --debounce search=60000"));
    EXPECT_EQ(added(q("add jobs d2 --debounce search=60000")), d1);
    const auto bad = q("add jobs x --throttle nokey");
    EXPECT_NE(bad.status, 0);
    EXPECT_NE(bad.out.find("KEY=MS"), std::string::npos) << bad.out;
    auto js = json_of(q("add jobs z --json"));
    EXPECT_FALSE(js["id"].as_string().empty());
}

TEST(CliQueue, GroupsAreAddedListedLimitedAndShownInStats) {
    akv::testing::embedded_server server;
    queue_cli q(server);
    added(q("add jobs a1 --group acme"));
    added(q("add jobs a2 --group acme"));
    const auto b = added(q("add jobs b1 --group initech"));
    auto limited = q("group-limits jobs --group acme --concurrency 2 --rate 10/1000");
    EXPECT_EQ(limited.status, 0) << limited.out;
    EXPECT_NE(limited.out.find("group acme: 2 running, 10/1000 ms"), std::string::npos)
        << limited.out;
    EXPECT_EQ(q("group-limits jobs --concurrency 5").status, 0); // every group's default

    auto listed = json_of(q("groups jobs --json"));
    const auto& groups = listed["groups"].as_array();
    ASSERT_EQ(groups.size(), 2u);
    auto first = groups[0].as_object(); // the busiest first
    EXPECT_EQ(first["group"].as_string(), "acme");
    EXPECT_EQ(first["waiting"].to_number<int>(), 2);
    EXPECT_EQ(first["state"].as_string(), "ready");
    EXPECT_EQ(first["concurrency"].to_number<int>(), 2);
    EXPECT_EQ(first["rate_max"].to_number<int>(), 10);
    EXPECT_TRUE(first["own_limits"].as_bool());
    auto second = groups[1].as_object();
    EXPECT_EQ(second["group"].as_string(), "initech");
    EXPECT_EQ(second["concurrency"].to_number<int>(), 5);
    EXPECT_FALSE(second["own_limits"].as_bool());

    auto stats = json_of(q("stats jobs --json"));
    EXPECT_EQ(stats["waiting"].to_number<int>(), 3);
    EXPECT_EQ(stats["groups"].to_number<int>(), 2);
    EXPECT_EQ(stats["top_groups"].as_array().size(), 2u);
    auto table = q("stats jobs");
    EXPECT_EQ(row(table.out, "groups"), "groups           2") << table.out;
    EXPECT_NE(table.out.find("busiest groups:"), std::string::npos) << table.out;
    EXPECT_NE(row(table.out, "acme").find("2 running, 10/1000 ms (own)"), std::string::npos)
        << table.out;
    auto shown = json_of(q("get jobs " + b + " --json"));
    EXPECT_EQ(shown["state"].as_string(), "waiting");
    EXPECT_EQ(shown["options"].as_object()["group"].as_string(), "initech");

    EXPECT_EQ(q("group-limits jobs --group acme --clear").status, 0);
    auto cleared = json_of(q("groups jobs --json"));
    EXPECT_FALSE(cleared["groups"].as_array()[0].as_object()["own_limits"].as_bool());

    // Bad input: a usage error naming what is wrong, and nothing changes.
    auto spaced = q("add jobs x --group ''");
    EXPECT_EQ(spaced.status, 2);
    EXPECT_NE(spaced.out.find("--group"), std::string::npos) << spaced.out;
    auto prioritized = q("add jobs x --group acme --priority 3");
    EXPECT_EQ(prioritized.status, 2);
    EXPECT_NE(prioritized.out.find("no priority"), std::string::npos) << prioritized.out;
    auto nothing = q("group-limits jobs --group acme");
    EXPECT_EQ(nothing.status, 2);
    EXPECT_NE(nothing.out.find("--concurrency"), std::string::npos) << nothing.out;
    auto bad_rate = q("group-limits jobs --rate 10");
    EXPECT_EQ(bad_rate.status, 2);
    EXPECT_NE(bad_rate.out.find("MAX/MS"), std::string::npos) << bad_rate.out;
    EXPECT_EQ(json_of(q("stats jobs --json"))["waiting"].to_number<int>(), 3);
}

TEST(CliQueue, ListsWaitingJobsInClaimOrder) {
    akv::testing::embedded_server server;
    queue_cli q(server);
    const auto a = added(q("add jobs a"));
    const auto b = added(q("add jobs b"));
    const auto c = added(q("add jobs c"));
    const auto urgent = added(q("add jobs urgent --priority 10"));
    const auto low = added(q("add jobs low --priority -10"));
    auto all = q("list jobs waiting");
    EXPECT_EQ(all.status, 0) << all.out;
    EXPECT_EQ(all.out, urgent + "\n" + a + "\n" + b + "\n" + c + "\n" + low + "\n");
    EXPECT_EQ(q("list jobs waiting --offset 1 --limit 2").out, a + "\n" + b + "\n");
    EXPECT_EQ(q("list jobs delayed").out, "");

    auto j = json_of(q("list jobs waiting --limit 2 --json"));
    ASSERT_EQ(j["ids"].as_array().size(), 2u);
    EXPECT_EQ(j["ids"].as_array()[0].as_string(), urgent);

    auto verbose = q("list jobs waiting --verbose --limit 1");
    EXPECT_EQ(verbose.status, 0) << verbose.out;
    EXPECT_NE(verbose.out.find("ATTEMPT"), std::string::npos) << verbose.out;
    EXPECT_NE(row(verbose.out, urgent + " ").find("6 B"), std::string::npos) << verbose.out;
}

TEST(CliQueue, GetShowsOneJobAndAnUnknownIdExitsOneNamingIt) {
    akv::testing::embedded_server server;
    queue_cli q(server);
    const auto id = added(q("add jobs payload-1 --priority 7 --attempts 2"));
    auto j = json_of(q("get jobs " + id + " --json"));
    EXPECT_EQ(j["id"].as_string(), id);
    EXPECT_EQ(j["state"].as_string(), "waiting");
    EXPECT_EQ(j["payload"].as_string(), "payload-1");
    EXPECT_EQ(j["options"].as_object()["priority"].to_number<int>(), 7);
    EXPECT_EQ(j["options"].as_object()["max_attempts"].to_number<int>(), 2);
    EXPECT_TRUE(j["result"].is_null());
    auto text = q("get jobs " + id);
    EXPECT_EQ(text.status, 0) << text.out;
    EXPECT_NE(row(text.out, "state").find("waiting"), std::string::npos) << text.out;

    auto no_queue = q("stats jbos");
    EXPECT_EQ(no_queue.status, 1) << no_queue.out;
    EXPECT_NE(no_queue.out.find("queue \"jbos\": no such queue"), std::string::npos) << no_queue.out;

    auto unknown = q("get jobs 4242");
    EXPECT_EQ(unknown.status, 1) << unknown.out;
    EXPECT_NE(unknown.out.find("no job 4242"), std::string::npos) << unknown.out;
    auto retry_unknown = q("retry jobs 4242");
    EXPECT_EQ(retry_unknown.status, 1);
    EXPECT_NE(retry_unknown.out.find("4242"), std::string::npos) << retry_unknown.out;
    auto remove_unknown = q("remove jobs 4242");
    EXPECT_EQ(remove_unknown.status, 1);
    EXPECT_NE(remove_unknown.out.find("4242"), std::string::npos) << remove_unknown.out;
    auto cancel_unknown = q("cancel jobs 4242");
    EXPECT_EQ(cancel_unknown.status, 1);
    EXPECT_NE(cancel_unknown.out.find("4242"), std::string::npos) << cancel_unknown.out;
}

TEST(CliQueue, BadStateQueueNameOrArgumentsAreUsageErrors) {
    akv::testing::embedded_server server;
    queue_cli q(server);
    auto state = q("list jobs sleeping");
    EXPECT_EQ(state.status, 2);
    EXPECT_NE(state.out.find("\"sleeping\""), std::string::npos) << state.out;
    EXPECT_NE(state.out.find("waiting, delayed, active, failed, completed"), std::string::npos);
    auto name = q("stats 'bad{name}'");
    EXPECT_EQ(name.status, 2);
    EXPECT_NE(name.out.find("queue name \"bad{name}\""), std::string::npos) << name.out;
    auto sub = q("frobnicate jobs");
    EXPECT_EQ(sub.status, 2);
    EXPECT_NE(sub.out.find("frobnicate"), std::string::npos) << sub.out;
    auto missing = q("get jobs");
    EXPECT_EQ(missing.status, 2);
    EXPECT_NE(missing.out.find("QUEUE ID"), std::string::npos) << missing.out;
    auto number = q("list jobs waiting --limit lots");
    EXPECT_EQ(number.status, 2);
    EXPECT_NE(number.out.find("--limit"), std::string::npos) << number.out;
    auto option = q("stats jobs --verbose");
    EXPECT_EQ(option.status, 2);
    EXPECT_NE(option.out.find("--verbose"), std::string::npos) << option.out;
    auto priority = q("add jobs x --priority 5000");
    EXPECT_EQ(priority.status, 2);
    EXPECT_NE(priority.out.find("--priority"), std::string::npos) << priority.out;
    auto unreachable = run("--redis redis://127.0.0.1:1 queue stats jobs");
    EXPECT_EQ(unreachable.status, 2);
    EXPECT_NE(unreachable.out.find("127.0.0.1:1"), std::string::npos) << unreachable.out;
}

TEST(CliQueue, HelpListsEverySubcommand) {
    auto r = run("queue --help");
    EXPECT_EQ(r.status, 0);
    for (const char* sub :
         {"stats QUEUE",        "list QUEUE STATE", "get QUEUE ID",    "add QUEUE PAYLOAD",
          "retry QUEUE ID",     "remove QUEUE ID",  "cancel QUEUE ID", "pause QUEUE",
          "resume QUEUE",       "metrics QUEUE",    "--json",          "--verbose",
          "--offset",           "--limit",          "--minutes",       "--delay-ms",
          "--priority",         "--attempts",       "--unique",        "--throttle",
          "--debounce",         "--reason",         "--group",         "groups QUEUE",
          "group-limits QUEUE", "--concurrency",    "--rate",          "--clear"})
        EXPECT_NE(r.out.find(sub), std::string::npos) << sub;
    auto top = run("--help");
    EXPECT_NE(top.out.find("akv [OPTIONS] queue SUBCOMMAND"), std::string::npos) << top.out;
}

TEST(CliQueue, CancelledJobIsFailedUntilRetried) {
    akv::testing::embedded_server server;
    queue_cli q(server);
    const auto id = added(q("add jobs work"));
    auto cancelled = q("cancel jobs " + id + " --reason 'not today'");
    EXPECT_EQ(cancelled.status, 0) << cancelled.out;
    auto j = json_of(q("stats jobs --json"));
    EXPECT_EQ(j["waiting"].to_number<int>(), 0);
    EXPECT_EQ(j["failed"].to_number<int>(), 1);
    EXPECT_EQ(j["totals"].as_object()["cancelled"].to_number<int>(), 1);
    EXPECT_EQ(q("list jobs failed").out, id + "\n");
    auto info = json_of(q("get jobs " + id + " --json"));
    EXPECT_EQ(info["state"].as_string(), "failed");
    EXPECT_EQ(info["last_error"].as_string(), "cancelled: not today");
    EXPECT_EQ(info["result"].as_object()["status"].as_string(), "cancelled");
    // Cancelling it again: it has failed already.
    EXPECT_EQ(q("cancel jobs " + id).status, 1);

    auto retried = q("retry jobs " + id);
    EXPECT_EQ(retried.status, 0) << retried.out;
    j = json_of(q("stats jobs --json"));
    EXPECT_EQ(j["waiting"].to_number<int>(), 1);
    EXPECT_EQ(j["failed"].to_number<int>(), 0);
    EXPECT_EQ(q("list jobs waiting").out, id + "\n");
    EXPECT_EQ(json_of(q("get jobs " + id + " --json"))["state"].as_string(), "waiting");
    auto again = q("retry jobs " + id);
    EXPECT_EQ(again.status, 1);
    EXPECT_NE(again.out.find("has not failed"), std::string::npos) << again.out;

    auto removed = q("remove jobs " + id);
    EXPECT_EQ(removed.status, 0) << removed.out;
    EXPECT_EQ(json_of(q("stats jobs --json"))["waiting"].to_number<int>(), 0);
    EXPECT_EQ(q("get jobs " + id).status, 1);
}

TEST(CliQueue, PauseAndResumeSetTheFlag) {
    akv::testing::embedded_server server;
    queue_cli q(server);
    auto paused = q("pause jobs");
    EXPECT_EQ(paused.status, 0) << paused.out;
    EXPECT_TRUE(json_of(q("stats jobs --json"))["paused"].as_bool());
    EXPECT_EQ(row(q("stats jobs").out, "paused"), "paused  yes");
    auto resumed = q("resume jobs");
    EXPECT_EQ(resumed.status, 0) << resumed.out;
    EXPECT_FALSE(json_of(q("stats jobs --json"))["paused"].as_bool());
}

TEST(CliQueue, RemovingARunningJobIsRefusedAndCancelStopsIt) {
    akv::testing::embedded_server server;
    queue_cli q(server);
    const auto id = added(q("add jobs slow"));
    asio::io_context io;
    akv::test::running_client rc(io, server.config());
    bool started = false, stopped = false, finished = false;
    akv::queue::worker_options o;
    o.lease_time = 1500ms; // renewals (which learn of the cancel) every 500 ms
    o.shutdown_grace = 100ms;
    akv::queue::worker w(
        rc.client, "jobs",
        [&](akv::queue::job_context&) -> asio::awaitable<std::string> {
            started = true;
            asio::steady_timer t(co_await asio::this_coro::executor, 60s);
            try {
                co_await t.async_wait(asio::use_awaitable);
            } catch (...) {
                stopped = true;
                throw;
            }
            co_return "late";
        },
        o);
    asio::co_spawn(io, w.run(), [&](std::exception_ptr) { finished = true; });
    ASSERT_TRUE(akv::test::run_until(io, [&] { return started; }, 10s));

    EXPECT_EQ(q("list jobs active").out, id + "\n");
    auto remove = q("remove jobs " + id);
    EXPECT_EQ(remove.status, 1) << remove.out;
    EXPECT_NE(remove.out.find("running"), std::string::npos) << remove.out;
    auto cancel = q("cancel jobs " + id + " --reason enough");
    EXPECT_EQ(cancel.status, 0) << cancel.out;
    EXPECT_NE(cancel.out.find("running"), std::string::npos) << cancel.out;
    EXPECT_TRUE(akv::test::run_until(io, [&] { return stopped; }, 10s));
    akv::queue::admin a(rc.client, "jobs");
    bool failed = false;
    akv::test::run_task(io, [&]() -> asio::awaitable<void> {
        failed = co_await akv::test::eventually([&]() -> asio::awaitable<bool> {
            co_return (co_await a.counts()).failed == 1;
        });
    }());
    EXPECT_TRUE(failed);
    w.stop();
    EXPECT_TRUE(akv::test::run_until(io, [&] { return finished; }, 10s));
    auto info = json_of(q("get jobs " + id + " --json"));
    EXPECT_EQ(info["state"].as_string(), "failed");
    EXPECT_NE(std::string(info["last_error"].as_string()).find("cancelled"), std::string::npos)
        << q("get jobs " + id).out;
    EXPECT_EQ(info["result"].as_object()["status"].as_string(), "cancelled");
}

TEST(CliQueue, MetricsAndFailedJobsAfterAWorkerRan) {
    akv::testing::embedded_server server;
    queue_cli q(server);
    const auto ok1 = added(q("add jobs ok-1"));
    const auto ok2 = added(q("add jobs ok-2"));
    const auto bad = added(q("add jobs fail --attempts 1"));
    asio::io_context io;
    akv::test::running_client rc(io, server.config());
    akv::queue::worker_options o;
    o.shutdown_grace = 100ms;
    akv::queue::worker w(
        rc.client, "jobs",
        [](akv::queue::job_context& ctx) -> asio::awaitable<std::string> {
            if (ctx.job().payload == "fail") throw std::runtime_error("boom");
            co_return "done";
        },
        o);
    bool finished = false;
    asio::co_spawn(io, w.run(), [&](std::exception_ptr) { finished = true; });
    akv::queue::admin a(rc.client, "jobs");
    bool settled = false;
    akv::test::run_task(io, [&]() -> asio::awaitable<void> {
        settled = co_await akv::test::eventually([&]() -> asio::awaitable<bool> {
            const auto c = co_await a.counts();
            co_return c.total_completed == 2 && c.failed == 1;
        });
    }());
    w.stop();
    EXPECT_TRUE(akv::test::run_until(io, [&] { return finished; }, 10s));
    ASSERT_TRUE(settled);

    auto m = json_of(q("metrics jobs --minutes 5 --json"));
    EXPECT_EQ(m["processed"].to_number<int>(), 2);
    EXPECT_EQ(m["failed"].to_number<int>(), 1);
    const auto& minutes = m["minutes"].as_array();
    ASSERT_EQ(minutes.size(), 5u);
    double p99 = 0;
    for (const auto& minute : minutes) {
        const auto& x = minute.as_object();
        EXPECT_TRUE(x.contains("minute") && x.contains("time") && x.contains("p50_ms") &&
                    x.contains("p90_ms"));
        p99 = std::max(p99, x.at("p99_ms").to_number<double>());
        EXPECT_LE(x.at("p50_ms").to_number<double>(), x.at("p99_ms").to_number<double>());
    }
    EXPECT_GT(p99, 0);
    auto text = q("metrics jobs --minutes 3");
    EXPECT_EQ(text.status, 0) << text.out;
    EXPECT_EQ(row(text.out, "MINUTE (UTC)"),
              "MINUTE (UTC)      PROCESSED  FAILED  P50 MS  P90 MS  P99 MS");
    EXPECT_EQ(row(text.out, "total"), "total                     2       1") << text.out;
    EXPECT_EQ(q("metrics jobs --minutes 0").status, 2);

    auto failed = q("list jobs failed --verbose");
    EXPECT_EQ(failed.status, 0) << failed.out;
    EXPECT_NE(row(failed.out, bad + " ").find("\"boom\""), std::string::npos) << failed.out;
    auto completed = q("list jobs completed");
    EXPECT_NE(completed.out.find(ok1 + "\n"), std::string::npos) << completed.out;
    EXPECT_NE(completed.out.find(ok2 + "\n"), std::string::npos) << completed.out;
    auto done = json_of(q("get jobs " + ok1 + " --json"));
    EXPECT_EQ(done["state"].as_string(), "completed");
    EXPECT_EQ(done["result"].as_object()["status"].as_string(), "completed");
    EXPECT_EQ(done["result"].as_object()["value"].as_string(), "done");

    auto retried = q("retry jobs " + bad);
    EXPECT_EQ(retried.status, 0) << retried.out;
    auto j = json_of(q("stats jobs --json"));
    EXPECT_EQ(j["waiting"].to_number<int>(), 1);
    EXPECT_EQ(j["failed"].to_number<int>(), 0);
    EXPECT_EQ(j["totals"].as_object()["failed"].to_number<int>(), 1);
    auto info = json_of(q("get jobs " + bad + " --json"));
    EXPECT_EQ(info["state"].as_string(), "waiting");
    EXPECT_EQ(info["failures"].to_number<int>(), 0);
}

TEST(CliQueue, FlowShowsTheTreeWithStatesAndResultsAndStatsCountWaitingParents) {
    akv::testing::embedded_server server;
    queue_cli q(server);
    asio::io_context io;
    akv::test::running_client rc(io, server.config());
    akv::queue::flow_producer flows(rc.client);
    akv::queue::flow_job report;
    report.queue = "reports";
    report.payload = "weekly";
    for (const char* region : {"eu", "us"}) {
        akv::queue::flow_job fetch;
        fetch.queue = "fetch";
        fetch.payload = region;
        report.children.push_back(fetch);
    }
    akv::queue::flow_ids ids;
    akv::test::run_task(io, [&]() -> asio::awaitable<void> { ids = co_await flows.add(report); }());
    ASSERT_EQ(ids.children.size(), 2u);

    auto stats = json_of(q("stats reports --json"));
    EXPECT_EQ(stats["waiting_children"].to_number<int>(), 1);
    EXPECT_EQ(row(q("stats reports").out, "waiting parents"), "waiting parents  1");
    EXPECT_EQ(q("list reports waiting-children").out, ids.id + "\n");

    auto waiting = q("flow reports " + ids.id);
    EXPECT_EQ(waiting.status, 0) << waiting.out;
    EXPECT_EQ(waiting.out, "reports " + ids.id + "  waiting-children (2 of 2 pending)\n" +
                               "|-- fetch " + ids.children[0].id + "  waiting\n" + "`-- fetch " +
                               ids.children[1].id + "  waiting\n");
    auto child = q("flow fetch " + ids.children[1].id);
    EXPECT_EQ(child.out.rfind("parent: reports " + ids.id + " (fails if this job fails)\n", 0), 0u)
        << child.out;

    // The children run (no worker for the parent): it is released, their results kept for it.
    bool finished = false;
    akv::queue::worker w(rc.client, "fetch",
                         [](akv::queue::job_context& ctx) -> asio::awaitable<std::string> {
                             co_return "rows of " + ctx.job().payload;
                         });
    asio::co_spawn(io, w.run(), [&](std::exception_ptr) { finished = true; });
    akv::queue::admin a(rc.client, "reports");
    bool released = false;
    akv::test::run_task(io, [&]() -> asio::awaitable<void> {
        released = co_await akv::test::eventually(
            [&]() -> asio::awaitable<bool> { co_return (co_await a.counts()).waiting == 1; });
    }());
    EXPECT_TRUE(released);
    w.stop();
    EXPECT_TRUE(akv::test::run_until(
        io, [&] { return finished; }, 10s));
    auto done = q("flow reports " + ids.id);
    EXPECT_EQ(done.out, "reports " + ids.id + "  waiting\n" + "|-- fetch " + ids.children[0].id +
                            "  completed  completed \"rows of eu\"\n" + "`-- fetch " +
                            ids.children[1].id + "  completed  completed \"rows of us\"\n");
    auto tree = json_of(q("flow reports " + ids.id + " --json"));
    EXPECT_EQ(tree["state"].as_string(), "waiting");
    EXPECT_EQ(tree["children"].as_array()[1].as_object()["result"].as_object()["value"].as_string(),
              "rows of us");
    auto unknown = q("flow reports 999");
    EXPECT_EQ(unknown.status, 1) << unknown.out;
    auto no_queue = q("flow nosuch 1");
    EXPECT_EQ(no_queue.status, 1) << no_queue.out;
    EXPECT_NE(no_queue.out.find("no such queue"), std::string::npos) << no_queue.out;
}

TEST(CliQueue, APartitionedQueueIsMadeFedListedAndActedOnByItsName) {
    akv::testing::embedded_server server;
    queue_cli q(server);
    const auto first = added(q("add pq hello --partitions 3"));
    EXPECT_NE(first.find(':'), std::string::npos) << first; // "<partition>:<id>"
    added(q("add pq world"));
    const auto k1 = added(q("add pq a --key customer-7"));
    const auto k2 = added(q("add pq b --key customer-7"));
    EXPECT_EQ(k1.substr(0, k1.find(':')), k2.substr(0, k2.find(':'))) << k1 << " " << k2;
    // Another count than the stored one: refused, nothing added.
    auto four = q("add pq x --partitions 4");
    EXPECT_EQ(four.status, 1) << four.out;
    EXPECT_NE(four.out.find("opened with 4 partitions, but it has 3"), std::string::npos)
        << four.out;
    auto plain_key = q("add plainq x --key k");
    EXPECT_EQ(plain_key.status, 1) << plain_key.out;
    EXPECT_NE(plain_key.out.find("not a partitioned queue"), std::string::npos) << plain_key.out;

    auto j = json_of(q("stats pq --json"));
    EXPECT_EQ(j["waiting"].to_number<int>(), 4);
    const auto& parts = j["partitions"].as_array();
    ASSERT_EQ(parts.size(), 3u);
    int waiting = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto& p = parts[i].as_object();
        EXPECT_EQ(p.at("index").to_number<std::size_t>(), i);
        EXPECT_EQ(p.at("queue").as_string(), "pq~" + std::to_string(i));
        waiting += p.at("waiting").to_number<int>();
    }
    EXPECT_EQ(waiting, 4);
    auto table = q("stats pq");
    EXPECT_EQ(table.status, 0) << table.out;
    EXPECT_EQ(row(table.out, "partitions"), "partitions  3") << table.out;
    EXPECT_NE(row(table.out, "PARTITION").find("MASTER"), std::string::npos) << table.out;
    EXPECT_NE(row(table.out, "2 "), "") << table.out;

    // One job by its id; the listing gives ids of the same form.
    auto got = json_of(q("get pq " + k1 + " --json"));
    EXPECT_EQ(got["id"].as_string(), k1);
    EXPECT_EQ(got["payload"].as_string(), "a");
    auto listed = q("list pq waiting");
    EXPECT_EQ(listed.status, 0) << listed.out;
    EXPECT_NE(listed.out.find(k2 + "\n"), std::string::npos) << listed.out;
    EXPECT_EQ(q("cancel pq " + k2).status, 0);
    EXPECT_EQ(json_of(q("get pq " + k2 + " --json"))["state"].as_string(), "failed");
    EXPECT_EQ(q("retry pq " + k2).status, 0);
    EXPECT_EQ(q("remove pq " + k2).status, 0);
    auto gone = q("get pq " + k2);
    EXPECT_EQ(gone.status, 1) << gone.out;
    auto bad_id = q("get pq 12");
    EXPECT_EQ(bad_id.status, 1) << bad_id.out;
    EXPECT_NE(bad_id.out.find("<partition>:<id>"), std::string::npos) << bad_id.out;

    // Pause and resume reach every partition.
    EXPECT_EQ(q("pause pq").status, 0);
    auto paused = json_of(q("stats pq --json"));
    for (const auto& p : paused["partitions"].as_array())
        EXPECT_TRUE(p.as_object().at("paused").as_bool());
    EXPECT_EQ(q("resume pq").status, 0);
    EXPECT_FALSE(json_of(q("stats pq --json"))["paused"].as_bool());

    // More partitions, listed with their counts; a queue is made partitioned by --create.
    auto grown = q("partitions pq --add 2");
    EXPECT_EQ(grown.status, 0) << grown.out;
    EXPECT_NE(row(grown.out, "4 ").find("pq~4"), std::string::npos) << grown.out;
    auto grown_json = json_of(q("partitions pq --json"));
    EXPECT_EQ(grown_json["partitions"].as_array().size(), 5u);
    EXPECT_EQ(json_of(q("partitions fresh --create 2 --json"))["partitions"].as_array().size(),
              2u);
    auto mismatch = q("partitions fresh --create 3");
    EXPECT_EQ(mismatch.status, 1) << mismatch.out;
    added(q("add plainq x"));
    auto not_partitioned = q("partitions plainq");
    EXPECT_EQ(not_partitioned.status, 1) << not_partitioned.out;
    EXPECT_NE(not_partitioned.out.find("not a partitioned queue"), std::string::npos)
        << not_partitioned.out;
    auto help = run("queue --help");
    for (const char* text : {"partitions QUEUE", "--create N", "--add N", "--key KEY",
                             "--partitions N", "PARTITION:ID"})
        EXPECT_NE(help.out.find(text), std::string::npos) << text;
}
