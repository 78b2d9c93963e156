// One concurrency budget for the workers of a partitioned queue's partitions
// (partitioned_worker, akv/queue/partitioned.hpp): together they hold at most concurrency +
// prefetch jobs and run at most concurrency handlers, the partitions taking turns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace akv::queue {
class worker;
}

namespace akv::queue::detail {

// A partition's worker as the budget weighs it.
struct share {
    std::size_t held = 0;     // jobs leased to it: running, prefetched, or being claimed
    bool hungry = false;      // it would claim: its last claim found jobs, it is not stopping,
                              // paused, rate limited, or failing to reach Redis
    std::uint64_t served = 0; // when it was last granted jobs (a sequence number; 0: never)
};

// How many of the `want` jobs member `m` asks for it may claim now, when all may hold `limit`.
// Each hungry member may hold up to an even share of the limit (rounded up): one that is not
// hungry leaves its share to the others. A member waits for its turn while another hungry one
// holds fewer jobs, or as many and was served longer ago: what those could still take of their
// share is kept for them. Sans-I/O: tests/unit/queue_partitions_test.cpp drives it.
std::size_t fair_grant(std::span<const share> members, std::size_t m, std::size_t limit,
                       std::size_t want) noexcept;

class claim_budget {
public:
    claim_budget(std::size_t concurrency, std::size_t prefetch)
        : concurrency_(concurrency)
        , limit_(concurrency + prefetch) {}

    // `w` takes part from now on (it must outlive the budget's use).
    void join(worker& w);
    // How many of `want` jobs `w` may claim now (fair_grant).
    std::size_t grant(const worker& w, std::size_t want);
    // Starts prefetched jobs of the partitions in turn while fewer than `concurrency` handlers
    // run in all, then wakes the pump of each partition that was given less than it asked for
    // and would be given some now: a job that ended in one partition may have freed a slot
    // that is another's turn. (Not every pump at every job's end: most would find nothing.)
    void start_ready();

private:
    share share_of(std::size_t i) const;

    std::size_t concurrency_;
    std::size_t limit_;
    std::vector<worker*> members_;
    std::vector<std::uint64_t> served_; // per member
    std::vector<char> denied_;          // per member: its last grant was less than it asked
    std::uint64_t grants_ = 0;
    std::size_t next_start_ = 0; // the member whose prefetched job starts first
    std::vector<share> scratch_;
};

} // namespace akv::queue::detail
