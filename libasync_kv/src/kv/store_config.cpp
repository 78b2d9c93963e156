#include <akv/kv/store_config.hpp>

#include <boost/json.hpp>
#include <boost/url.hpp>

#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

namespace akv::kv {

namespace {

[[noreturn]] void bad(std::string_view key, const std::string& what) {
    throw_error(error::invalid_config, "config: \"" + std::string(key) + "\": " + what);
}

std::chrono::milliseconds parse_ms(std::string_view key, std::string_view text) {
    long long ms = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc{} || p != text.data() + text.size() || ms <= 0)
        bad(key, "expected a positive number of milliseconds, got \"" + std::string(text) + "\"");
    return std::chrono::milliseconds(ms);
}

// The container key schema's parts, assembled once every key was read.
struct schema_parts {
    std::optional<std::string> prefix, hostname, process_type, process_id;

    key_schema make() const {
        if (prefix && process_type)
            throw_error(error::invalid_config,
                        "config: give either \"kv_prefix\" or \"process_type\", not both");
        if (prefix) return key_schema(*prefix);
        if (process_type.has_value() != process_id.has_value())
            throw_error(error::invalid_config,
                        "config: \"process_type\" and \"process_id\" go together");
        if (!process_type) return {};
        return hostname ? key_schema::for_process(*hostname, *process_type, *process_id)
                        : key_schema::for_process(*process_type, *process_id);
    }
};

bool is_store_key(std::string_view key) {
    for (std::string_view k :
         {"key_prefix", "max_object_size", "chunk_size", "max_bytes_in_flight", "read_lease_ms",
          "unfinished_put_ttl_ms", "kv_prefix", "hostname", "process_type", "process_id"})
        if (key == k) return true;
    return false;
}

// Applies one store key; false if `key` is not the store's (it goes to akv::config).
bool apply(blob_options& o, schema_parts& schema, std::string_view key, std::string_view text) {
    if (key == "kv_prefix") {
        schema.prefix = text;
    } else if (key == "hostname") {
        schema.hostname = text;
    } else if (key == "process_type") {
        schema.process_type = text;
    } else if (key == "process_id") {
        schema.process_id = text;
    } else if (key == "key_prefix") {
        o.key_prefix = text;
    } else if (key == "max_object_size") {
        o.max_object_size = parse_size(key, text);
    } else if (key == "chunk_size") {
        o.chunk_size = parse_size(key, text);
    } else if (key == "max_bytes_in_flight") {
        o.max_bytes_in_flight = parse_size(key, text);
    } else if (key == "read_lease_ms") {
        o.read_lease = parse_ms(key, text);
    } else if (key == "unfinished_put_ttl_ms") {
        o.unfinished_put_ttl = parse_ms(key, text);
    } else {
        return false;
    }
    return true;
}

std::string text_of(std::string_view key, const boost::json::value& v) {
    if (v.is_string()) return std::string(v.get_string());
    if (v.is_int64() && v.get_int64() >= 0) return std::to_string(v.get_int64());
    if (v.is_uint64()) return std::to_string(v.get_uint64());
    bad(key, "expected a string or a non-negative number, got " + boost::json::serialize(v));
}

} // namespace

std::size_t parse_size(std::string_view key, std::string_view text) {
    std::size_t value = 0;
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || p == text.data())
        bad(key, "expected a size such as 4096, 64KB or 100MB, got \"" + std::string(text) + "\"");
    const std::string_view unit(p, end - p);
    std::size_t scale = 1;
    if (unit == "" || unit == "B")
        scale = 1;
    else if (unit == "KB" || unit == "K")
        scale = std::size_t{1} << 10;
    else if (unit == "MB" || unit == "M")
        scale = std::size_t{1} << 20;
    else if (unit == "GB" || unit == "G")
        scale = std::size_t{1} << 30;
    else
        bad(key, "unknown size unit \"" + std::string(unit) + "\" (B, KB, MB or GB)");
    if (value > SIZE_MAX / scale) bad(key, "size \"" + std::string(text) + "\" is too large");
    return value * scale;
}

blob_store_config blob_store_config::from_url(std::string_view url) {
    auto parsed = boost::urls::parse_uri_reference(url);
    if (!parsed) return {akv::config::from_url(url), {}, {}}; // config names what is wrong
    boost::urls::url u(*parsed);
    blob_store_config out;
    schema_parts schema;
    std::vector<std::string> taken;
    for (const auto& param : u.params())
        if (param.has_value && apply(out.blob, schema, param.key, param.value))
            taken.push_back(param.key);
    for (const auto& key : taken)
        u.params().erase(key);
    if (u.params().empty()) u.remove_query();
    out.connection = akv::config::from_url(u.buffer());
    out.keys = schema.make();
    return out;
}

blob_store_config blob_store_config::from_json(std::string_view json_text) {
    boost::system::error_code ec;
    boost::json::value doc = boost::json::parse(json_text, ec);
    if (ec) return {akv::config::from_json(json_text), {}, {}}; // config names the syntax error
    if (!doc.is_object()) throw_error(error::invalid_config, "config: expected a JSON object");
    boost::json::object rest = doc.get_object();
    blob_store_config out;
    schema_parts schema;
    for (const auto& [key, value] : doc.get_object()) {
        const std::string_view k(key.data(), key.size());
        if (!is_store_key(k)) continue;
        apply(out.blob, schema, k, text_of(k, value));
        rest.erase(key);
    }
    out.connection.apply_json(rest);
    out.keys = schema.make();
    return out;
}

blob_store_config blob_store_config::from_json_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw_error(error::invalid_config, "config file \"" + path + "\": cannot open");
    std::stringstream text;
    text << in.rdbuf();
    try {
        return from_json(text.str());
    } catch (const boost::system::system_error& e) {
        throw boost::system::system_error(e.code(), "config file \"" + path + "\": " + e.what());
    }
}

} // namespace akv::kv
