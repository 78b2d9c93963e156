#include <akv/client.hpp>
#include <akv/detail/complete_on.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

namespace akv {

using boost::system::error_code;

namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

config blocking_config_from(config cfg) {
    // A blocking command is silent for as long as it blocks: no health-check PING would be
    // answered, so the check would judge a healthy connection dead.
    cfg.health_check_interval = std::chrono::milliseconds(0);
    return cfg;
}
} // namespace

client::client(executor_type ex, config cfg)
    : main_(ex, cfg)
    , blocking_config_(blocking_config_from(cfg)) {}

client::~client() = default;

asio::awaitable<void> client::run() {
    stopped_ = false;
    co_await main_.run();
}

void client::cancel() {
    asio::dispatch(main_.get_executor(), [this] {
        stopped_ = true;
        main_.cancel();
        for (auto& p : pool_)
            p->conn.cancel();
        wake_pool_waiters();
    });
}

void client::start_exec(asio::any_completion_handler<connection::exec_signature> handler,
                        executor_type handler_ex, const request* req,
                        detail::reply_adapter adapter) {
    if (!req->has_blocking_command()) {
        main_.start_exec(std::move(handler), std::move(handler_ex), req, adapter);
        return;
    }
    asio::co_spawn(main_.get_executor(),
                   exec_blocking(std::move(handler), std::move(handler_ex), req, adapter),
                   asio::detached);
}

asio::awaitable<client::pooled*> client::acquire() {
    const auto deadline = std::chrono::steady_clock::now() + get_config().pool_wait_timeout;
    for (;;) {
        if (stopped_) co_return nullptr;
        for (auto& p : pool_) {
            if (!p->busy && !p->retired) {
                p->busy = true;
                co_return p.get();
            }
        }
        if (pool_.size() < std::max<std::size_t>(get_config().pool_size, 1)) {
            pool_.push_back(std::make_unique<pooled>(get_executor(), blocking_config_));
            pooled* p = pool_.back().get();
            p->busy = true;
            asio::co_spawn(get_executor(), p->conn.run(), [this, p](std::exception_ptr) {
                // run() is over: the connection can go.
                pool_.remove_if([p](const auto& q) { return q.get() == p; });
                wake_pool_waiters();
            });
            co_return p;
        }
        if (std::chrono::steady_clock::now() >= deadline) co_return nullptr;
        // A timer of its own: re-arming a shared one would cancel the other waiters, which
        // would re-arm it in turn, and the waiters would spin.
        asio::steady_timer wait(get_executor(), deadline);
        pool_waiters_.push_back(&wait);
        co_await wait.async_wait(nothrow);
        std::erase(pool_waiters_, &wait);
    }
}

void client::wake_pool_waiters() {
    for (asio::steady_timer* t : pool_waiters_)
        t->cancel();
}

void client::release(pooled& p, bool healthy) {
    p.busy = false;
    if (!healthy) {
        // It may still be blocked server-side on a command we gave up on: never reuse it.
        p.retired = true;
        p.conn.cancel();
    }
    wake_pool_waiters();
}

asio::awaitable<void>
client::exec_blocking(asio::any_completion_handler<connection::exec_signature> h,
                      executor_type handler_ex, const request* req, detail::reply_adapter adapter) {
    pooled* p = co_await acquire();
    if (!p) {
        const error_code ec =
            stopped_ ? error_code(error::connection_closed) : error_code(error::pool_exhausted);
        detail::complete_on(handler_ex, std::move(h), ec, std::size_t{0});
        co_return;
    }
    // The caller's cancellation reaches the pooled connection's exec.
    auto slot = asio::get_associated_cancellation_slot(h);
    asio::cancellation_signal forward;
    if (slot.is_connected())
        slot.assign([&forward](asio::cancellation_type t) { forward.emit(t); });
    auto [ec, n] =
        co_await p->conn.exec(*req, adapter, asio::bind_cancellation_slot(forward.slot(), nothrow));
    if (slot.is_connected()) slot.clear();
    release(*p, !ec);
    detail::complete_on(handler_ex, std::move(h), ec, n);
}

} // namespace akv
