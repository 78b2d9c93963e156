// The layers above akv::client on a six-node Redis Cluster, through one client, unchanged:
// kv containers, blob_store, akv::script, streams and consumer groups, the batcher, model
// save/load, classic and sharded pub/sub.
#include "support/eventually.hpp"
#include "support/running_client.hpp"

#include <akv/client.hpp>
#include <akv/cluster_slot.hpp>
#include <akv/config.hpp>
#include <akv/kv/blob_store.hpp>
#include <akv/kv/collections.hpp>
#include <akv/messaging/batcher.hpp>
#include <akv/messaging/subscriber.hpp>
#include <akv/ml/model.hpp>
#include <akv/script.hpp>
#include <akv/testing/embedded_cluster.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <map>
#include <optional>
#include <set>
#include <sstream>

using namespace akv::test;
using namespace akv::messaging;
using akv::ml::mlp_model;
using namespace boost::asio::experimental::awaitable_operators;
namespace asio = boost::asio;
namespace kv = akv::kv;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// A name whose slot node `master` of the fixture serves.
std::string key_on(const akv::testing::embedded_cluster& cluster, std::size_t master,
                   std::string prefix) {
    for (std::size_t i = 0;; ++i) {
        std::string k = prefix + std::to_string(i);
        if (cluster.master_of(akv::cluster_slot(k)) == master) return k;
    }
}

// One name per master (0, 1, 2), for keys whose slot is that of the whole name.
std::vector<std::string> per_master(const akv::testing::embedded_cluster& cluster,
                                    std::string prefix) {
    std::vector<std::string> out;
    for (std::size_t m = 0; m < 3; ++m)
        out.push_back(key_on(cluster, m, prefix));
    return out;
}

// g++ 12 cannot keep an initializer_list's array across a co_await: lists are built here.
std::vector<int> ints(const std::string& text) {
    std::istringstream in(text);
    std::vector<int> out;
    for (int v; in >> v;)
        out.push_back(v);
    return out;
}
std::vector<std::string> strings(const std::string& text) {
    std::istringstream in(text);
    std::vector<std::string> out;
    for (std::string v; in >> v;)
        out.push_back(v);
    return out;
}
std::vector<std::string> one(std::string s) {
    return {std::move(s)};
}

std::size_t masters_holding(const akv::testing::embedded_cluster& cluster,
                            const std::vector<std::string>& keys) {
    std::set<std::size_t> masters;
    for (const auto& k : keys)
        masters.insert(cluster.master_of(akv::cluster_slot(k)));
    return masters.size();
}

asio::awaitable<long long> number(akv::client& c, akv::request req) {
    akv::response<long long> resp;
    co_await c.exec(req, resp);
    co_return std::get<0>(resp).value();
}

asio::awaitable<long long> xlen(akv::client& c, std::string key) {
    akv::request req;
    req.push("XLEN", key);
    co_return co_await number(c, std::move(req));
}

asio::awaitable<std::vector<stream_entry>> all(akv::client& c, std::string key) {
    akv::request req;
    req.push("XRANGE", key, "-", "+");
    akv::response<akv::resp::value> resp;
    co_await c.exec(req, resp);
    co_return entries_from(std::get<0>(resp).value());
}

std::vector<field_list> inputs(int n) {
    std::vector<field_list> out;
    for (int i = 0; i < n; ++i) {
        field_list f;
        f.emplace_back("n", std::to_string(i));
        out.push_back(std::move(f));
    }
    return out;
}

// The next message, or nullopt if none comes within `limit`.
asio::awaitable<std::optional<message>> receive_within(subscription& s,
                                                       std::chrono::milliseconds limit) {
    if (auto m = s.try_receive()) co_return m;
    asio::steady_timer timer(co_await asio::this_coro::executor, limit);
    auto first = co_await (s.receive() || timer.async_wait(asio::use_awaitable));
    if (first.index() == 0) co_return std::get<0>(std::move(first));
    co_return std::nullopt;
}

// The error code and message a coroutine throws (none: default).
struct thrown {
    boost::system::error_code code;
    std::string what;
};
template <class F> thrown thrown_by(F f) {
    try {
        f();
    } catch (const boost::system::system_error& e) {
        return {e.code(), e.what()};
    }
    return {};
}

} // namespace

// ---- kv

