#include <akv/cluster_slot.hpp>
#include <akv/config.hpp>
#include <akv/error.hpp>
#include <akv/testing/embedded_cluster.hpp>

#include "sync_resp.hpp"

#include <signal.h>

#include <algorithm>
#include <charconv>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace akv::testing {
namespace {

using namespace std::chrono_literals;
using steady_clock = std::chrono::steady_clock;
using detail::sync_client;
using detail::sync_reply;

constexpr auto poll_interval = 10ms;
constexpr std::chrono::milliseconds command_timeout = 2s; // one round trip to a local node
constexpr std::chrono::milliseconds migrate_timeout = 5s; // MIGRATE's own, per batch

[[noreturn]] void fail(error e, const std::string& what) {
    throw_error(e, "embedded_cluster: " + what);
}

std::string ms_text(std::chrono::milliseconds duration) {
    return std::to_string(duration.count()) + " ms";
}

std::chrono::milliseconds until(steady_clock::time_point deadline) {
    return std::max(0ms,
                    std::chrono::ceil<std::chrono::milliseconds>(deadline - steady_clock::now()));
}

// The value of `key` in an INFO-style "key:value\r\n" text; empty if absent.
std::string info_field(std::string_view info, std::string_view key) {
    for (std::size_t start = 0; start < info.size();) {
        auto end = info.find("\r\n", start);
        if (end == std::string_view::npos) end = info.size();
        const std::string_view line = info.substr(start, end - start);
        if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ':')
            return std::string(line.substr(key.size() + 1));
        start = end + 2;
    }
    return {};
}

std::uint16_t to_port(std::string_view text) {
    std::uint16_t port = 0;
    std::from_chars(text.data(), text.data() + text.size(), port);
    return port;
}

// One line of CLUSTER NODES:
// <id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv> <epoch> <link> <slot>...
struct node_line {
    std::string id;
    std::uint16_t port = 0;
    std::vector<std::string> flags;
    std::string master_id; // "-" for a master

    bool has(std::string_view flag) const {
        return std::find(flags.begin(), flags.end(), flag) != flags.end();
    }
};

std::vector<node_line> parse_cluster_nodes(std::string_view text) {
    std::vector<node_line> nodes;
    while (!text.empty()) {
        auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        std::vector<std::string_view> fields;
        while (!line.empty()) {
            const auto space = line.find(' ');
            fields.push_back(line.substr(0, space));
            line.remove_prefix(space == std::string_view::npos ? line.size() : space + 1);
        }
        if (fields.size() < 8) continue;
        node_line node;
        node.id = fields[0];
        const std::string_view address = fields[1].substr(0, fields[1].find('@'));
        if (const auto colon = address.rfind(':'); colon != std::string_view::npos)
            node.port = to_port(address.substr(colon + 1));
        for (std::string_view flags = fields[2]; !flags.empty();) {
            const auto comma = flags.find(',');
            node.flags.emplace_back(flags.substr(0, comma));
            flags.remove_prefix(comma == std::string_view::npos ? flags.size() : comma + 1);
        }
        node.master_id = fields[3];
        nodes.push_back(std::move(node));
    }
    return nodes;
}

// One range of CLUSTER SLOTS, nodes by port; replicas sorted, as nodes list them in the order
// they learnt of them.
struct slot_range {
    std::int64_t first = 0;
    std::int64_t last = 0;
    std::uint16_t master = 0;
    std::vector<std::uint16_t> replicas;

    bool operator==(const slot_range&) const = default;
};

std::vector<slot_range> parse_cluster_slots(const sync_reply& reply) {
    std::vector<slot_range> ranges;
    const auto port_of = [](const sync_reply& node) -> std::uint16_t {
        if (node.elements.size() < 2) return 0;
        return static_cast<std::uint16_t>(node.elements[1].integer);
    };
    for (const auto& entry : reply.elements) {
        if (entry.elements.size() < 3) continue;
        slot_range range;
        range.first = entry.elements[0].integer;
        range.last = entry.elements[1].integer;
        range.master = port_of(entry.elements[2]);
        for (std::size_t i = 3; i < entry.elements.size(); ++i)
            range.replicas.push_back(port_of(entry.elements[i]));
        std::sort(range.replicas.begin(), range.replicas.end());
        ranges.push_back(std::move(range));
    }
    std::sort(ranges.begin(), ranges.end(),
              [](const slot_range& a, const slot_range& b) { return a.first < b.first; });
    return ranges;
}

