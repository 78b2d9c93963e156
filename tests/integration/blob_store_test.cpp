// akv::kv::blob_store against a real server: chunking, atomic overwrites, exact totals, limits,
// streaming, and a layout plain redis-cli can read.
#include "support/eventually.hpp"
#include "support/running_client.hpp"

#include <akv/kv/blob_store.hpp>
#include <akv/testing/embedded_server.hpp>

#include "support/errors.hpp"
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>

using akv::test::contains;

using namespace akv::test;
using akv::kv::blob_attributes;
using akv::kv::blob_meta;
using akv::kv::blob_options;
using akv::kv::blob_store;
namespace asio = boost::asio;

namespace {

constexpr std::size_t MB = 1u << 20;

// Byte `offset` of the pattern `seed`: any slice can be made (or checked) on its own.
void fill_pattern(char* out, std::size_t n, std::uint64_t offset, std::uint64_t seed) {
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t at = offset + i;
        std::uint64_t z = (at / 8) + seed * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        out[i] = static_cast<char>(z >> (8 * (at % 8)));
    }
}

std::string pattern(std::size_t size, std::uint64_t seed) {
    std::string s(size, '\0');
    fill_pattern(s.data(), size, 0, seed);
    return s;
}

blob_options with_chunks(std::size_t chunk_size) {
    blob_options o;
    o.chunk_size = chunk_size;
    return o;
}

asio::awaitable<long long> dbsize(akv::client& c) {
    akv::request req;
    req.push("DBSIZE");
    akv::response<long long> resp;
    co_await c.exec(req, resp);
    co_return std::get<0>(resp).value();
}

asio::awaitable<std::set<std::string>> keys_matching(akv::client& c, std::string pattern) {
    akv::request req;
    req.push("KEYS", pattern);
    akv::response<std::set<std::string>> resp;
    co_await c.exec(req, resp);
    co_return std::get<0>(resp).value();
}

template <class... Args>
asio::awaitable<void> command(akv::client& c, std::string_view name, Args... args) {
    akv::request req;
    req.push(name, args...);
    akv::response<akv::resp::value> resp;
    co_await c.exec(req, resp);
    EXPECT_TRUE(std::get<0>(resp).has_value()) << std::get<0>(resp).error().message;
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(asio::use_awaitable);
}

// The system_error `op` throws; a test failure if it throws none.
template <class T> asio::awaitable<boost::system::system_error> error_of(asio::awaitable<T> op) {
    try {
        co_await std::move(op);
    } catch (const boost::system::system_error& e) {
        co_return e;
    }
    ADD_FAILURE() << "no error was thrown";
    co_return boost::system::system_error(boost::system::error_code{}, "no error");
}

// Runs `tasks` concurrently on the caller's executor and waits for all; rethrows the first error.
asio::awaitable<void> all_of(std::vector<std::function<asio::awaitable<void>()>> tasks) {
    auto ex = co_await asio::this_coro::executor;
    auto remaining = std::make_shared<std::size_t>(tasks.size());
    auto failure = std::make_shared<std::exception_ptr>();
    for (auto& task : tasks)
        asio::co_spawn(ex, task(), [remaining, failure](std::exception_ptr e) {
            if (e && !*failure) *failure = e;
            --*remaining;
        });
    const std::function<asio::awaitable<bool>()> all_done = [remaining]() -> asio::awaitable<bool> {
        co_return *remaining == 0;
    };
    EXPECT_TRUE(co_await eventually(all_done, std::chrono::seconds(120)));
    if (*failure) std::rethrow_exception(*failure);
}

// Every manifest of the store, and what they add up to.
struct census {
    std::uint64_t objects = 0;
    std::uint64_t bytes = 0;
    std::uint64_t chunks = 0;
};

asio::awaitable<census> count_manifests(akv::client& c, blob_store& store) {
    census total;
    const std::string prefix = store.options().key_prefix;
    for (const std::string& key : co_await keys_matching(c, prefix + "{*}:meta")) {
        const std::string name = key.substr(prefix.size() + 1, key.size() - prefix.size() - 7);
        const auto meta = co_await store.stat(name);
        EXPECT_TRUE(meta.has_value()) << key;
        if (!meta) continue;
        ++total.objects;
        total.bytes += meta->size;
        total.chunks += meta->chunks;
    }
    co_return total;
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

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = text.find('\n', start);
        lines.push_back(text.substr(start, end - start));
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return lines;
}

