// akv::config parsers. One table of keys (below) with a typed setter each serves JSON, set()
// and URL query parameters alike; setting_value hides where a value came from.
#include <akv/config.hpp>

#include <akv/error.hpp>

#include <boost/json.hpp>
#include <boost/url.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <utility>
#include <variant>

namespace akv {
namespace {

namespace json = boost::json;
namespace urls = boost::urls;

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

// Where the values being applied came from, so that every error names its source:
// `config: `, `config file "app.json": ` or `url "redis://h:99999": `.
struct origin {
    error code;
    std::string prefix;
    std::string_view key_noun = "key"; // "unknown key" / "unknown query key"

    [[noreturn]] void fail(std::string_view what) const {
        throw_error(code, prefix + std::string(what));
    }
};

// Text in JSON's quotes and escapes, so an error shows exactly which characters were wrong.
std::string quoted(std::string_view text) {
    return json::serialize(json::string_view(text.data(), text.size()));
}

bool iequals(std::string_view a, std::string_view b) {
    return std::ranges::equal(
        a, b, [](unsigned char x, unsigned char y) { return std::tolower(x) == std::tolower(y); });
}

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// A command-line flag spells `connect_timeout_ms` as `connect-timeout-ms`.
std::string flag_key(std::string_view key) {
    std::string name(key);
    std::ranges::replace(name, '-', '_');
    return name;
}

std::string range_text(std::int64_t min, std::int64_t max) {
    // The type's own maximum is no limit worth naming.
    if (max == int64_max || max == std::numeric_limits<int>::max())
        return "must be >= " + std::to_string(min);
    return "must be in " + std::to_string(min) + ".." + std::to_string(max);
}

template <class T> constexpr std::int64_t max_of() {
    return static_cast<std::int64_t>(std::min<std::uint64_t>(
        std::numeric_limits<T>::max(), static_cast<std::uint64_t>(int64_max)));
}

// One value for one key: a JSON value, or the text of a flag or URL query parameter. Setters
// read it only through the typed accessors, so the same setter serves every source, and a JSON
// string is read like flag text ("6379" is a port, "true" a boolean).
class setting_value {
public:
    setting_value(const origin& from, std::string path, const json::value& value, bool secret)
        : from_(&from)
        , path_(std::move(path))
        , value_(&value)
        , secret_(secret) {}
    setting_value(const origin& from, std::string path, std::string_view text, bool secret)
        : from_(&from)
        , path_(std::move(path))
        , value_(text)
        , secret_(secret) {}
    // A temporary JSON value (say, one converted from a string) would dangle.
    setting_value(const origin&, std::string, json::value&&, bool) = delete;

    [[noreturn]] void fail(std::string_view what) const {
        from_->fail(path_ + ": " + std::string(what));
    }

    [[noreturn]] void expected(std::string_view what) const {
        fail("expected " + std::string(what) + ", got " + shown());
    }

    // The text of a flag or of a JSON string; nothing for other JSON values.
    std::optional<std::string_view> text() const {
        if (const auto* text = std::get_if<std::string_view>(&value_)) return *text;
        if (const json::string* s = json_value()->if_string()) return std::string_view(*s);
        return std::nullopt;
    }

    std::string string() const {
        if (auto t = text()) return std::string(*t);
        expected("a string");
    }

    bool boolean() const {
        if (const json::value* v = json_value()) {
            if (v->is_bool()) return v->get_bool();
            if (v->is_int64() && (v->get_int64() == 0 || v->get_int64() == 1))
                return v->get_int64() == 1;
            if (v->is_uint64() && v->get_uint64() <= 1) return v->get_uint64() == 1;
        }
        if (auto t = text()) {
            for (std::string_view word : {"true", "1", "yes"})
                if (iequals(*t, word)) return true;
            for (std::string_view word : {"false", "0", "no"})
                if (iequals(*t, word)) return false;
        }
        expected("true or false");
    }

