// The sentinel side of akv::client: which server to connect to, and when to move.
//
// resolve() asks the sentinels of config::hosts in order, each over a short-lived connection
// with the sentinel credentials and timeouts, for the master named config::master_name (or,
// with read_from_replicas, for one of its healthy replicas, taking turns). The first sentinel
// that answers moves to the front of the list, as Redis's guidelines for sentinel clients say.
//
// watch() keeps one connection to a sentinel subscribed to +switch-master and calls back when
// our master moves; it also asks that sentinel every second where the master is, which catches
// a switch whose message we missed (a master demoted while we were reconnecting to the watched
// sentinel). The sentinel that tells us about a switch moves to the front, so the next
// resolve() asks the one that knows.
#pragma once

#include <akv/config.hpp>
#include <akv/connection.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace akv {

class sentinel_monitor {
public:
    using executor_type = connection::executor_type;

    sentinel_monitor(executor_type ex, const config& cfg);
    ~sentinel_monitor();
    sentinel_monitor(const sentinel_monitor&) = delete;
    sentinel_monitor& operator=(const sentinel_monitor&) = delete;

    // An address source for akv::connection. Fails with error::master_not_found (no sentinel
    // could name the master; `why` says what each one answered) or error::auth_failed (every
    // sentinel refused the sentinel credentials).
    asio::awaitable<boost::system::error_code> resolve(endpoint& to, std::string& why);

    // Until cancel(). `on_switch` gets the new master whenever it moves; `in_use` says where
    // the client's main connection is (nullopt while it is down), compared with the sentinel's
    // view every second (master mode only).
    asio::awaitable<void> watch(std::function<void(const endpoint&)> on_switch,
                                std::function<std::optional<endpoint>()> in_use);

    void cancel();

    // The sentinels in the order they will be asked.
    const std::vector<endpoint>& sentinels() const noexcept { return sentinels_; }

private:
    asio::awaitable<boost::system::error_code> ask(const endpoint& sentinel, const request& req,
                                                   generic_response& resp, std::string& why);
    // One sentinel until its connection fails or cancel(); true if it got as far as subscribing.
    asio::awaitable<bool> watch_one(const endpoint& sentinel,
                                    const std::function<void(const endpoint&)>& on_switch,
                                    const std::function<std::optional<endpoint>()>& in_use);
    asio::awaitable<void> poll(connection& conn, const endpoint& sentinel,
                               const std::function<void(const endpoint&)>& on_switch,
                               const std::function<std::optional<endpoint>()>& in_use,
                               bool& subscribed);
    config config_for(const endpoint& sentinel) const;
    void move_to_front(const endpoint& sentinel);

    executor_type ex_;
    config cfg_;
    std::vector<endpoint> sentinels_;
    std::size_t replica_rotation_ = 0;
    connection* watched_ = nullptr; // the watch connection, for cancel()
    asio::steady_timer wait_timer_;
    bool stopped_ = false;
};

} // namespace akv
