// akv::kv::model_registry against a real server: tar.gz round trips of directory trees,
// versions with metadata, tags, auto-load, errors that leave `latest` alone, and disk -> Redis.
#include "support/errors.hpp"
#include "support/running_client.hpp"

#include <akv/cluster_slot.hpp>
#include <akv/kv/key_schema.hpp>
#include <akv/kv/model_registry.hpp>
#include <akv/testing/embedded_cluster.hpp>
#include <akv/testing/embedded_server.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

using namespace akv::test;
using akv::kv::model;
using akv::kv::model_registry;
using akv::kv::model_registry_options;
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t MB = 1u << 20;

std::string random_bytes(std::size_t size, std::uint64_t seed) {
    std::mt19937_64 gen(seed);
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; i += 8) {
        const std::uint64_t r = gen();
        for (std::size_t j = 0; j < 8 && i + j < size; ++j)
            s[i + j] = static_cast<char>(r >> (8 * j));
    }
    return s;
}

// A temporary directory removed with the object.
class temp_dir {
public:
    temp_dir() {
        std::random_device rd;
        path = fs::temp_directory_path() /
               ("akv-model-" + std::to_string(rd()) + "-" + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path path;
};

void write_file(const fs::path& p, const std::string& data) {
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A model directory as SKOL saves one: nested directories, an empty file, an empty directory,
// a 3 MB random binary, text with every byte value.
void make_model_tree(const fs::path& root) {
    std::string all_bytes;
    for (int i = 0; i < 256; ++i)
        all_bytes += static_cast<char>(i);
    write_file(root / "pipeline_model" / "metadata" / "part-00000", "{\"class\":\"Pipeline\"}\n");
    write_file(root / "pipeline_model" / "stages" / "0_tokenizer" / "data.bin", all_bytes);
    write_file(root / "classifier_model" / "weights.bin", random_bytes(3 * MB, 42));
    write_file(root / "classifier_model" / "_SUCCESS", "");
    fs::create_directories(root / "classifier_model" / "empty_dir");
    write_file(root / "labels.txt", "Nomenclature\nDescription\nMisc-exposition\n");
}

// Every regular file under `root` by relative path, and every directory.
std::map<std::string, std::string> files_under(const fs::path& root) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
        const std::string rel = e.path().lexically_relative(root).generic_string();
        if (e.is_regular_file())
            out[rel] = read_file(e.path());
        else if (e.is_directory())
            out[rel + "/"] = "<dir>";
    }
    return out;
}

model small_model(std::string content, std::string metadata) {
    model m;
    m.files["weights.bin"] = std::move(content);
    m.metadata = std::move(metadata);
    return m;
}

template <class... Args>
asio::awaitable<void> command(akv::client& c, std::string_view name, Args... args) {
    akv::request req;
    req.push(name, args...);
    akv::response<akv::resp::value> resp;
    co_await c.exec(req, resp);
    EXPECT_TRUE(std::get<0>(resp).has_value()) << std::get<0>(resp).error().message;
}

asio::awaitable<std::vector<std::string>> keys_matching(akv::client& c, std::string pattern) {
    akv::request req;
    req.push("KEYS", pattern);
    akv::response<std::vector<std::string>> resp;
    co_await c.exec(req, resp);
    co_return std::get<0>(resp).value();
}

std::string run_command(const std::string& cmd) {
    std::string out;
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
    if (!pipe) return out;
    std::array<char, 4096> buf;
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe.get())) > 0)
        out.append(buf.data(), n);
    return out;
}

} // namespace

TEST(ModelRegistry, RoundTripsADirectoryTreeWithBinaryFiles) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    temp_dir source, target;
    make_model_tree(source.path);
    run_task(io, [&]() -> asio::awaitable<void> {
        model_registry_options options;
        options.blobs.chunk_size = 1 * MB;
        model_registry reg(rc.client, "skol", options);
        const std::uint64_t v = co_await reg.save_directory(source.path, R"({"labels":3})");
        EXPECT_EQ(v, 1u);
        model_registry other(rc.client, "skol", options);
        const model back = co_await other.load_to_directory("latest", target.path);
        EXPECT_EQ(back.version, 1u);
        EXPECT_EQ(back.metadata, R"({"labels":3})");
        EXPECT_EQ(back.files.at("classifier_model/_SUCCESS"), "");
        EXPECT_TRUE(back.directories.count("classifier_model/empty_dir"));
        // Stored chunked (3 MB of random bytes do not compress below the 1 MB chunks).
        const auto meta = co_await reg.archives().stat(model_registry::archive_name(1));
        EXPECT_TRUE(meta && meta->content_type == "application/gzip" && meta->chunks >= 3);
    }());
    const auto expected = files_under(source.path);
    const auto got = files_under(target.path);
    EXPECT_EQ(expected.size(), got.size());
    EXPECT_TRUE(expected == got) << "the unpacked tree differs from the saved one";
    EXPECT_EQ(got.at("classifier_model/weights.bin").size(), 3 * MB);
}

