// Fair groups (job_options::group): round robin across groups, per-group concurrency and rate
// limits, and the group's count kept right when a job goes back (handed back, recovered).
// Fairness is checked in jobs, not seconds: how many jobs had completed when the small groups'
// last one did, against what the small groups are alone.
#include "support/eventually.hpp"
#include "support/running_client.hpp"
#include "support/running_queue.hpp"

#include <akv/queue/admin.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

using namespace akv::test;
using namespace akv::queue;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

job_options in_group(std::string g) {
    job_options o;
    o.group = std::move(g);
    return o;
}

// Adds `n` jobs of group `g`, payload "<g>", in bulk.
asio::awaitable<void> add(producer& p, const std::string& g, std::size_t n) {
    std::vector<new_job> jobs(n, new_job{g, in_group(g)});
    for (std::size_t at = 0; at < n; at += 5000) {
        const auto end = std::min(n, at + 5000);
        co_await p.enqueue_bulk(std::span<const new_job>(jobs.data() + at, end - at));
    }
}

const group_info* find(const std::vector<group_info>& gs, const std::string& name) {
    for (const auto& g : gs)
        if (g.name == name) return &g;
    return nullptr;
}

// Holds handlers until opened: a handler waits on it (a timer that never fires by itself).
struct gate {
    explicit gate(asio::io_context& io)
        : timer(io, asio::steady_timer::time_point::max()) {}
    asio::awaitable<void> pass() {
        if (open) co_return;
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    void release() {
        open = true;
        timer.cancel();
    }
    asio::steady_timer timer;
    bool open = false;
};

// A server, a client, and a producer and an admin of queue "q".
class QueueGroups : public ::testing::Test {
protected:
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc{io, server.config()};
    producer p{rc.client, "q"};
    admin a{rc.client, "q"};
};

} // namespace

TEST_F(QueueGroups, WorkersTakeOneGroupsJobAfterAnothers) {
    std::vector<std::string> order;
    run_task(io, [&]() -> asio::awaitable<void> {
        // a's five first, then b's, then c's: served a, b, c, a, b, c, ...
        for (const char* g : {"a", "b", "c"})
            co_await add(p, g, 5);
        const auto c = co_await a.counts();
        EXPECT_EQ(c.waiting, 15u);
        EXPECT_EQ(c.groups, 3u);
    }());
    worker_options one; // claims of up to 5 jobs: one from each group in turn, not five of a's
    one.concurrency = 1;
    one.prefetch = 4;
    running_worker w(
        io, rc.client, "q",
        [&](job_context& ctx) -> asio::awaitable<std::string> {
            order.push_back(ctx.job().payload);
            co_return "";
        },
        one);
    EXPECT_TRUE(run_until(
        io, [&] { return order.size() == 15; }, 10s));
    std::string seen;
    for (const auto& g : order)
        seen += g;
    EXPECT_EQ(seen, "abcabcabcabcabc");
}

TEST_F(QueueGroups, ABurstInOneGroupDoesNotStarveTheOthers) {
    constexpr std::size_t big = 100'000, small = 100, smalls = 9;
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await add(p, "big", big); // first: the burst is ahead of every small group's job
        for (std::size_t i = 0; i < smalls; ++i)
            co_await add(p, "small" + std::to_string(i), small);
    }());
    std::size_t done = 0, small_done = 0, done_at_last_small = 0;
    worker_options o;
    o.concurrency = 16;
    running_worker w(
        io, rc.client, "q",
        [&](job_context& ctx) -> asio::awaitable<std::string> {
            ++done;
            if (ctx.job().payload != "big" && ++small_done == small * smalls)
                done_at_last_small = done;
            co_return "";
        },
        o);
    EXPECT_TRUE(run_until(
        io, [&] { return done == big + small * smalls; }, 120s));
    EXPECT_EQ(small_done, small * smalls);
    // Alone, the small groups are 900 jobs; beside the burst, round robin gives the big group
    // one turn in ten, so about 1,000 (plus what a batch claims ahead). At most twice alone:
    RecordProperty("jobs_done_when_the_small_groups_were", static_cast<int>(done_at_last_small));
    EXPECT_GT(done_at_last_small, 0u);
    EXPECT_LE(done_at_last_small, 2 * small * smalls);
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto c = co_await a.counts();
        EXPECT_EQ(c.waiting, 0u);
        EXPECT_EQ(c.active, 0u);
        EXPECT_EQ(c.groups, 0u);
    }());
}