    // An integer in [min, max]; `noun` says what was expected when the value is no integer.
    std::int64_t integer(std::int64_t min, std::int64_t max, std::string_view noun) const {
        std::int64_t n = 0;
        if (const json::value* v = json_value(); v && v->is_int64()) {
            n = v->get_int64();
        } else if (v && v->is_uint64()) {
            fail(shown() + " out of range, " + range_text(min, max)); // beyond int64
        } else if (v && v->is_double()) {
            const double d = v->get_double();
            if (std::trunc(d) != d) expected(noun);
            if (d < -0x1p63 || d >= 0x1p63)
                fail(shown() + " out of range, " + range_text(min, max));
            n = static_cast<std::int64_t>(d);
        } else if (auto t = text()) {
            const char* end = t->data() + t->size();
            const auto [stop, ec] = std::from_chars(t->data(), end, n);
            if (ec == std::errc::result_out_of_range && stop == end)
                fail(shown() + " out of range, " + range_text(min, max));
            if (ec != std::errc() || stop != end) expected(noun);
        } else {
            expected(noun);
        }
        if (n < min || n > max) fail(std::to_string(n) + " out of range, " + range_text(min, max));
        return n;
    }

    template <class T> T number(std::int64_t min, std::int64_t max = max_of<T>()) const {
        return static_cast<T>(integer(min, max, "an integer"));
    }

    std::uint16_t port() const {
        return static_cast<std::uint16_t>(integer(1, 65535, "a port number"));
    }

    std::chrono::milliseconds milliseconds() const {
        return std::chrono::milliseconds{integer(0, int64_max, "a number of milliseconds")};
    }

    std::chrono::minutes minutes() const {
        return std::chrono::minutes{integer(0, int64_max, "a number of minutes")};
    }

    // The elements of a JSON array (any other JSON value is a list of one), or of comma
    // separated text.
    std::vector<setting_value> list() const {
        std::vector<setting_value> items;
        const auto element = [&](std::size_t i) { return path_ + "[" + std::to_string(i) + "]"; };
        if (const json::value* v = json_value(); v && v->is_array()) {
            const json::array& array = v->get_array();
            for (std::size_t i = 0; i < array.size(); ++i)
                items.emplace_back(*from_, element(i), array[i], secret_);
        } else if (const auto* text = std::get_if<std::string_view>(&value_)) {
            std::string_view rest = *text;
            for (std::size_t i = 0;; ++i) {
                const auto comma = rest.find(',');
                items.emplace_back(*from_, element(i), trim(rest.substr(0, comma)), secret_);
                if (comma == std::string_view::npos) break;
                rest.remove_prefix(comma + 1);
            }
        } else {
            items.push_back(*this);
        }
        return items;
    }

    const json::object* object() const {
        const json::value* v = json_value();
        return v ? v->if_object() : nullptr;
    }

    // A field of this JSON object, or another text standing for this value (the port of
    // "host:port"): errors keep naming this key.
    setting_value member(std::string_view name, const json::value& value) const {
        return {*from_, path_ + "." + std::string(name), value, secret_};
    }
    setting_value part(std::string_view text) const { return {*from_, path_, text, secret_}; }

private:
    const json::value* json_value() const {
        const auto* v = std::get_if<const json::value*>(&value_);
        return v ? *v : nullptr;
    }

    // The value as written, for an error message; a secret's value is only described.
    std::string shown() const {
        const json::value* v = json_value();
        if (secret_)
            return v ? std::string(json::to_string(v->kind())) + " (not shown)" : "(not shown)";
        if (!v) return quoted(std::get<std::string_view>(value_));
        std::string text = json::serialize(*v);
        constexpr std::size_t max_shown = 60;
        if (text.size() > max_shown) text = text.substr(0, max_shown) + "...";
        return text;
    }

