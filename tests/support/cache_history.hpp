// Stale reads of the client-side cache, found in a recorded history.
//
// One io_context runs a reader client (cache on) and a writer client (another connection), so
// the order in which this process saw things is a sequence number, not a clock. A writer sets
// each key to ever higher versions; readers GET and MGET through the cache. A read is stale if
// it started after the reader had been told its key changed (an invalidation of the key, or any
// "everything may have changed" notice) and that notice came after the writer's reply for a
// newer version: once both have arrived, the old value must never be seen again.
#pragma once

#include <akv/client.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace akv::test {

class cache_history {
public:
    std::uint64_t next() { return ++clock_; }

    void wrote(const std::string& key, long version, std::uint64_t replied);
    // What client::add_invalidation_listener reports (empty: every key).
    void invalidated(std::span<const std::string_view> keys);
    void read(const std::string& key, std::uint64_t started, long version);

    struct verdict {
        std::size_t reads = 0;
        std::size_t writes = 0;
        std::size_t notices = 0;
        std::size_t checked = 0; // reads for which some newer write had been noticed already
        std::size_t stale = 0;
        std::string first_stale; // in words
    };
    verdict check() const;

private:
    struct write {
        long version;
        std::uint64_t replied;
    };
    struct read_event {
        std::string key;
        std::uint64_t started;
        long version;
    };
    std::uint64_t clock_ = 0;
    std::map<std::string, std::vector<write>> writes_;
    std::map<std::string, std::vector<std::uint64_t>> notices_; // per key
    std::vector<std::uint64_t> flushes_;                        // every key
    std::vector<read_event> reads_;
};

// What a caching client is told, kept for a test: each key announced, and the "everything
// may have changed" notices (a lost connection, FLUSHALL). Listens from construction to
// destruction; call on the client's executor.
class invalidation_log {
public:
    explicit invalidation_log(akv::client& c);
    ~invalidation_log();
    invalidation_log(const invalidation_log&) = delete;
    invalidation_log& operator=(const invalidation_log&) = delete;

    // Waits (10 s at most) until `key` was announced, or until a flush was.
    boost::asio::awaitable<bool> wait_for(const std::string& key);
    boost::asio::awaitable<bool> wait_for_flush();

    std::set<std::string> seen;
    std::size_t flushes = 0;

private:
    akv::client& client_;
    std::size_t id_ = 0;
};

struct cache_workload {
    std::size_t keys = 64;
    std::string prefix = "ck:"; // a {hash tag} here keeps every key in one cluster slot
    std::size_t readers = 8;
    std::size_t operations = 100000; // reads and writes
    // Called once, half way, while the load goes on; may set writes_paused.
    std::function<boost::asio::awaitable<void>()> fault;
    bool writes_paused = false;
};

// Runs the workload to its end and records it into `history`. `reader` has the cache on.
boost::asio::awaitable<void> run_cache_workload(akv::client& reader, akv::client& writer,
                                                cache_workload& w, cache_history& history);

// Runs the workload on `io` (failing the test at `limit`), then checks its history: no stale
// read, and more than `min_checked` reads that could have been stale. The verdict, for more.
cache_history::verdict expect_no_stale_read(boost::asio::io_context& io, akv::client& reader,
                                            akv::client& writer, cache_workload& w,
                                            std::size_t min_checked, std::chrono::seconds limit);

} // namespace akv::test
