// akv::client on a cluster that changes under load: a live slot migration (ASK, then MOVED),
// a master killed with SIGKILL (its replica takes over), reads from replicas.
#include "support/running_client.hpp"
#include "support/side_thread.hpp"

#include <akv/client.hpp>
#include <akv/cluster_slot.hpp>
#include <akv/config.hpp>
#include <akv/testing/embedded_cluster.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <optional>
#include <thread>

using namespace akv::test;
using boost::system::error_code;
namespace asio = boost::asio;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

} // namespace

TEST(ClusterFaults, LiveSlotMigrationUnderLoadLosesNoRequest) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    // Twenty counters in one slot, served by master 0 at first.
    const std::string tag = [&] {
        for (int i = 0;; ++i) {
            std::string t = "{m" + std::to_string(i) + "}";
            if (cluster.master_of(akv::cluster_slot(t)) == 0) return t;
        }
    }();
    const std::uint16_t slot = akv::cluster_slot(tag);
    constexpr int counters = 20;

    std::atomic<bool> keys_moved{false};
    std::atomic<bool> ask_seen{false};
    std::atomic<bool> finish{false};
    long long acknowledged = 0;
    std::size_t failures = 0;
    std::string first_failure;
    bool stop = false;
    int workers = 0;

    auto worker = [&](int id) -> asio::awaitable<void> {
        ++workers;
        akv::request req;
        req.push("INCR", tag + "c" + std::to_string(id % counters));
        akv::response<long long> resp;
        while (!stop) {
            auto [ec, n] = co_await rc.client.exec(req, resp, nothrow);
            if (ec || !std::get<0>(resp).has_value()) {
                if (failures++ == 0)
                    first_failure = ec ? ec.message() : std::get<0>(resp).error().message;
            } else {
                ++acknowledged;
            }
        }
        --workers;
    };
    for (int i = 0; i < 40; ++i)
        asio::co_spawn(io, worker(i), asio::detached);
    ASSERT_TRUE(run_until(io, [&] { return acknowledged > 2000; }, 20s));

    side_thread migration([&] {
        cluster.begin_migration(slot, 0, 1);
        cluster.migrate_keys(slot);
        keys_moved = true;
        // Held open until the client has met ASK for a key already moved.
        while (!finish)
            std::this_thread::yield();
        cluster.finish_migration(slot, 1);
    });
    akv::client& cl = rc.client;
    ASSERT_TRUE(run_until(io, [&] { return keys_moved && cl.stats().cluster.asked > 0; }, 20s))
        << "no ASK followed; " << migration.failure;
    finish = true;
    ASSERT_TRUE(run_until(io, [&] { return migration.done.load(); }, 30s)) << migration.failure;
    EXPECT_TRUE(migration.failure.empty()) << migration.failure;
    // After the migration the source answers MOVED, and the client's map follows it.
    ASSERT_TRUE(run_until(
        io,
        [&] {
            return cl.master_of(slot) && cl.master_of(slot)->port == cluster.node(1).port();
        },
        20s));
    const long long before_stop = acknowledged;
    ASSERT_TRUE(run_until(io, [&] { return acknowledged > before_stop + 2000; }, 20s));
    stop = true;
    ASSERT_TRUE(run_until(io, [&] { return workers == 0; }, 20s));

    EXPECT_EQ(failures, 0u) << first_failure;
    EXPECT_GT(cl.stats().cluster.asked, 0u);
    // Every acknowledged INCR is counted on the new owner.
    long long total = 0;
    for (int i = 0; i < counters; ++i) {
        const std::string v = cluster.command(1, {"GET", tag + "c" + std::to_string(i)});
        total += v == "(nil)" ? 0 : std::stoll(v);
    }
    EXPECT_EQ(total, acknowledged);
}

