// akv::kv::list<T>: a Redis list of T, pushed and popped at both ends; a queue several
// processes share (RPUSH by producers, LPOP or the blocking pop_front_wait by consumers).
//
//   kv::list<std::string> requests(redis, "graph:requests", schema);
//   co_await requests.push_back("add node 7");
//   std::optional<std::string> next = co_await requests.pop_front_wait(std::chrono::seconds(1));
//
// Elements are encoded with codec<T>, so `LRANGE key 0 -1` shows them. Indices are Redis's:
// 0 is the front, -1 the back, and range(start, stop) includes stop.
#pragma once

#include <akv/kv/detail/command.hpp>
#include <akv/kv/key_schema.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <vector>

namespace akv::kv {

namespace detail {

// What a list and a bounded deque share: the reads and the pops.
template <codable T> class list_base : public keyed {
public:
    using value_type = T;

    // RPOP / LPOP: the element, or nullopt when the list is empty.
    asio::awaitable<std::optional<T>> pop_back() { return pop("RPOP"); }
    asio::awaitable<std::optional<T>> pop_front() { return pop("LPOP"); }

    // BLPOP: waits up to `timeout` (0: for ever) for an element. Runs on one of the client's
    // blocking-command connections, so the shared connection does not stall meanwhile.
    asio::awaitable<std::optional<T>> pop_front_wait(std::chrono::milliseconds timeout) {
        request req;
        req.push("BLPOP", key_, std::chrono::duration<double>(timeout).count());
        auto popped =
            co_await run<std::optional<std::pair<std::string, std::string>>>(req, "BLPOP");
        if (!popped) co_return std::nullopt;
        co_return decode_at<T>(std::move(popped->second), key_);
    }

    // LINDEX: the element at `index` (negative: from the back), or nullopt past either end.
    asio::awaitable<std::optional<T>> at(std::int64_t index) const {
        request req = cached_read();
        req.push("LINDEX", key_, index);
        auto bytes = co_await run<std::optional<std::string>>(req, "LINDEX");
        if (!bytes) co_return std::nullopt;
        co_return decode_at<T>(std::move(*bytes), key_);
    }
    asio::awaitable<std::optional<T>> front() const { return at(0); }
    asio::awaitable<std::optional<T>> back() const { return at(-1); }

    // LRANGE start stop (both included; -1 is the last element).
    asio::awaitable<std::vector<T>> range(std::int64_t start, std::int64_t stop) const {
        request req = cached_read();
        req.push("LRANGE", key_, start, stop);
        auto items = co_await run<std::vector<std::string>>(req, "LRANGE");
        std::vector<T> values;
        values.reserve(items.size());
        for (auto& bytes : items)
            values.push_back(decode_at<T>(std::move(bytes), key_));
        co_return values;
    }
    // Every element, front to back.
    asio::awaitable<std::vector<T>> items() const { return range(0, -1); }

    // LLEN.
    asio::awaitable<std::size_t> size() const {
        request req = cached_read();
        req.push("LLEN", key_);
        co_return static_cast<std::size_t>(co_await run<long long>(req, "LLEN"));
    }

protected:
    list_base(client& c, std::string key)
        : keyed(c, std::move(key)) {}

    asio::awaitable<std::optional<T>> pop(std::string_view command) {
        request req;
        req.push(command, key_);
        auto bytes = co_await run<std::optional<std::string>>(req, command);
        if (!bytes) co_return std::nullopt;
        co_return decode_at<T>(std::move(*bytes), key_);
    }
};

} // namespace detail

template <codable T> class list : public detail::list_base<T> {
public:
    // The list is schema.key(name).
    list(client& c, std::string_view name, const key_schema& schema = {})
        : detail::list_base<T>(c, schema.key(name)) {}

    // RPUSH / LPUSH: the length after the push.
    asio::awaitable<std::size_t> push_back(const T& v) {
        request req;
        push_rpush(req, v);
        co_return static_cast<std::size_t>(co_await this->template run<long long>(req, "RPUSH"));
    }
    asio::awaitable<std::size_t> push_front(const T& v) {
        request req;
        push_lpush(req, v);
        co_return static_cast<std::size_t>(co_await this->template run<long long>(req, "LPUSH"));
    }

    // One RPUSH of every element of `values`, in order: the length after the push.
    template <detail::range_of<T> Values>
    asio::awaitable<std::size_t> push_back_many(const Values& values) {
        if (std::ranges::empty(values)) co_return co_await this->size();
        request req;
        push_rpush_many(req, values);
        co_return static_cast<std::size_t>(co_await this->template run<long long>(req, "RPUSH"));
    }

    // LSET: replaces the element at `index`; an index out of range is the server's error.
    asio::awaitable<void> set(std::int64_t index, const T& v) {
        request req;
        req.push("LSET", this->key_, index, detail::arg(v));
        co_await this->template run<std::string>(req, "LSET");
    }

    // Appending a command to a request the caller runs later (see syncable.hpp).
    void push_rpush(request& req, const T& v) const {
        req.push("RPUSH", this->key_, detail::arg(v));
    }
    void push_lpush(request& req, const T& v) const {
        req.push("LPUSH", this->key_, detail::arg(v));
    }
    template <detail::range_of<T> Values>
    void push_rpush_many(request& req, const Values& values) const {
        req.push("RPUSH", this->key_,
                 std::views::transform(values, [](const T& v) { return detail::arg(v); }));
    }
};

} // namespace akv::kv
