// Django Channels' Redis layers on the wire (channels_redis 4.0), without I/O: the keys and
// channels they use, a message's bytes as a JSON object and back, and what group_send writes
// for each member of a group. channels_layer.cpp performs it; tests/unit drives it alone.
//
// RedisChannelLayer (channels_redis.core), prefix "asgi" by default:
//   group "G"          sorted set "asgi:group:G", channel name -> time it was added (s)
//   channel "c"        sorted set "asgi" + "c" (no separator), each member 12 random bytes then
//                      the msgpack message, scored by the time it was sent; "specific.x!y"
//                      (a process-local channel) is stored under "asgi" + "specific.x!"
//   group_send         members older than group_expiry dropped; to each member's key (unless
//                      it holds capacity messages) the message with "__asgi_channel__": [names
//                      of the members sharing that key]; EXPIRE expiry
// RedisPubSubChannelLayer (channels_redis.pubsub): group_send is PUBLISH "asgi__group__G" of
// the msgpack message, no prefix bytes.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/system/system_error.hpp>

#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace akv::gateway::channels_wire {

// An error's own text, without what system_error appends (the code's message and its value),
// for a reason that reads once: "not a msgpack message: byte 1: 9 bytes after the value".
std::string reason(const boost::system::system_error& e);

// What channels.layers accepts as a group name: ASCII letters, digits, '-', '_', '.', fewer
// than 100 of them.
bool valid_group(std::string_view group) noexcept;

std::string group_key(std::string_view prefix, std::string_view group);
std::string pubsub_channel(std::string_view prefix, std::string_view group);
// The sorted set a channel's messages go to ("specific.x!y" -> prefix + "specific.x!").
std::string channel_key(std::string_view prefix, std::string_view channel);
// Ours in a group: one name for every gateway process, so a message is taken by one of them
// and reaches every gateway's sessions once, through the gateway channel.
std::string consumer_channel(std::string_view group);

// The random bytes before each message of the core layer (its sorted sets need unique members).
inline constexpr std::size_t core_prefix_bytes = 12;

// A message's msgpack (without the core layer's random prefix) as a JSON object, without
// "__asgi_channel__"; bin values become base64 strings. Throws system_error: gateway_error
// too_large over `max_bytes`, bad_message when it is not msgpack, not a map, or encrypted
// (symmetric_encryption_keys, which we do not hold), saying which.
boost::json::object decode_message(std::string_view msgpack, std::size_t max_bytes);
// The core layer's stored member: strips the 12 random bytes, then as decode_message.
boost::json::object decode_core_member(std::string_view member, std::size_t max_bytes);

// What a gateway channel's message becomes in a group: a JSON object with a string "type" as
// it is (the application chose its consumer's handler); anything else
// {"type": "gateway.message", "channel": CHANNEL, "data": DATA}.
boost::json::object message_for_group(std::string_view channel, boost::json::value data);

// group_send of the core layer for `members` (the group's channel names): one sorted set per
// key, with the member to add there (random prefix + msgpack with "__asgi_channel__").
struct group_send_plan {
    std::vector<std::string> keys;
    std::vector<std::string> members;
};
group_send_plan plan_group_send(std::string_view prefix, const std::vector<std::string>& members,
                                const boost::json::object& message, std::mt19937_64& random);

} // namespace akv::gateway::channels_wire
