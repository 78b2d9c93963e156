// akv::kv::embedding_table on a three-master Redis Cluster: storage_slice buckets land on every
// master, and batched find/insert/accumulate/export/remove, the tag migration (DUMP/RESTORE
// across slots) and a mode 1 save/restore work through one client unchanged.
#include "support/running_client.hpp"

#include <akv/cluster_slot.hpp>
#include <akv/kv/embedding_table.hpp>
#include <akv/testing/embedded_cluster.hpp>

#include <filesystem>
#include <map>
#include <set>

using namespace akv::test;
namespace asio = boost::asio;
namespace kv = akv::kv;

namespace {

std::vector<std::int64_t> ids(std::int64_t from, std::int64_t to) {
    std::vector<std::int64_t> out;
    for (std::int64_t i = from; i < to; ++i)
        out.push_back(i * 104729 + 1);
    return out;
}

float cell(std::int64_t key, std::size_t column) {
    return static_cast<float>(key % 65521) + static_cast<float>(column) / 64.0f;
}

std::vector<float> rows_for(const std::vector<std::int64_t>& keys, std::size_t dim) {
    std::vector<float> out(keys.size() * dim);
    for (std::size_t i = 0; i < keys.size(); ++i)
        for (std::size_t c = 0; c < dim; ++c)
            out[i * dim + c] = cell(keys[i], c);
    return out;
}

std::size_t mismatches(const std::vector<std::int64_t>& keys, const std::vector<float>& got,
                       std::size_t dim, float plus = 0) {
    if (got.size() != keys.size() * dim) return keys.size();
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < keys.size(); ++i)
        for (std::size_t c = 0; c < dim; ++c)
            wrong += got[i * dim + c] != cell(keys[i], c) + plus;
    return wrong;
}

akv::tfra_options options(std::string old_tag, std::string new_tag) {
    akv::tfra_options o;
    o.storage_slice = 6;
    o.keys_sending_size = 512;
    o.model_tag_old = std::move(old_tag);
    o.model_tag_new = std::move(new_tag);
    o.expire_model_tag_in_seconds = 600;
    o.table_store_mode = 1;
    return o;
}

} // namespace

TEST(EmbeddingCluster, BucketsSpreadOverEveryMasterAndEveryOperationWorks) {
    akv::testing::embedded_cluster_options cluster_options;
    cluster_options.replicas_per_master = 0;
    akv::testing::embedded_cluster cluster(cluster_options);
    asio::io_context io;
    running_client rc(io, cluster.config());
    const auto keys = ids(0, 30000);
    const auto rows = rows_for(keys, 32);
    const auto ones = std::vector<float>(keys.size() * 32, 1.0f);
    const auto dir = std::filesystem::temp_directory_path() /
                     ("akv_embedding_cluster_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);

    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            kv::embedding_table<std::int64_t> t(rc.client, "emb", 32, options("v1", "v1"));
            std::map<std::size_t, std::size_t> buckets_per_master;
            for (const auto& bucket : t.bucket_keys())
                ++buckets_per_master[cluster.master_of(akv::cluster_slot(bucket))];
            EXPECT_EQ(buckets_per_master.size(), 3u) << "6 buckets on fewer than 3 masters";

            co_await t.insert(keys, rows);
            EXPECT_EQ(co_await t.size(), keys.size());
            auto got = co_await t.find(keys, kv::embedding_initializer::constant(-1));
            EXPECT_EQ(mismatches(keys, got, 32), 0u);

            co_await t.accumulate(keys, ones);
            got = co_await t.find(keys, kv::embedding_initializer::zeros());
            EXPECT_EQ(mismatches(keys, got, 32, 1.0f), 0u);

            std::size_t exported = 0;
            kv::embedding_table<std::int64_t>::export_sink count =
                [&](std::span<const std::int64_t> k, std::span<const float>) {
                    exported += k.size();
                };
            co_await t.export_entries(count);
            EXPECT_EQ(exported, keys.size());

            // v1 -> v2: every bucket copied across slots, with the expiry.
            auto moved = options("v1", "v2");
            moved.model_lib_abs_dir = dir.string();
            kv::embedding_table<std::int64_t> next(rc.client, "emb", 32, moved);
            EXPECT_EQ(co_await next.open(), 6u);
            got = co_await next.find(keys, kv::embedding_initializer::zeros());
            EXPECT_EQ(mismatches(keys, got, 32, 1.0f), 0u);

            // Mode 1: every bucket dumped to model_lib_abs_dir and restored on its own node.
            EXPECT_EQ(co_await next.save(""), 6u);
            co_await next.clear();
            EXPECT_EQ(co_await next.size(), 0u);
            EXPECT_EQ(co_await next.restore(""), 6u);
            EXPECT_EQ(co_await next.size(), keys.size());

            const std::vector<std::int64_t> half(keys.begin(), keys.begin() + keys.size() / 2);
            EXPECT_EQ(co_await next.remove(half), half.size());
            EXPECT_EQ(co_await next.size(), keys.size() - half.size());
            co_await t.clear();
            EXPECT_EQ(co_await t.size(), 0u);
            EXPECT_EQ(co_await next.size(), keys.size() - half.size()); // tags do not share data
        }(),
        120s);

    // The restored buckets of v2 carry the expiry: checked on the nodes themselves.
    kv::embedding_table<std::int64_t> next(rc.client, "emb", 32, options("v1", "v2"));
    run_task(io, [&]() -> asio::awaitable<void> {
        for (const auto& bucket : next.bucket_keys()) {
            akv::request req;
            req.push("TTL", bucket);
            akv::response<long long> ttl;
            co_await rc.client.exec(req, ttl);
            EXPECT_GT(std::get<0>(ttl).value(), 0) << bucket;
        }
    }());
    std::filesystem::remove_all(dir);
}
