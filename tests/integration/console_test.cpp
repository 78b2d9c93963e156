// The console's JSON API (akv::console) on a gateway: who may read and act, what a page of
// jobs and one job look like, actions that change the queue (and are audited), bad input.
#include "support/errors.hpp"
#include "support/gateway_client.hpp"
#include "support/harness.hpp"
#include "support/running_client.hpp"

#include <akv/console/api.hpp>
#include <akv/console/sampler.hpp>
#include <akv/gateway/token.hpp>
#include <akv/queue/admin.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_server.hpp>

#include <akv/messaging/batcher.hpp>
#include <akv/messaging/consumer_group.hpp>
#include <akv/messaging/stream.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_to.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>

using namespace akv::test;
namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

constexpr std::string_view secret = "console-test-secret";
using headers_t = std::vector<std::pair<std::string, std::string>>;

std::string token(const std::string& admin) {
    akv::gateway::token_claims c;
    c.subject = "ops-" + (admin.empty() ? std::string("none") : admin);
    c.expires = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count() +
                3600;
    c.admin = admin;
    return "Bearer " + akv::gateway::sign_token(c, secret);
}

headers_t as(const std::string& admin, bool console_header = true) {
    headers_t h{{"Authorization", token(admin)}};
    if (console_header) h.emplace_back("X-Akv-Console", "1");
    return h;
}

// A gateway serving the console, with its own client for the test's checks.
struct console_fixture {
    console_fixture()
        : rc(io, server.config())
        , gateway(io, server.config(), [this] {
            akv::gateway::options o;
            o.port = 0;
            akv::console::options co;
            co.token_secret = std::string(secret);
            co.password = "hunter2";
            co.gateway_stats = [this] { return gateway.server->snapshot(); };
            co.timeout = 2s;
            o.routes["/console"] = akv::console::api(rc.client, co);
            return o;
        }()) {}

    std::pair<int, json::value> call(http::verb verb, const std::string& target,
                                     const headers_t& headers, const std::string& body = {}) {
        std::pair<int, std::string> r;
        run_task(io, [&]() -> asio::awaitable<void> {
            r = co_await http_call(gateway.port(), verb, target, body, headers);
        }());
        boost::system::error_code ec;
        json::value v = json::parse(r.second, ec);
        return {r.first, ec ? json::value(r.second) : v};
    }
    std::pair<int, json::value> act(const std::string& queue, const std::string& action_json,
                                    const headers_t& headers) {
        return call(http::verb::post, "/console/api/queues/" + queue + "/actions", headers,
                    action_json);
    }
    std::vector<std::string> enqueue(const std::string& queue, int n,
                                     akv::queue::job_options o = {}) {
        std::vector<std::string> ids;
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::queue::producer p(rc.client, queue);
            for (int i = 0; i < n; ++i)
                ids.push_back(co_await p.enqueue("job " + std::to_string(i), o));
        }());
        return ids;
    }
    akv::queue::state_counts counts(const std::string& queue) {
        akv::queue::state_counts c;
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::queue::admin a(rc.client, queue);
            c = co_await a.counts();
        }());
        return c;
    }

    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc;
    running_gateway gateway;
};

std::string error_of(const json::value& v) {
    if (!v.is_object() || !v.as_object().contains("error"))
        return "(no error) " + json::serialize(v);
    return std::string(v.at("error").as_string());
}

} // namespace

TEST(Console, NobodyReadsWithoutALoginAndAReadLoginDoesNotAct) {
    console_fixture f;
    f.enqueue("emails", 1);
    const auto anonymous = f.call(http::verb::get, "/console/api/whoami", {});
    EXPECT_EQ(anonymous.first, 401);
    EXPECT_TRUE(contains(error_of(anonymous.second), "log in")) << error_of(anonymous.second);
    const auto no_claim = f.call(http::verb::get, "/console/api/whoami", as(""));
    EXPECT_EQ(no_claim.first, 401);
    EXPECT_TRUE(contains(error_of(no_claim.second), "no \"admin\" claim"))
        << error_of(no_claim.second);
    const auto forged =
        f.call(http::verb::get, "/console/api/whoami", {{"Authorization", "Bearer not.a.token"}});
    EXPECT_EQ(forged.first, 401);
    EXPECT_TRUE(contains(error_of(forged.second), "not valid")) << error_of(forged.second);
    EXPECT_EQ(f.call(http::verb::get, "/console/api/whoami",
                     {{"Authorization", "Basic " + std::string("b3BzOndyb25n")}}) // ops:wrong
                  .first,
              401);
    const auto basic = f.call(http::verb::get, "/console/api/whoami",
                              {{"Authorization", "Basic b3BzOmh1bnRlcjI="}}); // ops:hunter2
    EXPECT_EQ(basic.first, 200);
    EXPECT_EQ(basic.second.at("role"), "write");
    EXPECT_EQ(basic.second.at("who"), "password:ops"); // a name nobody checked, so marked

    const auto reader = f.call(http::verb::get, "/console/api/whoami", as("read"));
    EXPECT_EQ(reader.second.at("role"), "read");
    EXPECT_EQ(f.call(http::verb::get, "/console/api/queues/emails", as("read")).first, 200);
    const auto refused = f.act("emails", R"({"action": "pause"})", as("read"));
    EXPECT_EQ(refused.first, 403);
    EXPECT_TRUE(contains(error_of(refused.second), "may read, not act"));
    EXPECT_FALSE(f.counts("emails").paused);
}

TEST(Console, AnActionNeedsTheConsoleHeaderAndItsOwnOriginAndIsAudited) {
    console_fixture f;
    f.enqueue("emails", 1);
    const auto no_header = f.act("emails", R"({"action": "pause"})", as("write", false));
    EXPECT_EQ(no_header.first, 403);
    EXPECT_TRUE(contains(error_of(no_header.second), "X-Akv-Console"));
    headers_t cross = as("write");
    cross.emplace_back("Origin", "https://evil.example");
    const auto other_site = f.act("emails", R"({"action": "pause"})", cross);
    EXPECT_EQ(other_site.first, 403);
    EXPECT_TRUE(contains(error_of(other_site.second), "not the console's"));
    EXPECT_FALSE(f.counts("emails").paused);

    headers_t own = as("write");
    own.emplace_back("Origin", "http://127.0.0.1:" + std::to_string(f.gateway.port()));
    const auto paused = f.act("emails", R"({"action": "pause"})", own);
    EXPECT_EQ(paused.first, 200) << json::serialize(paused.second);
    EXPECT_TRUE(f.counts("emails").paused);
    run_task(f.io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("XRANGE", "akv:console:audit", "-", "+");
        akv::response<akv::resp::value> resp;
        co_await f.rc.client.exec(req, resp);
        const auto entries = akv::messaging::entries_from(std::get<0>(resp).value());
        EXPECT_EQ(entries.size(), 1u); // the refused attempts are not actions
        if (entries.empty()) co_return;
        EXPECT_EQ(*entries[0].field("who"), "ops-write");
        EXPECT_EQ(*entries[0].field("action"), "pause");
        EXPECT_EQ(*entries[0].field("queue"), "emails");
    }());
}

