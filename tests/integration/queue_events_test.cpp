// The durable job events (event_log): every state move in order, read from a position, after a
// restart; and producer::result() that does not hang on a "done" lost with its subscription.
#include "support/eventually.hpp"
#include "support/running_client.hpp"
#include "support/running_queue.hpp"
#include "support/tcp_proxy.hpp"

#include <akv/messaging/subscriber.hpp>
#include <akv/queue/admin.hpp>
#include <akv/queue/event_log.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_server.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace akv::test;
using namespace akv::queue;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

// The events of `log` from the start, as "event id" lines (one per id).
asio::awaitable<std::vector<std::string>> lines_of(event_log& log) {
    std::vector<std::string> out;
    for (const auto& e : co_await log.read("0", 1000))
        for (const auto& id : e.ids)
            out.push_back(e.event + " " + id);
    co_return out;
}

bool before(const std::vector<std::string>& lines, const std::string& a, const std::string& b) {
    const auto i = std::find(lines.begin(), lines.end(), a);
    const auto j = std::find(lines.begin(), lines.end(), b);
    return i != lines.end() && j != lines.end() && i < j;
}

} // namespace

TEST(QueueEvents, EveryMoveIsLoggedInOrderAndReadFromAPosition) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    event_log log(rc.client, "q");
    std::string ok, bad, later;
    run_task(io, [&]() -> asio::awaitable<void> {
        ok = co_await p.enqueue("ok");
        job_options once;
        once.max_attempts = 2;
        once.backoff.base = 0ms;
        bad = co_await p.enqueue("bad", once);
        job_options delayed;
        delayed.delay = 1h;
        later = co_await p.enqueue("later", delayed);
        EXPECT_EQ(co_await a.cancel(later, "not needed"), cancel_outcome::cancelled);
    }());
    {
        running_worker w(io, rc.client, "q", [](job_context& ctx) -> asio::awaitable<std::string> {
            if (ctx.job().payload == "bad") throw std::runtime_error("no");
            co_return "done";
        });
        ASSERT_TRUE(run_until(
            io,
            [&] {
                bool finished = false;
                run_task(io, [&]() -> asio::awaitable<void> {
                    const auto c = co_await a.counts();
                    finished = c.total_completed == 1 && c.failed == 2;
                }());
                return finished;
            },
            20s));
    }
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto lines = co_await lines_of(log);
        for (const std::string& want :
             {"added " + ok, "added " + bad, "added " + later, "cancelled " + later, "active " + ok,
              "completed " + ok, "active " + bad, "retried " + bad, "failed " + bad})
            EXPECT_NE(std::find(lines.begin(), lines.end(), want), lines.end()) << want;
        EXPECT_TRUE(before(lines, "added " + ok, "active " + ok));
        EXPECT_TRUE(before(lines, "active " + ok, "completed " + ok));
        EXPECT_TRUE(before(lines, "retried " + bad, "failed " + bad));
        EXPECT_EQ(std::count(lines.begin(), lines.end(), "active " + bad), 2); // two runs
        const auto all = co_await log.read("0", 1000);
        if (all.size() < 2) {
            ADD_FAILURE() << "no events";
            co_return;
        }
        EXPECT_EQ(all[0].event, "added");
        EXPECT_GT(all[0].at_ms, 0);
        for (const auto& e : all)
            if (e.event == "cancelled") EXPECT_EQ(e.text, "not needed");
        // From a position: only what came after it.
        const auto rest = co_await log.read(all[0].position, 1000);
        EXPECT_EQ(rest.size(), all.size() - 1);
        EXPECT_EQ(rest.front().position, all[1].position);
        // Waiting from the newest: nothing within the timeout, then the next enqueue.
        const std::string newest = co_await log.last_position();
        EXPECT_EQ(newest, all.back().position);
        EXPECT_TRUE((co_await log.wait(newest, 10, 50ms)).empty());
        const std::string next = co_await p.enqueue("next");
        const auto seen = co_await log.wait(newest, 10, 5s);
        EXPECT_EQ(seen.size(), 1u);
        if (!seen.empty()) EXPECT_EQ(seen[0].ids, std::vector<std::string>{next});
        // A position that is not a stream id is refused, naming it.
        try {
            co_await log.read("yesterday", 1);
            ADD_FAILURE() << "a bad position was accepted";
        } catch (const boost::system::system_error& e) {
            EXPECT_NE(std::string(e.what()).find("yesterday"), std::string::npos) << e.what();
        }
    }());
}