TEST(LayersCluster, KvContainersWorkOnEveryMaster) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    const auto maps = per_master(cluster, "map");
    const auto lists = per_master(cluster, "list");
    const auto caches = per_master(cluster, "cache");
    run_task(io, [&]() -> asio::awaitable<void> {
        for (std::size_t m = 0; m < 3; ++m) {
            kv::typed_map<std::string, long long> map(rc.client, maps[m]);
            co_await map.set("alice", 10 + static_cast<long long>(m));
            co_await map.set("bob", -3);
            EXPECT_EQ(co_await map.get("alice"), 10 + static_cast<long long>(m));
            EXPECT_EQ(co_await map.size(), 2u);
            const auto fields = strings("alice bob carol");
            const auto many = co_await map.get_many(fields);
            EXPECT_EQ(many.size(), 3u);
            EXPECT_EQ(many.at(1), -3);
            EXPECT_EQ(many.at(2), std::nullopt);
            EXPECT_TRUE(co_await map.erase("bob"));

            kv::list<int> list(rc.client, lists[m]);
            const auto values = ints("1 2 3");
            EXPECT_EQ(co_await list.push_back_many(values), 3u);
            EXPECT_EQ(co_await list.pop_front(), 1);
            EXPECT_EQ(co_await list.items(), ints("2 3"));
            // BLPOP: a blocking command, on a pooled connection to the list's node.
            EXPECT_EQ(co_await list.pop_front_wait(std::chrono::seconds(5)), 2);
            EXPECT_EQ(co_await list.pop_front_wait(std::chrono::seconds(5)), 3);

            // Two keys in one Lua call: they share the hash tag {cache...}.
            kv::lru_dict<std::string, int> cache(rc.client, caches[m], 2);
            EXPECT_TRUE((co_await cache.set("a", 1)).empty());
            EXPECT_TRUE((co_await cache.set("b", 2)).empty());
            EXPECT_EQ(co_await cache.get("a"), 1);
            EXPECT_EQ(co_await cache.set("c", 3), strings("b"));
            EXPECT_EQ(co_await cache.keys_by_recency(), strings("a c"));
        }

        kv::deque<int> deque(rc.client, "recent", 3);
        for (int i = 1; i <= 5; ++i)
            co_await deque.push_back(i);
        EXPECT_EQ(co_await deque.items(), ints("3 4 5"));

        kv::set<std::string> set(rc.client, "tags");
        const auto members = strings("x y z x");
        EXPECT_EQ(co_await set.add_many(members), 3u);
        EXPECT_TRUE(co_await set.contains("y"));

        kv::counter<std::string> words(rc.client, "words");
        co_await words.increment("redis", 5);
        co_await words.increment("lua");
        EXPECT_EQ(co_await words.total(), 6);

        kv::defaultdict<std::string, std::string> names(rc.client, "names", "unknown");
        EXPECT_EQ(co_await names.get("x"), "unknown");
        EXPECT_EQ(co_await names.peek("x"), "unknown");

        kv::sorted_set_counter<std::string> hits(rc.client, "hits");
        co_await hits.increment("/a", 2);
        co_await hits.increment("/b", 5);
        EXPECT_EQ(co_await hits.rank("/b"), 0u);

        // Syncables: MULTI ... EXEC on the node of their one key.
        kv::syncable_dict<std::string, int> sdict(rc.client, maps[0] + ":s");
        kv::syncable_list<int> slist(rc.client, lists[1] + ":s");
        kv::syncable_set<std::string> sset(rc.client, "sset");
        kv::syncable_counter<std::string> scounter(rc.client, "scounter");
        kv::syncable_deque<int> sdeque(rc.client, "sdeque", 2);
        kv::syncable_sorted_set_counter<std::string> sranks(rc.client, "sranks");
        for (int i = 0; i < 10; ++i) {
            sdict.set("k" + std::to_string(i), i);
            slist.push_back(i);
            scounter.increment("n");
            sdeque.push_back(i);
        }
        sset.add("a");
        sranks.increment("x", 2);
        co_await sdict.flush();
        co_await slist.flush();
        co_await sset.flush();
        co_await scounter.flush();
        co_await sdeque.flush();
        co_await sranks.flush();
        EXPECT_EQ(co_await sdict.container().size(), 10u);
        EXPECT_EQ(co_await slist.container().size(), 10u);
        EXPECT_EQ(co_await sset.container().members(), strings("a"));
        EXPECT_EQ(co_await scounter.container().get("n"), 10);
        EXPECT_EQ(co_await sdeque.container().items(), ints("8 9"));
        EXPECT_EQ(co_await sranks.container().score("x"), 2.0);
    }());
    // The containers really are spread over the masters.
    EXPECT_EQ(masters_holding(cluster, maps), 3u);
    EXPECT_EQ(
        cluster.command(cluster.master_of(akv::cluster_slot(maps[2])), {"HGET", maps[2], "alice"}),
        "12");
    EXPECT_EQ(rc.client.stats().cluster.refusals, 0u);
}

