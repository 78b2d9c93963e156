// akv::kv::defaultdict<K, V>: a typed_map whose get() never comes back empty: a missing key
// gets the default value, which is stored, as Python's defaultdict does on d[k].
//
//   kv::defaultdict<std::string, long long> seen(redis, "seen", 0);
//   long long n = co_await seen.get("x");           // 0, and "x" is now in the hash
#pragma once

#include <akv/kv/typed_map.hpp>

namespace akv::kv {

template <codable K, codable V> class defaultdict : public typed_map<K, V> {
public:
    // The hash is schema.key(name); missing keys get `default_value`.
    defaultdict(client& c, std::string_view name, V default_value, const key_schema& schema = {})
        : typed_map<K, V>(c, name, schema)
        , default_(std::move(default_value)) {}

    const V& default_value() const noexcept { return default_; }

    // HSETNX k default, then HGET k, in one round trip: the stored value, which is the default
    // if `k` was missing (and then stays).
    asio::awaitable<V> get(const K& k) {
        request req;
        req.push("HSETNX", this->key_, detail::arg(k), detail::arg(default_));
        req.push("HGET", this->key_, detail::arg(k));
        response<ignore_t, std::string> resp;
        co_await this->client_->exec(req, resp);
        if (std::get<0>(resp).has_error())
            detail::throw_reply_error(std::get<0>(resp).error(), this->key_, "HSETNX");
        co_return this->decode_value(detail::take(std::get<1>(resp), this->key_, "HGET"), k);
    }

    // HGET without storing the default: nullopt when `k` is missing.
    asio::awaitable<std::optional<V>> peek(const K& k) const { return typed_map<K, V>::get(k); }

private:
    V default_;
};

} // namespace akv::kv
