#include <akv/config.hpp>
#include <akv/error.hpp>
#include <akv/testing/embedded_sentinel.hpp>

#include "sentinel/replies.hpp"
#include "sync_resp.hpp"

#include <stdlib.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

namespace akv::testing {
namespace {

using namespace std::chrono_literals;
using steady_clock = std::chrono::steady_clock;
using detail::sync_client;
using detail::sync_reply;

constexpr auto poll_interval = 10ms;
constexpr std::chrono::milliseconds command_timeout = 2s; // one round trip to a local process

[[noreturn]] void fail(error e, const std::string& what) {
    throw_error(e, "embedded_sentinel: " + what);
}

std::string make_temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string path = std::string(base && *base ? base : "/tmp") + "/akv-sentinel-XXXXXX";
    if (!::mkdtemp(path.data())) fail(error::server_start_failed, "mkdtemp " + path + " failed");
    return path;
}

// A config-file argument in double quotes, so a password may hold spaces or quotes.
std::string conf_arg(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string port_text(std::uint16_t port) {
    return "127.0.0.1:" + std::to_string(port);
}

// The value of `key` in an INFO text ("key:value\r\n"); empty if absent.
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

// The value of `name` in a sentinel's flat field/value array (SENTINEL MASTER, one entry of
// SENTINEL REPLICAS); empty if absent.
std::string field(const sync_reply& fields, std::string_view name) {
    for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2)
        if (fields.elements[i].text == name) return fields.elements[i + 1].text;
    return {};
}

using sentinel::has_flag;

std::optional<endpoint> to_endpoint(const sync_reply& reply) {
    if (reply.type != sync_reply::kind::array || reply.elements.size() != 2) return std::nullopt;
    std::uint16_t port = 0;
    const std::string& text = reply.elements[1].text;
    std::from_chars(text.data(), text.data() + text.size(), port);
    if (port == 0) return std::nullopt;
    return endpoint{reply.elements[0].text, port};
}

// One command on a fresh connection, after AUTH when there is a password.
sync_reply call(std::uint16_t port, const std::string& password,
                const std::vector<std::string>& args) {
    sync_client client(port, command_timeout);
    if (!password.empty()) client.call_ok({"AUTH", password});
    return client.call(args);
}

// The --tls-* arguments of a data node or sentinel of a TLS deployment.
std::vector<std::string> tls_args(const embedded_sentinel_options& o) {
    std::vector<std::string> args{"--tls-replication", "yes", "--tls-auth-clients", "no"};
    const std::pair<const char*, const std::string*> files[] = {
        {"--tls-cert-file", &o.tls_cert_file},
        {"--tls-key-file", &o.tls_key_file},
        {"--tls-ca-cert-file", &o.tls_ca_cert_file}};
    for (const auto& [flag, file] : files)
        if (!file->empty()) args.insert(args.end(), {flag, *file});
    return args;
}

void pause_until(steady_clock::time_point deadline) {
    std::this_thread::sleep_for(
        std::min<steady_clock::duration>(poll_interval, deadline - steady_clock::now()));
}

} // namespace

