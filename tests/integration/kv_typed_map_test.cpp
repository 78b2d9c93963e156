// akv::kv::typed_map against a real server: the map operations, bulk reads and writes in one
// round trip, iteration over 100k entries, decode and server errors that name the key, and the
// key schema's prefix.
#include "support/running_client.hpp"

#include <akv/kv/typed_map.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/describe/class.hpp>

#include "support/errors.hpp"
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

using akv::test::contains;
using akv::test::error_of;

using namespace akv::test;
namespace kv = akv::kv;
namespace asio = boost::asio;

namespace demo {
struct job_state {
    std::string graph;
    int step = 0;
    std::vector<double> loss;
};
BOOST_DESCRIBE_STRUCT(job_state, (), (graph, step, loss))
} // namespace demo

namespace {

// Requests the client wrote, not counting its own health-check PINGs.
std::uint64_t requests_written(akv::client& c) {
    const auto s = c.stats().connections;
    return s.requests_written - s.health_pings;
}

asio::awaitable<akv::resp::value> command(akv::client& c, std::vector<std::string> args) {
    akv::request req;
    req.push(args.front(), std::vector<std::string>(args.begin() + 1, args.end()));
    akv::response<akv::resp::value> resp;
    co_await c.exec(req, resp);
    co_return std::get<0>(resp).value();
}

// Built outside coroutine bodies: g++ 12 cannot keep an initializer_list's array across a
// co_await ("array used as initializer").
std::vector<std::string> args(std::string a, std::string b) {
    return {std::move(a), std::move(b)};
}
std::vector<std::string> args(std::string a, std::string b, std::string c) {
    return {std::move(a), std::move(b), std::move(c)};
}
std::vector<std::string> args(std::string a, std::string b, std::string c, std::string d) {
    return {std::move(a), std::move(b), std::move(c), std::move(d)};
}
std::vector<std::string> names(std::initializer_list<const char*> list) {
    return {list.begin(), list.end()};
}

std::vector<std::pair<std::string, long long>> numbered(long long from, long long to) {
    std::vector<std::pair<std::string, long long>> out;
    for (long long i = from; i < to; ++i)
        out.emplace_back("k" + std::to_string(i), i);
    return out;
}

std::vector<std::optional<long long>> expected_bulk_values() {
    return {0, 499, std::nullopt, 250};
}
std::set<std::string> prefixed_keys() {
    return {"node7:worker:3:config", "node7:worker:3:stats"};
}

std::map<std::string, long long> small_map() {
    return {{"x", 1}, {"y", 2}};
}
std::vector<float> floats() {
    return {0.5f, -1.25f, 3.0f};
}

std::vector<double> doubles(int n) {
    std::vector<double> out;
    for (int i = 1; i <= n; ++i)
        out.push_back(i);
    return out;
}

demo::job_state state(std::string graph, int step, std::vector<double> loss) {
    return {std::move(graph), step, std::move(loss)};
}

} // namespace

TEST(KvTypedMap, SetGetContainsEraseAndSize) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::typed_map<std::string, long long> m(rc.client, "scores");
        EXPECT_EQ(co_await m.get("alice"), std::nullopt);
        EXPECT_EQ(co_await m.size(), 0u);
        co_await m.set("alice", 10);
        co_await m.set("bob", -3);
        EXPECT_EQ(co_await m.get("alice"), 10);
        EXPECT_EQ(co_await m.get("bob"), -3);
        EXPECT_TRUE(co_await m.contains("alice"));
        EXPECT_FALSE(co_await m.contains("carol"));
        EXPECT_EQ(co_await m.size(), 2u);
        EXPECT_TRUE(co_await m.erase("alice"));
        EXPECT_FALSE(co_await m.erase("alice"));
        EXPECT_EQ(co_await m.get("alice"), std::nullopt);
        EXPECT_FALSE(co_await m.set_if_absent("bob", 5));
        EXPECT_TRUE(co_await m.set_if_absent("carol", 5));
        EXPECT_EQ(co_await m.get("bob"), -3);
        co_await m.clear();
        EXPECT_EQ(co_await m.size(), 0u);
    }());
}

TEST(KvTypedMap, IntegerValuesAreWhatHincrbyCounts) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::typed_map<int, long long> counts(rc.client, "counts");
        kv::typed_map<std::string, double> rates(rc.client, "rates");
        co_await counts.set(7, 40);
        co_await rates.set("lr", 0.25);
        co_await command(rc.client, args("HINCRBY", "counts", "7", "2"));
        co_await command(rc.client, args("HINCRBYFLOAT", "rates", "lr", "0.5"));
        EXPECT_EQ(co_await counts.get(7), 42);
        EXPECT_EQ(co_await rates.get("lr"), 0.75);
    }());
}

TEST(KvTypedMap, TensorsStructsAndBinaryStringsRoundTrip) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::typed_map<std::string, std::vector<float>> weights(rc.client, "weights");
        kv::typed_map<std::string, demo::job_state> jobs(rc.client, "jobs");
        kv::typed_map<std::string, std::string> blobs(rc.client, "blobs");
        const std::vector<float> w = floats();
        const demo::job_state s = state("g1", 3, doubles(2));
        const std::string binary("a\0\r\n\xff", 5);
        co_await weights.set("layer1", w);
        co_await jobs.set("job-1", s);
        co_await blobs.set(binary, binary);
        EXPECT_EQ(co_await weights.get("layer1"), w);
        const auto got = co_await jobs.get("job-1");
        EXPECT_TRUE(got && got->graph == "g1" && got->step == 3 && got->loss == s.loss);
        EXPECT_EQ(co_await blobs.get(binary), binary);
    }());
}

