// akv::kv::deque<T>: a bounded Redis list, like Python's deque(maxlen=n): pushing at one end
// beyond max_len drops elements at the other end. The push and the trim go in one MULTI/EXEC
// (RPUSH + LTRIM key -max -1, or LPUSH + LTRIM key 0 max-1), so no reader ever sees the list
// longer than max_len and concurrent pushers cannot overshoot it.
//
//   kv::deque<double> recent(redis, "latency", 1000);   // the last 1000 samples
//   co_await recent.push_back(3.2);
#pragma once

#include <akv/kv/list.hpp>

#include <algorithm>

namespace akv::kv {

template <codable T> class deque : public detail::list_base<T> {
public:
    // The list is schema.key(name). max_len must be at least 1.
    deque(client& c, std::string_view name, std::size_t max_len, const key_schema& schema = {})
        : detail::list_base<T>(c, schema.key(name))
        , max_len_(max_len) {
        if (max_len_ == 0) {
            throw_error(error::invalid_config,
                        "kv: deque " + detail::where(this->key_) + ": max_len must be at least 1");
        }
    }

    std::size_t max_len() const noexcept { return max_len_; }

    // Pushes at the back (dropping from the front) or at the front (dropping from the back);
    // returns the length after the push and trim.
    asio::awaitable<std::size_t> push_back(const T& v) {
        request req;
        req.push("MULTI");
        push_rpush(req, v);
        req.push("EXEC");
        co_return co_await exec_push(req);
    }
    asio::awaitable<std::size_t> push_front(const T& v) {
        request req;
        req.push("MULTI");
        push_lpush(req, v);
        req.push("EXEC");
        co_return co_await exec_push(req);
    }

    // Appending the push and its trim (two commands) to a request run later inside a
    // MULTI/EXEC (see syncable.hpp).
    void push_rpush(request& req, const T& v) const {
        req.push("RPUSH", this->key_, detail::arg(v));
        req.push("LTRIM", this->key_, -static_cast<std::int64_t>(max_len_), -1);
    }
    void push_lpush(request& req, const T& v) const {
        req.push("LPUSH", this->key_, detail::arg(v));
        req.push("LTRIM", this->key_, 0, static_cast<std::int64_t>(max_len_) - 1);
    }

private:
    // MULTI, push, trim, EXEC: EXEC's reply holds the push's length and the trim's OK.
    asio::awaitable<std::size_t> exec_push(const request& req) {
        response<ignore_t, ignore_t, ignore_t, std::tuple<result<long long>, result<ignore_t>>>
            resp;
        co_await this->client_->exec(req, resp);
        auto [pushed, trimmed] = detail::take(std::get<3>(resp), this->key_, "EXEC");
        const auto length = detail::take(pushed, this->key_, "PUSH");
        detail::take(trimmed, this->key_, "LTRIM");
        co_return std::min(static_cast<std::size_t>(length), max_len_);
    }

    std::size_t max_len_;
};

} // namespace akv::kv