embedded_sentinel::embedded_sentinel(embedded_sentinel_options options)
    : options_(std::move(options)) {
    if (options_.sentinels == 0)
        throw std::invalid_argument("embedded_sentinel: at least one sentinel is needed");
    if (options_.quorum == 0) options_.quorum = options_.sentinels / 2 + 1;
    const auto deadline = steady_clock::now() + options_.start_timeout;
    base_dir_ = make_temp_dir();
    try {
        const auto data_node = [this](std::vector<std::string> extra) {
            embedded_server_options o;
            o.executable = options_.executable;
            o.password = options_.password;
            o.start_timeout = options_.start_timeout;
            if (options_.tls_port) {
                // Replication over TLS: a replica then announces its TLS port to the master,
                // which is what the sentinels learn from the master's INFO.
                o.tls_port = true;
                const auto tls = tls_args(options_);
                extra.insert(extra.end(), tls.begin(), tls.end());
            }
            // Every node may become a replica after a failover: each knows the password.
            if (!options_.password.empty())
                extra.insert(extra.end(), {"--masterauth", options_.password});
            // A full sync starts at once, not after the default 5 s wait for more replicas.
            extra.insert(extra.end(), {"--repl-diskless-sync-delay", "0"});
            o.extra_args = std::move(extra);
            return std::make_unique<embedded_server>(std::move(o));
        };
        master_ = data_node({});
        // With TLS, the replicas follow and the sentinels monitor the master's TLS port.
        const std::uint16_t master_port =
            options_.tls_port ? master_->tls_port() : master_->port();
        for (std::size_t i = 0; i < options_.replicas; ++i)
            replicas_.push_back(
                data_node({"--replicaof", "127.0.0.1", std::to_string(master_port)}));
        wait_until_replicas_synced(deadline);
        for (std::size_t i = 0; i < options_.sentinels; ++i)
            sentinels_.push_back(start_sentinel(i, master_port));
        wait_until_ready(std::max(
            0ms, std::chrono::ceil<std::chrono::milliseconds>(deadline - steady_clock::now())));
    } catch (...) {
        sentinels_.clear();
        replicas_.clear();
        master_.reset();
        std::error_code ignored;
        std::filesystem::remove_all(base_dir_, ignored);
        throw;
    }
}

embedded_sentinel::~embedded_sentinel() {
    sentinels_.clear();
    replicas_.clear();
    master_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(base_dir_, ignored);
}

std::unique_ptr<embedded_server> embedded_sentinel::start_sentinel(std::size_t i,
                                                                   std::uint16_t master_port) {
    const std::string dir = base_dir_ + "/sentinel-" + std::to_string(i);
    std::filesystem::create_directories(dir);
    const std::string conf_path = dir + "/sentinel.conf";
    {
        std::ofstream conf(conf_path);
        const std::string& name = options_.master_name;
        conf << "sentinel monitor " << conf_arg(name) << " 127.0.0.1 " << master_port << ' '
             << options_.quorum << '\n';
        conf << "sentinel down-after-milliseconds " << conf_arg(name) << ' '
             << options_.down_after.count() << '\n';
        conf << "sentinel failover-timeout " << conf_arg(name) << ' '
             << options_.failover_timeout.count() << '\n';
        conf << "sentinel parallel-syncs " << conf_arg(name) << " 1\n";
        if (!options_.password.empty())
            conf << "sentinel auth-pass " << conf_arg(name) << ' ' << conf_arg(options_.password)
                 << '\n';
        // Sentinels talk to each other too (failure votes): with the password they ask of
        // clients.
        if (!options_.sentinel_password.empty())
            conf << "sentinel sentinel-pass " << conf_arg(options_.sentinel_password) << '\n';
        if (!conf.flush()) fail(error::server_start_failed, "cannot write " + conf_path);
    }
    embedded_server_options o;
    o.executable = options_.executable;
    o.config_file = conf_path;
    o.data_dir = dir;
    o.unix_socket = false;
    o.password = options_.sentinel_password; // requirepass
    o.start_timeout = options_.start_timeout;
    o.extra_args = {"--sentinel"};
    if (options_.tls_port) {
        // The sentinel serves clients on a TLS port too, and with tls-replication it reaches
        // the data nodes and the other sentinels over TLS and announces its TLS port to them.
        o.tls_port = true;
        const auto tls = tls_args(options_);
        o.extra_args.insert(o.extra_args.end(), tls.begin(), tls.end());
    }
    return std::make_unique<embedded_server>(std::move(o));
}

embedded_server& embedded_sentinel::node_at(const endpoint& ep) {
    const std::uint16_t port = plain_port(ep.port);
    if (master_ && master_->port() == port) return *master_;
    for (auto& r : replicas_)
        if (r->port() == port) return *r;
    throw std::out_of_range("embedded_sentinel: no data node on " + ep.host + ":" +
                            std::to_string(ep.port));
}

std::vector<endpoint> embedded_sentinel::sentinel_endpoints() const {
    std::vector<endpoint> out;
    for (const auto& s : sentinels_)
        out.push_back(endpoint{s->host(), s->port()});
    return out;
}