// ---- blob_store

TEST(LayersCluster, BlobStoreKeepsChunkedObjectsAndExactTotalsAcrossMasters) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    const auto names = per_master(cluster, "photo");
    const std::string big(10 * 1000 + 7, 'b'); // 11 chunks of at most 1000 bytes
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::blob_options options; // the default key_prefix "blob:", no hash tag of its own
        options.chunk_size = 1000;
        options.max_bytes_in_flight = 3000;
        kv::blob_store store(rc.client, options);
        std::uint64_t bytes = 0;
        for (std::size_t m = 0; m < 3; ++m) {
            const std::string small = "small object " + std::to_string(m);
            co_await store.put(names[m] + ":small", small);
            co_await store.put(names[m], big, kv::blob_attributes("application/octet-stream"));
            bytes += small.size() + big.size();
            EXPECT_EQ(co_await store.get(names[m]), big);
            EXPECT_EQ(co_await store.get(names[m] + ":small"), small);
            EXPECT_TRUE(co_await store.exists(names[m]));
            const auto meta = co_await store.stat(names[m]);
            EXPECT_TRUE(meta.has_value());
            if (!meta) co_return;
            EXPECT_EQ(meta->chunks, 11u);
            EXPECT_EQ(meta->content_type, "application/octet-stream");
        }
        kv::blob_info totals = co_await store.info();
        EXPECT_EQ(totals.objects, 6u);
        EXPECT_EQ(totals.bytes, bytes);

        // Overwrite with a smaller object: the totals move by the difference.
        co_await store.put(names[1], "now small");
        EXPECT_EQ(co_await store.get(names[1]), "now small");
        bytes = bytes - big.size() + 9;
        totals = co_await store.info();
        EXPECT_EQ(totals.bytes, bytes);

        EXPECT_TRUE(co_await store.erase(names[0]));
        EXPECT_FALSE(co_await store.erase(names[0]));
        EXPECT_FALSE(co_await store.exists(names[0]));
        EXPECT_EQ(co_await store.get(names[0]), std::nullopt);
        totals = co_await store.info();
        EXPECT_EQ(totals.objects, 5u);
        EXPECT_EQ(totals.bytes, bytes - big.size());

        // A key_prefix with a hash tag of its own: the whole store on one slot.
        kv::blob_options tagged = options;
        tagged.key_prefix = "{media}:";
        kv::blob_store one_slot(rc.client, tagged);
        co_await one_slot.put("clip", big);
        EXPECT_EQ(co_await one_slot.get("clip"), big);
        EXPECT_EQ((co_await one_slot.info()).objects, 1u);
        EXPECT_EQ(one_slot.info_key(), "{media}:info");
    }());
    EXPECT_EQ(masters_holding(cluster, names), 3u);
    EXPECT_EQ(rc.client.stats().cluster.refusals, 0u);
}

// ---- akv::script

TEST(LayersCluster, ScriptLoadsItselfOnEveryNodeAndAfterScriptFlush) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    const auto keys = per_master(cluster, "counter");
    const akv::script incr("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    const std::vector<std::string> by{"5"};
    auto run_all = [&](long long expected) -> asio::awaitable<void> {
        for (const auto& k : keys) {
            const std::vector<std::string> script_keys{k};
            akv::response<long long> resp;
            co_await incr.run(rc.client, script_keys, by, resp);
            EXPECT_TRUE(std::get<0>(resp).has_value())
                << (std::get<0>(resp).has_error() ? std::get<0>(resp).error().message : "");
            if (std::get<0>(resp).has_value()) {
                EXPECT_EQ(std::get<0>(resp).value(), expected) << k;
            }
        }
    };
    // Each node meets the script for the first time: NOSCRIPT, then EVAL, on its own node.
    run_task(io, run_all(5));
    for (std::size_t m : cluster.masters())
        EXPECT_EQ(cluster.command(m, {"SCRIPT", "EXISTS", incr.sha1()}), ":1") << "node " << m;
    run_task(io, run_all(10));
    for (std::size_t m : cluster.masters())
        EXPECT_EQ(cluster.command(m, {"SCRIPT", "FLUSH"}), "+OK");
    run_task(io, run_all(15));
    for (std::size_t m = 0; m < 3; ++m)
        EXPECT_EQ(cluster.command(m, {"GET", keys[m]}), "15");
}

