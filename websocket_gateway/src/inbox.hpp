// The requests of a streaming session (SSE, HTTP streaming: event_stream.hpp), which come on
// other HTTP connections, possibly on other threads, and the registry that finds a session by
// its key. Beast-free: server.cpp posts to it, the session reads from it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace akv::gateway::detail {

namespace asio = boost::asio;

// A session's requests, queued on its executor by /connection/emulation (from any thread).
class inbox : public std::enable_shared_from_this<inbox> {
public:
    explicit inbox(asio::any_io_executor ex)
        : ex_(std::move(ex))
        , signal_(ex_) {
        signal_.expires_at(asio::steady_timer::time_point::max());
    }

    // Any thread. False when the session has more than `limit` requests not yet read (the
    // client should slow down) or has ended.
    bool post(std::vector<std::string> requests, std::size_t limit) {
        if (closed_.load(std::memory_order_relaxed)) return false;
        const std::size_t n = requests.size();
        if (waiting_.fetch_add(n, std::memory_order_relaxed) + n > limit) {
            waiting_.fetch_sub(n, std::memory_order_relaxed);
            return false;
        }
        asio::post(ex_, [self = shared_from_this(), requests = std::move(requests)]() mutable {
            for (auto& r : requests)
                self->queue_.push_back(std::move(r));
            self->signal_.cancel();
        });
        return true;
    }

    // The session's executor from here on.
    std::optional<std::string> pop() {
        if (queue_.empty()) return std::nullopt;
        std::string r = std::move(queue_.front());
        queue_.pop_front();
        waiting_.fetch_sub(1, std::memory_order_relaxed);
        return r;
    }
    asio::steady_timer& signal() noexcept { return signal_; }
    void close() noexcept {
        closed_.store(true, std::memory_order_relaxed);
        signal_.cancel();
    }

private:
    asio::any_io_executor ex_;
    asio::steady_timer signal_; // cancelled when a request arrives or the stream ends
    std::deque<std::string> queue_;
    std::atomic<std::size_t> waiting_{0};
    std::atomic<bool> closed_{false};
};

enum class stream_kind { sse, http_stream };

// A streaming session to start: its client's connect message (handed to the session as its
// first request) and the origin to allow in the response (empty: none).
struct stream_request {
    stream_kind kind = stream_kind::sse;
    std::string connect;
    std::string allow_origin;
    std::vector<std::pair<std::string, std::string>> forwarded; // to the connect proxy
};

// The open streaming sessions by key (any thread). A key is 128 random bits: whoever holds it
// speaks for the session, so it is sent only down the session's own stream.
class inbox_registry {
public:
    // A new key for `in`.
    std::string add(std::shared_ptr<inbox> in);
    void remove(const std::string& key);
    std::shared_ptr<inbox> find(const std::string& key) const;

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<inbox>> inboxes_;
};

} // namespace akv::gateway::detail
