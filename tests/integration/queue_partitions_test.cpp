// Partitioned queues (akv/queue/partitioned.hpp) against a real server: placement, the stored
// count, adding partitions under load, the admin's fan-out and the worker's one budget.
#include "support/errors.hpp"
#include "support/eventually.hpp"
#include "support/running_client.hpp"
#include "support/running_queue.hpp"

#include <akv/messaging/subscriber.hpp>
#include <akv/queue/partitioned.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>

#include <map>
#include <set>

using namespace akv::test;
using namespace akv::queue;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

using running_partitioned = running<partitioned_worker>;

// A config with room for one blocked BZPOPMIN per partition of an idle worker, and more.
akv::config roomy(akv::config cfg) {
    cfg.pool_size = 16;
    return cfg;
}

partitioning with(std::size_t n) {
    partitioning p;
    p.partitions = n;
    p.refresh = 50ms;
    return p;
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

std::size_t index_of(const std::string& id) {
    return parse_partitioned_id(id).value().partition;
}

// The names of n partitions of `queue` on one server.
std::vector<std::string> plain_names(const std::string& queue, int n) {
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i)
        names.push_back(queue + "~" + std::to_string(i));
    return names;
}

} // namespace

TEST(QueuePartitions, JobsOfOneKeyGoToOnePartitionAndRunInOrder) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, roomy(server.config()));
    partitioned_producer p(rc.client, "orders", with(3));
    constexpr int keys = 12, per_key = 40;
    std::map<std::string, std::set<std::size_t>> partitions_of; // key -> partitions used
    run_task(io, [&]() -> asio::awaitable<void> {
        const job_options none;
        std::vector<partitioned_job> bulk;
        for (int n = 0; n < per_key; ++n)
            for (int k = 0; k < keys; ++k) {
                const std::string key = "customer-" + std::to_string(k);
                const std::string payload = key + " " + std::to_string(n);
                if (n < per_key / 2) { // alone, then in bulks
                    const std::string id = co_await p.enqueue(payload, none, key);
                    partitions_of[key].insert(index_of(id));
                } else {
                    bulk.push_back({payload, {}, key});
                }
                if (bulk.size() == 50 || (n + 1 == per_key && k + 1 == keys)) {
                    const std::vector<std::string> ids = co_await p.enqueue_bulk(bulk);
                    for (std::size_t i = 0; i < ids.size(); ++i)
                        partitions_of[bulk[i].key].insert(index_of(ids[i]));
                    bulk.clear();
                }
            }
    }());
    std::set<std::size_t> used;
    for (const auto& [key, parts] : partitions_of) {
        EXPECT_EQ(parts.size(), 1u) << key;
        EXPECT_EQ(*parts.begin(), partition_for_key(key, 3)) << key;
        used.insert(*parts.begin());
    }
    EXPECT_EQ(used.size(), 3u); // 12 keys over 3 partitions: each got some

    std::map<std::string, std::vector<int>> seen; // key -> its sequence numbers as run
    std::size_t done = 0;
    worker_options o;
    o.concurrency = 8;
    running_partitioned w(
        io, rc.client, "orders",
        [&](job_context& ctx) -> asio::awaitable<std::string> {
            const std::string& text = ctx.job().payload;
            const auto space = text.find(' ');
            seen[text.substr(0, space)].push_back(std::stoi(text.substr(space + 1)));
            ++done;
            co_return "ok";
        },
        o, with(3));
    ASSERT_TRUE(run_until(
        io, [&] { return done >= keys * per_key; }, 20s))
        << done;
    for (const auto& [key, order] : seen) {
        ASSERT_EQ(order.size(), std::size_t(per_key)) << key;
        for (int n = 0; n < per_key; ++n)
            EXPECT_EQ(order[n], n) << key;
    }
}

