// A partitioned queue's pure parts: ids, placement by key, where partitions go, and the claim
// budget's turns (task_queue/src/partitions.hpp, claim_budget.hpp).
#include "claim_budget.hpp"
#include "partitions.hpp"

#include <akv/cluster_slot.hpp>
#include <akv/queue/partitioned.hpp>

#include <gtest/gtest.h>

#include <map>
#include <set>

using namespace akv::queue;
using akv::queue::detail::fair_grant;
using akv::queue::detail::share;

TEST(QueuePartitions, IdsAreThePartitionThenTheIdThere) {
    EXPECT_EQ(partitioned_id(2, "17"), "2:17");
    const auto ref = parse_partitioned_id("2:17");
    ASSERT_TRUE(ref);
    EXPECT_EQ(ref->partition, 2u);
    EXPECT_EQ(ref->id, "17");
    for (const char* bad : {"17", ":17", "2:", "a:17", "2:1x", "2:17:3", "-1:4", "1234567890:1"})
        EXPECT_FALSE(parse_partitioned_id(bad)) << bad;
}

TEST(QueuePartitions, APartitionsIndexIsReadFromItsQueueName) {
    EXPECT_EQ(partition_of("emails~2"), 2u);
    EXPECT_EQ(partition_of("emails~12.7"), 12u);
    EXPECT_EQ(partition_of("a~b~3"), 3u);
    EXPECT_FALSE(partition_of("emails"));
    EXPECT_FALSE(partition_of("emails~"));
    EXPECT_FALSE(partition_of("emails~x"));
    EXPECT_FALSE(partition_of("emails~2.x"));
}

TEST(QueuePartitions, AKeysPartitionIsStableAndSpreadsKeysEvenly) {
    // Part of the stored format: these must never change.
    EXPECT_EQ(partition_for_key("customer-1", 3), partition_for_key("customer-1", 3));
    EXPECT_EQ(partition_for_key("anything", 1), 0u);
    EXPECT_EQ(partition_for_key("anything", 0), 0u);
    std::map<std::size_t, int> per;
    for (int i = 0; i < 30000; ++i)
        ++per[partition_for_key("key" + std::to_string(i), 3)];
    ASSERT_EQ(per.size(), 3u);
    for (const auto& [p, n] : per) {
        EXPECT_LT(p, 3u);
        EXPECT_NEAR(n, 10000, 500) << "partition " << p;
    }
}

TEST(QueuePartitions, AddingAPartitionMovesKeysOnlyToIt) {
    int moved = 0;
    for (int i = 0; i < 20000; ++i) {
        const std::string key = "k" + std::to_string(i);
        const auto before = partition_for_key(key, 4), after = partition_for_key(key, 5);
        if (before != after) {
            ++moved;
            EXPECT_EQ(after, 4u) << key;
        }
    }
    EXPECT_NEAR(moved, 20000 / 5, 400); // about 1 key in N + 1
}

TEST(QueuePartitions, PartitionsGoToTheLeastLoadedMasters) {
    // Three masters splitting the slots evenly, as the embedded cluster does.
    const std::vector<std::string> masters{"a", "b", "c"};
    auto owner = [](std::uint16_t slot) -> std::string {
        return slot < 5461 ? "a" : slot < 10923 ? "b" : "c";
    };
    const auto names = detail::plan_partition_names("emails", 0, 3, masters, {}, owner);
    ASSERT_EQ(names.size(), 3u);
    std::set<std::string> owners;
    for (std::size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(partition_of(names[i]), i) << names[i];
        EXPECT_EQ(names[i].rfind("emails~" + std::to_string(i), 0), 0u) << names[i];
        owners.insert(owner(akv::cluster_slot(names[i])));
    }
    EXPECT_EQ(owners.size(), 3u);
    // Three more: one on each master again.
    std::vector<std::string> before;
    for (const auto& n : names)
        before.push_back(owner(akv::cluster_slot(n)));
    const auto more = detail::plan_partition_names("emails", 3, 3, masters, before, owner);
    std::map<std::string, int> load;
    for (const auto& n : more)
        ++load[owner(akv::cluster_slot(n))];
    EXPECT_EQ(load, (std::map<std::string, int>{{"a", 1}, {"b", 1}, {"c", 1}}));
    // The plan is a function of its inputs: every process plans the same names.
    EXPECT_EQ(detail::plan_partition_names("emails", 0, 3, masters, {}, owner), names);
}

