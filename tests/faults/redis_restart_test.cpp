// The stream batcher across redis-server SIGKILLs and restarts (append-only on): outputs and
// the inputs' acks go in one MULTI/EXEC, so after any number of kills no input is acked without
// its output, and every input is eventually answered (a batch whose commit was lost runs again:
// duplicates are counted).
#include "support/harness.hpp"
#include "support/running_client.hpp"

#include <akv/client.hpp>
#include <akv/messaging/batcher.hpp>
#include <akv/messaging/stream.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <gtest/gtest.h>

#include <map>
#include <set>

using namespace akv::test;
namespace asio = boost::asio;
namespace msg = akv::messaging;

TEST(BatcherFaults, NoInputAckedWithoutItsOutputAcrossRedisKills) {
    akv::testing::embedded_server redis({.append_only = true});
    auto cfg = redis.config();
    cfg.reconnect_wait_min = std::chrono::milliseconds(10);
    cfg.reconnect_wait_max = std::chrono::milliseconds(100);
    asio::io_context io;
    running_client rc(io, cfg);

    constexpr int inputs = 3000, kills = 3;
    run_task(io, [&]() -> asio::awaitable<void> {
        msg::stream_producer in(rc.client, "in");
        std::vector<msg::field_list> entries;
        for (int i = 0; i < inputs; ++i) entries.push_back({{"n", std::to_string(i)}});
        for (std::size_t at = 0; at < entries.size(); at += 500) {
            std::vector<msg::field_list> part(entries.begin() + at, entries.begin() + std::min(entries.size(), at + 500));
            co_await in.add_many(part);
        }
    }());

    msg::batcher_options o;
    o.group = {"in", "g", "c1", std::chrono::milliseconds(200), 1000, "", "0"};
    o.output_stream = "out";
    o.max_batch = 50;
    o.max_wait = std::chrono::milliseconds(5);
    o.claim_every = std::chrono::milliseconds(100);
    msg::batcher b(rc.client, o, [](std::span<const msg::stream_entry> batch) -> asio::awaitable<std::vector<msg::field_list>> {
        std::vector<msg::field_list> out;
        for (const auto& e : batch) out.push_back({{"input", e.id}, {"n", *e.field("n")}});
        co_return out;
    });

    int done_kills = 0, failures = 0;
    std::size_t committed = 0;
    bool finished = false;
    // What a bundled app does: a failed batch (the server went away) is retried after a pause.
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer pause(co_await asio::this_coro::executor);
            bool created = false;
            // Until the group has read everything and nothing is pending. (Counting commits is
            // not enough: a commit whose reply the kill swallowed may well have happened.)
            bool all_done = false;
            while (!all_done) {
                bool failed = false;
                try {
                    if (!created) {
                        co_await b.group().create();
                        created = true;
                    }
                    const std::size_t n = co_await b.run_once();
                    committed += n;
                    if (n == 0) {
                        akv::request info;
                        info.push("XINFO", "GROUPS", "in");
                        akv::generic_response r;
                        co_await rc.client.exec(info, r);
                        std::map<std::string, std::string> g;
                        const auto& group = r.at(0).value().elements.at(0).elements;
                        for (std::size_t k = 0; k + 1 < group.size(); k += 2) g[group[k].str] = group[k + 1].str;
                        all_done = g["pending"] == "0" && g["lag"] == "0";
                    }
                } catch (const boost::system::system_error&) {
                    failed = true;
                }
                if (failed) {
                    ++failures;
                    pause.expires_after(std::chrono::milliseconds(20));
                    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                }
            }
        },
        [&](std::exception_ptr e) {
            EXPECT_FALSE(e);
            finished = true;
        });
    // The killer, on its own clock: it strikes while a batch's reads or commit are in flight.
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer tick(co_await asio::this_coro::executor);
            while (done_kills < kills && !finished) {
                tick.expires_after(std::chrono::milliseconds(2));
                co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
                if (committed >= static_cast<std::size_t>((done_kills + 1) * inputs / (kills + 1))) {
                    ++done_kills;
                    redis.kill();  // SIGKILL; the AOF (fsync always) keeps what was committed
                    redis.start(); // same port and data dir
                }
            }
        },
        asio::detached);
    ASSERT_TRUE(run_until(io, [&] { return finished; }, 120s)) << committed << " of " << inputs << " committed";
    EXPECT_EQ(done_kills, kills);

    // Every input is acked (nothing pending) and has at least one output naming it.
    std::size_t pending = 1;
    std::map<std::string, int> outputs; // input id -> outputs
    std::set<std::string> input_ids;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("XPENDING", "in", "g");
        req.push("XRANGE", "out", "-", "+");
        req.push("XRANGE", "in", "-", "+");
        akv::generic_response resp;
        co_await rc.client.exec(req, resp);
        pending = std::stoull(resp.at(0).value().elements.at(0).str);
        for (const auto& e : msg::entries_from(resp.at(1).value())) ++outputs[*e.field("input")];
        for (const auto& e : msg::entries_from(resp.at(2).value())) input_ids.insert(e.id);
    }());
    EXPECT_EQ(pending, 0u);
    ASSERT_EQ(input_ids.size(), static_cast<std::size_t>(inputs));
    int duplicates = 0;
    for (const auto& id : input_ids) {
        const auto it = outputs.find(id);
        EXPECT_TRUE(it != outputs.end()) << "input " << id << " acked without an output";
        if (it != outputs.end()) duplicates += it->second - 1;
    }
    EXPECT_EQ(outputs.size(), input_ids.size()) << "outputs for inputs that do not exist";
    std::printf("batcher across %d Redis kills: %d inputs, %d failed batches retried, %d duplicate outputs\n",
                kills, inputs, failures, duplicates);
}
