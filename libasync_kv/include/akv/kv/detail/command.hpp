// What every kv container shares: its client and key, running one request and turning a
// server error or an undecodable value into an exception that names the key.
#pragma once

#include <akv/client.hpp>
#include <akv/kv/codec.hpp>

#include <ranges>
#include <string>
#include <string_view>
#include <utility>

namespace akv::kv::detail {

// How messages name a place: `"key"`, `"key"["field"]` (bytes escaped and shortened).
std::string where(std::string_view key);
std::string where(std::string_view key, std::string_view field);

// Throws system_error(e.code, `kv: "key": HSET: WRONGTYPE Operation against a key ...`).
[[noreturn]] void throw_reply_error(const error_info& e, std::string_view key,
                                    std::string_view command);

template <class T> T take(result<T>& r, std::string_view key, std::string_view command) {
    if (r.has_error()) throw_reply_error(r.error(), key, command);
    return std::move(r.value());
}

// A range whose elements are T itself: elements merely convertible to T (const char* for a
// std::string) would be converted to temporaries that die before the request is written.
template <class R, class T>
concept range_of = std::ranges::forward_range<R> &&
    std::same_as<std::remove_cvref_t<std::ranges::range_reference_t<R>>, T>;

// Decodes the bytes of `key` (and `field`, when not empty) as a T, adding the place to a
// type_mismatch_error. A std::string is moved, not copied.
template <codable T>
T decode_at(std::string&& bytes, std::string_view key, std::string_view field = {}) {
    if constexpr (std::is_same_v<T, std::string>) {
        return std::move(bytes);
    } else {
        T value{};
        try {
            codec<T>::decode(bytes, value);
        } catch (const type_mismatch_error& e) {
            throw type_mismatch_error(field.empty() ? where(key) : where(key, field), e.detail());
        }
        return value;
    }
}

// The base of the containers: a client and a key.
class keyed {
public:
    const std::string& key() const noexcept { return key_; }
    client& get_client() const noexcept { return *client_; }

    // DEL: the container becomes empty (Redis drops an empty hash, list, set or zset).
    asio::awaitable<void> clear() {
        request req;
        req.push("DEL", key_);
        co_await run<long long>(req, "DEL");
    }

protected:
    keyed(client& c, std::string key)
        : client_(&c)
        , key_(std::move(key)) {}

    // A read the client's cache may answer (config::cache; without one it goes to the server).
    static request cached_read() {
        request::options o;
        o.cache = true;
        return request(o);
    }

    // Runs `req` (one command) and returns its reply as a T, or throws naming the key.
    template <class T> asio::awaitable<T> run(const request& req, std::string_view command) const {
        response<T> resp;
        if (!client_->try_cached(req, resp)) co_await client_->exec(req, resp);
        co_return take(std::get<0>(resp), key_, command);
    }

    client* client_;
    std::string key_;
};

// SCAN-family cursors travel as decimal text.
std::uint64_t parse_cursor(std::string_view text, std::string_view key);

} // namespace akv::kv::detail
