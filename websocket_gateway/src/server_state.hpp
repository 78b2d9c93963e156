// What the server's connections share: the Redis client, options, hub, counters and the open
// sessions (for shutdown). Beast-free: sessions appear as session_handle.
#pragma once

#include "hub.hpp"

#include <akv/gateway/server.hpp>

#include <boost/asio/steady_timer.hpp>

#include <vector>

namespace akv::gateway::detail {

class session_handle {
public:
    virtual void shut_down() = 0;   // close 1001 after the queue drains
    virtual void force_close() = 0; // the socket, now

protected:
    ~session_handle() = default;
};

struct server_state {
    server_state(client& r, const options& o)
        : redis(r)
        , opts(o)
        , changed(r.get_executor())
        , hub(r, o, changed) {
        changed.expires_at(asio::steady_timer::time_point::max());
    }

    client& redis;
    const options& opts;
    asio::steady_timer changed; // cancelled when a session, connection or hub task ends
    detail::hub hub;
    stats counters;
    std::vector<session_handle*> sessions;
};

} // namespace akv::gateway::detail
