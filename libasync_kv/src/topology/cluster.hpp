// A Redis Cluster: one multiplexed connection per node, the slot map, and the I/O around
// cluster::plan (cluster/plan.hpp), which decides where each command goes.
//
// The slot map comes from CLUSTER SHARDS (CLUSTER SLOTS on older servers), asked through the
// main connection, which moves from seed to seed until one answers and then serves keyless
// commands and classic pub/sub. A MOVED fixes its slot at once and asks for a full refresh; a
// lost node connection asks for one too. Blocking commands go to the pool's connection to their
// node.
#pragma once

#include "../cluster/plan.hpp"
#include "topology.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace akv::detail {

class cluster_topology final : public topology {
public:
    cluster_topology(executor_type ex, const config& cfg, connection_pool& pool, event_sink events);
    ~cluster_topology() override;

    // The refresh loop and every node connection, until cancel().
    asio::awaitable<void> run() override;
    void cancel() override;
    void start_exec(handler_type handler, executor_type handler_ex, const request* req,
                    reply_adapter adapter) override;

    connection& main() noexcept override { return main_; }
    connection* link(link_id id) noexcept override;
    std::optional<link_id> link_for_channel(std::string_view channel) override;
    void set_push_sink(push_sink sink) override;
    void enable_tracking(request setup, invalidation_sink sink) override;
    void refresh() override { request_refresh(); }

    std::vector<endpoint> masters() const override { return map_.masters(); }
    std::optional<endpoint> master_of(std::uint16_t slot) const override;
    void add_stats(client_stats& into) const override;
    std::string last_error_message() const override;

private:
    struct node_state;
    struct exec_state;
    struct fast_op;

    // Connection by "host:port", made (and run) on first use.
    node_state& node(const endpoint& ep, bool replica = false);
    bool try_fast(handler_type& handler, executor_type& handler_ex, const request* req,
                  reply_adapter adapter);
    void fast_done(fast_op& op, boost::system::error_code ec, std::size_t bytes);
    exec_state& acquire_state();
    void release_state(exec_state& st);
    // `done`: replies (by index) delivered already; `bytes`: their size.
    asio::awaitable<void> exec(handler_type h, executor_type handler_ex, const request* req,
                               reply_adapter adapter, std::uint64_t done, std::size_t bytes);
    asio::awaitable<boost::system::error_code> exec_inner(exec_state& st);
    asio::awaitable<void> run_group(exec_state& st, cluster::group& g);
    bool start_direct(exec_state& st, cluster::group& g, std::size_t index);
    void group_done(exec_state& st, cluster::group& g, boost::system::error_code ec,
                    std::size_t bytes);
    asio::awaitable<void> refresh_loop();
    asio::awaitable<boost::system::error_code> refresh_once();
    asio::awaitable<boost::system::error_code> address_for_main(endpoint& to, std::string& why);
    asio::awaitable<boost::system::error_code> address_for_pool(endpoint& to, std::string& why);
    // Waits until the map changes, a node connects, or `until` (whichever is first).
    asio::awaitable<void> wait_change(std::chrono::steady_clock::time_point until);
    void wake_waiters();
    void request_refresh();
    void apply_map(cluster::slot_map map);
    bool ready() const noexcept { return !map_.empty(); }

    executor_type ex_;
    config cfg_;
    connection main_;
    connection_pool& pool_;
    event_sink events_;
    push_sink pushes_;
    std::optional<request> tracking_; // CLIENT TRACKING ..., for every node connection
    invalidation_sink invalidations_;
    cluster::slot_map map_;
    std::map<std::string, std::unique_ptr<node_state>> nodes_;
    std::vector<std::unique_ptr<node_state>> retired_; // cancelled, run() not over yet
    std::vector<node_state*> slot_node_;               // slot -> its master's node, or null
    std::vector<std::unique_ptr<fast_op>> all_fast_;
    std::vector<std::unique_ptr<exec_state>> all_states_;
    std::vector<exec_state*> free_states_;
    std::vector<fast_op*> free_fast_;
    std::vector<std::string_view> keys_; // scratch of try_fast
    std::size_t running_nodes_ = 0;
    link_id next_link_ = main_link;
    std::string last_refresh_error_;
    boost::system::error_code last_refresh_ec_;
    std::vector<asio::steady_timer*> waiters_;
    asio::steady_timer refresh_timer_;
    cluster_stats stats_;
    std::size_t main_rotation_ = 0;
    std::size_t pool_rotation_ = 0;
    bool refresh_wanted_ = false;
    bool stopped_ = false;
};

} // namespace akv::detail