TEST(ClusterFaults, KilledMasterIsReplacedAndNoAcknowledgedWriteIsLost) {
    akv::testing::embedded_cluster_options options;
    options.append_only = true;
    akv::testing::embedded_cluster cluster(options);
    asio::io_context io;
    running_client rc(io, cluster.config());

    std::vector<std::string> acked;
    std::size_t failures = 0;
    bool stop = false;
    int workers = 0;
    std::size_t next = 0;
    auto worker = [&]() -> asio::awaitable<void> {
        ++workers;
        akv::request req;
        akv::response<std::string> resp;
        while (!stop) {
            const std::string k = "w:" + std::to_string(next++);
            req.clear();
            req.push("SET", k, k);
            auto [ec, n] = co_await rc.client.exec(req, resp, nothrow);
            if (ec || !std::get<0>(resp).has_value())
                ++failures; // in flight when the master died: not acknowledged
            else
                acked.push_back(k);
        }
        --workers;
    };
    for (int i = 0; i < 20; ++i)
        asio::co_spawn(io, worker(), asio::detached);
    ASSERT_TRUE(run_until(io, [&] { return acked.size() > 3000; }, 20s));

    std::size_t promoted = 0;
    side_thread failover([&] { promoted = cluster.kill_master_and_wait_failover(0); });
    ASSERT_TRUE(run_until(io, [&] { return failover.done.load(); }, 40s));
    ASSERT_TRUE(failover.failure.empty()) << failover.failure;
    // The client follows: writes to the dead master's slots succeed again.
    const std::size_t at_failover = acked.size();
    ASSERT_TRUE(run_until(io, [&] { return acked.size() > at_failover + 3000; }, 20s))
        << "the client did not recover after the failover";
    stop = true;
    ASSERT_TRUE(run_until(io, [&] { return workers == 0; }, 20s));
    EXPECT_LT(failures, 200u); // only writes in flight at the kill may fail

    bool new_master_known = false;
    for (const auto& m : rc.client.masters())
        new_master_known = new_master_known || m.port == cluster.node(promoted).port();
    EXPECT_TRUE(new_master_known);

    // Every acknowledged write is there.
    std::size_t missing = 0;
    run_task(io, [&]() -> asio::awaitable<void> {
        for (std::size_t start = 0; start < acked.size(); start += 500) {
            akv::request req;
            const std::size_t end = std::min(acked.size(), start + 500);
            for (std::size_t i = start; i < end; ++i)
                req.push("GET", acked[i]);
            akv::generic_response resp;
            co_await rc.client.exec(req, resp);
            for (std::size_t i = start; i < end; ++i) {
                const auto& r = resp.at(i - start);
                if (!r.has_value() || r.value().str != acked[i]) ++missing;
            }
        }
    }());
    EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged writes";
}

TEST(ClusterFaults, ReadsGoToReplicasWhenAsked) {
    akv::testing::embedded_cluster cluster;
    akv::config cfg = cluster.config();
    cfg.read_from_replicas = true;
    asio::io_context io;
    running_client rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request set;
        for (int i = 0; i < 300; ++i)
            set.push("SET", "r" + std::to_string(i), i);
        co_await rc.client.exec(set, akv::ignore);
        // Replication is asynchronous: read until every value has reached its replica.
        akv::request get;
        for (int i = 0; i < 300; ++i)
            get.push("GET", "r" + std::to_string(i));
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        for (;;) {
            akv::generic_response resp;
            co_await rc.client.exec(get, resp);
            bool all = resp.size() == 300;
            for (int i = 0; all && i < 300; ++i)
                all = resp[i].has_value() && resp[i].value().str == std::to_string(i);
            if (all || std::chrono::steady_clock::now() > deadline) {
                EXPECT_TRUE(all);
                break;
            }
        }
    }());
    // The GETs were served by replicas, the SETs by masters.
    std::size_t replicas_reading = 0;
    for (std::size_t m : cluster.masters()) {
        EXPECT_EQ(cluster.command(m, {"INFO", "commandstats"}).find("cmdstat_get:"),
                  std::string::npos)
            << "master " << m << " served a GET";
        for (std::size_t r : cluster.replicas_of(m))
            if (cluster.command(r, {"INFO", "commandstats"}).find("cmdstat_get:") !=
                std::string::npos)
                ++replicas_reading;
    }
    EXPECT_EQ(replicas_reading, 3u);
}