blob_attributes png_with_owner() {
    blob_attributes a;
    a.content_type = "image/png";
    a.user["owner"] = "ada";
    a.user["camera"] = "x100";
    return a;
}

} // namespace

TEST(BlobStore, RoundTripsObjectsAroundTheChunkSize) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_options o = with_chunks(8 * MB);
        o.max_object_size = 256 * MB;
        blob_store store(rc.client, o);
        const std::size_t sizes[] = {0, 1, 1000, 8 * MB - 1, 8 * MB, 8 * MB + 1, 24 * MB + 5};
        std::uint64_t seed = 1;
        for (const std::size_t size : sizes) {
            const std::string name = "object-" + std::to_string(size);
            const std::string bytes = pattern(size, ++seed);
            co_await store.put(name, bytes);
            const std::optional<std::string> back = co_await store.get(name);
            EXPECT_TRUE(back.has_value()) << size;
            if (!back) continue;
            EXPECT_EQ(back->size(), size);
            EXPECT_TRUE(back->size() == size && std::memcmp(back->data(), bytes.data(), size) == 0)
                << "bytes differ for size " << size;
            const auto meta = co_await store.stat(name);
            EXPECT_EQ(meta->chunks, (size + 8 * MB - 1) / (8 * MB)) << size;
        }
        EXPECT_EQ(co_await store.get("never-stored"), std::nullopt);
    }());
}

TEST(BlobStore, RoundTripsA100MBObjectInChunks) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_options o = with_chunks(8 * MB);
        o.max_object_size = 256 * MB;
        blob_store store(rc.client, o);
        const std::string bytes = pattern(100 * MB, 42);
        co_await store.put("big", bytes);
        const auto meta = co_await store.stat("big");
        EXPECT_EQ(meta->size, 100 * MB);
        EXPECT_EQ(meta->chunks, 13u); // 12 of 8 MB and one of 4 MB
        const auto chunk_keys = co_await keys_matching(rc.client, "blob:{big}:chunk:*");
        EXPECT_EQ(chunk_keys.size(), 13u);
        const std::optional<std::string> back = co_await store.get("big");
        EXPECT_TRUE(back && back->size() == bytes.size() &&
                    std::memcmp(back->data(), bytes.data(), bytes.size()) == 0);
        const auto totals = co_await store.info();
        EXPECT_EQ(totals.objects, 1u);
        EXPECT_EQ(totals.bytes, 100 * MB);
    }());
}

TEST(BlobStore, OverwriteWithASmallerObjectLeavesNoStaleChunks) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_store store(rc.client, with_chunks(1000));
        co_await store.put("doc", pattern(10'000, 1)); // 10 chunks
        EXPECT_EQ((co_await keys_matching(rc.client, "blob:*")).size(), 1u + 10u + 1u);
        co_await store.put("doc", pattern(1'500, 2)); // 2 chunks
        const auto keys = co_await keys_matching(rc.client, "blob:*");
        const auto meta = co_await store.stat("doc");
        const std::set<std::string> expected{"blob:info", "blob:{doc}:meta",
                                             store.chunk_key("doc", meta->generation, 0),
                                             store.chunk_key("doc", meta->generation, 1)};
        EXPECT_EQ(keys, expected);
        co_await store.put("doc", "tiny"); // one chunk, written with its manifest
        EXPECT_EQ((co_await keys_matching(rc.client, "blob:*")).size(), 1u + 1u + 1u);
        co_await store.put("doc", ""); // no chunk at all
        const std::set<std::string> manifest_only{"blob:info", "blob:{doc}:meta"};
        EXPECT_EQ(co_await keys_matching(rc.client, "blob:*"), manifest_only);
        EXPECT_EQ(co_await store.get("doc"), std::string());
        const auto totals = co_await store.info();
        EXPECT_EQ(totals.objects, 1u);
        EXPECT_EQ(totals.bytes, 0u);
    }());
}

TEST(BlobStore, RefusesAnOversizedObjectBeforeSendingAnything) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_options o = with_chunks(64 * 1024);
        o.max_object_size = MB;
        blob_store store(rc.client, o);
        co_await store.put("kept", "small");
        const long long keys_before = co_await dbsize(rc.client);
        const auto written_before = rc.client.stats().connections.requests_written;

        const std::string too_big(MB + 1, 'x');
        auto e = co_await error_of(store.put("huge", too_big));
        EXPECT_EQ(e.code(), akv::error::object_too_large);
        EXPECT_TRUE(contains(e.what(), "\"huge\""));
        EXPECT_TRUE(contains(e.what(), "1048577"));
        EXPECT_TRUE(contains(e.what(), "1048576"));

        bool pulled = false;
        auto never = [&](std::span<char>) -> asio::awaitable<std::size_t> {
            pulled = true;
            co_return 0;
        };
        e = co_await error_of(store.put_stream("huge", 10 * MB, never));
        EXPECT_EQ(e.code(), akv::error::object_too_large);
        EXPECT_FALSE(pulled);

        EXPECT_EQ(rc.client.stats().connections.requests_written, written_before);
        EXPECT_EQ(co_await dbsize(rc.client), keys_before);
        co_await store.put("exactly-the-limit", std::string(MB, 'y'));
        EXPECT_EQ((co_await store.info()).objects, 2u);
    }());
}

