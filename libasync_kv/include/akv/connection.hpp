// akv::connection: one socket to one Redis server, shared by any number of coroutines.
//
// Every exec() joins one queue; a single writer sends all pending requests in one write
// (automatic pipelining) and a single reader completes them in order. run() connects, says
// HELLO 3, and reconnects with backoff until cancel(). Bound to one executor: calls from other
// threads are dispatched to it. The connection must outlive its run() and exec() operations.
#pragma once

#include <akv/config.hpp>
#include <akv/detail/adapt.hpp>
#include <akv/request.hpp>
#include <akv/resp/value.hpp>
#include <akv/response.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace akv {

namespace asio = boost::asio;

namespace detail {
// Type-erasing a handler allocates with its associated allocator. A handler without one (an
// awaitable's, a lambda) gets Asio's per-thread recycling allocator, so a steady state of
// exec() calls reuses the same few blocks instead of calling malloc each time.
// The executor to complete `h` on. A caller on another executor (a callback, not a
// co_spawned coroutine, which keeps its own) must not see its io_context run out of work while
// the request is out, so that executor counts as working from the start.
template <class Handler>
asio::any_io_executor completion_executor(const Handler& h, const asio::any_io_executor& ours) {
    asio::any_io_executor ex = asio::get_associated_executor(h, ours);
    if (ex != ours) ex = asio::prefer(ex, asio::execution::outstanding_work.tracked);
    return ex;
}

template <class Handler> auto recycled(Handler&& h) {
    using allocator = asio::associated_allocator_t<std::decay_t<Handler>>;
    if constexpr (std::is_same_v<allocator, std::allocator<void>>)
        return asio::bind_allocator(asio::recycling_allocator<void>(), std::forward<Handler>(h));
    else
        return std::forward<Handler>(h);
}
} // namespace detail

struct connection_event {
    enum class kind { connected, disconnected, reconnecting, stopped };
    kind what;
    boost::system::error_code reason; // disconnected / stopped: why
    std::string detail;               // e.g. the server's text for a refused HELLO
};

struct connection_stats {
    std::uint64_t connects = 0;
    std::uint64_t disconnects = 0;
    std::uint64_t requests_written = 0;
    std::uint64_t replies = 0;
    std::uint64_t pushes = 0;
    std::uint64_t pushes_dropped = 0;
    std::uint64_t health_pings = 0;
    std::uint64_t bytes_written = 0;
    std::uint64_t bytes_read = 0;

    // Sums, for a client's figures over all its connections.
    connection_stats& operator+=(const connection_stats& o) noexcept {
        connects += o.connects;
        disconnects += o.disconnects;
        requests_written += o.requests_written;
        replies += o.replies;
        pushes += o.pushes;
        pushes_dropped += o.pushes_dropped;
        health_pings += o.health_pings;
        bytes_written += o.bytes_written;
        bytes_read += o.bytes_read;
        return *this;
    }
};

class connection {
public:
    using executor_type = asio::any_io_executor;
    using exec_signature = void(boost::system::error_code, std::size_t);
    using push_signature = void(boost::system::error_code, resp::value);

    explicit connection(executor_type ex, config cfg = {});
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    executor_type get_executor() const noexcept;
    const config& get_config() const noexcept;

    // Connects and keeps the connection up until cancel() (or the awaiting coroutine is
    // cancelled). With reconnection off (reconnect_wait_max == 0) it throws the first error.
    asio::awaitable<void> run();

    // Sends `req` and adapts its replies into `resp` (akv::response<...>, generic_response or
    // akv::ignore). `req` and `resp` must live until it completes. Completes with the bytes of the
    // replies; fails with akv::error codes (timeout, connection_lost, not_connected,
    // connection_closed, incompatible_size) or asio::error::operation_aborted when cancelled.
    // Server error replies are values in resp.
    template <class Response, class Token = asio::use_awaitable_t<>>
    auto exec(const request& req, Response& resp, Token&& token = {}) {
        return asio::async_initiate<Token, exec_signature>(
            [this](auto handler, const request* r, detail::reply_adapter adapter) {
                executor_type handler_ex = detail::completion_executor(handler, get_executor());
                start_exec(detail::recycled(std::move(handler)), std::move(handler_ex), r, adapter);
            },
            token, &req, detail::make_adapter(resp));
    }