// "0-5460 @7001 [7004], ..." for messages.
std::string describe(const std::vector<slot_range>& ranges) {
    std::string out;
    for (const auto& range : ranges) {
        if (!out.empty()) out += ", ";
        out += std::to_string(range.first) + "-" + std::to_string(range.last) + " @" +
               std::to_string(range.master) + " [";
        for (std::size_t i = 0; i < range.replicas.size(); ++i)
            out += (i ? " " : "") + std::to_string(range.replicas[i]);
        out += "]";
    }
    return out.empty() ? "no slots" : out;
}

// A connection to node i, authenticated if the cluster has a password.
sync_client open(const embedded_cluster& cluster, std::size_t i,
                 std::chrono::milliseconds timeout = command_timeout) {
    sync_client client(cluster.node(i).port(), timeout);
    if (const auto& password = cluster.options().password; !password.empty())
        client.call_ok({"AUTH", password});
    return client;
}

std::string name(const embedded_cluster& cluster, std::size_t i) {
    return "node " + std::to_string(i) + " (127.0.0.1:" + std::to_string(cluster.node(i).port()) +
           ")";
}

// The command's reply; a connection failure or an error reply throws error::server_error
// naming the node and the command.
sync_reply run(const embedded_cluster& cluster, std::size_t i, const std::vector<std::string>& args,
               std::chrono::milliseconds timeout = command_timeout) {
    try {
        auto client = open(cluster, i, timeout);
        return client.call_ok(args);
    } catch (const std::runtime_error& e) {
        fail(error::server_error, name(cluster, i) + ": " + e.what());
    }
}

// The own line of CLUSTER NODES in `nodes`.
std::optional<node_line> myself_in(std::string_view nodes) {
    for (auto& line : parse_cluster_nodes(nodes))
        if (line.has("myself")) return std::move(line);
    return std::nullopt;
}

// Node i's CLUSTER NODES line about itself.
node_line own_line(const embedded_cluster& cluster, std::size_t i) {
    if (auto line = myself_in(run(cluster, i, {"CLUSTER", "NODES"}).text)) return std::move(*line);
    fail(error::server_error, name(cluster, i) + ": CLUSTER NODES has no \"myself\" line");
}

std::vector<std::size_t> running_nodes(const embedded_cluster& cluster) {
    std::vector<std::size_t> running;
    for (std::size_t i = 0; i < cluster.size(); ++i)
        if (cluster.node(i).running()) running.push_back(i);
    return running;
}

// Polls `check` (empty: done; else why not) until it is done or the deadline passes; then
// throws error::timeout with `what` and the last reason.
template <typename Check>
void wait_for(const std::string& what, std::chrono::milliseconds timeout, Check check) {
    const auto deadline = steady_clock::now() + timeout;
    for (;;) {
        std::string why_not;
        try {
            why_not = check();
        } catch (const std::exception& e) {
            why_not = e.what();
        }
        if (why_not.empty()) return;
        if (steady_clock::now() >= deadline)
            fail(error::timeout, what + " within " + ms_text(timeout) + ": " + why_not);
        std::this_thread::sleep_for(
            std::min<steady_clock::duration>(poll_interval, until(deadline)));
    }
}

