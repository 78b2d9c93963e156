// akv::client: what every higher layer talks to.
//
// Standalone today: one multiplexed connection for ordinary commands, plus a small pool of
// dedicated connections for blocking commands (BLPOP, XREADGROUP ... BLOCK, ...), which would
// otherwise stall every request queued behind them. Sentinel and cluster plug in here without
// changing callers.
#pragma once

#include <akv/connection.hpp>

#include <list>
#include <memory>

namespace akv {

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

    connection& main_connection() noexcept { return main_; }
    std::size_t blocking_connections() const noexcept { return pool_.size(); }

private:
    struct pooled {
        explicit pooled(executor_type ex, config cfg)
            : conn(std::move(ex), std::move(cfg)) {}
        connection conn;
        bool busy = false;
        bool retired = false;
    };

    void start_exec(asio::any_completion_handler<connection::exec_signature> handler,
                    executor_type handler_ex, const request* req, detail::reply_adapter adapter);
    asio::awaitable<void> exec_blocking(asio::any_completion_handler<connection::exec_signature> h,
                                        executor_type handler_ex, const request* req,
                                        detail::reply_adapter adapter);
    asio::awaitable<pooled*> acquire();
    void release(pooled& p, bool healthy);
    void wake_pool_waiters();

    connection main_;
    config blocking_config_;
    std::list<std::unique_ptr<pooled>> pool_;
    std::vector<asio::steady_timer*> pool_waiters_; // coroutines waiting for a free connection
    bool stopped_ = false;
};

} // namespace akv
