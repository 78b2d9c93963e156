#include "nodes.hpp"

#include <akv/cluster/slot_map.hpp>
#include <akv/error.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace akv::console::detail {

namespace json = boost::json;

// ---- node_links

node_links::node_links(client& redis, std::chrono::milliseconds timeout)
    : redis_(redis)
    , timeout_(timeout)
    , self_(std::make_shared<node_links*>(this)) {}

node_links::~node_links() {
    close();
    // A client that has stopped may be gone already (an application may destroy it first):
    // its listener then stays, reaching nothing once self_ is gone.
    if (listener_ && !client_stopped_) redis_.remove_event_listener(*listener_);
}

std::shared_ptr<node_links::link> node_links::at(const endpoint& node) {
    if (!listener_) {
        listener_ = redis_.add_event_listener([self = std::weak_ptr(self_)](const client_event& e) {
            if (const auto links = self.lock()) (*links)->on_client_event(e);
        });
    }
    const std::string address = to_string(node);
    if (const auto it = links_.find(address); it != links_.end() && !it->second->finished)
        return it->second;
    // What the client's own connections use (credentials, TLS, timeouts), to this node alone.
    config cfg = redis_.get_config();
    cfg.topology = config::mode::standalone;
    cfg.hosts = {node};
    cfg.unix_socket.clear();
    cfg.cache = {};
    cfg.read_from_replicas = false;
    auto l = std::make_shared<link>(redis_.get_executor(), std::move(cfg));
    asio::co_spawn(redis_.get_executor(), keep(l), [l](std::exception_ptr) { l->finished = true; });
    links_[address] = l;
    return l;
}

asio::awaitable<void> node_links::keep(std::shared_ptr<link> l) {
    // A connection cancelled before its run() began would run on regardless.
    if (l->closed) co_return;
    co_await l->conn.run();
}

void node_links::throw_failure(boost::system::error_code ec, const endpoint& node, const link& l) {
    std::string what = to_string(node);
    if (!l.conn.is_connected() && !l.conn.last_error_message().empty())
        what += " (" + l.conn.last_error_message() + ")";
    throw boost::system::system_error(ec, what);
}

void node_links::retain(const std::vector<endpoint>& nodes) {
    std::set<std::string> kept;
    for (const auto& n : nodes)
        kept.insert(to_string(n));
    for (auto it = links_.begin(); it != links_.end();) {
        if (kept.count(it->first)) {
            ++it;
            continue;
        }
        it->second->closed = true;
        it->second->conn.cancel();
        it = links_.erase(it);
    }
    std::erase_if(slowlogs_, [&](const auto& s) { return !kept.count(s.first); });
}

void node_links::close() {
    retain({});
}

void node_links::on_client_event(const client_event& e) {
    if (e.link != main_link) return;
    if (e.what == client_event::kind::stopped) {
        client_stopped_ = true;
        close();
    } else if (e.what == client_event::kind::connected) {
        client_stopped_ = false;
    }
}

// ---- reading nodes

asio::awaitable<void> all_of(std::vector<asio::awaitable<void>> tasks) {
    if (tasks.empty()) co_return;
    const auto ex = co_await asio::this_coro::executor;
    using spawned = decltype(asio::co_spawn(ex, std::move(tasks.front()), asio::deferred));
    std::vector<spawned> ops;
    ops.reserve(tasks.size());
    for (auto& t : tasks)
        ops.push_back(asio::co_spawn(ex, std::move(t), asio::deferred));
    auto [order, failures] =
        co_await asio::experimental::make_parallel_group(std::move(ops))
            .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    for (const std::exception_ptr& e : failures)
        if (e) std::rethrow_exception(e);
}

asio::awaitable<node_reading> read_server(client& redis) {
    request req({.idempotent = true});
    req.push("INFO");
    req.push("SLOWLOG", "GET", 10);
    response<std::string, resp::value> resp;
    co_await redis.exec(req, resp);
    co_return node_reading{std::move(std::get<0>(resp).value()),
                           std::move(std::get<1>(resp).value()),
                           {},
                           redis.remote_endpoint()};
}

