#include <akv/cluster_slot.hpp>

#include <gtest/gtest.h>

TEST(ClusterSlot, Crc16IsXmodem) {
    EXPECT_EQ(akv::crc16("123456789"), 0x31C3); // the standard check value
    EXPECT_EQ(akv::crc16(""), 0);
}

TEST(ClusterSlot, MatchesRedisClusterKeyslot) {
    // Values from CLUSTER KEYSLOT on Redis 7.
    EXPECT_EQ(akv::cluster_slot("foo"), 12182);
    EXPECT_EQ(akv::cluster_slot("bar"), 5061);
    EXPECT_EQ(akv::cluster_slot("hello"), 866);
    EXPECT_EQ(akv::cluster_slot("somekey"), 11058);
}

TEST(ClusterSlot, HashTagsFollowTheRedisRules) {
    EXPECT_EQ(akv::cluster_slot("{user1000}.following"), akv::cluster_slot("{user1000}.followers"));
    EXPECT_EQ(akv::hash_tag_of("foo{bar}{zap}"), "bar");     // the first tag only
    EXPECT_EQ(akv::hash_tag_of("foo{}{bar}"), "foo{}{bar}"); // empty tag: the whole key
    EXPECT_EQ(akv::hash_tag_of("foo{{bar}}zap"), "{bar");    // up to the first '}'
    EXPECT_EQ(akv::hash_tag_of("foo{bar"), "foo{bar");       // no closing brace
    EXPECT_EQ(akv::cluster_slot("{queue:emails}:waiting"), akv::cluster_slot("queue:emails"));
}
