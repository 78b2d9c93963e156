// The stream batcher: read up to N entries or wait at most T, hand the whole batch to a
// handler (a model, say), then write its outputs and ack the inputs in one MULTI/EXEC, so a
// crash never acks an input without its output. What replaces a RedisGears + RedisAI pipeline.
#pragma once

#include <akv/messaging/consumer_group.hpp>

#include <functional>
#include <span>

namespace akv::messaging {

// Outputs for the output stream (any number, usually one per input).
using batch_handler =
    std::function<asio::awaitable<std::vector<field_list>>(std::span<const stream_entry>)>;

struct batcher_options {
    group_options group;
    // On a cluster: the same hash tag as group.stream ("{orders}:in", "{orders}:out"), since
    // one transaction writes it and acks the input; the batcher refuses other names up front.
    std::string output_stream;
    std::size_t max_batch = 64;
    std::chrono::milliseconds max_wait{50};
    trim_options output_trim; // MAXLEN only ('~' or '='); MINID is not applied
    std::chrono::milliseconds claim_every{1000};
    // Read the next batch in the commit's round trip (one round trip per batch, not two).
    // The entries read ahead are this consumer's (pending) while the current batch runs; if
    // it dies, another instance reclaims them after claim_idle, as any it had read.
    bool prefetch = true;
    // Every status_every (0: never), a status record for operators' consoles (akv::console),
    // expiring after three intervals so a batcher that died vanishes from them: a hash at
    // status_key (default batcher_status_key(group)) of the counters, the rates over the last
    // interval, when, and status_fields() (the model's name and version, say). One pipelined
    // HSET + PEXPIRE per interval, between batches, never inside a commit.
    std::chrono::milliseconds status_every{0};
    std::string status_key;
    std::function<field_list()> status_fields;
};

// Where a batcher's status record goes by default, "akv:batcher:<stream>:<group>:<consumer>":
// a console finds the live ones by SCAN of batcher_status_prefix.
inline constexpr std::string_view batcher_status_prefix = "akv:batcher:";
std::string batcher_status_key(const group_options& group);

struct batcher_stats {
    std::uint64_t batches = 0;
    std::uint64_t entries = 0;
    std::uint64_t outputs = 0;
    std::uint64_t reclaimed = 0;
    std::uint64_t handler_failures = 0;
    std::uint64_t status_failures = 0; // status records not written (the next one tries again)
};

// Batchers that share a client share its connection, where Redis answers pipelined requests
// together: they take turns. Give each batcher its own client when throughput matters.
class batcher {
public:
    // Throws system_error(error::invalid_config), naming both streams and their slots, on a
    // cluster when the input and output streams (or the dead-letter stream) do not share one.
    batcher(client& c, batcher_options options, batch_handler handler);

    // Creates the group if needed, then batches until stop(), then handles what it read ahead
    // (and deletes its status record). A batch whose handler throws is left pending: after
    // claim_idle it is retried, after max_deliveries it is dead-lettered. A commit that fails
    // throws error::script_error, naming why, with the batch's inputs left pending.
    asio::awaitable<void> run();
    // One batch, then the status record when one is due; the number of input entries it
    // committed (0 if none came within max_wait).
    asio::awaitable<std::size_t> run_once();
    void stop() noexcept { stopping_ = true; }
    // What run() does once stopped, for a loop of run_once() of its own: handles the entries
    // read ahead (this consumer's: another would claim them only after claim_idle) and deletes
    // the status record (so consoles drop it now, not at its expiry).
    asio::awaitable<void> finish();

    const batcher_stats& stats() const noexcept { return stats_; }
    consumer_group& group() noexcept { return group_; }

    // Test hook, called after the handler and before the commit: throwing there is a crash
    // between reading and writing.
    std::function<void(std::span<const stream_entry>)> before_commit;

private:
    asio::awaitable<std::vector<stream_entry>> collect();
    asio::awaitable<void> commit(std::span<const stream_entry> inputs,
                                 const std::vector<field_list>& outputs);
    asio::awaitable<std::size_t> run_batch();
    asio::awaitable<void> write_status(std::chrono::steady_clock::time_point now);

    client& client_;
    batcher_options options_;
    batch_handler handler_;
    consumer_group group_;
    std::chrono::steady_clock::time_point next_claim_{};
    batcher_stats stats_;
    std::vector<stream_entry> prefetched_; // read with the last commit: the next batch's start
    bool stopping_ = false;
    // The status record: when the next is due, and the counters at the last (for its rates).
    std::chrono::steady_clock::time_point next_status_{};
    std::chrono::steady_clock::time_point status_at_{};
    batcher_stats status_stats_;
};

} // namespace akv::messaging