namespace {

// INFO, and SLOWLOG GET 10 when asked, of one node; what went wrong instead of a throw.
asio::awaitable<void> read_node(node_links& links, const endpoint& node, bool slowlog,
                                node_reading& out) {
    try {
        request req({.idempotent = true});
        req.push("INFO");
        if (slowlog) {
            req.push("SLOWLOG", "GET", 10);
            response<std::string, resp::value> resp;
            co_await links.exec(node, req, resp);
            out.info = std::move(std::get<0>(resp).value());
            out.slowlog = std::move(std::get<1>(resp).value());
        } else {
            response<std::string> resp;
            co_await links.exec(node, req, resp);
            out.info = std::move(std::get<0>(resp).value());
        }
    } catch (const std::exception& e) {
        out.error = e.what();
    }
}

// A node of the deployment, as its topology names it, and what it said.
struct member {
    endpoint address;
    bool master = true;
    std::string master_address; // a replica's
    node_reading reading;
    bool read_by_client = false; // the client's own server: read with the top level
    bool failed = false;         // a cluster's node whose health is "fail"
};

std::optional<long long> number_in(std::string_view text) {
    long long v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return v;
}

using fields = std::map<std::string, std::string, std::less<>>;

std::string_view field(const fields& f, std::string_view key) {
    const auto it = f.find(key);
    return it == f.end() ? std::string_view() : std::string_view(it->second);
}

// "ip=127.0.0.1,port=6380,state=online,..." (INFO's slaveN and dbN values) as its pairs.
fields pairs_in(std::string_view text) {
    fields out;
    while (!text.empty()) {
        const auto comma = text.find(',');
        const std::string_view pair = text.substr(0, comma);
        if (const auto eq = pair.find('='); eq != std::string_view::npos)
            out.emplace(pair.substr(0, eq), pair.substr(eq + 1));
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return out;
}

bool numbered(std::string_view key, std::string_view prefix) {
    return key.size() > prefix.size() && key.starts_with(prefix) &&
           std::all_of(key.begin() + prefix.size(), key.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// The replicas INFO replication of a master lists ("slaveN:ip=...,port=...").
std::vector<endpoint> replicas_in(const fields& info) {
    std::vector<endpoint> out;
    for (const auto& [key, value] : info) {
        if (!numbered(key, "slave")) continue;
        const fields replica = pairs_in(value);
        const auto port = number_in(field(replica, "port"));
        if (field(replica, "ip").empty() || !port || *port <= 0 || *port > 65535) continue;
        out.push_back({std::string(field(replica, "ip")), static_cast<std::uint16_t>(*port)});
    }
    return out;
}

std::optional<endpoint> master_in(const fields& info) {
    const auto port = number_in(field(info, "master_port"));
    if (field(info, "master_host").empty() || !port || *port <= 0 || *port > 65535)
        return std::nullopt;
    return endpoint{std::string(field(info, "master_host")), static_cast<std::uint16_t>(*port)};
}

// A node's address as shown: "host:port", or the client's socket path when it has no port.
std::string address_of(client& redis, const endpoint& node) {
    const config& cfg = redis.get_config();
    if (!cfg.unix_socket.empty() && cfg.topology == config::mode::standalone)
        return "unix:" + cfg.unix_socket;
    return to_string(node);
}

// `reply` (CLUSTER SHARDS) with every node's health "online".
resp::value all_online(resp::value reply) {
    for (resp::value& shard : reply.elements)
        for (std::size_t i = 0; i + 1 < shard.elements.size(); i += 2) {
            if (shard.elements[i].str != "nodes") continue;
            for (resp::value& node : shard.elements[i + 1].elements)
                for (std::size_t k = 0; k + 1 < node.elements.size(); k += 2)
                    if (node.elements[k].str == "health") node.elements[k + 1].str = "online";
        }
    return reply;
}

// A cluster's nodes, each master followed by its replicas, as CLUSTER SHARDS says (CLUSTER
// SLOTS before Redis 7.0). The slot map leaves out the nodes whose health is "fail", which an
// operator wants to see most: they are read from the reply once more with that health hidden.
asio::awaitable<std::vector<member>> cluster_members(client& redis, const node_reading& server) {
    request req({.idempotent = true});
    req.push("CLUSTER", "SHARDS");
    response<resp::value> resp;
    co_await redis.exec(req, resp);
    cluster::slot_map healthy, every;
    const bool tls = redis.get_config().use_tls;
    const std::string origin = redis.remote_endpoint().host;
    std::optional<std::string> problem;
    if (std::get<0>(resp).has_error()) {
        req.clear();
        req.push("CLUSTER", "SLOTS");
        co_await redis.exec(req, resp);
        problem = cluster::slot_map::from_slots(std::get<0>(resp).value(), every, tls, origin);
        healthy = every;
    } else {
        const resp::value& reply = std::get<0>(resp).value();
        problem = cluster::slot_map::from_shards(reply, healthy, tls, origin);
        // Should the failed nodes make no map of their own, the healthy ones are still shown.
        if (!problem && cluster::slot_map::from_shards(all_online(reply), every, tls, origin))
            every = healthy;
    }
    if (problem) throw boost::system::system_error(error::resp_protocol, *problem);
    const std::vector<endpoint> healthy_nodes = healthy.nodes();
    auto failed = [&](const endpoint& n) {
        return std::find(healthy_nodes.begin(), healthy_nodes.end(), n) == healthy_nodes.end();
    };
    std::vector<member> out;
    for (const cluster::shard& s : every.shards()) {
        out.push_back(member{s.master, true, {}, {}, false, failed(s.master)});
        for (const endpoint& r : s.replicas)
            out.push_back(member{r, false, to_string(s.master), {}, false, failed(r)});
    }
    // The master the client's keyless INFO went to is read already.
    for (member& m : out)
        if (m.address == server.from) {
            m.reading = server;
            m.read_by_client = true;
        }
    co_return out;
}

// The deployment's nodes other than a cluster's: the client's server, its master first if it
// is a replica, and the master's replicas.
asio::awaitable<std::vector<member>>
replication_of(client& redis, node_links& links, const node_reading& server, bool read_slowlogs) {
    std::vector<member> out;
    member own{server.from, true, {}, server, true};
    const std::string own_address = address_of(redis, server.from);
    const fields own_info = info_fields(server.info);
    const std::optional<endpoint> master =
        field(own_info, "role") == "slave" ? master_in(own_info) : std::nullopt;
    fields master_info;
    if (master) {
        member m{*master, true, {}, {}, false};
        co_await read_node(links, *master, read_slowlogs, m.reading);
        master_info = info_fields(m.reading.info);
        own.master = false;
        own.master_address = to_string(*master);
        out.push_back(std::move(m));
    }
    out.push_back(std::move(own));
    const std::string replicas_of = master ? to_string(*master) : own_address;
    for (const endpoint& r : replicas_in(master ? master_info : own_info)) {
        if (to_string(r) == own_address) continue; // the client's own server, a replica
        out.push_back(member{r, false, replicas_of, {}, false});
    }
    co_return out;
}

json::object node_json(const member& m, const std::string& address, node_links& links) {
    json::object o;
    o["address"] = address;
    const fields info = info_fields(m.reading.info);
    const bool master = m.reading.info.empty() ? m.master : field(info, "role") == "master";
    o["role"] = master ? "master" : "replica";
    if (!master) {
        const std::optional<endpoint> own_master = master_in(info);
        o["master"] = own_master ? to_string(*own_master) : m.master_address;
    }
    auto number = [&](std::string_view name, std::string_view key) {
        if (const auto v = number_in(field(info, key))) o[name] = *v;
    };
    if (!m.reading.info.empty()) {
        number("used_memory", "used_memory");
        o["used_memory_human"] = field(info, "used_memory_human");
        number("ops_per_sec", "instantaneous_ops_per_sec");
        number("connected_clients", "connected_clients");
        json::object keyspace;
        long long keys = 0;
        for (const auto& [key, value] : info) {
            if (!numbered(key, "db")) continue;
            keyspace[key] = value;
            keys += number_in(field(pairs_in(value), "keys")).value_or(0);
        }
        o["keys"] = keys;
        o["keyspace"] = std::move(keyspace);
        if (master) {
            number("connected_slaves", "connected_slaves");
            number("offset", "master_repl_offset");
        } else {
            o["master_link_status"] = field(info, "master_link_status");
            number("master_last_io_seconds_ago", "master_last_io_seconds_ago");
            number("offset", "slave_repl_offset");
        }
    }
    json::array& slowlog = links.slowlog(address);
    if (m.reading.slowlog) slowlog = slowlog_json(*m.reading.slowlog);
    o["slowlog"] = slowlog;
    if (m.failed) o["health"] = "fail"; // as the cluster says
    if (!m.reading.error.empty()) o["error"] = m.reading.error;
    return o;
}

} // namespace

std::map<std::string, std::string, std::less<>> info_fields(std::string_view text) {
    fields out;
    while (!text.empty()) {
        const auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        if (line.ends_with('\r')) line.remove_suffix(1);
        const auto colon = line.find(':');
        if (line.empty() || line[0] == '#' || colon == std::string_view::npos) continue;
        out.emplace(line.substr(0, colon), line.substr(colon + 1));
    }
    return out;
}

json::array slowlog_json(const resp::value& reply) {
    json::array slow;
    for (const auto& entry : reply.elements) {
        if (entry.elements.size() < 4) continue;
        std::string command;
        for (const auto& arg : entry.elements[3].elements)
            command += (command.empty() ? "" : " ") + arg.str;
        slow.push_back(json::object{{"id", std::stoll(entry.elements[0].str)},
                                    {"duration_us", std::stoll(entry.elements[2].str)},
                                    {"command", command}});
    }
    return slow;
}

asio::awaitable<json::array> nodes_json(client& redis, node_links& links,
                                        const node_reading& server, bool read_slowlogs) {
    std::vector<member> members;
    if (redis.get_config().topology == config::mode::cluster) {
        members = co_await cluster_members(redis, server);
    } else {
        members = co_await replication_of(redis, links, server, read_slowlogs);
    }
    std::vector<endpoint> addresses;
    for (const member& m : members)
        addresses.push_back(m.address);
    links.retain(addresses); // nodes that left: their connections go
    // Every node at once: a node that hangs costs one deadline, not one each.
    std::vector<asio::awaitable<void>> reads;
    for (member& m : members)
        if (!m.read_by_client && m.reading.info.empty() && m.reading.error.empty())
            reads.push_back(read_node(links, m.address, read_slowlogs, m.reading));
    co_await all_of(std::move(reads));

    json::array out;
    std::map<std::string, long long, std::less<>> master_offsets;
    for (const member& m : members) {
        const std::string address =
            m.read_by_client ? address_of(redis, m.address) : to_string(m.address);
        json::object o = node_json(m, address, links);
        if (o.at("role") == "master" && o.contains("offset"))
            master_offsets[address] = o.at("offset").as_int64();
        out.push_back(std::move(o));
    }
    // How far each replica is behind its master, in bytes of the replication stream (read at
    // about the same moment, so a replica a little ahead counts as 0).
    for (json::value& v : out) {
        json::object& o = v.as_object();
        if (o.at("role") != "replica" || !o.contains("offset")) continue;
        const auto m = master_offsets.find(std::string_view(o.at("master").as_string()));
        if (m != master_offsets.end())
            o["lag_bytes"] = std::max(0LL, m->second - o.at("offset").as_int64());
    }
    co_return out;
}

} // namespace akv::console::detail