// ---- streams and consumer groups

TEST(LayersCluster, ConsumerGroupsBlockClaimAndDeadLetterOnTheNodeOfTheirStream) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    const auto streams = per_master(cluster, "jobs");
    auto options_for = [&](std::size_t m, std::string consumer) {
        group_options o;
        o.stream = streams[m];
        o.group = "workers";
        o.consumer = std::move(consumer);
        o.claim_idle = std::chrono::milliseconds(20);
        o.max_deliveries = 1;
        return o;
    };
    // The default dead-letter stream shares the (untagged) stream's slot.
    for (const auto& s : streams) {
        EXPECT_EQ(default_dead_letter(s, true), "{" + s + "}:dead");
        EXPECT_EQ(akv::cluster_slot(default_dead_letter(s, true)), akv::cluster_slot(s));
        EXPECT_EQ(default_dead_letter(s, false), s + ":dead");
    }
    EXPECT_EQ(default_dead_letter("{q}:jobs", true), "{q}:jobs:dead");
    // An explicit one elsewhere is refused, naming both.
    const auto refused = thrown_by([&] {
        group_options o = options_for(0, "x");
        o.dead_letter = "elsewhere:dead";
        if (akv::cluster_slot(o.dead_letter) == akv::cluster_slot(o.stream)) o.dead_letter += "2";
        consumer_group g(rc.client, o);
    });
    EXPECT_EQ(refused.code, akv::error::invalid_config);
    EXPECT_NE(refused.what.find(streams[0]), std::string::npos) << refused.what;
    EXPECT_NE(refused.what.find("elsewhere:dead"), std::string::npos) << refused.what;

    run_task(io, [&]() -> asio::awaitable<void> {
        std::vector<std::unique_ptr<consumer_group>> groups;
        for (std::size_t m = 0; m < 3; ++m) {
            groups.push_back(std::make_unique<consumer_group>(rc.client, options_for(m, "a")));
            co_await groups.back()->create();
        }
        // Three XREADGROUP ... BLOCK at once, one per node, on pooled connections: the shared
        // pipeline goes on meanwhile (the PING answers before any read returns).
        std::vector<std::string> order;
        auto read = [&](std::size_t m) -> asio::awaitable<void> {
            auto got = co_await groups[m]->read(10, std::chrono::seconds(10));
            EXPECT_EQ(got.size(), 1u) << streams[m];
            order.push_back("read " + std::to_string(got.size()));
        };
        auto produce = [&]() -> asio::awaitable<void> {
            akv::request ping;
            ping.push("PING");
            co_await rc.client.exec(ping, akv::ignore);
            order.push_back("pinged");
            for (std::size_t m = 0; m < 3; ++m) {
                stream_producer producer(rc.client, streams[m], trim_options::maxlen(100));
                co_await producer.add(inputs(1).front());
            }
        };
        co_await (read(0) && read(1) && read(2) && produce());
        const std::vector<std::string> expected_order{"pinged", "read 1", "read 1", "read 1"};
        EXPECT_EQ(order, expected_order);
        for (std::size_t m = 0; m < 3; ++m) {
            stream_producer producer(rc.client, streams[m]);
            co_await producer.add(inputs(2).back());
            EXPECT_EQ((co_await groups[m]->read(10, std::chrono::seconds(5))).size(), 1u);
            EXPECT_EQ(co_await groups[m]->pending(), 2u);
        }

        // Consumer "a" died holding them: "b" claims them once idle; delivered twice, more
        // than max_deliveries (1), they go to the dead-letter stream, in one Lua call.
        for (std::size_t m = 0; m < 3; ++m) {
            consumer_group b(rc.client, options_for(m, "b"));
            const bool drained = co_await eventually([&]() -> asio::awaitable<bool> {
                co_await b.claim_stale(10);
                co_return co_await b.pending() == 0;
            });
            EXPECT_TRUE(drained) << streams[m];
            const auto dead = co_await all(rc.client, b.options().dead_letter);
            EXPECT_EQ(dead.size(), 2u) << b.options().dead_letter;
            if (!dead.empty()) {
                EXPECT_EQ(*dead[0].field("dead:group"), "workers");
                EXPECT_EQ(*dead[0].field("n"), "0");
            }
        }

        // dead_letter(): XADD + XACK in one transaction on the stream's node.
        stream_producer producer(rc.client, streams[2]);
        co_await producer.add(inputs(1).front());
        auto got = co_await groups[2]->read(1, std::chrono::seconds(5));
        EXPECT_EQ(got.size(), 1u);
        if (got.empty()) co_return;
        co_await groups[2]->dead_letter(got[0], "bad input");
        EXPECT_EQ(co_await groups[2]->pending(), 0u);
        EXPECT_EQ(co_await xlen(rc.client, groups[2]->options().dead_letter), 3);
    }());
    EXPECT_EQ(masters_holding(cluster, streams), 3u);
}

