#include "partitions.hpp"

#include "scripts.hpp"

#include <akv/cluster_slot.hpp>
#include <akv/queue/job.hpp>
#include <akv/queue/partitioned.hpp>
#include <akv/queue/queue_keys.hpp>

#include <algorithm>
#include <charconv>
#include <map>

namespace akv::queue {

std::string partitioned_id(std::size_t partition, std::string_view id) {
    std::string out = std::to_string(partition);
    out += ':';
    out += id;
    return out;
}

namespace {
bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
} // namespace

std::optional<partition_job_id> parse_partitioned_id(std::string_view id) {
    const auto colon = id.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const std::string_view index = id.substr(0, colon), rest = id.substr(colon + 1);
    if (!all_digits(index) || !all_digits(rest) || index.size() > 9) return std::nullopt;
    partition_job_id out;
    std::from_chars(index.data(), index.data() + index.size(), out.partition);
    out.id = rest;
    return out;
}

std::size_t partition_for_key(std::string_view key, std::size_t partitions) noexcept {
    if (partitions <= 1) return 0;
    std::uint64_t h = 14695981039346656037ull; // FNV-1a, 64 bits
    for (unsigned char c : key) {
        h ^= c;
        h *= 1099511628211ull;
    }
    // Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm" (2014).
    std::int64_t b = -1, j = 0;
    while (j < static_cast<std::int64_t>(partitions)) {
        b = j;
        h = h * 2862933555777941757ull + 1;
        j = static_cast<std::int64_t>(
            static_cast<double>(b + 1) *
            (static_cast<double>(1ll << 31) / static_cast<double>((h >> 33) + 1)));
    }
    return static_cast<std::size_t>(b);
}

std::optional<std::size_t> partition_of(std::string_view partition_queue) noexcept {
    const auto tilde = partition_queue.rfind('~');
    if (tilde == std::string_view::npos) return std::nullopt;
    std::string_view suffix = partition_queue.substr(tilde + 1);
    const auto dot = suffix.find('.');
    const std::string_view index = suffix.substr(0, dot);
    if (!all_digits(index) || index.size() > 9) return std::nullopt;
    if (dot != std::string_view::npos && !all_digits(suffix.substr(dot + 1))) return std::nullopt;
    std::size_t out = 0;
    std::from_chars(index.data(), index.data() + index.size(), out);
    return out;
}

namespace detail {

std::string partition_name(std::string_view queue, std::size_t index, std::size_t salt) {
    std::string name(queue);
    name += '~';
    name += std::to_string(index);
    if (salt > 0) {
        name += '.';
        name += std::to_string(salt);
    }
    return name;
}

std::vector<std::string>
plan_partition_names(std::string_view queue, std::size_t first, std::size_t count,
                     std::span<const std::string> masters,
                     std::span<const std::string> owners_before,
                     const std::function<std::string(std::uint16_t slot)>& owner_of) {
    // Salts tried before giving up on an even spread: with M masters a salt lands on a given
    // one with probability about 1/M, so this many misses in a row do not happen by chance.
    constexpr std::size_t max_salt = 4096;
    std::map<std::string, std::size_t> load;
    for (const auto& m : masters)
        load[m];
    for (const auto& o : owners_before)
        if (auto it = load.find(o); it != load.end()) ++it->second;
    std::vector<std::string> names;
    for (std::size_t index = first; index < first + count; ++index) {
        std::size_t salt = 0;
        if (load.size() > 1) {
            std::size_t least = SIZE_MAX;
            for (const auto& [m, n] : load)
                least = std::min(least, n);
            for (std::size_t s = 0; s < max_salt; ++s) {
                const auto it = load.find(owner_of(cluster_slot(partition_name(queue, index, s))));
                if (it != load.end() && it->second == least) {
                    salt = s;
                    break;
                }
            }
        }
        names.push_back(partition_name(queue, index, salt));
        if (auto it = load.find(owner_of(cluster_slot(names.back()))); it != load.end())
            ++it->second;
    }
    return names;
}

namespace {

// Who serves a slot, as the client's slot map says now ("" when unknown).
std::string owner_text(client& c, std::uint16_t slot) {
    const auto at = c.master_of(slot);
    return at ? to_string(*at) : std::string();
}

std::vector<std::string> plan(client& c, std::string_view queue,
                              const std::vector<std::string>& before, std::size_t more) {
    std::vector<std::string> masters;
    for (const auto& m : c.masters())
        masters.push_back(to_string(m));
    std::vector<std::string> owners;
    for (const auto& name : before)
        owners.push_back(owner_text(c, cluster_slot(name)));
    return plan_partition_names(queue, before.size(), more, masters, owners,
                                [&c](std::uint16_t slot) { return owner_text(c, slot); });
}

void check_count(const std::string& queue, std::size_t count, const char* what) {
    if (count > max_partitions)
        throw_error(error::invalid_config, "queue \"" + queue + "\": " + what + " " +
                                               std::to_string(count) + ": at most " +
                                               std::to_string(max_partitions));
}

[[noreturn]] void mismatch(const std::string& queue, std::size_t wanted, std::size_t stored) {
    throw_error(error::partition_mismatch,
                "queue \"" + queue + "\": opened with " + std::to_string(wanted) +
                    " partitions, but it has " + std::to_string(stored) + " (akvq:{" + queue +
                    "}:partitions): open it with " + std::to_string(stored) +
                    ", or 0 to follow the stored count, or add partitions with "
                    "partitioned_admin::add_partitions");
}

// partitions.lua: {status, names...}.
asio::awaitable<std::pair<std::string, std::vector<std::string>>>
run_partitions(client& c, const std::string& queue, std::size_t had,
               const std::vector<std::string>& names) {
    const queue_keys keys(queue);
    std::vector<std::string_view> args;
    const std::string had_text = std::to_string(had);
    args.push_back(had_text);
    for (const auto& n : names)
        args.push_back(n);
    response<std::vector<std::string>> resp;
    co_await scripts::partitions().run(c, std::array<std::string_view, 1>{keys.prefix}, args, resp);
    auto& r = std::get<0>(resp);
    if (r.has_error())
        throw_error(error::script_error,
                    "queue \"" + queue + "\": partitions.lua: " + r.error().message);
    auto& v = r.value();
    if (v.empty())
        throw_error(error::script_error, "queue \"" + queue + "\": partitions.lua: empty reply");
    std::string status = std::move(v.front());
    v.erase(v.begin());
    co_return std::make_pair(std::move(status), std::move(v));
}

} // namespace

asio::awaitable<std::vector<std::string>> read_partitions(client& c, const std::string& queue) {
    const queue_keys keys(queue);
    request req;
    req.push("LRANGE", keys.partitions, 0, -1);
    response<std::vector<std::string>> resp;
    co_await c.exec(req, resp);
    co_return std::move(std::get<0>(resp).value());
}

asio::awaitable<std::vector<std::string>> open_partitions(client& c, const std::string& queue,
                                                          std::size_t wanted) {
    validate_queue_name(queue);
    check_count(queue, wanted, "partitions");
    std::vector<std::string> names = co_await read_partitions(c, queue);
    if (names.empty()) {
        if (wanted == 0)
            throw_error(error::unknown_queue,
                        "queue \"" + queue + "\": not a partitioned queue (no akvq:{" + queue +
                            "}:partitions); give a partition count to create it");
        std::vector<std::string> planned = plan(c, queue, {}, wanted);
        for (const auto& n : planned)
            validate_queue_name(n);
        auto created = co_await run_partitions(c, queue, 0, planned);
        if (created.first == "plain")
            throw_error(error::invalid_config,
                        "queue \"" + queue +
                            "\" is a plain queue (jobs were enqueued in it): a partitioned "
                            "queue needs a name of its own");
        names = std::move(created.second); // ours, or those of whoever created it first
    }
    if (wanted != 0 && names.size() != wanted) mismatch(queue, wanted, names.size());
    co_return names;
}

std::vector<std::string> plan_more(client& c, const std::string& queue,
                                   const std::vector<std::string>& current, std::size_t more) {
    check_count(queue, current.size() + more, "partitions after adding");
    std::vector<std::string> planned = plan(c, queue, current, more);
    for (const auto& n : planned)
        validate_queue_name(n);
    return planned;
}

asio::awaitable<std::vector<std::string>>
append_partitions(client& c, const std::string& queue, const std::vector<std::string>& current,
                  const std::vector<std::string>& planned) {
    if (planned.empty()) co_return current;
    auto appended = co_await run_partitions(c, queue, current.size(), planned);
    std::vector<std::string>& stored = appended.second;
    if (appended.first == "changed")
        throw_error(error::partition_mismatch,
                    "queue \"" + queue + "\": its partitions changed while adding (" +
                        std::to_string(current.size()) + " read, " + std::to_string(stored.size()) +
                        " now): nothing added");
    co_return stored;
}

} // namespace detail

} // namespace akv::queue
