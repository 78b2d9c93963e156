// The connection's decisions, driven byte by byte with no socket.
#include <akv/detail/multiplexer.hpp>

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>

#include <cstring>
#include <optional>

namespace {

using akv::detail::multiplexer;
using boost::system::error_code;

struct test_op final : akv::detail::pending_request {
    explicit test_op(const akv::request& r, akv::response<std::string>& resp) {
        req = &r;
        adapter = akv::detail::make_adapter(resp);
    }
    explicit test_op(const akv::request& r) {
        req = &r;
        adapter = akv::detail::make_adapter(akv::ignore);
    }
    std::optional<error_code> outcome;
    int completions = 0;
    void on_complete(error_code ec) override {
        outcome = ec;
        ++completions;
    }
};

akv::request make(std::string_view cmd, std::string_view arg = {}) {
    akv::request r;
    if (arg.empty())
        r.push(cmd);
    else
        r.push(cmd, arg);
    return r;
}

void feed(multiplexer& m, std::string_view bytes, error_code& ec, std::size_t chunk = 1 << 20) {
    while (!bytes.empty() && !ec) {
        const std::size_t n = std::min(chunk, bytes.size());
        auto space = m.prepare_read(n);
        std::memcpy(space.data(), bytes.data(), n);
        m.commit_read(n, ec);
        bytes.remove_prefix(n);
    }
}

} // namespace

TEST(Multiplexer, WritesEveryPendingRequestInOneBuffer) {
    multiplexer m;
    auto a = make("GET", "a"), b = make("GET", "b"), c = make("GET", "c");
    akv::response<std::string> ra, rb, rc;
    test_op oa(a, ra), ob(b, rb), oc(c, rc);
    m.add(oa);
    m.add(ob);
    m.add(oc);
    const std::string expected =
        std::string(a.payload()) + std::string(b.payload()) + std::string(c.payload());
    EXPECT_EQ(m.prepare_write(), expected);
    EXPECT_FALSE(m.has_unwritten());
    m.on_write_done();
    EXPECT_EQ(m.stats().requests_written, 3u);
}

TEST(Multiplexer, CompletesRequestsInOrderWhateverTheSplit) {
    const std::string replies = "$1\r\n1\r\n$2\r\n22\r\n$3\r\n333\r\n";
    for (std::size_t chunk = 1; chunk <= replies.size(); ++chunk) {
        multiplexer m;
        auto a = make("GET", "a"), b = make("GET", "b"), c = make("GET", "c");
        akv::response<std::string> ra, rb, rc;
        test_op oa(a, ra), ob(b, rb), oc(c, rc);
        m.add(oa);
        m.add(ob);
        m.add(oc);
        m.prepare_write();
        m.on_write_done();
        error_code ec;
        feed(m, replies, ec, chunk);
        ASSERT_FALSE(ec) << m.error_message();
        ASSERT_TRUE(oa.outcome && ob.outcome && oc.outcome) << "chunk " << chunk;
        EXPECT_EQ(std::get<0>(ra).value(), "1");
        EXPECT_EQ(std::get<0>(rb).value(), "22");
        EXPECT_EQ(std::get<0>(rc).value(), "333");
        EXPECT_TRUE(m.idle());
    }
}

