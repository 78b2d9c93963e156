// The nodes behind the console's client, each asked on a connection of its own: a cluster's
// masters (a SCAN each, to find keys) and replicas, a master's replicas (INFO, SLOWLOG).
// Private to akv::console.
#pragma once

#include <akv/client.hpp>
#include <akv/connection.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace akv::console::detail {

// Connections to single nodes, each made when first needed and kept: a request or a sample
// pays no connect, and the node gets no new client, each time. Every call has a deadline, so a
// node that hangs costs that long and no more. A node's connection is closed when the node
// leaves the topology (retain()) and every one when the client stops (its io_context then runs
// out of work as before). Use on the client's executor.
class node_links {
public:
    node_links(client& redis, std::chrono::milliseconds timeout);
    ~node_links();
    node_links(const node_links&) = delete;
    node_links& operator=(const node_links&) = delete;

    // `req` on `node`'s connection within the deadline; throws system_error naming the node
    // (and why it could not connect, when that is the reason).
    template <class Response>
    asio::awaitable<void> exec(const endpoint& node, request req, Response& resp) {
        req.get_options().timeout = timeout_;
        // Held: the connection outlives this call even if retain() drops it meanwhile.
        const std::shared_ptr<link> l = at(node);
        // A node that refused its last connect fails at once: a dead replica would otherwise
        // cost every sample the whole deadline.
        if (!l->conn.is_connected() && !l->conn.last_error_message().empty())
            req.get_options().fail_if_not_connected = true;
        auto [ec, n] = co_await l->conn.exec(req, resp, asio::as_tuple(asio::use_awaitable));
        if (ec) throw_failure(ec, node, *l);
    }

    // Closes the connections of nodes not in `nodes`, and forgets their slow logs.
    void retain(const std::vector<endpoint>& nodes);
    void close();

    // The slow log last read from a node, kept between reads (the sampler reads it every tenth
    // time).
    boost::json::array& slowlog(const std::string& address) { return slowlogs_[address]; }

private:
    struct link {
        link(connection::executor_type ex, config cfg)
            : conn(std::move(ex), std::move(cfg)) {}
        connection conn;
        bool closed = false;   // before its run() began, too
        bool finished = false; // its run() ended (no reconnecting): made again when next needed
    };

    std::shared_ptr<link> at(const endpoint& node);
    static asio::awaitable<void> keep(std::shared_ptr<link> l);
    [[noreturn]] static void throw_failure(boost::system::error_code ec, const endpoint& node,
                                           const link& l);
    void on_client_event(const client_event& e);

    client& redis_;
    std::chrono::milliseconds timeout_;
    std::map<std::string, std::shared_ptr<link>> links_; // by "host:port"
    std::map<std::string, boost::json::array> slowlogs_;
    // The client's listener may outlive this object (see the destructor): it reaches it
    // through `self_`, which dies with it.
    std::shared_ptr<node_links*> self_;
    std::optional<std::size_t> listener_;
    bool client_stopped_ = false;
};

// Every task at once, waiting for all of them; the first exception (in the order given) is
// rethrown once all have ended.
asio::awaitable<void> all_of(std::vector<asio::awaitable<void>> tasks);

// What a node said: INFO's text and, when asked for, its slow log; or why it said nothing.
struct node_reading {
    std::string info;
    std::optional<resp::value> slowlog; // SLOWLOG GET 10
    std::string error;
    endpoint from; // read_server(): the client's main connection's node, which keyless
                   // commands go to (on a cluster, one of the masters)
};

// INFO and SLOWLOG GET 10 of the client's own server (a cluster: one of its masters), through
// the client. Throws as the client does: the answer needs it.
asio::awaitable<node_reading> read_server(client& redis);

// INFO's "name:value" lines, keyspace's "dbN" lines included; headers and blank lines dropped.
std::map<std::string, std::string, std::less<>> info_fields(std::string_view text);

// SLOWLOG GET's entries as {"id", "duration_us", "command"}.
boost::json::array slowlog_json(const resp::value& reply);

// Every node of the deployment, masters each followed by their replicas: a cluster's from
// CLUSTER SHARDS, otherwise the client's server and the replicas its INFO replication lists
// (and its master first, if it is a replica). Each with its address, role, memory, ops/s,
// clients, keyspace, replication state and slow log (read again when `read_slowlogs`,
// otherwise the last one read); a node that does not answer within the deadline has an
// "error" instead. `server` is read_server()'s reading of the client's own server.
asio::awaitable<boost::json::array> nodes_json(client& redis, node_links& links,
                                               const node_reading& server, bool read_slowlogs);

} // namespace akv::console::detail
