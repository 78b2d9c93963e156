// Which node serves each of the 16384 hash slots of a Redis Cluster, read from a CLUSTER SHARDS
// reply (Redis 7.0+) or a CLUSTER SLOTS reply (older servers). Sans-I/O: the caller asks, this
// reads the reply tree (RESP2 or RESP3) and answers slot lookups in O(1).
#pragma once

#include <akv/config.hpp>
#include <akv/resp/value.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace akv::cluster {

// A master and its replicas. Replicas whose health is "fail" are left out; a failing master is
// kept, since it owns its slots until a replica takes over.
struct shard {
    endpoint master;
    std::vector<endpoint> replicas;
    std::string master_id; // the node id; empty when the reply did not give it

    friend bool operator==(const shard&, const shard&) = default;
};

class slot_map {
public:
    // Fills the table at run time. From a constant initializer, g++ -O2 wrote each of the 16384
    // slots with a store of its own wherever a slot_map was made, and its dead store elimination
    // spent about 20 s on each (7 minutes for a test file that makes 20).
    slot_map() noexcept { owner_.fill(unassigned); }

    // Parse a reply into `out`. Returns std::nullopt on success, else what was wrong and where,
    // "CLUSTER SHARDS: shard 2: node 1: missing \"port\"" (indices from 0); `out` is then left
    // as it was. Never throws, whatever the reply holds.
    //
    // `tls`: the nodes are reached over TLS, so their "tls-port" is the one to use (SHARDS; a
    // node without one is an error, never a silent fall back to plain "port"). CLUSTER SLOTS
    // gives one port per node, the server's choice (the TLS one on a TLS cluster), so `tls` is
    // not used there.
    //
    // A node's host is its "endpoint" (the one cluster-preferred-endpoint-type chose), or its
    // "ip" when the endpoint is unknown ("?", empty or null). `origin_host`, when not empty,
    // stands for a host that is still unknown: pass the host the reply came from, which is what
    // Redis asks clients to use for a node announced without an address. A node that no other
    // node has met yet (a one-node cluster) gives "" for its own "ip", "endpoint" and SLOTS host.
    static std::optional<std::string> from_shards(const resp::value& reply, slot_map& out,
                                                  bool tls = false,
                                                  std::string_view origin_host = {});
    static std::optional<std::string> from_slots(const resp::value& reply, slot_map& out,
                                                 bool tls = false,
                                                 std::string_view origin_host = {});

    // The shard serving `slot`; nullptr when no node does (or slot >= 16384).
    const shard* owner(std::uint16_t slot) const noexcept;

    // After a MOVED: `slot` now belongs to `master`, a shard of its own if no shard has that
    // master yet. A former replica that became master stays listed as a replica of its old shard
    // until the next full refresh.
    void assign(std::uint16_t slot, const endpoint& master);

    // Distinct masters serving at least one slot, in shard order: where keys live, and where an
    // all_masters command goes.
    std::vector<endpoint> masters() const;
    // Every distinct node of the map: masters (with or without slots) and replicas.
    std::vector<endpoint> nodes() const;
    // Every shard parsed or created, including those serving no slot.
    const std::vector<shard>& shards() const noexcept { return shards_; }

    std::size_t covered_slots() const noexcept { return covered_; }
    // No slot is served by any node (the cluster is not set up yet, or nothing was parsed).
    bool empty() const noexcept { return covered_ == 0; }

private:
    static constexpr std::uint16_t unassigned = 0xFFFF;

    std::size_t shard_of(const endpoint& master) const noexcept; // shards_.size() if none
    // Slots first..last go to shards_[index]; returns a slot another shard serves already
    // (the range is then applied only up to it).
    std::optional<std::uint16_t> serve(std::size_t index, std::uint16_t first, std::uint16_t last);
    void set_owner(std::uint16_t slot, std::uint16_t index) noexcept;
    void drop_idle_shards(); // removes the shards serving no slot, renumbering owner_

    std::vector<shard> shards_;
    std::vector<std::size_t> owned_; // slots served by each shard
    std::array<std::uint16_t, 16384> owner_; // the shard of each slot, or unassigned
    std::size_t covered_ = 0;
};

} // namespace akv::cluster