TEST(QueuePartitions, RoundRobinSpreadsJobsEvenlyAndUniqueKeysHoldAcrossPartitions) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, roomy(server.config()));
    partitioned_producer p(rc.client, "mail", with(3));
    partitioned_admin a(rc.client, "mail");
    run_task(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 30; ++i)
            co_await p.enqueue("single");
        std::vector<partitioned_job> bulk(270, partitioned_job{"bulk", {}, {}});
        co_await p.enqueue_bulk(bulk);
        const partitioned_counts c = co_await a.counts();
        EXPECT_EQ(c.total.waiting, 300u);
        EXPECT_EQ(c.partitions.size(), 3u);
        for (const auto& part : c.partitions)
            EXPECT_EQ(part.counts.waiting, 100u) << part.name;
        // A unique key places its job: a second one finds the first wherever it is.
        job_options unique;
        unique.unique_key = "nightly-report";
        const std::string first = co_await p.enqueue("a", unique);
        const std::string second = co_await p.enqueue("b", unique);
        EXPECT_EQ(first, second);
        EXPECT_EQ(index_of(first), partition_for_key("nightly-report", 3));
    }());
}

TEST(QueuePartitions, ACountThatDisagreesWithTheStoredOneIsRefusedAndChangesNothing) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, roomy(server.config()));
    run_task(io, [&]() -> asio::awaitable<void> {
        partitioned_producer p(rc.client, "q", with(3));
        co_await p.enqueue("one");
        partitioned_admin a(rc.client, "q");
        const std::vector<std::string> names = co_await a.partitions();
        EXPECT_EQ(names, plain_names("q", 3));

        partitioned_producer four(rc.client, "q", with(4));
        auto e = co_await error_of([&]() -> asio::awaitable<void> { co_await four.enqueue("x"); });
        EXPECT_EQ(e.code(), akv::error::partition_mismatch);
        EXPECT_TRUE(contains(e.what(), "opened with 4 partitions, but it has 3")) << e.what();
        partitioned_worker two(
            rc.client, "q", [](job_context&) -> asio::awaitable<std::string> { co_return ""; }, {},
            with(2));
        e = co_await error_of([&]() -> asio::awaitable<void> { co_await two.run(); });
        EXPECT_EQ(e.code(), akv::error::partition_mismatch);
        EXPECT_TRUE(contains(e.what(), "opened with 2 partitions, but it has 3")) << e.what();
        e = co_await error_of([&]() -> asio::awaitable<void> { co_await a.open(5); });
        EXPECT_EQ(e.code(), akv::error::partition_mismatch);

        EXPECT_EQ(co_await a.partitions(), names);
        const partitioned_counts c = co_await a.counts();
        EXPECT_EQ(c.total.waiting, 1u);
        EXPECT_EQ(c.total.workers, 0u);

        // 0 follows the stored count; a queue without one is unknown.
        partitioned_producer follows(rc.client, "q", with(0));
        co_await follows.open();
        EXPECT_EQ(follows.partitions(), names);
        partitioned_producer none(rc.client, "nothing", with(0));
        e = co_await error_of([&]() -> asio::awaitable<void> { co_await none.enqueue("x"); });
        EXPECT_EQ(e.code(), akv::error::unknown_queue);
        partitioned_admin nothing(rc.client, "nothing");
        EXPECT_FALSE(co_await nothing.exists());

        // A plain queue's name is not taken over.
        producer plain(rc.client, "plain");
        co_await plain.enqueue("x");
        partitioned_producer over(rc.client, "plain", with(2));
        e = co_await error_of([&]() -> asio::awaitable<void> { co_await over.enqueue("y"); });
        EXPECT_EQ(e.code(), akv::error::invalid_config);
        EXPECT_TRUE(contains(e.what(), "plain queue")) << e.what();
        partitioned_admin plain_admin(rc.client, "plain");
        EXPECT_FALSE(co_await plain_admin.exists());
    }());
}

