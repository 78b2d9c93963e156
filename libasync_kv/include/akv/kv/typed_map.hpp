// akv::kv::typed_map<K, V>: a Redis hash seen as a map from K to V (the "dict" of the
// redis-collections family; kv::dict is another name for it).
//
//   kv::typed_map<std::string, std::vector<float>> params(redis, "params", schema);
//   co_await params.set("weights", w);                      // HSET prefix:params weights <tensor>
//   std::optional<std::vector<float>> got = co_await params.get("weights");
//
// Fields and values are encoded with codec<K> and codec<V> (akv/kv/codec.hpp), so the hash
// reads naturally in redis-cli (`HGETALL prefix:params`), and HINCRBY works on integer values.
//
// Every operation is one command and one round trip; get_many / set_many put any number of
// fields in one HMGET / HSET. scan() walks the hash a page at a time with HSCAN, so a map of
// any size is iterated with memory bounded by the page size. Errors: transport failures throw
// system_error from the client; an error reply (WRONGTYPE) throws system_error(server_error)
// with the server's text and the key; a value that does not decode as V throws
// type_mismatch_error naming the key and field.
//
// Methods take their arguments by reference: co_await each call before the arguments go.
#pragma once

#include <akv/kv/detail/command.hpp>
#include <akv/kv/key_schema.hpp>

#include <cstdint>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace akv::kv {

// Entries per HSCAN / SSCAN page when the caller does not say.
inline constexpr std::size_t default_page_size = 1000;