TEST(ModelRegistry, ArchiveIsAPlainTarGzUnderTheModelsHashTag) {
    akv::testing::embedded_server server;
    temp_dir dir;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        model_registry reg(rc.client, "skol");
        co_await reg.save(small_model("abc", "{}"));
        for (const std::string& key : co_await keys_matching(rc.client, "*"))
            EXPECT_EQ(akv::kv::hash_tag(key), "skol") << key;
        const std::optional<std::string> archive = co_await reg.archives().get("v1");
        EXPECT_TRUE(archive && archive->size() > 2 && (*archive)[0] == '\x1f' &&
                    (*archive)[1] == '\x8b')
            << "not gzip";
        if (!archive) co_return;
        write_file(dir.path / "v1.tar.gz", *archive);
    }());
    // Any tar reads it.
    const std::string listing = run_command("tar -tzf " + (dir.path / "v1.tar.gz").string());
    EXPECT_EQ(listing, "weights.bin\n");
    const std::string content =
        run_command("tar -xzOf " + (dir.path / "v1.tar.gz").string() + " weights.bin");
    EXPECT_EQ(content, "abc");
}

TEST(ModelRegistry, ListsVersionsWithMetadataAndMovesLatest) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        model_registry reg(rc.client, "skol");
        EXPECT_TRUE((co_await reg.versions()).empty());
        EXPECT_EQ(co_await reg.latest(), std::nullopt);
        const auto before = std::chrono::system_clock::now() - std::chrono::minutes(1);
        EXPECT_EQ(co_await reg.save(small_model("one", R"({"model_type":"logistic"})")), 1u);
        EXPECT_EQ(co_await reg.save(small_model("two!", R"({"model_type":"random_forest"})")), 2u);
        EXPECT_EQ(co_await reg.latest(), std::optional<std::uint64_t>(2));
        const auto versions = co_await reg.versions();
        EXPECT_EQ(versions.size(), 2u);
        if (versions.size() != 2) co_return;
        EXPECT_EQ(versions[0].version, 1u);
        EXPECT_EQ(versions[0].metadata, R"({"model_type":"logistic"})");
        EXPECT_EQ(versions[0].files, 1u);
        EXPECT_EQ(versions[0].unpacked_size, 3u);
        EXPECT_GT(versions[0].archive_size, 0u);
        EXPECT_GT(versions[0].created, before);
        EXPECT_EQ(versions[1].version, 2u);
        EXPECT_EQ(versions[1].metadata, R"({"model_type":"random_forest"})");
        EXPECT_EQ(versions[1].unpacked_size, 4u);
        EXPECT_EQ((co_await reg.load("v1")).files.at("weights.bin"), "one");
        EXPECT_EQ((co_await reg.load("skol:v2")).files.at("weights.bin"), "two!");
        EXPECT_EQ((co_await reg.load()).version, 2u);
    }());
}

TEST(ModelRegistry, TagsNameVersionsAndFollowMoves) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        model_registry reg(rc.client, "skol");
        co_await reg.save(small_model("one", "{}"));
        co_await reg.save(small_model("two", "{}"));
        co_await reg.tag("production", 1);
        co_await reg.tag("candidate", 2);
        EXPECT_EQ((co_await reg.load("production")).files.at("weights.bin"), "one");
        EXPECT_EQ((co_await reg.load("candidate")).files.at("weights.bin"), "two");
        co_await reg.tag("production", 2); // promote
        EXPECT_EQ((co_await reg.load("production")).version, 2u);
        const auto tags = co_await reg.tags();
        EXPECT_EQ(tags,
                  (std::map<std::string, std::uint64_t>{{"candidate", 2}, {"production", 2}}));
        const auto versions = co_await reg.versions();
        EXPECT_EQ(versions.at(1).tags, (std::vector<std::string>{"candidate", "production"}));
        EXPECT_TRUE(versions.at(0).tags.empty());

        const auto missing = co_await error_of([&] { return reg.tag("x", 9); });
        EXPECT_EQ(missing.code(), akv::error::not_found);
        EXPECT_TRUE(contains(missing.what(), "skol:v9"));
        EXPECT_TRUE(co_await reg.untag("candidate"));
        const auto gone = co_await error_of([&] { return reg.load("candidate"); });
        EXPECT_EQ(gone.code(), akv::error::not_found);
        EXPECT_TRUE(contains(gone.what(), "\"candidate\""));
        bool refused = false;
        try {
            co_await reg.tag("latest", 1);
        } catch (const std::invalid_argument&) {
            refused = true;
        }
        EXPECT_TRUE(refused) << "\"latest\" is not a tag name";
    }());
}