TEST(QueuePartitions, PartitionsAddedUnderLoadLoseNoJob) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, roomy(server.config()));
    std::map<std::string, int> runs; // payload -> runs
    std::map<std::string, int> per_partition;
    worker_options o;
    o.concurrency = 16;
    running_partitioned w(
        io, rc.client, "grow",
        [&](job_context& ctx) -> asio::awaitable<std::string> {
            ++runs[ctx.job().payload];
            ++per_partition[ctx.job().queue];
            co_await sleep_for(1ms);
            co_return "ok";
        },
        o, with(2));
    constexpr int jobs = 4000;
    run_task(io, [&]() -> asio::awaitable<void> {
        partitioned_producer p(rc.client, "grow", with(2));
        partitioned_admin a(rc.client, "grow");
        for (int at = 0; at < jobs; at += 100) {
            std::vector<partitioned_job> bulk;
            for (int i = at; i < at + 100; ++i)
                bulk.push_back(
                    {std::to_string(i), {}, (i % 3 == 0) ? "k" + std::to_string(i) : ""});
            co_await p.enqueue_bulk(bulk);
            if (at == jobs / 4) {
                const auto names = co_await a.add_partitions(2);
                EXPECT_EQ(names.size(), 4u);
            }
            co_await sleep_for(5ms);
        }
        EXPECT_EQ(p.partitions().size(), 4u);
    }());
    ASSERT_TRUE(run_until(
        io, [&] { return runs.size() == std::size_t(jobs); }, 30s))
        << runs.size() << " of " << jobs;
    for (const auto& [payload, n] : runs)
        EXPECT_EQ(n, 1) << payload;
    EXPECT_EQ(w.runner.partitions().size(), 4u);
    EXPECT_EQ(per_partition.size(), 4u); // the new partitions got jobs, and they ran
    run_task(io, [&]() -> asio::awaitable<void> {
        partitioned_admin a(rc.client, "grow");
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            const partitioned_counts c = co_await a.counts();
            co_return c.total.total_completed == std::uint64_t(jobs) && c.total.waiting == 0;
        }));
    }());
}

