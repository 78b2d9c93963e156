// Syncable containers: writes are buffered here and reach Redis together, in one MULTI/EXEC
// (one request, one round trip, applied atomically), when you co_await flush().
//
//   kv::syncable_dict<std::string, double> metrics(redis, "metrics", schema);
//   for (auto& [name, value] : results) metrics.set(name, value);   // no I/O, no co_await
//   co_await metrics.flush();                                        // one round trip
//
// The write methods return at once; reads go through container() and see what has been
// flushed, not what is still buffered. Python's syncables flush when the `with` block ends; a
// C++ destructor cannot co_await, so flush() is required: destroying a syncable that still holds
// writes is a programming error (an assert in debug builds; in release builds the writes are
// lost). discard() drops them on purpose. with_flush(s, body) runs a coroutine body, then
// flushes (or discards if the body throws).
//
// flush() fails as the client fails: a transport error throws system_error, and the writes
// count as lost (if the request was written, Redis may have applied all of them: MULTI/EXEC is
// all or nothing). An error reply inside the transaction (WRONGTYPE) throws with the key and the
// server's text; Redis does not roll back the other commands of a transaction.
//
// Syncables: dict (typed_map), list, set, counter, deque, sorted_set_counter.
#pragma once

#include <akv/kv/counter.hpp>
#include <akv/kv/deque.hpp>
#include <akv/kv/list.hpp>
#include <akv/kv/set.hpp>
#include <akv/kv/sorted_set_counter.hpp>
#include <akv/kv/typed_map.hpp>

#include <cassert>

namespace akv::kv {

namespace detail {

// The buffered commands of one syncable, as a request that starts with MULTI.
class write_buffer {
public:
    write_buffer(client& c, std::string key)
        : client_(&c)
        , key_(std::move(key)) {}
    ~write_buffer() {
        assert(commands_ == 0 && "kv syncable destroyed with unflushed writes: "
                                 "co_await flush() (or discard()) first");
    }
    write_buffer(const write_buffer&) = delete;
    write_buffer& operator=(const write_buffer&) = delete;

    // The request to append `commands` more commands to.
    request& append(std::size_t commands) {
        if (commands_ == 0) req_.push("MULTI");
        commands_ += commands;
        return req_;
    }
    std::size_t pending() const noexcept { return commands_; }
    void discard() noexcept {
        req_.clear();
        commands_ = 0;
    }
    // MULTI, the buffered commands, EXEC: one request. Does nothing when nothing is buffered.
    asio::awaitable<void> flush();

private:
    client* client_;
    std::string key_;
    request req_;
    std::size_t commands_ = 0;
};

template <class Container> class syncable_base {
public:
    // How many commands wait for flush().
    std::size_t pending() const noexcept { return buffer_.pending(); }
    asio::awaitable<void> flush() { return buffer_.flush(); }
    void discard() noexcept { buffer_.discard(); }

    // The container itself, for reads (and unbuffered writes).
    Container& container() noexcept { return container_; }
    const Container& container() const noexcept { return container_; }
    const std::string& key() const noexcept { return container_.key(); }

protected:
    template <class... Args>
    explicit syncable_base(client& c, Args&&... args)
        : container_(c, std::forward<Args>(args)...)
        , buffer_(c, container_.key()) {}

    Container container_;
    write_buffer buffer_;
};

} // namespace detail

template <codable K, codable V>
class syncable_dict : public detail::syncable_base<typed_map<K, V>> {
public:
    syncable_dict(client& c, std::string_view name, const key_schema& schema = {})
        : detail::syncable_base<typed_map<K, V>>(c, name, schema) {}

    void set(const K& k, const V& v) { this->container_.push_hset(this->buffer_.append(1), k, v); }
    // One HSET of every (K, V) of `entries`.
    template <std::ranges::forward_range Entries> void set_many(const Entries& entries) {
        if (std::ranges::empty(entries)) return;
        this->container_.push_hset_many(this->buffer_.append(1), entries);
    }
    void erase(const K& k) { this->container_.push_hdel(this->buffer_.append(1), k); }
};

template <codable T> class syncable_list : public detail::syncable_base<list<T>> {
public:
    syncable_list(client& c, std::string_view name, const key_schema& schema = {})
        : detail::syncable_base<list<T>>(c, name, schema) {}

    void push_back(const T& v) { this->container_.push_rpush(this->buffer_.append(1), v); }
    void push_front(const T& v) { this->container_.push_lpush(this->buffer_.append(1), v); }
    template <detail::range_of<T> Values> void push_back_many(const Values& values) {
        if (std::ranges::empty(values)) return;
        this->container_.push_rpush_many(this->buffer_.append(1), values);
    }
};

template <codable T> class syncable_deque : public detail::syncable_base<deque<T>> {
public:
    syncable_deque(client& c, std::string_view name, std::size_t max_len,
                   const key_schema& schema = {})
        : detail::syncable_base<deque<T>>(c, name, max_len, schema) {}

    // Each push is the push and its trim (two commands).
    void push_back(const T& v) { this->container_.push_rpush(this->buffer_.append(2), v); }
    void push_front(const T& v) { this->container_.push_lpush(this->buffer_.append(2), v); }
};

template <codable T> class syncable_set : public detail::syncable_base<set<T>> {
public:
    syncable_set(client& c, std::string_view name, const key_schema& schema = {})
        : detail::syncable_base<set<T>>(c, name, schema) {}

    void add(const T& v) { this->container_.push_sadd(this->buffer_.append(1), v); }
    void remove(const T& v) { this->container_.push_srem(this->buffer_.append(1), v); }
};

template <codable T> class syncable_counter : public detail::syncable_base<counter<T>> {
public:
    syncable_counter(client& c, std::string_view name, const key_schema& schema = {})
        : detail::syncable_base<counter<T>>(c, name, schema) {}

    void increment(const T& item, long long by) {
        this->container_.push_hincrby(this->buffer_.append(1), item, by);
    }
    void increment(const T& item) { increment(item, 1); }
};

template <codable T>
class syncable_sorted_set_counter : public detail::syncable_base<sorted_set_counter<T>> {
public:
    syncable_sorted_set_counter(client& c, std::string_view name, const key_schema& schema = {})
        : detail::syncable_base<sorted_set_counter<T>>(c, name, schema) {}

    void increment(const T& member, double by) {
        this->container_.push_zincrby(this->buffer_.append(1), member, by);
    }
    void increment(const T& member) { increment(member, 1.0); }
};

// co_await with_flush(s, [&](auto& s) -> asio::awaitable<void> { s.set(...); ... co_return; });
// runs the body, then flushes `s`; if the body throws, the buffered writes are discarded and
// the exception goes on.
template <class Syncable, class Body> asio::awaitable<void> with_flush(Syncable& s, Body body) {
    try {
        co_await body(s);
    } catch (...) {
        s.discard();
        throw;
    }
    co_await s.flush();
}

} // namespace akv::kv
