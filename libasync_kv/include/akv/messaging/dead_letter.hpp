// Dead-letter streams: the entries a consumer_group gave up on (group_options::dead_letter),
// each with where it came from and why in front of its own fields. Read back here, and sent
// back to the source stream (its own fields only) once what made them fail is fixed.
//
//   akv::messaging::dead_letters dead(client, "orders:dead"); // source "orders", by the name
//   co_await dead.requeue("1700000000000-0");                 // back into "orders", and gone here
#pragma once

#include <akv/messaging/stream.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace akv::messaging {

// An entry of a dead-letter stream, as consumer_group wrote it.
struct dead_entry {
    std::string id;               // in the dead-letter stream
    std::string source_id;        // "dead:id": its id in the source stream
    std::string group;            // "dead:group": the group that gave up on it
    std::uint64_t deliveries = 0; // "dead:deliveries"
    std::string reason;           // "dead:reason"
    field_list fields;            // the entry's own, as they were
};

// The dead:* fields consumer_group puts in front of the entry's own, taken apart; nullopt for
// an entry without "dead:id" among them (not written by a consumer_group).
std::optional<dead_entry> dead_entry_of(stream_entry entry);

// The streams whose default dead-letter stream (default_dead_letter) is named `dead`, the
// likelier first: "orders:dead" -> {"orders"}; "{orders}:dead" -> {"{orders}", "orders"}, or
// {"orders", "{orders}"} on a cluster, where that is the default of both. Empty: the name is
// not a dead-letter stream's.
std::vector<std::string> dead_letter_sources(std::string_view dead, bool cluster);

struct requeue_result {
    std::size_t requeued = 0; // sent back to the source
    std::size_t skipped = 0;  // left where they were: not dead-lettered by a consumer_group
};

class dead_letters {
public:
    // `source` empty: the first of dead_letter_sources(dead_stream) that is a stream, found at
    // the first call. Throws system_error(error::not_dead_letter) when no source is given and
    // the name is not a dead-letter stream's; on a cluster, error::invalid_config when the two
    // streams are on different slots (one Lua call moves an entry from one to the other).
    dead_letters(client& c, std::string dead_stream, std::string source = {});

    // The source stream. Throws error::not_dead_letter when none of the candidates is a stream
    // (the source was deleted: entries sent back would reach no consumer group).
    asio::awaitable<std::string> source();

    // Sends one entry back: its own fields are added to the source stream (a new id, so the
    // source's consumer groups read it as new) and it leaves the dead-letter stream, in one
    // step. The new id. Throws error::unknown_entry (no such entry), error::not_dead_letter
    // (an entry without the dead:* fields), error::invalid_config (a malformed id).
    asio::awaitable<std::string> requeue(std::string_view id);
    // Sends back every entry there now (not ones dead-lettered meanwhile), in steps of `step`
    // entries so Redis is never held long; entries without the dead:* fields stay.
    asio::awaitable<requeue_result> requeue_all(std::size_t step = 100);
    // Deletes one entry (XDEL). Throws error::unknown_entry or error::invalid_config as requeue.
    asio::awaitable<void> remove(std::string_view id);

    const std::string& stream() const noexcept { return dead_; }

private:
    // Moves the dead entries from `first` to `last` (XRANGE bounds), at most `count`.
    struct moved {
        std::string last_seen; // the last entry looked at; empty: none in the range
        std::size_t skipped = 0;
        std::vector<std::string> new_ids;
    };
    asio::awaitable<moved> move(const std::string& first, const std::string& last,
                                std::size_t count);

    client& client_;
    std::string dead_;
    std::string source_; // empty until found
};

} // namespace akv::messaging
