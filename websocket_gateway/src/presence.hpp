// Presence in Redis (README "Presence"): who is subscribed to a channel across every gateway
// process, kept with expiry, and the join and leave events that ride on the channel's pub/sub.
#pragma once

#include <akv/client.hpp>
#include <akv/gateway/options.hpp>

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace akv::gateway::presence {

std::string entries_key(std::string_view redis_channel);
std::string expiry_key(std::string_view redis_channel);

// The rule for `channel`, if any (first match wins).
const presence_rule* rule_for(const std::vector<presence_rule>& rules,
                              std::string_view channel) noexcept;

// A session's entry: {"client":...,"user":...,"info":{...}} (info only when the token had one).
std::string entry_json(std::string_view client, std::string_view user, std::string_view info);

// Join and leave events: "\x1d" "join" | "leave" "\x1d" entry, on the channel's own pub/sub, so
// they reach every gateway's subscribers in order with the messages.
std::string encode_event(std::string_view kind, std::string_view entry);
struct event {
    std::string_view kind;  // "join" or "leave"
    std::string_view entry; // the entry JSON
};
std::optional<event> decode_event(std::string_view payload) noexcept;

struct counts {
    std::int64_t clients = 0;
    std::int64_t users = 0; // distinct `sub`s
};

// Every call drops the entries that expired first. Throws what Redis threw.
// `announce`: the channel has join/leave (the leaves of expired entries are published).
asio::awaitable<std::vector<std::string>> list(client& redis, std::string redis_channel,
                                               bool announce);
asio::awaitable<counts> stats(client& redis, std::string redis_channel, bool announce);
// The entries only: one HLEN, where stats() reads every entry for the distinct users.
asio::awaitable<std::int64_t> count(client& redis, std::string redis_channel, bool announce);

// The entries of this process's sessions, added, removed and refreshed on the hub's executor.
class registry {
public:
    // `changed` is cancelled whenever idle() may have become true.
    registry(client& redis, const options& opts, asio::steady_timer& changed);

    // Writes the entry (and, `announce`, publishes the join) before returning.
    asio::awaitable<void> add(std::string channel, std::string client_id, std::string entry,
                              bool announce);
    // Drops the entry (and, `announce`, publishes the leave); best effort: a failure leaves the
    // entry to expire.
    asio::awaitable<void> remove(std::string channel, std::string client_id, bool announce);

    // Refreshes every entry every third of the ttl, until stop().
    asio::awaitable<void> run();
    void stop();
    // No add or remove is out (they refer to this registry).
    bool idle() const noexcept { return busy_ == 0; }

private:
    // Counts a call out to Redis for idle(); the server, waiting for it on shutdown, is told
    // when it ends.
    struct busy_while {
        explicit busy_while(registry& r)
            : r_(r) {
            ++r_.busy_;
        }
        ~busy_while() {
            --r_.busy_;
            r_.changed_.cancel();
        }
        busy_while(const busy_while&) = delete;
        busy_while& operator=(const busy_while&) = delete;
        registry& r_;
    };

    asio::awaitable<void> refresh();

    client& redis_;
    const options& opts_;
    asio::steady_timer& changed_;
    std::map<std::string, std::map<std::string, std::string>> channels_; // channel -> id -> entry
    asio::steady_timer timer_;
    std::size_t busy_ = 0;
    bool stopped_ = false;
};

} // namespace akv::gateway::presence