TEST(BlobStore, ExistsStatAndErase) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_store store(rc.client, with_chunks(1000));
        EXPECT_FALSE(co_await store.exists("photo"));
        EXPECT_EQ(co_await store.stat("photo"), std::nullopt);
        const auto before = std::chrono::system_clock::now() - std::chrono::seconds(5);
        co_await store.put("photo", pattern(2500, 7), png_with_owner());
        EXPECT_TRUE(co_await store.exists("photo"));
        const std::optional<blob_meta> meta = co_await store.stat("photo");
        EXPECT_TRUE(meta.has_value());
        if (meta) {
            EXPECT_EQ(meta->size, 2500u);
            EXPECT_EQ(meta->chunks, 3u);
            EXPECT_EQ(meta->chunk_size, 1000u);
            EXPECT_EQ(meta->content_type, "image/png");
            EXPECT_EQ(meta->user, png_with_owner().user);
            EXPECT_GT(meta->modified, before);
        }
        const auto with_meta = co_await store.get_blob("photo");
        EXPECT_TRUE(with_meta && with_meta->bytes == pattern(2500, 7) &&
                    with_meta->meta.content_type == "image/png");

        co_await store.put("photo", "plain", blob_attributes("text/plain"));
        EXPECT_EQ((co_await store.stat("photo"))->content_type, "text/plain");
        co_await store.put("photo", "plain"); // an overwrite replaces the metadata too
        EXPECT_EQ((co_await store.stat("photo"))->content_type, "");
        EXPECT_TRUE((co_await store.stat("photo"))->user.empty());

        EXPECT_TRUE(co_await store.erase("photo"));
        EXPECT_FALSE(co_await store.erase("photo"));
        EXPECT_FALSE(co_await store.exists("photo"));
        EXPECT_EQ(co_await store.get("photo"), std::nullopt);
        const std::set<std::string> totals_only{"blob:info"};
        EXPECT_EQ(co_await keys_matching(rc.client, "blob:*"), totals_only);
        const auto totals = co_await store.info();
        EXPECT_EQ(totals.objects, 0u);
        EXPECT_EQ(totals.bytes, 0u);
    }());
}

TEST(BlobStore, TotalsStayExactUnderConcurrentPutsAndErases) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_store store(rc.client, with_chunks(1000));
        // 40 coroutines x 5 operations on 12 names: overwrites, erases of missing names,
        // objects of 0 to 4 chunks, all interleaved on one connection.
        std::vector<std::function<asio::awaitable<void>()>> tasks;
        for (int c = 0; c < 40; ++c)
            tasks.push_back([&store, c]() -> asio::awaitable<void> {
                for (int op = 0; op < 5; ++op) {
                    const int n = c * 5 + op;
                    const std::string name = "n" + std::to_string((n * 7) % 12);
                    if (n % 3 == 2)
                        co_await store.erase(name);
                    else
                        co_await store.put(name, pattern((n * 397) % 4001, n));
                }
            });
        co_await all_of(std::move(tasks));
        const census actual = co_await count_manifests(rc.client, store);
        const auto totals = co_await store.info();
        EXPECT_EQ(totals.objects, actual.objects);
        EXPECT_EQ(totals.bytes, actual.bytes);
        EXPECT_GT(actual.objects, 0u);
        EXPECT_EQ((co_await keys_matching(rc.client, "blob:{*}:chunk:*")).size(), actual.chunks);
        EXPECT_TRUE((co_await keys_matching(rc.client, "blob:{*}:readers")).empty());
    }());
}

