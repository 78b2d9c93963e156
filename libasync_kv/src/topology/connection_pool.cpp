#include "connection_pool.hpp"

#include <akv/detail/complete_on.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace akv::detail {

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

config config_for_node(config cfg, const endpoint& node) {
    cfg.topology = config::mode::standalone;
    cfg.hosts = {node};
    cfg.unix_socket.clear();
    return cfg;
}

struct connection_pool::pooled {
    pooled(executor_type ex, config cfg)
        : conn(std::move(ex), std::move(cfg)) {}
    connection conn;
    std::optional<endpoint> target;
    bool busy = false;
    bool retired = false;
    bool run_over = false; // its run() ended while a command was out: freed at release
};

connection_pool::connection_pool(executor_type ex, const config& cfg)
    : ex_(std::move(ex))
    , cfg_(blocking_config_from(cfg)) {}

connection_pool::~connection_pool() = default;

void connection_pool::set_default_route(std::function<void(connection&)> setup) {
    default_route_ = std::move(setup);
}

asio::awaitable<connection_pool::pooled*> connection_pool::acquire(const endpoint* target) {
    const auto deadline = std::chrono::steady_clock::now() + cfg_.pool_wait_timeout;
    const auto same_target = [target](const pooled& p) {
        return target ? p.target == *target : !p.target;
    };
    for (;;) {
        if (stopped_) co_return nullptr;
        std::size_t open = 0;
        for (auto& p : pool_) {
            if (!same_target(*p)) continue;
            ++open;
            if (!p->busy && !p->retired && !p->run_over) {
                p->busy = true;
                co_return p.get();
            }
        }
        // pool_size connections per server (per cluster node).
        if (open < std::max<std::size_t>(cfg_.pool_size, 1)) {
            pool_.push_back(
                std::make_unique<pooled>(ex_, target ? config_for_node(cfg_, *target) : cfg_));
            pooled* p = pool_.back().get();
            if (target)
                p->target = *target;
            else if (default_route_)
                default_route_(p->conn);
            p->busy = true;
            asio::co_spawn(ex_, p->conn.run(), [this, p](std::exception_ptr) {
                // run() is over: the connection can go, once the command it carries (its
                // failure may complete after this) has been released.
                p->run_over = true;
                if (!p->busy) pool_.remove_if([p](const auto& q) { return q.get() == p; });
                wake_waiters();
            });
            co_return p;
        }
        if (std::chrono::steady_clock::now() >= deadline) co_return nullptr;
        // A timer of its own: re-arming a shared one would cancel the other waiters, which
        // would re-arm it in turn, and the waiters would spin.
        asio::steady_timer wait(ex_, deadline);
        waiters_.push_back(&wait);
        co_await wait.async_wait(nothrow);
        std::erase(waiters_, &wait);
    }
}

void connection_pool::wake_waiters() {
    for (asio::steady_timer* t : waiters_)
        t->cancel();
}

void connection_pool::release(pooled& p, bool healthy) {
    p.busy = false;
    if (p.run_over) { // cancelled while this command was out (cancel()): now it can go
        pooled* gone = &p;
        pool_.remove_if([gone](const auto& q) { return q.get() == gone; });
    } else if (!healthy) {
        // It may still be blocked server-side on a command we gave up on: never reuse it.
        p.retired = true;
        p.conn.cancel();
    }
    wake_waiters();
}

asio::awaitable<std::tuple<error_code, std::size_t>>
connection_pool::exec(const endpoint* target, const request& req, reply_adapter adapter,
                      asio::cancellation_slot cancel) {
    pooled* p = co_await acquire(target);
    if (!p) {
        const error_code ec =
            stopped_ ? error_code(error::connection_closed) : error_code(error::pool_exhausted);
        co_return std::make_tuple(ec, std::size_t{0});
    }
    auto [ec, n] =
        co_await p->conn.exec(req, adapter, asio::bind_cancellation_slot(cancel, nothrow));
    release(*p, !ec);
    co_return std::make_tuple(ec, n);
}

void connection_pool::start_exec(asio::any_completion_handler<connection::exec_signature> handler,
                                 executor_type handler_ex, const request* req,
                                 reply_adapter adapter) {
    asio::co_spawn(ex_, exec_handler(std::move(handler), std::move(handler_ex), req, adapter),
                   asio::detached);
}

asio::awaitable<void>
connection_pool::exec_handler(asio::any_completion_handler<connection::exec_signature> h,
                              executor_type handler_ex, const request* req, reply_adapter adapter) {
    // The caller's cancellation reaches the pooled connection's exec.
    auto slot = asio::get_associated_cancellation_slot(h);
    asio::cancellation_signal forward;
    if (slot.is_connected())
        slot.assign([&forward](asio::cancellation_type t) { forward.emit(t); });
    auto [ec, n] = co_await exec(nullptr, *req, adapter, forward.slot());
    if (slot.is_connected()) slot.clear();
    complete_on(handler_ex, std::move(h), ec, n);
}

void connection_pool::reconnect_default() {
    for (auto& p : pool_)
        if (!p->target) p->conn.reconnect();
}

void connection_pool::cancel() {
    stopped_ = true;
    for (auto& p : pool_)
        p->conn.cancel();
    wake_waiters();
}

void connection_pool::add_stats(connection_stats& into) const {
    for (const auto& p : pool_)
        into += p->conn.stats();
}

} // namespace akv::detail