TEST(Console, QueuesPagesOfJobsAndOneJob) {
    console_fixture f;
    const auto ids = f.enqueue("emails", 120);
    akv::queue::job_options tenant;
    tenant.group = "acme";
    f.enqueue("reports", 3, tenant);
    const auto queues = f.call(http::verb::get, "/console/api/queues", as("read"));
    ASSERT_EQ(queues.first, 200);
    const auto& list = queues.second.at("queues").as_array();
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0].at("name"), "emails");
    EXPECT_EQ(list[0].at("waiting"), 120);
    EXPECT_EQ(list[1].at("waiting"), 3);
    EXPECT_EQ(list[0].at("waiting_children"), 0);
    EXPECT_EQ(list[0].at("groups"), 0);
    EXPECT_EQ(list[1].at("groups"), 1); // its three wait in their group, counted as waiting

    const auto page =
        f.call(http::verb::get, "/console/api/queues/emails/jobs?state=waiting&offset=100&limit=50",
               as("read"));
    ASSERT_EQ(page.first, 200) << json::serialize(page.second);
    EXPECT_EQ(page.second.at("jobs").as_array().size(), 20u);
    const auto one =
        f.call(http::verb::get, "/console/api/queues/emails/jobs/" + ids[7], as("read"));
    ASSERT_EQ(one.first, 200);
    EXPECT_EQ(one.second.at("payload"), "job 7");
    EXPECT_EQ(one.second.at("state"), "waiting");

    const std::pair<std::string, std::pair<int, std::string>> bad[] = {
        {"/console/api/queues/nosuch", {404, "nosuch"}},
        {"/console/api/queues/emails/jobs/999999", {404, "no job \"999999\""}},
        {"/console/api/queues/emails/jobs?state=bogus", {400, "state must be waiting"}},
        {"/console/api/queues/emails/jobs", {400, "state= is required"}},
        {"/console/api/queues/emails/jobs?state=waiting&limit=100000",
         {400, "limit must be a whole number from 0 to 500"}},
        {"/console/api/queues/emails/jobs?state=waiting&limit=0", {400, "limit must be from 1"}},
        {"/console/api/queues/emails/jobs?state=waiting&offset=-1",
         {400, "offset must be a whole number"}},
        {"/console/api/nothing", {404, "no such console path"}},
    };
    for (const auto& [target, expected] : bad) {
        const auto r = f.call(http::verb::get, target, as("read"));
        EXPECT_EQ(r.first, expected.first) << target;
        EXPECT_TRUE(contains(error_of(r.second), expected.second)) << target;
    }
}

TEST(Console, AFailedJobRetriedFromTheConsoleRunsAgain) {
    console_fixture f;
    akv::queue::job_options once;
    once.max_attempts = 1;
    const auto ids = f.enqueue("emails", 3, once);
    // A worker that fails every job once, then lets them through.
    int runs = 0;
    akv::queue::worker_options wo;
    wo.concurrency = 1;
    akv::queue::worker w(
        f.rc.client, "emails",
        [&](akv::queue::job_context&) -> asio::awaitable<std::string> {
            if (++runs <= 3) throw std::runtime_error("smtp is down");
            co_return "sent";
        },
        wo);
    bool drained = false;
    asio::co_spawn(f.io, w.run(), [&](std::exception_ptr) { drained = true; });
    ASSERT_TRUE(run_until(
        f.io, [&] { return runs >= 3 && f.counts("emails").failed == 3; }, 20s));

    const auto failed =
        f.call(http::verb::get, "/console/api/queues/emails/jobs?state=failed", as("read"));
    ASSERT_EQ(failed.second.at("jobs").as_array().size(), 3u);
    EXPECT_EQ(failed.second.at("jobs").as_array()[0].at("last_error"), "smtp is down");
    EXPECT_EQ(failed.second.at("jobs").as_array()[0].at("attempt"), 1); // its one run, not a 2nd

    const auto one =
        f.act("emails", R"({"action": "retry", "id": ")" + ids[0] + "\"}", as("write"));
    EXPECT_EQ(one.first, 200) << json::serialize(one.second);
    const auto rest = f.act("emails", R"({"action": "retry_failed"})", as("write"));
    EXPECT_EQ(rest.second.at("retried"), 2);
    EXPECT_TRUE(run_until(
        f.io, [&] { return f.counts("emails").total_completed == 3; }, 20s));

    const std::pair<std::string, std::pair<int, std::string>> bad[] = {
        {"not json", {400, "must be a JSON object"}},
        {R"({"action": "explode"})", {400, "unknown action \"explode\""}},
        {R"({"action": "retry"})", {400, "needs \"id\""}},
        {R"({"action": "retry", "id": "424242"})", {404, "424242"}},
        {R"({"action": "rate_limit", "max_jobs": 5})", {400, "\"window_ms\" must be"}},
    };
    for (const auto& [body, expected] : bad) {
        const auto r = f.act("emails", body, as("write"));
        EXPECT_EQ(r.first, expected.first) << body;
        EXPECT_TRUE(contains(error_of(r.second), expected.second))
            << body << ": " << error_of(r.second);
    }
    EXPECT_EQ(f.act("nosuch", R"({"action": "pause"})", as("write")).first, 404);
    w.stop();
    run_until(
        f.io, [] { return false; }, 300ms);
}

// The gateway's routes: the longest prefix wins, its own paths stay its own, a handler that
// throws is a 500 naming why.
TEST(GatewayRoutes, TheLongestPrefixWinsAndTheGatewaysOwnPathsStay) {
    akv::testing::embedded_server server;
    asio::io_context io;
    akv::gateway::options o;
    o.port = 0;
    auto answer = [](std::string text) -> akv::gateway::http_handler {
        return [text](akv::gateway::http_request req) -> asio::awaitable<akv::gateway::http_reply> {
            akv::gateway::http_reply r;
            r.content_type = "text/plain";
            r.body = text + " " + req.method + " " + req.path + "?" + req.query + " " +
                     req.headers["x-who"];
            co_return r;
        };
    };
    o.routes["/app"] = answer("app");
    o.routes["/app/admin"] = answer("admin");
    o.routes["/"] = answer("root");
    o.routes["/boom"] =
        [](akv::gateway::http_request) -> asio::awaitable<akv::gateway::http_reply> {
        throw std::runtime_error("the backend is down");
        co_return akv::gateway::http_reply{};
    };
    running_gateway g(io, server.config(), o);
    auto get = [&](const std::string& target, http::verb verb = http::verb::get) {
        std::pair<int, std::string> r;
        const headers_t who{{"X-Who", "me"}};
        run_task(io, [&]() -> asio::awaitable<void> {
            r = co_await http_call(g.port(), verb, target, "", who);
        }());
        return r;
    };
    EXPECT_EQ(get("/app/x?a=1").second, "app GET /app/x?a=1 me");
    EXPECT_EQ(get("/app/admin/users", http::verb::post).second, "admin POST /app/admin/users? me");
    EXPECT_EQ(get("/application").second, "root GET /application? me"); // not under /app
    EXPECT_EQ(get("/healthz").second, "ok\n");
    const auto boom = get("/boom");
    EXPECT_EQ(boom.first, 500);
    EXPECT_TRUE(contains(boom.second, "the backend is down")) << boom.second;
}