TEST_F(QueueGroups, AGroupRunsNoMoreThanItsConcurrencyOverEveryWorker) {
    run_task(io, [&]() -> asio::awaitable<void> {
        group_limits two;
        two.concurrency = 2;
        co_await a.set_group_limits("held", two);
        co_await add(p, "held", 10);
        co_await add(p, "free", 20);
    }());
    gate g(io);
    std::map<std::string, std::size_t> running, most, completed;
    auto handler = [&](job_context& ctx) -> asio::awaitable<std::string> {
        const std::string group = ctx.job().options.group;
        most[group] = std::max(most[group], ++running[group]);
        if (group == "held") co_await g.pass();
        --running[group];
        ++completed[group];
        co_return "";
    };
    worker_options o;
    o.concurrency = 8;
    running_worker w1(io, rc.client, "q", handler, o);
    running_worker w2(io, rc.client, "q", handler, o);
    // Every free job done while two held jobs wait at the gate: the other eight are held back.
    EXPECT_TRUE(run_until(
        io, [&] { return completed["free"] == 20 && running["held"] == 2; }, 10s));
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto gs = co_await a.groups();
        const group_info* held = find(gs, "held");
        if (!held) {
            ADD_FAILURE() << "group held not listed";
            co_return;
        }
        EXPECT_EQ(held->active, 2u);
        EXPECT_EQ(held->waiting, 8u);
        EXPECT_EQ(held->state, group_state::at_concurrency);
        EXPECT_EQ(held->limits.concurrency, 2u);
        EXPECT_TRUE(held->own_limits);
        EXPECT_EQ((co_await a.counts()).waiting, 8u);
    }());
    EXPECT_EQ(running["held"], 2u);
    g.release();
    EXPECT_TRUE(run_until(
        io, [&] { return completed["held"] == 10; }, 10s));
    EXPECT_EQ(most["held"], 2u);
}

TEST_F(QueueGroups, ARateLimitedGroupWaitsWhileOthersRunAndResumesWhenLifted) {
    run_task(io, [&]() -> asio::awaitable<void> {
        group_limits slow; // 5 per minute: the window does not end within the test
        slow.rate_max = 5;
        slow.rate_window = 60s;
        co_await a.set_group_limits("", slow); // every group's default...
        group_limits none;
        co_await a.set_group_limits("free", none); // ...but this one's own: no limit
        co_await add(p, "slow", 20);
        co_await add(p, "free", 20);
    }());
    std::map<std::string, std::size_t> completed;
    running_worker w(io, rc.client, "q", [&](job_context& ctx) -> asio::awaitable<std::string> {
        ++completed[ctx.job().options.group];
        co_return "";
    });
    EXPECT_TRUE(run_until(
        io, [&] { return completed["free"] == 20 && completed["slow"] == 5; }, 10s));
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto gs = co_await a.groups();
        const group_info* slow = find(gs, "slow");
        if (!slow) {
            ADD_FAILURE() << "group slow not listed";
            co_return;
        }
        EXPECT_EQ(slow->state, group_state::rate_limited);
        EXPECT_EQ(slow->waiting, 15u);
        EXPECT_EQ(slow->limits.rate_max, 5u);
        EXPECT_FALSE(slow->own_limits);
        // The default lifted: the held group is served at once, not at the window's end.
        co_await a.set_group_limits("", group_limits{});
    }());
    EXPECT_TRUE(run_until(
        io, [&] { return completed["slow"] == 20; }, 10s));
}

