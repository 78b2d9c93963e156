// What stands behind akv::client: one server (standalone.hpp), the master the sentinels name
// (sentinel.hpp) or the nodes of a cluster (cluster.hpp). The client owns the blocking-command
// pool and hands it in; no class here knows the client.
//
// Every connection is a link: the main one is main_link (0), a cluster's node connections get
// numbers of their own. Events of every link, and changes of the topology, go to one sink given
// at construction; pushes of every link go to the push sink once one is set.
#pragma once

#include <akv/client.hpp>

#include "connection_pool.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace akv::detail {

class topology {
public:
    using executor_type = connection::executor_type;
    using handler_type = asio::any_completion_handler<connection::exec_signature>;
    using event_sink = std::function<void(const client_event&)>;
    using push_sink = std::function<void(link_id, resp::value&&)>;

    virtual ~topology() = default;

    // Keeps every connection up until cancel().
    virtual asio::awaitable<void> run() = 0;
    virtual void cancel() = 0;
    // Sends `req` where it belongs; blocking commands through the pool.
    virtual void start_exec(handler_type handler, executor_type handler_ex, const request* req,
                            reply_adapter adapter) = 0;

    // The main connection: keyless commands, classic pub/sub, receive_push().
    virtual connection& main() noexcept = 0;
    // A link's connection; nullptr once it has gone (a node that left the slot map).
    virtual connection* link(link_id id) noexcept = 0;
    // The link serving `channel`'s slot; nullopt while not known.
    virtual std::optional<link_id> link_for_channel(std::string_view channel) = 0;
    virtual void set_push_sink(push_sink sink) = 0;
    // Client-side caching: every connection that serves reads sends `setup` (CLIENT TRACKING
    // ...) on each connect, and hands its invalidation pushes to `sink`. Call before run().
    using invalidation_sink = connection::invalidation_handler;
    virtual void enable_tracking(request setup, invalidation_sink sink) = 0;
    // Read the map again soon (cluster); nothing elsewhere.
    virtual void refresh() {}

    virtual std::vector<endpoint> masters() const = 0;
    virtual std::optional<endpoint> master_of(std::uint16_t slot) const = 0;
    virtual void add_stats(client_stats& into) const = 0;
    virtual std::string last_error_message() const = 0;
};

// The configuration every connection of a client runs with (a sentinel's connect attempt
// includes asking the sentinels, so its connect timeout grows).
config connection_config(config cfg);

std::unique_ptr<topology> make_topology(connection::executor_type ex, const config& cfg,
                                        connection_pool& pool, topology::event_sink events);

// A connection's event as the client's, about `link`.
client_event as_client_event(const connection_event& e, link_id link);

} // namespace akv::detail