TEST(QueuePartitions, TheAdminFansOutAndFindsJobsByTheirIds) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, roomy(server.config()));
    akv::messaging::subscriber hub(rc.client);
    partitioned_producer p(rc.client, "ops", with(3), &hub);
    partitioned_admin a(rc.client, "ops");
    std::vector<std::string> ids;
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await a.open(3);
        co_await a.pause();
        EXPECT_TRUE((co_await a.counts()).total.paused);
        for (int i = 0; i < 9; ++i) {
            const std::string payload = "job" + std::to_string(i);
            ids.push_back(co_await p.enqueue(payload));
        }
        co_await a.set_rate_limit(10, 1s);
    }());
    // Paused: a worker claims nothing.
    std::map<std::string, int> seen;
    worker_options o;
    o.concurrency = 4;
    running_partitioned w(
        io, rc.client, "ops",
        [&](job_context& ctx) -> asio::awaitable<std::string> {
            ++seen[ctx.job().payload];
            if (ctx.job().payload == "job4") throw std::runtime_error("no");
            co_return "done " + ctx.job().payload;
        },
        o, with(3), &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await sleep_for(300ms);
        EXPECT_TRUE(seen.empty());
        const partitioned_counts c = co_await a.counts();
        EXPECT_EQ(c.total.waiting, 9u);
        for (const auto& part : c.partitions) {
            EXPECT_TRUE(part.counts.paused) << part.name;
            EXPECT_EQ(part.counts.waiting, 3u) << part.name;
        }
        EXPECT_EQ(c.total.workers, 1u); // one worker, registered in every partition
        const std::vector<worker_info> workers = co_await a.workers();
        EXPECT_EQ(workers.size(), 1u);
        if (!workers.empty()) EXPECT_EQ(workers[0].token, w.runner.token());
        // The rate limit is split: 4 + 3 + 3.
        akv::request req;
        for (const auto& name : co_await a.partitions())
            req.push("HGET", queue_keys(name).meta, "rate_max");
        akv::response<std::string, std::string, std::string> rates;
        co_await rc.client.exec(req, rates);
        EXPECT_EQ(std::get<0>(rates).value(), "4");
        EXPECT_EQ(std::get<1>(rates).value(), "3");
        EXPECT_EQ(std::get<2>(rates).value(), "3");
        co_await a.set_rate_limit(0, 1s);

        // Listing and looking up by the queue's ids.
        const std::vector<std::string> waiting = co_await a.list(job_state::waiting, 0, 100);
        EXPECT_EQ(std::set<std::string>(waiting.begin(), waiting.end()),
                  std::set<std::string>(ids.begin(), ids.end()));
        EXPECT_EQ((co_await a.list(job_state::waiting, 2, 4)).size(), 4u);
        const job_info info = co_await a.get(ids[5]);
        EXPECT_EQ(info.id, ids[5]);
        EXPECT_EQ(info.state, job_state::waiting);
        EXPECT_TRUE(info.job);
        if (info.job) {
            EXPECT_EQ(info.job->payload, "job5");
            EXPECT_EQ(partition_of(info.job->queue), index_of(ids[5]));
        }
        EXPECT_EQ(co_await a.cancel(ids[7], "not needed"), cancel_outcome::cancelled);
        co_await a.remove(ids[8]);
        auto e = co_await error_of([&]() -> asio::awaitable<void> { co_await a.get("12"); });
        EXPECT_EQ(e.code(), akv::error::unknown_job);
        e = co_await error_of([&]() -> asio::awaitable<void> { co_await a.remove("7:1"); });
        EXPECT_EQ(e.code(), akv::error::unknown_job);
        EXPECT_TRUE(contains(e.what(), "3 partitions")) << e.what();

        co_await a.resume();
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            const partitioned_counts c = co_await a.counts();
            co_return c.total.completed == 6 && c.total.failed == 2 && !c.total.paused;
        }));
        const job_result r = co_await p.result(ids[3], 5s);
        EXPECT_TRUE(r.ok());
        EXPECT_EQ(r.value, "done job3");
        // The failed job runs again by its id.
        EXPECT_EQ((co_await a.get(ids[4])).state, job_state::failed);
        co_await a.retry(ids[4]);
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return seen["job4"] >= 4; // 3 attempts, then one more
        }));
        EXPECT_FALSE(co_await eventually(
            [&]() -> asio::awaitable<bool> {
                co_return seen.count("job7") + seen.count("job8") > 0;
            },
            200ms));
        const auto minutes = co_await a.metrics(2);
        std::uint64_t processed = 0;
        for (const auto& m : minutes)
            processed += m.processed;
        EXPECT_LE(processed, 6u); // sent about once a second: some may not be there yet
    }());
    w.runner.stop();
    ASSERT_TRUE(run_until(
        io, [&] { return w.finished; }, 20s));
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await a.obliterate();
        EXPECT_FALSE(co_await a.exists());
        akv::request req;
        req.push("DBSIZE");
        akv::response<long long> size;
        co_await rc.client.exec(req, size);
        EXPECT_EQ(std::get<0>(size).value(), 0); // every partition's keys, and the list
    }());
}

TEST(QueuePartitions, AddedPartitionsArePausedWithTheQueueAndShareItsRateLimit) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, roomy(server.config()));
    run_task(io, [&]() -> asio::awaitable<void> {
        partitioned_admin a(rc.client, "q");
        co_await a.open(2);
        co_await a.pause();
        co_await a.set_rate_limit(100, 1s);
        const std::vector<std::string> names = co_await a.add_partitions(2);
        EXPECT_EQ(names.size(), 4u);
        const partitioned_counts c = co_await a.counts();
        for (const auto& part : c.partitions)
            EXPECT_TRUE(part.counts.paused) << part.name;
        std::uint64_t total = 0;
        for (const auto& name : names) {
            akv::request req;
            req.push("HGET", queue_keys(name).meta, "rate_max");
            akv::response<std::string> rate;
            co_await rc.client.exec(req, rate);
            EXPECT_EQ(std::get<0>(rate).value(), "25") << name;
            total += std::stoull(std::get<0>(rate).value());
        }
        EXPECT_EQ(total, 100u);
    }());
}

