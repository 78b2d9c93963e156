// akv::kv::sorted_set_counter<T>: scores per T in a Redis sorted set, ranked by Redis itself:
// increments are ZINCRBY, the top n is one ZRANGE ... REV, whatever the size.
//
//   kv::sorted_set_counter<std::string> hits(redis, "hits");
//   co_await hits.increment("/index.html");
//   auto top = co_await hits.top(10);              // [("/index.html", 1042), ...]
//
// `ZRANGE key 0 -1 WITHSCORES` in redis-cli shows it. Scores are doubles, as in Redis.
#pragma once

#include <akv/kv/detail/command.hpp>
#include <akv/kv/key_schema.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace akv::kv {

template <codable T> class sorted_set_counter : public detail::keyed {
public:
    using value_type = std::pair<T, double>;

    // The sorted set is schema.key(name).
    sorted_set_counter(client& c, std::string_view name, const key_schema& schema = {})
        : keyed(c, schema.key(name)) {}

    // ZINCRBY: the score after adding `by` (which may be negative).
    asio::awaitable<double> increment(const T& member, double by) {
        request req;
        push_zincrby(req, member, by);
        co_return co_await run<double>(req, "ZINCRBY");
    }
    asio::awaitable<double> increment(const T& member) { return increment(member, 1.0); }

    // ZSCORE: nullopt when `member` has no score.
    asio::awaitable<std::optional<double>> score(const T& member) const {
        request req = cached_read();
        req.push("ZSCORE", key_, detail::arg(member));
        co_return co_await run<std::optional<double>>(req, "ZSCORE");
    }

    // ZREVRANK: 0 for the highest score, 1 for the next...; nullopt when not a member.
    asio::awaitable<std::optional<std::size_t>> rank(const T& member) const {
        request req = cached_read();
        req.push("ZREVRANK", key_, detail::arg(member));
        auto r = co_await run<std::optional<long long>>(req, "ZREVRANK");
        if (!r) co_return std::nullopt;
        co_return static_cast<std::size_t>(*r);
    }

    // ZRANGE key 0 n-1 REV WITHSCORES: the `n` highest scores, highest first; n = 0: all.
    asio::awaitable<std::vector<value_type>> top(std::size_t n) const {
        request req = cached_read();
        req.push("ZRANGE", key_, 0, static_cast<long long>(n) - 1, "REV", "WITHSCORES");
        auto pairs = co_await run<std::vector<std::pair<std::string, double>>>(req, "ZRANGE");
        std::vector<value_type> out;
        out.reserve(pairs.size());
        for (auto& [bytes, score] : pairs)
            out.emplace_back(detail::decode_at<T>(std::move(bytes), key_), score);
        co_return out;
    }

    // ZREM: true if `member` was there.
    asio::awaitable<bool> erase(const T& member) {
        request req;
        req.push("ZREM", key_, detail::arg(member));
        co_return co_await run<long long>(req, "ZREM") == 1;
    }

    // ZCARD.
    asio::awaitable<std::size_t> size() const {
        request req = cached_read();
        req.push("ZCARD", key_);
        co_return static_cast<std::size_t>(co_await run<long long>(req, "ZCARD"));
    }

    // Appending a command to a request the caller runs later (see syncable.hpp).
    void push_zincrby(request& req, const T& member, double by) const {
        req.push("ZINCRBY", key_, by, detail::arg(member));
    }
};

} // namespace akv::kv