// Empty when the cluster is ok (see wait_until_ok), else the first reason it is not.
std::string not_ok_reason(const embedded_cluster& cluster) {
    const auto running = running_nodes(cluster);
    if (running.empty()) return "no node is running";
    std::optional<std::vector<slot_range>> agreed;
    std::size_t agreed_by = 0;
    std::vector<std::pair<std::size_t, std::string>> replicas; // node, its master's id
    for (const std::size_t i : running) {
        auto client = open(cluster, i);
        const std::string info = client.call_ok({"CLUSTER", "INFO"}).text;
        if (const auto state = info_field(info, "cluster_state"); state != "ok")
            return name(cluster, i) + " says cluster_state:" + state;

        auto slots = parse_cluster_slots(client.call_ok({"CLUSTER", "SLOTS"}));
        if (!agreed) {
            std::int64_t next = 0;
            for (const auto& range : slots) {
                if (range.first != next) break;
                next = range.last + 1;
                for (const auto port : range.replicas)
                    if (!cluster.node(cluster.index_of_port(port)).running())
                        return name(cluster, i) +
                               " still lists stopped replica 127.0.0.1:" + std::to_string(port);
                if (!cluster.node(cluster.index_of_port(range.master)).running())
                    return name(cluster, i) +
                           " still has stopped master 127.0.0.1:" + std::to_string(range.master) +
                           " serving slots " + std::to_string(range.first) + "-" +
                           std::to_string(range.last);
            }
            if (next != cluster_slots)
                return name(cluster, i) + " does not see every slot covered: " + describe(slots);
            agreed = std::move(slots);
            agreed_by = i;
        } else if (slots != *agreed) {
            return name(cluster, i) + " has CLUSTER SLOTS " + describe(slots) + " but " +
                   name(cluster, agreed_by) + " has " + describe(*agreed);
        }

        // The cluster's idea of the role first: INFO says role:master on a replica that has
        // just restarted, until the cluster's cron points it at its master.
        const auto myself = myself_in(client.call_ok({"CLUSTER", "NODES"}).text);
        if (!myself) return name(cluster, i) + ": CLUSTER NODES has no \"myself\" line";
        if (myself->has("slave")) {
            const std::string replication = client.call_ok({"INFO", "replication"}).text;
            if (const auto role = info_field(replication, "role"); role != "slave")
                return name(cluster, i) + " is a replica in CLUSTER NODES but has role:" + role;
            if (const auto link = info_field(replication, "master_link_status"); link != "up")
                return name(cluster, i) + " is a replica with master_link_status:" + link;
            replicas.emplace_back(i, myself->master_id);
        }
    }

    // CLUSTER SLOTS leaves out a replica until the others know a replication offset of it
    // above 0: a client reading from replicas would not find it yet.
    for (const auto& [replica, master_id] : replicas) {
        std::size_t master = 0;
        while (master < cluster.size() && cluster.node_id(master) != master_id)
            ++master;
        if (master == cluster.size())
            return name(cluster, replica) + " replicates unknown node " + master_id;
        const auto port = cluster.node(replica).port();
        for (const auto& range : *agreed)
            if (range.master == cluster.node(master).port() &&
                std::find(range.replicas.begin(), range.replicas.end(), port) ==
                    range.replicas.end())
                return name(cluster, replica) +
                       " is not yet listed as a replica in CLUSTER SLOTS: " + describe(*agreed);
    }
    return {};
}

} // namespace

embedded_cluster::embedded_cluster(embedded_cluster_options options)
    : options_(std::move(options)) {
    if (options_.masters == 0)
        throw std::invalid_argument("embedded_cluster: masters must be >= 1");
    if (options_.masters > cluster_slots)
        throw std::invalid_argument("embedded_cluster: more masters than slots");
    const auto deadline = steady_clock::now() + options_.start_timeout;
    try {
        start_nodes();
        join(deadline);
    } catch (const boost::system::system_error& e) {
        stop_all();
        if (e.code() == error::server_start_failed) throw;
        fail(error::server_start_failed, std::string("the cluster did not come up: ") + e.what());
    } catch (...) {
        stop_all();
        throw;
    }
}

embedded_cluster::~embedded_cluster() {
    stop_all();
}

void embedded_cluster::stop_all() noexcept {
    // A server acts on SIGTERM in its next cron tick, up to 100 ms later: signal them all, then
    // reap each (stop() signals again, harmlessly, and waits).
    for (const auto& node : nodes_)
        if (node->pid() > 0) ::kill(node->pid(), SIGTERM);
    for (const auto& node : nodes_)
        node->stop();
}

void embedded_cluster::start_nodes() {
    embedded_server_options node_options;
    node_options.executable = options_.executable;
    node_options.append_only = options_.append_only;
    node_options.password = options_.password;
    node_options.start_timeout = options_.start_timeout;
    node_options.unix_socket = false;
    node_options.cluster_enabled = true;
    node_options.extra_args = {
        "--cluster-node-timeout", std::to_string(options_.node_timeout.count()),
        // A replica may take over however long ago it last heard from its master: a test kills
        // masters whenever it likes.
        "--cluster-replica-validity-factor", "0",
        // The master pings its replicas every second rather than 10: their replication offsets
        // leave 0 soon, and CLUSTER SLOTS lists a replica only then.
        "--repl-ping-replica-period", "1",
        // The full sync of a new replica starts at once, not after the default 5 s wait for
        // more replicas.
        "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
        // Shutting down does not wait for replicas to catch up: these are throwaway servers.
        "--shutdown-timeout", "0"};
    if (!options_.password.empty())
        node_options.extra_args.insert(node_options.extra_args.end(),
                                       {"--masterauth", options_.password});
    if (options_.tls_port) {
        node_options.tls_port = true;
        node_options.extra_args.insert(node_options.extra_args.end(),
                                       {"--tls-cluster", "yes", "--tls-replication", "yes",
                                        "--tls-auth-clients", "no"});
        const std::pair<const char*, const std::string*> files[] = {
            {"--tls-cert-file", &options_.tls_cert_file},
            {"--tls-key-file", &options_.tls_key_file},
            {"--tls-ca-cert-file", &options_.tls_ca_cert_file}};
        for (const auto& [flag, file] : files)
            if (!file->empty())
                node_options.extra_args.insert(node_options.extra_args.end(), {flag, *file});
    }
    node_options.extra_args.insert(node_options.extra_args.end(), options_.extra_args.begin(),
                                   options_.extra_args.end());

    const std::size_t count = options_.masters * (1 + options_.replicas_per_master);
    nodes_.reserve(count);
    for (std::size_t i = 0; i < count; ++i)
        nodes_.push_back(std::make_unique<embedded_server>(node_options));
}

