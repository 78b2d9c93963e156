// One server: the main connection goes to config::hosts (or unix_socket), blocking commands to
// the pool's connections to the same server. The sentinel topology is this with an address
// source that asks the sentinels.
#pragma once

#include "topology.hpp"

namespace akv::detail {

class standalone_topology : public topology {
public:
    standalone_topology(executor_type ex, const config& cfg, connection_pool& pool,
                        event_sink events);
    ~standalone_topology() override;

    asio::awaitable<void> run() override;
    void cancel() override;
    void start_exec(handler_type handler, executor_type handler_ex, const request* req,
                    reply_adapter adapter) override;

    connection& main() noexcept override { return main_; }
    connection* link(link_id id) noexcept override { return id == main_link ? &main_ : nullptr; }
    std::optional<link_id> link_for_channel(std::string_view) override { return main_link; }
    void set_push_sink(push_sink sink) override;
    void enable_tracking(request setup, invalidation_sink sink) override;

    std::vector<endpoint> masters() const override;
    std::optional<endpoint> master_of(std::uint16_t slot) const override;
    void add_stats(client_stats& into) const override;
    std::string last_error_message() const override { return main_.last_error_message(); }

protected:
    connection main_;
    connection_pool& pool_;
    event_sink events_;
};

} // namespace akv::detail
