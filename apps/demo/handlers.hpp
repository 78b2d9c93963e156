// The demo's worker stages (akv-worker registers them by name):
//
//   demo.posts       queue job {title, received_ms}: the post into SQLite, announced on "posts"
//   demo.preprocess  queue job {id, post, user, text, received_ms}: 44 features -> XADD
//                    demo:embeddings (field "embedding", an AKVT f32 tensor [44])
//   demo.signups     stream batch of demo:interest: INSERT OR IGNORE into SQLite in one
//                    transaction (a comment id is a primary key: a redelivered entry is not
//                    written twice), then each published on post:<id>, then acked
//
// Delivery is at least once everywhere upstream; the database is where it becomes exactly once.
// A signup is published again when its entry is redelivered (the page keeps one per comment id).
#pragma once

#include <akv/client.hpp>
#include <akv/gateway/options.hpp>
#include <akv/messaging/stream.hpp>
#include <akv/queue/worker.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

struct sqlite3;

namespace akv::demo {

// The demo's SQLite database: posts and signups. Calls block (SQLite has no async API): a
// batch of a few hundred rows in one transaction takes about a millisecond.
class database {
public:
    // Opens (creating the tables if needed); throws std::runtime_error naming the file.
    explicit database(const std::string& path);
    ~database();
    database(const database&) = delete;
    database& operator=(const database&) = delete;

    void add_post(const std::string& id, const std::string& title, std::int64_t created_ms);

    struct signup {
        std::string comment, post, user, text;
        std::int64_t received_ms = 0;
        double score = 0;
    };
    // One transaction; the number of rows that were new.
    std::size_t add_signups(std::span<const signup> rows, std::int64_t written_ms);

    std::size_t signup_count();

private:
    void exec(const char* sql);
    sqlite3* db_ = nullptr;
    std::string path_;
};

// What the stages share.
struct stage_context {
    client& redis;
    gateway::options publish; // history rules and prefix: the gateway's
    std::shared_ptr<database> db;
};

queue::handler posts_handler(std::shared_ptr<stage_context> ctx);
queue::handler preprocess_handler(std::shared_ptr<stage_context> ctx);

// A batch of the interest stream; throws (nothing acked) when the database or Redis fails.
boost::asio::awaitable<void> write_signups(std::shared_ptr<stage_context> ctx,
                                           std::vector<messaging::stream_entry> batch);

} // namespace akv::demo
