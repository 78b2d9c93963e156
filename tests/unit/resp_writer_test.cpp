#include <akv/detail/adapt.hpp>
#include <akv/resp/parser.hpp>
#include <akv/resp/writer.hpp>

#include <gtest/gtest.h>

using akv::resp::type;
using akv::resp::value;

TEST(RespWriter, WritesBulkStringsBinarySafe) {
    std::string out;
    akv::resp::write_bulk(out, std::string_view("a\0b", 3));
    EXPECT_EQ(out, std::string("$3\r\na\0b\r\n", 9));
}

TEST(RespWriter, WritesAValueTreeThatParsesBackEqual) {
    value tree{type::map, "", {}};
    tree.elements.push_back({type::simple_string, "name", {}});
    tree.elements.push_back({type::blob_string, "x\r\ny", {}});
    tree.elements.push_back({type::simple_string, "list", {}});
    value list{type::array, "", {}};
    list.elements.push_back({type::number, "-7", {}});
    list.elements.push_back({type::doublean, "2.5", {}});
    list.elements.push_back({type::null, "", {}});
    list.elements.push_back({type::boolean, "t", {}});
    list.elements.push_back({type::verbatim_string, "txt:hi", {}});
    list.elements.push_back({type::big_number, "123456789012345678901234567890", {}});
    list.elements.push_back({type::blob_error, "ERR x", {}});
    tree.elements.push_back(list);

    std::string bytes;
    akv::resp::write(bytes, tree);

    akv::resp::parser p;
    boost::system::error_code ec;
    std::vector<akv::resp::node> nodes;
    while (auto n = p.next(bytes, ec))
        nodes.push_back(*n);
    ASSERT_FALSE(ec);
    ASSERT_TRUE(p.done());
    EXPECT_EQ(p.consumed(), bytes.size());

    akv::detail::cursor c{nodes, bytes, 0};
    value back;
    ASSERT_FALSE(akv::detail::converter<value>::apply(c, back));
    EXPECT_EQ(back, tree);
}