    // The next RESP3 push (pub/sub message, invalidation, ...). Pushes wait in a queue of
    // config::push_queue_capacity; when it is full the oldest is dropped and counted.
    template <class Token = asio::use_awaitable_t<>> auto receive_push(Token&& token = {}) {
        return asio::async_initiate<Token, push_signature>(
            [this](auto handler) {
                executor_type handler_ex = detail::completion_executor(handler, get_executor());
                start_receive_push(detail::recycled(std::move(handler)), std::move(handler_ex));
            },
            token);
    }

    // Pushes go to `handler`, called on the connection's executor as each arrives, instead of
    // the queue of receive_push(): for a router that must keep up with any burst (the
    // messaging subscriber). Keep it fast; it runs on the read path. nullptr restores the queue.
    void set_push_handler(std::function<void(resp::value&&)> handler);

    // Client-side caching's invalidation pushes (">2 invalidate [keys]", or null: every key) go
    // to `handler` instead of the push handler or the queue, on the read path, in order with the
    // replies. nullptr: they are pushes like any other.
    using invalidation_handler =
        std::function<void(std::span<const resp::node> nodes, std::string_view message)>;
    void set_invalidation_handler(invalidation_handler handler);

    // Stops run(), closes the socket and fails every queued request with connection_closed.
    void cancel();

    // Where to connect, asked before every attempt instead of config::hosts: Sentinel's
    // current master, a cluster node that is still alive. Fills `to`, or returns why not (the
    // attempt then fails and run() backs off as after any failed attempt). Set before run().
    using address_source =
        std::function<asio::awaitable<boost::system::error_code>(endpoint& to, std::string& why)>;
    void set_address_source(address_source source);

    // Checked on every connect after HELLO: ROLE must name this ("master", "slave"), or the
    // attempt fails with error::wrong_role. A demoted master is never used by mistake.
    void require_role(std::string role);

    // Commands sent on every connect right after HELLO, their replies checked for errors (a
    // cluster replica's READONLY). Set before run().
    void set_setup_commands(request setup);

    // Drops the socket now; run() connects again at once (asking the address source again).
    // Requests not yet written survive, as on any disconnect.
    void reconnect();

    // Where the current (or last) connection went.
    endpoint remote_endpoint() const;

    bool is_connected() const noexcept;
    connection_stats stats() const;
    // Why the last connection attempt or connection failed, in words.
    const std::string& last_error_message() const noexcept;
    // Connected, disconnected (with the reason), reconnecting, stopped. Called on the executor.
    void set_event_handler(std::function<void(const connection_event&)> handler);
    // For the library's own layers (a subscriber restores its subscriptions on `connected`),
    // beside the application's handler. Call on the connection's executor.
    std::size_t add_event_listener(std::function<void(const connection_event&)> listener);
    void remove_event_listener(std::size_t id);

    // exec() for a layer that has type-erased its handler already (akv::client and its
    // topologies). The handler's executor is taken before type erasure: asking an
    // any_completion_handler for it later converts between executor types, which allocates on
    // every request. `options`, when given, replaces req's own (the cluster topology sends a
    // caller's request with fail_if_not_connected, to route it again rather than wait).
    void start_exec(asio::any_completion_handler<exec_signature> handler, executor_type handler_ex,
                    const request* req, detail::reply_adapter adapter,
                    const request::options* options = nullptr);

    // receive_push() for a type-erased handler, likewise.
    void start_receive_push(asio::any_completion_handler<push_signature> handler,
                            executor_type handler_ex);

private:
    struct impl;

    std::unique_ptr<impl> impl_;
};

} // namespace akv