TEST(QueueEvents, TheyAreReadBackAfterARestart) {
    akv::testing::embedded_server_options so;
    so.append_only = true;
    akv::testing::embedded_server server(so);
    std::vector<std::string> ids;
    {
        asio::io_context io;
        running_client rc(io, server.config());
        producer p(rc.client, "q");
        run_task(io, [&]() -> asio::awaitable<void> {
            ids.push_back(co_await p.enqueue("a"));
            ids.push_back(co_await p.enqueue("b"));
        }());
    }
    server.kill();
    server.start();
    asio::io_context io;
    running_client rc(io, server.config());
    event_log log(rc.client, "q");
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto lines = co_await lines_of(log);
        EXPECT_EQ(lines, (std::vector<std::string>{"added " + ids[0], "added " + ids[1]}));
    }());
}

TEST(QueueEvents, AResultIsNotLostWithItsSubscription) {
    akv::testing::embedded_server server;
    tcp_proxy proxy(server.port());
    asio::io_context io;
    akv::config through = server.config();
    through.hosts = {{"127.0.0.1", proxy.port()}};
    running_client waiting(io, through);
    running_client direct(io, server.config());
    akv::messaging::subscriber hub(waiting.client);
    producer p(waiting.client, "q", &hub);
    std::string id;
    run_task(io, [&]() -> asio::awaitable<void> { id = co_await p.enqueue("x"); }());
    std::optional<job_result> got;
    std::exception_ptr failure;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { got = co_await p.result(id, 30s); },
        [&](std::exception_ptr e) { failure = e; });
    // Subscribed: then cut the link and keep it cut while the job completes.
    const auto subscribers = [&] {
        long long n = 0;
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::request req;
            req.push("PUBSUB", "SHARDNUMSUB", queue_keys("q").events);
            akv::response<std::vector<akv::resp::value>> resp;
            co_await direct.client.exec(req, resp);
            const auto& v = std::get<0>(resp).value();
            if (v.size() == 2) n = std::stoll(v[1].str);
        }());
        return n;
    };
    ASSERT_TRUE(run_until(
        io, [&] { return subscribers() == 1; }, 10s));
    // The link goes while result() subscribes or while it waits: either way it must come back
    // to the stored result once the hub is connected again.
    const auto restored = hub.restored();
    proxy.refuse(true);
    proxy.close_all();
    ASSERT_TRUE(run_until(
        io, [&] { return subscribers() == 0; }, 10s));
    {
        running_worker w(io, direct.client, "q", [](job_context&) -> asio::awaitable<std::string> {
            co_return "made while you were away";
        });
        ASSERT_TRUE(run_until(
            io,
            [&] {
                bool done = false;
                run_task(io, [&]() -> asio::awaitable<void> {
                    done = (co_await admin(direct.client, "q").counts()).total_completed == 1;
                }());
                return done;
            },
            10s));
    }
    EXPECT_FALSE(got.has_value()); // its "done" went while it could not hear
    proxy.refuse(false);
    ASSERT_TRUE(run_until(
        io, [&] { return got.has_value() || failure; }, 15s))
        << "result() still waits for a done it missed; restored " << hub.restored() << " (was "
        << restored << "), connected " << waiting.client.is_connected() << ", subscribers "
        << subscribers();
    if (failure) {
        try {
            std::rethrow_exception(failure);
        } catch (const std::exception& e) {
            FAIL() << "result() failed: " << e.what();
        }
    }
    EXPECT_TRUE(got->ok());
    EXPECT_EQ(got->value, "made while you were away");
}

TEST(QueueEvents, AResultOfAnUnknownJobFailsAtOnceNotAtTheTimeout) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    producer p(rc.client, "q", &hub);
    std::exception_ptr failure;
    bool returned = false;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { co_await p.result("424242", 60s); },
        [&](std::exception_ptr e) {
            failure = e;
            returned = true;
        });
    ASSERT_TRUE(run_until(
        io, [&] { return returned; }, 10s))
        << "waited for the timeout";
    try {
        if (failure) std::rethrow_exception(failure);
        ADD_FAILURE() << "a result for a job that never was";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::error::unknown_job) << e.what();
    }
    hub.stop();
}
