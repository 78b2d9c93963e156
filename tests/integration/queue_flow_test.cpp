// Flows and the canvas (akv/queue/flow.hpp) against a real server: parents that wait for
// children in other queues, nesting, failures that fail or release a parent, chain, group and
// chord, cancel and remove, the events, bad input, and a worker SIGKILLed between a child's
// ack and its parent's update (a child process, tests/support/child_worker.hpp).
#include "support/child_worker.hpp"
#include "support/eventually.hpp"
#include "support/running_client.hpp"
#include "support/running_queue.hpp"

#include <akv/messaging/subscriber.hpp>
#include <akv/queue/admin.hpp>
#include <akv/queue/event_log.hpp>
#include <akv/queue/flow.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_server.hpp>

#include <map>

using namespace akv::test;
using namespace akv::queue;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

flow_job leaf(std::string queue, std::string payload) {
    flow_job j;
    j.queue = std::move(queue);
    j.payload = std::move(payload);
    return j;
}

// "<payload>" for a leaf; a parent joins what its children gave: "<payload>(a,b,c)".
handler joiner(std::map<std::string, int>& runs) {
    return [&runs](job_context& ctx) -> asio::awaitable<std::string> {
        ++runs[ctx.job().payload];
        if (ctx.job().children == 0) co_return ctx.job().payload;
        std::string out = ctx.job().payload + "(";
        for (const auto& c : co_await ctx.children_results()) {
            if (out.back() != '(') out += ',';
            out += c.result ? c.result->value : "?";
        }
        co_return out + ")";
    };
}

worker_options quick() {
    worker_options o;
    o.lease_time = 1000ms;
    return o;
}

asio::awaitable<long long> xlen(akv::client& c, std::string key) {
    akv::request req;
    req.push("XLEN", key);
    akv::response<long long> resp;
    co_await c.exec(req, resp);
    co_return std::get<0>(resp).value();
}

} // namespace

TEST(QueueFlow, ParentRunsOnceAfterChildrenInTwoOtherQueuesAndReadsTheirResults) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    flow_producer flows(rc.client, &hub);
    flow_job report = leaf("reports", "report");
    report.children = {leaf("fetch", "eu"), leaf("parse", "csv"), leaf("fetch", "us")};
    flow_ids ids;
    run_task(io, [&]() -> asio::awaitable<void> {
        ids = co_await flows.add(report);
        admin a(rc.client, "reports");
        const job_info info = co_await a.get(ids.id);
        EXPECT_EQ(info.state, job_state::waiting_children);
        if (info.children.size() != 3u) {
            ADD_FAILURE() << info.children.size() << " children";
            co_return;
        }
        EXPECT_EQ(info.children[1].queue, "parse");
        EXPECT_EQ(info.children[1].id, ids.children[1].id);
        EXPECT_FALSE(info.children[1].result); // pending
        EXPECT_EQ((co_await a.counts()).waiting_children, 1u);
        EXPECT_EQ(co_await a.list(job_state::waiting_children, 0, 10),
                  std::vector<std::string>(1, ids.id));
        admin fetch(rc.client, "fetch");
        const job_info child = co_await fetch.get(ids.children[2].id);
        EXPECT_TRUE(child.job && child.job->parent);
        if (!child.job || !child.job->parent) co_return;
        EXPECT_EQ(child.job->parent->queue, "reports");
        EXPECT_EQ(child.job->parent->id, ids.id);
    }());
    ASSERT_EQ(ids.children.size(), 3u);
    std::map<std::string, int> runs;
    running_worker reports(io, rc.client, "reports", joiner(runs), quick(), &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        // The parent does not run while its children wait.
        asio::steady_timer t(co_await asio::this_coro::executor, 200ms);
        co_await t.async_wait(asio::use_awaitable);
        EXPECT_EQ(runs["report"], 0);
    }());
    running_worker fetch(io, rc.client, "fetch", joiner(runs), quick(), &hub);
    running_worker parse(io, rc.client, "parse", joiner(runs), quick(), &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        const job_result r = co_await flows.result(ids, 10s);
        EXPECT_TRUE(r.ok()) << r.value;
        EXPECT_EQ(r.value, "report(eu,csv,us)");
        admin a(rc.client, "reports");
        const state_counts c = co_await a.counts();
        EXPECT_EQ(c.waiting_children, 0u);
        EXPECT_EQ(c.completed, 1u);
        EXPECT_EQ(co_await xlen(rc.client, queue_keys("fetch").outbox), 0);
        EXPECT_EQ(co_await xlen(rc.client, queue_keys("parse").outbox), 0);
    }());
    EXPECT_EQ(runs["report"], 1);
    EXPECT_EQ(fetch.w.stats().handed_off + parse.w.stats().handed_off, 3u);
}

