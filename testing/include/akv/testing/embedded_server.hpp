// akv::testing::embedded_server: a private redis-server child process, for tests and as the
// default server of the bundled apps. Synchronous and blocking; plain POSIX, no Asio.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace akv {
struct config; // akv/config.hpp
} // namespace akv

namespace akv::testing {

struct embedded_server_options {
    std::string executable = "redis-server"; // a name is looked up in PATH, a path is used as is
    bool append_only = false; // AOF with appendfsync always: SIGKILL loses no acknowledged write
    std::string password;     // requirepass; empty: none
    std::vector<std::string> extra_args; // appended to the command line: {"--maxmemory", "100mb"}
    std::chrono::milliseconds start_timeout{10000}; // until the server answers PING
    std::uint16_t port = 0;                         // 0: a free loopback port
    std::string data_dir;    // empty: a fresh temporary directory, removed on destruction
    bool unix_socket = true; // also listen on <data_dir>/redis.sock
    // A Redis Cluster node: --cluster-enabled yes, its nodes.conf in data_dir, and the cluster
    // bus on a second free loopback port (cluster_bus_port()). Joining it to others is up to the
    // caller (embedded_cluster does).
    bool cluster_enabled = false;
    // Also listen for TLS on a further free loopback port (tls_port()), --tls-port. The
    // certificate, key and other --tls-* settings come from extra_args. Picked again, like the
    // other ports, when a start finds a port taken; kept across stop()/start().
    bool tls_port = false;
    // A configuration file, first on the command line; the other options still apply over it.
    // A sentinel needs one it may rewrite (embedded_sentinel writes it, with --sentinel
    // in extra_args). Empty: none.
    std::string config_file;
};

// The server runs as a child of this process, in its process group (Ctrl-C reaches it too), and
// dies with the thread that started it (PR_SET_PDEATHSIG), so a crashed test leaves no orphan:
// create it from a thread that outlives it.
//
// Start failures throw boost::system::system_error with error::server_start_failed and a message
// giving the reason and the tail of the server's log.
class embedded_server {
public:
    // Starts the server and waits until it answers PING.
    explicit embedded_server(embedded_server_options options = {});

    // stop(), then removes the data directory if it is a temporary one. Never throws.
    ~embedded_server();

    embedded_server(const embedded_server&) = delete;
    embedded_server& operator=(const embedded_server&) = delete;

    std::uint16_t port() const { return port_; }
    std::uint16_t cluster_bus_port() const { return cluster_bus_port_; } // 0 unless a cluster node
    std::uint16_t tls_port() const { return tls_port_; } // 0 unless options.tls_port
    std::string host() const { return "127.0.0.1"; }
    std::string unix_socket_path() const; // empty if options.unix_socket is off
    std::string url() const;              // "redis://127.0.0.1:PORT", "redis://:PASSWORD@..."
    akv::config config() const;           // hosts = {host():port()}, password
    const std::string& data_dir() const { return data_dir_; }

    int pid() const { return pid_; } // -1 when stopped
    bool running() const;            // false once the process has exited, even if not yet reaped

    // SIGTERM, a few seconds' grace, then SIGKILL; reaps the child. Idempotent.
    void stop() noexcept;

    // SIGKILL now (a crash); reaps the child. Idempotent.
    void kill() noexcept;

    // Starts the server again on the same port and data directory and waits for PING. Does
    // nothing if it is running.
    void start();

    void restart();

    // The last `lines` lines of <data_dir>/redis.log (the server's log and its stdout/stderr).
    std::string log_tail(std::size_t lines = 20) const;

private:
    std::string log_path() const;
    bool launch_and_wait(); // one attempt on port_; false if the port was taken
    bool wait_until_ready(std::uintmax_t log_start);
    void reap() noexcept; // waitpid on pid_ (blocking), then pid_ = -1

    embedded_server_options options_;
    std::string data_dir_;
    bool owns_data_dir_ = false;
    std::uint16_t port_ = 0;
    std::uint16_t cluster_bus_port_ = 0;
    std::uint16_t tls_port_ = 0;
    int pid_ = -1;
};

} // namespace akv::testing
