// akv::kv::embedding_table against a real server: batched insert/find with the values checked,
// each initializer kind, accumulate racing from eight coroutines, remove/size/clear,
// export/import, the bucket layout (raw little-endian floats other clients can read), tag
// migration with expiry, and save/restore in each table_store_mode.
#include "support/running_client.hpp"

#include <akv/kv/embedding_table.hpp>
#include <akv/testing/embedded_server.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace akv::test;
namespace kv = akv::kv;
namespace asio = boost::asio;

namespace {

akv::tfra_options options(int slices, std::size_t sending = 1024) {
    akv::tfra_options o;
    o.storage_slice = slices;
    o.keys_sending_size = sending;
    o.model_tag_old = "v1";
    o.model_tag_new = "v1";
    o.table_store_mode = 2;
    return o;
}

std::vector<std::int64_t> ids(std::int64_t from, std::int64_t to) {
    std::vector<std::int64_t> out;
    for (std::int64_t i = from; i < to; ++i)
        out.push_back(i * 7919 - 3); // negative and positive keys
    return out;
}

// Row i of key k: a value no other (key, column) shares.
float cell(std::int64_t key, std::size_t column) {
    return static_cast<float>(key % 100003) + static_cast<float>(column) / 128.0f;
}

std::vector<float> rows_for(const std::vector<std::int64_t>& keys, std::size_t dim) {
    std::vector<float> out(keys.size() * dim);
    for (std::size_t i = 0; i < keys.size(); ++i)
        for (std::size_t c = 0; c < dim; ++c)
            out[i * dim + c] = cell(keys[i], c);
    return out;
}

// Rows that differ from rows_for(): the first mismatching key index, or -1.
long long first_mismatch(const std::vector<std::int64_t>& keys, const std::vector<float>& got,
                         std::size_t dim) {
    if (got.size() != keys.size() * dim) return 0;
    for (std::size_t i = 0; i < keys.size(); ++i)
        for (std::size_t c = 0; c < dim; ++c)
            if (got[i * dim + c] != cell(keys[i], c)) return static_cast<long long>(i);
    return -1;
}

std::vector<std::string> words(std::size_t n) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back("user:" + std::to_string(i) + std::string(i % 5, '\0'));
    return out;
}

std::vector<float> filled(std::size_t n, float v) {
    return std::vector<float>(n, v);
}

asio::awaitable<akv::resp::value> command(akv::client& c, std::vector<std::string> args) {
    akv::request req;
    req.push(args.front(), std::vector<std::string>(args.begin() + 1, args.end()));
    akv::response<akv::resp::value> resp;
    co_await c.exec(req, resp);
    co_return std::get<0>(resp).value();
}
std::vector<std::string> args(std::string a, std::string b) {
    return {std::move(a), std::move(b)};
}
std::vector<std::string> args(std::string a, std::string b, std::string c) {
    return {std::move(a), std::move(b), std::move(c)};
}

std::string le_bytes(std::int64_t k) {
    std::string s(8, '\0');
    std::memcpy(s.data(), &k, 8);
    return s;
}

std::filesystem::path fresh_dir(const std::string& name) {
    auto dir = std::filesystem::temp_directory_path() /
               ("akv_embedding_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

} // namespace

TEST(EmbeddingTable, InsertThenFindReturnsTheValuesOf100kKeys) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const auto keys = ids(0, 100000);
    const auto rows = rows_for(keys, 64);
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::embedding_table<std::int64_t> t(rc.client, "emb", 64, options(4));
        co_await t.insert(keys, rows);
        EXPECT_EQ(co_await t.size(), keys.size());
        std::vector<float> got = co_await t.find(keys, kv::embedding_initializer::constant(-9));
        EXPECT_EQ(first_mismatch(keys, got, 64), -1);
    }());
}

