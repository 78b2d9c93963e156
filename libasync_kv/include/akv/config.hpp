// akv::config: where and how to connect, read from a URL, a JSON file or command-line flags.
#pragma once

#include <akv/resp/limits.hpp>

#include <boost/json/fwd.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace akv {

struct endpoint {
    std::string host;
    std::uint16_t port = 6379;

    bool operator==(const endpoint&) const = default;
};

// "host:port", for messages and as a map key.
std::string to_string(const endpoint& ep);

struct tls_options {
    bool verify_peer = true;
    std::string ca_file;
    std::string ca_dir;
    std::string cert_file;
    std::string key_file;
    std::string server_name; // SNI and the name the certificate is checked against; empty: host
};

// TFRA (TensorFlow Recommenders-Addons) table options; validated now, used by the embedding
// table later.
struct tfra_options {
    int storage_slice = 1;
    std::size_t keys_sending_size = 1024;
    bool using_md5_prefix_name = false;
    std::string model_tag_old;
    std::string model_tag_new;
    std::int64_t expire_model_tag_in_seconds = 604800;
    int table_store_mode = 1; // 0: in the TF checkpoint, 1: rdb files in model_lib_abs_dir, 2: none
    std::string model_lib_abs_dir = "/tmp/";
    bool using_model_lib = false;
};

// Client-side caching: reads that a request opts into (request::options::cache) are answered from
// this process's memory until Redis says their key changed (RESP3 CLIENT TRACKING, on the same
// connection as the reads). Off unless a mode is set.
struct cache_options {
    enum class mode {
        off,
        tracking,  // Redis remembers the keys this connection read and tells when they change
        broadcast, // BCAST: told about every key under `prefixes`, read or not (many readers)
        optin,     // OPTIN: only the reads the cache asks to track (CLIENT CACHING yes)
    };
    mode kind = mode::off;
    std::size_t max_bytes = std::size_t{64} << 20; // least recently used entries leave first
    std::chrono::milliseconds ttl{60000};          // an entry's age limit, a safety net; 0: none
    std::vector<std::string> prefixes; // broadcast: the key prefixes tracked (empty: every key)
};

// Every setting has one key name, used alike by JSON, set() and URL query parameters, and most
// also answer to the name TFRA's Redis config file gives them:
//
//   key (JSON, flag, URL query)     TFRA key                         field
//   url                                                              applied before other keys
//   topology                        redis_connection_mode            topology (name or 0..2)
//   hosts                                                            hosts ("h:p,h:p" / array)
//                                   redis_host_ip                    hosts[i].host
//                                   redis_host_port                  hosts[i].port (one: all)
//   unix_socket, use_tls                                             same names
//   tls_verify, ca_file, ca_dir, cert_file, key_file, tls_server_name   tls.*
//   username                        redis_user
//   password                        redis_password
//   db                              redis_db
//   client_name                                                      client_name
//   master_name                     redis_master_name
//   sentinel_username               redis_sentinel_user
//   sentinel_password               redis_sentinel_password
//   connect_timeout_ms              redis_connect_timeout
//   request_timeout_ms              redis_socket_timeout
//   sentinel_connect_timeout_ms     redis_sentinel_connect_timeout
//   sentinel_socket_timeout_ms      redis_sentinel_socket_timeout
//   health_check_interval_ms, reconnect_wait_min_ms, reconnect_wait_max_ms
//   keep_alive                      redis_connect_keep_alive
//   pool_size                       redis_conn_pool_size
//   pool_wait_timeout_ms            redis_wait_timeout
//   connection_lifetime_minutes     redis_connection_lifetime
//   resp_max_depth, resp_max_bulk_length, resp_max_aggregate_length   resp_limits.*
//   push_queue_capacity
//   cluster_max_redirects, read_from_replicas                        same names
//   cache (off, tracking, broadcast, optin), cache_max_bytes, cache_ttl_ms,
//   cache_prefixes ("p1,p2" / array)                                 cache.*
//   cluster_failover_wait_ms                                         cluster_failover_wait
//   storage_slice, keys_sending_size, using_md5_prefix_name, model_tag_old, model_tag_new,
//   expire_model_tag_in_seconds, table_store_mode, model_lib_abs_dir, using_model_lib   tfra.*
//
// Booleans are true/false, 1/0 or yes/no. Errors are boost::system::system_error with
// error::invalid_config (error::invalid_url for a URL) and a message naming the key, the array
// index and the value, e.g. `config: "redis_host_port"[1]: expected a port number, got "63x9"`.
// A password never appears in a message.
struct config {
    enum class mode : int { cluster = 0, sentinel = 1, standalone = 2 }; // TFRA's numbers

