#include "monitor.hpp"
#include "replies.hpp"

#include <akv/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <stdexcept>

namespace akv {

using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// How often the watched sentinel is asked where the master is, besides its +switch-master.
constexpr std::chrono::milliseconds recheck_interval{1000};
// Pauses of the watch between sentinels, and once every sentinel has failed in a row.
constexpr std::chrono::milliseconds next_sentinel_pause{100};
constexpr std::chrono::milliseconds all_failed_pause{1000};

// run() of a connection that does not reconnect: its first error.
asio::awaitable<error_code> run_once(connection& conn) {
    try {
        co_await conn.run();
    } catch (const boost::system::system_error& e) {
        co_return e.code();
    }
    co_return error_code(error::connection_closed);
}

// Called as is_cancelled(co_await asio::this_coro::cancellation_state): co_await of anything
// else throws once the coroutine is cancelled, and an address source must not throw.
bool is_cancelled(const asio::cancellation_state& state) {
    return state.cancelled() != asio::cancellation_type::none;
}

std::string list_of(const std::vector<endpoint>& sentinels) {
    std::string out;
    for (const endpoint& s : sentinels)
        out += (out.empty() ? "" : ", ") + to_string(s);
    return out;
}

} // namespace

sentinel_monitor::sentinel_monitor(executor_type ex, const config& cfg)
    : ex_(ex)
    , cfg_(cfg)
    , sentinels_(cfg.hosts)
    , wait_timer_(ex) {}

sentinel_monitor::~sentinel_monitor() = default;

config sentinel_monitor::config_for(const endpoint& sentinel) const {
    config c;
    c.topology = config::mode::standalone;
    c.hosts = {sentinel};
    c.use_tls = cfg_.use_tls;
    c.tls = cfg_.tls;
    c.username = cfg_.sentinel_username;
    c.password = cfg_.sentinel_password;
    c.client_name = cfg_.client_name;
    c.connect_timeout = cfg_.sentinel_connect_timeout;
    c.request_timeout = cfg_.sentinel_socket_timeout;
    c.keep_alive = cfg_.keep_alive;
    c.resp_limits = cfg_.resp_limits;
    // One attempt: the caller moves on to the next sentinel instead of waiting for this one.
    c.reconnect_wait_min = c.reconnect_wait_max = std::chrono::milliseconds(0);
    // Each exchange has its request timeout; the watch asks every recheck_interval.
    c.health_check_interval = std::chrono::milliseconds(0);
    return c;
}

void sentinel_monitor::move_to_front(const endpoint& sentinel) {
    const auto it = std::find(sentinels_.begin(), sentinels_.end(), sentinel);
    if (it != sentinels_.end()) std::rotate(sentinels_.begin(), it, it + 1);
}

asio::awaitable<error_code> sentinel_monitor::ask(const endpoint& sentinel, const request& req,
                                                  generic_response& resp, std::string& why) {
    connection conn(ex_, config_for(sentinel));
    auto outcome = co_await (run_once(conn) || conn.exec(req, resp, nothrow));
    const error_code ec =
        outcome.index() == 0 ? std::get<0>(outcome) : std::get<0>(std::get<1>(outcome));
    if (!ec) co_return ec;
    if (ec == error::timeout)
        why = "no reply within sentinel_socket_timeout (" +
              std::to_string(cfg_.sentinel_socket_timeout.count()) + " ms)";
    else if (!conn.last_error_message().empty())
        why = conn.last_error_message();
    else
        why = ec.message();
    co_return ec;
}

asio::awaitable<error_code> sentinel_monitor::resolve(endpoint& to, std::string& why) {
    const std::vector<endpoint> order = sentinels_; // another resolve() may reorder meanwhile
    if (order.empty()) {
        why = "sentinel: config::hosts names no sentinel";
        co_return error_code(error::invalid_config);
    }
    request req;
    req.push("SENTINEL", "GET-MASTER-ADDR-BY-NAME", cfg_.master_name);
    if (cfg_.read_from_replicas) req.push("SENTINEL", "REPLICAS", cfg_.master_name);

    std::string failures;
    std::size_t unknown = 0;
    std::size_t auth_refused = 0;
    for (const endpoint& s : order) {
        const std::string name = to_string(s);
        const auto note = [&failures](const std::string& text) {
            failures += (failures.empty() ? "" : "; ") + text;
        };
        generic_response resp;
        std::string failure;
        if (is_cancelled(co_await asio::this_coro::cancellation_state))
            co_return error_code(asio::error::operation_aborted);
        const error_code ec = co_await ask(s, req, resp, failure);
        if (is_cancelled(co_await asio::this_coro::cancellation_state))
            co_return error_code(asio::error::operation_aborted);
        if (ec == error::auth_failed) {
            ++auth_refused;
            note("authentication refused by sentinel " + name + " (" + failure + ")");
            continue;
        }
        if (ec) {
            note("sentinel " + name + ": " + failure);
            continue;
        }
        if (resp.at(0).has_error()) {
            note("sentinel " + name +
                 ": GET-MASTER-ADDR-BY-NAME refused: " + resp[0].error().message);
            continue;
        }
        std::optional<endpoint> master;
        std::vector<endpoint> replicas;
        try {
            master = sentinel::master_address(resp[0].value());
            if (master && cfg_.read_from_replicas && resp.at(1).has_value())
                replicas = sentinel::usable_replicas(resp[1].value());
        } catch (const std::invalid_argument& e) {
            note("sentinel " + name + ": " + e.what());
            continue;
        }
        if (!master) {
            ++unknown;
            note("sentinel " + name + " does not know master \"" + cfg_.master_name + "\"");
            continue;
        }
        move_to_front(s);
        // Replica mode without a healthy replica: the master serves the reads too.
        to = replicas.empty() ? *master : replicas[replica_rotation_++ % replicas.size()];
        co_return error_code{};
    }
    if (unknown == order.size()) {
        why = "sentinel: no sentinel knows master \"" + cfg_.master_name + "\" (asked " +
              list_of(order) + ")";
    } else {
        why = "sentinel: cannot find master \"" + cfg_.master_name + "\": " + failures;
    }
    // Wrong sentinel credentials will not fix themselves: the connection then waits its longest
    // before the next attempt and fails the requests that wait for it.
    co_return error_code(auth_refused == order.size() ? error::auth_failed
                                                      : error::master_not_found);
}

