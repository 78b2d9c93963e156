// Behind Sentinel: a standalone topology whose main connection, and the pool's connections
// without a target, ask the sentinels for the master (sentinel/monitor.hpp) before every
// attempt, and move when the sentinels say it switched.
#pragma once

#include "../sentinel/monitor.hpp"
#include "standalone.hpp"

namespace akv::detail {

class sentinel_topology final : public standalone_topology {
public:
    sentinel_topology(executor_type ex, const config& cfg, connection_pool& pool,
                      event_sink events);
    ~sentinel_topology() override;

    asio::awaitable<void> run() override;
    void cancel() override;

private:
    sentinel_monitor monitor_;
};

} // namespace akv::detail
