#include <akv/error.hpp>
#include <akv/kv/key_schema.hpp>

#include <unistd.h>

#include <climits>

namespace akv::kv {

key_schema key_schema::for_process(std::string_view process_type, std::string_view id) {
    return for_process(local_hostname(), process_type, id);
}

key_schema key_schema::for_process(std::string_view hostname, std::string_view process_type,
                                   std::string_view id) {
    std::string prefix;
    prefix.reserve(hostname.size() + process_type.size() + id.size() + 3);
    prefix.append(hostname).append(":").append(process_type).append(":").append(id).append(":");
    return key_schema(std::move(prefix));
}

std::string key_schema::key(std::string_view name) const {
    std::string out;
    out.reserve(prefix_.size() + name.size());
    out.append(prefix_).append(name);
    return out;
}

std::string key_schema::tagged_key(std::string_view name) const {
    std::string out;
    out.reserve(prefix_.size() + name.size() + 2);
    out.append(prefix_).append("{").append(name).append("}");
    return out;
}

std::string key_schema::tagged_key(std::string_view name, std::string_view suffix) const {
    return tagged_key(name).append(":").append(suffix);
}

std::string_view hash_tag(std::string_view key) {
    const auto open = key.find('{');
    if (open == std::string_view::npos) return key;
    const auto close = key.find('}', open + 1);
    if (close == std::string_view::npos || close == open + 1) return key;
    return key.substr(open + 1, close - open - 1);
}

void require_same_slot(std::span<const std::string> keys) {
    for (std::size_t i = 1; i < keys.size(); ++i) {
        if (hash_tag(keys[i]) != hash_tag(keys[0])) {
            throw_error(error::invalid_config,
                        "kv: keys \"" + keys[0] + "\" and \"" + keys[i] +
                            "\" must share a cluster slot but hash \"" +
                            std::string(hash_tag(keys[0])) + "\" and \"" +
                            std::string(hash_tag(keys[i])) +
                            "\" (after a \"{}\" in the prefix Redis hashes the whole key)");
        }
    }
}

std::string local_hostname() {
    char name[HOST_NAME_MAX + 1] = {};
    if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
    return name;
}

} // namespace akv::kv