std::uint16_t embedded_sentinel::plain_port(std::uint16_t port) const {
    if (!options_.tls_port || port == 0) return port;
    if (master_ && master_->tls_port() == port) return master_->port();
    for (const auto& r : replicas_)
        if (r->tls_port() == port) return r->port();
    return port;
}

std::vector<endpoint> embedded_sentinel::tls_sentinel_endpoints() const {
    std::vector<endpoint> out;
    if (!options_.tls_port) return out;
    for (const auto& s : sentinels_)
        out.push_back(endpoint{s->host(), s->tls_port()});
    return out;
}

akv::config embedded_sentinel::tls_config(const std::string& ca_file) const {
    if (!options_.tls_port)
        throw std::logic_error("embedded_sentinel::tls_config: options.tls_port is off");
    akv::config c = config();
    c.hosts = tls_sentinel_endpoints();
    c.use_tls = true;
    c.tls.ca_file = ca_file.empty() ? options_.tls_ca_cert_file : ca_file;
    c.tls.verify_peer = true;
    return c;
}

akv::config embedded_sentinel::config() const {
    akv::config c;
    c.topology = config::mode::sentinel;
    c.hosts = sentinel_endpoints();
    c.master_name = options_.master_name;
    c.password = options_.password;
    c.sentinel_password = options_.sentinel_password;
    return c;
}

std::string embedded_sentinel::sentinel_command(std::size_t i,
                                                const std::vector<std::string>& args) const {
    return call(sentinels_.at(i)->port(), options_.sentinel_password, args).to_text();
}

std::string embedded_sentinel::node_command(const endpoint& node,
                                            const std::vector<std::string>& args) const {
    return call(plain_port(node.port), options_.password, args).to_text();
}

