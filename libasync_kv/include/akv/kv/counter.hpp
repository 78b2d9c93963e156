// akv::kv::counter<T>: counts per T in a Redis hash, like Python's collections.Counter. Each
// count is the decimal text of a field, incremented atomically by HINCRBY, so any number of
// writers (coroutines, processes) can count at once and no increment is lost.
//
//   kv::counter<std::string> words(redis, "words");
//   co_await words.increment("redis");
//   auto top = co_await words.most_common(10);     // [("redis", 42), ...]
#pragma once

#include <akv/kv/detail/command.hpp>
#include <akv/kv/key_schema.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace akv::kv {

template <codable T> class counter : public detail::keyed {
public:
    using value_type = std::pair<T, long long>;

    // The hash is schema.key(name).
    counter(client& c, std::string_view name, const key_schema& schema = {})
        : keyed(c, schema.key(name)) {}

    // HINCRBY: the count after adding `by` (which may be negative).
    asio::awaitable<long long> increment(const T& item, long long by) {
        request req;
        push_hincrby(req, item, by);
        co_return co_await run<long long>(req, "HINCRBY");
    }
    asio::awaitable<long long> increment(const T& item) { return increment(item, 1); }

    // The count of `item`: 0 when it was never counted (and nothing is stored, as in Python).
    asio::awaitable<long long> get(const T& item) const {
        request req = cached_read();
        req.push("HGET", key_, detail::arg(item));
        auto bytes = co_await run<std::optional<std::string>>(req, "HGET");
        if (!bytes) co_return 0;
        co_return detail::decode_at<long long>(std::move(*bytes), key_, kv::encode(item));
    }

    // HDEL: forgets `item`; true if it was counted.
    asio::awaitable<bool> erase(const T& item) {
        request req;
        req.push("HDEL", key_, detail::arg(item));
        co_return co_await run<long long>(req, "HDEL") == 1;
    }

    // HLEN: how many distinct items.
    asio::awaitable<std::size_t> size() const {
        request req = cached_read();
        req.push("HLEN", key_);
        co_return static_cast<std::size_t>(co_await run<long long>(req, "HLEN"));
    }

    // Every (item, count), in no particular order (HGETALL).
    asio::awaitable<std::vector<value_type>> items() const {
        request req = cached_read();
        req.push("HGETALL", key_);
        auto flat = co_await run<std::vector<std::string>>(req, "HGETALL");
        std::vector<value_type> out;
        out.reserve(flat.size() / 2);
        for (std::size_t i = 0; i + 1 < flat.size(); i += 2) {
            const std::string field = flat[i];
            T item = detail::decode_at<T>(std::move(flat[i]), key_, field);
            out.emplace_back(std::move(item),
                             detail::decode_at<long long>(std::move(flat[i + 1]), key_, field));
        }
        co_return out;
    }

    // The `n` largest counts, largest first (ties in no particular order); n = 0: all.
    // HGETALL then a sort here: for counters of moderate size (sorted_set_counter ranks in Redis).
    asio::awaitable<std::vector<value_type>> most_common(std::size_t n) const {
        std::vector<value_type> all = co_await items();
        const auto by_count = [](const value_type& a, const value_type& b) {
            return a.second > b.second;
        };
        if (n == 0 || n >= all.size()) {
            std::sort(all.begin(), all.end(), by_count);
        } else {
            std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
                              by_count);
            all.resize(n);
        }
        co_return all;
    }
    asio::awaitable<std::vector<value_type>> most_common() const { return most_common(0); }

    // The sum of every count.
    asio::awaitable<long long> total() const {
        long long sum = 0;
        for (const auto& entry : co_await items())
            sum += entry.second;
        co_return sum;
    }

    // Appending a command to a request the caller runs later (see syncable.hpp).
    void push_hincrby(request& req, const T& item, long long by) const {
        req.push("HINCRBY", key_, detail::arg(item), by);
    }
};

} // namespace akv::kv
