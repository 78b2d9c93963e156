// Reading CLUSTER SHARDS and CLUSTER SLOTS. Both arrive as RESP2 arrays or RESP3 maps, so a
// "map" here is either a map or an array of key, value, key, value. Every element is checked
// before use: a malformed reply gives a message, never an out-of-range access.
#include <akv/cluster/slot_map.hpp>

#include <akv/cluster_slot.hpp>

#include <algorithm>
#include <charconv>
#include <limits>

namespace akv::cluster {

namespace {

using resp::type;
using resp::value;

constexpr std::size_t max_shards = 0xFFFE;     // shard indices are 16 bits, 0xFFFF is "none"
constexpr std::size_t idle_shards_kept = 1024; // Redis Cluster's suggested maximum of nodes

bool is_string(const value& v) noexcept {
    return v.data_type == type::simple_string || v.data_type == type::blob_string ||
           v.data_type == type::verbatim_string;
}

bool is_list(const value& v) noexcept {
    return v.data_type == type::array || v.data_type == type::set;
}

bool is_map_like(const value& v) noexcept {
    return v.data_type == type::map || (v.data_type == type::array && v.elements.size() % 2 == 0);
}

// How a value looks in a message: its text for a scalar, its type for an aggregate.
std::string shown(const value& v) {
    if (v.is_aggregate()) {
        const std::string_view name = resp::to_string(v.data_type);
        return (name.front() == 'a' ? "an " : "a ") + std::string(name);
    }
    if (v.is_null()) return "null";
    return "\"" + (v.str.size() > 40 ? v.str.substr(0, 40) + "..." : v.str) + "\"";
}

std::string quoted(std::string_view name) {
    return "\"" + std::string(name) + "\"";
}

const value* field(const value& map, std::string_view name) noexcept {
    for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2) {
        const value& key = map.elements[i];
        if (is_string(key) && key.str == name) return &map.elements[i + 1];
    }
    return nullptr;
}

std::string text_of(const value* v) {
    return v != nullptr && is_string(*v) ? v->str : std::string();
}

// An integer sent as a number or as a string of digits.
std::optional<long long> integer_of(const value& v) noexcept {
    if ((v.data_type != type::number && !is_string(v)) || v.str.empty()) return std::nullopt;
    long long n = 0;
    const char* end = v.str.data() + v.str.size();
    const auto [ptr, ec] = std::from_chars(v.str.data(), end, n);
    if (ec != std::errc() || ptr != end) return std::nullopt;
    return n;
}

// "?", empty and null all mean that the node did not announce that address.
bool is_known_host(const value* v) noexcept {
    return v != nullptr && is_string(*v) && !v->str.empty() && v->str != "?";
}

std::optional<std::string> read_slot(const value& v, std::uint16_t& out) {
    const auto n = integer_of(v);
    if (!n || *n < 0 || *n >= cluster_slots) return "expected a slot number, got " + shown(v);
    out = static_cast<std::uint16_t>(*n);
    return std::nullopt;
}

std::optional<std::string> read_port(const value* v, std::string_view name, std::uint16_t& out) {
    if (v == nullptr) return "missing " + quoted(name);
    const auto n = integer_of(*v);
    if (!n || *n <= 0 || *n > std::numeric_limits<std::uint16_t>::max())
        return quoted(name) + ": expected a port number, got " + shown(*v);
    out = static_cast<std::uint16_t>(*n);
    return std::nullopt;
}

// A CLUSTER SHARDS node: "endpoint", else "ip", else the host the reply came from.
std::optional<std::string> read_shards_node(const value& node, bool tls,
                                            std::string_view origin_host, endpoint& out) {
    const value* host = field(node, "endpoint");
    if (!is_known_host(host)) host = field(node, "ip");
    if (is_known_host(host))
        out.host = host->str;
    else if (!origin_host.empty())
        out.host = origin_host;
    else if (host == nullptr)
        return std::string("missing \"ip\"");
    else
        return "\"ip\" is " + shown(*host) + " and no origin host was given";
    const std::string_view port_name = tls ? "tls-port" : "port";
    return read_port(field(node, port_name), port_name, out.port);
}

// A CLUSTER SLOTS node: [host, port, id, {metadata}] (id since 4.0, metadata since 7.0).
std::optional<std::string> read_slots_node(const value& node, std::string_view origin_host,
                                           endpoint& out, std::string& id) {
    if (!is_list(node) || node.elements.size() < 2)
        return "expected [host, port, ...], got " + shown(node);
    const value* host = &node.elements[0];
    if (!is_known_host(host) && node.elements.size() > 3 && is_map_like(node.elements[3]))
        host = field(node.elements[3], "ip");
    if (is_known_host(host))
        out.host = host->str;
    else if (!origin_host.empty())
        out.host = origin_host;
    else
        return "host is " + shown(node.elements[0]) + " and no origin host was given";
    if (auto e = read_port(&node.elements[1], "port", out.port)) return e;
    id = node.elements.size() > 2 ? text_of(&node.elements[2]) : std::string();
    return std::nullopt;
}

std::string endpoint_text(const endpoint& ep) {
    return ep.host + ":" + std::to_string(ep.port);
}

void add_distinct(std::vector<endpoint>& to, const endpoint& ep) {
    if (std::find(to.begin(), to.end(), ep) == to.end()) to.push_back(ep);
}

} // namespace

