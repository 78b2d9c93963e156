// A partitioned queue (akv/queue/partitioned.hpp) over the three masters of a six-node Redis
// Cluster, one partition per master, with 100,000 jobs; one master is SIGKILLed while a worker
// processes them. Its replica takes over, the worker goes on with the other partitions
// meanwhile, and every job completes at least once (a completion whose ack was not yet
// replicated runs again: duplicates are counted).
#include "support/running_client.hpp"
#include "support/side_thread.hpp"

#include <akv/cluster_slot.hpp>
#include <akv/queue/partitioned.hpp>
#include <akv/testing/embedded_cluster.hpp>

#include <gtest/gtest.h>

#include <map>
#include <set>

using namespace akv::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;

TEST(ClusterQueueFaults, PartitionedQueueOverAMasterFailoverCompletesEveryJob) {
    akv::testing::embedded_cluster_options options;
    options.append_only = true;
    akv::testing::embedded_cluster cluster(options);
    const auto started = std::chrono::steady_clock::now();

    asio::io_context io;
    running_client rc(io, cluster.config());
    constexpr int jobs = 100000;
    constexpr int chunk = 5000;
    akv::queue::partitioning three;
    three.partitions = 3;
    std::vector<std::string> partitions;
    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            akv::queue::partitioned_producer p(rc.client, "jobs", three);
            for (int at = 0; at < jobs; at += chunk) {
                std::vector<akv::queue::partitioned_job> batch;
                for (int i = at; i < at + chunk; ++i)
                    batch.push_back({std::to_string(i), {}, {}});
                co_await p.enqueue_bulk(batch);
            }
            partitions = p.partitions();
        }(),
        120s);
    // One partition per master.
    std::set<std::size_t> masters;
    for (const auto& name : partitions)
        masters.insert(cluster.master_of(akv::cluster_slot(name)));
    ASSERT_EQ(masters.size(), 3u) << "the partitions share a master";
    std::string doomed; // the partition on master 0
    for (const auto& name : partitions)
        if (cluster.master_of(akv::cluster_slot(name)) == 0) doomed = name;
    const auto enqueued = std::chrono::steady_clock::now();

    // Every replica has every job before its master dies (replication is asynchronous: a job
    // enqueued but not yet replicated may be lost with the master, which is Redis's contract).
    const auto repl_offset = [&](std::size_t node) {
        const std::string info = cluster.command(node, {"INFO", "replication"});
        const auto at = info.find("master_repl_offset:");
        return at == std::string::npos ? -1LL : std::stoll(info.substr(at + 19));
    };
    for (std::size_t m = 0; m < 3; ++m) {
        const std::size_t replica = cluster.replicas_of(m).at(0);
        const long long written = repl_offset(m);
        ASSERT_TRUE(run_until(
            io, [&] { return repl_offset(replica) >= written; }, 20s))
            << "replica of master " << m << " at " << repl_offset(replica) << " of " << written;
    }

    std::vector<int> runs(jobs); // payload -> times its handler ran to completion
    int distinct = 0;
    std::map<std::string, int> per_partition; // runs
    int doomed_total = 0;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::queue::admin a(rc.client, doomed);
        doomed_total = static_cast<int>((co_await a.counts()).waiting);
    }());
    akv::queue::worker_options wo;
    wo.concurrency = 64;
    wo.lease_time = 2000ms;
    akv::queue::partitioned_worker w(
        rc.client, "jobs",
        [&](akv::queue::job_context& ctx) -> asio::awaitable<std::string> {
            if (runs[std::stoi(ctx.job().payload)]++ == 0) ++distinct;
            ++per_partition[ctx.job().queue];
            co_return "ok";
        },
        wo, three);
    bool worker_done = false;
    asio::co_spawn(io, w.run(), [&](std::exception_ptr e) {
        EXPECT_FALSE(e);
        worker_done = true;
    });
    ASSERT_TRUE(run_until(
        io, [&] { return distinct > jobs / 3; }, 60s));

    const int before = distinct;
    const int doomed_before = per_partition[doomed];
    EXPECT_LT(doomed_before, doomed_total) << "master 0's partition was done before the kill";
    std::size_t promoted = 0;
    side_thread failover([&] { promoted = cluster.kill_master_and_wait_failover(0); });
    ASSERT_TRUE(run_until(
        io, [&] { return failover.done.load(); }, 60s));
    ASSERT_TRUE(failover.failure.empty()) << failover.failure;
    const int during = distinct - before;
    EXPECT_GT(during, 0) << "the other partitions waited for the failover";
    ASSERT_TRUE(run_until(
        io, [&] { return distinct == jobs; }, 120s))
        << distinct << " of " << jobs << " jobs ran after the failover to node " << promoted;

    // Nothing left waiting or running in any partition.
    akv::queue::partitioned_counts counts;
    ASSERT_TRUE(run_until(
        io,
        [&] {
            run_task(io, [&]() -> asio::awaitable<void> {
                akv::queue::partitioned_admin a(rc.client, "jobs");
                counts = co_await a.counts();
            }());
            return counts.total.waiting == 0 && counts.total.active == 0 &&
                   counts.total.delayed == 0;
        },
        30s))
        << "waiting " << counts.total.waiting << ", active " << counts.total.active;
    EXPECT_EQ(counts.total.failed, 0u);
    w.stop();
    ASSERT_TRUE(run_until(
        io, [&] { return worker_done; }, 30s));
    int duplicates = 0;
    for (int times : runs)
        duplicates += times - 1;
    const auto seconds = [](auto from, auto to) {
        return std::chrono::duration<double>(to - from).count();
    };
    std::printf("partitioned queue across a cluster failover: %d jobs over %zu partitions, all "
                "completed, %d ran twice or more (acks not yet replicated), %d completed while "
                "master 0 was failed over (its partition: %d of %d done at the kill); enqueued "
                "in %.1f s, the whole test %.1f s\n",
                jobs, partitions.size(), duplicates, during, doomed_before, doomed_total,
                seconds(started, enqueued), seconds(started, std::chrono::steady_clock::now()));
}