TEST_F(QueueGroups, AJobHandedBackOrRecoveredFreesItsGroupsSlot) {
    run_task(io, [&]() -> asio::awaitable<void> {
        group_limits one;
        one.concurrency = 1;
        co_await a.set_group_limits("", one);
        co_await add(p, "g", 3);
    }());
    std::size_t started = 0, completed = 0;
    {
        // A worker that leaves while its handler is stuck: the job goes back, not failed.
        worker_options quick;
        quick.shutdown_grace = 50ms;
        running_worker leaving(
            io, rc.client, "q",
            [&](job_context&) -> asio::awaitable<std::string> {
                ++started;
                // Throws when the worker's stop cancels it at the grace.
                asio::steady_timer never(io, asio::steady_timer::time_point::max());
                co_await never.async_wait(asio::use_awaitable);
                co_return "";
            },
            quick);
        EXPECT_TRUE(run_until(
            io, [&] { return started == 1; }, 10s));
    }
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto gs = co_await a.groups();
        const group_info* g = find(gs, "g");
        if (!g) {
            ADD_FAILURE() << "group g not listed";
            co_return;
        }
        EXPECT_EQ(g->active, 0u);
        EXPECT_EQ(g->waiting, 3u);
        EXPECT_EQ(g->state, group_state::ready);
        // A worker that died holding a job of g (its lease already expired): recovery puts the
        // job back and frees the group's one slot.
        akv::request claim;
        claim.push("RPOP", "akvq:{q}:g:g");
        claim.push("ZADD", "akvq:{q}:active", 1, "1@dead");
        claim.push("HINCRBY", "akvq:{q}:groups:active", "g", 1);
        akv::response<std::string, long long, long long> r;
        co_await rc.client.exec(claim, r);
        EXPECT_EQ(std::get<0>(r).value(), "1");
        const auto [recovered, failed] = co_await a.recover_stalled();
        EXPECT_EQ(recovered, 1u);
        EXPECT_EQ(failed, 0u);
        const auto after = co_await a.groups();
        const group_info* g2 = find(after, "g");
        if (!g2) {
            ADD_FAILURE() << "group g not listed after recovery";
            co_return;
        }
        EXPECT_EQ(g2->active, 0u);
        EXPECT_EQ(g2->waiting, 3u);
    }());
    running_worker w(io, rc.client, "q", [&](job_context&) -> asio::awaitable<std::string> {
        ++completed;
        co_return "";
    });
    EXPECT_TRUE(run_until(
        io, [&] { return completed == 3; }, 10s));
}

TEST_F(QueueGroups, AWaitingGroupedJobIsListedRemovedAndCancelledLikeAnyOther) {
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::string first = co_await p.enqueue("one", in_group("t"));
        const std::string second = co_await p.enqueue("two", in_group("t"));
        auto delayed_opts = in_group("t");
        delayed_opts.delay = 1h;
        co_await p.enqueue("later", delayed_opts);
        const std::string plain = co_await p.enqueue("plain");
        // Listed in claim order: ungrouped first, then each group's.
        const std::vector<std::string> all{plain, first, second}, last{second};
        const auto listed = co_await a.list(job_state::waiting, 0, 10);
        EXPECT_EQ(listed, all);
        const auto from_two = co_await a.list(job_state::waiting, 2, 10);
        EXPECT_EQ(from_two, last);
        co_await a.remove(plain);
        auto info = co_await a.get(first);
        EXPECT_EQ(info.state, job_state::waiting);
        if (!info.job) {
            ADD_FAILURE() << "no record";
            co_return;
        }
        EXPECT_EQ(info.job->options.group, "t");
        co_await a.remove(first);
        EXPECT_EQ((co_await a.get(first)).state, job_state::unknown);
        EXPECT_EQ((co_await a.cancel(second, "no")), cancel_outcome::cancelled);
        const auto c = co_await a.counts();
        EXPECT_EQ(c.waiting, 0u);
        EXPECT_EQ(c.delayed, 1u);
        EXPECT_EQ(c.failed, 1u);
        // Obliterate takes the groups' own keys too.
        group_limits l;
        l.concurrency = 3;
        co_await a.set_group_limits("t", l);
        co_await p.enqueue("three", in_group("t"));
        co_await a.obliterate();
        akv::request scan;
        scan.push("KEYS", "akvq:{q}:*");
        akv::response<std::vector<std::string>> keys;
        co_await rc.client.exec(scan, keys);
        EXPECT_EQ(std::get<0>(keys).value(), std::vector<std::string>{});
    }());
}

TEST_F(QueueGroups, BadGroupInputIsRefusedAndChangesNothing) {
    run_task(io, [&]() -> asio::awaitable<void> {
        auto o = in_group("a b");
        bool refused = false;
        try {
            co_await p.enqueue("x", o);
        } catch (const boost::system::system_error& e) {
            refused = e.code() == akv::make_error_code(akv::error::invalid_config);
        }
        EXPECT_TRUE(refused);
        group_limits bad;
        bad.rate_max = 3;
        bad.rate_window = 0ms;
        refused = false;
        try {
            co_await a.set_group_limits("g", bad);
        } catch (const boost::system::system_error& e) {
            refused = e.code() == akv::make_error_code(akv::error::invalid_config) &&
                      std::string(e.what()).find("rate_window") != std::string::npos;
        }
        EXPECT_TRUE(refused);
        EXPECT_FALSE(co_await a.exists());
    }());
}
