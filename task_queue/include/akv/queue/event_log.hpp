// A queue's job events, durable: the Lua state moves append them to a stream of the queue
// (akvq:{q}:journal), one entry per move of a batch, trimmed to about 10,000 entries. Unlike
// the pub/sub channel (akvq:{q}:events), they outlive a disconnect and a restart (with
// persistence), and are read from any position:
//
//   akv::queue::event_log log(redis, "emails");
//   auto page = co_await log.read("0", 100);              // from the start
//   auto next = co_await log.wait(page.back().position, 100, 5s); // blocks on a pooled connection
//
// Events: added, debounced, active (text: the worker's token), progress (text), completed,
// retried (text "by hand" for admin::retry), failed, stalled (a lease that expired; the job
// runs again, or is also in a failed event once out of attempts), cancelled (text: the
// reason, when known), removed.
#pragma once

#include <akv/client.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace akv::queue {

struct job_event {
    std::string position;         // the stream id: read on from here
    std::int64_t at_ms = 0;       // the server's clock when it happened (from the id)
    std::string event;            // "completed", ...
    std::vector<std::string> ids; // the jobs it happened to
    std::string text;
};

class event_log {
public:
    event_log(client& c, std::string queue);

    // Up to `count` events after `after` ("0": from the oldest kept, "$" is not allowed here),
    // oldest first. Entries that are not events (written by something else) are skipped.
    asio::awaitable<std::vector<job_event>> read(std::string after, std::size_t count);
    // As read(), but waits up to `timeout` for the first one (XREAD BLOCK, on one of the
    // client's pooled connections); empty if none came.
    asio::awaitable<std::vector<job_event>> wait(std::string after, std::size_t count,
                                                 std::chrono::milliseconds timeout);
    // The position of the newest event ("0-0" when there is none): read on from here to see
    // only what happens next.
    asio::awaitable<std::string> last_position();

    const std::string& stream() const noexcept { return stream_; }

private:
    client& client_;
    std::string queue_;
    std::string stream_;
};

} // namespace akv::queue