TEST(QueueFlow, NestedFlowRunsFromTheLeavesUp) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    flow_producer flows(rc.client, &hub);
    flow_job mid = leaf("b", "mid");
    mid.children = {leaf("c", "x"), leaf("a", "y")};
    flow_job root = leaf("a", "root");
    root.children = {mid, leaf("c", "z")};
    std::map<std::string, int> runs;
    running_worker a(io, rc.client, "a", joiner(runs), quick(), &hub);
    running_worker b(io, rc.client, "b", joiner(runs), quick(), &hub);
    running_worker c(io, rc.client, "c", joiner(runs), quick(), &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        const flow_ids ids = co_await flows.add(root);
        const job_result r = co_await flows.result(ids, 10s);
        EXPECT_EQ(r.value, "root(mid(x,y),z)");
    }());
    for (const char* p : {"root", "mid", "x", "y", "z"})
        EXPECT_EQ(runs[p], 1) << p;
}

TEST(QueueFlow, AChildFailingForGoodFailsItsParent) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    flow_producer flows(rc.client, &hub);
    flow_job parent = leaf("parents", "p");
    flow_job bad = leaf("kids", "boom");
    bad.options.max_attempts = 2;
    bad.options.backoff.base = 10ms;
    parent.children = {leaf("kids", "fine"), bad};
    std::map<std::string, int> runs;
    running_worker parents(io, rc.client, "parents", joiner(runs), quick(), &hub);
    running_worker kids(
        io, rc.client, "kids",
        [&](job_context& ctx) -> asio::awaitable<std::string> {
            ++runs[ctx.job().payload];
            if (ctx.job().payload == "boom") throw std::runtime_error("it broke");
            co_return "ok";
        },
        quick(), &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        const flow_ids ids = co_await flows.add(parent);
        const job_result r = co_await flows.result(ids, 10s);
        EXPECT_EQ(r.outcome, job_result::status::failed);
        EXPECT_EQ(r.value, "child kids " + ids.children[1].id + " failed: it broke");
        admin a(rc.client, "parents");
        EXPECT_EQ((co_await a.get(ids.id)).state, job_state::failed);
        EXPECT_EQ((co_await a.counts()).waiting_children, 0u);
    }());
    EXPECT_EQ(runs["p"], 0);
    EXPECT_EQ(runs["boom"], 2);
}

TEST(QueueFlow, AnIgnoredFailedChildReleasesItsParent) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    flow_producer flows(rc.client, &hub);
    flow_job parent = leaf("parents", "p");
    flow_job bad = leaf("kids", "boom");
    bad.options.max_attempts = 1;
    bad.on_failure = on_child_failure::ignore;
    parent.children = {bad, leaf("kids", "fine")};
    std::vector<child_result> seen;
    int parent_runs = 0;
    running_worker parents(
        io, rc.client, "parents",
        [&](job_context& ctx) -> asio::awaitable<std::string> {
            ++parent_runs;
            seen = co_await ctx.children_results();
            co_return "done";
        },
        quick(), &hub);
    running_worker kids(
        io, rc.client, "kids",
        [&](job_context& ctx) -> asio::awaitable<std::string> {
            if (ctx.job().payload == "boom") throw std::runtime_error("it broke");
            co_return "ok";
        },
        quick(), &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        const flow_ids ids = co_await flows.add(parent);
        EXPECT_TRUE((co_await flows.result(ids, 10s)).ok());
    }());
    EXPECT_EQ(parent_runs, 1);
    ASSERT_EQ(seen.size(), 2u);
    ASSERT_TRUE(seen[0].result && seen[1].result);
    EXPECT_EQ(seen[0].result->outcome, job_result::status::failed);
    EXPECT_EQ(seen[0].result->value, "it broke");
    EXPECT_TRUE(seen[1].result->ok());
}