TEST(Console, StreamsWithTheirGroupsAndTheRedisServer) {
    console_fixture f;
    f.enqueue("emails", 1); // its journal stream is the queue's, not listed here
    run_task(f.io, [&]() -> asio::awaitable<void> {
        akv::request req;
        for (int i = 0; i < 5; ++i)
            req.push("XADD", "events", "*", "n", i);
        req.push("XGROUP", "CREATE", "events", "readers", "0");
        req.push("XREADGROUP", "GROUP", "readers", "r1", "COUNT", 2, "STREAMS", "events", ">");
        co_await f.rc.client.exec(req, akv::ignore);
    }());
    const auto streams = f.call(http::verb::get, "/console/api/streams", as("read"));
    ASSERT_EQ(streams.first, 200) << json::serialize(streams.second);
    const auto& list = streams.second.at("streams").as_array();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].at("name"), "events");
    EXPECT_EQ(list[0].at("length"), 5);
    const auto& group = list[0].at("groups").as_array().at(0);
    EXPECT_EQ(group.at("name"), "readers");
    EXPECT_EQ(group.at("consumers"), 1);
    EXPECT_EQ(group.at("pending"), 2);
    EXPECT_EQ(group.at("lag"), 3);

    const auto redis = f.call(http::verb::get, "/console/api/redis", as("read"));
    ASSERT_EQ(redis.first, 200) << json::serialize(redis.second);
    EXPECT_EQ(redis.second.at("info").at("role"), "master");
    EXPECT_TRUE(redis.second.at("info").as_object().contains("used_memory"));
    EXPECT_TRUE(redis.second.at("keyspace").as_object().contains("db0"));
    EXPECT_TRUE(redis.second.at("slowlog").is_array());
    EXPECT_EQ(f.call(http::verb::get, "/console/api/redis", {}).first, 401);
}

// A queue's outbox (the notices of its flows' children to their parents) stays once its
// notices were applied and deleted: it is the queue's, not listed among the streams.
TEST(Console, AQueuesOutboxIsNotListedAmongTheStreams) {
    console_fixture f;
    f.enqueue("emails", 1);
    run_task(f.io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("XADD", "akvq:{emails}:outbox", "1-1", "q", "reports", "j", "7");
        req.push("XDEL", "akvq:{emails}:outbox", "1-1");
        req.push("XADD", "events", "*", "n", 1);
        co_await f.rc.client.exec(req, akv::ignore);
    }());
    const auto streams = f.call(http::verb::get, "/console/api/streams", as("read"));
    ASSERT_EQ(streams.first, 200) << json::serialize(streams.second);
    const auto& list = streams.second.at("streams").as_array();
    ASSERT_EQ(list.size(), 1u) << json::serialize(streams.second);
    EXPECT_EQ(list[0].at("name"), "events");
}

TEST(Console, TheServingGatewaysFigures) {
    console_fixture f;
    gateway_client session(f.io);
    run_task(f.io, session.open(f.gateway.port()));
    std::pair<int, json::value> g;
    EXPECT_TRUE(run_until(
        f.io,
        [&] {
            g = f.call(http::verb::get, "/console/api/gateway", as("read"));
            return g.first == 200 && g.second.at("sessions") == 1;
        },
        10s))
        << json::serialize(g.second);
    EXPECT_TRUE(g.second.as_object().contains("messages_out"));
    EXPECT_TRUE(g.second.as_object().contains("dropped"));
}

// One sample reads every figure once; run() publishes one a interval until stop().
TEST(ConsoleSampler, PublishesSnapshotsOfEveryFigureUntilStopped) {
    console_fixture f;
    f.enqueue("emails", 4);
    akv::console::sampler_options so;
    so.interval = std::chrono::milliseconds(20);
    so.channel_prefix = "app1:";
    so.gateway_stats = [&] { return f.gateway.server->snapshot(); };
    akv::console::sampler s(f.rc.client, so);
    std::string text;
    run_task(f.io, [&]() -> asio::awaitable<void> { text = co_await s.sample(); }());
    const json::value snap = json::parse(text);
    EXPECT_EQ(snap.at("queues").at(0).at("name"), "emails");
    EXPECT_EQ(snap.at("queues").at(0).at("waiting"), 4);
    EXPECT_TRUE(snap.at("streams").is_array());
    EXPECT_EQ(snap.at("redis").at("info").at("role"), "master");
    EXPECT_TRUE(snap.at("gateway").as_object().contains("sessions"));

    // Published every interval (a page receives them: e2e Console.ThePageShows...).
    bool done = false;
    asio::co_spawn(f.io, s.run(), [&](std::exception_ptr) { done = true; });
    EXPECT_TRUE(run_until(
        f.io, [&] { return s.published() >= 3; }, 10s));
    s.stop();
    EXPECT_TRUE(run_until(
        f.io, [&] { return done; }, 5s));
}

TEST(Console, TheLiveViewGetsATokenForTheSnapshotsOnly) {
    console_fixture f;
    EXPECT_EQ(f.call(http::verb::get, "/console/api/live", as("read")).first, 404);

    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::gateway::options o;
    o.port = 0;
    akv::console::options co;
    co.token_secret = std::string(secret);
    co.live_channel = "akv:console:snapshot";
    o.routes["/console"] = akv::console::api(rc.client, co);
    running_gateway g(io, server.config(), o);
    std::pair<int, std::string> r;
    const headers_t reader = as("read");
    run_task(io, [&]() -> asio::awaitable<void> {
        r = co_await http_call(g.port(), http::verb::get, "/console/api/live", "", reader);
    }());
    ASSERT_EQ(r.first, 200) << r.second;
    const json::value live = json::parse(r.second);
    EXPECT_EQ(live.at("channel"), "akv:console:snapshot");
    const auto claims = akv::gateway::verify_token(std::string(live.at("token").as_string()),
                                                   secret, std::chrono::system_clock::now());
    EXPECT_EQ(claims.channels, (std::vector<std::string>{"akv:console:snapshot"}));
    EXPECT_TRUE(claims.publish.empty());
    EXPECT_EQ(claims.admin, "read"); // console channels need it; it reads, never acts
}

TEST(Console, RedisAwayIsA503NamingRedis) {
    console_fixture f;
    f.enqueue("emails", 1);
    EXPECT_EQ(f.call(http::verb::get, "/console/api/queues/emails", as("read")).first, 200);
    f.server.stop();
    const auto away = f.call(http::verb::get, "/console/api/queues/emails", as("read"));
    EXPECT_EQ(away.first, 503) << json::serialize(away.second);
    EXPECT_TRUE(contains(error_of(away.second), "Redis")) << error_of(away.second);
}

