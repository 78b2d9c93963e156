#include <akv/cluster_slot.hpp>
#include <akv/messaging/consumer_group.hpp>
#include <akv/messaging/dead_letter.hpp>
#include <akv/script.hpp>

#include "lua_scripts.hpp"

#include <algorithm>
#include <charconv>

namespace akv::messaging {

namespace {

const script& requeue_script() {
    static const script s(lua::messaging_requeue_dead); // immutable after construction
    return s;
}

bool on_cluster(const client& c) {
    return c.get_config().topology == config::mode::cluster;
}

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// An entry's full id, "MS-SEQ": a bare "MS" would be a range in XRANGE, not one entry.
void require_entry_id(std::string_view stream, std::string_view id) {
    const auto dash = id.find('-');
    if (dash != std::string_view::npos && all_digits(id.substr(0, dash)) &&
        all_digits(id.substr(dash + 1)))
        return;
    throw_error(error::invalid_config, "stream \"" + std::string(stream) + "\": \"" +
                                           std::string(id) +
                                           "\" is not an entry id (MILLISECONDS-SEQUENCE)");
}

std::uint64_t to_count(std::string_view text) {
    std::uint64_t n = 0;
    std::from_chars(text.data(), text.data() + text.size(), n);
    return n;
}

} // namespace

std::optional<dead_entry> dead_entry_of(stream_entry entry) {
    dead_entry d;
    bool was_dead = false;
    std::size_t own = 0;
    for (; own < entry.fields.size(); ++own) {
        auto& [name, value] = entry.fields[own];
        if (name == "dead:id") {
            d.source_id = std::move(value);
            was_dead = true;
        } else if (name == "dead:group") {
            d.group = std::move(value);
        } else if (name == "dead:deliveries") {
            d.deliveries = to_count(value);
        } else if (name == "dead:reason") {
            d.reason = std::move(value);
        } else {
            break;
        }
    }
    if (!was_dead) return std::nullopt;
    d.id = std::move(entry.id);
    d.fields.assign(
        std::make_move_iterator(entry.fields.begin() + static_cast<std::ptrdiff_t>(own)),
        std::make_move_iterator(entry.fields.end()));
    return d;
}

std::vector<std::string> dead_letter_sources(std::string_view dead, bool cluster) {
    constexpr std::string_view suffix = ":dead";
    if (dead.size() <= suffix.size() || !dead.ends_with(suffix)) return {};
    const std::string_view base = dead.substr(0, dead.size() - suffix.size());
    // "{X}:dead" is the default of "{X}", and on a cluster of "X" too (default_dead_letter
    // puts the braces around a name without a hash tag).
    const bool braced = base.size() > 2 && base.front() == '{' && base.back() == '}' &&
                        base.substr(1, base.size() - 2).find_first_of("{}") == std::string::npos;
    if (!braced) return {std::string(base)};
    std::string bare(base.substr(1, base.size() - 2));
    if (cluster) return {std::move(bare), std::string(base)};
    return {std::string(base), std::move(bare)};
}

dead_letters::dead_letters(client& c, std::string dead_stream, std::string source)
    : client_(c)
    , dead_(std::move(dead_stream))
    , source_(std::move(source)) {
    if (source_.empty() && dead_letter_sources(dead_, on_cluster(c)).empty())
        throw_error(error::not_dead_letter,
                    "stream \"" + dead_ +
                        "\" is not a dead-letter stream (named \"<stream>:dead\"; see "
                        "group_options::dead_letter)");
    if (!source_.empty() && on_cluster(c))
        require_same_slot("dead_letters", "dead-letter stream", dead_, "source stream", source_);
}

asio::awaitable<std::string> dead_letters::source() {
    if (!source_.empty()) co_return source_;
    const std::vector<std::string> candidates = dead_letter_sources(dead_, on_cluster(client_));
    request req({.idempotent = true});
    for (const auto& name : candidates)
        req.push("TYPE", name);
    generic_response resp;
    co_await client_.exec(req, resp);
    for (std::size_t i = 0; i < candidates.size(); ++i)
        if (resp.at(i).value().str == "stream") {
            if (on_cluster(client_))
                require_same_slot("dead_letters", "dead-letter stream", dead_, "source stream",
                                  candidates[i]);
            source_ = candidates[i];
            co_return source_;
        }
    throw_error(error::not_dead_letter, "dead-letter stream \"" + dead_ +
                                            "\": its source stream \"" + candidates.front() +
                                            "\" does not exist (entries sent there would reach "
                                            "no consumer group)");
}

asio::awaitable<dead_letters::moved>
dead_letters::move(const std::string& first, const std::string& last, std::size_t count) {
    const std::string source_stream = co_await source();
    const std::vector<std::string> keys{dead_, source_stream};
    const std::vector<std::string> args{first, last, std::to_string(count)};
    response<resp::value> resp;
    co_await requeue_script().run(client_, keys, args, resp);
    auto& r = std::get<0>(resp);
    if (r.has_error()) throw_error(error::script_error, "requeue_dead.lua: " + r.error().message);
    auto& reply = r.value().elements;
    if (!reply.empty() && reply[0].str == "no_source") {
        source_.clear(); // gone since it was found: found again next time
        throw_error(error::not_dead_letter, "dead-letter stream \"" + dead_ +
                                                "\": its source stream \"" + source_stream +
                                                "\" is gone (nothing was sent back)");
    }
    if (reply.size() < 3) throw_error(error::script_error, "requeue_dead.lua: a short reply");
    moved m;
    m.last_seen = std::move(reply[1].str);
    m.skipped = to_count(reply[2].str);
    for (std::size_t i = 3; i < reply.size(); ++i)
        m.new_ids.push_back(std::move(reply[i].str));
    co_return m;
}

asio::awaitable<std::string> dead_letters::requeue(std::string_view id) {
    require_entry_id(dead_, id);
    const std::string one(id);
    moved m = co_await move(one, one, 1);
    if (m.last_seen.empty())
        throw_error(error::unknown_entry,
                    "dead-letter stream \"" + dead_ + "\": no entry \"" + one + "\"");
    if (m.new_ids.empty())
        throw_error(error::not_dead_letter, "dead-letter stream \"" + dead_ + "\": entry \"" + one +
                                                "\" was not dead-lettered by a consumer group "
                                                "(no dead:id field): left as it is");
    co_return std::move(m.new_ids.front());
}

asio::awaitable<requeue_result> dead_letters::requeue_all(std::size_t step) {
    // The newest entry now bounds the work: entries dead-lettered meanwhile wait for next time.
    request req({.idempotent = true});
    req.push("XREVRANGE", dead_, "+", "-", "COUNT", 1);
    response<resp::value> newest;
    co_await client_.exec(req, newest);
    const std::vector<stream_entry> last = entries_from(std::get<0>(newest).value());
    requeue_result result;
    if (last.empty()) co_return result;
    std::string from = "-";
    for (;;) {
        const moved m = co_await move(from, last.front().id, std::max<std::size_t>(step, 1));
        result.requeued += m.new_ids.size();
        result.skipped += m.skipped;
        if (m.last_seen.empty() || m.last_seen == last.front().id) break;
        from = "(" + m.last_seen;
    }
    co_return result;
}

asio::awaitable<void> dead_letters::remove(std::string_view id) {
    require_entry_id(dead_, id);
    request req;
    req.push("XDEL", dead_, id);
    response<long long> resp;
    co_await client_.exec(req, resp);
    if (std::get<0>(resp).value() == 0)
        throw_error(error::unknown_entry,
                    "dead-letter stream \"" + dead_ + "\": no entry \"" + std::string(id) + "\"");
}

} // namespace akv::messaging