TEST(QueueFlow, ChainPassesEachResultToTheNextStep) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    flow_producer flows(rc.client, &hub);
    std::vector<std::string> order;
    handler step = [&](job_context& ctx) -> asio::awaitable<std::string> {
        order.push_back(ctx.job().payload);
        std::string before;
        if (ctx.job().children > 0) {
            const auto prev = co_await ctx.children_results();
            EXPECT_EQ(prev.size(), 1u);
            if (!prev.empty() && prev[0].result) before = prev[0].result->value;
        }
        co_return before + ctx.job().payload;
    };
    running_worker s1(io, rc.client, "steps", step, quick(), &hub);
    running_worker s2(io, rc.client, "other-steps", step, quick(), &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        const flow_job steps =
            chain({leaf("steps", "a"), leaf("other-steps", "b"), leaf("steps", "c")});
        const flow_ids ids = co_await flows.add(steps);
        EXPECT_EQ(ids.queue, "steps"); // the last step is the chain's root
        const job_result r = co_await flows.result(ids, 10s);
        EXPECT_EQ(r.value, "abc");
    }());
    EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(QueueFlow, GroupResultsAreCollectedInOrder) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    flow_producer flows(rc.client, &hub);
    std::map<std::string, int> runs;
    worker_options o = quick();
    o.concurrency = 4;
    running_worker work(io, rc.client, "work", joiner(runs), o, &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        std::vector<flow_job> members;
        for (int i = 0; i < 6; ++i)
            members.push_back(leaf("work", "m" + std::to_string(i)));
        // No worker runs the collector's queue: a group completes without a handler.
        const flow_job collector = group("groups", members);
        const flow_ids g = co_await flows.add(collector);
        const auto results = co_await flows.group_results(g, 10s);
        EXPECT_EQ(results.size(), 6u);
        for (std::size_t i = 0; i < results.size() && i < 6; ++i) {
            EXPECT_EQ(results[i].queue, "work");
            EXPECT_EQ(results[i].id, g.children[i].id);
            EXPECT_TRUE(results[i].result);
            if (results[i].result) EXPECT_EQ(results[i].result->value, "m" + std::to_string(i));
        }
        admin a(rc.client, "groups");
        EXPECT_EQ((co_await a.counts()).total_completed, 1u);
    }());
}

TEST(QueueFlow, ChordCallbackGetsEveryResult) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    flow_producer flows(rc.client, &hub);
    int callbacks = 0;
    running_worker numbers(
        io, rc.client, "numbers",
        [](job_context& ctx) -> asio::awaitable<std::string> {
            const int n = std::stoi(ctx.job().payload);
            co_return std::to_string(n * n);
        },
        quick(), &hub);
    running_worker sums(
        io, rc.client, "sums",
        [&](job_context& ctx) -> asio::awaitable<std::string> {
            ++callbacks;
            int total = 0;
            for (const auto& c : co_await ctx.children_results())
                total += std::stoi(c.result->value);
            co_return std::to_string(total);
        },
        quick(), &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        std::vector<flow_job> header;
        for (int i = 1; i <= 5; ++i)
            header.push_back(leaf("numbers", std::to_string(i)));
        const flow_job sum = chord(header, leaf("sums", "sum"));
        const flow_ids ids = co_await flows.add(sum);
        EXPECT_EQ((co_await flows.result(ids, 10s)).value, "55");
    }());
    EXPECT_EQ(callbacks, 1);
}