// One writer overwrites `name` 150 times with objects of `size` to `size` + 2 bytes, each of
// one byte value, while three readers get() it and one streams it: every read must be one
// value throughout. Returns the number of reads.
asio::awaitable<int> read_while_overwriting(akv::client& c, blob_store& store, std::size_t size) {
    co_await store.put("frame", std::string(size, 'a'));
    bool writing = true;
    int reads = 0, torn = 0;
    auto whole = [&](const std::string& got) {
        ++reads;
        if (got.size() < size ||
            std::count(got.begin(), got.end(), got.front()) != long(got.size()))
            ++torn;
    };
    std::vector<std::function<asio::awaitable<void>()>> tasks;
    tasks.push_back([&]() -> asio::awaitable<void> {
        for (int i = 0; i < 150; ++i)
            co_await store.put("frame", std::string(size + (i % 3), char('b' + i % 20)));
        writing = false;
    });
    for (int r = 0; r < 3; ++r)
        tasks.push_back([&]() -> asio::awaitable<void> {
            while (writing)
                whole((co_await store.get("frame")).value_or(std::string()));
        });
    tasks.push_back([&]() -> asio::awaitable<void> {
        while (writing) {
            std::string got;
            co_await store.get_stream("frame",
                                      [&](std::string_view piece) -> asio::awaitable<void> {
                                          got.append(piece);
                                          co_return;
                                      });
            whole(got);
        }
    });
    co_await all_of(std::move(tasks));
    EXPECT_EQ(torn, 0);
    // Every retired generation went with its last reader.
    const auto meta = co_await store.stat("frame");
    EXPECT_EQ((co_await keys_matching(c, "blob:{frame}:chunk:*")).size(), meta->chunks);
    EXPECT_TRUE((co_await keys_matching(c, "blob:{frame}:readers")).empty());
    co_return reads;
}

TEST(BlobStore, ReadersNeverSeeATornObjectOfSeveralChunks) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_options o = with_chunks(64 * 1024);
        o.max_bytes_in_flight = 64 * 1024; // one chunk at a time: the widest window for a race
        blob_store store(rc.client, o);
        // 3 chunks (4 for the longer ones): read under a lease.
        EXPECT_GT(co_await read_while_overwriting(rc.client, store, 3 * 64 * 1024), 20);
    }());
}

TEST(BlobStore, ReadersNeverSeeATornObjectOfOneChunk) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_store store(rc.client, with_chunks(64 * 1024));
        // One chunk: manifest then chunk with no lease, read again when replaced in between.
        EXPECT_GT(co_await read_while_overwriting(rc.client, store, 60 * 1024), 20);
    }());
}

TEST(BlobStore, ASmallPutIsOneRequestAndASmallGetTwo) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_store store(rc.client);
        co_await store.put("warm", "up"); // takes a block of generations, loads the script
        const auto requests = [&] { return rc.client.stats().connections.requests_written; };
        auto written = requests();
        co_await store.put("small", pattern(1000, 5));
        EXPECT_EQ(requests() - written, 1u);
        written = requests();
        EXPECT_EQ(co_await store.get("small"), pattern(1000, 5));
        EXPECT_EQ(requests() - written, 2u); // HGETALL, GET
    }());
}

TEST(BlobStore, WorksOnAfterTheServerForgetsItsScripts) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_store store(rc.client, with_chunks(1000));
        co_await store.put("doc", pattern(2500, 1));
        co_await command(rc.client, "SCRIPT", "FLUSH");
        co_await store.put("doc", pattern(3500, 2)); // EVALSHA: NOSCRIPT, then EVAL
        co_await command(rc.client, "SCRIPT", "FLUSH");
        co_await store.put("one-chunk", "x"); // the same, pipelined after its chunk's SET
        co_await command(rc.client, "SCRIPT", "FLUSH");
        EXPECT_EQ(co_await store.get("doc"), pattern(3500, 2)); // open, renew, release
        co_await command(rc.client, "SCRIPT", "FLUSH");
        EXPECT_TRUE(co_await store.erase("doc"));
        const auto totals = co_await store.info();
        EXPECT_EQ(totals.objects, 1u);
        EXPECT_EQ(totals.bytes, 1u);
    }());
}

