#include <akv/cluster_slot.hpp>
#include <akv/messaging/consumer_group.hpp>
#include <akv/script.hpp>

#include "lua_scripts.hpp"

namespace akv::messaging {

namespace {
const script& claim_script() {
    static const script s(lua::messaging_claim_stale); // immutable after construction
    return s;
}
} // namespace

namespace {
bool on_cluster(const client& c) {
    return c.get_config().topology == config::mode::cluster;
}
} // namespace

std::string default_dead_letter(std::string_view stream, bool cluster) {
    std::string dead = std::string(stream) + ":dead";
    // "<stream>:dead" shares the stream's slot when the stream has a hash tag. Without one,
    // "{<stream>}:dead" hashes exactly the stream's name: the same slot (a name holding a
    // brace would not, and keeps the plain name: then the check below names both).
    if (cluster && cluster_slot(dead) != cluster_slot(stream) &&
        stream.find_first_of("{}") == std::string_view::npos && !stream.empty())
        dead = "{" + std::string(stream) + "}:dead";
    return dead;
}

void require_same_slot(std::string_view what, std::string_view a_role, std::string_view a,
                       std::string_view b_role, std::string_view b) {
    if (cluster_slot(a) == cluster_slot(b)) return;
    throw_error(error::invalid_config,
                std::string(what) + ": on a cluster the " + std::string(a_role) + " \"" +
                    std::string(a) + "\" (slot " + std::to_string(cluster_slot(a)) + ") and the " +
                    std::string(b_role) + " \"" + std::string(b) + "\" (slot " +
                    std::to_string(cluster_slot(b)) +
                    ") must share a hash tag, e.g. \"{orders}:in\" and \"{orders}:out\": one "
                    "Lua call or transaction touches both");
}

consumer_group::consumer_group(client& c, group_options options)
    : client_(c)
    , options_(std::move(options)) {
    if (options_.dead_letter.empty())
        options_.dead_letter = default_dead_letter(options_.stream, on_cluster(c));
    if (on_cluster(c))
        require_same_slot("consumer_group", "stream", options_.stream, "dead-letter stream",
                          options_.dead_letter);
}

asio::awaitable<void> consumer_group::create() {
    request req;
    req.push("XGROUP", "CREATE", options_.stream, options_.group, options_.start_id, "MKSTREAM");
    response<std::string> resp;
    co_await client_.exec(req, resp);
    auto& r = std::get<0>(resp);
    if (r.has_error() && r.error().message.rfind("BUSYGROUP", 0) != 0) r.value(); // throws
}

asio::awaitable<std::vector<stream_entry>> consumer_group::read(std::size_t count,
                                                                std::chrono::milliseconds block) {
    request req;
    if (block.count() <= 0)
        req.push("XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT", count,
                 "STREAMS", options_.stream, ">");
    else
        req.push("XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT", count, "BLOCK",
                 block.count(), "STREAMS", options_.stream, ">");
    response<resp::value> resp;
    co_await client_.exec(req, resp);
    co_return entries_from(std::move(std::get<0>(resp).value()));
}

asio::awaitable<std::vector<stream_entry>> consumer_group::claim_stale(std::size_t count) {
    // Named vectors, not braced lists in the call: g++ 12 cannot keep an initializer_list's
    // array across a co_await ("array used as initializer").
    const std::vector<std::string> keys{options_.stream, options_.dead_letter};
    const std::vector<std::string> args{
        options_.group, options_.consumer, std::to_string(options_.claim_idle.count()),
        std::to_string(count), std::to_string(options_.max_deliveries)};
    response<resp::value> resp;
    co_await claim_script().run(client_, keys, args, resp);
    auto& r = std::get<0>(resp);
    if (r.has_error()) throw_error(error::script_error, "claim_stale.lua: " + r.error().message);
    co_return entries_from(std::move(r.value()));
}

asio::awaitable<void> consumer_group::ack(const std::vector<std::string>& ids) {
    if (ids.empty()) co_return;
    request req;
    req.push("XACK", options_.stream, options_.group, ids);
    response<long long> resp;
    co_await client_.exec(req, resp);
    std::get<0>(resp).value();
}

asio::awaitable<void> consumer_group::dead_letter(const stream_entry& entry,
                                                  std::string_view reason) {
    request req;
    req.push("MULTI");
    req.push("XADD", options_.dead_letter, "*", "dead:id", entry.id, "dead:group", options_.group,
             "dead:deliveries", entry.deliveries, "dead:reason", reason, entry.fields);
    req.push("XACK", options_.stream, options_.group, entry.id);
    req.push("EXEC");
    response<ignore_t, ignore_t, ignore_t, std::vector<result<resp::value>>> resp;
    co_await client_.exec(req, resp);
    for (const auto& r : std::get<3>(resp).value())
        r.value(); // throws on a failed command
}

asio::awaitable<std::size_t> consumer_group::pending() {
    request req;
    req.push("XPENDING", options_.stream, options_.group);
    response<resp::value> resp;
    co_await client_.exec(req, resp);
    const auto& v = std::get<0>(resp).value();
    co_return v.elements.empty() ? 0 : std::stoull(v.elements[0].str);
}

asio::awaitable<void> consumer_group::remove_consumer() {
    request req;
    req.push("XPENDING", options_.stream, options_.group, "-", "+", 1, options_.consumer);
    response<std::vector<resp::value>> owned;
    co_await client_.exec(req, owned);
    if (!std::get<0>(owned).value().empty())
        throw_error(error::invalid_config,
                    "consumer \"" + options_.consumer + "\" of group \"" + options_.group +
                        "\" still owns pending entries: ack them, or let another consumer claim "
                        "them, before removing it");
    request del;
    del.push("XGROUP", "DELCONSUMER", options_.stream, options_.group, options_.consumer);
    response<long long> resp;
    co_await client_.exec(del, resp);
    std::get<0>(resp).value();
}

} // namespace akv::messaging