TEST(QueueFlow, CancellingAParentCancelsItsPendingChildren) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    flow_producer flows(rc.client, &hub);
    flow_job parent = leaf("parents", "p");
    flow_job mid = leaf("mids", "m");
    mid.children = {leaf("kids", "k")};
    parent.children = {mid, leaf("kids", "j")};
    run_task(io, [&]() -> asio::awaitable<void> {
        const flow_ids ids = co_await flows.add(parent);
        admin a(rc.client, "parents");
        const std::string reason = "not needed";
        EXPECT_EQ(co_await a.cancel(ids.id, reason), cancel_outcome::cancelled);
        const job_info p = co_await a.get(ids.id);
        EXPECT_EQ(p.state, job_state::failed);
        EXPECT_EQ(p.last_error, "cancelled: not needed");
        admin mids(rc.client, "mids"), kids(rc.client, "kids");
        EXPECT_EQ((co_await mids.get(ids.children[0].id)).state, job_state::failed);
        EXPECT_EQ((co_await kids.get(ids.children[0].children[0].id)).state, job_state::failed);
        EXPECT_EQ((co_await kids.get(ids.children[1].id)).state, job_state::failed);
        EXPECT_EQ((co_await kids.counts()).waiting, 0u);
        EXPECT_EQ((co_await mids.counts()).waiting_children, 0u);
    }());
}

TEST(QueueFlow, RemovingAPendingChildReleasesItsParent) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    flow_producer flows(rc.client, &hub);
    flow_job parent = leaf("parents", "p");
    parent.children = {leaf("kids", "gone"), leaf("kids", "kept")};
    flow_ids ids;
    run_task(io, [&]() -> asio::awaitable<void> {
        ids = co_await flows.add(parent);
        admin kids(rc.client, "kids");
        co_await kids.remove(ids.children[0].id);
    }());
    std::vector<child_result> seen;
    running_worker parents(
        io, rc.client, "parents",
        [&](job_context& ctx) -> asio::awaitable<std::string> {
            seen = co_await ctx.children_results();
            co_return "ran";
        },
        quick(), &hub);
    std::map<std::string, int> runs;
    running_worker kids(io, rc.client, "kids", joiner(runs), quick(), &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_EQ((co_await flows.result(ids, 10s)).value, "ran");
    }());
    EXPECT_EQ(runs["gone"], 0);
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].result->outcome, job_result::status::cancelled);
    EXPECT_EQ(seen[1].result->value, "kept");
}

TEST(QueueFlow, RemovingAParentRemovesItsPendingChildren) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    flow_producer flows(rc.client);
    flow_job parent = leaf("parents", "p");
    parent.children = {leaf("kids", "a"), leaf("kids", "b")};
    run_task(io, [&]() -> asio::awaitable<void> {
        const flow_ids ids = co_await flows.add(parent);
        admin a(rc.client, "parents"), kids(rc.client, "kids");
        co_await a.remove(ids.id);
        EXPECT_EQ((co_await a.get(ids.id)).state, job_state::unknown);
        EXPECT_EQ((co_await a.counts()).waiting_children, 0u);
        EXPECT_EQ((co_await kids.counts()).waiting, 0u);
        EXPECT_FALSE((co_await kids.get(ids.children[1].id)).job);
    }());
}

