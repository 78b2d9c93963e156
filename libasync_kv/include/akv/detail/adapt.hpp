// Turning the nodes of one reply into a C++ value, and the type-erased adapter the connection
// calls for each reply of a request.
#pragma once

#include <akv/resp/parser.hpp>
#include <akv/response.hpp>

#include <charconv>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace akv::detail {

// A read position over the nodes of one top-level reply.
struct cursor {
    std::span<const resp::node> nodes;
    std::string_view message; // the reply's bytes; node values are offsets into it
    std::size_t index = 0;

    const resp::node& current() const { return nodes[index]; }
    std::string_view text() const { return current().value(message); }
    bool at_end() const { return index >= nodes.size(); }
    void skip_attributes();
    void skip_subtree();
};

// What did not match, in the error's words: "expected an integer, got blob_string "abc"".
error_info mismatch(const cursor& c, std::string_view expected);
error_info unexpected_null(std::string_view expected);
error_info server_error_from(const cursor& c);

template <class T>
struct converter; // converter<T>::apply(cursor&, T&) -> std::optional<error_info>

template <class T> std::optional<error_info> convert(cursor& c, T& out) {
    c.skip_attributes();
    return converter<T>::apply(c, out);
}

bool parse_integer(std::string_view text, long long& out);
bool parse_unsigned(std::string_view text, unsigned long long& out);
bool parse_double(std::string_view text, double& out);

template <> struct converter<ignore_t> {
    static std::optional<error_info> apply(cursor& c, ignore_t&) {
        c.skip_subtree();
        return std::nullopt;
    }
};

template <> struct converter<std::string> {
    static std::optional<error_info> apply(cursor& c, std::string& out);
};

template <> struct converter<bool> {
    static std::optional<error_info> apply(cursor& c, bool& out);
};

template <> struct converter<double> {
    static std::optional<error_info> apply(cursor& c, double& out);
};

template <> struct converter<float> {
    static std::optional<error_info> apply(cursor& c, float& out) {
        double d = 0;
        auto e = converter<double>::apply(c, d);
        out = static_cast<float>(d);
        return e;
    }
};

template <class T>
requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) struct converter<T> {
    static std::optional<error_info> apply(cursor& c, T& out) {
        const resp::node& n = c.current();
        if (n.data_type == resp::type::null) return unexpected_null("an integer");
        if (resp::is_error(n.data_type)) return server_error_from(c);
        if (n.data_type == resp::type::boolean) {
            out = c.text() == "t";
            ++c.index;
            return std::nullopt;
        }
        const bool textual =
            n.data_type == resp::type::number || n.data_type == resp::type::simple_string ||
            n.data_type == resp::type::blob_string || n.data_type == resp::type::big_number;
        if (!textual) return mismatch(c, "an integer");
        const std::string_view t = c.text();
        auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
        if (ec != std::errc{} || ptr != t.data() + t.size() || t.empty())
            return mismatch(c, std::is_signed_v<T> ? "an integer that fits"
                                                   : "a non-negative integer that fits");
        ++c.index;
        return std::nullopt;
    }
};

template <> struct converter<resp::value> {
    static std::optional<error_info> apply(cursor& c, resp::value& out);
};

template <class T> struct converter<std::optional<T>> {
    static std::optional<error_info> apply(cursor& c, std::optional<T>& out) {
        if (c.current().data_type == resp::type::null) {
            out.reset();
            ++c.index;
            return std::nullopt;
        }
        if (!out) out.emplace();
        return converter<T>::apply(c, *out);
    }
};

// Inside an aggregate (EXEC's replies, for one): an error element is a value, not a failure.
template <class T> struct converter<result<T>> {
    static std::optional<error_info> apply(cursor& c, result<T>& out) {
        if (resp::is_error(c.current().data_type)) {
            out.set_error(server_error_from(c));
            c.skip_subtree();
            return std::nullopt;
        }
        const std::size_t start = c.index;
        if (auto e = converter<T>::apply(c, out.emplace_value())) {
            out.set_error(std::move(*e));
            c.index = start; // realign on the next element
            c.skip_subtree();
        }
        return std::nullopt;
    }
};

// Enters an aggregate and reports how many elements (not pairs) follow.
std::optional<error_info> enter_aggregate(cursor& c, std::string_view expected,
                                          std::size_t& elements);

template <class T> struct sequence_converter {
    static std::optional<error_info> apply(cursor& c, T& out) {
        std::size_t n = 0;
        if (auto e = enter_aggregate(c, "an aggregate", n)) return e;
        out.clear();
        if constexpr (requires { out.reserve(n); }) out.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            typename T::value_type v{};
            if (auto e = convert(c, v)) return e;
            if constexpr (requires { out.push_back(std::move(v)); })
                out.push_back(std::move(v));
            else
                out.insert(std::move(v));
        }
        return std::nullopt;
    }
};

