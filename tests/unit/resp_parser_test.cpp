#include <akv/error.hpp>
#include <akv/resp/parser.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

using akv::resp::node;
using akv::resp::parser;
using akv::resp::type;

namespace {

struct parsed {
    std::vector<node> nodes;
    std::vector<std::string> values;
    std::size_t messages = 0;
};

// Feeds `input` in pieces ending at each cut, as a reader with a growing buffer would, and
// returns every node with its value.
parsed parse_split(std::string_view input, std::vector<std::size_t> cuts,
                   boost::system::error_code& ec, akv::resp::limits lim = {}) {
    parser p(lim);
    parsed out;
    std::string buffer;
    std::size_t message_start = 0;
    cuts.push_back(input.size());
    std::size_t fed = 0;
    for (std::size_t cut : cuts) {
        buffer.append(input.substr(fed, cut - fed));
        fed = cut;
        for (;;) {
            std::string_view message(buffer.data() + message_start, buffer.size() - message_start);
            auto n = p.next(message, ec);
            if (ec) return out;
            if (!n) break;
            out.nodes.push_back(*n);
            out.values.emplace_back(n->value(message));
            if (p.done()) {
                ++out.messages;
                message_start += p.consumed();
                p.reset();
            }
        }
    }
    return out;
}

// A sample of every RESP3 type, Redis-like.
const std::vector<std::pair<std::string, std::size_t>> samples = {
    {"+OK\r\n", 1},
    {"-ERR unknown command 'FOO'\r\n", 1},
    {":-42\r\n", 1},
    {",3.14\r\n", 1},
    {",-inf\r\n", 1},
    {",1.5e10\r\n", 1},
    {"_\r\n", 1},
    {"#t\r\n", 1},
    {"$5\r\nhe\r\no\r\n", 1},
    {"$0\r\n\r\n", 1},
    {"$-1\r\n", 1},
    {"!21\r\nSYNTAX invalid syntax\r\n", 1},
    {"=15\r\ntxt:Some string\r\n", 1},
    {"(3492890328409238509324850943850943825024385\r\n", 1},
    {"*3\r\n:1\r\n$3\r\nfoo\r\n_\r\n", 4},
    {"*0\r\n", 1},
    {"*-1\r\n", 1},
    {"%2\r\n+first\r\n:1\r\n+second\r\n*1\r\n:2\r\n", 6},
    {"~2\r\n+a\r\n+b\r\n", 3},
    {"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2039123\r\n", 7},
    {">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n", 4},
    {"*2\r\n*2\r\n:1\r\n:2\r\n%0\r\n", 5},
};

} // namespace

TEST(RespParser, ParsesEverySampleSplitAtEveryByte) {
    for (const auto& [sample, expected_nodes] : samples) {
        boost::system::error_code ec;
        const parsed whole = parse_split(sample, {}, ec);
        ASSERT_FALSE(ec) << sample;
        ASSERT_EQ(whole.messages, 1u) << sample;
        ASSERT_EQ(whole.nodes.size(), expected_nodes) << sample;
        for (std::size_t cut = 1; cut < sample.size(); ++cut) {
            const parsed split = parse_split(sample, {cut}, ec);
            ASSERT_FALSE(ec) << sample << " cut at " << cut;
            ASSERT_EQ(split.messages, 1u) << sample << " cut at " << cut;
            ASSERT_EQ(split.values, whole.values) << sample << " cut at " << cut;
        }
        // Byte by byte.
        std::vector<std::size_t> every;
        for (std::size_t i = 1; i < sample.size(); ++i)
            every.push_back(i);
        const parsed bytewise = parse_split(sample, every, ec);
        ASSERT_FALSE(ec);
        EXPECT_EQ(bytewise.values, whole.values) << sample;
    }
}

TEST(RespParser, ReportsTypesDepthsAndValues) {
    boost::system::error_code ec;
    const parsed p = parse_split("%2\r\n+first\r\n:1\r\n+second\r\n*1\r\n:2\r\n", {}, ec);
    ASSERT_FALSE(ec);
    ASSERT_EQ(p.nodes.size(), 6u);
    EXPECT_EQ(p.nodes[0].data_type, type::map);
    EXPECT_EQ(p.nodes[0].size, 2u);
    EXPECT_EQ(p.nodes[0].depth, 0u);
    EXPECT_EQ(p.nodes[1].data_type, type::simple_string);
    EXPECT_EQ(p.values[1], "first");
    EXPECT_EQ(p.nodes[1].depth, 1u);
    EXPECT_EQ(p.nodes[4].data_type, type::array);
    EXPECT_EQ(p.nodes[5].depth, 2u);
    EXPECT_EQ(p.values[5], "2");
}

TEST(RespParser, BulkStringIsBinarySafe) {
    boost::system::error_code ec;
    const std::string payload("a\r\n\0b", 5);
    const parsed p = parse_split("$5\r\n" + payload + "\r\n", {}, ec);
    ASSERT_FALSE(ec);
    ASSERT_EQ(p.values.size(), 1u);
    EXPECT_EQ(p.values[0], payload);
}

