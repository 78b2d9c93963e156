#include "topology.hpp"

#include "cluster.hpp"
#include "sentinel.hpp"
#include "standalone.hpp"

namespace akv::detail {

config connection_config(config cfg) {
    // Behind Sentinel a connect attempt first asks the sentinels, one after another, each within
    // its own timeouts: connect_timeout alone would end the attempt at a sentinel that does not
    // answer, before the next one is asked.
    if (cfg.topology == config::mode::sentinel && cfg.connect_timeout.count() > 0)
        cfg.connect_timeout += static_cast<int>(cfg.hosts.size()) *
                               (cfg.sentinel_connect_timeout + cfg.sentinel_socket_timeout);
    return cfg;
}

std::unique_ptr<topology> make_topology(connection::executor_type ex, const config& cfg,
                                        connection_pool& pool, topology::event_sink events) {
    switch (cfg.topology) {
    case config::mode::cluster:
        return std::make_unique<cluster_topology>(std::move(ex), cfg, pool, std::move(events));
    case config::mode::sentinel:
        return std::make_unique<sentinel_topology>(std::move(ex), cfg, pool, std::move(events));
    case config::mode::standalone:
        break;
    }
    return std::make_unique<standalone_topology>(std::move(ex), cfg, pool, std::move(events));
}

client_event as_client_event(const connection_event& e, link_id link) {
    client_event out{client_event::kind::connected, e.reason, e.detail, link};
    switch (e.what) {
    case connection_event::kind::connected:
        out.what = client_event::kind::connected;
        break;
    case connection_event::kind::disconnected:
        out.what = client_event::kind::disconnected;
        break;
    case connection_event::kind::reconnecting:
        out.what = client_event::kind::reconnecting;
        break;
    case connection_event::kind::stopped:
        out.what = client_event::kind::stopped;
        break;
    }
    return out;
}

} // namespace akv::detail
