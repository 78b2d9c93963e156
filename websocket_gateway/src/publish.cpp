#include "history.hpp"
#include "protocol.hpp"

#include <akv/gateway/publish.hpp>
#include <akv/gateway/token.hpp>

#include <akv/error.hpp>
#include <akv/response.hpp>

#include <gateway_lua_scripts.hpp>

#include <boost/system/system_error.hpp>

namespace akv::gateway {

namespace {

[[noreturn]] void fail(gateway_error e, const std::string& what) {
    throw boost::system::system_error(make_error_code(e), what);
}

} // namespace

const history_rule* history_for(const std::vector<history_rule>& rules,
                                std::string_view channel) noexcept {
    for (const auto& r : rules)
        if (pattern_matches(r.pattern, channel)) return &r;
    return nullptr;
}

bool valid_channel(std::string_view channel) noexcept {
    if (channel.empty() || channel.size() > 256) return false;
    for (unsigned char c : channel)
        if (c < 0x20 || c == 0x7f || c == '*') return false;
    return true;
}

bool sharded(const client& redis) noexcept {
    return redis.get_config().topology == config::mode::cluster;
}

asio::awaitable<std::optional<position>> publish(client& redis, const options& opts,
                                                 std::string channel, std::string json) {
    if (!valid_channel(channel))
        fail(gateway_error::bad_channel,
             "publish: bad channel name (1 to 256 bytes, no control characters, no '*')");
    if (json.size() > opts.max_publish)
        fail(gateway_error::too_large, "publish: message of " + std::to_string(json.size()) +
                                           " bytes is over the limit of " +
                                           std::to_string(opts.max_publish));
    auto line = protocol::one_line_json(json);
    if (!line) fail(gateway_error::bad_message, "publish: data is not one JSON value");
    const std::string redis_channel = opts.channel_prefix + channel;
    const std::string_view command = sharded(redis) ? "SPUBLISH" : "PUBLISH";
    const history_rule* rule = history_for(opts.history, channel);
    if (!rule) {
        request req;
        req.push(command, redis_channel, *line);
        response<std::int64_t> resp;
        co_await redis.exec(req, resp);
        if (std::get<0>(resp).has_error())
            throw_error(error::server_error, "publish: " + std::get<0>(resp).error().message);
        co_return std::nullopt;
    }
    const std::vector<std::string> keys{history::stream_key(redis_channel),
                                        history::meta_key(redis_channel)};
    const std::vector<std::string> args{
        redis_channel, std::move(*line), std::to_string(rule->max_length),
        std::to_string(std::chrono::milliseconds(rule->max_age).count()), std::string(command)};
    response<std::vector<std::string>> resp;
    co_await history::publish_script().run(redis, keys, args, resp);
    auto& r = std::get<0>(resp);
    if (r.has_error()) throw_error(error::script_error, "publish: " + r.error().message);
    if (r.value().size() != 2) throw_error(error::script_error, "publish: reply is not [offset, epoch]");
    co_return position{std::move(r.value()[0]), std::move(r.value()[1])};
}

namespace history {

std::string stream_key(std::string_view redis_channel) {
    return "akvgw:{" + std::string(redis_channel) + "}:history";
}

std::string meta_key(std::string_view redis_channel) {
    return "akvgw:{" + std::string(redis_channel) + "}:meta";
}

const script& publish_script() {
    static const script s(lua::lib, lua::publish);
    return s;
}

const script& resume_script() {
    static const script s(lua::lib, lua::resume);
    return s;
}

asio::awaitable<recovery> recover(client& redis, const history_rule& rule,
                                  std::string redis_channel, std::string from,
                                  std::string epoch) {
    const std::vector<std::string> keys{stream_key(redis_channel), meta_key(redis_channel)};
    const std::vector<std::string> args{
        std::move(from), std::move(epoch),
        std::to_string(std::chrono::milliseconds(rule.max_age).count()),
        std::to_string(rule.max_length ? rule.max_length : 10000)};
    response<resp::value> resp;
    co_await resume_script().run(redis, keys, args, resp);
    auto& r = std::get<0>(resp);
    if (r.has_error()) throw_error(error::script_error, "resume: " + r.error().message);
    const resp::value& v = r.value();
    if (v.elements.size() < 2) throw_error(error::script_error, "resume: reply too short");
    recovery out;
    out.epoch = v.elements[0].str;
    out.newest = v.elements[1].str;
    if (v.elements.size() >= 3) out.gap = v.elements[2].str == "gap";
    if (v.elements.size() >= 4) {
        for (const auto& e : v.elements[3].elements) {
            // [id, [field, value, ...]]: our entries have one field, "d".
            if (e.elements.size() < 2 || e.elements[1].elements.size() < 2) continue;
            out.entries.emplace_back(e.elements[0].str, e.elements[1].elements[1].str);
        }
    }
    co_return out;
}

} // namespace history

} // namespace akv::gateway
