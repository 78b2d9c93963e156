// akv::kv::lru_dict<K, V>: a map of at most max_size entries that evicts the least recently
// used one: a cache shared by processes.
//
//   kv::lru_dict<std::string, std::string> graphs(redis, "graphs", 100, schema);
//   co_await graphs.set(id, bytes);          // may evict the least recently used graph
//   auto g = co_await graphs.get(id);        // a hit makes `id` the most recently used
//
// Two keys with one hash tag (see key_schema.hpp), so they share a cluster slot:
//
//   prefix{name}        hash: field -> value            (HGETALL shows the entries)
//   prefix{name}:lru    sorted set: field -> access time (ZRANGE ... WITHSCORES: oldest first)
//
// Access times are a logical clock: each access scores one more than the newest so far. set()
// (HSET, touch, evict) and get() (HGET, touch) are each one Lua script (lua/kv/lru_set.lua,
// lru_get.lua), so the two keys always agree and concurrent users never exceed max_size.
#pragma once

#include <akv/kv/typed_map.hpp>
#include <akv/script.hpp>

#include <array>

namespace akv::kv {

namespace detail {
const script& lru_set_script();
const script& lru_get_script();
} // namespace detail

template <codable K, codable V> class lru_dict : public detail::keyed {
public:
    using key_type = K;
    using mapped_type = V;

    // The keys are schema.tagged_key(name) and schema.tagged_key(name, "lru"); max_size >= 1.
    lru_dict(client& c, std::string_view name, std::size_t max_size, const key_schema& schema = {})
        : keyed(c, schema.tagged_key(name))
        , entries_(c, "", key_schema(key_))
        , clock_key_(schema.tagged_key(name, "lru"))
        , max_size_(max_size) {
        const std::array<std::string, 2> keys{key_, clock_key_};
        require_same_slot(keys);
        if (max_size_ == 0) {
            throw_error(error::invalid_config,
                        "kv: lru_dict " + detail::where(key_) + ": max_size must be at least 1");
        }
    }

    std::size_t max_size() const noexcept { return max_size_; }
    const std::string& clock_key() const noexcept { return clock_key_; }

    // The value, making `k` the most recently used; nullopt on a miss.
    asio::awaitable<std::optional<V>> get(const K& k) {
        const std::string field = kv::encode(k);
        const std::array<std::string_view, 2> keys{key_, clock_key_};
        const std::array<std::string_view, 1> args{field};
        response<std::optional<std::string>> resp;
        co_await detail::lru_get_script().run(*client_, keys, args, resp);
        auto bytes = detail::take(std::get<0>(resp), key_, "lru_get.lua");
        if (!bytes) co_return std::nullopt;
        co_return detail::decode_at<V>(std::move(*bytes), key_, field);
    }

    // Sets `k`, makes it the most recently used, and returns the keys evicted to stay within
    // max_size (least recently used first; empty most of the time).
    asio::awaitable<std::vector<K>> set(const K& k, const V& v) {
        const std::string max = std::to_string(max_size_);
        const std::string field = kv::encode(k);
        const std::string value = kv::encode(v);
        const std::array<std::string_view, 2> keys{key_, clock_key_};
        const std::array<std::string_view, 3> args{max, field, value};
        response<std::vector<std::string>> resp;
        co_await detail::lru_set_script().run(*client_, keys, args, resp);
        auto fields = detail::take(std::get<0>(resp), key_, "lru_set.lua");
        std::vector<K> evicted;
        evicted.reserve(fields.size());
        for (auto& f : fields) {
            const std::string shown = f;
            evicted.push_back(detail::decode_at<K>(std::move(f), key_, shown));
        }
        co_return evicted;
    }

    // The value without touching it (HGET): a look that does not change what is evicted next.
    asio::awaitable<std::optional<V>> peek(const K& k) const { return entries_.get(k); }
    // HEXISTS, without touching.
    asio::awaitable<bool> contains(const K& k) const { return entries_.contains(k); }
    // HLEN.
    asio::awaitable<std::size_t> size() const { return entries_.size(); }

    // HDEL and ZREM in one MULTI/EXEC: true if `k` was there.
    asio::awaitable<bool> erase(const K& k) {
        request req;
        req.push("MULTI");
        req.push("HDEL", key_, detail::arg(k));
        req.push("ZREM", clock_key_, detail::arg(k));
        req.push("EXEC");
        response<ignore_t, ignore_t, ignore_t, std::tuple<result<long long>, result<long long>>>
            resp;
        co_await client_->exec(req, resp);
        auto [deleted, unranked] = detail::take(std::get<3>(resp), key_, "EXEC");
        detail::take(unranked, clock_key_, "ZREM");
        co_return detail::take(deleted, key_, "HDEL") == 1;
    }

    // The keys from least to most recently used (the next eviction first).
    asio::awaitable<std::vector<K>> keys_by_recency() const {
        request req;
        req.push("ZRANGE", clock_key_, 0, -1);
        auto fields = co_await run<std::vector<std::string>>(req, "ZRANGE");
        std::vector<K> out;
        out.reserve(fields.size());
        for (auto& f : fields) {
            const std::string shown = f;
            out.push_back(detail::decode_at<K>(std::move(f), key_, shown));
        }
        co_return out;
    }

    // DEL of both keys.
    asio::awaitable<void> clear() {
        request req;
        req.push("DEL", key_, clock_key_);
        co_await run<long long>(req, "DEL");
    }

private:
    typed_map<K, V> entries_; // the hash, for the reads that do not touch
    std::string clock_key_;
    std::size_t max_size_;
};

} // namespace akv::kv
