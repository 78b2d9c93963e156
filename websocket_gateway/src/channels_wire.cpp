#include "channels_wire.hpp"

#include <akv/error.hpp>
#include <akv/gateway/error.hpp>
#include <akv/kv/msgpack.hpp>

#include <boost/json/array.hpp>
#include <boost/system/system_error.hpp>

#include <map>

namespace akv::gateway::channels_wire {

namespace json = boost::json;

namespace {

[[noreturn]] void fail(gateway_error e, const std::string& what) {
    throw boost::system::system_error(e, what);
}

} // namespace

std::string reason(const boost::system::system_error& e) {
    std::string text = e.what();
    // Redis's own errors keep theirs: "connection lost" says something.
    if (e.code().category() != gateway_category() && e.code() != akv::error::type_mismatch)
        return text;
    const std::string suffix = ": " + e.code().message();
    if (const auto at = text.rfind(suffix); at != std::string::npos) text.resize(at);
    return text;
}

bool valid_group(std::string_view group) noexcept {
    if (group.empty() || group.size() >= 100) return false;
    for (char c : group) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

std::string group_key(std::string_view prefix, std::string_view group) {
    return std::string(prefix) + ":group:" + std::string(group);
}

std::string pubsub_channel(std::string_view prefix, std::string_view group) {
    return std::string(prefix) + "__group__" + std::string(group);
}

std::string channel_key(std::string_view prefix, std::string_view channel) {
    const auto bang = channel.find('!');
    return std::string(prefix) +
           std::string(bang == std::string_view::npos ? channel : channel.substr(0, bang + 1));
}

std::string consumer_channel(std::string_view group) {
    return "akv-gateway." + std::string(group);
}

json::object decode_message(std::string_view bytes, std::size_t max_bytes) {
    if (bytes.size() > max_bytes)
        fail(gateway_error::too_large, "a message of " + std::to_string(bytes.size()) +
                                           " bytes, over the limit of " +
                                           std::to_string(max_bytes));
    // Fernet tokens (the layer's symmetric_encryption_keys) are base64 text starting "gAAAAA".
    if (bytes.starts_with("gAAAAA"))
        fail(gateway_error::bad_message,
             "an encrypted message (symmetric_encryption_keys): the gateway does not hold the "
             "keys; use a layer without encryption for the groups it joins");
    kv::msgpack::decode_options options;
    options.bin = kv::msgpack::bin_policy::base64;
    json::value v;
    try {
        v = kv::msgpack::decode(bytes, options);
    } catch (const boost::system::system_error& e) {
        fail(gateway_error::bad_message, "not a msgpack message: " + reason(e));
    }
    if (!v.is_object()) fail(gateway_error::bad_message, "a message that is not a map");
    json::object message = std::move(v.get_object());
    message.erase("__asgi_channel__");
    return message;
}

json::object decode_core_member(std::string_view member, std::size_t max_bytes) {
    if (member.size() <= core_prefix_bytes)
        fail(gateway_error::bad_message, "a stored message of " + std::to_string(member.size()) +
                                             " bytes, shorter than its random prefix");
    return decode_message(member.substr(core_prefix_bytes), max_bytes);
}

json::object message_for_group(std::string_view channel, json::value data) {
    if (data.is_object()) {
        const auto* type = data.get_object().if_contains("type");
        if (type && type->is_string()) return std::move(data.get_object());
    }
    json::object message;
    message["type"] = "gateway.message";
    message["channel"] = channel;
    message["data"] = std::move(data);
    return message;
}

group_send_plan plan_group_send(std::string_view prefix, const std::vector<std::string>& members,
                                const json::object& message, std::mt19937_64& random) {
    // Members that share a key (process-local channels of one process) get one message naming
    // them all, as channels_redis does.
    std::map<std::string, json::array> names_by_key;
    std::vector<std::string> order;
    for (const auto& m : members) {
        std::string key = channel_key(prefix, m);
        auto [it, fresh] = names_by_key.try_emplace(key);
        if (fresh) order.push_back(key);
        it->second.emplace_back(m);
    }
    group_send_plan plan;
    for (auto& key : order) {
        json::object copy = message;
        copy["__asgi_channel__"] = std::move(names_by_key[key]);
        std::string member(core_prefix_bytes, '\0');
        for (std::size_t i = 0; i < core_prefix_bytes; i += 8) {
            const std::uint64_t r = random();
            for (std::size_t b = 0; b < 8 && i + b < core_prefix_bytes; ++b)
                member[i + b] = static_cast<char>((r >> (8 * b)) & 0xff);
        }
        kv::msgpack::encode(copy, member);
        plan.keys.push_back(std::move(key));
        plan.members.push_back(std::move(member));
    }
    return plan;
}

} // namespace akv::gateway::channels_wire