TEST(ModelRegistry, OpenAutoLoadsTheLatestVersionWhenTheModelExists) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        model_registry fresh = co_await model_registry::open(rc.client, "skol");
        EXPECT_FALSE(fresh.current().has_value()) << "nothing saved yet: nothing to load";
        EXPECT_FALSE(co_await fresh.exists());
        co_await fresh.save(small_model("one", R"({"labels":["a"]})"));
        co_await fresh.save(small_model("two", R"({"labels":["a","b"]})"));

        model_registry loaded = co_await model_registry::open(rc.client, "skol");
        EXPECT_TRUE(loaded.current().has_value());
        if (!loaded.current()) co_return;
        EXPECT_EQ(loaded.current()->version, 2u);
        EXPECT_EQ(loaded.current()->files.at("weights.bin"), "two");
        EXPECT_EQ(loaded.current()->metadata, R"({"labels":["a","b"]})");

        model_registry other = co_await model_registry::open(rc.client, "other_model");
        EXPECT_FALSE(other.current().has_value());
    }());
}

TEST(ModelRegistry, MissingModelVersionOrTagIsNotFound) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        model_registry reg(rc.client, "absent");
        const auto none = co_await error_of([&] { return reg.load(); });
        EXPECT_EQ(none.code(), akv::error::not_found);
        EXPECT_TRUE(contains(none.what(), "\"absent\""));
        co_await reg.save(small_model("x", "{}"));
        const auto v7 = co_await error_of([&] { return reg.load("v7"); });
        EXPECT_EQ(v7.code(), akv::error::not_found);
        EXPECT_TRUE(contains(v7.what(), "\"v7\""));
    }());
}

TEST(ModelRegistry, CorruptArchiveIsAClearError) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        model_registry reg(rc.client, "skol");
        co_await reg.save(small_model("good", "{}"));
        // Garbage that is not gzip, then gzip's magic followed by garbage.
        co_await reg.archives().put(model_registry::archive_name(1), "this is not an archive");
        const auto not_gzip = co_await error_of([&] { return reg.load(); });
        EXPECT_EQ(not_gzip.code(), akv::error::corrupt_archive);
        EXPECT_TRUE(contains(not_gzip.what(), "skol:v1"));
        std::string damaged = "\x1f\x8b";
        damaged += random_bytes(5000, 7);
        co_await reg.archives().put(model_registry::archive_name(1), damaged);
        const auto bad_gzip =
            co_await error_of([&] { return model_registry::open(rc.client, "skol"); });
        EXPECT_EQ(bad_gzip.code(), akv::error::corrupt_archive);

        // Overwritten through the raw keys, as another client would.
        co_await reg.save(small_model("good", "{}"));
        const auto meta = co_await reg.archives().stat(model_registry::archive_name(2));
        EXPECT_TRUE(meta.has_value() && meta->chunks == 1);
        if (!meta) co_return;
        co_await command(
            rc.client, "SET",
            reg.archives().chunk_key(model_registry::archive_name(2), meta->generation, 0),
            std::string(meta->size, 'Z'));
        const auto raw = co_await error_of([&] { return reg.load("v2"); });
        EXPECT_EQ(raw.code(), akv::error::corrupt_archive);
    }());
}

TEST(ModelRegistry, OversizedSaveFailsAndLeavesLatestUnchanged) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        model_registry_options options;
        options.blobs.max_object_size = 1 * MB;
        model_registry reg(rc.client, "skol", options);
        co_await reg.save(small_model("small", R"({"v":1})"));
        model big;
        big.files["weights.bin"] = random_bytes(2 * MB, 3); // random: does not compress
        const auto e = co_await error_of([&] { return reg.save(big); });
        EXPECT_EQ(e.code(), akv::error::object_too_large);
        EXPECT_TRUE(contains(e.what(), "\"skol\""));
        EXPECT_EQ(co_await reg.latest(), std::optional<std::uint64_t>(1));
        EXPECT_EQ((co_await reg.versions()).size(), 1u);
        model_registry reader(rc.client, "skol");
        const model back = co_await reader.load();
        EXPECT_EQ(back.files.at("weights.bin"), "small");
        EXPECT_EQ(back.metadata, R"({"v":1})");
    }());
}