TEST(Multiplexer, PushesGoToThePushHandlerNotToRequests) {
    multiplexer m;
    std::vector<std::string> pushed;
    m.set_push_handler([&](std::span<const akv::resp::node> nodes, std::string_view msg) {
        pushed.emplace_back(nodes[3].value(msg));
    });
    auto a = make("GET", "a");
    akv::response<std::string> ra;
    test_op oa(a, ra);
    m.add(oa);
    m.prepare_write();
    m.on_write_done();
    error_code ec;
    feed(m, ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n$1\r\nx\r\n", ec, 3);
    ASSERT_FALSE(ec);
    EXPECT_EQ(pushed, std::vector<std::string>{"hi"});
    EXPECT_EQ(std::get<0>(ra).value(), "x");
}

TEST(Multiplexer, CancelledUnwrittenRequestIsNeverWritten) {
    multiplexer m;
    auto a = make("GET", "a"), b = make("GET", "b");
    test_op oa(a), ob(b);
    m.add(oa);
    m.add(ob);
    EXPECT_TRUE(m.cancel(oa, boost::asio::error::operation_aborted));
    EXPECT_EQ(oa.outcome, boost::asio::error::operation_aborted);
    EXPECT_EQ(m.prepare_write(), b.payload());
    EXPECT_FALSE(m.cancel(oa, boost::asio::error::operation_aborted));
}

TEST(Multiplexer, CancelledWrittenRequestHasItsReplyDiscarded) {
    multiplexer m;
    auto a = make("GET", "a"), b = make("GET", "b");
    akv::response<std::string> ra, rb;
    test_op oa(a, ra), ob(b, rb);
    m.add(oa);
    m.add(ob);
    m.prepare_write();
    m.on_write_done();
    ASSERT_TRUE(m.cancel(oa, akv::error::timeout));
    EXPECT_EQ(oa.outcome, akv::error::timeout);
    error_code ec;
    feed(m, "$5\r\nfirst\r\n$6\r\nsecond\r\n", ec);
    ASSERT_FALSE(ec);
    EXPECT_EQ(oa.completions, 1);
    EXPECT_FALSE(std::get<0>(ra).has_error());
    EXPECT_EQ(std::get<0>(ra).value(), ""); // untouched
    EXPECT_EQ(std::get<0>(rb).value(), "second");
    EXPECT_TRUE(m.idle());
}

TEST(Multiplexer, UnwrittenRequestsSurviveADisconnect) {
    multiplexer m;
    auto a = make("INCR", "a"), b = make("GET", "b");
    auto c = make("GET", "c");
    c.get_options().idempotent = true;
    test_op oa(a), ob(b), oc(c);
    m.add(oa);
    m.add(oc);
    m.prepare_write();
    m.on_write_done();
    m.add(ob); // queued while the first two are in flight
    m.on_disconnect();
    EXPECT_EQ(oa.outcome, akv::error::connection_lost);
    EXPECT_FALSE(oc.outcome); // idempotent: sent again
    EXPECT_FALSE(ob.outcome); // never written: survives
    EXPECT_EQ(m.prepare_write(), std::string(c.payload()) + std::string(b.payload()));
    m.on_write_done();
    error_code ec;
    feed(m, "+c\r\n+b\r\n", ec);
    EXPECT_EQ(oc.outcome, error_code{});
    EXPECT_EQ(ob.outcome, error_code{});
    EXPECT_TRUE(m.idle());
}

TEST(Multiplexer, HalfReadReplyIsDroppedOnDisconnect) {
    multiplexer m;
    auto a = make("GET", "a");
    a.get_options().idempotent = true;
    akv::response<std::string> ra;
    test_op oa(a, ra);
    m.add(oa);
    m.prepare_write();
    m.on_write_done();
    error_code ec;
    feed(m, "$10\r\nabc", ec);
    m.on_disconnect();
    m.prepare_write();
    m.on_write_done();
    feed(m, "$2\r\nok\r\n", ec);
    ASSERT_FALSE(ec);
    EXPECT_EQ(std::get<0>(ra).value(), "ok");
}

TEST(Multiplexer, SubscribeCompletesWithItsConfirmations) {
    multiplexer m;
    akv::request s;
    s.push("SUBSCRIBE", "a", "b");
    test_op os(s);
    m.add(os);
    m.prepare_write();
    m.on_write_done();
    EXPECT_FALSE(os.outcome); // waits for one confirmation per channel
    error_code ec;
    feed(m, ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", ec);
    EXPECT_FALSE(os.outcome);
    feed(m, ">3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n", ec);
    EXPECT_EQ(os.outcome, error_code{});
    EXPECT_TRUE(m.idle());
}

TEST(Multiplexer, UnsubscribeFromEverythingCompletesWhenWritten) {
    multiplexer m;
    auto s = make("UNSUBSCRIBE"); // as many confirmations as channels: not counted
    test_op os(s);
    m.add(os);
    m.prepare_write();
    EXPECT_FALSE(os.outcome);
    m.on_write_done();
    EXPECT_EQ(os.outcome, error_code{});
    EXPECT_TRUE(m.idle());
}

TEST(Multiplexer, ErrorInPlaceOfConfirmationsBelongsToTheSubscribe) {
    // SSUBSCRIBE refused (MOVED, NOPERM): the error is its answer, and the GET after it still
    // gets its own reply.
    multiplexer m;
    auto s = make("SSUBSCRIBE", "ch");
    auto g = make("GET", "k");
    akv::generic_response rs;
    akv::response<std::string> rg;
    test_op os(s), og(g, rg);
    os.adapter = akv::detail::make_adapter(rs);
    m.add(os);
    m.add(og);
    m.prepare_write();
    m.on_write_done();
    error_code ec;
    feed(m, "-MOVED 1 127.0.0.1:7001\r\n$5\r\nvalue\r\n", ec);
    EXPECT_FALSE(ec);
    EXPECT_EQ(os.outcome, error_code{});
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_TRUE(rs[0].has_error());
    EXPECT_EQ(og.outcome, error_code{});
    EXPECT_EQ(std::get<0>(rg).value(), "value");
    EXPECT_TRUE(m.idle());
}

TEST(Multiplexer, UnsolicitedReplyIsAProtocolError) {
    multiplexer m;
    error_code ec;
    feed(m, "+OK\r\n", ec);
    EXPECT_EQ(ec, akv::error::resp_protocol);
    EXPECT_NE(m.error_message().find("no request waiting"), std::string::npos);
}

TEST(Multiplexer, HandshakeGoesFirstAndAlone) {
    multiplexer m;
    auto a = make("GET", "a"), hello = make("HELLO", "3");
    test_op oa(a), oh(hello);
    m.add(oa);
    m.add_front(oh);
    EXPECT_EQ(m.prepare_write(1), hello.payload());
    m.on_write_done();
    EXPECT_TRUE(m.has_unwritten());
    error_code ec;
    feed(m, "%1\r\n+server\r\n+redis\r\n", ec);
    EXPECT_EQ(oh.outcome, error_code{});
    EXPECT_FALSE(oa.outcome);
    EXPECT_EQ(m.prepare_write(), a.payload());
    // cancel after renumbering still finds the request
    EXPECT_TRUE(m.cancel(oa, akv::error::timeout));
}

TEST(Multiplexer, FailAllCompletesEverything) {
    multiplexer m;
    auto a = make("GET", "a"), b = make("GET", "b");
    test_op oa(a), ob(b);
    m.add(oa);
    m.prepare_write();
    m.on_write_done();
    m.add(ob);
    m.fail_all(akv::error::connection_closed);
    EXPECT_EQ(oa.outcome, akv::error::connection_closed);
    EXPECT_EQ(ob.outcome, akv::error::connection_closed);
    EXPECT_TRUE(m.idle());
}

TEST(Multiplexer, RepliesMayArriveBeforeTheWriteCompletes) {
    // The server answers the start of a large write while the rest is still being sent.
    multiplexer m;
    auto a = make("GET", "a"), b = make("GET", "b");
    akv::response<std::string> ra, rb;
    test_op oa(a, ra), ob(b, rb);
    m.add(oa);
    m.add(ob);
    m.prepare_write();
    error_code ec;
    feed(m, "$1\r\nA\r\n", ec);
    ASSERT_FALSE(ec) << m.error_message();
    EXPECT_EQ(std::get<0>(ra).value(), "A");
    m.on_write_done();
    feed(m, "$1\r\nB\r\n", ec);
    ASSERT_FALSE(ec) << m.error_message();
    EXPECT_EQ(std::get<0>(rb).value(), "B");
    EXPECT_TRUE(m.idle());
    EXPECT_EQ(m.stats().requests_written, 2u);
}
