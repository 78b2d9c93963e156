#include "presence.hpp"
#include "protocol.hpp"

#include <akv/gateway/publish.hpp>
#include <akv/gateway/token.hpp>

#include <akv/error.hpp>
#include <akv/response.hpp>
#include <akv/script.hpp>

#include <gateway_lua_scripts.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace akv::gateway::presence {

namespace {

const script& presence_script() {
    static const script s(lua::presence);
    return s;
}

// Entries per script call when refreshing a crowded channel: keeps each call short.
constexpr std::size_t entries_per_call = 500;

// `announce`: the channel has join/leave, so the leaves of expired entries are published.
asio::awaitable<resp::value> call(client& redis, const std::string& redis_channel, bool announce,
                                  const std::vector<std::string>& op_args) {
    const std::vector<std::string> keys{entries_key(redis_channel), expiry_key(redis_channel)};
    std::vector<std::string> args{announce ? redis_channel : std::string(),
                                  sharded(redis) ? "SPUBLISH" : "PUBLISH"};
    args.insert(args.end(), op_args.begin(), op_args.end());
    response<resp::value> resp;
    co_await presence_script().run(redis, keys, args, resp);
    auto& r = std::get<0>(resp);
    if (r.has_error()) throw_error(error::script_error, "presence: " + r.error().message);
    co_return std::move(r.value());
}

std::int64_t number(const resp::value& v) {
    try {
        return std::stoll(v.str);
    } catch (const std::exception&) {
        throw_error(error::script_error, "presence: expected a number, got \"" + v.str + "\"");
    }
}

} // namespace

std::string entries_key(std::string_view redis_channel) {
    return "akvgw:{" + std::string(redis_channel) + "}:presence";
}

std::string expiry_key(std::string_view redis_channel) {
    return "akvgw:{" + std::string(redis_channel) + "}:presence_exp";
}

const presence_rule* rule_for(const std::vector<presence_rule>& rules,
                              std::string_view channel) noexcept {
    for (const auto& r : rules)
        if (pattern_matches(r.pattern, channel)) return &r;
    return nullptr;
}

std::string entry_json(std::string_view client, std::string_view user, std::string_view info) {
    std::string out = "{" + protocol::field("client", client) + "," + protocol::field("user", user);
    if (!info.empty()) {
        out += ",\"info\":";
        out += info;
    }
    out += '}';
    return out;
}

std::string encode_event(std::string_view kind, std::string_view entry) {
    std::string out;
    out.reserve(kind.size() + entry.size() + 2);
    out += '\x1d';
    out += kind;
    out += '\x1d';
    out += entry;
    return out;
}

std::optional<event> decode_event(std::string_view p) noexcept {
    if (p.size() < 3 || p[0] != '\x1d') return std::nullopt;
    const auto sep = p.find('\x1d', 1);
    if (sep == std::string_view::npos) return std::nullopt;
    const std::string_view kind = p.substr(1, sep - 1);
    if (kind != "join" && kind != "leave") return std::nullopt;
    return event{kind, p.substr(sep + 1)};
}

asio::awaitable<std::vector<std::string>> list(client& redis, std::string redis_channel,
                                               bool announce) {
    // Named: g++ 12 cannot take an initializer list inside a co_await expression.
    const std::vector<std::string> args{"list"};
    const resp::value v = co_await call(redis, redis_channel, announce, args);
    std::vector<std::string> out;
    for (std::size_t i = 1; i < v.elements.size(); i += 2)
        out.push_back(v.elements[i].str);
    co_return out;
}

asio::awaitable<counts> stats(client& redis, std::string redis_channel, bool announce) {
    const std::vector<std::string> args{"stats"};
    const resp::value v = co_await call(redis, redis_channel, announce, args);
    if (v.elements.size() != 2) throw_error(error::script_error, "presence: stats reply malformed");
    co_return counts{number(v.elements[0]), number(v.elements[1])};
}

asio::awaitable<std::int64_t> count(client& redis, std::string redis_channel, bool announce) {
    const std::vector<std::string> args{"count"};
    const resp::value v = co_await call(redis, redis_channel, announce, args);
    co_return number(v);
}

registry::registry(client& redis, const options& opts, asio::steady_timer& changed)
    : redis_(redis)
    , opts_(opts)
    , changed_(changed)
    , timer_(redis.get_executor()) {}

asio::awaitable<void> registry::add(std::string channel, std::string client_id, std::string entry,
                                    bool announce) {
    const busy_while busy(*this);
    channels_[channel][client_id] = entry;
    const std::string redis_channel = opts_.channel_prefix + channel;
    const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(opts_.presence_ttl);
    const std::vector<std::string> args{"update", std::to_string(ttl.count()), client_id, entry};
    co_await call(redis_, redis_channel, announce, args);
    if (announce) {
        request req;
        req.push(sharded(redis_) ? "SPUBLISH" : "PUBLISH", redis_channel,
                 encode_event("join", entry));
        co_await redis_.exec(req, ignore);
    }
}

asio::awaitable<void> registry::remove(std::string channel, std::string client_id, bool announce) {
    const busy_while busy(*this);
    std::string entry;
    if (auto it = channels_.find(channel); it != channels_.end()) {
        if (auto e = it->second.find(client_id); e != it->second.end()) {
            entry = std::move(e->second);
            it->second.erase(e);
        }
        if (it->second.empty()) channels_.erase(it);
    }
    const std::string redis_channel = opts_.channel_prefix + channel;
    try {
        request req;
        const std::vector<std::string> args{"remove", client_id};
        co_await call(redis_, redis_channel, announce, args);
        if (announce && !entry.empty()) {
            req.push(sharded(redis_) ? "SPUBLISH" : "PUBLISH", redis_channel,
                     encode_event("leave", entry));
            co_await redis_.exec(req, ignore);
        }
    } catch (const std::exception&) {
        // Redis away: the entry expires on its own.
    }
}

asio::awaitable<void> registry::refresh() {
    const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(opts_.presence_ttl);
    const std::string ttl_text = std::to_string(ttl.count());
    // A copy: sessions join and leave while the calls are out.
    const auto channels = channels_;
    for (const auto& [channel, entries] : channels) {
        const std::string redis_channel = opts_.channel_prefix + channel;
        const presence_rule* rule = rule_for(opts_.presence, channel);
        const bool announce = rule && rule->join_leave;
        std::vector<std::string> args{"update", ttl_text};
        for (const auto& [id, entry] : entries) {
            args.push_back(id);
            args.push_back(entry);
            if (args.size() >= 2 + 2 * entries_per_call) {
                co_await call(redis_, redis_channel, announce, args);
                args.resize(2);
            }
        }
        if (args.size() > 2) co_await call(redis_, redis_channel, announce, args);
    }
}

asio::awaitable<void> registry::run() {
    while (!stopped_) {
        timer_.expires_after(opts_.presence_ttl / 3);
        co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (stopped_) break;
        try {
            co_await refresh();
        } catch (const std::exception&) {
            // Redis away: the next round tries again (entries live a whole ttl).
        }
    }
}

void registry::stop() {
    stopped_ = true;
    timer_.cancel();
}

} // namespace akv::gateway::presence