std::optional<std::string> slot_map::from_shards(const resp::value& reply, slot_map& out, bool tls,
                                                 std::string_view origin_host) {
    const std::string prefix = "CLUSTER SHARDS: ";
    if (reply.is_error()) return prefix + "the server replied: " + reply.str;
    if (!is_list(reply)) return prefix + "expected an array of shards, got " + shown(reply);

    slot_map map;
    std::vector<std::size_t> reply_shard; // the reply's index of each shard kept in `map`
    std::vector<std::pair<std::uint16_t, std::uint16_t>> ranges;
    for (std::size_t i = 0; i < reply.elements.size(); ++i) {
        const std::string where = prefix + "shard " + std::to_string(i) + ": ";
        const value& entry = reply.elements[i];
        if (!is_map_like(entry)) return where + "expected a map, got " + shown(entry);

        const value* slots = field(entry, "slots");
        if (slots == nullptr) return where + "missing \"slots\"";
        if (!is_list(*slots) || slots->elements.size() % 2 != 0)
            return where + "\"slots\": expected pairs of slot numbers, got " + shown(*slots) +
                   (is_list(*slots) ? " of " + std::to_string(slots->elements.size()) : "");
        ranges.clear();
        for (std::size_t k = 0; k < slots->elements.size(); k += 2) {
            std::uint16_t first = 0;
            std::uint16_t last = 0;
            const std::string at = where + "\"slots\"[" + std::to_string(k);
            if (auto e = read_slot(slots->elements[k], first)) return at + "]: " + *e;
            if (auto e = read_slot(slots->elements[k + 1], last))
                return where + "\"slots\"[" + std::to_string(k + 1) + "]: " + *e;
            if (first > last)
                return at + "]: range " + std::to_string(first) + "-" + std::to_string(last) +
                       " ends before it starts";
            ranges.emplace_back(first, last);
        }

        const value* nodes = field(entry, "nodes");
        if (nodes == nullptr) return where + "missing \"nodes\"";
        if (!is_list(*nodes)) return where + "\"nodes\": expected an array, got " + shown(*nodes);
        std::optional<shard> found;
        std::vector<endpoint> replicas;
        bool master_failing = false;
        for (std::size_t j = 0; j < nodes->elements.size(); ++j) {
            const std::string node_where = where + "node " + std::to_string(j) + ": ";
            const value& node = nodes->elements[j];
            if (!is_map_like(node)) return node_where + "expected a map, got " + shown(node);
            const value* role = field(node, "role");
            if (role == nullptr) return node_where + "missing \"role\"";
            const bool failing = text_of(field(node, "health")) == "fail";
            const bool is_master = text_of(role) == "master";
            if (!is_master && text_of(role) != "replica" && text_of(role) != "slave")
                return node_where + "\"role\": expected \"master\" or \"replica\", got " +
                       shown(*role);
            if (!is_master && failing) continue; // a failed replica serves nothing
            endpoint ep;
            if (auto e = read_shards_node(node, tls, origin_host, ep)) return node_where + *e;
            if (!is_master) {
                add_distinct(replicas, ep);
                continue;
            }
            if (found) return node_where + "a second master in the shard";
            found = shard{ep, {}, text_of(field(node, "id"))};
            master_failing = failing;
        }
        if (!found) {
            if (!ranges.empty()) return where + "serves slots but has no master";
            continue; // nothing to route to
        }
        // A failed master that lost its slots is a node that went away, not a shard.
        if (ranges.empty() && master_failing) continue;
        if (const std::size_t earlier = map.shard_of(found->master); earlier != map.shards_.size())
            return where + "master " + endpoint_text(found->master) + " is the master of shard " +
                   std::to_string(reply_shard[earlier]) + " too";
        if (map.shards_.size() >= max_shards) return where + "too many shards";
        found->replicas = std::move(replicas);
        map.shards_.push_back(std::move(*found));
        map.owned_.push_back(0);
        reply_shard.push_back(i);
        for (const auto& [first, last] : ranges)
            if (auto taken = map.serve(map.shards_.size() - 1, first, last))
                return where + "slot " + std::to_string(*taken) + " is served by shard " +
                       std::to_string(reply_shard[map.owner_[*taken]]) + " too";
    }
    out = std::move(map);
    return std::nullopt;
}