TEST(BlobStore, ASlowStreamReaderKeepsItsVersionAcrossOverwrites) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_options o = with_chunks(1000);
        o.max_bytes_in_flight = 1000;
        // The read takes 10 x 120 ms, longer than the lease: only its renewals (every 300 ms
        // or so) keep the first version's chunks after the overwrites retired them.
        o.read_lease = std::chrono::milliseconds(900);
        blob_store store(rc.client, o);
        co_await store.put("clip", std::string(10'000, 'o'));
        std::string got;
        bool overwritten = false;
        std::vector<std::function<asio::awaitable<void>()>> tasks;
        tasks.push_back([&]() -> asio::awaitable<void> {
            const auto meta = co_await store.get_stream(
                "clip", [&](std::string_view piece) -> asio::awaitable<void> {
                    got.append(piece);
                    co_await sleep_for(std::chrono::milliseconds(120));
                });
            EXPECT_TRUE(meta && meta->size == 10'000);
        });
        tasks.push_back([&]() -> asio::awaitable<void> {
            co_await sleep_for(std::chrono::milliseconds(60));
            co_await store.put("clip", std::string(3000, 'n'));
            co_await sleep_for(std::chrono::milliseconds(300));
            co_await store.put("clip", std::string(4000, 'm'));
            overwritten = true;
        });
        co_await all_of(std::move(tasks));
        EXPECT_TRUE(overwritten);
        EXPECT_EQ(got.size(), 10'000u);
        EXPECT_EQ(std::count(got.begin(), got.end(), 'o'), 10'000) << "a mix of versions";
        EXPECT_EQ(co_await store.get("clip"), std::string(4000, 'm'));
        // The version the reader held went when it was done.
        EXPECT_EQ((co_await keys_matching(rc.client, "blob:{clip}:chunk:*")).size(), 4u);
    }());
}

TEST(BlobStore, AStreamReaderSlowerThanItsLeaseFailsRatherThanMixVersions) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_options o = with_chunks(1000);
        o.max_bytes_in_flight = 1000;
        o.read_lease = std::chrono::milliseconds(50);
        blob_store store(rc.client, o);
        co_await store.put("clip", std::string(3000, 'o'));
        std::string got;
        auto stalled = [&](std::string_view piece) -> asio::awaitable<void> {
            got.append(piece);
            if (got.size() == 1000) {
                co_await store.put("clip", std::string(3000, 'n')); // retires the old chunks...
                co_await sleep_for(std::chrono::milliseconds(200)); // ... and the lease runs out
            }
        };
        const auto e = co_await error_of(store.get_stream("clip", stalled));
        EXPECT_EQ(e.code(), akv::error::timeout);
        EXPECT_TRUE(contains(e.what(), "read_lease"));
        EXPECT_EQ(got, std::string(1000, 'o'));
        EXPECT_EQ(co_await store.get("clip"), std::string(3000, 'n'));
    }());
}

TEST(BlobStore, StreamsA40MBObjectInAndOut) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_store store(rc.client); // 4 MB chunks
        const std::uint64_t size = 40 * MB;
        std::uint64_t produced = 0;
        auto source = [&](std::span<char> buffer) -> asio::awaitable<std::size_t> {
            const std::size_t n = std::min<std::size_t>(buffer.size(), 777'777); // odd pieces
            fill_pattern(buffer.data(), n, produced, 9);
            produced += n;
            co_return n;
        };
        co_await store.put_stream("stream", size, source, png_with_owner());
        EXPECT_EQ(produced, size);

        std::uint64_t consumed = 0;
        std::size_t largest = 0;
        bool same = true;
        std::string expected;
        auto sink = [&](std::string_view piece) -> asio::awaitable<void> {
            expected.resize(piece.size());
            fill_pattern(expected.data(), piece.size(), consumed, 9);
            same = same && piece == expected;
            consumed += piece.size();
            largest = std::max(largest, piece.size());
            co_return;
        };
        const auto meta = co_await store.get_stream("stream", sink);
        EXPECT_TRUE(meta && meta->size == size && meta->content_type == "image/png");
        EXPECT_EQ(consumed, size);
        EXPECT_TRUE(same);
        EXPECT_LE(largest, 4 * MB);
        EXPECT_EQ(co_await store.get_stream("missing", sink), std::nullopt);
    }());
}