TEST(RespParser, SeveralMessagesInOneBuffer) {
    boost::system::error_code ec;
    const parsed p = parse_split("+OK\r\n:1\r\n*2\r\n+a\r\n+b\r\n>2\r\n+x\r\n+y\r\n", {7}, ec);
    ASSERT_FALSE(ec);
    EXPECT_EQ(p.messages, 4u);
}

TEST(RespParser, AttributeIsNotAMessageByItself) {
    boost::system::error_code ec;
    const parsed p = parse_split("|1\r\n+ttl\r\n:3\r\n+value\r\n", {}, ec);
    ASSERT_FALSE(ec);
    EXPECT_EQ(p.messages, 1u);
    EXPECT_EQ(p.nodes.back().data_type, type::simple_string);
    EXPECT_EQ(p.values.back(), "value");
}

namespace {
void expect_error(std::string_view input, akv::error code, std::string_view words,
                  akv::resp::limits lim = {}) {
    parser p(lim);
    boost::system::error_code ec;
    std::string buffer(input);
    while (!ec) {
        auto n = p.next(buffer, ec);
        if (!n && !ec) break;
        if (p.done()) {
            buffer.erase(0, p.consumed());
            p.reset();
        }
    }
    EXPECT_EQ(ec, akv::make_error_code(code)) << input;
    EXPECT_NE(p.error_message().find(words), std::string::npos)
        << input << " -> " << p.error_message();
    EXPECT_NE(p.error_message().find("at byte"), std::string::npos) << p.error_message();
}
} // namespace

TEST(RespParser, RefusesUnknownTypeByte) {
    expect_error("+OK\r\n?what\r\n", akv::error::resp_protocol, "unexpected type byte 0x3f");
}

TEST(RespParser, ErrorNamesTheByteOffsetAcrossMessages) {
    parser p;
    boost::system::error_code ec;
    std::string buffer = "+OK\r\n:12x\r\n";
    auto n = p.next(buffer, ec);
    ASSERT_TRUE(n && p.done());
    buffer.erase(0, p.consumed());
    p.reset();
    EXPECT_FALSE(p.next(buffer, ec));
    EXPECT_EQ(ec, akv::error::resp_protocol);
    EXPECT_NE(p.error_message().find("bad integer \"12x\" at byte 5"), std::string::npos)
        << p.error_message();
}

TEST(RespParser, RefusesMalformedScalars) {
    expect_error(":abc\r\n", akv::error::resp_protocol, "bad integer");
    expect_error(":\r\n", akv::error::resp_protocol, "bad integer");
    expect_error(":99999999999999999999\r\n", akv::error::resp_protocol, "bad integer");
    expect_error(",x1\r\n", akv::error::resp_protocol, "bad double");
    expect_error("#x\r\n", akv::error::resp_protocol, "bad boolean");
    expect_error("_x\r\n", akv::error::resp_protocol, "null with a payload");
    expect_error("(12a\r\n", akv::error::resp_protocol, "bad big number");
    expect_error("$-2\r\n", akv::error::resp_protocol, "bad string length");
    expect_error("$3\r\nabcd\r\n", akv::error::resp_protocol, "not followed by CRLF");
    expect_error("=3\r\nabc\r\n", akv::error::resp_protocol, "verbatim");
    expect_error("*x\r\n", akv::error::resp_protocol, "bad aggregate length");
}

TEST(RespParser, RefusesStreamedTypesClearly) {
    expect_error("$?\r\n;4\r\nHell\r\n;0\r\n", akv::error::resp_unsupported, "streamed string");
    expect_error("*?\r\n:1\r\n.\r\n", akv::error::resp_unsupported, "streamed aggregate");
}

TEST(RespParser, BoundsNestingDepth) {
    akv::resp::limits lim;
    lim.max_depth = 4;
    std::string deep;
    for (int i = 0; i < 5; ++i)
        deep += "*1\r\n";
    deep += ":1\r\n";
    expect_error(deep, akv::error::resp_too_deep, "max_depth 4", lim);
    std::string ok;
    for (int i = 0; i < 4; ++i)
        ok += "*1\r\n";
    ok += ":1\r\n";
    boost::system::error_code ec;
    EXPECT_EQ(parse_split(ok, {}, ec, lim).messages, 1u);
    EXPECT_FALSE(ec);
}

TEST(RespParser, BoundsBulkAndAggregateLengths) {
    akv::resp::limits lim;
    lim.max_bulk_length = 10;
    lim.max_aggregate_length = 3;
    expect_error("$11\r\n", akv::error::resp_too_large, "exceeds max_bulk_length 10", lim);
    expect_error("*4\r\n", akv::error::resp_too_large, "exceeds max_aggregate_length 3", lim);
    expect_error("%2\r\n", akv::error::resp_too_large, "",
                 {.max_depth = 32, .max_bulk_length = 10, .max_aggregate_length = 1});
    // A hostile length is refused from the header alone: nothing is buffered for it.
    expect_error("$999999999999\r\n", akv::error::resp_too_large, "max_bulk_length");
}

TEST(RespParser, BoundsLinesWithoutCrlf) {
    akv::resp::limits lim;
    lim.max_bulk_length = 8;
    expect_error("+aaaaaaaaaaaaaaaaaaaa", akv::error::resp_too_large, "without CRLF", lim);
}
