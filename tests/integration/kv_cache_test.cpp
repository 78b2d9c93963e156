// The kv layer through client-side caching (config::cache): typed_map and the containers,
// embedding_table::find (a hot key set costs no round trip), blob_store::stat and the model
// registry, each answered from memory on a second read and fresh after another client's write.
#include "support/cache_history.hpp"
#include "support/eventually.hpp"
#include "support/running_client.hpp"

#include <akv/kv/blob_store.hpp>
#include <akv/kv/embedding_table.hpp>
#include <akv/kv/model_registry.hpp>
#include <akv/kv/typed_map.hpp>
#include <akv/testing/embedded_server.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

using namespace akv::test;
namespace kv = akv::kv;
namespace asio = boost::asio;

namespace {

akv::config cached(akv::config cfg) {
    cfg.cache.kind = akv::cache_options::mode::tracking;
    return cfg;
}

// Requests the client wrote, not counting its own health-check PINGs.
std::uint64_t requests_written(akv::client& c) {
    const auto s = c.stats().connections;
    return s.requests_written - s.health_pings;
}

} // namespace

TEST(KvCache, TypedMapReadsAreServedFromMemoryUntilChanged) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client reader(io, cached(server.config()));
    running_client writer(io, server.config());
    invalidation_log told(reader.client);
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::typed_map<std::string, int> w(writer.client, "scores");
        kv::typed_map<std::string, int> r(reader.client, "scores");
        co_await w.set("a", 1);
        co_await w.set("b", 2);
        EXPECT_EQ(co_await r.get("a"), 1);
        const std::vector<std::string> ab{"a", "b", "c"};
        auto many = co_await r.get_many(ab);
        EXPECT_EQ(many, (std::vector<std::optional<int>>{1, 2, std::nullopt}));
        const auto before = requests_written(reader.client);
        for (int i = 0; i < 10; ++i) {
            EXPECT_EQ(co_await r.get("a"), 1);
            EXPECT_EQ(co_await r.get_many(ab), many);
        }
        EXPECT_EQ(requests_written(reader.client), before) << "every read from memory";
        co_await w.set("a", 10);
        EXPECT_TRUE(co_await told.wait_for(r.key()));
        EXPECT_EQ(co_await r.get("a"), 10);
        const std::vector<std::optional<int>> fresh{10, 2, std::nullopt};
        const auto again = co_await r.get_many(ab);
        EXPECT_EQ(again, fresh);
    }());
}

TEST(KvCache, EmbeddingFindOfHotKeysCostsNoRoundTrip) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client reader(io, cached(server.config()));
    running_client writer(io, server.config());
    akv::tfra_options options;
    options.storage_slice = 4;
    options.keys_sending_size = 100;
    options.table_store_mode = 2;
    std::vector<std::int64_t> keys(1024);
    for (std::size_t i = 0; i < keys.size(); ++i)
        keys[i] = static_cast<std::int64_t>(i * 31);
    std::vector<float> rows(keys.size() * 8);
    for (std::size_t i = 0; i < rows.size(); ++i)
        rows[i] = float(i);
    invalidation_log told(reader.client);
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::embedding_table<std::int64_t> w(writer.client, "emb", 8, options);
        kv::embedding_table<std::int64_t> r(reader.client, "emb", 8, options);
        co_await w.insert(keys, rows);
        EXPECT_EQ(co_await r.find(keys, kv::embedding_initializer::zeros()), rows);
        const auto before = requests_written(reader.client);
        for (int i = 0; i < 5; ++i)
            EXPECT_EQ(co_await r.find(keys, kv::embedding_initializer::zeros()), rows);
        EXPECT_EQ(requests_written(reader.client), before);
        EXPECT_GE(reader.client.stats().cache.hits, 5u * keys.size());
        // One key changes: its bucket is announced and the next find reads it fresh.
        std::vector<float> changed(8, -1.0f);
        const std::vector<std::int64_t> one{keys[7]};
        co_await w.insert(one, changed);
        const std::string bucket = r.bucket_keys()[r.bucket_of(keys[7])];
        EXPECT_TRUE(co_await told.wait_for(bucket));
        auto got = co_await r.find(keys, kv::embedding_initializer::zeros());
        std::copy(changed.begin(), changed.end(), rows.begin() + 7 * 8);
        EXPECT_EQ(got, rows);
    }());
}

TEST(KvCache, BlobStatAndRegistryLatestAreCachedAndAnnounced) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client reader(io, cached(server.config()));
    running_client writer(io, server.config());
    invalidation_log told(reader.client);
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::blob_store wb(writer.client), rb(reader.client);
        co_await wb.put("doc", "v1");
        EXPECT_EQ((co_await rb.stat("doc"))->size, 2u);
        const auto before = requests_written(reader.client);
        EXPECT_EQ((co_await rb.stat("doc"))->size, 2u);
        EXPECT_EQ(requests_written(reader.client), before);
        const auto hits = reader.client.stats().cache.hits;
        co_await wb.put("doc", "version 2");
        EXPECT_TRUE(co_await eventually([&]() -> asio::awaitable<bool> {
            co_return reader.client.stats().cache.invalidations > 0;
        }));
        EXPECT_EQ((co_await rb.stat("doc"))->size, 9u);
        EXPECT_EQ(reader.client.stats().cache.hits, hits);

        kv::model_registry wr(writer.client, "clf"), rr(reader.client, "clf");
        kv::model m;
        m.metadata = "{}";
        m.files["model.json"] = R"({"kind":"logistic","weights":[1],"bias":0})";
        co_await wr.save(m);
        EXPECT_EQ(co_await rr.latest(), 1u);
        const auto watched = rr.watched_keys("latest");
        if (watched.size() != 1u) {
            ADD_FAILURE() << "watched: " << watched.size();
            co_return;
        }
        EXPECT_TRUE(watched.front().starts_with(kv::model_registry::key_prefix("clf")));
        co_await wr.save(m);
        EXPECT_TRUE(co_await told.wait_for(watched.front()));
        EXPECT_EQ(co_await rr.latest(), 2u);
    }());
}