    const origin* from_;
    std::string path_; // `"redis_host_port"[1]`
    std::variant<const json::value*, std::string_view> value_;
    bool secret_;
};

using value = setting_value;

void merge_url(config& cfg, std::string_view url_text);

void set_db(config& c, const value& v) {
    c.db = v.number<int>(0);
}

// The value `v` names in `names` (any case), if it is text that names one.
template <class T, std::size_t N>
std::optional<T> named(const value& v, const std::pair<std::string_view, T> (&names)[N]) {
    if (auto text = v.text()) {
        for (const auto& [name, t] : names)
            if (iequals(*text, name)) return t;
    }
    return std::nullopt;
}

void set_topology(config& c, const value& v) {
    using enum config::mode;
    static constexpr std::pair<std::string_view, config::mode> names[] = {
        {"cluster", cluster}, {"sentinel", sentinel}, {"standalone", standalone}};
    if (auto mode = named(v, names)) {
        c.topology = *mode;
        return;
    }
    c.topology =
        static_cast<config::mode>(v.integer(0, 2, "cluster, sentinel, standalone or 0..2"));
}

void set_cache_mode(config& c, const value& v) {
    using enum cache_options::mode;
    static constexpr std::pair<std::string_view, cache_options::mode> names[] = {
        {"off", off},          {"tracking", tracking},
        {"default", tracking}, {"broadcast", broadcast},
        {"bcast", broadcast},  {"optin", optin}};
    if (auto mode = named(v, names)) {
        c.cache.kind = *mode;
        return;
    }
    v.expected("off, tracking (or default), broadcast (or bcast) or optin");
}

void set_cache_prefixes(config& c, const value& v) {
    std::vector<std::string> prefixes;
    for (const value& item : v.list()) {
        std::string p = item.string();
        if (p.empty()) item.expected("a non-empty key prefix");
        prefixes.push_back(std::move(p));
    }
    c.cache.prefixes = std::move(prefixes);
}

// "host", "host:port", "[ipv6]:port", a bare IPv6 address, or {"host": ..., "port": ...}.
endpoint parse_endpoint(const value& v) {
    endpoint result;
    if (const json::object* fields = v.object()) {
        for (const json::key_value_pair& field : *fields) {
            const std::string_view name = field.key();
            if (name == "host")
                result.host = v.member(name, field.value()).string();
            else if (name == "port")
                result.port = v.member(name, field.value()).port();
            else
                v.fail("unknown key " + quoted(name));
        }
        if (result.host.empty()) v.fail("missing \"host\"");
        return result;
    }
    const auto text = v.text();
    if (!text) v.expected("\"host:port\" or {\"host\": ..., \"port\": ...}");
    std::string_view host = trim(*text);
    std::string_view port;
    if (host.starts_with('[')) {
        const auto close = host.find(']');
        const std::string_view rest = close == host.npos ? "?" : host.substr(close + 1);
        if (!rest.empty() && !rest.starts_with(':')) v.expected("\"[ipv6]:port\"");
        port = rest.empty() ? rest : rest.substr(1);
        host = host.substr(1, close - 1);
    } else if (const auto colon = host.find(':');
               colon != host.npos && host.find(':', colon + 1) == host.npos) {
        port = host.substr(colon + 1);
        host = host.substr(0, colon);
    } // else a name, or an IPv6 address without a port
    if (host.empty()) v.expected("\"host:port\"");
    result.host = host;
    if (!port.empty()) result.port = v.part(port).port();
    return result;
}

void set_hosts(config& c, const value& v) {
    std::vector<endpoint> hosts;
    for (const value& item : v.list())
        hosts.push_back(parse_endpoint(item));
    if (hosts.empty()) v.fail("expected at least one host");
    c.hosts = std::move(hosts);
}

// TFRA gives hosts as two lists zipped together. A name keeps the port already at its index
// when the lists have the same length, else takes the first host's port; apply_json sets
// redis_host_port after this key anyway.
void set_host_names(config& c, const value& v) {
    const std::vector<value> items = v.list();
    std::vector<endpoint> hosts;
    for (std::size_t i = 0; i < items.size(); ++i) {
        std::string name = items[i].string();
        if (name.empty()) items[i].expected("a host name");
        const std::uint16_t port = c.hosts.size() == items.size() ? c.hosts[i].port
                                   : c.hosts.empty()              ? endpoint{}.port
                                                                  : c.hosts.front().port;
        hosts.push_back({std::move(name), port});
    }
    if (hosts.empty()) v.fail("expected at least one host");
    c.hosts = std::move(hosts);
}

void set_host_ports(config& c, const value& v) {
    std::vector<std::uint16_t> ports;
    for (const value& item : v.list())
        ports.push_back(item.port());
    if (ports.size() == 1) {
        for (endpoint& host : c.hosts)
            host.port = ports.front();
    } else if (ports.size() == c.hosts.size()) {
        for (std::size_t i = 0; i < ports.size(); ++i)
            c.hosts[i].port = ports[i];
    } else {
        v.fail(std::to_string(ports.size()) + " ports for " + std::to_string(c.hosts.size()) +
               " hosts: give one port for all hosts, or one per host");
    }
}

using setter = void (*)(config&, const value&);

struct key_info {
    std::string_view name;
    std::string_view tfra_name; // the same setting in TFRA's Redis config, if it has one
    setter set;
    bool secret = false; // the value never appears in an error message
    int order = 1;       // apply_json applies lower orders first
};

constexpr int before_others = 0;
constexpr int after_others = 2;

// The one table of keys (documented in config.hpp).
const key_info keys[] = {
    {"url", "", [](config& c, const value& v) { merge_url(c, v.string()); }, true, before_others},
    {"topology", "redis_connection_mode", set_topology},
    {"hosts", "", set_hosts},
    {"redis_host_ip", "", set_host_names},
    {"redis_host_port", "", set_host_ports, false, after_others},
    {"unix_socket", "", [](config& c, const value& v) { c.unix_socket = v.string(); }},
    {"use_tls", "", [](config& c, const value& v) { c.use_tls = v.boolean(); }},
    {"tls_verify", "", [](config& c, const value& v) { c.tls.verify_peer = v.boolean(); }},
    {"ca_file", "", [](config& c, const value& v) { c.tls.ca_file = v.string(); }},
    {"ca_dir", "", [](config& c, const value& v) { c.tls.ca_dir = v.string(); }},
    {"cert_file", "", [](config& c, const value& v) { c.tls.cert_file = v.string(); }},
    {"key_file", "", [](config& c, const value& v) { c.tls.key_file = v.string(); }},
    {"tls_server_name", "", [](config& c, const value& v) { c.tls.server_name = v.string(); }},
    {"username", "redis_user", [](config& c, const value& v) { c.username = v.string(); }},
    {"password", "redis_password", [](config& c, const value& v) { c.password = v.string(); },
     true},
    {"db", "redis_db", set_db},
    {"client_name", "", [](config& c, const value& v) { c.client_name = v.string(); }},
    {"master_name", "redis_master_name",
     [](config& c, const value& v) { c.master_name = v.string(); }},
    {"sentinel_username", "redis_sentinel_user",
     [](config& c, const value& v) { c.sentinel_username = v.string(); }},
    {"sentinel_password", "redis_sentinel_password",
     [](config& c, const value& v) { c.sentinel_password = v.string(); }, true},
    {"connect_timeout_ms", "redis_connect_timeout",
     [](config& c, const value& v) { c.connect_timeout = v.milliseconds(); }},
    {"request_timeout_ms", "redis_socket_timeout",
     [](config& c, const value& v) { c.request_timeout = v.milliseconds(); }},
    {"sentinel_connect_timeout_ms", "redis_sentinel_connect_timeout",
     [](config& c, const value& v) { c.sentinel_connect_timeout = v.milliseconds(); }},
    {"sentinel_socket_timeout_ms", "redis_sentinel_socket_timeout",
     [](config& c, const value& v) { c.sentinel_socket_timeout = v.milliseconds(); }},
    {"health_check_interval_ms", "",
     [](config& c, const value& v) { c.health_check_interval = v.milliseconds(); }},
    {"reconnect_wait_min_ms", "",
     [](config& c, const value& v) { c.reconnect_wait_min = v.milliseconds(); }},
    {"reconnect_wait_max_ms", "",
     [](config& c, const value& v) { c.reconnect_wait_max = v.milliseconds(); }},
    {"keep_alive", "redis_connect_keep_alive",
     [](config& c, const value& v) { c.keep_alive = v.boolean(); }},
    {"pool_size", "redis_conn_pool_size",
     [](config& c, const value& v) { c.pool_size = v.number<std::size_t>(1); }},
    {"pool_wait_timeout_ms", "redis_wait_timeout",
     [](config& c, const value& v) { c.pool_wait_timeout = v.milliseconds(); }},
    {"connection_lifetime_minutes", "redis_connection_lifetime",
     [](config& c, const value& v) { c.connection_lifetime = v.minutes(); }},
    {"resp_max_depth", "",
     [](config& c, const value& v) { c.resp_limits.max_depth = v.number<std::size_t>(1); }},
    {"resp_max_bulk_length", "",
     [](config& c, const value& v) { c.resp_limits.max_bulk_length = v.number<std::size_t>(0); }},
    {"resp_max_aggregate_length", "",
     [](config& c, const value& v) {
         c.resp_limits.max_aggregate_length = v.number<std::size_t>(0);
     }},
    {"push_queue_capacity", "",
     [](config& c, const value& v) { c.push_queue_capacity = v.number<std::size_t>(1); }},
    {"cluster_max_redirects", "",
     [](config& c, const value& v) { c.cluster_max_redirects = v.number<std::size_t>(1); }},
    {"cluster_failover_wait_ms", "",
     [](config& c, const value& v) { c.cluster_failover_wait = v.milliseconds(); }},
    {"read_from_replicas", "",
     [](config& c, const value& v) { c.read_from_replicas = v.boolean(); }},
    {"cache", "", set_cache_mode},
    {"cache_max_bytes", "",
     [](config& c, const value& v) { c.cache.max_bytes = v.number<std::size_t>(1); }},
    {"cache_ttl_ms", "", [](config& c, const value& v) { c.cache.ttl = v.milliseconds(); }},
    {"cache_prefixes", "", set_cache_prefixes},
    {"storage_slice", "",
     [](config& c, const value& v) { c.tfra.storage_slice = v.number<int>(1); }},
    {"keys_sending_size", "",
     [](config& c, const value& v) { c.tfra.keys_sending_size = v.number<std::size_t>(1); }},
    {"using_md5_prefix_name", "",
     [](config& c, const value& v) { c.tfra.using_md5_prefix_name = v.boolean(); }},
    {"model_tag_old", "", [](config& c, const value& v) { c.tfra.model_tag_old = v.string(); }},
    {"model_tag_new", "", [](config& c, const value& v) { c.tfra.model_tag_new = v.string(); }},
    {"expire_model_tag_in_seconds", "",
     [](config& c, const value& v) {
         c.tfra.expire_model_tag_in_seconds = v.number<std::int64_t>(0);
     }},
    {"table_store_mode", "",
     [](config& c, const value& v) { c.tfra.table_store_mode = v.number<int>(0, 2); }},
    {"model_lib_abs_dir", "",
     [](config& c, const value& v) { c.tfra.model_lib_abs_dir = v.string(); }},
    {"using_model_lib", "",
     [](config& c, const value& v) { c.tfra.using_model_lib = v.boolean(); }},
};

const key_info* find_key(std::string_view name) {
    for (const key_info& key : keys) {
        if (key.name == name || (!key.tfra_name.empty() && key.tfra_name == name)) return &key;
    }
    return nullptr;
}

const key_info& lookup(std::string_view name, const origin& from) {
    if (const key_info* key = find_key(name)) return *key;
    from.fail("unknown " + std::string(from.key_noun) + " " + quoted(name));
}

void apply_object(config& cfg, const json::object& obj, const origin& from) {
    struct entry {
        const key_info* key;
        std::string_view name;
        const json::value* value;
    };
    std::vector<entry> entries;
    for (const json::key_value_pair& member : obj) {
        const std::string_view name = member.key();
        const key_info& key = lookup(name, from);
        for (const entry& seen : entries) {
            if (seen.key == &key)
                from.fail(quoted(seen.name) + " and " + quoted(name) + " set the same setting");
        }
        entries.push_back({&key, name, &member.value()});
    }
    std::ranges::stable_sort(entries, {}, [](const entry& e) { return e.key->order; });

    config next = cfg;
    for (const entry& e : entries)
        e.key->set(next, value(from, quoted(e.name), *e.value, e.key->secret));
    cfg = std::move(next);
}

json::object parse_object(std::string_view text, const origin& from) {
    json::parser parser; // strict JSON: no comments, no trailing commas
    json::error_code ec;
    const std::size_t consumed = parser.write(text.data(), text.size(), ec);
    if (ec) {
        const std::string_view before = text.substr(0, std::min(consumed, text.size()));
        const auto line = std::ranges::count(before, '\n') + 1;
        const auto line_start = before.rfind('\n');
        const auto column =
            consumed - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
        from.fail("line " + std::to_string(line) + ", column " + std::to_string(column) + ": " +
                  ec.message());
    }
    json::value root = parser.release();
    if (!root.is_object())
        from.fail("expected a JSON object, got " + std::string(json::to_string(root.kind())));
    return std::move(root.get_object());
}

std::string percent_decoded(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        unsigned byte = 0;
        if (text[i] == '%' && i + 2 < text.size() &&
            std::from_chars(text.data() + i + 1, text.data() + i + 3, byte, 16).ptr ==
                text.data() + i + 3) {
            out += static_cast<char>(byte);
            i += 2;
        } else {
            out += text[i] == '+' ? ' ' : text[i];
        }
    }
    return out;
}

// The URL for an error message, passwords hidden even when the URL does not parse: everything
// from the first ':' of the user info to the last '@' (a password may hold an unencoded '@'),
// and the value of any secret query parameter, become "***". It may hide more than a password.
std::string redact_url_text(std::string_view text) {
    std::string out(text);
    const auto scheme_end = out.find("://");
    const auto colon = out.find(':', scheme_end == out.npos ? 0 : scheme_end + 3);
    const auto at = out.rfind('@');
    if (at != out.npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    const auto query = out.find('?');
    if (query == out.npos) return out;
    std::string redacted = out.substr(0, query + 1);
    std::string_view rest = std::string_view(out).substr(query + 1);
    while (true) {
        const auto amp = rest.find('&');
        const std::string_view param = rest.substr(0, amp);
        const auto eq = param.find('=');
        const key_info* key = find_key(flag_key(percent_decoded(param.substr(0, eq))));
        if (eq != param.npos && key && key->secret) {
            redacted.append(param.substr(0, eq + 1)).append("***");
        } else {
            redacted.append(param);
        }
        if (amp == rest.npos) break;
        redacted += '&';
        rest.remove_prefix(amp + 1);
    }
    return redacted;
}

std::string_view mode_name(config::mode mode) {
    switch (mode) {
    case config::mode::cluster:
        return "cluster";
    case config::mode::sentinel:
        return "sentinel";
    case config::mode::standalone:
        return "standalone";
    }
    return "unknown";
}

// The schemes of a TCP URL. A scheme that names a topology sets it.
struct url_scheme {
    std::string_view name;
    bool tls;
    std::optional<config::mode> topology;
};

constexpr url_scheme tcp_schemes[] = {
    {"redis", false, std::nullopt},
    {"rediss", true, std::nullopt},
    {"redis+cluster", false, config::mode::cluster},
    {"rediss+cluster", true, config::mode::cluster},
    {"redis+sentinel", false, config::mode::sentinel},
    {"rediss+sentinel", true, config::mode::sentinel},
};

constexpr std::string_view known_schemes =
    "redis, rediss, redis+cluster, rediss+cluster, redis+sentinel, rediss+sentinel or unix";

const url_scheme* find_scheme(std::string_view name) {
    for (const url_scheme& scheme : tcp_schemes)
        if (iequals(name, scheme.name)) return &scheme;
    return nullptr;
}

// One host of a URL's comma separated list: "host", "host:port", "[ipv6]" or "[ipv6]:port",
// the host percent-encoded as in any URL.
endpoint url_endpoint(std::string_view text, const origin& from) {
    std::string_view host = text;
    std::string_view port;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == text.npos) from.fail("no ']' after the IPv6 address in " + quoted(text));
        host = text.substr(0, close + 1);
        const std::string_view after = text.substr(close + 1);
        if (!after.empty() && !after.starts_with(':'))
            from.fail("expected \":port\" after " + quoted(host) + ", got " + quoted(after));
        if (!after.empty()) port = after.substr(1);
    } else if (const auto colon = text.find(':'); colon != text.npos) {
        if (text.find(':', colon + 1) != text.npos)
            from.fail("expected host:port, got " + quoted(text) +
                      " (an IPv6 address goes in brackets: [::1]:6379)");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    if (host.empty() || host == "[]") from.fail("no host");
    endpoint result;
    if (!port.empty()) result.port = value(from, "port", port, false).port();
    const auto parsed = urls::parse_authority(host);
    if (!parsed || parsed->has_userinfo() || parsed->has_port())
        from.fail("not a valid host: " + quoted(host));
    if (parsed->host_type() == urls::host_type::ipvfuture)
        from.fail("unsupported host " + quoted(host));
    result.host = parsed->host_address(); // percent-decoded, an IPv6 address without brackets
    if (result.host.empty()) from.fail("no host");
    return result;
}

// The hosts of a TCP URL's authority, comma separated. Errors name the host by its place in
// the list ("host 2: no host") when there is more than one.
std::vector<endpoint> url_endpoints(std::string_view list, const origin& from) {
    std::vector<endpoint> hosts;
    const bool several = list.find(',') != list.npos;
    origin host_from = from; // one copy of the prefix, however many hosts
    for (std::size_t i = 1;; ++i) {
        const auto comma = list.find(',');
        if (several) {
            host_from.prefix.resize(from.prefix.size());
            host_from.prefix += "host " + std::to_string(i) + ": ";
        }
        hosts.push_back(url_endpoint(list.substr(0, comma), host_from));
        if (comma == list.npos) break;
        list.remove_prefix(comma + 1);
    }
    return hosts;
}

// A sentinel URL's path: /master_name[/db], each percent-decoded.
void set_sentinel_path(config& c, const urls::url_view& url, const origin& from) {
    std::vector<std::string> segments(url.segments().begin(), url.segments().end());
    if (!segments.empty() && segments.back().empty()) segments.pop_back(); // a trailing '/'
    if (segments.size() > 2)
        from.fail("path: expected /master_name[/db], got " + quoted(url.encoded_path()));
    c.master_name = segments.empty() ? std::string() : segments[0];
    if (segments.size() == 2)
        set_db(c, value(from, "db", std::string_view(segments[1]), false));
}

void merge_url(config& cfg, std::string_view url_text) {
    const origin from{error::invalid_url, "url " + quoted(redact_url_text(url_text)) + ": ",
                      "query key"};
    const auto at_signs = std::ranges::count(url_text, '@');
    // A stray '@' means a password with an unencoded '@', '/', '?' or '#': the parse would
    // show part of it as a host, path or query key, so stop before echoing any of it.
    const auto stray_at = [&] {
        from.fail("stray '@': percent-encode '@', '/', '?' and '#' in the user name, password "
                  "and query");
    };

    // Boost.URL reads one host:port per authority, so the host list of redis://h1:1,h2:2/0 is
    // cut out here, and the rest parsed with one stand-in host.
    const auto scheme_end = url_text.find("://");
    const url_scheme* scheme =
        scheme_end == url_text.npos ? nullptr : find_scheme(url_text.substr(0, scheme_end));
    std::string_view host_list;
    std::string tcp_text;
    if (scheme) {
        const std::size_t authority_begin = scheme_end + 3;
        const std::size_t authority_end =
            std::min(url_text.find_first_of("/?#", authority_begin), url_text.size());
        const std::string_view authority =
            url_text.substr(authority_begin, authority_end - authority_begin);
        const auto at = authority.find('@');
        if (at_signs > (at == authority.npos ? 0 : 1)) stray_at();
        host_list = at == authority.npos ? authority : authority.substr(at + 1);
        const std::size_t query_begin =
            std::min(url_text.find_first_of("?#", authority_begin), url_text.size());
        const std::string_view before_query =
            url_text.substr(authority_begin, query_begin - authority_begin);
        if (before_query.find("://") != before_query.npos)
            from.fail("a second \"://\": give one scheme, e.g. redis+sentinel://host:26379/master");
        tcp_text.append(url_text.substr(0, authority_begin));
        if (at != authority.npos) tcp_text.append(authority.substr(0, at + 1));
        tcp_text.append("stand-in");
        tcp_text.append(url_text.substr(authority_end));
    }
    const auto parsed = urls::parse_uri(scheme ? std::string_view(tcp_text) : url_text);
    if (parsed && at_signs > (parsed->has_userinfo() ? 1 : 0)) stray_at();
    if (!parsed) from.fail("not a valid URL (" + parsed.error().message() + ")");
    const urls::url_view& url = *parsed;

    config next = cfg;
    const std::string_view scheme_name = url.scheme();
    const std::string path = url.path();
    if (scheme) {
        next.hosts = url_endpoints(host_list, from);
        next.unix_socket.clear();
        next.use_tls = scheme->tls;
        if (scheme->topology) next.topology = *scheme->topology;
        if (scheme->topology == config::mode::sentinel) {
            set_sentinel_path(next, url, from);
        } else if (path.size() > 1) {
            set_db(next, value(from, "db", std::string_view(path).substr(1), false));
        }
    } else if (iequals(scheme_name, "unix")) {
        if (!url.encoded_host().empty() || url.has_port())
            from.fail("a unix URL takes no host: unix:///path/to/socket");
        if (path.empty()) from.fail("no socket path");
        next.unix_socket = path;
        next.use_tls = false;
    } else if (find_scheme(scheme_name)) {
        from.fail("no host: expected " + quoted(std::string(scheme_name) + "://host[:port]"));
    } else {
        from.fail("unknown scheme " + quoted(scheme_name) + ", expected " +
                  std::string(known_schemes));
    }
    if (url.has_userinfo()) {
        next.username = url.user();
        next.password = url.has_password() ? url.password() : std::string();
    }
    if (url.has_fragment()) {
        if (scheme && scheme->topology == config::mode::sentinel)
            from.fail("unexpected fragment: the master name goes in the path, " +
                      std::string(scheme->name) + "://host:26379/master_name[/db]");
        from.fail("unexpected fragment");
    }
    for (const urls::param& param : url.params()) {
        const std::string name = flag_key(param.key);
        const key_info& key = lookup(name, from);
        key.set(next, value(from, quoted(name), std::string_view(param.value), key.secret));
    }
    if (scheme && scheme->topology && next.topology != *scheme->topology) {
        from.fail("query topology " + quoted(mode_name(next.topology)) + " contradicts scheme " +
                  quoted(scheme->name));
    }
    if (scheme && scheme->topology == config::mode::sentinel && next.master_name.empty()) {
        from.fail("no master name: expected " + std::string(scheme->name) +
                  "://host:26379[,host:port...]/master_name[/db]");
    }
    cfg = std::move(next);
}

} // namespace

