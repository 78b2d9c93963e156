// Publishing to gateway channels from any program on the same Redis: the gateway's own
// /api/publish and session publishes go through here too, so history rules apply alike.
#pragma once

#include <akv/client.hpp>
#include <akv/gateway/error.hpp>
#include <akv/gateway/options.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace akv::gateway {

// The rule for `channel`, if any (first match wins).
const history_rule* history_for(const std::vector<history_rule>& rules,
                                std::string_view channel) noexcept;

// Where a message stands in its channel's history: its offset (a stream id, "1764000000000-3")
// and the history's epoch. Offsets are compared within one epoch only: a new epoch means the
// history may have lost messages (websocket_gateway/README.md, "History in Redis").
struct position {
    std::string offset;
    std::string epoch;
};

// Whether the gateway's channels use sharded pub/sub (SPUBLISH/SSUBSCRIBE, each channel on the
// node of its slot): on a Redis Cluster, so the masters split the traffic; elsewhere classic
// pub/sub, which a plain PUBLISH from any program reaches too.
bool sharded(const client& redis) noexcept;

// Publishes `json` (one JSON value, as text: it is checked) to `channel` (the Redis channel is
// prefix + channel). With history: appended to the channel's stream in the same Lua call, its
// position returned. Without: PUBLISH (SPUBLISH when sharded), std::nullopt. Throws
// system_error: gateway_error bad_channel, bad_message (not JSON) or too_large (over
// max_publish); Redis errors as they come.
asio::awaitable<std::optional<position>> publish(client& redis, const options& opts,
                                                 std::string channel, std::string json);

// A channel name clients may use: 1..256 bytes, no control characters, no `*`.
bool valid_channel(std::string_view channel) noexcept;

} // namespace akv::gateway