// ---- batcher

TEST(LayersCluster, BatcherCommitsOutputsAndAcksOnTheSlotOfItsStreams) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    batcher_options o;
    o.group.stream = "{orders}:in";
    o.group.group = "g";
    o.group.consumer = "c";
    o.output_stream = "{orders}:out";
    o.max_batch = 16;
    o.max_wait = std::chrono::milliseconds(30);
    o.claim_every = std::chrono::milliseconds(0);
    const batch_handler double_it =
        [](std::span<const stream_entry> batch) -> asio::awaitable<std::vector<field_list>> {
        std::vector<field_list> out;
        for (const auto& e : batch) {
            field_list f;
            f.emplace_back("in", e.id);
            f.emplace_back("double", std::to_string(2 * std::stoi(*e.field("n"))));
            out.push_back(std::move(f));
        }
        co_return out;
    };

    // Streams on two slots cannot be committed in one Lua call: refused up front, by name.
    batcher_options split = o;
    split.group.stream = "orders-in";
    split.output_stream = "orders-out";
    const auto refused = thrown_by([&] { batcher b(rc.client, split, double_it); });
    EXPECT_EQ(refused.code, akv::error::invalid_config);
    EXPECT_NE(refused.what.find("\"orders-in\""), std::string::npos) << refused.what;
    EXPECT_NE(refused.what.find("\"orders-out\""), std::string::npos) << refused.what;
    EXPECT_NE(refused.what.find("hash tag"), std::string::npos) << refused.what;

    batcher b(rc.client, o, double_it);
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await b.group().create();
        stream_producer producer(rc.client, o.group.stream);
        co_await producer.add_many(inputs(40));
        std::size_t committed = 0;
        const bool all_done = co_await eventually([&]() -> asio::awaitable<bool> {
            committed += co_await b.run_once();
            co_return committed >= 40;
        });
        EXPECT_TRUE(all_done);
        EXPECT_EQ(committed, 40u);
        EXPECT_EQ(co_await b.group().pending(), 0u);
        const auto out = co_await all(rc.client, o.output_stream);
        EXPECT_EQ(out.size(), 40u);
        if (out.size() == 40u) EXPECT_EQ(*out[39].field("double"), "78");
    }());
    EXPECT_EQ(b.stats().entries, 40u);
}

// ---- model

TEST(LayersCluster, ModelsSaveAndLoadOnEveryMaster) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    const auto keys = per_master(cluster, "model:");
    run_task(io, [&]() -> asio::awaitable<void> {
        for (std::size_t m = 0; m < 3; ++m) {
            const mlp_model original =
                mlp_model::random(8, 4, 2, static_cast<std::uint32_t>(m + 1));
            co_await original.save(rc.client, keys[m]);
            const mlp_model loaded = co_await mlp_model::load(rc.client, keys[m]);
            EXPECT_TRUE(loaded == original) << keys[m];
        }
        const mlp_model first = co_await mlp_model::load(rc.client, keys[0]);
        const mlp_model second = co_await mlp_model::load(rc.client, keys[1]);
        EXPECT_FALSE(first == second);
    }());
    EXPECT_EQ(masters_holding(cluster, keys), 3u);
    for (std::size_t m = 0; m < 3; ++m)
        EXPECT_EQ(cluster.command(m, {"HLEN", keys[m]}), ":4");
}