TEST(BlobStore, AFailingSourceLeavesTheOldObjectAndNoChunks) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_store store(rc.client, with_chunks(1000));
        co_await store.put("doc", pattern(2500, 3));
        const auto keys_before = co_await keys_matching(rc.client, "blob:*");
        std::uint64_t given = 0;
        auto failing = [&](std::span<char> buffer) -> asio::awaitable<std::size_t> {
            if (given >= 2500) throw std::runtime_error("disk gone");
            std::fill(buffer.begin(), buffer.end(), 'z');
            given += buffer.size();
            co_return buffer.size();
        };
        bool failed = false;
        try {
            co_await store.put_stream("doc", 9000, failing);
        } catch (const std::runtime_error& e) {
            failed = std::string(e.what()) == "disk gone";
        }
        EXPECT_TRUE(failed);
        auto short_source = [&](std::span<char>) -> asio::awaitable<std::size_t> { co_return 0; };
        bool refused = false;
        try {
            co_await store.put_stream("doc", 9000, short_source);
        } catch (const std::invalid_argument& e) {
            refused = contains(e.what(), "gave 0 bytes after 0 of the 9000");
        }
        EXPECT_TRUE(refused);
        EXPECT_EQ(co_await store.get("doc"), pattern(2500, 3));
        EXPECT_EQ(co_await keys_matching(rc.client, "blob:*"), keys_before);
        EXPECT_EQ((co_await store.info()).bytes, 2500u);
    }());
}

TEST(BlobStore, APutSlowerThanTheUnfinishedTtlFailsAndChangesNothing) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_options o = with_chunks(1000);
        o.unfinished_put_ttl = std::chrono::milliseconds(20);
        blob_store store(rc.client, o);
        co_await store.put("doc", "old");
        std::uint64_t given = 0;
        auto slow = [&](std::span<char> buffer) -> asio::awaitable<std::size_t> {
            if (given == 1000) co_await sleep_for(std::chrono::milliseconds(100));
            std::fill(buffer.begin(), buffer.end(), 's');
            given += buffer.size();
            co_return buffer.size();
        };
        const auto e = co_await error_of(store.put_stream("doc", 2000, slow));
        EXPECT_EQ(e.code(), akv::error::script_error);
        EXPECT_TRUE(contains(e.what(), "blob:{doc}:chunk:"));
        EXPECT_TRUE(contains(e.what(), "expire"));
        EXPECT_EQ(co_await store.get("doc"), "old");
        EXPECT_EQ((co_await keys_matching(rc.client, "blob:*")).size(), 3u);
    }());
}

TEST(BlobStore, TheLayoutIsPlainRedisThatRedisCliReads) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    std::uint64_t generation = 0;
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_store store(rc.client, with_chunks(1000));
        std::string text;
        for (int i = 0; text.size() < 2500; ++i)
            text += "line " + std::to_string(i) + ". ";
        text.resize(2500);
        co_await store.put("photo", text, png_with_owner());
        generation = (co_await store.stat("photo"))->generation;
    }());
    const std::string cli = "redis-cli -p " + std::to_string(server.port()) + " --raw ";
    const auto manifest = lines_of(run_command(cli + "HGETALL 'blob:{photo}:meta'"));
    std::map<std::string, std::string> fields;
    for (std::size_t i = 0; i + 1 < manifest.size(); i += 2)
        fields[manifest[i]] = manifest[i + 1];
    EXPECT_EQ(fields["size"], "2500");
    EXPECT_EQ(fields["chunks"], "3");
    EXPECT_EQ(fields["chunk_size"], "1000");
    EXPECT_EQ(fields["generation"], std::to_string(generation));
    EXPECT_EQ(fields["content_type"], "image/png");
    EXPECT_EQ(fields["user:owner"], "ada");
    EXPECT_EQ(fields["user:camera"], "x100");
    EXPECT_FALSE(fields["modified_ms"].empty());

    std::string joined;
    for (int i = 0; i < 3; ++i) {
        const std::string key =
            "'blob:{photo}:chunk:" + std::to_string(generation) + ":" + std::to_string(i) + "'";
        EXPECT_EQ(run_command(cli + "TYPE " + key), "string\n");
        std::string chunk = run_command(cli + "GET " + key);
        chunk.pop_back(); // redis-cli's newline
        joined += chunk;
    }
    std::string text;
    for (int i = 0; text.size() < 2500; ++i)
        text += "line " + std::to_string(i) + ". ";
    text.resize(2500);
    EXPECT_EQ(joined, text);
    const auto info = lines_of(run_command(cli + "HGETALL blob:info"));
    std::map<std::string, std::string> totals;
    for (std::size_t i = 0; i + 1 < info.size(); i += 2)
        totals[info[i]] = info[i + 1];
    EXPECT_EQ(totals["objects"], "1");
    EXPECT_EQ(totals["bytes"], "2500");
}