void embedded_cluster::join(std::chrono::steady_clock::time_point deadline) {
    for (std::size_t i = 0; i < size(); ++i)
        ids_.push_back(run(*this, i, {"CLUSTER", "MYID"}).text);

    for (std::size_t m = 0; m < options_.masters; ++m) {
        const std::size_t first = m * cluster_slots / options_.masters;
        const std::size_t last = (m + 1) * cluster_slots / options_.masters - 1;
        run(*this, m, {"CLUSTER", "ADDSLOTSRANGE", std::to_string(first), std::to_string(last)});
    }
    // Distinct epochs before the nodes meet, as redis-cli does: otherwise they resolve the
    // collision among themselves, one bump per gossip round.
    for (std::size_t i = 0; i < size(); ++i)
        run(*this, i, {"CLUSTER", "SET-CONFIG-EPOCH", std::to_string(i + 1)});
    // Every pair meets directly, rather than all through one node and then by gossip.
    for (std::size_t i = 1; i < size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            run(*this, i,
                {"CLUSTER", "MEET", "127.0.0.1", std::to_string(node(j).port()),
                 std::to_string(node(j).cluster_bus_port())});

    wait_for("the nodes did not all meet", until(deadline), [&]() -> std::string {
        for (std::size_t i = 0; i < size(); ++i) {
            const auto known = parse_cluster_nodes(run(*this, i, {"CLUSTER", "NODES"}).text);
            for (std::size_t j = 0; j < size(); ++j) {
                const auto line = std::find_if(known.begin(), known.end(),
                                               [&](const node_line& l) { return l.id == ids_[j]; });
                if (line == known.end())
                    return name(*this, i) + " does not know " + name(*this, j) + " yet";
                if (line->has("handshake") || line->has("noaddr"))
                    return name(*this, i) + " is still in handshake with " + name(*this, j);
            }
        }
        return {};
    });

    for (std::size_t m = 0; m < options_.masters; ++m)
        for (std::size_t r = 0; r < options_.replicas_per_master; ++r)
            run(*this, options_.masters + m * options_.replicas_per_master + r,
                {"CLUSTER", "REPLICATE", ids_[m]});

    wait_until_ok(until(deadline));
}

std::size_t embedded_cluster::index_of_port(std::uint16_t port) const {
    for (std::size_t i = 0; i < size(); ++i)
        if (node(i).port() == port) return i;
    throw std::out_of_range("embedded_cluster: no node listens on port " + std::to_string(port));
}

std::vector<endpoint> embedded_cluster::seeds() const {
    std::vector<endpoint> result;
    for (const auto& node : nodes_)
        result.push_back(endpoint{node->host(), node->port()});
    return result;
}

std::vector<endpoint> embedded_cluster::tls_seeds() const {
    std::vector<endpoint> result;
    if (!options_.tls_port) return result;
    for (const auto& node : nodes_)
        result.push_back(endpoint{node->host(), node->tls_port()});
    return result;
}

akv::config embedded_cluster::config() const {
    akv::config result;
    result.topology = config::mode::cluster;
    result.hosts = seeds();
    result.password = options_.password;
    return result;
}

std::size_t embedded_cluster::master_of(std::uint16_t slot) const {
    const auto running = running_nodes(*this);
    if (running.empty()) fail(error::server_error, "master_of: no node is running");
    for (const auto& range : parse_cluster_slots(run(*this, running.front(), {"CLUSTER", "SLOTS"})))
        if (range.first <= slot && slot <= range.last) return index_of_port(range.master);
    fail(error::server_error, "master_of: slot " + std::to_string(slot) + " has no master in " +
                                  name(*this, running.front()) + "'s CLUSTER SLOTS");
}

std::vector<std::size_t> embedded_cluster::masters() const {
    std::vector<std::size_t> result;
    for (const std::size_t i : running_nodes(*this))
        if (own_line(*this, i).has("master")) result.push_back(i);
    return result;
}

std::vector<std::size_t> embedded_cluster::replicas_of(std::size_t master) const {
    const std::string& master_id = ids_.at(master);
    std::vector<std::size_t> result;
    for (const std::size_t i : running_nodes(*this))
        if (const auto line = own_line(*this, i); line.has("slave") && line.master_id == master_id)
            result.push_back(i);
    return result;
}

void embedded_cluster::wait_until_ok(std::chrono::milliseconds timeout) const {
    wait_for("the cluster did not become ok", timeout, [this] { return not_ok_reason(*this); });
}

void embedded_cluster::begin_migration(std::uint16_t slot, std::size_t from, std::size_t to) {
    const std::string slot_text = std::to_string(slot);
    run(*this, to, {"CLUSTER", "SETSLOT", slot_text, "IMPORTING", ids_.at(from)});
    run(*this, from, {"CLUSTER", "SETSLOT", slot_text, "MIGRATING", ids_.at(to)});
    migrations_[slot] = {from, to};
}

std::size_t embedded_cluster::migrate_keys(std::uint16_t slot, std::size_t batch) {
    const auto migration = migrations_.find(slot);
    if (migration == migrations_.end())
        throw std::logic_error("embedded_cluster: migrate_keys(" + std::to_string(slot) +
                               ") without begin_migration");
    const auto [from, to] = migration->second;
    std::vector<std::string> migrate{
        "MIGRATE", "127.0.0.1", std::to_string(node(to).port()),
        "",        "0",         std::to_string(migrate_timeout.count())};
    if (!options_.password.empty()) migrate.insert(migrate.end(), {"AUTH", options_.password});
    migrate.push_back("KEYS");
    const std::size_t fixed_args = migrate.size();

    std::size_t moved = 0;
    for (;;) {
        const auto keys = run(*this, from,
                              {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot),
                               std::to_string(std::max<std::size_t>(batch, 1))});
        if (keys.elements.empty()) return moved;
        migrate.resize(fixed_args);
        for (const auto& key : keys.elements)
            migrate.push_back(key.text);
        std::string why;
        try {
            auto client = open(*this, from, migrate_timeout + command_timeout);
            const auto reply = client.call(migrate);
            if (reply.is_error())
                why = reply.text; // not call_ok(): it would show the password
            else if (reply.text == "OK")
                moved += keys.elements.size();
            // else NOKEY: another client deleted them since GETKEYSINSLOT.
        } catch (const std::runtime_error& e) {
            why = e.what();
        }
        if (!why.empty())
            fail(error::server_error, "migrating slot " + std::to_string(slot) + " from " +
                                          name(*this, from) + " to " + name(*this, to) +
                                          ": MIGRATE: " + why);
    }
}