// Jobs of a flow that reported progress: their ack clears the progress kept on them and hands
// their ends to their parent, both in the one complete.lua call (its leftovers flag and flow
// text side by side in each job's arguments).
TEST(QueueFlow, ProgressOfFlowJobsIsClearedWhenTheyCompleteAndParentsStillHearOfThem) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    flow_producer flows(rc.client, &hub);
    flow_job mid = leaf("b", "mid");
    mid.children = {leaf("a", "x"), leaf("b", "y")};
    flow_job root = leaf("a", "root");
    root.children = {mid, leaf("b", "z")};
    std::map<std::string, int> runs;
    handler join = joiner(runs);
    handler reporting = [&join](job_context& ctx) -> asio::awaitable<std::string> {
        co_await ctx.progress("half of " + ctx.job().payload);
        co_return co_await join(ctx);
    };
    running_worker a(io, rc.client, "a", reporting, quick(), &hub);
    running_worker b(io, rc.client, "b", reporting, quick(), &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        const flow_ids ids = co_await flows.add(root);
        const job_result r = co_await flows.result(ids, 10s);
        EXPECT_EQ(r.value, "root(mid(x,y),z)");
        akv::request req;
        req.push("HLEN", queue_keys("a").progress);
        req.push("HLEN", queue_keys("b").progress);
        req.push("HLEN", queue_keys("a").children);
        req.push("HLEN", queue_keys("b").children);
        akv::response<long long, long long, long long, long long> resp;
        co_await rc.client.exec(req, resp);
        EXPECT_EQ(std::get<0>(resp).value(), 0);
        EXPECT_EQ(std::get<1>(resp).value(), 0);
        EXPECT_EQ(std::get<2>(resp).value(), 0); // completed parents drop their children's entries
        EXPECT_EQ(std::get<3>(resp).value(), 0);
    }());
    for (const char* p : {"root", "mid", "x", "y", "z"})
        EXPECT_EQ(runs[p], 1) << p;
}

TEST(QueueFlow, TheJournalShowsWaitingChildrenAndReleased) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    flow_producer flows(rc.client, &hub);
    std::map<std::string, int> runs;
    running_worker parents(io, rc.client, "parents", joiner(runs), quick(), &hub);
    running_worker kids(io, rc.client, "kids", joiner(runs), quick(), &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        flow_job parent = leaf("parents", "p");
        parent.children = {leaf("kids", "k")};
        const flow_ids ids = co_await flows.add(parent);
        co_await flows.result(ids, 10s);
        event_log log(rc.client, "parents");
        std::vector<std::string> events;
        const std::string from = "0";
        for (const auto& e : co_await log.read(from, 100))
            if (e.ids == std::vector<std::string>{ids.id}) events.push_back(e.event);
        EXPECT_EQ(events, (std::vector<std::string>{"added", "waiting-children", "released",
                                                    "active", "completed"}));
    }());
}

TEST(QueueFlow, BadInputIsRefusedAndAddsNothing) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    flow_producer flows(rc.client);
    run_task(io, [&]() -> asio::awaitable<void> {
        flow_job bad_name = leaf("parents", "p");
        bad_name.children = {leaf("kids", "a"), leaf("no such{queue}", "b")};
        flow_job deep = leaf("deep", "0");
        for (int i = 1; i <= 40; ++i) {
            flow_job up = leaf("deep", std::to_string(i));
            up.children.push_back(std::move(deep));
            deep = std::move(up);
        }
        flow_job unique = leaf("parents", "p");
        unique.children = {leaf("kids", "a")};
        unique.children[0].options.unique_key = "k";
        flow_job empty_group = group("groups", {});
        for (const auto* f : {&bad_name, &deep, &unique, &empty_group}) {
            std::string what;
            try {
                co_await flows.add(*f);
            } catch (const boost::system::system_error& e) {
                EXPECT_EQ(e.code(), akv::error::invalid_config);
                what = e.what();
            }
            EXPECT_FALSE(what.empty());
            if (f == &bad_name) {
                EXPECT_NE(what.find("flow.children[1]"), std::string::npos) << what;
                EXPECT_NE(what.find("no such{queue}"), std::string::npos) << what;
            }
            if (f == &deep) EXPECT_NE(what.find("deeper than 32"), std::string::npos) << what;
        }
        for (const char* q : {"parents", "kids", "deep", "groups"})
            EXPECT_FALSE(co_await admin(rc.client, std::string(q)).exists()) << q;
    }());
}

