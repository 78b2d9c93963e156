// akv::request: one or more commands sent together (a pipeline is one object).
//
//   akv::request req;
//   req.push("SET", "key", 42);
//   req.push("GET", "key");
//   req.push_range("RPUSH", "list", std::vector<int>{1, 2, 3});
//
// Arguments: anything convertible to std::string_view (bytes, binary safe), integers, floating
// point, std::span<const std::byte>, ranges and pairs of those (expanded in place), and user types
// with an ADL-found `void to_bulk(std::string& out, const T&)` that calls resp::write_bulk.
#pragma once

#include <akv/resp/writer.hpp>

#include <charconv>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace akv {

namespace detail {

template <class T>
concept string_like = std::convertible_to<const T&, std::string_view>;

template <class T> struct is_pair : std::false_type {};
template <class A, class B> struct is_pair<std::pair<A, B>> : std::true_type {};

template <class T>
concept byte_span = std::same_as<std::remove_cvref_t<T>, std::span<const std::byte>> ||
    std::same_as<std::remove_cvref_t<T>, std::span<std::byte>>;

template <class T>
concept arg_range = std::ranges::input_range<T> && !string_like<T> && !byte_span<T>;

template <class T>
concept has_to_bulk = requires(std::string& out, const T& t) {
    to_bulk(out, t);
};

// `count` arguments already written as RESP bulk strings, taken from another request's payload
// (akv::script_request sends a call's keys and args again with EVAL this way).
struct encoded_args {
    std::string_view bytes;
    std::size_t count = 0;
};

// ASCII case-insensitive equality, for command names.
bool iequals(std::string_view a, std::string_view b) noexcept;

// (P|S)(UN)SUBSCRIBE: answered by pushes, not by a regular reply.
bool answers_with_push(std::string_view command) noexcept;

template <class T> std::size_t arg_count(const T& t) {
    if constexpr (std::is_same_v<T, encoded_args>) {
        return t.count;
    } else if constexpr (string_like<T> || byte_span<T> || std::is_arithmetic_v<T> ||
                         has_to_bulk<T>) {
        return 1;
    } else if constexpr (is_pair<T>::value) {
        return arg_count(t.first) + arg_count(t.second);
    } else if constexpr (arg_range<T>) {
        std::size_t n = 0;
        for (const auto& e : t)
            n += arg_count(e);
        return n;
    } else {
        static_assert(sizeof(T) == 0, "akv::request: unsupported argument type");
        return 0;
    }
}

template <class T> void add_arg(std::string& out, const T& t) {
    if constexpr (std::is_same_v<T, encoded_args>) {
        out += t.bytes;
    } else if constexpr (string_like<T>) {
        resp::write_bulk(out, std::string_view(t));
    } else if constexpr (byte_span<T>) {
        resp::write_bulk(out, {reinterpret_cast<const char*>(t.data()), t.size()});
    } else if constexpr (std::is_same_v<T, bool>) {
        resp::write_bulk(out, t ? "1" : "0");
    } else if constexpr (std::is_arithmetic_v<T>) {
        char buf[40];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, t);
        resp::write_bulk(out, {buf, static_cast<std::size_t>(end - buf)});
    } else if constexpr (has_to_bulk<T>) {
        to_bulk(out, t);
    } else if constexpr (is_pair<T>::value) {
        add_arg(out, t.first);
        add_arg(out, t.second);
    } else {
        for (const auto& e : t)
            add_arg(out, e);
    }
}

} // namespace detail

class request {
public:
    struct options {
        // Safe to send again after a reconnect even if it was written once (GET, SET k v, ...).
        // Otherwise a written request whose reply was lost fails with error::connection_lost.
        bool idempotent = false;
        // Fail at once with error::not_connected instead of waiting for the connection.
        bool fail_if_not_connected = false;
        // 0: the connection's default (config::request_timeout); otherwise this bound.
        std::chrono::milliseconds timeout{0};
        // Read through the client's cache (config::cache), if it has one: a request of only
        // cacheable reads (GET, MGET, HGET, HMGET, HGETALL, EXISTS, STRLEN, ...) may be answered
        // from memory. Any other request goes to the server as it is.
        bool cache = false;
    };

    request() = default;
    explicit request(options opts)
        : options_(opts) {}

    template <class... Args> void push(std::string_view command, const Args&... args) {
        const std::size_t n = 1 + (std::size_t{0} + ... + detail::arg_count(args));
        resp::write_aggregate_header(payload_, '*', n);
        resp::write_bulk(payload_, command);
        (detail::add_arg(payload_, args), ...);
        note_command(command, sizeof...(Args) > 0 ? payload_tail_args(command) : false, n - 1);
    }

    template <class Range> void push_range(std::string_view command, const Range& range) {
        push(command, range);
    }

    template <class Key, class Range>
    void push_range(std::string_view command, const Key& key, const Range& range) {
        push(command, key, range);
    }

    // Appends every command of `other` (its options are not taken).
    void append(const request& other) {
        if (other.empty()) return;
        payload_ += other.payload_;
        last_command_start_ = payload_.size();
        commands_ += other.commands_;
        expected_replies_ += other.expected_replies_;
        expected_pushes_ += other.expected_pushes_;
        unknown_pushes_ = unknown_pushes_ || other.unknown_pushes_;
        blocking_ = blocking_ || other.blocking_;
    }

    std::size_t size() const noexcept { return commands_; }
    bool empty() const noexcept { return commands_ == 0; }
    // Replies the server will send as regular replies: (P|S)(UN)SUBSCRIBE answer with pushes.
    std::size_t expected_replies() const noexcept { return expected_replies_; }
    // A request of only (S|P)(UN)SUBSCRIBEs with channels named: the confirmation pushes its
    // connection waits for (one per channel), so that an error reply in their place (NOPERM,
    // MOVED) is known for theirs. 0 otherwise (done once written).
    std::size_t expected_confirmations() const noexcept {
        return expected_replies_ == 0 && !unknown_pushes_ ? expected_pushes_ : 0;
    }
    // BLPOP, XREADGROUP ... BLOCK and friends: a client runs these on a connection of their own.
    bool has_blocking_command() const noexcept { return blocking_; }

    std::string_view payload() const noexcept { return payload_; }
    options& get_options() noexcept { return options_; }
    const options& get_options() const noexcept { return options_; }

    void clear() noexcept {
        payload_.clear();
        commands_ = expected_replies_ = expected_pushes_ = 0;
        unknown_pushes_ = false;
        blocking_ = false;
        last_command_start_ = 0;
    }
    void reserve(std::size_t bytes) { payload_.reserve(bytes); }

private:
    bool payload_tail_args(std::string_view command) const;
    void note_command(std::string_view command, bool has_block_arg, std::size_t args);

    std::string payload_;
    std::size_t commands_ = 0;
    std::size_t expected_replies_ = 0;
    std::size_t expected_pushes_ = 0;
    bool unknown_pushes_ = false; // an UNSUBSCRIBE of everything: as many pushes as channels
    std::size_t last_command_start_ = 0;
    bool blocking_ = false;
    options options_;
};

} // namespace akv