    mode topology = mode::standalone;
    std::vector<endpoint> hosts{{"127.0.0.1", 6379}};
    std::string unix_socket; // non-empty: connect to this path instead of hosts
    bool use_tls = false;
    tls_options tls;
    std::string username; // empty: the server's "default" user
    std::string password;
    int db = 0;
    std::string client_name;
    std::string master_name; // sentinel
    std::string sentinel_username;
    std::string sentinel_password;
    std::chrono::milliseconds connect_timeout{1000};
    std::chrono::milliseconds request_timeout{0}; // 0 = none
    std::chrono::milliseconds sentinel_connect_timeout{1000};
    std::chrono::milliseconds sentinel_socket_timeout{1000};
    std::chrono::milliseconds health_check_interval{2000}; // 0 = off
    std::chrono::milliseconds reconnect_wait_min{50};
    std::chrono::milliseconds reconnect_wait_max{2000}; // 0 for both = do not reconnect
    bool keep_alive = false;
    std::size_t pool_size = 4; // blocking-command connections
    std::chrono::milliseconds pool_wait_timeout{100000000};
    std::chrono::minutes connection_lifetime{0}; // 0 = forever
    resp::limits resp_limits;
    std::size_t push_queue_capacity = 8192;
    std::size_t cluster_max_redirects = 16; // MOVED/ASK replies one cluster request may follow
    // How long a cluster request waits for its slot's node to come back or be failed over.
    std::chrono::milliseconds cluster_failover_wait{10000};
    // Cluster: read-only commands go to a replica of the slot's shard. Sentinel: connect to a
    // replica of the master instead of the master.
    bool read_from_replicas = false;
    cache_options cache;
    tfra_options tfra;

    // redis://[user[:password]@]host[:port][,host[:port]...][/db][?key=value&...]
    // redis+cluster://[user[:password]@]host[:port][,host[:port]...][/db][?key=value&...]
    // redis+sentinel://[user[:password]@]host[:port][,host[:port]...]/master_name[/db][?...]
    // unix://[user[:password]@]/path/to/socket[?key=value&...]
    // rediss, rediss+cluster and rediss+sentinel are the same with TLS. Examples:
    //   redis://cache:6380/3                   standalone, db 3
    //   redis://a:7000,b:7001,[::1]:7002?topology=cluster
    //   rediss+cluster://:pw@a:7000,b:7001     cluster over TLS, seed nodes a and b
    //   redis+sentinel://s1:26379,s2:26379/mymaster/0?sentinel_password=spw
    //
    // The hosts are seeds (cluster), sentinels (sentinel) or the server (standalone); a host
    // without a port gets 6379, sentinels too. redis+cluster:// sets topology cluster and
    // redis+sentinel:// topology sentinel (a contradicting ?topology= is an error); redis:// leaves
    // the topology alone, so ?topology=... may set it. A sentinel URL needs the master name, as
    // the first path segment or as ?master_name=; the user and password are those of the master
    // and replicas, while the sentinels' own are the query keys sentinel_username and
    // sentinel_password. User, password, host names and the master name are percent-decoded,
    // an IPv6 host is bracketed ([::1]:6380), and the query takes any key of the table above.
    // The host list begins after the '@', so a ',' in the password may be left as is or written
    // %2C; '@', '/', '?', '#' and '%' in the user or password must be percent-encoded. A list of
    // hosts is not standard URL syntax (Lettuce's redis-sentinel://h1,h2/0#master uses it too),
    // so other tools may not read such a URL.
    static config from_url(std::string_view url);

    // A JSON object of the keys above, applied over the defaults.
    static config from_json(std::string_view json_text);

    // from_json() of a file's contents; errors name the file.
    static config from_json_file(const std::string& path);

    // Merges the object's keys into *this: "url" first, then the others in order, except that
    // "redis_host_port" comes after the host names it is zipped with. On error *this is
    // unchanged.
    void apply_json(const boost::json::object& obj);

    // One key, its value as text (a command-line flag): "hosts" is "h:p,h:p", a TFRA list is
    // comma separated, and '-' may stand for '_' in the key. On error *this is unchanged.
    void set(std::string_view key, std::string_view value);

    // The connection as a URL for logs, the password shown as "***": every host,
    // ?topology=cluster|sentinel and ?master_name=. from_url() reads it back to the same
    // topology, hosts, master name, db and user.
    std::string redacted_url() const;
};

} // namespace akv
