// Django Channels' Redis layers on the wire (websocket_gateway/src/channels_wire.hpp), without a
// server: the keys channels_redis 4.0 uses, its messages read and written, group_send's plan.
#include "channels_wire.hpp"

#include <akv/gateway/error.hpp>
#include <akv/kv/msgpack.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/system/system_error.hpp>

#include <gtest/gtest.h>

namespace wire = akv::gateway::channels_wire;
namespace json = boost::json;
using akv::gateway::gateway_error;

namespace {

boost::system::error_code refusal(std::string_view bytes, std::size_t max = 1000,
                                  std::string* what = nullptr) {
    try {
        wire::decode_message(bytes, max);
    } catch (const boost::system::system_error& e) {
        if (what) *what = e.what();
        return e.code();
    }
    return {};
}

} // namespace

TEST(ChannelsWire, KeysAreTheOnesChannelsRedisUses) {
    EXPECT_EQ(wire::group_key("asgi", "signups"), "asgi:group:signups");
    EXPECT_EQ(wire::pubsub_channel("asgi", "signups"), "asgi__group__signups");
    // No separator after the prefix; a process-local channel keeps its name up to the '!'.
    EXPECT_EQ(wire::channel_key("asgi", "akv-gateway.signups"), "asgiakv-gateway.signups");
    EXPECT_EQ(wire::channel_key("asgi", "specific.ab12!cd34"), "asgispecific.ab12!");
    EXPECT_EQ(wire::consumer_channel("signups"), "akv-gateway.signups");
}

TEST(ChannelsWire, GroupNamesAreTheOnesChannelsAccepts) {
    EXPECT_TRUE(wire::valid_group("chat_room-1.a"));
    EXPECT_FALSE(wire::valid_group(""));
    EXPECT_FALSE(wire::valid_group("room 1"));
    EXPECT_FALSE(wire::valid_group("room!1"));
    EXPECT_FALSE(wire::valid_group(std::string(100, 'a')));
    EXPECT_TRUE(wire::valid_group(std::string(99, 'a')));
}

TEST(ChannelsWire, AMessageLosesItsChannelListAndKeepsItsFields) {
    const std::string bytes = akv::kv::msgpack::encode(json::parse(
        R"({"type":"signup.created","name":"Ana","__asgi_channel__":["akv-gateway.signups"]})"));
    EXPECT_EQ(json::serialize(wire::decode_message(bytes, 1000)),
              R"({"type":"signup.created","name":"Ana"})");
    EXPECT_EQ(json::serialize(wire::decode_core_member("0123456789ab" + bytes, 1000)),
              R"({"type":"signup.created","name":"Ana"})");
}

TEST(ChannelsWire, BadMessagesAreRefusedSayingWhy) {
    std::string what;
    boost::system::system_error error(gateway_error::bad_message, "");
    try {
        wire::decode_message("not msgpack", 1000);
    } catch (const boost::system::system_error& e) {
        error = e;
    }
    EXPECT_EQ(error.code(), gateway_error::bad_message);
    // The reason reads once, without the codes' own messages.
    EXPECT_EQ(wire::reason(error),
              "not a msgpack message: msgpack: byte 1: 10 bytes after the value");
    EXPECT_EQ(refusal(akv::kv::msgpack::encode(json::array{1}), 1000, &what),
              gateway_error::bad_message);
    EXPECT_NE(what.find("not a map"), std::string::npos) << what;
    EXPECT_EQ(refusal(std::string(1001, 'a'), 1000, &what), gateway_error::too_large);
    EXPECT_NE(what.find("1001 bytes, over the limit of 1000"), std::string::npos) << what;
    EXPECT_EQ(refusal("gAAAAABlxyz", 1000, &what), gateway_error::bad_message);
    EXPECT_NE(what.find("encrypted"), std::string::npos) << what;
    EXPECT_THROW(wire::decode_core_member("short", 1000), boost::system::system_error);
}

TEST(ChannelsWire, GatewayDataBecomesAGroupMessage) {
    EXPECT_EQ(
        json::serialize(wire::message_for_group("news", json::parse(R"({"type":"a.b","x":1})"))),
        R"({"type":"a.b","x":1})");
    EXPECT_EQ(json::serialize(wire::message_for_group("news", json::parse(R"({"x":1})"))),
              R"({"type":"gateway.message","channel":"news","data":{"x":1}})");
    EXPECT_EQ(json::serialize(wire::message_for_group("news", json::parse(R"({"type":3})"))),
              R"({"type":"gateway.message","channel":"news","data":{"type":3}})");
    EXPECT_EQ(json::serialize(wire::message_for_group("news", "text")),
              R"({"type":"gateway.message","channel":"news","data":"text"})");
}

TEST(ChannelsWire, GroupSendWritesOneMessagePerKeyNamingItsChannels) {
    std::mt19937_64 random(1);
    const json::object message{{"type", "news.item"}};
    const auto plan = wire::plan_group_send(
        "asgi", {"specific.p1!a", "specific.p1!b", "akv-gateway.news"}, message, random);
    ASSERT_EQ(plan.keys.size(), 2u);
    EXPECT_EQ(plan.keys[0], "asgispecific.p1!");
    EXPECT_EQ(plan.keys[1], "asgiakv-gateway.news");
    ASSERT_EQ(plan.members[0].size() > wire::core_prefix_bytes, true);
    EXPECT_EQ(json::serialize(akv::kv::msgpack::decode(
                  std::string_view(plan.members[0]).substr(wire::core_prefix_bytes))),
              R"({"type":"news.item","__asgi_channel__":["specific.p1!a","specific.p1!b"]})");
    EXPECT_EQ(json::serialize(akv::kv::msgpack::decode(
                  std::string_view(plan.members[1]).substr(wire::core_prefix_bytes))),
              R"({"type":"news.item","__asgi_channel__":["akv-gateway.news"]})");
    // Two sends of one message are two members of the sorted set.
    const auto again = wire::plan_group_send("asgi", {"akv-gateway.news"}, message, random);
    EXPECT_NE(again.members[0], plan.members[1]);
}
