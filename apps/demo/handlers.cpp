#include "handlers.hpp"

#include "pipeline.hpp"

#include <akv/gateway/publish.hpp>
#include <akv/ml/tensor.hpp>
#include <akv/request.hpp>
#include <akv/response.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace akv::demo {

namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

boost::json::object payload_object(const queue::job& j) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(j.payload, ec);
    if (ec || !v.is_object())
        throw std::invalid_argument("job " + j.id + ": payload is not a JSON object");
    return std::move(v.get_object());
}

std::string text_of(const boost::json::object& o, const char* key, const std::string& job) {
    const auto* v = o.if_contains(key);
    if (!v || !v->is_string())
        throw std::invalid_argument("job " + job + ": \"" + key + "\" must be a string");
    return std::string(v->get_string());
}

std::int64_t int_of(const boost::json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v && v->is_number() ? v->to_number<std::int64_t>() : 0;
}

// Statement wrapper: finalized on every path.
struct statement {
    sqlite3_stmt* s = nullptr;
    statement(sqlite3* db, const char* sql) {
        if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK)
            throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db));
    }
    ~statement() { sqlite3_finalize(s); }
    void text(int i, const std::string& v) {
        sqlite3_bind_text(s, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
    }
    void integer(int i, std::int64_t v) { sqlite3_bind_int64(s, i, v); }
    void real(int i, double v) { sqlite3_bind_double(s, i, v); }
};

} // namespace

database::database(const std::string& path)
    : path_(path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
        std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        throw std::runtime_error("cannot open database " + path + ": " + why);
    }
    sqlite3_busy_timeout(db_, 5000); // the CLI or a second worker may hold a lock for a moment
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    // A bounded page cache (256 KiB): SQLite's default 2 MiB showed as a worker growing for
    // minutes in the soak before it levelled off.
    exec("PRAGMA cache_size=-256");
    exec("CREATE TABLE IF NOT EXISTS posts (id TEXT PRIMARY KEY, title TEXT NOT NULL, "
         "created_ms INTEGER NOT NULL)");
    exec("CREATE TABLE IF NOT EXISTS signups (comment TEXT PRIMARY KEY, post TEXT NOT NULL, "
         "user TEXT NOT NULL, text TEXT NOT NULL, score REAL NOT NULL, "
         "received_ms INTEGER NOT NULL, written_ms INTEGER NOT NULL)");
}

database::~database() {
    sqlite3_close(db_);
}

void database::exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string why = err ? err : "unknown error";
        sqlite3_free(err);
        throw std::runtime_error("database " + path_ + ": " + why);
    }
}

void database::add_post(const std::string& id, const std::string& title, std::int64_t created_ms) {
    statement st(db_, "INSERT OR IGNORE INTO posts (id, title, created_ms) VALUES (?, ?, ?)");
    st.text(1, id);
    st.text(2, title);
    st.integer(3, created_ms);
    if (sqlite3_step(st.s) != SQLITE_DONE)
        throw std::runtime_error("database " + path_ + ": " + sqlite3_errmsg(db_));
}