TEST(EmbeddingTable, InsertOverwritesAndStringKeysRoundTrip) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const auto keys = words(3000);
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::embedding_table<std::string> t(rc.client, "names", 3, options(3, 100));
        const std::vector<float> rows1 = filled(keys.size() * 3, 1.5f);
        co_await t.insert(keys, rows1);
        std::vector<std::string> first(keys.begin(), keys.begin() + 10);
        const std::vector<float> rows2 = filled(first.size() * 3, -2.0f);
        co_await t.insert(first, rows2);
        std::vector<bool> found;
        std::vector<float> got(keys.size() * 3);
        co_await t.find_into(keys, kv::embedding_initializer::zeros(), got, found);
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < keys.size(); ++i) {
            EXPECT_TRUE(found[i]);
            for (std::size_t c = 0; c < 3; ++c)
                wrong += got[i * 3 + c] != (i < 10 ? -2.0f : 1.5f);
        }
        EXPECT_EQ(wrong, 0u);
        EXPECT_EQ(co_await t.size(), keys.size());
    }());
}

TEST(EmbeddingTable, MissingKeysGetEachInitializersValues) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const auto held = ids(0, 10);
    const auto asked = ids(0, 2010); // 10 held, 2000 missing
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::embedding_table<std::int64_t> t(rc.client, "init", 8, options(2));
        const std::vector<float> rows3 = rows_for(held, 8);
        co_await t.insert(held, rows3);

        auto zeros = co_await t.find(asked, kv::embedding_initializer::zeros());
        auto sevens = co_await t.find(asked, kv::embedding_initializer::constant(7.0f));
        auto normal = co_await t.find(asked, kv::embedding_initializer::random_normal(2, 0.5, 42));
        auto again = co_await t.find(asked, kv::embedding_initializer::random_normal(2, 0.5, 42));
        auto other = co_await t.find(asked, kv::embedding_initializer::random_normal(2, 0.5, 43));

        std::size_t wrong = 0;
        for (std::size_t i = 0; i < 10 * 8; ++i) {
            const float want = cell(held[i / 8], i % 8);
            wrong += zeros[i] != want || sevens[i] != want || normal[i] != want;
        }
        double sum = 0, squares = 0;
        const std::size_t n = (asked.size() - 10) * 8;
        for (std::size_t i = 10 * 8; i < asked.size() * 8; ++i) {
            wrong += zeros[i] != 0.0f || sevens[i] != 7.0f;
            sum += normal[i];
            squares += double(normal[i]) * normal[i];
        }
        EXPECT_EQ(wrong, 0u);
        const double mean = sum / n;
        const double stddev = std::sqrt(squares / n - mean * mean);
        EXPECT_NEAR(mean, 2.0, 0.03);
        EXPECT_NEAR(stddev, 0.5, 0.03);
        EXPECT_EQ(normal, again);          // seeded: the same vector for the same key
        EXPECT_NE(normal, other);          // another seed, other vectors
        EXPECT_EQ(co_await t.size(), 10u); // find does not insert
        // One key asked alone gets the vector it got in the big batch.
        std::vector<std::int64_t> one(asked.end() - 1, asked.end());
        auto alone = co_await t.find(one, kv::embedding_initializer::random_normal(2, 0.5, 42));
        EXPECT_TRUE(std::equal(alone.begin(), alone.end(), normal.end() - 8));
    }());
}

TEST(EmbeddingTable, AccumulateFromEightCoroutinesSumsExactly) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const auto keys = ids(0, 2000);
    const auto deltas = filled(keys.size() * 16, 1.0f);
    kv::embedding_table<std::int64_t> t(rc.client, "grad", 16, options(4, 128));
    constexpr int writers = 8, rounds = 5;
    int finished = 0;
    std::exception_ptr failure;
    for (int w = 0; w < writers; ++w) {
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                for (int r = 0; r < rounds; ++r)
                    co_await t.accumulate(keys, deltas);
            },
            [&](std::exception_ptr e) {
                if (e) failure = e;
                ++finished;
            });
    }
    ASSERT_TRUE(run_until(
        io, [&] { return finished == writers; }, 60s));
    if (failure) std::rethrow_exception(failure);
    run_task(io, [&]() -> asio::awaitable<void> {
        auto got = co_await t.find(keys, kv::embedding_initializer::zeros());
        std::size_t wrong = 0;
        for (float v : got)
            wrong += v != float(writers * rounds);
        EXPECT_EQ(wrong, 0u);
        EXPECT_EQ(co_await t.size(), keys.size());
    }());
}

