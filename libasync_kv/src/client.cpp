#include <akv/client.hpp>
#include <akv/cluster_slot.hpp>
#include <akv/detail/complete_on.hpp>

#include <akv/cluster/router.hpp>
#include "sentinel/monitor.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
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

// Behind Sentinel a connect attempt first asks the sentinels, one after another, each within
// its own timeouts: connect_timeout alone would end the attempt at a sentinel that does not
// answer, before the next one is asked.
config connect_config_from(config cfg) {
    if (cfg.topology == config::mode::sentinel && cfg.connect_timeout.count() > 0)
        cfg.connect_timeout += static_cast<int>(cfg.hosts.size()) *
                               (cfg.sentinel_connect_timeout + cfg.sentinel_socket_timeout);
    return cfg;
}
} // namespace

client::client(executor_type ex, config cfg)
    : main_(ex, connect_config_from(cfg))
    , blocking_config_(blocking_config_from(connect_config_from(cfg))) {
    if (cfg.topology == config::mode::cluster)
        cluster_ = std::make_unique<cluster_router>(*this, main_, cfg);
    if (cfg.topology == config::mode::sentinel) {
        sentinel_ = std::make_unique<sentinel_monitor>(ex, cfg);
        main_.set_address_source(
            [this](endpoint& to, std::string& why) { return sentinel_->resolve(to, why); });
        // A replica client takes the master when no replica is healthy, so it asks for no role.
        if (!cfg.read_from_replicas) main_.require_role("master");
    }
}

client::~client() = default;

asio::awaitable<void> client::run() {
    using namespace asio::experimental::awaitable_operators;
    stopped_ = false;
    if (cluster_)
        co_await (main_.run() && cluster_->run());
    else if (sentinel_) {
        std::function<void(const endpoint&)> on_switch = [this](const endpoint&) {
            // Every connection asks the sentinels again.
            main_.reconnect();
            for (auto& p : pool_)
                if (!p->target) p->conn.reconnect();
        };
        std::function<std::optional<endpoint>()> in_use = [this]() -> std::optional<endpoint> {
            if (!main_.is_connected()) return std::nullopt;
            return main_.remote_endpoint();
        };
        co_await (main_.run() && sentinel_->watch(std::move(on_switch), std::move(in_use)));
    } else
        co_await main_.run();
}

connection* client::connection_for_key(std::string_view key) {
    if (cluster_) return cluster_->connection_for_slot(cluster_slot(key));
    return &main_;
}

void client::cancel() {
    asio::dispatch(main_.get_executor(), [this] {
        stopped_ = true;
        main_.cancel();
        if (cluster_) cluster_->cancel();
        if (sentinel_) sentinel_->cancel();
        for (auto& p : pool_)
            p->conn.cancel();
        wake_pool_waiters();
    });
}

void client::start_exec(asio::any_completion_handler<connection::exec_signature> handler,
                        executor_type handler_ex, const request* req,
                        detail::reply_adapter adapter) {
    if (cluster_) {
        cluster_->start_exec(std::move(handler), std::move(handler_ex), req, adapter);
        return;
    }
    if (!req->has_blocking_command()) {
        main_.start_exec(std::move(handler), std::move(handler_ex), req, adapter);
        return;
    }
    asio::co_spawn(main_.get_executor(),
                   exec_blocking(std::move(handler), std::move(handler_ex), req, adapter),
                   asio::detached);
}

asio::awaitable<client::pooled*> client::acquire(const endpoint* target) {
    const auto deadline = std::chrono::steady_clock::now() + get_config().pool_wait_timeout;
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
        if (open < std::max<std::size_t>(get_config().pool_size, 1)) {
            config c = blocking_config_;
            if (target) {
                c.topology = config::mode::standalone;
                c.hosts = {*target};
                c.unix_socket.clear();
            }
            pool_.push_back(std::make_unique<pooled>(get_executor(), std::move(c)));
            pooled* p = pool_.back().get();
            if (target) p->target = *target;
            if (!target && cluster_) {
                // Where the main connection goes: a master of the cluster.
                p->conn.set_address_source([this](endpoint& to, std::string& why) {
                    return cluster_address(to, why);
                });
            }
            if (!target && sentinel_) {
                // The main connection's server: the master, or a replica in replica mode.
                p->conn.set_address_source(
                    [this](endpoint& to, std::string& why) { return sentinel_->resolve(to, why); });
                if (!get_config().read_from_replicas) p->conn.require_role("master");
            }
            p->busy = true;
            asio::co_spawn(get_executor(), p->conn.run(), [this, p](std::exception_ptr) {
                // run() is over: the connection can go, once the command it carries (its
                // failure may complete after this) has been released.
                p->run_over = true;
                if (!p->busy) pool_.remove_if([p](const auto& q) { return q.get() == p; });
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
    if (p.run_over) { // cancelled while this command was out (client::cancel): now it can go
        pooled* gone = &p;
        pool_.remove_if([gone](const auto& q) { return q.get() == gone; });
    } else if (!healthy) {
        // It may still be blocked server-side on a command we gave up on: never reuse it.
        p.retired = true;
        p.conn.cancel();
    }
    wake_pool_waiters();
}

asio::awaitable<std::tuple<error_code, std::size_t>>
client::exec_pooled(const endpoint* target, const request& req, detail::reply_adapter adapter,
                    asio::cancellation_slot cancel) {
    pooled* p = co_await acquire(target);
    if (!p) {
        const error_code ec =
            stopped_ ? error_code(error::connection_closed) : error_code(error::pool_exhausted);
        co_return std::make_tuple(ec, std::size_t{0});
    }
    auto [ec, n] = co_await p->conn.exec(req, adapter, asio::bind_cancellation_slot(cancel, nothrow));
    release(*p, !ec);
    co_return std::make_tuple(ec, n);
}

asio::awaitable<error_code> client::cluster_address(endpoint& to, std::string& why) {
    const auto masters = cluster_->masters();
    if (masters.empty()) {
        why = "cluster: slot map not known yet";
        co_return error_code(error::cluster_down);
    }
    to = masters[pool_rotation_++ % masters.size()];
    co_return error_code{};
}

asio::awaitable<void>
client::exec_blocking(asio::any_completion_handler<connection::exec_signature> h,
                      executor_type handler_ex, const request* req, detail::reply_adapter adapter) {
    pooled* p = co_await acquire(nullptr);
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