TEST(QueuePartitions, OneConcurrencyBudgetServesEveryPartitionFairly) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, roomy(server.config()));
    constexpr int per_partition = 600;
    run_task(io, [&]() -> asio::awaitable<void> {
        partitioned_admin a(rc.client, "fair");
        co_await a.open(3);
        // Partitions 0 and 1 have a backlog, partition 2 nothing.
        for (const char* name : {"fair~0", "fair~1"}) {
            producer p(rc.client, name);
            std::vector<new_job> bulk(per_partition, new_job{"x", {}});
            co_await p.enqueue_bulk(bulk);
        }
    }());
    std::map<std::string, int> done;
    int now = 0, most = 0;
    worker_options o;
    o.concurrency = 6;
    o.prefetch = 2;
    running_partitioned w(
        io, rc.client, "fair",
        [&](job_context& ctx) -> asio::awaitable<std::string> {
            most = std::max(most, ++now);
            co_await sleep_for(2ms);
            --now;
            ++done[ctx.job().queue];
            co_return "";
        },
        o, with(3));
    // Halfway, each partition with jobs has had about half of the runs.
    ASSERT_TRUE(run_until(
        io, [&] { return done["fair~0"] + done["fair~1"] >= per_partition; }, 30s));
    const int first = done["fair~0"], second = done["fair~1"];
    EXPECT_NEAR(first, per_partition / 2, per_partition / 6) << first << " and " << second;
    EXPECT_NEAR(second, per_partition / 2, per_partition / 6) << first << " and " << second;
    // One budget: never more handlers than the concurrency, and the empty partition's share
    // was used by the others.
    EXPECT_EQ(most, 6);
    ASSERT_TRUE(run_until(
        io, [&] { return done["fair~0"] + done["fair~1"] == 2 * per_partition; }, 30s));
    // Once partition 0 ran dry, partition 1 had the whole budget.
    EXPECT_EQ(most, 6);
}

TEST(QueuePartitions, AFairGroupLivesInOnePartitionAndItsLimitsReachEveryPartition) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, roomy(server.config()));
    run_task(io, [&]() -> asio::awaitable<void> {
        partitioned_producer p(rc.client, "tenants", with(3));
        partitioned_admin a(rc.client, "tenants");
        job_options acme;
        acme.group = "acme";
        std::set<std::size_t> used;
        for (int i = 0; i < 10; ++i)
            used.insert(index_of(co_await p.enqueue("job", acme)));
        EXPECT_EQ(used.size(), 1u);
        EXPECT_EQ(*used.begin(), partition_for_key("acme", 3));
        group_limits two;
        two.concurrency = 2;
        co_await a.set_group_limits("acme", two);
        const std::vector<group_info> groups = co_await a.groups(10);
        EXPECT_EQ(groups.size(), 1u);
        if (!groups.empty()) {
            EXPECT_EQ(groups[0].name, "acme");
            EXPECT_EQ(groups[0].waiting, 10u);
            EXPECT_EQ(groups[0].limits.concurrency, 2u);
            EXPECT_TRUE(groups[0].own_limits);
        }
        EXPECT_EQ((co_await a.counts()).total.groups, 1u);
        co_await a.clear_group_limits("acme");
        const std::vector<group_info> cleared = co_await a.groups(10);
        if (!cleared.empty()) EXPECT_FALSE(cleared[0].own_limits);
    }());
}