TEST(EmbeddingTable, RemoveSizeAndClear) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const auto keys = ids(0, 5000);
    const auto gone = ids(0, 1000);
    const auto never = ids(900000, 900010);
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::embedding_table<std::int64_t> t(rc.client, "rm", 4, options(5, 300));
        EXPECT_EQ(co_await t.size(), 0u);
        const std::vector<float> rows4 = rows_for(keys, 4);
        co_await t.insert(keys, rows4);
        EXPECT_EQ(co_await t.size(), 5000u);
        EXPECT_EQ(co_await t.remove(gone), 1000u);
        EXPECT_EQ(co_await t.remove(never), 0u);
        EXPECT_EQ(co_await t.size(), 4000u);
        std::vector<bool> found;
        std::vector<float> got(keys.size() * 4);
        co_await t.find_into(keys, kv::embedding_initializer::zeros(), got, found);
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < keys.size(); ++i)
            wrong += found[i] != (i >= 1000);
        EXPECT_EQ(wrong, 0u);
        co_await t.clear();
        EXPECT_EQ(co_await t.size(), 0u);
    }());
}

TEST(EmbeddingTable, ExportThenImportRoundTrips) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const auto keys = ids(0, 20000);
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::embedding_table<std::int64_t> from(rc.client, "src", 32, options(3, 500));
        kv::embedding_table<std::int64_t> to(rc.client, "dst", 32, options(7, 256));
        const std::vector<float> rows5 = rows_for(keys, 32);
        co_await from.insert(keys, rows5);
        std::vector<std::int64_t> seen_keys;
        std::vector<float> seen_values;
        std::size_t pages = 0;
        kv::embedding_table<std::int64_t>::export_sink sink = [&](std::span<const std::int64_t> k,
                                                                  std::span<const float> v) {
            ++pages;
            seen_keys.insert(seen_keys.end(), k.begin(), k.end());
            seen_values.insert(seen_values.end(), v.begin(), v.end());
        };
        co_await from.export_entries(sink);
        EXPECT_EQ(seen_keys.size(), keys.size());
        EXPECT_GT(pages, 3u); // streamed, not one reply
        EXPECT_EQ(std::set<std::int64_t>(seen_keys.begin(), seen_keys.end()).size(), keys.size());
        EXPECT_EQ(first_mismatch(seen_keys, seen_values, 32), -1);
        co_await to.import_entries(seen_keys, seen_values);
        EXPECT_EQ(co_await to.size(), keys.size());
        auto got = co_await to.find(keys, kv::embedding_initializer::zeros());
        EXPECT_EQ(first_mismatch(keys, got, 32), -1);
    }());
}

TEST(EmbeddingTable, StorageSliceSpreadsKeysOverBucketsOfRawLittleEndianFloats) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const auto keys = ids(0, 8000);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::kv::key_schema schema("app:");
        kv::embedding_table<std::int64_t> t(rc.client, "spread", 2, options(8), schema);
        EXPECT_EQ(t.bucket_keys().size(), 8u);
        EXPECT_EQ(t.bucket_keys()[3], "app:{spread_v1_3}");
        const std::vector<float> rows6 = rows_for(keys, 2);
        co_await t.insert(keys, rows6);
        for (const auto& bucket : t.bucket_keys()) {
            auto n = co_await command(rc.client, args("HLEN", bucket));
            EXPECT_GT(std::stoll(n.str), 8000 / 8 / 2) << bucket; // roughly even
        }
        // Another client reads a value with plain HGET: two little-endian float32.
        const std::int64_t k = keys[123];
        auto raw =
            co_await command(rc.client, args("HGET", t.bucket_keys()[t.bucket_of(k)], le_bytes(k)));
        EXPECT_EQ(raw.str.size(), 8u);
        float v[2] = {0, 0};
        std::memcpy(v, raw.str.data(), std::min<std::size_t>(raw.str.size(), 8));
        EXPECT_EQ(v[0], cell(k, 0));
        EXPECT_EQ(v[1], cell(k, 1));
    }());
}

TEST(EmbeddingTable, Md5PrefixNameHidesTheTableAndTagInTheKeys) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    auto o = options(2);
    o.using_md5_prefix_name = true;
    kv::embedding_table<std::int64_t> t(rc.client, "emb", 4, o);
    // md5("emb_v1")
    EXPECT_EQ(t.bucket_keys()[0], "{d24b3fb08c99bd812cadf9293564d8e7_0}");
}