TEST(BlobStore, AKeyPrefixIsolatesTwoStores) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_options a_options = with_chunks(1000);
        a_options.key_prefix = "app-a:obj:";
        blob_options b_options = with_chunks(1000);
        b_options.key_prefix = "app-b:obj:";
        blob_store a(rc.client, a_options), b(rc.client, b_options);
        co_await a.put("same-name", pattern(3000, 1));
        co_await b.put("same-name", "b's");
        co_await b.put("only-in-b", "x");
        EXPECT_EQ(co_await a.get("same-name"), pattern(3000, 1));
        EXPECT_EQ(co_await b.get("same-name"), "b's");
        EXPECT_FALSE(co_await a.exists("only-in-b"));
        EXPECT_TRUE(co_await a.erase("same-name"));
        EXPECT_EQ(co_await b.get("same-name"), "b's");
        EXPECT_EQ((co_await a.info()).objects, 0u);
        EXPECT_EQ((co_await b.info()).objects, 2u);
        EXPECT_EQ((co_await b.info()).bytes, 4u);
        const auto all = co_await keys_matching(rc.client, "*");
        for (const auto& key : all)
            EXPECT_TRUE(key.starts_with("app-a:obj:") || key.starts_with("app-b:obj:")) << key;
        EXPECT_EQ((co_await keys_matching(rc.client, "app-b:obj:*")).size(), 2u + 2u + 1u);
    }());
}

TEST(BlobStore, ACorruptedManifestIsAnErrorNamingTheKey) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_store store(rc.client, with_chunks(1000));
        co_await store.put("doc", pattern(2500, 1));
        co_await command(rc.client, "HSET", "blob:{doc}:meta", "size", "lots");
        std::vector<boost::system::system_error> errors;
        errors.push_back(co_await error_of(store.get("doc")));
        errors.push_back(co_await error_of(store.stat("doc")));
        errors.push_back(co_await error_of(store.erase("doc")));
        for (const auto& e : errors) {
            EXPECT_EQ(e.code(), akv::error::type_mismatch);
            EXPECT_TRUE(contains(e.what(), "blob:{doc}:meta"));
            EXPECT_TRUE(contains(e.what(), "\"size\""));
        }
        auto e = co_await error_of(store.put("doc", "new"));
        EXPECT_EQ(e.code(), akv::error::type_mismatch);
        EXPECT_TRUE(contains(e.what(), "blob:{doc}:meta"));

        co_await command(rc.client, "SET", "blob:{text}:meta", "not a hash");
        e = co_await error_of(store.get("text"));
        EXPECT_EQ(e.code(), akv::error::type_mismatch);
        EXPECT_TRUE(contains(e.what(), "blob:{text}:meta"));
        e = co_await error_of(store.stat("text"));
        EXPECT_EQ(e.code(), akv::error::type_mismatch);
        EXPECT_TRUE(contains(e.what(), "blob:{text}:meta"));
    }());
}

TEST(BlobStore, RefusesAnEmptyNameAndUnworkableOptions) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        blob_store store(rc.client);
        bool refused = false;
        try {
            co_await store.put("", "x");
        } catch (const std::invalid_argument&) {
            refused = true;
        }
        EXPECT_TRUE(refused);
        co_return;
    }());
    blob_options o = with_chunks(0);
    try {
        blob_store bad(rc.client, o);
        ADD_FAILURE() << "chunk_size 0 accepted";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::error::invalid_config);
        EXPECT_TRUE(contains(e.what(), "chunk_size"));
    }
}
