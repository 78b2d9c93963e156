// Django Channels groups and gateway channels joined, so a Django application keeps its
// `channel_layer.group_send("signups", {...})` and our browsers receive it, and our publishes
// reach its consumers. Speaks channels_redis 4.0 on the same Redis as the gateway, for both of
// its layers (websocket_gateway/README.md, "Coming from Django Channels").
//
//   akv::client layer_redis(io.get_executor(), cfg);   // the bridge's own (it subscribes)
//   akv::gateway::channels_options co;                 // co.groups = {"signups"};
//   akv::gateway::channels_bridge bridge(layer_redis, gateway_opts, co);
//   co_await bridge.run();                             // until stop()
//
// Joined groups: a group's message is published to the gateway channel of the same name (with
// its history rules), as the JSON object of the message's dict. RedisChannelLayer: the bridge
// adds the channel "akv-gateway.GROUP" to the group, refreshing it well within group_expiry,
// and takes its messages with BZPOPMIN; every gateway process that joins uses that one name, so
// each message is taken once and reaches every gateway's sessions once. A message taken by a
// process that dies before publishing it is lost (channels_redis's own consumers keep an
// in-flight copy; we do not). RedisPubSubChannelLayer: the bridge SUBSCRIBEs to the group's
// channel; every process that joins publishes each message, so join from one process only.
//
// Forwards: each message published to a gateway channel is sent to a group as group_send does
// (the core layer's capacity and expiry included): a JSON object with a string "type" as it is,
// anything else as {"type":"gateway.message","channel":...,"data":...}. Every process given a
// forward sends each message once: forward from one process only.
//
// Bad messages in a group (not msgpack, not a map, over max_message, encrypted with keys we do
// not hold) are counted, the last one's reason kept, and skipped; the bridge goes on. Redis
// errors are retried every second. One Redis server: channels_redis's sharding over several
// hosts is not supported.
#pragma once

#include <akv/client.hpp>
#include <akv/gateway/options.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace akv::gateway {

enum class channels_layer_kind {
    core,   // channels_redis.core.RedisChannelLayer
    pubsub, // channels_redis.pubsub.RedisPubSubChannelLayer
};

// The defaults are channels_redis's.
struct channels_options {
    channels_layer_kind layer = channels_layer_kind::core;
    std::string prefix = "asgi";
    std::chrono::seconds expiry{60};          // core: a message not taken by then is dropped
    std::chrono::seconds group_expiry{86400}; // core: a member not refreshed by then is dropped
    std::size_t capacity = 100;               // core: messages a member's queue holds

    // Groups whose messages go to the gateway channel of the same name.
    std::vector<std::string> groups;
    // (gateway channel, group): the channel's messages are sent to the group.
    std::vector<std::pair<std::string, std::string>> forwards;

    // Bytes of a group's message; 0: the gateway's max_publish.
    std::size_t max_message = 0;
};

struct channels_stats {
    std::uint64_t received = 0;      // group messages published to gateway channels
    std::uint64_t forwarded = 0;     // gateway messages sent to groups
    std::uint64_t skipped = 0;       // bad group messages, and messages the gateway refused
    std::uint64_t over_capacity = 0; // core forwards: members whose queue was full
    std::uint64_t dropped = 0;       // pub/sub messages lost while the bridge was behind (its
                                     // subscription queue holds 4096; oldest dropped)
    std::uint64_t redis_errors = 0;  // failed Redis calls (each retried a second later)
    std::string last_error;          // why the last message was skipped or call failed
};

class channels_bridge {
public:
    // `redis`: a client of the bridge's own (its subscriber takes the connection's pushes);
    // `gateway`: the options of the gateway whose channels it serves (prefix, history,
    // max_publish), kept by reference. Throws system_error(gateway_error::bad_options) for a
    // group name Channels would refuse, a forward into the group it comes from, or limits that
    // cannot work.
    channels_bridge(client& redis, const options& gateway, channels_options opts);
    ~channels_bridge();
    channels_bridge(const channels_bridge&) = delete;
    channels_bridge& operator=(const channels_bridge&) = delete;

    // Joins and forwards until stop(). On the client's executor.
    asio::awaitable<void> run();
    // Ends run() (within a second: a BZPOPMIN's timeout). The core layer's member stays in its
    // groups, since other gateway processes share it; unrefreshed, group_send drops it after
    // group_expiry. On the client's executor.
    void stop();
    // True once every joined group and forward is subscribed (or its member added).
    bool ready() const noexcept;
    // On the client's executor.
    channels_stats stats() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace akv::gateway