TEST(EmbeddingTable, BadOptionsAreRefusedWithTheirName) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    auto o = options(0);
    try {
        kv::embedding_table<std::int64_t> t(rc.client, "emb", 4, o);
        ADD_FAILURE() << "storage_slice 0 accepted";
    } catch (const boost::system::system_error& e) {
        EXPECT_NE(std::string(e.what()).find("storage_slice"), std::string::npos) << e.what();
    }
    o = options(1);
    o.table_store_mode = 3;
    EXPECT_THROW(kv::embedding_table<std::int64_t>(rc.client, "emb", 4, o),
                 boost::system::system_error);
}

TEST(EmbeddingTable, NewTagStartsFromTheOldTagsDataWithExpiry) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const auto keys = ids(0, 3000);
    const auto more = ids(5000, 5100);
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::embedding_table<std::int64_t> old_table(rc.client, "m", 8, options(4));
        const std::vector<float> rows7 = rows_for(keys, 8);
        co_await old_table.insert(keys, rows7);
        auto o = options(4);
        o.model_tag_old = "v1";
        o.model_tag_new = "v2";
        o.expire_model_tag_in_seconds = 3600;
        kv::embedding_table<std::int64_t> t(rc.client, "m", 8, o);
        EXPECT_EQ(t.old_bucket_keys(), old_table.bucket_keys());
        EXPECT_EQ(co_await t.open(), 4u);
        EXPECT_EQ(co_await t.open(), 0u); // the new tag has data now: not copied again
        EXPECT_EQ(co_await t.size(), keys.size());
        auto got = co_await t.find(keys, kv::embedding_initializer::zeros());
        EXPECT_EQ(first_mismatch(keys, got, 8), -1);
        for (const auto& bucket : t.bucket_keys()) {
            auto ttl = co_await command(rc.client, args("TTL", bucket));
            const long long seconds = std::stoll(ttl.str);
            EXPECT_GT(seconds, 0) << bucket;
            EXPECT_LE(seconds, 3600) << bucket;
        }
        // The new tag's writes leave the old tag alone.
        const std::vector<float> rows8 = rows_for(more, 8);
        co_await t.insert(more, rows8);
        EXPECT_EQ(co_await old_table.size(), keys.size());
        EXPECT_EQ(co_await t.size(), keys.size() + more.size());
        // The old tag's keys keep no expiry.
        auto old_ttl = co_await command(rc.client, args("TTL", old_table.bucket_keys()[0]));
        EXPECT_EQ(old_ttl.str, "-1");
    }());
}

TEST(EmbeddingTable, StoreMode0SavesToTheNamedCheckpointAndRestores) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const auto keys = ids(0, 4000);
    const auto extra = ids(7000, 7100);
    const auto dir = fresh_dir("mode0");
    const std::string file = (dir / "ckpt.emb").string();
    run_task(io, [&]() -> asio::awaitable<void> {
        auto o = options(3);
        o.table_store_mode = 0;
        kv::embedding_table<std::int64_t> t(rc.client, "ck", 16, o);
        const std::vector<float> rows9 = rows_for(keys, 16);
        co_await t.insert(keys, rows9);
        EXPECT_EQ(co_await t.save(file), keys.size());
        EXPECT_EQ(std::filesystem::file_size(file), 8 + 4 + 1 + 8 + keys.size() * (8 + 64));
        co_await t.clear();
        const std::vector<float> rows10 = rows_for(extra, 16);
        co_await t.insert(extra, rows10); // not in the checkpoint: goes away
        EXPECT_EQ(co_await t.restore(file), keys.size());
        EXPECT_EQ(co_await t.size(), keys.size());
        auto got = co_await t.find(keys, kv::embedding_initializer::zeros());
        EXPECT_EQ(first_mismatch(keys, got, 16), -1);
        // A table of another dimension refuses the file.
        kv::embedding_table<std::int64_t> wrong(rc.client, "ck2", 8, o);
        bool refused = false;
        try {
            co_await wrong.restore(file);
        } catch (const boost::system::system_error&) {
            refused = true;
        }
        EXPECT_TRUE(refused);
    }());
    std::filesystem::remove_all(dir);
}

