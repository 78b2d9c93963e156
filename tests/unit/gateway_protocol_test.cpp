// The gateway's wire protocol without I/O: parsing client messages, offsets, payloads, pushes.
#include "protocol.hpp"

#include <akv/gateway/error.hpp>

#include <boost/json.hpp>
#include <boost/system/system_error.hpp>

#include <gtest/gtest.h>

namespace {

namespace protocol = akv::gateway::protocol;
namespace json = boost::json;

TEST(GatewayProtocol, ParsesEveryOp) {
    auto s = protocol::parse(R"({"op":"subscribe","id":7,"channel":"news","offset":"17-2"})");
    EXPECT_TRUE(s.fatal.empty() && s.invalid.empty());
    EXPECT_EQ(s.req.kind, protocol::op::subscribe);
    EXPECT_EQ(*s.req.id, 7);
    EXPECT_EQ(s.req.channel, "news");
    EXPECT_EQ(*s.req.offset, "17-2");

    auto p = protocol::parse(R"({"op":"publish","channel":"c","data":{"a":[1, 2, "x\ny"]}})");
    EXPECT_EQ(p.req.kind, protocol::op::publish);
    EXPECT_EQ(p.req.data, R"({"a":[1,2,"x\ny"]})") << "compact, newline escaped";
    EXPECT_FALSE(p.req.id);

    auto c = protocol::parse(R"({"op":"connect","token":"t"})");
    EXPECT_EQ(c.req.kind, protocol::op::connect);
    EXPECT_EQ(*c.req.token, "t");
    EXPECT_FALSE(protocol::parse(R"({"op":"connect"})").req.token);
    EXPECT_EQ(protocol::parse(R"({"op":"ping"})").req.kind, protocol::op::ping);
    EXPECT_EQ(protocol::parse(R"({"op":"unsubscribe","channel":"x"})").req.channel, "x");
}

TEST(GatewayProtocol, NamesWhatIsWrong) {
    EXPECT_NE(protocol::parse("{").fatal.find("not JSON"), std::string::npos);
    EXPECT_NE(protocol::parse("[1]").fatal.find("object"), std::string::npos);
    EXPECT_NE(protocol::parse(R"({"id":1})").fatal.find("\"op\""), std::string::npos);
    EXPECT_NE(protocol::parse(R"({"op":"dance"})").fatal.find("dance"), std::string::npos);
    EXPECT_NE(protocol::parse(R"({"op":3})").fatal.find("\"op\""), std::string::npos);

    auto nochan = protocol::parse(R"({"op":"subscribe","id":4})");
    EXPECT_TRUE(nochan.fatal.empty());
    EXPECT_NE(nochan.invalid.find("\"channel\" is missing"), std::string::npos);
    EXPECT_EQ(*nochan.req.id, 4) << "the id survives for the error reply";
    EXPECT_NE(protocol::parse(R"({"op":"subscribe","channel":5})").invalid.find("string"),
              std::string::npos);
    EXPECT_NE(protocol::parse(R"({"op":"subscribe","channel":"a","offset":"x"})").invalid.find("offset"),
              std::string::npos);
    EXPECT_NE(protocol::parse(R"({"op":"publish","channel":"a"})").invalid.find("data"),
              std::string::npos);
    EXPECT_NE(protocol::parse(R"({"op":"ping","id":"one"})").invalid.find("id"), std::string::npos);
    EXPECT_NE(protocol::parse(R"({"op":"ping","id":1.5})").invalid.find("id"), std::string::npos);
}

TEST(GatewayProtocol, AResumeNamesItsEpoch) {
    auto p = protocol::parse(R"({"op":"subscribe","channel":"c","offset":"5-1","epoch":"6931e2a1"})");
    EXPECT_TRUE(p.invalid.empty()) << p.invalid;
    EXPECT_EQ(*p.req.epoch, "6931e2a1");
    for (const char* bad : {R"({"op":"subscribe","channel":"c","offset":"5-1","epoch":"XY"})",
                            R"({"op":"subscribe","channel":"c","offset":"5-1","epoch":""})",
                            R"({"op":"subscribe","channel":"c","offset":"5-1","epoch":7})"})
        EXPECT_NE(protocol::parse(bad).invalid.find("epoch"), std::string::npos) << bad;
    EXPECT_TRUE(protocol::valid_epoch("0123456789abcdef"));
    EXPECT_FALSE(protocol::valid_epoch(std::string(33, 'a')));
    EXPECT_EQ(protocol::resync(protocol::quoted("news")), R"({"op":"resync","channel":"news"})");
}

TEST(GatewayProtocol, OffsetsCompareAsNumbers) {
    EXPECT_TRUE(protocol::valid_offset("0-0"));
    EXPECT_TRUE(protocol::valid_offset("1764000000000-12"));
    for (const char* bad : {"", "-", "1-", "-1", "1", "a-1", "1-b", "1--1", "1-1-1", "123456789012345678901-0"})
        EXPECT_FALSE(protocol::valid_offset(bad)) << bad;
    EXPECT_TRUE(protocol::offset_less("9-0", "10-0")) << "not as strings";
    EXPECT_TRUE(protocol::offset_less("10-9", "10-10"));
    EXPECT_FALSE(protocol::offset_less("10-10", "10-10"));
    EXPECT_FALSE(protocol::offset_less("11-0", "10-99"));
}

TEST(GatewayProtocol, DecodesRedisPayloads) {
    auto ours = protocol::decode_payload(protocol::encode_payload("6931e2a10f1c2", "5-1", R"({"a":1})"));
    EXPECT_EQ(*ours.offset, "5-1");
    EXPECT_EQ(*ours.epoch, "6931e2a10f1c2");
    EXPECT_EQ(ours.data, R"({"a":1})");
    // A gateway before epochs: an offset alone.
    auto older = protocol::decode_payload("\x1e" "5-1" "\x1e" R"({"a":1})");
    EXPECT_EQ(*older.offset, "5-1");
    EXPECT_FALSE(older.epoch);
    EXPECT_EQ(older.data, R"({"a":1})");
    // An epoch that is not hex digits: delivered as the bytes it is.
    auto bad_epoch = protocol::decode_payload("\x1e" "EPOCH!" "\x1e" "5-1" "\x1e" "1");
    EXPECT_FALSE(bad_epoch.offset);
    auto raw = protocol::decode_payload(R"( { "b" : 2 } )");
    EXPECT_FALSE(raw.offset);
    EXPECT_EQ(raw.data, R"( { "b" : 2 } )") << "one line: kept as sent";
    auto big = protocol::decode_payload("[12345678901234567890123]");
    EXPECT_EQ(big.data, "[12345678901234567890123]") << "not rounded through a double";
    auto text = protocol::decode_payload("hello\nworld \"q\"");
    EXPECT_EQ(text.data, R"("hello\nworld \"q\"")");
    EXPECT_EQ(protocol::decode_payload("").data, R"("")");
    // A broken envelope is delivered as the bytes it is.
    auto broken = protocol::decode_payload("\x1e" "5-1" "\x1e" "{not json");
    EXPECT_FALSE(broken.offset);
    EXPECT_EQ(json::parse(broken.data).as_string(), "\x1e" "5-1" "\x1e" "{not json");
    auto bad_offset = protocol::decode_payload("\x1e" "xx" "\x1e" "1");
    EXPECT_FALSE(bad_offset.offset);
    // Pretty-printed JSON loses its raw newlines: a frame may hold several lines.
    auto pretty = protocol::decode_payload(protocol::encode_payload("1", "1-0", "{\n  \"a\": 1\n}"));
    EXPECT_EQ(pretty.data, R"({   "a": 1 })");
    // Found by the fuzzer: a number beyond double was re-written as -Infinity (not JSON).
    EXPECT_EQ(protocol::decode_payload("-2E612\n\n").data, "-2E612  ");
    EXPECT_NE(protocol::parse(R"({"op":"publish","channel":"c","data":1e999})").invalid.find("range"),
              std::string::npos);
}

TEST(GatewayProtocol, WritesRepliesAndPushes) {
    EXPECT_EQ(protocol::ok(3), R"({"id":3,"ok":true})");
    EXPECT_EQ(protocol::ok(std::nullopt, protocol::field("offset", "1-0")), R"({"ok":true,"offset":"1-0"})");
    auto e = json::parse(protocol::error(2, "forbidden", "no \"x\"")).as_object();
    EXPECT_EQ(e.at("error").at("message").as_string(), "no \"x\"");
    EXPECT_EQ(protocol::pong(1), R"({"id":1,"op":"pong"})");
    auto push = json::parse(protocol::push(protocol::quoted("a\"b"), std::string("1-2"), "[1]")).as_object();
    EXPECT_EQ(push.at("channel").as_string(), "a\"b");
    EXPECT_EQ(push.at("offset").as_string(), "1-2");
    EXPECT_EQ(push.at("data").as_array().size(), 1u);
    EXPECT_EQ(protocol::push("\"c\"", std::nullopt, "1"), R"({"channel":"c","data":1})");
    auto hello = json::parse(protocol::connected("c1", "bob", 99)).as_object();
    EXPECT_EQ(hello.at("expires").as_int64(), 99);
}

} // namespace