TEST(QueuePartitions, OnOneServerPartitionsAreNamedByTheirIndexAlone) {
    const std::vector<std::string> one{"s"};
    const auto names = detail::plan_partition_names("q", 0, 3, one, {},
                                                    [](std::uint16_t) { return std::string("s"); });
    EXPECT_EQ(names, (std::vector<std::string>{"q~0", "q~1", "q~2"}));
}

TEST(QueueBudget, AnAskerAloneMayFillTheWholeBudget) {
    std::vector<share> m{{0, true, 0}, {0, false, 0}};
    EXPECT_EQ(fair_grant(m, 0, 32, 128), 32u);
    m[1].held = 10; // running jobs of a partition that has no more: theirs stay theirs
    EXPECT_EQ(fair_grant(m, 0, 32, 128), 22u);
}

TEST(QueueBudget, TwoHungryPartitionsGetHalfEach) {
    std::vector<share> m{{0, true, 0}, {0, true, 0}};
    EXPECT_EQ(fair_grant(m, 0, 32, 128), 16u);
    m[0] = {16, true, 1};
    EXPECT_EQ(fair_grant(m, 1, 32, 128), 16u);
    m[1] = {16, true, 2};
    EXPECT_EQ(fair_grant(m, 0, 32, 128), 0u); // full
    // One of partition 0's jobs ends: it takes the slot back, as partition 1 holds more.
    m[0].held = 15;
    EXPECT_EQ(fair_grant(m, 0, 32, 128), 1u);
    EXPECT_EQ(fair_grant(m, 1, 32, 128), 0u);
}

TEST(QueueBudget, ABusyPartitionHoldingEverythingGivesFreedSlotsToTheWaitingOne) {
    // Partition 0 filled the budget while partition 1 had nothing; now 1 has jobs.
    std::vector<share> m{{31, true, 5}, {0, true, 0}};
    EXPECT_EQ(fair_grant(m, 0, 32, 128), 0u); // above its share
    EXPECT_EQ(fair_grant(m, 1, 32, 128), 1u);
}

TEST(QueueBudget, WithOneSlotThePartitionsTakeTurns) {
    std::vector<share> m{{0, true, 3}, {0, true, 2}};
    // Partition 1 was served longer ago: its turn, even though 0 asks first.
    EXPECT_EQ(fair_grant(m, 0, 1, 1), 0u);
    EXPECT_EQ(fair_grant(m, 1, 1, 1), 1u);
    m[1] = {0, true, 4}; // its job ended; now 0's turn
    EXPECT_EQ(fair_grant(m, 1, 1, 1), 0u);
    EXPECT_EQ(fair_grant(m, 0, 1, 1), 1u);
}

TEST(QueueBudget, APartitionThatIsNotHungryIsNotWaitedFor) {
    // Partition 1 holds nothing and was served long ago, but found no jobs (or is paused,
    // limited, unreachable): partition 0 goes on.
    std::vector<share> m{{0, true, 9}, {0, false, 1}};
    EXPECT_EQ(fair_grant(m, 0, 1, 1), 1u);
}

TEST(QueueBudget, ThreePartitionsShareRoundedUp) {
    std::vector<share> m{{0, true, 0}, {0, true, 0}, {0, true, 0}};
    EXPECT_EQ(fair_grant(m, 0, 32, 128), 11u);
    m[0].held = 11;
    EXPECT_EQ(fair_grant(m, 1, 32, 128), 11u);
    m[1].held = 11;
    EXPECT_EQ(fair_grant(m, 2, 32, 128), 10u);
    EXPECT_EQ(fair_grant(m, 2, 32, 4), 4u); // never more than asked
}
