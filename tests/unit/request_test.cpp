#include <akv/request.hpp>

#include <gtest/gtest.h>

#include <map>
#include <vector>

TEST(Request, SerializesCommandsAsArraysOfBulkStrings) {
    akv::request req;
    req.push("SET", "key", 42);
    EXPECT_EQ(req.payload(), "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$2\r\n42\r\n");
    EXPECT_EQ(req.size(), 1u);
    EXPECT_EQ(req.expected_replies(), 1u);
}

TEST(Request, ExpandsRangesAndPairs) {
    akv::request req;
    req.push_range("RPUSH", "l", std::vector<int>{1, 2});
    std::map<std::string, std::string> fields{{"a", "1"}, {"b", "2"}};
    req.push_range("HSET", "h", fields);
    EXPECT_EQ(req.payload(),
              "*4\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n$1\r\n1\r\n$1\r\n2\r\n"
              "*6\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n");
    EXPECT_EQ(req.size(), 2u);
}

TEST(Request, FloatingPointRoundTrips) {
    akv::request req;
    req.push("INCRBYFLOAT", "k", 0.1);
    EXPECT_NE(req.payload().find("$3\r\n0.1\r\n"), std::string_view::npos);
}

TEST(Request, BinaryArgumentsKeepTheirBytes) {
    akv::request req;
    const std::byte raw[] = {std::byte{0}, std::byte{'\r'}, std::byte{0xff}};
    req.push("SET", "k", std::span<const std::byte>(raw));
    EXPECT_NE(req.payload().find(std::string("$3\r\n\0\r\xff\r\n", 9)), std::string_view::npos);
}

TEST(Request, SubscribeExpectsNoRegularReply) {
    akv::request req;
    req.push("SUBSCRIBE", "a", "b");
    req.push("ping");
    req.push("punsubscribe");
    EXPECT_EQ(req.size(), 3u);
    EXPECT_EQ(req.expected_replies(), 1u);
}

TEST(Request, KnowsBlockingCommands) {
    akv::request plain;
    plain.push("XREADGROUP", "GROUP", "g", "c", "COUNT", 10, "STREAMS", "s", ">");
    EXPECT_FALSE(plain.has_blocking_command());
    akv::request blocking;
    blocking.push("XREADGROUP", "GROUP", "g", "c", "block", 100, "STREAMS", "s", ">");
    EXPECT_TRUE(blocking.has_blocking_command());
    akv::request blpop;
    blpop.push("BLPOP", "q", 0);
    EXPECT_TRUE(blpop.has_blocking_command());
    akv::request data_named_block;
    data_named_block.push("SET", "BLOCK", "$5");
    EXPECT_FALSE(data_named_block.has_blocking_command());
}

namespace user {
struct point {
    int x, y;
};
void to_bulk(std::string& out, const point& p) {
    akv::resp::write_bulk(out, std::to_string(p.x) + "," + std::to_string(p.y));
}
} // namespace user

TEST(Request, UserTypesSerializeThroughToBulk) {
    akv::request req;
    req.push("SET", "p", user::point{1, 2});
    EXPECT_NE(req.payload().find("$3\r\n1,2\r\n"), std::string_view::npos);
}