TEST(EmbeddingTable, StoreMode0RoundTripsStringKeys) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const auto keys = words(500);
    const auto dir = fresh_dir("mode0s");
    const std::string file = (dir / "names.emb").string();
    run_task(io, [&]() -> asio::awaitable<void> {
        auto o = options(2);
        o.table_store_mode = 0;
        kv::embedding_table<std::string> t(rc.client, "names", 2, o);
        const std::vector<float> rows11 = filled(keys.size() * 2, 0.25f);
        co_await t.insert(keys, rows11);
        EXPECT_EQ(co_await t.save(file), keys.size());
        co_await t.clear();
        EXPECT_EQ(co_await t.restore(file), keys.size());
        std::vector<bool> found;
        std::vector<float> got(keys.size() * 2);
        co_await t.find_into(keys, kv::embedding_initializer::zeros(), got, found);
        EXPECT_EQ(std::count(found.begin(), found.end(), true), 500);
        EXPECT_EQ(std::count(got.begin(), got.end(), 0.25f), 1000);
    }());
    std::filesystem::remove_all(dir);
}

TEST(EmbeddingTable, StoreMode1DumpsBucketsToModelLibDirAndRestores) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const auto keys = ids(0, 4000);
    const auto extra = ids(7000, 7100);
    const auto dir = fresh_dir("mode1");
    run_task(io, [&]() -> asio::awaitable<void> {
        auto o = options(3);
        o.table_store_mode = 1;
        o.model_lib_abs_dir = dir.string();
        kv::embedding_table<std::int64_t> t(rc.client, "lib", 16, o);
        const std::vector<float> rows12 = rows_for(keys, 16);
        co_await t.insert(keys, rows12);
        EXPECT_EQ(co_await t.save("ignored"), 3u);
        for (std::size_t b = 0; b < 3; ++b) {
            EXPECT_EQ(t.dump_file(b), (dir / ("lib_v1_" + std::to_string(b) + ".dump")).string());
            EXPECT_TRUE(std::filesystem::exists(t.dump_file(b)));
        }
        EXPECT_FALSE(std::filesystem::exists("ignored"));
        co_await t.clear();
        const std::vector<float> rows13 = rows_for(extra, 16);
        co_await t.insert(extra, rows13);
        EXPECT_EQ(co_await t.restore("ignored"), 3u);
        EXPECT_EQ(co_await t.size(), keys.size());
        auto got = co_await t.find(keys, kv::embedding_initializer::zeros());
        EXPECT_EQ(first_mismatch(keys, got, 16), -1);
    }());
    std::filesystem::remove_all(dir);
}

TEST(EmbeddingTable, StoreMode2SavesNothingAndKeepsRedisData) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const auto keys = ids(0, 100);
    const auto dir = fresh_dir("mode2");
    const std::string file = (dir / "never.emb").string();
    run_task(io, [&]() -> asio::awaitable<void> {
        auto o = options(2);
        o.table_store_mode = 2;
        o.model_lib_abs_dir = dir.string();
        kv::embedding_table<std::int64_t> t(rc.client, "keep", 4, o);
        const std::vector<float> rows14 = rows_for(keys, 4);
        co_await t.insert(keys, rows14);
        EXPECT_EQ(co_await t.save(file), 0u);
        EXPECT_TRUE(std::filesystem::is_empty(dir));
        EXPECT_EQ(co_await t.restore(file), 0u);
        EXPECT_EQ(co_await t.size(), keys.size()); // restore left Redis as it was
    }());
    std::filesystem::remove_all(dir);
}

// 1M keys x dim 64 (256 MB of vectors): one insert and one find, values checked.
TEST(EmbeddingTable, OneMillionKeysOfDim64RoundTrip) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    const auto keys = ids(0, 1000000);
    const auto rows = rows_for(keys, 64);
    const auto started = std::chrono::steady_clock::now();
    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            kv::embedding_table<std::int64_t> t(rc.client, "big", 64, options(8));
            co_await t.insert(keys, rows);
            std::vector<float> got = co_await t.find(keys, kv::embedding_initializer::zeros());
            EXPECT_EQ(first_mismatch(keys, got, 64), -1);
            EXPECT_EQ(co_await t.size(), keys.size());
        }(),
        120s);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    std::cout << "1M x 64 insert+find: " << ms << " ms\n";
}