namespace {

TEST(GatewayProtocol, CutsTextAtCharacterBoundaries) {
    const std::string e_acute = "\xc3\xa9"; // é, two bytes
    std::string text;
    for (int i = 0; i < 40; ++i) text += e_acute;
    for (std::size_t max : {0u, 1u, 2u, 3u, 31u, 32u, 79u})
        EXPECT_EQ(akv::gateway::protocol::truncate_utf8(text, max).size(), max - max % 2) << max;
    EXPECT_EQ(akv::gateway::protocol::truncate_utf8("abc", 10), "abc");
    auto unknown = akv::gateway::protocol::parse(R"({"op":")" + text + R"("})");
    EXPECT_EQ(unknown.fatal, "unknown op \"" + text.substr(0, 32) + "\"");
}

TEST(GatewayProtocol, DescribesWithoutTheCodeSuffix) {
    const boost::system::system_error e(make_error_code(akv::gateway::gateway_error::bad_channel),
                                        "publish: bad channel name");
    EXPECT_EQ(akv::gateway::protocol::describe(e), "publish: bad channel name");
    EXPECT_EQ(akv::gateway::protocol::describe(std::runtime_error("plain")), "plain");
}

} // namespace

namespace {

TEST(GatewayProtocol, BinaryPayloadsBecomeValidUtf8) {
    namespace protocol = akv::gateway::protocol;
    EXPECT_EQ(protocol::valid_utf8("ok \xc3\xa9"), "ok \xc3\xa9");
    EXPECT_EQ(protocol::valid_utf8("a\x86" "b"), "a\xef\xbf\xbd" "b");
    EXPECT_EQ(protocol::valid_utf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd") << "overlong";
    EXPECT_EQ(protocol::valid_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd") << "surrogate";
    EXPECT_EQ(protocol::valid_utf8("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");
    EXPECT_EQ(protocol::valid_utf8("\xe2\x82"), "\xef\xbf\xbd\xef\xbf\xbd") << "cut short";
    // Found by the fuzzer: an envelope followed by stray bytes went out as invalid UTF-8.
    auto p = protocol::decode_payload("\x1e" "5-1\x1e{\"a\":1}\x86\x86");
    EXPECT_NO_THROW(boost::json::parse(p.data));
}

} // namespace