TEST(KvTypedMap, BulkSetAndGetAreOneRoundTripEach) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::typed_map<std::string, long long> m(rc.client, "bulk");
        const auto entries = numbered(0, 500);
        auto keys = names({"k0", "k499", "missing", "k250"});
        co_await m.size(); // connected before counting
        const auto before = requests_written(rc.client);
        co_await m.set_many(entries);
        const auto values = co_await m.get_many(keys);
        EXPECT_EQ(requests_written(rc.client) - before, 2u);
        EXPECT_EQ(values, expected_bulk_values());
        EXPECT_EQ(co_await m.size(), 500u);
        const std::map<std::string, long long> more = small_map(); // any range of pairs
        co_await m.set_many(more);
        EXPECT_EQ(co_await m.get("y"), 2);
    }());
}

TEST(KvTypedMap, IteratesOverOneHundredThousandEntriesInBoundedPages) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::typed_map<std::string, long long> m(rc.client, "big");
        constexpr long long total = 100000;
        for (long long from = 0; from < total; from += 1000) {
            const auto chunk = numbered(from, from + 1000);
            co_await m.set_many(chunk);
        }
        EXPECT_EQ(co_await m.size(), static_cast<std::size_t>(total));

        std::vector<bool> seen(total, false);
        std::size_t largest_page = 0;
        std::size_t pages = 0;
        std::uint64_t cursor = 0;
        do {
            auto page = co_await m.scan(cursor, 500);
            largest_page = std::max(largest_page, page.entries.size());
            ++pages;
            for (const auto& [k, v] : page.entries) {
                EXPECT_EQ(k, "k" + std::to_string(v));
                seen[static_cast<std::size_t>(v)] = true;
            }
            cursor = page.cursor;
        } while (cursor != 0);
        EXPECT_EQ(std::count(seen.begin(), seen.end(), true), total);
        EXPECT_GT(pages, 50u);
        EXPECT_LT(largest_page, 5000u); // COUNT is a hint, but pages stay near it

        long long sum = 0;
        const std::size_t visited =
            co_await m.for_each([&sum](const std::string&, long long v) { sum += v; });
        EXPECT_GE(visited, static_cast<std::size_t>(total)); // SCAN may repeat, never skip
        EXPECT_GE(sum, total * (total - 1) / 2);
    }());
}

TEST(KvTypedMap, ItemsReturnsEveryEntryOfASmallMap) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::typed_map<std::string, long long> m(rc.client, "small");
        co_await m.set_many(numbered(0, 3));
        auto items = co_await m.items();
        std::sort(items.begin(), items.end());
        EXPECT_EQ(items, numbered(0, 3));
    }());
}

TEST(KvTypedMap, ReadingAnIntegerAsATensorNamesKeyAndField) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::typed_map<std::string, long long> as_int(rc.client, "params");
        kv::typed_map<std::string, std::vector<float>> as_tensor(rc.client, "params");
        co_await as_int.set("weights", 42);
        const auto e = co_await error_of(
            [&]() -> asio::awaitable<void> { co_await as_tensor.get("weights"); });
        EXPECT_EQ(e.code(), akv::error::type_mismatch);
        EXPECT_TRUE(
            contains(e.what(), R"(kv: "params"["weights"]: expected a tensor of f32, got "42")"));
    }());
}

TEST(KvTypedMap, ReadingATensorAsAnIntegerNamesTheTensor) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        kv::typed_map<int, std::vector<double>> as_tensor(rc.client, "params");
        kv::typed_map<int, int> as_int(rc.client, "params");
        co_await as_tensor.set(3, doubles(3));
        const auto e =
            co_await error_of([&]() -> asio::awaitable<void> { co_await as_int.scan(0); });
        EXPECT_EQ(e.code(), akv::error::type_mismatch);
        EXPECT_TRUE(contains(e.what(),
                             R"(kv: "params"["3"]: expected an integer, got a tensor of f64 [3])"));
    }());
}

TEST(KvTypedMap, WrongTypeKeyGivesTheServerTextAndTheKey) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await command(rc.client, args("SET", "plain", "x"));
        kv::typed_map<std::string, std::string> m(rc.client, "plain");
        const auto e =
            co_await error_of([&]() -> asio::awaitable<void> { co_await m.set("f", "v"); });
        EXPECT_EQ(e.code(), akv::error::server_error);
        EXPECT_TRUE(contains(e.what(), R"(kv: "plain": HSET: WRONGTYPE)"));
    }());
}

TEST(KvTypedMap, SchemaPrefixesTheKeysRedisHolds) {
    akv::testing::embedded_server server;
    asio::io_context io;
    running_client rc(io, server.config());
    run_task(io, [&]() -> asio::awaitable<void> {
        const auto schema = kv::key_schema::for_process("node7", "worker", "3");
        kv::typed_map<std::string, int> a(rc.client, "stats", schema);
        kv::typed_map<std::string, int> b(rc.client, "config", schema);
        co_await a.set("x", 1);
        co_await b.set("y", 2);
        EXPECT_EQ(a.key(), "node7:worker:3:stats");
        const auto keys = co_await command(rc.client, args("KEYS", "*"));
        std::set<std::string> found;
        for (const auto& k : keys.elements)
            found.insert(k.str);
        EXPECT_EQ(found, prefixed_keys());
        const auto scanned =
            co_await command(rc.client, args("SCAN", "0", "MATCH", "node7:worker:3:*"));
        EXPECT_EQ(scanned.elements.at(1).elements.size(), 2u);
    }());
}