// The gateway's channels with the most subscribers, with their presence (every gateway's) and
// the console's own marked, in the API and in the sampler's snapshot; N is bounded.
TEST(Console, TheGatewaysBusiestChannelsWithTheirPresence) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::gateway::options o;
    o.port = 0;
    o.token_secret = std::string(secret);
    o.presence = {{"room.*", false}};
    std::unique_ptr<running_gateway> g;
    akv::console::options co;
    co.token_secret = std::string(secret);
    co.gateway_stats = [&] { return g->server->snapshot(); };
    co.gateway_channels = [&](std::size_t n) { return g->server->channel_counts(n); };
    co.max_channels = 10;
    o.routes["/console"] = akv::console::api(rc.client, co);
    g = std::make_unique<running_gateway>(io, server.config(), o);

    std::vector<std::unique_ptr<gateway_client>> sessions;
    auto session_token = [](std::string admin) {
        akv::gateway::token_claims c;
        c.subject = "user";
        c.expires = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count() +
                    3600;
        c.channels = {"*"};
        c.presence = {"room.*"};
        c.admin = std::move(admin);
        return akv::gateway::sign_token(c, secret);
    };
    run_task(io, [&]() -> asio::awaitable<void> {
        // Two on room.1 (with presence), one on news, one console on its snapshots.
        const std::vector<std::pair<std::string, std::string>> who{
            {"room.1", ""}, {"room.1", ""}, {"news", ""}, {"akv:console:snapshot", "read"}};
        for (const auto& [channel, admin] : who) {
            sessions.push_back(std::make_unique<gateway_client>(io));
            co_await sessions.back()->open(g->port());
            const std::string tok = session_token(admin);
            co_await sessions.back()->connect(tok);
            const json::object reply = co_await sessions.back()->subscribe(channel);
            EXPECT_FALSE(reply.contains("error")) << json::serialize(reply);
        }
    }());

    auto get = [&](const std::string& target, const headers_t& h) {
        std::pair<int, std::string> r;
        run_task(io, [&]() -> asio::awaitable<void> {
            r = co_await http_call(g->port(), http::verb::get, target, "", h);
        }());
        boost::system::error_code ec;
        const json::value v = json::parse(r.second, ec);
        return std::pair<int, json::value>(r.first, ec ? json::value(r.second) : v);
    };
    const auto figures = get("/console/api/gateway?channels=3", as("read", false));
    ASSERT_EQ(figures.first, 200) << json::serialize(figures.second);
    EXPECT_EQ(figures.second.at("sessions"), 4);
    const json::value expected = json::parse(R"([
        {"name": "room.1", "subscribers": 2, "presence": 2},
        {"name": "akv:console:snapshot", "subscribers": 1, "console": true},
        {"name": "news", "subscribers": 1}])");
    EXPECT_EQ(figures.second.at("top_channels"), expected)
        << json::serialize(figures.second.at("top_channels"));
    const auto two = get("/console/api/gateway?channels=1", as("read", false));
    EXPECT_EQ(two.second.at("top_channels").as_array().size(), 1u);

    const auto absurd = get("/console/api/gateway?channels=11", as("read", false));
    EXPECT_EQ(absurd.first, 400);
    EXPECT_TRUE(contains(error_of(absurd.second), "channels must be a whole number from 0 to 10"))
        << error_of(absurd.second);
    EXPECT_EQ(get("/console/api/gateway?channels=x", as("read", false)).first, 400);
    EXPECT_EQ(get("/console/api/gateway", {}).first, 401);

    akv::console::sampler_options so;
    so.gateway_channels = co.gateway_channels;
    so.channels = 2;
    akv::console::sampler s(rc.client, so);
    std::string text;
    run_task(io, [&]() -> asio::awaitable<void> { text = co_await s.sample(); }());
    const json::value snap = json::parse(text);
    EXPECT_EQ(snap.at("top_channels"), json::value(json::array{expected.at(0), expected.at(1)}))
        << text;
}

namespace {

// A master with a replica, and the console's handler called as the gateway would (on the
// client's executor), without one.
struct replica_fixture {
    explicit replica_fixture(std::chrono::milliseconds node_timeout = 2s)
        : master(syncing_at_once())
        , replica(replica_of(master))
        , rc(io, named(master.config()))
        , on_replica(io, replica.config())
        , api([&] {
            akv::console::options co;
            co.token_secret = std::string(secret);
            co.node_timeout = node_timeout;
            return akv::console::api(rc.client, co);
        }()) {
        // Attached and in sync: the master lists it online.
        EXPECT_TRUE(run_until(
            io, [&] { return contains(info(rc.client, "replication"), "state=online"); }, 20s))
            << info(rc.client, "replication");
    }

    // A master that sends a replica its data at once (Redis waits 5 s for more replicas).
    static akv::testing::embedded_server_options syncing_at_once() {
        akv::testing::embedded_server_options o;
        o.extra_args = {"--repl-diskless-sync-delay", "0"};
        return o;
    }
    static akv::config named(akv::config c) {
        c.client_name = "console-under-test"; // its connections to the nodes are named so too
        return c;
    }
    static akv::testing::embedded_server_options
    replica_of(const akv::testing::embedded_server& m) {
        akv::testing::embedded_server_options o;
        o.extra_args = {"--replicaof", m.host(), std::to_string(m.port())};
        return o;
    }

    std::string info(akv::client& c, const std::string& section) {
        std::string text;
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::request req;
            req.push("INFO", section);
            akv::response<std::string> resp;
            co_await c.exec(req, resp);
            text = std::get<0>(resp).value();
        }());
        return text;
    }
    long long info_number(akv::client& c, const std::string& section, const std::string& key) {
        const std::string text = info(c, section);
        const auto at = text.find(key + ":");
        return at == std::string::npos ? -1 : std::stoll(text.substr(at + key.size() + 1));
    }

    // The console's connections to the replica.
    std::size_t console_connections() {
        std::string list;
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::request req;
            req.push("CLIENT", "LIST");
            akv::response<std::string> resp;
            co_await on_replica.client.exec(req, resp);
            list = std::get<0>(resp).value();
        }());
        std::size_t n = 0;
        for (auto at = list.find("name=console-under-test "); at != std::string::npos;
             at = list.find("name=console-under-test ", at + 1))
            ++n;
        return n;
    }

    std::pair<int, json::value> get(const std::string& path) {
        akv::gateway::http_reply reply;
        akv::gateway::http_request req;
        req.method = "GET";
        req.path = path;
        req.headers["authorization"] = token("read");
        run_task(io, [&]() -> asio::awaitable<void> { reply = co_await api(req); }());
        boost::system::error_code ec;
        json::value v = json::parse(reply.body, ec);
        return {static_cast<int>(reply.status), ec ? json::value(reply.body) : v};
    }

    std::string address(const akv::testing::embedded_server& s) const {
        return s.host() + ":" + std::to_string(s.port());
    }

    akv::testing::embedded_server master;
    akv::testing::embedded_server replica;
    asio::io_context io;
    running_client rc;
    running_client on_replica; // the test's own look at the replica
    akv::gateway::http_handler api;
};

} // namespace