template <class T, class A>
struct converter<std::vector<T, A>> : sequence_converter<std::vector<T, A>> {};
template <class T, class C, class A>
struct converter<std::set<T, C, A>> : sequence_converter<std::set<T, C, A>> {};
template <class T, class H, class E, class A>
struct converter<std::unordered_set<T, H, E, A>>
    : sequence_converter<std::unordered_set<T, H, E, A>> {};

template <class T> struct map_converter {
    static std::optional<error_info> apply(cursor& c, T& out) {
        std::size_t n = 0;
        if (auto e = enter_aggregate(c, "a map", n)) return e;
        if (n % 2 != 0)
            return error_info{make_error_code(error::type_mismatch),
                              "expected a map, got an aggregate of odd length " +
                                  std::to_string(n)};
        out.clear();
        for (std::size_t i = 0; i < n; i += 2) {
            typename T::key_type k{};
            typename T::mapped_type v{};
            if (auto e = convert(c, k)) return e;
            if (auto e = convert(c, v)) return e;
            out.insert_or_assign(std::move(k), std::move(v));
        }
        return std::nullopt;
    }
};

template <class K, class V, class C, class A>
struct converter<std::map<K, V, C, A>> : map_converter<std::map<K, V, C, A>> {};
template <class K, class V, class H, class E, class A>
struct converter<std::unordered_map<K, V, H, E, A>>
    : map_converter<std::unordered_map<K, V, H, E, A>> {};

std::optional<error_info> check_tuple_size(cursor& c, std::size_t expected);

template <class... Ts> struct converter<std::tuple<Ts...>> {
    static std::optional<error_info> apply(cursor& c, std::tuple<Ts...>& out) {
        if (auto e = check_tuple_size(c, sizeof...(Ts))) return e;
        std::optional<error_info> err;
        std::apply([&](auto&... elems) { ((err ? void() : void(err = convert(c, elems))), ...); },
                   out);
        return err;
    }
};

template <class A, class B> struct converter<std::pair<A, B>> {
    static std::optional<error_info> apply(cursor& c, std::pair<A, B>& out) {
        if (auto e = check_tuple_size(c, 2)) return e;
        if (auto e = convert(c, out.first)) return e;
        return convert(c, out.second);
    }
};

// Fills one result slot from a complete top-level reply.
template <class T>
void adapt_reply(std::span<const resp::node> nodes, std::string_view message, result<T>& slot) {
    cursor c{nodes, message, 0};
    c.skip_attributes();
    if (resp::is_error(c.current().data_type)) {
        slot.set_error(server_error_from(c));
        return;
    }
    if (auto e = converter<T>::apply(c, slot.emplace_value())) slot.set_error(std::move(*e));
}

// What the connection holds for a request in flight: where reply number `index` goes.
struct reply_adapter {
    void* target = nullptr;
    void (*fn)(void*, std::size_t, std::span<const resp::node>, std::string_view) = nullptr;
    std::size_t slots = 0; // replies it can take; SIZE_MAX: any number

    void operator()(std::size_t index, std::span<const resp::node> nodes,
                    std::string_view message) const {
        if (fn) fn(target, index, nodes, message);
    }
};

template <class... Ts> reply_adapter make_adapter(response<Ts...>& r) {
    using tuple_t = response<Ts...>;
    return {&r,
            [](void* p, std::size_t index, std::span<const resp::node> nodes,
               std::string_view message) {
                auto& t = *static_cast<tuple_t*>(p);
                [&]<std::size_t... I>(std::index_sequence<I...>) {
                    ((I == index ? adapt_reply(nodes, message, std::get<I>(t)) : void()), ...);
                }
                (std::index_sequence_for<Ts...>{});
            },
            sizeof...(Ts)};
}

inline reply_adapter make_adapter(generic_response& r) {
    r.clear();
    return {&r,
            [](void* p, std::size_t index, std::span<const resp::node> nodes,
               std::string_view message) {
                auto& v = *static_cast<generic_response*>(p);
                if (v.size() <= index) v.resize(index + 1);
                adapt_reply(nodes, message, v[index]);
            },
            static_cast<std::size_t>(-1)};
}

inline reply_adapter make_adapter(reply_adapter& a) {
    return a;
}

inline reply_adapter make_adapter(const ignore_t&) {
    return {nullptr, nullptr, static_cast<std::size_t>(-1)};
}

} // namespace akv::detail
