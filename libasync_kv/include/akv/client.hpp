// akv::client: what every higher layer talks to.
//
// One multiplexed connection for ordinary commands, plus a small pool of dedicated connections
// for blocking commands (BLPOP, XREADGROUP ... BLOCK, ...), which would otherwise stall every
// request queued behind them. config::topology picks what stands behind it:
//   standalone  the one server of config::hosts (or unix_socket);
//   sentinel    the master named config::master_name, found through the sentinels of
//               config::hosts and followed across failovers;
//   cluster     every master of a Redis Cluster seeded by config::hosts: each command goes to
//               the node serving its keys' slot, MOVED/ASK are followed, a pipeline is split
//               per node and its replies come back in order.
// Callers do not change between the three.
#pragma once

#include <akv/connection.hpp>

#include <list>
#include <optional>
#include <tuple>
#include <memory>

namespace akv {

class cluster_router;
class sentinel_monitor;

class client {
public:
    using executor_type = connection::executor_type;

    explicit client(executor_type ex, config cfg = {});
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    executor_type get_executor() const noexcept { return main_.get_executor(); }
    const config& get_config() const noexcept { return main_.get_config(); }

    // Keeps the connections up until cancel().
    asio::awaitable<void> run();

    // As connection::exec. A request holding a blocking command runs on a pooled connection
    // of its own (config::pool_size of them at most, waiting config::pool_wait_timeout for one).
    template <class Response, class Token = asio::use_awaitable_t<>>
    auto exec(const request& req, Response& resp, Token&& token = {}) {
        return asio::async_initiate<Token, connection::exec_signature>(
            [this](auto handler, const request* r, detail::reply_adapter adapter) {
                executor_type handler_ex = detail::completion_executor(handler, get_executor());
                start_exec(detail::recycled(std::move(handler)), std::move(handler_ex), r, adapter);
            },
            token, &req, detail::make_adapter(resp));
    }

    template <class Token = asio::use_awaitable_t<>> auto receive_push(Token&& token = {}) {
        return main_.receive_push(std::forward<Token>(token));
    }

    void cancel();

    // Standalone and sentinel: the server's connection. Cluster: a connection to one of the
    // masters (moving to another if it fails), for keyless commands and classic pub/sub.
    connection& main_connection() noexcept { return main_; }
    std::size_t blocking_connections() const noexcept { return pool_.size(); }

    // Cluster only (nullptr otherwise): routing, the slot map, node connections.
    cluster_router* cluster() noexcept { return cluster_.get(); }
    // The connection that serves `key`'s slot: cluster, its master's; otherwise the main one.
    // Null while a cluster's slot map is not known yet. SSUBSCRIBE goes there.
    connection* connection_for_key(std::string_view key);

    // For the topology layers: runs `req` on a blocking-command connection of its own, to
    // `target` (nullptr: where the main connection goes).
    asio::awaitable<std::tuple<boost::system::error_code, std::size_t>>
    exec_pooled(const endpoint* target, const request& req, detail::reply_adapter adapter,
                asio::cancellation_slot cancel);

private:
    struct pooled {
        explicit pooled(executor_type ex, config cfg)
            : conn(std::move(ex), std::move(cfg)) {}
        connection conn;
        std::optional<endpoint> target;
        bool busy = false;
        bool retired = false;
        bool run_over = false; // its run() ended while a command was out: freed at release
    };

    void start_exec(asio::any_completion_handler<connection::exec_signature> handler,
                    executor_type handler_ex, const request* req, detail::reply_adapter adapter);
    asio::awaitable<void> exec_blocking(asio::any_completion_handler<connection::exec_signature> h,
                                        executor_type handler_ex, const request* req,
                                        detail::reply_adapter adapter);
    asio::awaitable<pooled*> acquire(const endpoint* target);
    void release(pooled& p, bool healthy);
    asio::awaitable<boost::system::error_code> cluster_address(endpoint& to, std::string& why);
    void wake_pool_waiters();

    connection main_;
    std::unique_ptr<cluster_router> cluster_;
    std::unique_ptr<sentinel_monitor> sentinel_; // sentinel topology only
    config blocking_config_;
    std::list<std::unique_ptr<pooled>> pool_;
    std::vector<asio::steady_timer*> pool_waiters_; // coroutines waiting for a free connection
    std::size_t pool_rotation_ = 0;
    bool stopped_ = false;
};

} // namespace akv
