#include "format.hpp"

#include <gtest/gtest.h>

using akv::resp::type;
using akv::resp::value;

TEST(CliFormat, ScalarsLookLikeRedisCli) {
    EXPECT_EQ(akv::cli::format_reply({type::simple_string, "OK", {}}), "OK");
    EXPECT_EQ(akv::cli::format_reply({type::blob_string, "a\"b\n", {}}), "\"a\\\"b\\n\"");
    EXPECT_EQ(akv::cli::format_reply({type::number, "5", {}}), "(integer) 5");
    EXPECT_EQ(akv::cli::format_reply({type::null, "", {}}), "(nil)");
    EXPECT_EQ(akv::cli::format_reply({type::boolean, "t", {}}), "(true)");
    EXPECT_EQ(akv::cli::format_reply({type::doublean, "1.5", {}}), "(double) 1.5");
    EXPECT_EQ(akv::cli::format_reply({type::simple_error, "ERR x", {}}), "(error) ERR x");
    EXPECT_EQ(akv::cli::format_reply({type::blob_string, std::string("\x01\xff", 2), {}}),
              "\"\\x01\\xff\"");
}

TEST(CliFormat, NestedAggregatesAreNumberedAndIndented) {
    value inner{type::array, "", {{type::blob_string, "x", {}}, {type::number, "2", {}}}};
    value outer{type::array, "", {{type::blob_string, "a", {}}, inner}};
    EXPECT_EQ(akv::cli::format_reply(outer), "1) \"a\"\n2) 1) \"x\"\n   2) (integer) 2");
    value map{type::map, "", {{type::blob_string, "k", {}}, {type::number, "1", {}}}};
    EXPECT_EQ(akv::cli::format_reply(map), "1# \"k\" => (integer) 1");
    EXPECT_EQ(akv::cli::format_reply({type::array, "", {}}), "(empty array)");
}

TEST(CliFormat, RawPrintsBareValues) {
    value outer{type::array, "", {{type::blob_string, "a", {}}, {type::number, "2", {}}}};
    EXPECT_EQ(akv::cli::format_raw(outer), "a\n2");
}
