// A consumer of a stream's consumer group: batches of new entries, acks, takeover of entries a
// dead consumer left pending, and a dead-letter stream for entries that keep failing.
#pragma once

#include <akv/messaging/stream.hpp>

#include <chrono>

namespace akv::messaging {

struct group_options {
    std::string stream;
    std::string group;
    std::string consumer;
    std::chrono::milliseconds claim_idle{30000}; // pending longer than this: its consumer died
    std::size_t max_deliveries = 5;              // beyond this: to the dead-letter stream
    // Default "<stream>:dead"; on a cluster, for a stream without a hash tag,
    // "{<stream>}:dead", which hashes to the stream's slot. The dead-letter stream is written in
    // the same Lua call or transaction that acks the stream, so on a cluster both must share a
    // slot: an explicit one on another slot is refused (error::invalid_config, naming both).
    std::string dead_letter;
    std::string start_id = "0"; // where a group created here starts
};

// The default dead-letter stream of `stream` (see group_options::dead_letter).
std::string default_dead_letter(std::string_view stream, bool cluster);
// Throws system_error(error::invalid_config) naming both keys when `a` and `b` hash to
// different cluster slots (`what`: who needs them together).
void require_same_slot(std::string_view what, std::string_view a_role, std::string_view a,
                       std::string_view b_role, std::string_view b);

class consumer_group {
public:
    // Throws system_error(error::invalid_config) on a cluster when the stream and the
    // dead-letter stream are on different slots.
    consumer_group(client& c, group_options options);

    // XGROUP CREATE ... MKSTREAM; a group that exists already is fine.
    asio::awaitable<void> create();
    // Up to `count` entries never delivered to this group, waiting at most `block` for the
    // first (XREADGROUP runs on a blocking-command connection, not the shared one). An entry
    // wakes the read at once, but Redis checks a BLOCK's timeout only every ~100 ms (hz 10):
    // an empty read takes at least that long, whatever `block` says.
    // block 0: no BLOCK, what is there now (on the shared connection, no waiting at all).
    asio::awaitable<std::vector<stream_entry>> read(std::size_t count,
                                                    std::chrono::milliseconds block);
    // Takes over up to `count` entries idle longer than claim_idle (one Lua call); entries
    // delivered more than max_deliveries times go to the dead-letter stream instead.
    asio::awaitable<std::vector<stream_entry>> claim_stale(std::size_t count);
    asio::awaitable<void> ack(const std::vector<std::string>& ids);
    // Moves one entry to the dead-letter stream with `reason`, and acks it, atomically.
    asio::awaitable<void> dead_letter(const stream_entry& entry, std::string_view reason);
    // XGROUP DELCONSUMER, refused while the consumer still owns pending entries (Redis would
    // drop them from the group: they would never be processed).
    asio::awaitable<void> remove_consumer();
    asio::awaitable<std::size_t> pending();

    const group_options& options() const noexcept { return options_; }

private:
    client& client_;
    group_options options_;
};

} // namespace akv::messaging