TEST(ModelRegistry, ErasingAVersionMovesLatestBackAndDropsItsTags) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        model_registry reg(rc.client, "skol");
        co_await reg.save(small_model("one", "{}"));
        co_await reg.save(small_model("two", "{}"));
        co_await reg.save(small_model("three", "{}"));
        co_await reg.tag("production", 3);
        EXPECT_TRUE(co_await reg.erase(3));
        EXPECT_FALSE(co_await reg.erase(3));
        EXPECT_EQ(co_await reg.latest(), std::optional<std::uint64_t>(2));
        EXPECT_TRUE((co_await reg.tags()).empty());
        EXPECT_FALSE(co_await reg.archives().exists(model_registry::archive_name(3)));
        const auto gone = co_await error_of([&] { return reg.load("v3"); });
        EXPECT_EQ(gone.code(), akv::error::not_found);

        EXPECT_TRUE(co_await reg.erase(1)); // not the latest: latest stays
        EXPECT_EQ(co_await reg.latest(), std::optional<std::uint64_t>(2));
        std::vector<std::uint64_t> left;
        for (const auto& v : co_await reg.versions())
            left.push_back(v.version);
        EXPECT_EQ(left, std::vector<std::uint64_t>{2});
        EXPECT_EQ((co_await reg.load()).files.at("weights.bin"), "two");

        EXPECT_TRUE(co_await reg.erase(2));
        EXPECT_FALSE(co_await reg.exists());
        // Numbers are never reused: a new save after erasing everything is v4.
        EXPECT_EQ(co_await reg.save(small_model("four", "{}")), 4u);
    }());
}

TEST(ModelRegistry, MigratesADiskModelToRedisAndBack) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    temp_dir old_model, restored;
    make_model_tree(old_model.path);
    // An old disk-only model: load_from_disk, then save_to_redis.
    const model on_disk = akv::kv::read_directory(old_model.path);
    EXPECT_EQ(on_disk.files.size(), 5u);
    run_task(io, [&]() -> asio::awaitable<void> {
        model_registry reg(rc.client, "migrated_model");
        const std::uint64_t v = co_await reg.save_directory(old_model.path, R"({"source":"disk"})");
        model_registry loaded = co_await model_registry::open(rc.client, "migrated_model");
        EXPECT_TRUE(loaded.current() && loaded.current()->version == v);
        if (!loaded.current()) co_return;
        EXPECT_TRUE(loaded.current()->files == on_disk.files);
        EXPECT_TRUE(loaded.current()->directories == on_disk.directories);
        akv::kv::write_directory(*loaded.current(), restored.path);
    }());
    EXPECT_TRUE(files_under(old_model.path) == files_under(restored.path));
}

TEST(ModelRegistry, RefusesNamesThatBreakTheHashTag) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    EXPECT_THROW(model_registry(rc.client, ""), std::invalid_argument);
    EXPECT_THROW(model_registry(rc.client, "a{b}"), std::invalid_argument);
}

TEST(ModelRegistry, WorksOverAClusterWithEachModelOnItsSlot) {
    akv::testing::embedded_cluster cluster;
    asio::io_context io;
    running_client rc(io, cluster.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        model_registry_options options;
        options.blobs.chunk_size = 256 * 1024; // archives of several chunks, all on one slot
        std::set<std::size_t> masters;
        for (const std::string name : {"alpha", "beta", "gamma", "delta", "epsilon"}) {
            model_registry reg(rc.client, name, options);
            model m = small_model(random_bytes(1 * MB, name.size()), R"({"name":")" + name + "\"}");
            m.files["nested/dir/labels.txt"] = name;
            co_await reg.save(m);
            co_await reg.save(m);
            co_await reg.tag("production", 1);
            EXPECT_TRUE(co_await reg.erase(2));
            model_registry loaded = co_await model_registry::open(rc.client, name, options);
            EXPECT_TRUE(loaded.current() && loaded.current()->version == 1 &&
                        loaded.current()->files == m.files)
                << name;
            const auto versions = co_await reg.versions();
            EXPECT_EQ(versions.size(), 1u) << name;
            EXPECT_EQ(versions.at(0).tags, std::vector<std::string>{"production"});
            masters.insert(cluster.master_of(akv::cluster_slot(reg.key("latest"))));
        }
        EXPECT_GT(masters.size(), 1u) << "the models should spread over the masters";
    }());
}