TEST(ConsoleNodes, TheMasterAndItsReplicaEachWithTheirRoleAndFigures) {
    replica_fixture f;
    run_task(f.io, [&]() -> asio::awaitable<void> {
        akv::request req;
        for (int i = 0; i < 5; ++i)
            req.push("SET", "k" + std::to_string(i), i);
        co_await f.rc.client.exec(req, akv::ignore);
    }());
    // Replication is asynchronous: until the replica has the five keys too.
    std::pair<int, json::value> r;
    EXPECT_TRUE(run_until(
        f.io,
        [&] {
            r = f.get("/console/api/redis");
            return r.first == 200 && r.second.at("nodes").as_array().size() == 2 &&
                   r.second.at("nodes").at(1).as_object().contains("keys") &&
                   r.second.at("nodes").at(1).at("keys") == 5;
        },
        10s))
        << json::serialize(r.second);
    // The top level is the client's server, as before.
    EXPECT_EQ(r.second.at("info").at("role"), "master");
    EXPECT_TRUE(r.second.at("keyspace").as_object().contains("db0"));

    const auto& master = r.second.at("nodes").at(0);
    EXPECT_EQ(json::value_to<std::string>(master.at("address")), f.address(f.master));
    EXPECT_EQ(master.at("role"), "master");
    EXPECT_EQ(master.at("keys"), 5);
    EXPECT_EQ(master.at("connected_slaves"), 1);
    EXPECT_GT(master.at("offset").as_int64(), 0);
    EXPECT_GT(master.at("used_memory").as_int64(), 0);
    EXPECT_GE(master.at("connected_clients").as_int64(), 1);
    EXPECT_TRUE(master.as_object().contains("ops_per_sec"));
    EXPECT_TRUE(master.at("keyspace").as_object().contains("db0"));
    EXPECT_TRUE(master.at("slowlog").is_array());
    EXPECT_FALSE(master.as_object().contains("error"));

    const auto& replica = r.second.at("nodes").at(1);
    EXPECT_EQ(json::value_to<std::string>(replica.at("address")), f.address(f.replica));
    EXPECT_EQ(replica.at("role"), "replica");
    EXPECT_EQ(json::value_to<std::string>(replica.at("master")), f.address(f.master));
    EXPECT_EQ(replica.at("master_link_status"), "up");
    EXPECT_GT(replica.at("offset").as_int64(), 0);
    EXPECT_GE(replica.at("lag_bytes").as_int64(), 0);
    EXPECT_GT(replica.at("used_memory").as_int64(), 0);
    EXPECT_TRUE(replica.at("slowlog").is_array());
    EXPECT_FALSE(replica.as_object().contains("error"));

    // The sampler's snapshot has them too.
    akv::console::sampler s(f.rc.client);
    std::string text;
    run_task(f.io, [&]() -> asio::awaitable<void> { text = co_await s.sample(); }());
    const json::value snap = json::parse(text);
    ASSERT_EQ(snap.at("redis").at("nodes").as_array().size(), 2u) << text;
    EXPECT_EQ(snap.at("redis").at("nodes").at(0).at("role"), "master");
    EXPECT_EQ(snap.at("redis").at("nodes").at(1).at("role"), "replica");
    EXPECT_EQ(snap.at("redis").at("nodes").at(1).at("keys"), 5);
}

// A node's connection is made once and kept: more requests open no new connection there.
TEST(ConsoleNodes, AReplicasConnectionIsKeptBetweenRequests) {
    replica_fixture f;
    ASSERT_EQ(f.get("/console/api/redis").first, 200);
    EXPECT_EQ(f.console_connections(), 1u);
    const long long before =
        f.info_number(f.on_replica.client, "stats", "total_connections_received");
    for (int i = 0; i < 5; ++i) {
        const auto r = f.get("/console/api/redis");
        ASSERT_EQ(r.first, 200);
        EXPECT_FALSE(r.second.at("nodes").at(1).as_object().contains("error"))
            << json::serialize(r.second);
    }
    EXPECT_EQ(f.info_number(f.on_replica.client, "stats", "total_connections_received"), before);
    EXPECT_EQ(f.console_connections(), 1u);
}

// A replica that stops answering (SIGSTOP) costs the answer one deadline, and is listed with
// why; the master's figures are there all the same.
TEST(ConsoleNodes, AReplicaThatHangsIsListedWithItsErrorWithinTheDeadline) {
    replica_fixture f(300ms);
    ASSERT_EQ(f.get("/console/api/redis").first, 200);
    ASSERT_EQ(::kill(f.replica.pid(), SIGSTOP), 0);
    const auto start = std::chrono::steady_clock::now();
    const auto r = f.get("/console/api/redis");
    const auto took = std::chrono::steady_clock::now() - start;
    ::kill(f.replica.pid(), SIGCONT);
    ASSERT_EQ(r.first, 200) << json::serialize(r.second);
    EXPECT_LT(took, 2s);
    const auto& nodes = r.second.at("nodes").as_array();
    ASSERT_EQ(nodes.size(), 2u) << json::serialize(r.second); // the master still lists it
    EXPECT_FALSE(nodes[0].as_object().contains("error"));
    EXPECT_EQ(nodes[0].at("connected_slaves"), 1);
    EXPECT_EQ(json::value_to<std::string>(nodes[1].at("address")), f.address(f.replica));
    EXPECT_EQ(nodes[1].at("role"), "replica"); // as its master says
    ASSERT_TRUE(nodes[1].as_object().contains("error"));
    const std::string error(nodes[1].at("error").as_string());
    EXPECT_TRUE(contains(error, f.address(f.replica))) << error;
    EXPECT_TRUE(contains(error, "timed out")) << error;
}

// A replica that leaves the topology leaves the list, and its connection is closed.
TEST(ConsoleNodes, AReplicaThatLeavesIsDroppedWithItsConnection) {
    replica_fixture f;
    ASSERT_EQ(f.get("/console/api/redis").second.at("nodes").as_array().size(), 2u);
    EXPECT_EQ(f.console_connections(), 1u);
    run_task(f.io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("REPLICAOF", "NO", "ONE");
        co_await f.on_replica.client.exec(req, akv::ignore);
    }());
    EXPECT_TRUE(run_until(
        f.io, [&] { return f.get("/console/api/redis").second.at("nodes").as_array().size() == 1; },
        10s));
    EXPECT_TRUE(run_until(
        f.io, [&] { return f.console_connections() == 0; }, 10s));
}

// The nodes' connections end with the client: an io_context runs out of work as before.
TEST(ConsoleNodes, NodeConnectionsEndWithTheClient) {
    akv::testing::embedded_server master(replica_fixture::syncing_at_once());
    akv::testing::embedded_server replica(replica_fixture::replica_of(master));
    asio::io_context io;
    akv::client client(io.get_executor(), master.config());
    bool finished = false;
    asio::co_spawn(io, client.run(), [&](std::exception_ptr) { finished = true; });
    akv::console::options co;
    co.token_secret = std::string(secret);
    const auto api = akv::console::api(client, co);
    akv::console::sampler s(client);
    std::size_t nodes = 0;
    EXPECT_TRUE(run_until(
        io,
        [&] {
            akv::gateway::http_request req;
            req.method = "GET";
            req.path = "/console/api/redis";
            req.headers["authorization"] = token("read");
            akv::gateway::http_reply reply;
            std::string snapshot;
            run_task(io, [&]() -> asio::awaitable<void> {
                reply = co_await api(req);
                snapshot = co_await s.sample();
            }());
            nodes = json::parse(reply.body).at("nodes").as_array().size() +
                    json::parse(snapshot).at("redis").at("nodes").as_array().size();
            return nodes == 4; // the replica has attached (2 nodes each)
        },
        20s));
    client.cancel();
    const auto start = std::chrono::steady_clock::now();
    io.restart();
    io.run_for(10s);
    EXPECT_TRUE(finished);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "something still runs";
}

