// akv::testing::embedded_cluster: a private Redis Cluster of redis-server child processes on
// 127.0.0.1, for tests. Synchronous and blocking; plain POSIX, no Asio, no redis-cli.
#pragma once

#include <akv/testing/embedded_server.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace akv {
struct config;   // akv/config.hpp
struct endpoint; // akv/config.hpp
} // namespace akv

namespace akv::testing {

struct embedded_cluster_options {
    std::size_t masters = 3;             // at least 1; the slots are split evenly among them
    std::size_t replicas_per_master = 1; // attached and in sync before the constructor returns
    // cluster-node-timeout: a killed master is failed over after about this plus an election.
    std::chrono::milliseconds node_timeout{1000};
    bool append_only = false;            // on every node, see embedded_server_options
    std::string password;                // requirepass and masterauth on every node
    std::vector<std::string> extra_args; // appended to every node's command line (TLS, ...)
    // Every node also serves clients over TLS on a port of its own (tls_port(i), tls_seeds()),
    // with the certificate and key below (the CA verifies the nodes to one another). The
    // fixture itself still talks plain TCP to each node's port(). The cluster bus and
    // replication use TLS too (--tls-cluster yes, --tls-replication yes): Redis 7.0 gives
    // CLUSTER SHARDS a "tls-port" only with tls-cluster on, so a client could not find the TLS
    // ports otherwise. Clients need no certificate (--tls-auth-clients no; extra_args may say
    // otherwise). Empty file names: none are passed, extra_args must give them.
    bool tls_port = false;
    std::string tls_cert_file;
    std::string tls_key_file;
    std::string tls_ca_cert_file;
    std::chrono::milliseconds start_timeout{20000}; // until the cluster is ok
    std::string executable = "redis-server";        // 7.0 or later
};

// Nodes 0 .. masters-1 start as the masters, in slot order; the replicas of master m are the
// next replicas_per_master nodes after all masters (with one replica each: m + masters).
//
// The constructor returns when every node says cluster_state:ok, every node's CLUSTER SLOTS is
// the same (owners and replicas), and every replica's link to its master is up. A Redis master
// refuses to call the cluster ok in the first 2 s after it starts (CLUSTER_WRITABLE_DELAY), so
// that is the least a start takes.
//
// Failures throw boost::system::system_error: error::server_start_failed from the constructor,
// error::timeout when a wait runs out, error::server_error when a node refuses a command; the
// message says which node and what it answered last.
//
// As with embedded_server, the processes die with the thread that created the cluster.
class embedded_cluster {
public:
    explicit embedded_cluster(embedded_cluster_options options = {});

    // Stops every node (SIGTERM, then SIGKILL after a grace) and removes their data. Never
    // throws.
    ~embedded_cluster();

    embedded_cluster(const embedded_cluster&) = delete;
    embedded_cluster& operator=(const embedded_cluster&) = delete;

    std::size_t size() const { return nodes_.size(); }
    embedded_server& node(std::size_t i) { return *nodes_.at(i); }
    const embedded_server& node(std::size_t i) const { return *nodes_.at(i); }
    const std::string& node_id(std::size_t i) const { return ids_.at(i); } // its 40-hex name
    // The node listening on `port`; throws std::out_of_range if none of ours does.
    std::size_t index_of_port(std::uint16_t port) const;

    std::vector<endpoint> seeds() const; // every node, running or not, as 127.0.0.1:port
    // With options.tls_port: every node's TLS endpoint, 127.0.0.1:tls_port(i); else empty.
    std::vector<endpoint> tls_seeds() const;
    std::uint16_t tls_port(std::size_t i) const { return node(i).tls_port(); } // 0 if no TLS
    akv::config config() const;          // topology cluster, hosts = seeds(), password

    // The node serving `slot` as master, as a running node's CLUSTER SLOTS says now.
    std::size_t master_of(std::uint16_t slot) const;
    // Running nodes that are masters, and running nodes replicating `master`, each as the node
    // itself says (CLUSTER NODES "myself"), in index order.
    std::vector<std::size_t> masters() const;
    std::vector<std::size_t> replicas_of(std::size_t master) const;

    // Blocks until every running node says cluster_state:ok, all of them return the same
    // CLUSTER SLOTS (covering every slot, with running masters), and every running replica's
    // master link is up.
    void wait_until_ok(std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

    // A live slot migration in the steps a test may want to interleave with its load:
    // SETSLOT IMPORTING on `to`, then SETSLOT MIGRATING on `from`.
    void begin_migration(std::uint16_t slot, std::size_t from, std::size_t to);
    // Moves every key of the slot from the source to the target of the begun migration with
    // GETKEYSINSLOT + MIGRATE ... KEYS, `batch` keys at a time, until the source has none left;
    // returns how many keys it moved (a batch that another client deleted meanwhile, NOKEY, is
    // not counted).
    // A key that already exists on the target is an error (no REPLACE).
    std::size_t migrate_keys(std::uint16_t slot, std::size_t batch = 100);
    // SETSLOT NODE `to` on the target, the source and then the other masters (the order the
    // Redis docs give), then wait_until_ok(). `to` may differ from the begun migration's target
    // only to roll it back to the source.
    void finish_migration(std::uint16_t slot, std::size_t to);

    // SIGKILLs the master, waits until one of its replicas has taken over its slots and the
    // cluster is ok again; returns that replica's index. Throws std::invalid_argument if the
    // node is not a running master with a running replica.
    std::size_t
    kill_master_and_wait_failover(std::size_t master,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(20));

    // Starts a stopped node again (same port, data directory and nodes.conf, so it rejoins: a
    // former master comes back as a replica of whoever took over) and waits until it is
    // attached and the cluster is ok.
    void restart_node(std::size_t i, std::chrono::milliseconds timeout = std::chrono::seconds(20));

    // One command to node i over a fresh connection (authenticated), for tests. The reply as
    // text: a bulk string as its contents, nil as "(nil)", any other scalar as the server sent
    // it ("+OK", "-MOVED 3999 127.0.0.1:7001", ":1"), an array as its elements in that form, one
    // per line. An error reply is returned, not thrown; a connection failure throws.
    std::string command(std::size_t i, const std::vector<std::string>& args) const;

    const embedded_cluster_options& options() const { return options_; }

private:
    void start_nodes();
    void join(std::chrono::steady_clock::time_point deadline);
    void stop_all() noexcept;

    embedded_cluster_options options_;
    std::vector<std::unique_ptr<embedded_server>> nodes_;
    std::vector<std::string> ids_;
    std::map<std::uint16_t, std::pair<std::size_t, std::size_t>> migrations_; // slot: from, to
};

} // namespace akv::testing