template <codable K, codable V> class typed_map : public detail::keyed {
public:
    using key_type = K;
    using mapped_type = V;
    using value_type = std::pair<K, V>;

    // One HSCAN page: its entries and the cursor for the next call (0: the walk is complete).
    // Like every SCAN, an entry present for the whole walk is seen at least once; one added or
    // removed meanwhile may or may not be, and an entry may (rarely) come twice.
    struct page {
        std::uint64_t cursor = 0;
        std::vector<value_type> entries;
    };

    // The hash is schema.key(name).
    typed_map(client& c, std::string_view name, const key_schema& schema = {})
        : keyed(c, schema.key(name)) {}

    // HGET.
    asio::awaitable<std::optional<V>> get(const K& k) const {
        request req = cached_read();
        req.push("HGET", key_, detail::arg(k));
        auto bytes = co_await run<std::optional<std::string>>(req, "HGET");
        if (!bytes) co_return std::nullopt;
        co_return decode_value(std::move(*bytes), k);
    }

    // HSET.
    asio::awaitable<void> set(const K& k, const V& v) {
        request req;
        push_hset(req, k, v);
        co_await run<long long>(req, "HSET");
    }

    // HSETNX: true if `k` was absent and is now `v`.
    asio::awaitable<bool> set_if_absent(const K& k, const V& v) {
        request req;
        req.push("HSETNX", key_, detail::arg(k), detail::arg(v));
        co_return co_await run<long long>(req, "HSETNX") == 1;
    }

    // HEXISTS.
    asio::awaitable<bool> contains(const K& k) const {
        request req = cached_read();
        req.push("HEXISTS", key_, detail::arg(k));
        co_return co_await run<long long>(req, "HEXISTS") == 1;
    }

    // HDEL: true if `k` was there.
    asio::awaitable<bool> erase(const K& k) {
        request req;
        push_hdel(req, k);
        co_return co_await run<long long>(req, "HDEL") == 1;
    }

    // HLEN.
    asio::awaitable<std::size_t> size() const {
        request req = cached_read();
        req.push("HLEN", key_);
        co_return static_cast<std::size_t>(co_await run<long long>(req, "HLEN"));
    }

    // HMGET of every key of `keys` (a range of K) in one command: the values in the same order.
    template <detail::range_of<K> Keys>
    asio::awaitable<std::vector<std::optional<V>>> get_many(const Keys& keys) const {
        std::vector<std::optional<V>> values;
        if (std::ranges::empty(keys)) co_return values;
        request req = cached_read();
        req.push("HMGET", key_,
                 std::views::transform(keys, [](const K& k) { return detail::arg(k); }));
        auto replies = co_await run<std::vector<std::optional<std::string>>>(req, "HMGET");
        values.reserve(replies.size());
        auto k = std::ranges::begin(keys);
        for (auto& bytes : replies) {
            if (bytes)
                values.emplace_back(decode_value(std::move(*bytes), *k));
            else
                values.emplace_back();
            ++k;
        }
        co_return values;
    }

    // HSET of every (K, V) pair of `entries` in one command. One request carries them all: to
    // bound its size, call it per chunk (a few thousand fields per HSET is a good size).
    template <std::ranges::forward_range Entries>
    asio::awaitable<void> set_many(const Entries& entries) {
        if (std::ranges::empty(entries)) co_return;
        request req;
        push_hset_many(req, entries);
        co_await run<long long>(req, "HSET");
    }

    // One HSCAN page of about `count` entries from `cursor` (0 to start).
    asio::awaitable<page> scan(std::uint64_t cursor, std::size_t count) const {
        request req;
        req.push("HSCAN", key_, cursor, "COUNT", count);
        auto reply = co_await run<std::pair<std::string, std::vector<std::string>>>(req, "HSCAN");
        page p;
        p.cursor = detail::parse_cursor(reply.first, key_);
        auto& flat = reply.second;
        p.entries.reserve(flat.size() / 2);
        for (std::size_t i = 0; i + 1 < flat.size(); i += 2) {
            K k = decode_field(std::move(flat[i]));
            V v = decode_value(std::move(flat[i + 1]), k);
            p.entries.emplace_back(std::move(k), std::move(v));
        }
        co_return p;
    }
    asio::awaitable<page> scan(std::uint64_t cursor) const {
        return scan(cursor, default_page_size);
    }

    // Calls f(const K&, const V&) for every entry, one HSCAN page at a time; returns how many.
    template <class F> asio::awaitable<std::size_t> for_each(F f, std::size_t page_size) const {
        std::uint64_t cursor = 0;
        std::size_t visited = 0;
        do {
            page p = co_await scan(cursor, page_size);
            for (const auto& entry : p.entries) {
                f(entry.first, entry.second);
                ++visited;
            }
            cursor = p.cursor;
        } while (cursor != 0);
        co_return visited;
    }
    template <class F> asio::awaitable<std::size_t> for_each(F f) const {
        return for_each(std::move(f), default_page_size);
    }

    // HGETALL: every entry in one reply; for maps known to be small (see scan otherwise).
    asio::awaitable<std::vector<value_type>> items() const {
        request req = cached_read();
        req.push("HGETALL", key_);
        auto flat = co_await run<std::vector<std::string>>(req, "HGETALL");
        std::vector<value_type> entries;
        entries.reserve(flat.size() / 2);
        for (std::size_t i = 0; i + 1 < flat.size(); i += 2) {
            K k = decode_field(std::move(flat[i]));
            V v = decode_value(std::move(flat[i + 1]), k);
            entries.emplace_back(std::move(k), std::move(v));
        }
        co_return entries;
    }

    // Appending a command to a request the caller runs later (with other commands, or in a
    // MULTI: how the syncable versions buffer their writes).
    void push_hset(request& req, const K& k, const V& v) const {
        req.push("HSET", key_, detail::arg(k), detail::arg(v));
    }
    template <std::ranges::forward_range Entries>
    void push_hset_many(request& req, const Entries& entries) const {
        req.push("HSET", key_, std::views::transform(entries, [](const auto& e) {
                     return std::pair(detail::arg(e.first), detail::arg(e.second));
                 }));
    }
    void push_hdel(request& req, const K& k) const { req.push("HDEL", key_, detail::arg(k)); }

protected:
    V decode_value(std::string&& bytes, const K& k) const {
        try {
            return detail::decode_at<V>(std::move(bytes), key_);
        } catch (const type_mismatch_error& e) {
            throw type_mismatch_error(detail::where(key_, kv::encode(k)), e.detail());
        }
    }
    K decode_field(std::string&& bytes) const {
        if constexpr (std::is_same_v<K, std::string>) {
            return std::move(bytes);
        } else {
            K k{};
            try {
                codec<K>::decode(bytes, k);
            } catch (const type_mismatch_error& e) {
                throw type_mismatch_error(detail::where(key_, bytes), e.detail());
            }
            return k;
        }
    }
};

// The redis-collections name.
template <codable K, codable V> using dict = typed_map<K, V>;

} // namespace akv::kv