std::size_t database::add_signups(std::span<const signup> rows, std::int64_t written_ms) {
    exec("BEGIN IMMEDIATE");
    try {
        statement st(db_, "INSERT OR IGNORE INTO signups (comment, post, user, text, score, "
                          "received_ms, written_ms) VALUES (?, ?, ?, ?, ?, ?, ?)");
        std::size_t added = 0;
        for (const auto& r : rows) {
            sqlite3_reset(st.s);
            st.text(1, r.comment);
            st.text(2, r.post);
            st.text(3, r.user);
            st.text(4, r.text);
            st.real(5, r.score);
            st.integer(6, r.received_ms);
            st.integer(7, written_ms);
            if (sqlite3_step(st.s) != SQLITE_DONE)
                throw std::runtime_error("database " + path_ + ": " + sqlite3_errmsg(db_));
            added += static_cast<std::size_t>(sqlite3_changes(db_));
        }
        exec("COMMIT");
        return added;
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

std::size_t database::signup_count() {
    statement st(db_, "SELECT COUNT(*) FROM signups");
    return sqlite3_step(st.s) == SQLITE_ROW
               ? static_cast<std::size_t>(sqlite3_column_int64(st.s, 0))
               : 0;
}

queue::handler posts_handler(std::shared_ptr<stage_context> ctx) {
    return [ctx](queue::job_context& jc) -> asio::awaitable<std::string> {
        const boost::json::object in = payload_object(jc.job());
        const std::string title = text_of(in, "title", jc.job().id);
        if (title.empty() || title.size() > 500)
            throw std::invalid_argument("job " + jc.job().id + ": a title needs 1 to 500 bytes");
        const std::int64_t created =
            in.contains("received_ms") ? int_of(in, "received_ms") : now_ms();
        const std::string id = jc.job().id; // a retried job keeps its id: one post
        ctx->db->add_post(id, title, created);
        boost::json::object announced{{"id", id}, {"title", title}, {"created_ms", created}};
        std::string json = boost::json::serialize(announced);
        std::string channel(posts_channel);
        co_await gateway::publish(ctx->redis, ctx->publish, std::move(channel), std::move(json));
        co_return id;
    };
}

queue::handler preprocess_handler(std::shared_ptr<stage_context> ctx) {
    auto producer = std::make_shared<messaging::stream_producer>(
        ctx->redis, std::string(embeddings_stream), messaging::trim_options::maxlen(100000));
    return [producer](queue::job_context& jc) -> asio::awaitable<std::string> {
        const boost::json::object in = payload_object(jc.job());
        const std::string& id = jc.job().id;
        messaging::field_list fields{
            {"id", text_of(in, "id", id)},
            {"post", text_of(in, "post", id)},
            {"user", text_of(in, "user", id)},
            {"text", text_of(in, "text", id)},
            {"received_ms", std::to_string(int_of(in, "received_ms"))},
        };
        const auto x = featurize(fields[3].second);
        const std::int64_t shape[] = {static_cast<std::int64_t>(features)};
        fields.emplace_back("embedding", ml::encode<float>(x, shape));
        std::string entry = co_await producer->add(fields);
        co_return entry;
    };
}

asio::awaitable<void> write_signups(std::shared_ptr<stage_context> ctx,
                                    std::vector<messaging::stream_entry> batch) {
    std::vector<database::signup> rows;
    rows.reserve(batch.size());
    for (const auto& e : batch) {
        const auto* id = e.field("id");
        const auto* post = e.field("post");
        if (!id || !post || e.field("error")) continue; // the batcher could not score it
        database::signup s;
        s.comment = *id;
        s.post = *post;
        if (const auto* u = e.field("user")) s.user = *u;
        if (const auto* t = e.field("text")) s.text = *t;
        if (const auto* r = e.field("received_ms")) s.received_ms = std::atoll(r->c_str());
        if (const auto* sc = e.field("score")) s.score = std::atof(sc->c_str());
        rows.push_back(std::move(s));
    }
    const std::int64_t written = now_ms();
    ctx->db->add_signups(rows, written);

    // Published after the commit: a crash in between republishes on redelivery.
    std::vector<std::int64_t> latencies;
    for (const auto& r : rows) {
        boost::json::object o{{"comment", r.comment}, {"post", r.post},
                              {"user", r.user},       {"text", r.text},
                              {"score", r.score},     {"received_ms", r.received_ms},
                              {"written_ms", written}};
        std::string json = boost::json::serialize(o);
        std::string channel = post_channel(r.post);
        co_await gateway::publish(ctx->redis, ctx->publish, std::move(channel), std::move(json));
        if (r.received_ms > 0) latencies.push_back(written - r.received_ms);
    }
    request stats;
    // The database's own count: a worker killed between its commit and this line must not
    // leave the counter short (an increment by `added` would be lost with it).
    stats.push("HSET", signup_stats_key, "written", static_cast<long long>(ctx->db->signup_count()));
    stats.push("HINCRBY", signup_stats_key, "batches", 1);
    stats.push("HSET", signup_stats_key, "last_batch", static_cast<long long>(rows.size()));
    if (!latencies.empty()) {
        std::sort(latencies.begin(), latencies.end());
        const auto p = [&](double q) {
            return static_cast<long long>(
                latencies[static_cast<std::size_t>(q * double(latencies.size() - 1))]);
        };
        stats.push("HSET", signup_stats_key, "latency_p50_ms", p(0.5), "latency_p99_ms", p(0.99));
    }
    co_await ctx->redis.exec(stats, ignore);
}

} // namespace akv::demo