std::optional<std::string> slot_map::from_slots(const resp::value& reply, slot_map& out,
                                                bool /*tls*/, std::string_view origin_host) {
    const std::string prefix = "CLUSTER SLOTS: ";
    if (reply.is_error()) return prefix + "the server replied: " + reply.str;
    if (!is_list(reply)) return prefix + "expected an array of slot ranges, got " + shown(reply);

    slot_map map;
    for (std::size_t i = 0; i < reply.elements.size(); ++i) {
        const std::string where = prefix + "range " + std::to_string(i) + ": ";
        const value& entry = reply.elements[i];
        if (!is_list(entry) || entry.elements.size() < 3)
            return where + "expected [first, last, master, replicas...], got " + shown(entry) +
                   (is_list(entry) ? " of " + std::to_string(entry.elements.size()) : "");
        std::uint16_t first = 0;
        std::uint16_t last = 0;
        if (auto e = read_slot(entry.elements[0], first)) return where + "first slot: " + *e;
        if (auto e = read_slot(entry.elements[1], last)) return where + "last slot: " + *e;
        if (first > last)
            return where + "range " + std::to_string(first) + "-" + std::to_string(last) +
                   " ends before it starts";

        endpoint master;
        std::string id;
        if (auto e = read_slots_node(entry.elements[2], origin_host, master, id))
            return where + "master: " + *e;
        // Ranges of one master share a shard: found by id when the reply gives ids.
        std::size_t index = map.shards_.size();
        for (std::size_t s = 0; s < map.shards_.size(); ++s) {
            const shard& known = map.shards_[s];
            if ((!id.empty() && known.master_id == id) || known.master == master) index = s;
        }
        if (index == map.shards_.size()) {
            if (map.shards_.size() >= max_shards) return where + "too many shards";
            map.shards_.push_back(shard{master, {}, id});
            map.owned_.push_back(0);
        }
        for (std::size_t j = 3; j < entry.elements.size(); ++j) {
            endpoint replica;
            std::string replica_id;
            if (auto e = read_slots_node(entry.elements[j], origin_host, replica, replica_id))
                return where + "replica " + std::to_string(j - 3) + ": " + *e;
            add_distinct(map.shards_[index].replicas, replica);
        }
        if (auto taken = map.serve(index, first, last))
            return where + "slot " + std::to_string(*taken) + " is in an earlier range too";
    }
    out = std::move(map);
    return std::nullopt;
}

const shard* slot_map::owner(std::uint16_t slot) const noexcept {
    if (slot >= cluster_slots) return nullptr;
    const std::uint16_t index = owner_[slot];
    return index == unassigned ? nullptr : &shards_[index];
}

void slot_map::assign(std::uint16_t slot, const endpoint& master) {
    if (slot >= cluster_slots) return;
    std::size_t index = shard_of(master);
    if (index == shards_.size()) {
        // Moves to ever new masters (a long resharding without a refresh) leave shards that
        // serve nothing behind; past a cluster's size they are dropped.
        if (shards_.size() >= idle_shards_kept) {
            drop_idle_shards();
            index = shards_.size();
        }
        shards_.push_back(shard{master, {}, {}});
        owned_.push_back(0);
    }
    set_owner(slot, static_cast<std::uint16_t>(index));
}

std::vector<endpoint> slot_map::masters() const {
    std::vector<endpoint> out;
    for (std::size_t i = 0; i < shards_.size(); ++i)
        if (owned_[i] > 0) add_distinct(out, shards_[i].master);
    return out;
}

std::vector<endpoint> slot_map::nodes() const {
    std::vector<endpoint> out;
    for (const shard& s : shards_) {
        add_distinct(out, s.master);
        for (const endpoint& r : s.replicas)
            add_distinct(out, r);
    }
    return out;
}

std::size_t slot_map::shard_of(const endpoint& master) const noexcept {
    const auto it = std::find_if(shards_.begin(), shards_.end(),
                                 [&](const shard& s) { return s.master == master; });
    return static_cast<std::size_t>(it - shards_.begin());
}

std::optional<std::uint16_t> slot_map::serve(std::size_t index, std::uint16_t first,
                                             std::uint16_t last) {
    for (std::uint32_t slot = first; slot <= last; ++slot) {
        const std::uint16_t current = owner_[slot];
        if (current != unassigned && current != index) return static_cast<std::uint16_t>(slot);
        set_owner(static_cast<std::uint16_t>(slot), static_cast<std::uint16_t>(index));
    }
    return std::nullopt;
}

void slot_map::set_owner(std::uint16_t slot, std::uint16_t index) noexcept {
    std::uint16_t& current = owner_[slot];
    if (current == index) return;
    if (current == unassigned)
        ++covered_;
    else
        --owned_[current];
    ++owned_[index];
    current = index;
}

void slot_map::drop_idle_shards() {
    std::vector<std::uint16_t> renumbered(shards_.size(), unassigned);
    std::size_t kept = 0;
    for (std::size_t i = 0; i < shards_.size(); ++i) {
        if (owned_[i] == 0) continue;
        renumbered[i] = static_cast<std::uint16_t>(kept);
        if (kept != i) {
            shards_[kept] = std::move(shards_[i]);
            owned_[kept] = owned_[i];
        }
        ++kept;
    }
    shards_.resize(kept);
    owned_.resize(kept);
    for (std::uint16_t& index : owner_)
        if (index != unassigned) index = renumbered[index];
}

} // namespace akv::cluster
