// akv::kv::set<T>: a Redis set of T (SMEMBERS / SSCAN in redis-cli show the encoded members).
//
//   kv::set<std::string> seen(redis, "seen", schema);
//   if (co_await seen.add(id)) { ... }                       // first time
#pragma once

#include <akv/kv/detail/command.hpp>
#include <akv/kv/key_schema.hpp>
#include <akv/kv/typed_map.hpp> // default_page_size

#include <cstdint>
#include <ranges>
#include <string>
#include <string_view>
#include <vector>

namespace akv::kv {

template <codable T> class set : public detail::keyed {
public:
    using value_type = T;

    // One SSCAN page (see typed_map::page for what SCAN guarantees).
    struct page {
        std::uint64_t cursor = 0;
        std::vector<T> members;
    };

    // The set is schema.key(name).
    set(client& c, std::string_view name, const key_schema& schema = {})
        : keyed(c, schema.key(name)) {}

    // SADD: true if `v` was not a member.
    asio::awaitable<bool> add(const T& v) {
        request req;
        push_sadd(req, v);
        co_return co_await run<long long>(req, "SADD") == 1;
    }

    // One SADD of every element of `values`: how many were new.
    template <detail::range_of<T> Values>
    asio::awaitable<std::size_t> add_many(const Values& values) {
        if (std::ranges::empty(values)) co_return 0;
        request req;
        req.push("SADD", key_,
                 std::views::transform(values, [](const T& v) { return detail::arg(v); }));
        co_return static_cast<std::size_t>(co_await run<long long>(req, "SADD"));
    }

    // SREM: true if `v` was a member.
    asio::awaitable<bool> remove(const T& v) {
        request req;
        push_srem(req, v);
        co_return co_await run<long long>(req, "SREM") == 1;
    }

    // SISMEMBER.
    asio::awaitable<bool> contains(const T& v) const {
        request req = cached_read();
        req.push("SISMEMBER", key_, detail::arg(v));
        co_return co_await run<long long>(req, "SISMEMBER") == 1;
    }

    // SCARD.
    asio::awaitable<std::size_t> size() const {
        request req = cached_read();
        req.push("SCARD", key_);
        co_return static_cast<std::size_t>(co_await run<long long>(req, "SCARD"));
    }

    // One SSCAN page of about `count` members from `cursor` (0 to start; 0 back: complete).
    asio::awaitable<page> scan(std::uint64_t cursor, std::size_t count) const {
        request req;
        req.push("SSCAN", key_, cursor, "COUNT", count);
        auto reply = co_await run<std::pair<std::string, std::vector<std::string>>>(req, "SSCAN");
        page p;
        p.cursor = detail::parse_cursor(reply.first, key_);
        p.members.reserve(reply.second.size());
        for (auto& bytes : reply.second)
            p.members.push_back(detail::decode_at<T>(std::move(bytes), key_));
        co_return p;
    }

    // Calls f(const T&) for every member, one SSCAN page at a time; returns how many.
    template <class F> asio::awaitable<std::size_t> for_each(F f, std::size_t page_size) const {
        std::uint64_t cursor = 0;
        std::size_t visited = 0;
        do {
            page p = co_await scan(cursor, page_size);
            for (const T& member : p.members) {
                f(member);
                ++visited;
            }
            cursor = p.cursor;
        } while (cursor != 0);
        co_return visited;
    }

    // Every member, gathered with SSCAN (a member may come twice if the set is rehashed during
    // the walk; they are not deduplicated, T needs no ordering or hash).
    asio::awaitable<std::vector<T>> members() const {
        std::vector<T> all;
        co_await for_each([&all](const T& member) { all.push_back(member); }, default_page_size);
        co_return all;
    }

    // Appending a command to a request the caller runs later (see syncable.hpp).
    void push_sadd(request& req, const T& v) const { req.push("SADD", key_, detail::arg(v)); }
    void push_srem(request& req, const T& v) const { req.push("SREM", key_, detail::arg(v)); }
};

} // namespace akv::kv
