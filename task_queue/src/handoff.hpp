// The hand-off from a finished child of a flow to its parent, across slots (task_queue/README.md,
// "Workflows: the hand-off across slots"): the notices a state move left in the child's queue
// outbox are applied in their parents' slots (apply.lua, idempotent), then deleted.
#pragma once

#include <akv/client.hpp>
#include <akv/resp/value.hpp>

#include <string>
#include <vector>

namespace akv::queue::detail {

struct notice {
    std::string outbox_queue; // the queue whose outbox holds it (the child's)
    std::string stream_id;
    std::string parent_queue, parent_id, index, policy, child, outcome;
};

// Notices of a script's reply (lib.lua notify_parent: stream id and text each) from `queue`'s
// outbox.
void read_notices(const resp::value& flat, const std::string& queue, std::vector<notice>& out);

// Applies the notices, then the ones their parents left in turn (a parent failed by a child, a
// group completed), deleting each from its outbox once applied. Throws when a call fails:
// what was not applied stays in the outboxes, for outbox.lua's recovery.
asio::awaitable<void> hand_off(client& c, std::vector<notice> notices);

// Notices older than `age` in `queue`'s outbox (up to `limit`): left by a process that died.
asio::awaitable<std::vector<notice>> stale_notices(client& c, const std::string& queue,
                                                   std::chrono::milliseconds age,
                                                   std::size_t limit);

} // namespace akv::queue::detail