endpoint embedded_sentinel::current_master() const {
    std::string reports;
    for (const auto& s : sentinels_) {
        if (!s->running()) continue;
        try {
            const sync_reply reply =
                call(s->port(), options_.sentinel_password,
                     {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", options_.master_name});
            if (auto master = to_endpoint(reply)) return *master;
            reports += "; " + port_text(s->port()) + ": " + reply.to_text();
        } catch (const std::exception& e) {
            reports += std::string("; ") + e.what();
        }
    }
    fail(error::server_error,
         "no sentinel names master \"" + options_.master_name + "\"" + reports);
}

void embedded_sentinel::wait_until_replicas_synced(steady_clock::time_point deadline) const {
    std::string last;
    for (;;) {
        try {
            std::size_t synced = 0;
            for (const auto& r : replicas_) {
                const auto info = call(r->port(), options_.password, {"INFO", "replication"});
                if (info_field(info.text, "master_link_status") == "up")
                    ++synced;
                else
                    last = port_text(r->port()) +
                           " master_link_status:" + info_field(info.text, "master_link_status");
            }
            if (synced == replicas_.size()) return;
        } catch (const std::exception& e) {
            last = e.what();
        }
        if (steady_clock::now() >= deadline)
            fail(error::timeout, "replicas not in sync with the master in time (" + last + ")");
        pause_until(deadline);
    }
}

void embedded_sentinel::wait_until_ready(std::chrono::milliseconds timeout) const {
    const auto deadline = steady_clock::now() + timeout;
    std::size_t running_sentinels = 0;
    for (const auto& s : sentinels_)
        running_sentinels += s->running() ? 1 : 0;
    std::size_t data_nodes = master_ && master_->running() ? 1 : 0;
    for (const auto& r : replicas_)
        data_nodes += r->running() ? 1 : 0;
    const std::size_t expected_replicas = data_nodes > 0 ? data_nodes - 1 : 0;

    // Empty when sentinel `s` sees everything; otherwise what it lacks.
    const auto lacks = [&](const embedded_server& s, std::optional<endpoint>& master) {
        const std::string& name = options_.master_name;
        const std::string& pw = options_.sentinel_password;
        const std::string who = "sentinel " + port_text(s.port()) + ": ";
        const auto addr = call(s.port(), pw, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", name});
        const auto here = to_endpoint(addr);
        if (!here) return who + "master address " + addr.to_text();
        if (master && *master != *here)
            return who + "names master " + port_text(here->port) + ", another names " +
                   port_text(master->port);
        master = here;
        const auto m = call(s.port(), pw, {"SENTINEL", "MASTER", name});
        if (m.is_error()) return who + m.to_text();
        if (field(m, "flags") != "master") return who + "master flags " + field(m, "flags");
        if (field(m, "num-other-sentinels") != std::to_string(running_sentinels - 1))
            return who + "sees " + field(m, "num-other-sentinels") + " other sentinels";
        const auto replicas = call(s.port(), pw, {"SENTINEL", "REPLICAS", name});
        std::size_t healthy = 0;
        for (const auto& r : replicas.elements) {
            const std::string flags = field(r, "flags");
            if (has_flag(flags, "s_down") || has_flag(flags, "o_down") ||
                has_flag(flags, "disconnected") || field(r, "role-reported") != "slave" ||
                field(r, "master-link-status") != "ok")
                continue;
            ++healthy;
        }
        if (healthy != expected_replicas)
            return who + "sees " + std::to_string(healthy) + " healthy replicas of " +
                   std::to_string(expected_replicas);
        return std::string();
    };

    std::string last;
    for (;;) {
        last.clear();
        try {
            std::optional<endpoint> master;
            for (const auto& s : sentinels_) {
                if (!s->running()) continue;
                last = lacks(*s, master);
                if (!last.empty()) break;
            }
            if (last.empty() && master) {
                const auto role =
                    call(plain_port(master->port), options_.password, {"ROLE"});
                if (role.elements.empty() || role.elements[0].text != "master")
                    last = "master " + port_text(master->port) + " has role " + role.to_text();
            }
        } catch (const std::exception& e) {
            last = e.what();
        }
        if (last.empty()) return;
        if (steady_clock::now() >= deadline)
            fail(error::timeout, "sentinels not ready within " + std::to_string(timeout.count()) +
                                     " ms (" + last + ")");
        pause_until(deadline);
    }
}

endpoint embedded_sentinel::failover(std::chrono::milliseconds timeout) {
    const auto deadline = steady_clock::now() + timeout;
    const endpoint old = current_master();
    std::size_t asked = sentinels_.size();
    for (std::size_t i = 0; i < sentinels_.size(); ++i)
        if (sentinels_[i]->running()) {
            asked = i;
            break;
        }
    if (asked == sentinels_.size()) fail(error::server_error, "failover: no sentinel is running");
    // NOGOODSLAVE: the sentinel has not yet seen a replica it trusts (its INFO is too old);
    // INPROG: a failover is already under way, which is as good.
    for (;;) {
        const std::string reply =
            sentinel_command(asked, {"SENTINEL", "FAILOVER", options_.master_name});
        if (reply == "+OK" || reply.starts_with("-INPROG")) break;
        if (!reply.starts_with("-NOGOODSLAVE") || steady_clock::now() >= deadline)
            fail(error::server_error, "SENTINEL FAILOVER: " + reply);
        pause_until(deadline);
    }
    std::string last;
    for (;;) {
        try {
            std::optional<endpoint> agreed;
            last.clear();
            for (const auto& s : sentinels_) {
                if (!s->running()) continue;
                const auto addr =
                    call(s->port(), options_.sentinel_password,
                         {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", options_.master_name});
                const auto here = to_endpoint(addr);
                if (!here || *here == old || (agreed && *agreed != *here)) {
                    last = "sentinel " + port_text(s->port()) + " names " + addr.to_text();
                    break;
                }
                agreed = here;
            }
            if (last.empty() && agreed) {
                const auto role =
                    call(plain_port(agreed->port), options_.password, {"ROLE"});
                if (!role.elements.empty() && role.elements[0].text == "master") return *agreed;
                last = "new master " + port_text(agreed->port) + " has role " + role.to_text();
            }
        } catch (const std::exception& e) {
            last = e.what();
        }
        if (steady_clock::now() >= deadline)
            fail(error::timeout, "failover of " + port_text(old.port) + " not done within " +
                                     std::to_string(timeout.count()) + " ms (" + last + ")");
        pause_until(deadline);
    }
}

} // namespace akv::testing
