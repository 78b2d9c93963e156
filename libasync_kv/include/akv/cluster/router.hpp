// The cluster side of akv::client: which node serves a command, one multiplexed connection
// per node, and what to do with MOVED, ASK, TRYAGAIN, CLUSTERDOWN and a node that went away.
//
// The slot map comes from CLUSTER SHARDS (CLUSTER SLOTS on older servers), asked through the
// client's main connection, which itself moves from seed to seed until one answers. A MOVED
// fixes its slot at once and asks for a full refresh; a lost node connection asks for one too.
#pragma once

#include <akv/cluster/slot_map.hpp>
#include <akv/connection.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace akv {

class client;

struct cluster_stats {
    std::uint64_t moved = 0;      // MOVED replies followed
    std::uint64_t asked = 0;      // ASK replies followed
    std::uint64_t waits = 0;      // TRYAGAIN, CLUSTERDOWN or a node down: waited and re-routed
    std::uint64_t refreshes = 0;  // slot maps read
    std::uint64_t refusals = 0;   // commands refused unsent (CROSSSLOT)
};

class cluster_router {
public:
    using executor_type = connection::executor_type;
    using handler_type = asio::any_completion_handler<connection::exec_signature>;

    cluster_router(client& owner, connection& main, const config& cfg);
    ~cluster_router();

    // The refresh loop and every node connection, until cancel().
    asio::awaitable<void> run();
    void cancel();

    void start_exec(handler_type handler, executor_type handler_ex, const request* req,
                    detail::reply_adapter adapter);

    // The master serving `slot`, once the map is known (SSUBSCRIBE goes there).
    std::optional<endpoint> master_of(std::uint16_t slot) const;
    // The connection to that master (created if needed); nullptr before the map is known.
    connection* connection_for_slot(std::uint16_t slot);
    // Counts refreshes of the map: a subscriber compares it to know its shard may have moved.
    std::uint64_t map_generation() const noexcept { return generation_; }
    std::vector<endpoint> masters() const;
    const cluster_stats& stats() const noexcept { return stats_; }
    void request_refresh();
    // Why the slot map could not be had, in words (empty once it has been).
    const std::string& last_refresh_error() const noexcept { return last_refresh_error_; }

    // Connection by "host:port", made (and run) on first use.
    connection& node(const endpoint& ep, bool replica = false);

private:
    // connection::exec with the options a cluster request is sent with (its own are replaced).
    template <class Token>
    static auto exec_with(connection& c, const request& r, detail::reply_adapter a,
                          const request::options* o, Token&& token) {
        return asio::async_initiate<Token, connection::exec_signature>(
            [&c](auto h, const request* r, detail::reply_adapter a, const request::options* o) {
                auto hex = detail::completion_executor(h, c.get_executor());
                c.start_exec(detail::recycled(std::move(h)), std::move(hex), r, a, o);
            },
            token, &r, a, o);
    }

    struct node_state;
    struct exec_state;
    struct group;
    struct fast_op;

    bool try_fast(handler_type& handler, executor_type& handler_ex, const request* req,
                  detail::reply_adapter adapter);
    void fast_done(fast_op& op, boost::system::error_code ec, std::size_t bytes);
    exec_state& acquire_state();
    void release_state(exec_state& st);
    // `done`: replies (by index) delivered already; `bytes`: their size.
    asio::awaitable<void> exec(handler_type h, executor_type handler_ex, const request* req,
                               detail::reply_adapter adapter, std::uint64_t done,
                               std::size_t bytes);
    asio::awaitable<boost::system::error_code> exec_inner(exec_state& st);
    asio::awaitable<void> run_group(exec_state& st, group& g);
    bool start_direct(exec_state& st, group& g);
    asio::awaitable<void> refresh_loop();
    asio::awaitable<boost::system::error_code> refresh_once();
    asio::awaitable<boost::system::error_code> address_for_main(endpoint& to, std::string& why);
    // Waits until the map changes, a node connects, or `until` (whichever is first).
    asio::awaitable<void> wait_change(std::chrono::steady_clock::time_point until);
    void wake_waiters();
    void apply_map(cluster::slot_map map);
    bool ready() const noexcept { return !map_.empty(); }

    client& owner_;
    connection& main_;
    config cfg_;
    executor_type ex_;
    cluster::slot_map map_;
    std::map<std::string, std::unique_ptr<node_state>> nodes_;
    std::vector<std::unique_ptr<node_state>> retired_; // cancelled, run() not over yet
    std::vector<node_state*> slot_node_;              // slot -> its master's node, or null
    std::vector<std::unique_ptr<fast_op>> all_fast_;
    std::vector<std::unique_ptr<exec_state>> all_states_;
    std::vector<exec_state*> free_states_;
    std::vector<fast_op*> free_fast_;
    std::vector<std::string_view> keys_; // scratch of try_fast
    std::size_t running_nodes_ = 0;
    std::string last_refresh_error_;
    boost::system::error_code last_refresh_ec_;
    std::vector<asio::steady_timer*> waiters_;
    asio::steady_timer refresh_timer_;
    std::uint64_t generation_ = 0;
    cluster_stats stats_;
    std::size_t main_rotation_ = 0;
    bool refresh_wanted_ = false;
    bool stopped_ = false;
};

} // namespace akv