namespace {

// A group reading "orders" that gives up on an entry at its second delivery.
akv::messaging::group_options billing(std::string consumer) {
    akv::messaging::group_options o;
    o.stream = "orders";
    o.group = "billing";
    o.consumer = std::move(consumer);
    o.claim_idle = std::chrono::milliseconds(0);
    o.max_deliveries = 1;
    return o;
}

akv::messaging::field_list order(int n) {
    return {{"order", std::to_string(n)}, {"sku", "A-" + std::to_string(n)}};
}

// `n` orders, each read by a consumer that never acks, then dead-lettered by another's claim.
void dead_orders(console_fixture& f, int n) {
    run_task(f.io, [&]() -> asio::awaitable<void> {
        akv::messaging::stream_producer producer(f.rc.client, "orders");
        for (int i = 0; i < n; ++i)
            co_await producer.add(order(i));
        akv::messaging::consumer_group crashed(f.rc.client, billing("crashed"));
        co_await crashed.create();
        co_await crashed.read(100, std::chrono::milliseconds(0));
        akv::messaging::consumer_group rescuer(f.rc.client, billing("rescuer"));
        co_await rescuer.claim_stale(100); // delivered twice: to orders:dead
    }());
}

const json::object* stream_named(const json::value& listing, std::string_view name) {
    for (const auto& st : listing.at("streams").as_array())
        if (st.at("name").as_string() == name) return &st.as_object();
    return nullptr;
}

} // namespace

TEST(Console, EachConsumersPendingEntriesAndIdleTime) {
    console_fixture f;
    run_task(f.io, [&]() -> asio::awaitable<void> {
        akv::request req;
        for (int i = 0; i < 10; ++i)
            req.push("XADD", "events", "*", "n", i);
        req.push("XGROUP", "CREATE", "events", "readers", "0");
        req.push("XREADGROUP", "GROUP", "readers", "r1", "COUNT", 3, "STREAMS", "events", ">");
        req.push("XREADGROUP", "GROUP", "readers", "r2", "COUNT", 5, "STREAMS", "events", ">");
        co_await f.rc.client.exec(req, akv::ignore);
    }());
    const auto streams = f.call(http::verb::get, "/console/api/streams", as("read"));
    ASSERT_EQ(streams.first, 200) << json::serialize(streams.second);
    const json::object* events = stream_named(streams.second, "events");
    ASSERT_TRUE(events);
    const auto& group = events->at("groups").at(0);
    EXPECT_EQ(group.at("pending"), 8);
    const auto& consumers = group.at("per_consumer").as_array();
    ASSERT_EQ(consumers.size(), 2u);
    EXPECT_EQ(consumers[0].at("name"), "r1");
    EXPECT_EQ(consumers[0].at("pending"), 3);
    EXPECT_EQ(consumers[1].at("name"), "r2");
    EXPECT_EQ(consumers[1].at("pending"), 5);
    EXPECT_GE(consumers[1].at("idle").as_int64(), 0);
    EXPECT_FALSE(events->contains("dead_letter_of"));
}

TEST(Console, ADeadLetteredEntryIsListedAndSentBackToItsSource) {
    console_fixture f;
    dead_orders(f, 3);
    const auto streams = f.call(http::verb::get, "/console/api/streams", as("read"));
    const json::object* dead = stream_named(streams.second, "orders:dead");
    ASSERT_TRUE(dead) << json::serialize(streams.second);
    EXPECT_EQ(dead->at("dead_letter_of"), "orders");
    EXPECT_EQ(dead->at("length"), 3);

    // Newest first, a page at a time.
    const auto page =
        f.call(http::verb::get, "/console/api/streams/orders:dead/entries?limit=2", as("read"));
    ASSERT_EQ(page.first, 200) << json::serialize(page.second);
    EXPECT_EQ(page.second.at("dead_letter_of"), "orders");
    EXPECT_EQ(page.second.at("length"), 3);
    const auto& entries = page.second.at("entries").as_array();
    ASSERT_EQ(entries.size(), 2u);
    const auto& newest = entries[0];
    EXPECT_EQ(newest.at("dead").at("group"), "billing");
    EXPECT_EQ(newest.at("dead").at("deliveries"), 2);
    EXPECT_EQ(newest.at("dead").at("reason"), "delivered more than 1 times");
    EXPECT_EQ(newest.at("fields").at(0).at("name"), "order");
    EXPECT_EQ(newest.at("fields").at(0).at("value"), "2");
    EXPECT_EQ(newest.at("fields").as_array().size(), 2u); // its own fields only
    const std::string oldest_id = std::string(entries[1].at("id").as_string());
    const auto older =
        f.call(http::verb::get, "/console/api/streams/orders:dead/entries?before=" + oldest_id,
               as("read"));
    ASSERT_EQ(older.second.at("entries").as_array().size(), 1u);
    EXPECT_EQ(older.second.at("entries").at(0).at("fields").at(0).at("value"), "0");
    const auto skipped = f.call(
        http::verb::get, "/console/api/streams/orders:dead/entries?offset=1&limit=1", as("read"));
    EXPECT_EQ(skipped.second.at("entries").at(0).at("id").as_string(), oldest_id);

    // Back to the source: its own fields, read again by the group.
    const std::string id = std::string(newest.at("id").as_string());
    const auto requeued = f.call(http::verb::post, "/console/api/streams/orders:dead/actions",
                                 as("write"), R"({"action": "requeue", "id": ")" + id + "\"}");
    ASSERT_EQ(requeued.first, 200) << json::serialize(requeued.second);
    EXPECT_EQ(requeued.second.at("source"), "orders");
    const std::string new_id = std::string(requeued.second.at("new_id").as_string());
    run_task(f.io, [&]() -> asio::awaitable<void> {
        akv::messaging::consumer_group again(f.rc.client, billing("again"));
        const auto read = co_await again.read(10, std::chrono::milliseconds(0));
        EXPECT_EQ(read.size(), 1u);
        if (read.empty()) co_return;
        EXPECT_EQ(read[0].id, new_id);
        EXPECT_EQ(read[0].fields, order(2));
    }());
    const auto after =
        f.call(http::verb::get, "/console/api/streams/orders:dead/entries", as("read"));
    EXPECT_EQ(after.second.at("length"), 2);

    // The page's own origin however spelled (case, scheme): the same check as a queue's action.
    headers_t own = as("write");
    own.emplace_back("Origin", "HTTP://127.0.0.1:" + std::to_string(f.gateway.port()));
    const auto all = f.call(http::verb::post, "/console/api/streams/orders:dead/actions", own,
                            R"({"action": "requeue_all"})");
    ASSERT_EQ(all.first, 200) << json::serialize(all.second);
    EXPECT_EQ(all.second.at("requeued"), 2);
    EXPECT_EQ(all.second.at("skipped"), 0);
    run_task(f.io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("XLEN", "orders:dead");
        req.push("XLEN", "orders");
        req.push("XRANGE", "akv:console:audit", "-", "+");
        akv::response<long long, long long, akv::resp::value> resp;
        co_await f.rc.client.exec(req, resp);
        EXPECT_EQ(std::get<0>(resp).value(), 0);
        EXPECT_EQ(std::get<1>(resp).value(), 6); // three first, three sent back
        const auto audit = akv::messaging::entries_from(std::get<2>(resp).value());
        EXPECT_EQ(audit.size(), 2u);
        if (audit.size() < 2) co_return;
        EXPECT_EQ(*audit[0].field("action"), "requeue");
        EXPECT_EQ(*audit[0].field("stream"), "orders:dead");
        EXPECT_EQ(*audit[0].field("id"), id);
        EXPECT_EQ(*audit[0].field("who"), "ops-write");
        EXPECT_EQ(*audit[1].field("action"), "requeue_all");
    }());
}

