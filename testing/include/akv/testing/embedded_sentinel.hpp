// akv::testing::embedded_sentinel: a private Redis Sentinel deployment of redis-server child
// processes on 127.0.0.1, for tests: one master, its replicas and the sentinels that watch them.
// Synchronous and blocking; plain POSIX, no Asio.
#pragma once

#include <akv/testing/embedded_server.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace akv {
struct config;   // akv/config.hpp
struct endpoint; // akv/config.hpp
} // namespace akv

namespace akv::testing {

struct embedded_sentinel_options {
    std::string master_name = "mymaster";
    std::size_t replicas = 1;  // replicaof the master, in sync before the constructor returns
    std::size_t sentinels = 3; // at least 1
    std::size_t quorum = 0;    // 0: a majority of the sentinels
    // The data nodes' requirepass (and masterauth, so a demoted master can follow the new
    // one); the sentinels get it as auth-pass. Empty: none.
    std::string password;
    // The sentinels' own requirepass (and sentinel-pass, which they use with each other).
    std::string sentinel_password;
    std::chrono::milliseconds down_after{1000};       // down-after-milliseconds
    std::chrono::milliseconds failover_timeout{5000}; // failover-timeout
    std::chrono::milliseconds start_timeout{20000};   // until every sentinel sees everything
    std::string executable = "redis-server";
    // Every data node and every sentinel also serves clients over TLS on a port of its own
    // (embedded_server::tls_port(), tls_sentinel_endpoints()), with the certificate and key
    // below (the CA verifies the processes to one another). Replication and the sentinels' own
    // links (to the data nodes and to each other) use TLS too (--tls-replication yes): the
    // sentinels monitor the master's TLS port, replicas announce theirs, so the addresses a
    // sentinel gives clients (GET-MASTER-ADDR-BY-NAME, REPLICAS, +switch-master) are TLS ports.
    // The fixture itself still talks plain TCP to each process's port(); its methods taking or
    // returning a data node's endpoint accept and give the TLS endpoint then. Clients need no
    // certificate (--tls-auth-clients no). Empty file names: none are passed.
    bool tls_port = false;
    std::string tls_cert_file;
    std::string tls_key_file;
    std::string tls_ca_cert_file;
};

// The processes die with the thread that created the fixture (see embedded_server). Failures
// throw boost::system::system_error: error::server_start_failed from the constructor,
// error::timeout when a wait runs out (the message says what each sentinel reported last),
// error::server_error when a node refuses a command.
class embedded_sentinel {
public:
    // Starts the master and the replicas, waits until the replicas are in sync, then starts the
    // sentinels and waits until wait_until_ready().
    explicit embedded_sentinel(embedded_sentinel_options options = {});

    // Stops the sentinels first (so none fails anything over), then the replicas and the
    // master, and removes the data directories. Never throws.
    ~embedded_sentinel();

    embedded_sentinel(const embedded_sentinel&) = delete;
    embedded_sentinel& operator=(const embedded_sentinel&) = delete;

    const embedded_sentinel_options& options() const { return options_; }

    // The processes as started: master() is the node started as master, whatever its role
    // after a failover; node_at() finds a data node by its endpoint.
    embedded_server& master() { return *master_; }
    embedded_server& replica(std::size_t i) { return *replicas_.at(i); }
    embedded_server& sentinel(std::size_t i) { return *sentinels_.at(i); }
    embedded_server& node_at(const endpoint& ep);
    std::size_t replica_count() const { return replicas_.size(); }
    std::size_t sentinel_count() const { return sentinels_.size(); }

    std::vector<endpoint> sentinel_endpoints() const;
    // With options.tls_port: every sentinel's TLS endpoint, 127.0.0.1:tls_port(); else empty.
    std::vector<endpoint> tls_sentinel_endpoints() const;
    // topology sentinel, hosts = sentinel_endpoints(), master_name, password (data nodes),
    // sentinel_password.
    akv::config config() const;
    // config() over TLS (rediss): hosts = tls_sentinel_endpoints(), use_tls, tls.ca_file =
    // ca_file (empty: options.tls_ca_cert_file), tls.verify_peer. Needs options.tls_port.
    akv::config tls_config(const std::string& ca_file = {}) const;

    // The master as the first running sentinel that answers says (with TLS: its TLS endpoint).
    endpoint current_master() const;

    // SENTINEL FAILOVER, then waits until every running sentinel names the same new master and
    // that node says ROLE master; returns it. The old master becomes a replica later, when a
    // sentinel tells it to (Redis waits a few seconds before it does).
    endpoint failover(std::chrono::milliseconds timeout = std::chrono::seconds(20));

    // Blocks until every running sentinel sees the master up, every replica up and in sync,
    // and every other sentinel.
    void wait_until_ready(std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

    // One command over a fresh authenticated connection; the reply as text as
    // embedded_cluster::command gives it (an error reply is returned, not thrown).
    std::string sentinel_command(std::size_t i, const std::vector<std::string>& args) const;
    std::string node_command(const endpoint& node, const std::vector<std::string>& args) const;

private:
    std::unique_ptr<embedded_server> start_sentinel(std::size_t i, std::uint16_t master_port);
    void wait_until_replicas_synced(std::chrono::steady_clock::time_point deadline) const;
    // The plain port of the data node at `port` (its plain or, with TLS, its TLS port): the
    // port the fixture talks to. `port` itself if no node has it.
    std::uint16_t plain_port(std::uint16_t port) const;

    embedded_sentinel_options options_;
    std::string base_dir_; // the sentinels' directories (config files) live here
    std::unique_ptr<embedded_server> master_;
    std::vector<std::unique_ptr<embedded_server>> replicas_;
    std::vector<std::unique_ptr<embedded_server>> sentinels_;
};

} // namespace akv::testing
