// Task queues on a six-node Redis Cluster through one client: each queue's keys share its
// hash tag, so every Lua state move runs on the node serving that queue's slot.
#include "support/eventually.hpp"
#include "support/running_client.hpp"
#include "support/running_queue.hpp"

#include <akv/cluster_slot.hpp>
#include <akv/messaging/subscriber.hpp>
#include <akv/queue/admin.hpp>
#include <akv/queue/flow.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/scheduler.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_cluster.hpp>

#include <map>
#include <set>

using namespace akv::test;
using namespace akv::queue;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {
// A queue name per master: its keys ("akvq:{name}:...") hash to that master's slots.
std::vector<std::string> queue_per_master(const akv::testing::embedded_cluster& cluster) {
    std::vector<std::string> out;
    for (std::size_t m = 0; m < 3; ++m)
        for (std::size_t i = 0;; ++i) {
            std::string name = "jobs" + std::to_string(i);
            if (cluster.master_of(akv::cluster_slot(name)) == m) {
                out.push_back(name);
                break;
            }
        }
    return out;
}
} // namespace

TEST(QueueCluster, QueuesOnEveryMasterProcessResultsAndSchedule) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    akv::messaging::subscriber hub(rc.client);
    const auto queues = queue_per_master(cluster);
    std::map<std::string, std::set<std::string>> seen;
    std::vector<std::unique_ptr<worker>> workers;
    std::vector<std::unique_ptr<scheduler>> schedulers;
    int finished = 0;
    for (const auto& q : queues) {
        workers.push_back(std::make_unique<worker>(
            rc.client, q,
            [&seen, q](job_context& ctx) -> asio::awaitable<std::string> {
                seen[q].insert(ctx.job().payload);
                co_return "done:" + ctx.job().payload;
            },
            worker_options{}, &hub));
        asio::co_spawn(io, workers.back()->run(), [&](std::exception_ptr e) {
            EXPECT_FALSE(e);
            ++finished;
        });
        schedulers.push_back(std::make_unique<scheduler>(rc.client, q));
        asio::co_spawn(io, schedulers.back()->run(), [&](std::exception_ptr e) {
            EXPECT_FALSE(e);
            ++finished;
        });
    }
    run_task(io, [&]() -> asio::awaitable<void> {
        for (const auto& q : queues) {
            producer p(rc.client, q, &hub);
            std::vector<new_job> jobs(200);
            for (std::size_t i = 0; i < jobs.size(); ++i) jobs[i].payload = std::to_string(i);
            jobs[7].options.delay = 200ms;
            jobs[8].options.priority = 5;
            auto ids = co_await p.enqueue_bulk(jobs);
            auto r = co_await p.result(ids[7], 10s); // the delayed one
            EXPECT_EQ(r.value, "done:7");
            periodic_job tick;
            tick.name = "tick";
            tick.every = 100ms;
            tick.payload = "tick";
            co_await schedulers.front()->add(tick); // any scheduler object of the queue's client
            break;
        }
    }());
    run_task(io, [&]() -> asio::awaitable<void> {
        for (std::size_t i = 1; i < queues.size(); ++i) {
            producer p(rc.client, queues[i], &hub);
            std::vector<new_job> jobs(200);
            for (std::size_t k = 0; k < jobs.size(); ++k) jobs[k].payload = std::to_string(k);
            co_await p.enqueue_bulk(jobs);
        }
    }());
    ASSERT_TRUE(run_until(io, [&] {
        for (const auto& q : queues)
            if (seen[q].size() < 200) return false;
        return seen[queues[0]].count("tick") == 1;
    }, 30s));
    run_task(io, [&]() -> asio::awaitable<void> {
        for (const auto& q : queues) {
            admin a(rc.client, q);
            EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
                auto c = co_await a.counts();
                co_return c.total_completed >= 200 && c.active == 0;
            }));
            const auto c = co_await a.counts();
            EXPECT_EQ(c.failed, 0u) << q;
        }
    }());
    EXPECT_EQ(rc.client.stats().cluster.refusals, 0u);
    for (auto& w : workers) w->stop();
    for (auto& s : schedulers) s->stop();
    EXPECT_TRUE(run_until(io, [&] { return finished == 6; }, 20s));
}

// A flow whose parent and children live on different masters: each child's end reaches its
// parent through its own queue's outbox, applied in the parent's slot on another node.
TEST(QueueCluster, FlowAcrossMastersRunsTheParentOnceWithEveryResult) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    akv::messaging::subscriber hub(rc.client);
    const auto queues = queue_per_master(cluster); // parent on master 0, children elsewhere
    std::map<std::string, int> runs;
    handler h = [&runs](job_context& ctx) -> asio::awaitable<std::string> {
        ++runs[ctx.job().payload];
        std::string out = ctx.job().payload;
        if (ctx.job().children > 0) {
            out += "(";
            for (const auto& c : co_await ctx.children_results())
                out += (out.back() == '(' ? "" : ",") + (c.result ? c.result->value : "?");
            out += ")";
        }
        co_return out;
    };
    std::vector<std::unique_ptr<running_worker>> workers;
    for (const auto& q : queues)
        workers.push_back(
            std::make_unique<running_worker>(io, rc.client, q, h, worker_options{}, &hub));
    auto job_in = [&](std::size_t master, std::string payload) {
        flow_job j;
        j.queue = queues[master];
        j.payload = std::move(payload);
        return j;
    };
    flow_job mid = job_in(2, "mid");
    mid.children = {job_in(0, "x"), job_in(1, "y")};
    flow_job root = job_in(0, "root");
    root.children = {job_in(1, "a"), mid, job_in(2, "b")};
    flow_producer flows(rc.client, &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        const flow_ids ids = co_await flows.add(root);
        EXPECT_EQ((co_await flows.result(ids, 20s)).value, "root(a,mid(x,y),b)");
        std::vector<flow_job> members{job_in(1, "g1"), job_in(2, "g2")};
        const flow_job collector = group(queues[0], members);
        const flow_ids g = co_await flows.add(collector);
        const auto results = co_await flows.group_results(g, 20s);
        EXPECT_EQ(results.size(), 2u);
        if (results.size() == 2u) {
            EXPECT_EQ(results[0].result->value, "g1");
            EXPECT_EQ(results[1].result->value, "g2");
        }
        for (const auto& q : queues) {
            admin a(rc.client, q);
            EXPECT_EQ((co_await a.counts()).waiting_children, 0u) << q;
        }
    }());
    for (const char* p : {"root", "mid", "a", "b", "x", "y", "g1", "g2"})
        EXPECT_EQ(runs[p], 1) << p;
    EXPECT_EQ(rc.client.stats().cluster.refusals, 0u);
}