config config::from_url(std::string_view url) {
    config result;
    merge_url(result, url);
    return result;
}

config config::from_json(std::string_view json_text) {
    const origin from{error::invalid_config, "config: "};
    config result;
    apply_object(result, parse_object(json_text, from), from);
    return result;
}

config config::from_json_file(const std::string& path) {
    const origin from{error::invalid_config, "config file " + quoted(path) + ": "};
    std::ifstream file(path, std::ios::binary);
    if (!file) from.fail(std::string("cannot open: ") + std::strerror(errno));
    const std::string text{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
    if (file.bad()) from.fail(std::string("cannot read: ") + std::strerror(errno));
    config result;
    apply_object(result, parse_object(text, from), from);
    return result;
}

void config::apply_json(const boost::json::object& obj) {
    apply_object(*this, obj, origin{error::invalid_config, "config: "});
}

void config::set(std::string_view key, std::string_view text) {
    const origin from{error::invalid_config, "config: "};
    const std::string name = flag_key(key);
    const key_info& info = lookup(name, from);
    config next = *this;
    info.set(next, value(from, quoted(name), text, info.secret));
    *this = std::move(next);
}

std::string to_string(const endpoint& ep) {
    return ep.host + ":" + std::to_string(ep.port);
}

std::string config::redacted_url() const {
    std::string url = !unix_socket.empty() ? "unix://" : use_tls ? "rediss://" : "redis://";
    // unix:relative/path has no authority to hold a host, nor a user.
    const bool relative_socket = !unix_socket.empty() && !unix_socket.starts_with('/');
    if (relative_socket) url = "unix:";
    if (!relative_socket && (!username.empty() || !password.empty())) {
        url += urls::encode(username, urls::unreserved_chars);
        if (!password.empty()) url += ":***";
        url += '@';
    }
    std::string query;
    const auto add_query = [&](std::string_view key, std::string_view text) {
        query += query.empty() ? '?' : '&';
        query.append(key).append("=").append(urls::encode(text, urls::unreserved_chars));
    };
    if (!unix_socket.empty()) {
        url += urls::encode(unix_socket, urls::pchars + urls::grammar::lut_chars('/'));
        if (db != 0) add_query("db", std::to_string(db));
    } else {
        for (std::size_t i = 0; i < hosts.size(); ++i) {
            if (i > 0) url += ','; // not a standard URL: one line for every host in the logs
            const bool ipv6 = hosts[i].host.find(':') != std::string::npos;
            url += ipv6 ? "[" + hosts[i].host + "]"
                        : std::string(urls::encode(hosts[i].host, urls::unreserved_chars));
            url += ":" + std::to_string(hosts[i].port);
        }
        if (db != 0) url += "/" + std::to_string(db);
    }
    if (topology != mode::standalone) add_query("topology", mode_name(topology));
    if (topology == mode::sentinel && !master_name.empty()) add_query("master_name", master_name);
    return url + query;
}

} // namespace akv
