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

// Publishes `json` (one JSON value, as text: it is checked) to `channel` (the Redis channel is
// prefix + channel). With history: appended to the channel's stream in the same Lua call,
// the offset returned. Without: PUBLISH, std::nullopt. Throws system_error: gateway_error
// bad_channel, bad_message (not JSON) or too_large (over max_publish); Redis errors as they come.
asio::awaitable<std::optional<std::string>> publish(client& redis, const options& opts,
                                                    std::string channel, std::string json);

// A channel name clients may use: 1..256 bytes, no control characters, no `*`.
bool valid_channel(std::string_view channel) noexcept;

} // namespace akv::gateway