TEST(Console, DeadLetterActionsNeedTheWriteRoleAndNameWhatIsWrong) {
    console_fixture f;
    dead_orders(f, 2);
    const auto page =
        f.call(http::verb::get, "/console/api/streams/orders:dead/entries", as("read"));
    const std::string id = std::string(page.second.at("entries").at(0).at("id").as_string());
    const std::string requeue = R"({"action": "requeue", "id": ")" + id + "\"}";
    const std::string target = "/console/api/streams/orders:dead/actions";
    const auto reader = f.call(http::verb::post, target, as("read"), requeue);
    EXPECT_EQ(reader.first, 403);
    EXPECT_TRUE(contains(error_of(reader.second), "may read, not act"));
    const auto no_header = f.call(http::verb::post, target, as("write", false), requeue);
    EXPECT_EQ(no_header.first, 403);
    EXPECT_TRUE(contains(error_of(no_header.second), "X-Akv-Console"));
    EXPECT_EQ(f.call(http::verb::post, target, {}, requeue).first, 401);

    const std::tuple<std::string, std::string, int, std::string> bad[] = {
        {target, R"({"action": "requeue", "id": "1-1"})", 404, "no entry \"1-1\""},
        {target, R"({"action": "remove", "id": "1-1"})", 404, "no entry \"1-1\""},
        {target, R"({"action": "requeue", "id": "newest"})", 400, "not an entry id"},
        {target, R"({"action": "requeue"})", 400, "needs \"id\""},
        {target, R"({"action": "explode"})", 400, "unknown action \"explode\""},
        {"/console/api/streams/orders/actions", requeue, 400, "not a dead-letter stream"},
        {"/console/api/streams/nosuch:dead/actions", requeue, 404, "no stream \"nosuch:dead\""},
    };
    for (const auto& [where, body, status, message] : bad) {
        const auto r = f.call(http::verb::post, where, as("write"), body);
        EXPECT_EQ(r.first, status) << where << " " << body;
        EXPECT_TRUE(contains(error_of(r.second), message)) << body << ": " << error_of(r.second);
    }
    const std::pair<std::string, std::pair<int, std::string>> bad_reads[] = {
        {"/console/api/streams/nosuch/entries", {404, "no stream \"nosuch\""}},
        {"/console/api/streams/orders:dead/entries?limit=501", {400, "limit must be"}},
        {"/console/api/streams/orders:dead/entries?before=x", {400, "before must be an entry id"}},
        {"/console/api/streams/orders:dead/entries?offset=10001", {400, "offset must be"}},
    };
    for (const auto& [where, expected] : bad_reads) {
        const auto r = f.call(http::verb::get, where, as("read"));
        EXPECT_EQ(r.first, expected.first) << where;
        EXPECT_TRUE(contains(error_of(r.second), expected.second)) << where;
    }
    // Nothing moved by the refused ones; "remove" deletes one dead entry.
    const auto removed = f.call(http::verb::post, target, as("write"),
                                R"({"action": "remove", "id": ")" + id + "\"}");
    EXPECT_EQ(removed.first, 200) << json::serialize(removed.second);
    const auto left =
        f.call(http::verb::get, "/console/api/streams/orders:dead/entries", as("read"));
    EXPECT_EQ(left.second.at("length"), 1);
}

TEST(Console, ARunningBatcherShowsItsCountersUntilItStops) {
    console_fixture f;
    akv::messaging::batcher_options bo;
    bo.group.stream = "{p}:in";
    bo.group.group = "scorers";
    bo.group.consumer = "s1";
    bo.output_stream = "{p}:out";
    bo.max_wait = std::chrono::milliseconds(20);
    bo.status_every = std::chrono::milliseconds(100);
    bo.status_fields = [] {
        return akv::messaging::field_list{{"model", "echo"}, {"model_version", "7"}};
    };
    akv::messaging::batcher b(f.rc.client, bo,
                              [](std::span<const akv::messaging::stream_entry> batch)
                                  -> asio::awaitable<std::vector<akv::messaging::field_list>> {
                                  std::vector<akv::messaging::field_list> out;
                                  for (const auto& e : batch)
                                      out.push_back({{"in", e.id}});
                                  co_return out;
                              });
    bool stopped = false;
    asio::co_spawn(f.io, b.run(), [&](std::exception_ptr) { stopped = true; });
    run_task(f.io, [&]() -> asio::awaitable<void> {
        akv::messaging::stream_producer producer(f.rc.client, "{p}:in");
        const akv::messaging::field_list one{{"n", "1"}};
        const std::vector<akv::messaging::field_list> entries(100, one);
        co_await producer.add_many(entries);
    }());
    std::pair<int, json::value> listing;
    EXPECT_TRUE(run_until(
        f.io,
        [&] {
            listing = f.call(http::verb::get, "/console/api/batchers", as("read"));
            const auto& all = listing.second.at("batchers").as_array();
            return all.size() == 1 && all[0].at("entries") == 100;
        },
        10s))
        << json::serialize(listing.second);
    const auto& one = listing.second.at("batchers").at(0);
    EXPECT_EQ(one.at("stream"), "{p}:in");
    EXPECT_EQ(one.at("group"), "scorers");
    EXPECT_EQ(one.at("consumer"), "s1");
    EXPECT_EQ(one.at("model"), "echo");
    EXPECT_EQ(one.at("model_version"), 7);
    EXPECT_EQ(one.at("outputs"), 100);
    EXPECT_GE(one.at("batches").as_int64(), 2); // 64 at most in one
    EXPECT_TRUE(one.at("batches_per_s").is_number());
    EXPECT_TRUE(one.at("mean_batch").is_number());
    EXPECT_GE(one.at("age_ms").as_int64(), 0);

    // The sampler publishes them too.
    akv::console::sampler s(f.rc.client);
    std::string text;
    run_task(f.io, [&]() -> asio::awaitable<void> { text = co_await s.sample(); }());
    const json::value snap = json::parse(text);
    ASSERT_EQ(snap.at("batchers").as_array().size(), 1u) << text;
    EXPECT_EQ(snap.at("batchers").at(0).at("consumer"), "s1");

    b.stop();
    EXPECT_TRUE(run_until(
        f.io, [&] { return stopped; }, 10s));
    EXPECT_TRUE(f.call(http::verb::get, "/console/api/batchers", as("read"))
                    .second.at("batchers")
                    .as_array()
                    .empty()); // its record went with it
}

