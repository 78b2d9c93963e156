#include "sentinel.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

namespace akv::detail {

sentinel_topology::sentinel_topology(executor_type ex, const config& cfg, connection_pool& pool,
                                     event_sink events)
    : standalone_topology(ex, cfg, pool, std::move(events))
    , monitor_(ex, cfg) {
    auto resolve = [this](endpoint& to, std::string& why) { return monitor_.resolve(to, why); };
    main_.set_address_source(resolve);
    // A replica client takes the master when no replica is healthy, so it asks for no role.
    const bool master_only = !cfg.read_from_replicas;
    if (master_only) main_.require_role("master");
    // The pool's connections go where the main connection goes: the master, or a replica in
    // replica mode.
    pool_.set_default_route([resolve, master_only](connection& c) {
        c.set_address_source(resolve);
        if (master_only) c.require_role("master");
    });
}

sentinel_topology::~sentinel_topology() = default;

asio::awaitable<void> sentinel_topology::run() {
    using namespace asio::experimental::awaitable_operators;
    std::function<void(const endpoint&)> on_switch = [this](const endpoint&) {
        // Every connection asks the sentinels again.
        main_.reconnect();
        pool_.reconnect_default();
        events_(client_event{
            client_event::kind::topology_changed, {}, "sentinel: master switched", main_link});
    };
    std::function<std::optional<endpoint>()> in_use = [this]() -> std::optional<endpoint> {
        if (!main_.is_connected()) return std::nullopt;
        return main_.remote_endpoint();
    };
    co_await (main_.run() && monitor_.watch(std::move(on_switch), std::move(in_use)));
}

void sentinel_topology::cancel() {
    standalone_topology::cancel();
    monitor_.cancel();
}

} // namespace akv::detail
