#include <akv/detail/adapt.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <optional>
#include <tuple>
#include <vector>

namespace {

// Parses one reply and adapts it into result<T>.
template <class T> akv::result<T> adapt(std::string_view bytes) {
    akv::resp::parser p;
    boost::system::error_code ec;
    std::vector<akv::resp::node> nodes;
    while (auto n = p.next(bytes, ec))
        nodes.push_back(*n);
    EXPECT_FALSE(ec);
    EXPECT_TRUE(p.done());
    akv::result<T> r;
    akv::detail::adapt_reply(nodes, bytes.substr(0, p.consumed()), r);
    return r;
}

} // namespace

TEST(Adapt, Scalars) {
    EXPECT_EQ(adapt<std::string>("$3\r\nabc\r\n").value(), "abc");
    EXPECT_EQ(adapt<std::string>("+OK\r\n").value(), "OK");
    EXPECT_EQ(adapt<std::string>("=8\r\ntxt:text\r\n").value(), "text");
    EXPECT_EQ(adapt<long long>(":-5\r\n").value(), -5);
    EXPECT_EQ(adapt<int>("$2\r\n42\r\n").value(), 42);
    EXPECT_DOUBLE_EQ(adapt<double>(",2.5\r\n").value(), 2.5);
    EXPECT_DOUBLE_EQ(adapt<double>("$3\r\n1.5\r\n").value(), 1.5);
    EXPECT_TRUE(std::isinf(adapt<double>(",inf\r\n").value()));
    EXPECT_TRUE(adapt<bool>("#t\r\n").value());
    EXPECT_FALSE(adapt<bool>(":0\r\n").value());
}

TEST(Adapt, ErrorReplyIsAValueWithTheServersText) {
    auto r = adapt<std::string>("-WRONGTYPE Operation against a key\r\n");
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error().code, akv::error::server_error);
    EXPECT_EQ(r.error().message, "WRONGTYPE Operation against a key");
    EXPECT_THROW(r.value(), boost::system::system_error);
}

TEST(Adapt, MismatchSaysWhatWasExpectedAndWhatCame) {
    auto r = adapt<int>("$3\r\nabc\r\n");
    ASSERT_TRUE(r.has_error());
    EXPECT_EQ(r.error().code, akv::error::type_mismatch);
    EXPECT_EQ(r.error().message, "expected an integer that fits, got blob_string \"abc\"");
    auto overflow = adapt<std::int8_t>(":300\r\n");
    EXPECT_EQ(overflow.error().code, akv::error::type_mismatch);
    auto agg = adapt<std::string>("*2\r\n:1\r\n:2\r\n");
    EXPECT_EQ(agg.error().message, "expected a string, got array of 2");
}

TEST(Adapt, NullNeedsOptional) {
    auto r = adapt<std::string>("_\r\n");
    EXPECT_EQ(r.error().code, akv::error::unexpected_null);
    auto o = adapt<std::optional<std::string>>("$-1\r\n");
    ASSERT_TRUE(o.has_value());
    EXPECT_FALSE(o.value().has_value());
    auto some = adapt<std::optional<int>>(":3\r\n");
    EXPECT_EQ(some.value(), 3);
}

TEST(Adapt, Aggregates) {
    auto v = adapt<std::vector<std::string>>("*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    EXPECT_EQ(v.value(), (std::vector<std::string>{"a", "b"}));
    auto m = adapt<std::map<std::string, int>>("%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n");
    EXPECT_EQ(m.value(), (std::map<std::string, int>{{"a", 1}, {"b", 2}}));
    auto flat = adapt<std::map<std::string, int>>("*4\r\n+a\r\n:1\r\n+b\r\n:2\r\n");
    EXPECT_EQ(flat.value(), (std::map<std::string, int>{{"a", 1}, {"b", 2}}));
    auto t = adapt<std::tuple<std::string, int, std::optional<int>>>("*3\r\n+x\r\n:1\r\n_\r\n");
    EXPECT_EQ(std::get<0>(t.value()), "x");
    EXPECT_FALSE(std::get<2>(t.value()));
    auto wrong = adapt<std::tuple<int, int>>("*3\r\n:1\r\n:2\r\n:3\r\n");
    EXPECT_EQ(wrong.error().message, "expected an aggregate of 2, got array of 3");
    auto nested = adapt<std::vector<std::vector<int>>>("*2\r\n*1\r\n:1\r\n*2\r\n:2\r\n:3\r\n");
    EXPECT_EQ(nested.value(), (std::vector<std::vector<int>>{{1}, {2, 3}}));
}

TEST(Adapt, ErrorsInsideAnAggregateAreValuesToo) {
    // EXEC where the second command failed.
    auto r =
        adapt<std::vector<akv::result<std::string>>>("*3\r\n+OK\r\n-WRONGTYPE bad\r\n$1\r\nx\r\n");
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->size(), 3u);
    EXPECT_EQ((*r)[0].value(), "OK");
    EXPECT_EQ((*r)[1].error().message, "WRONGTYPE bad");
    EXPECT_EQ((*r)[2].value(), "x");
    // A mismatch inside one element keeps the others aligned.
    auto m = adapt<std::vector<akv::result<int>>>("*3\r\n*2\r\n:1\r\n:2\r\n:7\r\n:8\r\n");
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ((*m)[0].error().code, akv::error::type_mismatch);
    EXPECT_EQ((*m)[1].value(), 7);
    EXPECT_EQ((*m)[2].value(), 8);
}

TEST(Adapt, GenericValueTreeSkipsAttributes) {
    auto r = adapt<akv::resp::value>("|1\r\n+ttl\r\n:3\r\n*2\r\n+a\r\n|1\r\n+k\r\n+v\r\n:1\r\n");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->data_type, akv::resp::type::array);
    ASSERT_EQ(r->elements.size(), 2u);
    EXPECT_EQ(r->elements[0].str, "a");
    EXPECT_EQ(r->elements[1].str, "1");
}