TEST(QueueFlow, ChildrenResultsOfAJobWithoutChildrenIsAClearError) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    producer p(rc.client, "plain", &hub);
    running_worker w(
        io, rc.client, "plain",
        [](job_context& ctx) -> asio::awaitable<std::string> {
            try {
                co_await ctx.children_results();
            } catch (const boost::system::system_error& e) {
                co_return std::string(e.code() == akv::error::invalid_config ? "refused: " : "?") +
                    e.what();
            }
            co_return "no error";
        },
        quick(), &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        const std::string id = co_await p.enqueue("x");
        const job_result r = co_await p.result(id, 10s);
        EXPECT_EQ(r.value.rfind("refused: job " + id + " of queue \"plain\" has no children", 0),
                  0u)
            << r.value;
    }());
}

// The worker of the child is SIGKILLed right after the child's ack, before the notice in the
// child's outbox reaches the parent: another worker of the child's queue applies it later, and
// the parent runs exactly once; a notice applied a second time changes nothing.
TEST(QueueFlow, AWorkerKilledBetweenAChildsAckAndItsParentsUpdate) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    akv::messaging::subscriber hub(rc.client);
    flow_producer flows(rc.client, &hub);
    flow_job parent = leaf("parents", "p");
    parent.children = {leaf("kids", "0")};
    flow_ids ids;
    run_task(io, [&]() -> asio::awaitable<void> { ids = co_await flows.add(parent); }());

    child_worker dying(io, {"--redis", server.url(), "--queue", "kids", "--lease-ms", "300",
                            "--die-at", "hand-off"});
    const auto status = dying.wait_exit(20s);
    ASSERT_TRUE(status);
    ASSERT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << dying.output();

    std::vector<std::string> notice; // the entry left behind: field, value, ...
    run_task(io, [&]() -> asio::awaitable<void> {
        admin kids(rc.client, "kids"), parents(rc.client, "parents");
        EXPECT_EQ((co_await kids.counts()).completed, 1u);
        EXPECT_EQ((co_await parents.get(ids.id)).state, job_state::waiting_children);
        akv::request req;
        req.push("XRANGE", queue_keys("kids").outbox, "-", "+");
        akv::generic_response resp;
        co_await rc.client.exec(req, resp);
        const auto& entries = resp.at(0).value().elements;
        EXPECT_EQ(entries.size(), 1u);
        if (entries.size() != 1u) co_return;
        for (const auto& v : entries[0].elements.at(1).elements)
            notice.push_back(v.str);
    }());

    int parent_runs = 0;
    running_worker parents(
        io, rc.client, "parents",
        [&](job_context& ctx) -> asio::awaitable<std::string> {
            ++parent_runs;
            co_return std::to_string((co_await ctx.children_results()).size());
        },
        quick(), &hub);
    worker_options o;
    o.lease_time = 300ms; // stale notices looked for every 100 ms
    std::map<std::string, int> runs;
    running_worker kids(io, rc.client, "kids", joiner(runs), o, &hub);
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_EQ((co_await flows.result(ids, 10s)).value, "1");
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return co_await xlen(rc.client, queue_keys("kids").outbox) == 0;
        }));
        // The same notice once more, as if a second worker had read it before the delete.
        akv::request again;
        again.push("XADD", queue_keys("kids").outbox, "*", notice);
        akv::response<std::string> added;
        co_await rc.client.exec(again, added);
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return co_await xlen(rc.client, queue_keys("kids").outbox) == 0;
        }));
        asio::steady_timer t(co_await asio::this_coro::executor, 300ms);
        co_await t.async_wait(asio::use_awaitable);
        admin parents(rc.client, "parents");
        const state_counts c = co_await parents.counts();
        EXPECT_EQ(c.completed, 1u);
        EXPECT_EQ(c.waiting + c.waiting_children + c.active, 0u);
    }());
    EXPECT_EQ(parent_runs, 1);
    EXPECT_EQ(runs["0"], 0); // the child ran once, in the process that died
    EXPECT_GE(kids.w.stats().handed_off, 2u);
}