asio::awaitable<void> sentinel_monitor::watch(std::function<void(const endpoint&)> on_switch,
                                              std::function<std::optional<endpoint>()> in_use) {
    // Cancelled, it returns rather than throws: it runs beside the main connection's run().
    co_await asio::this_coro::throw_if_cancelled(false);
    stopped_ = false;
    std::size_t failed_in_a_row = 0;
    std::optional<endpoint> failed;
    while (!stopped_ && !sentinels_.empty()) {
        // The front sentinel (the one that last answered), or the one after the one that failed.
        endpoint s = sentinels_.front();
        if (failed) {
            const auto it = std::find(sentinels_.begin(), sentinels_.end(), *failed);
            if (it != sentinels_.end() && it + 1 != sentinels_.end()) s = *(it + 1);
        }
        const bool was_watching = co_await watch_one(s, on_switch, in_use);
        if (stopped_ || is_cancelled(co_await asio::this_coro::cancellation_state)) break;
        failed = s;
        failed_in_a_row = was_watching ? 1 : failed_in_a_row + 1;
        wait_timer_.expires_after(failed_in_a_row % sentinels_.size() == 0 ? all_failed_pause
                                                                           : next_sentinel_pause);
        co_await wait_timer_.async_wait(nothrow);
        if (is_cancelled(co_await asio::this_coro::cancellation_state)) break;
    }
}

asio::awaitable<bool>
sentinel_monitor::watch_one(const endpoint& sentinel,
                            const std::function<void(const endpoint&)>& on_switch,
                            const std::function<std::optional<endpoint>()>& in_use) {
    connection conn(ex_, config_for(sentinel));
    conn.set_push_handler([this, &on_switch, sentinel](resp::value&& push) {
        if (auto master = sentinel::switched_master(push, cfg_.master_name)) {
            move_to_front(sentinel);
            on_switch(*master);
        }
    });
    bool subscribed = false;
    watched_ = &conn;
    co_await (run_once(conn) || poll(conn, sentinel, on_switch, in_use, subscribed));
    watched_ = nullptr;
    co_return subscribed;
}

asio::awaitable<void> sentinel_monitor::poll(connection& conn, const endpoint& sentinel,
                                             const std::function<void(const endpoint&)>& on_switch,
                                             const std::function<std::optional<endpoint>()>& in_use,
                                             bool& subscribed) {
    request subscribe;
    subscribe.push("SUBSCRIBE", "+switch-master");
    if (auto [ec, n] = co_await conn.exec(subscribe, ignore, nothrow); ec) co_return;
    subscribed = true;
    request where;
    where.push("SENTINEL", "GET-MASTER-ADDR-BY-NAME", cfg_.master_name);
    generic_response resp;
    asio::steady_timer timer(ex_);
    for (;;) {
        resp.clear();
        auto [ec, n] = co_await conn.exec(where, resp, nothrow);
        if (ec) co_return; // the connection failed: the watch moves to the next sentinel
        std::optional<endpoint> master;
        try {
            if (resp.at(0).has_value()) master = sentinel::master_address(resp[0].value());
        } catch (const std::invalid_argument&) {
        }
        // A replica client may sit on any replica; only a master client must be on the master.
        if (master && !cfg_.read_from_replicas) {
            const std::optional<endpoint> used = in_use();
            if (used && *used != *master) {
                move_to_front(sentinel);
                on_switch(*master);
            }
        }
        timer.expires_after(recheck_interval);
        co_await timer.async_wait(nothrow);
        if (stopped_ || is_cancelled(co_await asio::this_coro::cancellation_state)) co_return;
    }
}

void sentinel_monitor::cancel() {
    stopped_ = true;
    if (watched_) watched_->cancel();
    wait_timer_.cancel();
}

} // namespace akv