// ---- pub/sub

TEST(LayersCluster, PublishOnAnyNodeReachesASubscriber) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    subscriber hub(rc.client);
    run_task(io, [&]() -> asio::awaitable<void> {
        auto sub = co_await hub.subscribe(one("news"));
        auto pattern = co_await hub.psubscribe(one("alerts.*"));
        // Straight to each master, whichever the subscriber's connection went to.
        for (std::size_t m = 0; m < 3; ++m) {
            cluster.command(m, {"PUBLISH", "news", "from " + std::to_string(m)});
            auto got = co_await receive_within(*sub, std::chrono::seconds(5));
            EXPECT_TRUE(got.has_value()) << "node " << m;
            if (got) {
                EXPECT_EQ(got->payload, "from " + std::to_string(m));
            }
        }
        akv::request req;
        req.push("PUBLISH", "alerts.disk", "full");
        co_await rc.client.exec(req, akv::ignore);
        auto alert = co_await receive_within(*pattern, std::chrono::seconds(5));
        EXPECT_TRUE(alert.has_value());
        if (alert) {
            EXPECT_EQ(alert->channel, "alerts.disk");
        }
    }());
}

TEST(LayersCluster, ShardedSubscriptionsLiveOnTheNodeOfTheirSlotAndFollowIt) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    subscriber hub(rc.client);
    const auto channels = per_master(cluster, "orders.");
    std::vector<std::shared_ptr<subscription>> subs;
    auto spublish = [&](std::string channel, std::string payload) -> asio::awaitable<long long> {
        akv::request req;
        req.push("SPUBLISH", channel, payload); // routed by the channel's slot
        co_return co_await number(rc.client, std::move(req));
    };
    run_task(io, [&]() -> asio::awaitable<void> {
        for (const auto& ch : channels)
            subs.push_back(co_await hub.ssubscribe(one(ch)));
        for (std::size_t m = 0; m < 3; ++m) {
            EXPECT_EQ(co_await spublish(channels[m], "hello " + std::to_string(m)), 1)
                << channels[m];
            auto got = co_await receive_within(*subs[m], std::chrono::seconds(5));
            EXPECT_TRUE(got.has_value()) << channels[m];
            if (got) {
                EXPECT_EQ(got->type, message::kind::smessage);
                EXPECT_EQ(got->payload, "hello " + std::to_string(m));
            }
        }
    }());
    // Each subscription is held by the master of its channel's slot.
    for (std::size_t m = 0; m < 3; ++m) {
        const std::string count = cluster.command(m, {"PUBSUB", "SHARDNUMSUB", channels[m]});
        EXPECT_EQ(count, channels[m] + "\n:1") << "node " << m;
    }

    // The slot of channels[0] moves to node 1: node 0 drops the channel (an `sunsubscribe`
    // push) and the subscriber follows it there.
    const std::uint16_t slot = akv::cluster_slot(channels[0]);
    cluster.begin_migration(slot, 0, 1);
    cluster.migrate_keys(slot);
    cluster.finish_migration(slot, 1);
    const auto restored_before = hub.restored();
    run_task(io, [&]() -> asio::awaitable<void> {
        int sent = 0;
        const bool followed = co_await eventually(
            [&]() -> asio::awaitable<bool> {
                const std::string payload = "moved " + std::to_string(sent++);
                if (co_await spublish(channels[0], payload) == 0) co_return false;
                auto got = co_await receive_within(*subs[0], std::chrono::seconds(2));
                co_return got && got->payload == payload;
            },
            std::chrono::seconds(20));
        EXPECT_TRUE(followed);
        // The other channels were not disturbed.
        EXPECT_EQ(co_await spublish(channels[2], "still here"), 1);
        auto got = co_await receive_within(*subs[2], std::chrono::seconds(5));
        EXPECT_TRUE(got && got->payload == "still here");
        co_await subs[1]->unsubscribe();
        EXPECT_EQ(co_await spublish(channels[1], "nobody"), 0);
    }());
    EXPECT_GT(hub.restored(), restored_before);
    EXPECT_EQ(cluster.command(1, {"PUBSUB", "SHARDNUMSUB", channels[0]}), channels[0] + "\n:1");
    EXPECT_EQ(cluster.command(0, {"PUBSUB", "SHARDNUMSUB", channels[0]}), channels[0] + "\n:0");
    hub.stop();
}
