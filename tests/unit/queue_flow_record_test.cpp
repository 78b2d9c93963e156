// The stored form of a job of a flow (job.hpp): the record's flow text, a child's kept outcome
// and a group's result, without a server.
#include <akv/error.hpp>
#include <akv/queue/job.hpp>

#include <gtest/gtest.h>

using namespace akv::queue;

namespace {
job_options some_options() {
    job_options o;
    o.priority = 7;
    o.max_attempts = 4;
    return o;
}
} // namespace

TEST(QueueFlowRecord, AJobOutsideAFlowKeepsTheFirstRecordVersion) {
    const std::string r =
        detail::encode_record(some_options(), 1000, std::chrono::milliseconds(0), "payload");
    EXPECT_EQ(r.rfind("1|", 0), 0u);
    EXPECT_EQ(detail::flow_text(detail::decode_record("q", "1", r)), "");
}

TEST(QueueFlowRecord, AChildWithChildrenReadsBackItsParentAndCount) {
    job shape;
    shape.children = 3;
    shape.parent = job_parent{"reports", "42", 2, on_child_failure::ignore};
    const std::string flow = detail::flow_text(shape);
    EXPECT_EQ(flow, "c3|ireports 42 2");
    const std::string r = detail::encode_record(some_options(), 1000, std::chrono::milliseconds(0),
                                                "a|b payload", flow);
    EXPECT_EQ(r.rfind("2|", 0), 0u);
    const job j = detail::decode_record("fetch", "9", r);
    EXPECT_EQ(j.payload, "a|b payload");
    EXPECT_EQ(j.options.priority, 7);
    EXPECT_EQ(j.children, 3u);
    EXPECT_FALSE(j.collects);
    ASSERT_TRUE(j.parent);
    EXPECT_EQ(j.parent->queue, "reports");
    EXPECT_EQ(j.parent->id, "42");
    EXPECT_EQ(j.parent->index, 2u);
    EXPECT_EQ(j.parent->on_failure, on_child_failure::ignore);
    EXPECT_EQ(detail::flow_text(j), flow);
}

TEST(QueueFlowRecord, AGroupCollectorAtTheRootHasNoParent) {
    job shape;
    shape.children = 2;
    shape.collects = true;
    EXPECT_EQ(detail::flow_text(shape), "g2|-");
    const job j = detail::decode_record(
        "groups", "1",
        detail::encode_record({}, 0, std::chrono::milliseconds(0), "", detail::flow_text(shape)));
    EXPECT_TRUE(j.collects);
    EXPECT_FALSE(j.parent);
}

TEST(QueueFlowRecord, AMalformedFlowTextIsABadJob) {
    const std::string r =
        detail::encode_record({}, 0, std::chrono::milliseconds(0), "p", "c3|freports");
    try {
        detail::decode_record("q", "1", r);
        FAIL() << "decoded";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::error::bad_job);
        EXPECT_NE(std::string(e.what()).find("bad flow text"), std::string::npos) << e.what();
    }
}

TEST(QueueFlowRecord, KeptOutcomesAndAGroupsResultDecode) {
    const child_result pending = detail::decode_child("fetch 12");
    EXPECT_EQ(pending.queue, "fetch");
    EXPECT_EQ(pending.id, "12");
    EXPECT_FALSE(pending.result);
    const child_result done = detail::decode_child("fetch 12 crows: 3 4");
    ASSERT_TRUE(done.result);
    EXPECT_TRUE(done.result->ok());
    EXPECT_EQ(done.result->value, "rows: 3 4");
    const std::string a = "work 1 cfirst", b = "work 2 fit broke\n:";
    const auto group = detail::decode_group(std::to_string(a.size()) + ":" + a +
                                            std::to_string(b.size()) + ":" + b);
    ASSERT_EQ(group.size(), 2u);
    EXPECT_EQ(group[0].result->value, "first");
    EXPECT_EQ(group[1].result->outcome, job_result::status::failed);
    EXPECT_EQ(group[1].result->value, "it broke\n:");
    EXPECT_THROW(detail::decode_group("99:short"), boost::system::system_error);
}

TEST(QueueFlowRecord, AGroupedJobReadsBackItsGroupInOrOutOfAFlow) {
    job_options o;
    o.group = "tenant-7";
    const std::string plain =
        detail::encode_record(o, 1000, std::chrono::milliseconds(0), "3|payload");
    EXPECT_EQ(plain.rfind("3|", 0), 0u);
    const job j = detail::decode_record("q", "1", plain);
    EXPECT_EQ(j.options.group, "tenant-7");
    EXPECT_EQ(j.payload, "3|payload");
    EXPECT_EQ(detail::flow_text(j), "");

    job shape;
    shape.parent = job_parent{"reports", "42", 1, on_child_failure::fail};
    const std::string flow = detail::flow_text(shape);
    const job child = detail::decode_record(
        "q", "2", detail::encode_record(o, 0, std::chrono::milliseconds(0), "x", flow));
    EXPECT_EQ(child.options.group, "tenant-7");
    ASSERT_TRUE(child.parent);
    EXPECT_EQ(child.parent->id, "42");
    EXPECT_EQ(child.payload, "x");
}

TEST(QueueFlowRecord, AGroupLengthPastTheRecordIsABadJob) {
    job_options o;
    o.group = "g";
    std::string r = detail::encode_record(o, 0, std::chrono::milliseconds(0), "");
    // "...|0|0|1|g": the group's length says 9, the record has 1 byte left.
    r.replace(r.size() - 3, 1, "9");
    try {
        detail::decode_record("q", "1", r);
        ADD_FAILURE() << "decoded";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::make_error_code(akv::error::bad_job));
        EXPECT_NE(std::string(e.what()).find("group length"), std::string::npos) << e.what();
    }
}

TEST(QueueFlowRecord, AGroupWithASpaceOrWithAPriorityIsRefused) {
    job_options spaced;
    spaced.group = "a b";
    EXPECT_THROW(validate(spaced), boost::system::system_error);
    job_options prioritized;
    prioritized.group = "a";
    prioritized.priority = 5;
    try {
        validate(prioritized);
        ADD_FAILURE() << "validated";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::make_error_code(akv::error::invalid_config));
        EXPECT_NE(std::string(e.what()).find("no priority"), std::string::npos) << e.what();
    }
}