void embedded_cluster::finish_migration(std::uint16_t slot, std::size_t to) {
    std::vector<std::size_t> order{to};
    if (const auto migration = migrations_.find(slot); migration != migrations_.end()) {
        const auto [from, target] = migration->second;
        order.push_back(to == from ? target : from);
    }
    for (const std::size_t master : masters())
        if (std::find(order.begin(), order.end(), master) == order.end()) order.push_back(master);
    for (const std::size_t i : order)
        run(*this, i, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", ids_.at(to)});
    migrations_.erase(slot);
    wait_until_ok(options_.start_timeout);
}

std::size_t embedded_cluster::kill_master_and_wait_failover(std::size_t master,
                                                            std::chrono::milliseconds timeout) {
    if (!node(master).running() || !own_line(*this, master).has("master"))
        throw std::invalid_argument("embedded_cluster: " + name(*this, master) +
                                    " is not a running master");
    const auto candidates = replicas_of(master);
    if (candidates.empty())
        throw std::invalid_argument("embedded_cluster: " + name(*this, master) +
                                    " has no running replica to fail over to");

    const auto deadline = steady_clock::now() + timeout;
    node(master).kill();
    std::size_t promoted = size();
    wait_for("no replica of " + name(*this, master) + " took over", until(deadline),
             [&]() -> std::string {
                 for (const std::size_t replica : candidates)
                     if (own_line(*this, replica).has("master")) {
                         promoted = replica;
                         return {};
                     }
                 return "no replica says it is a master yet";
             });
    wait_until_ok(until(deadline));
    return promoted;
}

void embedded_cluster::restart_node(std::size_t i, std::chrono::milliseconds timeout) {
    node(i).start();
    wait_until_ok(timeout);
}

std::string embedded_cluster::command(std::size_t i, const std::vector<std::string>& args) const {
    auto client = open(*this, i);
    return client.call(args).to_text();
}

} // namespace akv::testing