TEST(Console, AnEntrysTextIsShownAndItsBytesOnlyCounted) {
    console_fixture f;
    run_task(f.io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("XADD", "raw", "*", "text", "héllo", "tensor", std::string("\xff\xfe\x00\x01", 4),
                 "long", std::string(2000, 'x'));
        co_await f.rc.client.exec(req, akv::ignore);
    }());
    const auto page = f.call(http::verb::get, "/console/api/streams/raw/entries", as("read"));
    ASSERT_EQ(page.first, 200) << json::serialize(page.second);
    EXPECT_FALSE(page.second.as_object().contains("dead_letter_of"));
    const auto& fields = page.second.at("entries").at(0).at("fields").as_array();
    ASSERT_EQ(fields.size(), 3u);
    EXPECT_EQ(fields[0].at("value"), "héllo");
    EXPECT_FALSE(fields[0].as_object().contains("bytes"));
    EXPECT_FALSE(fields[1].as_object().contains("value")); // not UTF-8: counted
    EXPECT_EQ(fields[1].at("bytes"), 4);
    EXPECT_EQ(fields[2].at("value").as_string().size(), 1024u); // the start of a long one
    EXPECT_EQ(fields[2].at("bytes"), 2000);
    EXPECT_FALSE(page.second.at("entries").at(0).as_object().contains("dead"));
}

namespace {
// A worker of the fixture's client whose handler reports "40%" and then waits until the test
// lets it go (release()).
struct gated_worker {
    gated_worker(console_fixture& f, const std::string& queue)
        : gate(f.io, asio::steady_timer::time_point::max())
        , w(
              f.rc.client, queue,
              [this](akv::queue::job_context& ctx) -> asio::awaitable<std::string> {
                  co_await ctx.progress("40%");
                  co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
                  co_return "sent";
              },
              [] {
                  akv::queue::worker_options o;
                  o.concurrency = 4;
                  o.heartbeat = std::chrono::milliseconds(50);
                  return o;
              }()) {
        asio::co_spawn(f.io, w.run(), [this](std::exception_ptr) { drained = true; });
    }
    // Handlers waiting go on, and those yet to come do not wait.
    void release() { gate.expires_at(asio::steady_timer::time_point::min()); }
    asio::steady_timer gate;
    akv::queue::worker w;
    bool drained = false;
};
} // namespace

TEST(Console, AQueueShowsItsLiveWorkersUntilTheyStop) {
    console_fixture f;
    f.enqueue("emails", 1);
    gated_worker g(f, "emails");
    json::value q;
    ASSERT_TRUE(run_until(
        f.io,
        [&] {
            q = f.call(http::verb::get, "/console/api/queues/emails", as("read")).second;
            const auto& workers = q.at("workers").as_array();
            return workers.size() == 1 && workers[0].at("running") == 1;
        },
        10s))
        << json::serialize(q);
    const auto& me = q.at("workers").at(0);
    EXPECT_EQ(me.at("token").as_string(), g.w.token());
    EXPECT_EQ(me.at("concurrency"), 4);
    EXPECT_EQ(me.at("pid"), ::getpid());
    EXPECT_FALSE(me.at("host").as_string().empty());
    EXPECT_GT(me.at("started_ms").to_number<std::int64_t>(), 0);
    EXPECT_GT(me.at("last_seen_ms").to_number<std::int64_t>(), 0);
    EXPECT_EQ(me.at("completed"), 0);
    EXPECT_EQ(me.at("failed"), 0);
    const auto list = f.call(http::verb::get, "/console/api/queues", as("read")).second;
    EXPECT_EQ(list.at("queues").at(0).at("workers"), 1);

    g.release();
    g.w.stop();
    ASSERT_TRUE(run_until(
        f.io, [&] { return g.drained; }, 10s));
    q = f.call(http::verb::get, "/console/api/queues/emails", as("read")).second;
    EXPECT_TRUE(q.at("workers").as_array().empty()) << json::serialize(q);
    EXPECT_EQ(f.call(http::verb::get, "/console/api/queues", as("read"))
                  .second.at("queues")
                  .at(0)
                  .at("workers"),
              0);
}

TEST(Console, AJobShowsItsLastProgress) {
    console_fixture f;
    const auto ids = f.enqueue("emails", 1);
    gated_worker g(f, "emails");
    json::value job;
    EXPECT_TRUE(run_until(
        f.io,
        [&] {
            job = f.call(http::verb::get, "/console/api/queues/emails/jobs/" + ids[0], as("read"))
                      .second;
            return job.at("progress") == "40%";
        },
        10s))
        << json::serialize(job);
    EXPECT_EQ(job.at("state"), "active");
    const auto page =
        f.call(http::verb::get, "/console/api/queues/emails/jobs?state=active", as("read"));
    EXPECT_EQ(page.second.at("jobs").at(0).at("progress"), "40%");
    g.release();
    g.w.stop();
    EXPECT_TRUE(run_until(
        f.io, [&] { return g.drained; }, 10s));
}

TEST(Console, LatencyPercentilesOfAMinuteWithCompletions) {
    console_fixture f;
    f.enqueue("emails", 20);
    gated_worker g(f, "emails");
    g.release(); // every job completes at once
    json::value q, busiest;
    EXPECT_TRUE(run_until(
        f.io,
        [&] {
            q = f.call(http::verb::get, "/console/api/queues/emails", as("read")).second;
            std::int64_t processed = 0;
            for (const auto& m : q.at("minutes").as_array()) {
                processed += m.at("processed").to_number<std::int64_t>();
                if (!busiest.is_object() || m.at("processed").to_number<std::int64_t>() >
                                                busiest.at("processed").to_number<std::int64_t>())
                    busiest = m;
            }
            return processed == 20;
        },
        10s))
        << json::serialize(q);
    const double p50 = busiest.at("p50_ms").to_number<double>();
    const double p90 = busiest.at("p90_ms").to_number<double>();
    const double p99 = busiest.at("p99_ms").to_number<double>();
    EXPECT_GT(p50, 0.0);
    EXPECT_LE(p50, p90);
    EXPECT_LE(p90, p99);
    // The queue list has one of those minutes' figures (this minute's, or the last one's).
    const auto list = f.call(http::verb::get, "/console/api/queues", as("read")).second;
    const auto& last = list.at("queues").at(0).at("last_minute");
    bool found = false;
    for (const auto& m : q.at("minutes").as_array())
        if (m.at("minute") == last.at("minute")) {
            found = true;
            EXPECT_EQ(m, last);
            EXPECT_GT(last.at("processed").to_number<std::int64_t>(), 0);
        }
    EXPECT_TRUE(found) << json::serialize(last);
    // The sampler reads a minute's figures every fifth sample and keeps them in between: every
    // snapshot has them.
    akv::console::sampler s(f.rc.client);
    for (int i = 0; i < 3; ++i) {
        std::string text;
        run_task(f.io, [&]() -> asio::awaitable<void> { text = co_await s.sample(); }());
        const json::value snap = json::parse(text);
        EXPECT_EQ(snap.at("queues").at(0).at("last_minute").at("minute"), last.at("minute"))
            << "sample " << i << ": " << text;
    }
    g.w.stop();
    EXPECT_TRUE(run_until(
        f.io, [&] { return g.drained; }, 10s));
}
