// The queue's scheduler: periodic jobs (interval, cron), one leader among many, on-time
// promotion of delayed jobs.
#include "support/eventually.hpp"
#include "support/running_client.hpp"
#include "support/running_queue.hpp"

#include <akv/queue/admin.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/scheduler.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_server.hpp>

using namespace akv::test;
using namespace akv::queue;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {
periodic_job every(std::string name, std::chrono::milliseconds ms, std::string payload) {
    periodic_job p;
    p.name = std::move(name);
    p.every = ms;
    p.payload = std::move(payload);
    return p;
}
} // namespace

TEST(QueueScheduler, OneLeaderFiresEachPeriodicRunOnce) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    std::vector<std::string> runs;
    running_worker w(io, rc.client, "q", [&](job_context& ctx) -> asio::awaitable<std::string> {
        runs.push_back(ctx.job().payload);
        co_return "";
    });
    scheduler_options o;
    o.leader_ttl = 600ms;
    running_scheduler a(io, rc.client, "q", o), b(io, rc.client, "q", o);
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto p = every("tick", 150ms, "tick");
        co_await a.s.add(p);
        const auto names = co_await b.s.names();
        EXPECT_EQ(names, std::vector<std::string>(1, "tick"));
    }());
    ASSERT_TRUE(run_until(io, [&] { return runs.size() >= 5; }, 10s));
    EXPECT_NE(a.s.leader(), b.s.leader());
    // Every run was fired by exactly one of them: no run was enqueued twice.
    EXPECT_GE(a.s.fired() + b.s.fired(), runs.size());
    EXPECT_LE(a.s.fired() + b.s.fired(), runs.size() + 1); // one may be waiting to run
    EXPECT_TRUE(a.s.fired() == 0 || b.s.fired() == 0);
}

TEST(QueueScheduler, AnotherTakesOverWhenTheLeaderStops) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    scheduler_options o;
    o.leader_ttl = 300ms;
    auto one = std::make_unique<running_scheduler>(io, rc.client, "q", o);
    auto two = std::make_unique<running_scheduler>(io, rc.client, "q", o);
    ASSERT_TRUE(run_until(io, [&] { return one->s.leader() || two->s.leader(); }, 5s));
    EXPECT_NE(one->s.leader(), two->s.leader());
    if (two->s.leader()) std::swap(one, two); // `one` leads
    one.reset();                                // stops and resigns
    ASSERT_TRUE(run_until(io, [&] { return two->s.leader(); }, 5s));
}

TEST(QueueScheduler, CronPeriodicJobFiresOnTheSecond) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    std::vector<std::int64_t> at;
    running_worker w(io, rc.client, "q", [&](job_context&) -> asio::awaitable<std::string> {
        at.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count());
        co_return "";
    });
    running_scheduler s(io, rc.client, "q");
    run_task(io, [&]() -> asio::awaitable<void> {
        periodic_job p;
        p.name = "each-second";
        p.cron = "* * * * * *";
        p.payload = "c";
        co_await s.s.add(p);
    }());
    ASSERT_TRUE(run_until(io, [&] { return at.size() >= 2; }, 10s));
    EXPECT_GE(at[1] - at[0], 500); // one per second, not a burst
    EXPECT_LT(at[0] % 1000, 600);  // close after a whole second
}

TEST(QueueScheduler, BadDefinitionsAreRefused) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    scheduler s(rc.client, "q");
    run_task(io, [&]() -> asio::awaitable<void> {
        std::vector<std::string> messages;
        periodic_job bad_cron;
        bad_cron.name = "x";
        bad_cron.cron = "5 70 * * *";
        periodic_job both = every("y", 100ms, "");
        both.cron = "* * * * *";
        periodic_job neither;
        neither.name = "z";
        for (auto* p : {&bad_cron, &both, &neither}) {
            try {
                co_await s.add(*p);
                messages.push_back("accepted");
            } catch (const boost::system::system_error& e) {
                EXPECT_EQ(e.code(), akv::error::invalid_config);
                messages.push_back(e.what());
            }
        }
        EXPECT_NE(messages[0].find("hour"), std::string::npos) << messages[0];
        EXPECT_NE(messages[1].find("not both"), std::string::npos) << messages[1];
        EXPECT_NE(messages[2].find("\"z\""), std::string::npos) << messages[2];
        EXPECT_TRUE((co_await s.names()).empty());
    }());
}

TEST(QueueScheduler, PromotesDelayedJobsOnTimeWithoutWorkers) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    running_scheduler s(io, rc.client, "q");
    producer p(rc.client, "q");
    admin a(rc.client, "q");
    run_task(io, [&]() -> asio::awaitable<void> {
        job_options o;
        o.delay = 300ms;
        co_await p.enqueue("d", o);
        EXPECT_EQ((co_await a.counts()).delayed, 1u);
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return (co_await a.counts()).waiting == 1;
        }, 5s));
        EXPECT_EQ((co_await a.counts()).delayed, 0u);
    }());
    EXPECT_EQ(s.s.promoted(), 1u);
}
