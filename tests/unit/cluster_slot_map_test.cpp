#include <akv/cluster/slot_map.hpp>

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

using akv::endpoint;
using akv::cluster::slot_map;
using akv::resp::type;
using akv::resp::value;

namespace {

value str(std::string s) {
    return {type::blob_string, std::move(s), {}};
}
value num(long long n) {
    return {type::number, std::to_string(n), {}};
}
value nil() {
    return {type::null, {}, {}};
}
value array(std::vector<value> elements) {
    return {type::array, {}, std::move(elements)};
}
// RESP3 map: key, value, key, value.
value map(std::vector<value> pairs) {
    return {type::map, {}, std::move(pairs)};
}

// A node of CLUSTER SHARDS as Redis 7.0 sends it.
value shards_node(const std::string& id, const std::string& ip, long long port,
                  const std::string& role, const std::string& health = "online") {
    return map({str("id"), str(id), str("port"), num(port), str("ip"), str(ip), str("endpoint"),
                str(ip), str("role"), str(role), str("replication-offset"), num(1234),
                str("health"), str(health)});
}

value shard_entry(std::vector<value> slots, std::vector<value> nodes) {
    return map({str("slots"), array(std::move(slots)), str("nodes"), array(std::move(nodes))});
}

// Three masters with a replica each, the layout redis-cli --cluster create makes.
value three_shards() {
    return array({
        shard_entry({num(0), num(5460)}, {shards_node("m1", "10.0.0.1", 7000, "master"),
                                          shards_node("r1", "10.0.0.4", 7003, "replica")}),
        shard_entry({num(5461), num(10922)}, {shards_node("m2", "10.0.0.2", 7001, "master"),
                                              shards_node("r2", "10.0.0.5", 7004, "replica")}),
        shard_entry({num(10923), num(16383)}, {shards_node("r3", "10.0.0.6", 7005, "replica"),
                                               shards_node("m3", "10.0.0.3", 7002, "master")}),
    });
}

// RESP2 sends maps as flat arrays.
value as_resp2(value v) {
    if (v.data_type == type::map) v.data_type = type::array;
    for (auto& e : v.elements)
        e = as_resp2(std::move(e));
    return v;
}

// A node of CLUSTER SLOTS: [host, port, id, {metadata}].
value slots_node(const std::string& host, long long port, const std::string& id,
                 std::vector<value> metadata = {}) {
    return array({str(host), num(port), str(id), map(std::move(metadata))});
}

value three_slot_ranges() {
    return array({
        array({num(0), num(5460), slots_node("10.0.0.1", 7000, "m1"),
               slots_node("10.0.0.4", 7003, "r1")}),
        array({num(5461), num(10922), slots_node("10.0.0.2", 7001, "m2"),
               slots_node("10.0.0.5", 7004, "r2")}),
        array({num(10923), num(16383), slots_node("10.0.0.3", 7002, "m3"),
               slots_node("10.0.0.6", 7005, "r3")}),
    });
}

std::string shards_error(const value& reply, bool tls = false) {
    slot_map map;
    return slot_map::from_shards(reply, map, tls).value_or("no error");
}

std::string slots_error(const value& reply) {
    slot_map map;
    return slot_map::from_slots(reply, map).value_or("no error");
}

void expect_three_shards(const slot_map& map) {
    EXPECT_EQ(map.covered_slots(), 16384u);
    EXPECT_FALSE(map.empty());
    ASSERT_NE(map.owner(0), nullptr);
    EXPECT_EQ(map.owner(0)->master, (endpoint{"10.0.0.1", 7000}));
    EXPECT_EQ(map.owner(0)->master_id, "m1");
    EXPECT_EQ(map.owner(0)->replicas, (std::vector<endpoint>{{"10.0.0.4", 7003}}));
    EXPECT_EQ(map.owner(5460)->master.port, 7000);
    EXPECT_EQ(map.owner(5461)->master.port, 7001);
    EXPECT_EQ(map.owner(10923)->master, (endpoint{"10.0.0.3", 7002}));
    EXPECT_EQ(map.owner(16383)->replicas, (std::vector<endpoint>{{"10.0.0.6", 7005}}));
    EXPECT_EQ(map.masters(),
              (std::vector<endpoint>{{"10.0.0.1", 7000}, {"10.0.0.2", 7001}, {"10.0.0.3", 7002}}));
    EXPECT_EQ(map.nodes().size(), 6u);
}

} // namespace

TEST(ClusterSlotMap, EmptyMapServesNothing) {
    slot_map map;
    EXPECT_TRUE(map.empty());
    EXPECT_EQ(map.covered_slots(), 0u);
    EXPECT_EQ(map.owner(0), nullptr);
    EXPECT_EQ(map.owner(16383), nullptr);
    EXPECT_TRUE(map.masters().empty());
}

TEST(ClusterSlotMap, ParsesShardsOfThreeMastersWithReplicas) {
    slot_map map;
    ASSERT_EQ(slot_map::from_shards(three_shards(), map), std::nullopt);
    expect_three_shards(map);
}

TEST(ClusterSlotMap, ParsesShardsSentAsResp2Arrays) {
    slot_map map;
    ASSERT_EQ(slot_map::from_shards(as_resp2(three_shards()), map), std::nullopt);
    expect_three_shards(map);
}

TEST(ClusterSlotMap, ParsesSlotsOfThreeMastersWithReplicas) {
    slot_map map;
    ASSERT_EQ(slot_map::from_slots(three_slot_ranges(), map), std::nullopt);
    expect_three_shards(map);
    ASSERT_EQ(slot_map::from_slots(as_resp2(three_slot_ranges()), map), std::nullopt);
    expect_three_shards(map);
}

TEST(ClusterSlotMap, ShardWithSeveralSlotRanges) {
    const value reply = array({
        shard_entry({num(0), num(99), num(200), num(299)},
                    {shards_node("a", "10.0.0.1", 7000, "master")}),
        shard_entry({num(100), num(199)}, {shards_node("b", "10.0.0.2", 7000, "master")}),
    });
    slot_map map;
    ASSERT_EQ(slot_map::from_shards(reply, map), std::nullopt);
    EXPECT_EQ(map.covered_slots(), 300u);
    EXPECT_EQ(map.owner(250)->master_id, "a");
    EXPECT_EQ(map.owner(150)->master_id, "b");
    EXPECT_EQ(map.owner(300), nullptr); // unassigned
    EXPECT_EQ(map.shards().size(), 2u);
}

TEST(ClusterSlotMap, SlotsRangesOfOneMasterShareAShard) {
    const value reply = array({
        array({num(0), num(9), slots_node("10.0.0.1", 7000, "a"),
               slots_node("10.0.0.9", 7009, "ra")}),
        array({num(10), num(19), slots_node("10.0.0.2", 7000, "b")}),
        array({num(20), num(29), slots_node("10.0.0.1", 7000, "a"),
               slots_node("10.0.0.9", 7009, "ra")}),
    });
    slot_map map;
    ASSERT_EQ(slot_map::from_slots(reply, map), std::nullopt);
    EXPECT_EQ(map.shards().size(), 2u);
    EXPECT_EQ(map.owner(5), map.owner(25));
    EXPECT_EQ(map.owner(25)->replicas.size(), 1u);
    EXPECT_EQ(map.masters().size(), 2u);
    EXPECT_EQ(map.covered_slots(), 30u);
}

TEST(ClusterSlotMap, FailedReplicasAreLeftOut) {
    const value reply = array({shard_entry(
        {num(0), num(16383)}, {shards_node("m", "10.0.0.1", 7000, "master"),
                               shards_node("r1", "10.0.0.2", 7000, "replica", "fail"),
                               shards_node("r2", "10.0.0.3", 7000, "replica", "loading")})});
    slot_map map;
    ASSERT_EQ(slot_map::from_shards(reply, map), std::nullopt);
    EXPECT_EQ(map.owner(0)->replicas, (std::vector<endpoint>{{"10.0.0.3", 7000}}));
}

TEST(ClusterSlotMap, FailedMasterKeepsItsSlotsUntilFailover) {
    const value reply = array({
        shard_entry({num(0), num(16383)}, {shards_node("m", "10.0.0.1", 7000, "master", "fail"),
                                           shards_node("r", "10.0.0.2", 7000, "replica")}),
        // A former master that failed and lost its slots is no shard any more.
        shard_entry({}, {shards_node("old", "10.0.0.3", 7000, "master", "fail")}),
    });
    slot_map map;
    ASSERT_EQ(slot_map::from_shards(reply, map), std::nullopt);
    EXPECT_EQ(map.owner(42)->master, (endpoint{"10.0.0.1", 7000}));
    EXPECT_EQ(map.shards().size(), 1u);
}

TEST(ClusterSlotMap, MasterWithoutSlotsIsANodeButNotWhereKeysLive) {
    const value reply = array({
        shard_entry({num(0), num(16383)}, {shards_node("m", "10.0.0.1", 7000, "master")}),
        shard_entry({}, {shards_node("new", "10.0.0.2", 7000, "master")}),
    });
    slot_map map;
    ASSERT_EQ(slot_map::from_shards(reply, map), std::nullopt);
    EXPECT_EQ(map.masters(), (std::vector<endpoint>{{"10.0.0.1", 7000}}));
    EXPECT_EQ(map.nodes().size(), 2u);
}

TEST(ClusterSlotMap, EndpointIsPreferredOverIp) {
    value node =
        map({str("id"), str("m"), str("port"), num(7000), str("ip"), str("10.0.0.1"),
             str("endpoint"), str("node-1.example"), str("hostname"), str("node-1.example"),
             str("role"), str("master"), str("health"), str("online")});
    slot_map map;
    ASSERT_EQ(slot_map::from_shards(array({shard_entry({num(0), num(1)}, {node})}), map),
              std::nullopt);
    EXPECT_EQ(map.owner(0)->master.host, "node-1.example");
}

TEST(ClusterSlotMap, UnknownEndpointFallsBackToIpThenToTheOriginHost) {
    auto node_with = [](value endpoint, value ip) {
        return map({str("port"), num(7000), str("ip"), std::move(ip), str("endpoint"),
                    std::move(endpoint), str("role"), str("master")});
    };
    auto one_shard = [](value node) {
        return array({shard_entry({num(0), num(16383)}, {std::move(node)})});
    };
    slot_map map;
    ASSERT_EQ(slot_map::from_shards(one_shard(node_with(str("?"), str("10.0.0.1"))), map),
              std::nullopt);
    EXPECT_EQ(map.owner(0)->master.host, "10.0.0.1");
    ASSERT_EQ(slot_map::from_shards(one_shard(node_with(str(""), str("10.0.0.2"))), map),
              std::nullopt);
    EXPECT_EQ(map.owner(0)->master.host, "10.0.0.2");
    ASSERT_EQ(slot_map::from_shards(one_shard(node_with(nil(), str("?"))), map, false, "seed-a"),
              std::nullopt);
    EXPECT_EQ(map.owner(0)->master.host, "seed-a");
    // A lone node that no other node has met yet announces no address at all.
    EXPECT_EQ(shards_error(one_shard(node_with(str(""), str("")))),
              "CLUSTER SHARDS: shard 0: node 0: \"ip\" is \"\" and no origin host was given");
}

TEST(ClusterSlotMap, SlotsUnknownHostUsesMetadataIpThenTheOriginHost) {
    const value with_ip = array(
        {array({num(0), num(16383), slots_node("?", 7000, "m", {str("ip"), str("10.0.0.1")})})});
    slot_map map;
    ASSERT_EQ(slot_map::from_slots(with_ip, map), std::nullopt);
    EXPECT_EQ(map.owner(0)->master, (endpoint{"10.0.0.1", 7000}));

    const value bare = array({array({num(0), num(16383), array({nil(), num(7000)})})});
    ASSERT_EQ(slot_map::from_slots(bare, map, false, "seed-a"), std::nullopt);
    EXPECT_EQ(map.owner(0)->master, (endpoint{"seed-a", 7000}));
    EXPECT_EQ(map.owner(0)->master_id, "");
    EXPECT_EQ(slots_error(bare),
              "CLUSTER SLOTS: range 0: master: host is null and no origin host was given");
}

TEST(ClusterSlotMap, TlsTakesTheTlsPort) {
    const value node = map({str("id"), str("m"), str("port"), num(7000), str("tls-port"), num(7443),
                            str("ip"), str("10.0.0.1"), str("role"), str("master")});
    const value reply = array({shard_entry({num(0), num(16383)}, {node})});
    slot_map map;
    ASSERT_EQ(slot_map::from_shards(reply, map, true), std::nullopt);
    EXPECT_EQ(map.owner(0)->master.port, 7443);
    ASSERT_EQ(slot_map::from_shards(reply, map, false), std::nullopt);
    EXPECT_EQ(map.owner(0)->master.port, 7000);
    EXPECT_EQ(shards_error(three_shards(), true),
              "CLUSTER SHARDS: shard 0: node 0: missing \"tls-port\"");
}

TEST(ClusterSlotMap, MalformedShardsRepliesSayWhatAndWhere) {
    const auto with_node = [](value node) {
        return array({shard_entry({num(0), num(16383)}, {std::move(node)})});
    };
    const auto master_missing = [](std::string_view missing) {
        std::vector<value> pairs;
        for (auto [k, v] : {std::pair<std::string, value>{"id", str("m")},
                            {"port", num(7000)},
                            {"ip", str("10.0.0.1")},
                            {"role", str("master")}})
            if (k != missing) {
                pairs.push_back(str(k));
                pairs.push_back(std::move(v));
            }
        return map(std::move(pairs));
    };
    struct bad {
        value reply;
        std::string message;
    };
    const std::vector<bad> cases{
        {value{type::simple_error, "ERR This instance has cluster support disabled", {}},
         "CLUSTER SHARDS: the server replied: ERR This instance has cluster support disabled"},
        {str("OK"), "CLUSTER SHARDS: expected an array of shards, got \"OK\""},
        {array({num(1)}), "CLUSTER SHARDS: shard 0: expected a map, got \"1\""},
        {array({map({str("nodes"), array({})})}), "CLUSTER SHARDS: shard 0: missing \"slots\""},
        {array({map({str("slots"), array({})})}), "CLUSTER SHARDS: shard 0: missing \"nodes\""},
        {array({shard_entry({num(0)}, {})}),
         "CLUSTER SHARDS: shard 0: \"slots\": expected pairs of slot numbers, got an array of 1"},
        {array({shard_entry({num(0), num(16384)}, {})}),
         "CLUSTER SHARDS: shard 0: \"slots\"[1]: expected a slot number, got \"16384\""},
        {array({shard_entry({str("x"), num(1)}, {})}),
         "CLUSTER SHARDS: shard 0: \"slots\"[0]: expected a slot number, got \"x\""},
        {array({shard_entry({num(9), num(1)}, {})}),
         "CLUSTER SHARDS: shard 0: \"slots\"[0]: range 9-1 ends before it starts"},
        {array({shard_entry({num(0), num(1)}, {})}),
         "CLUSTER SHARDS: shard 0: serves slots but has no master"},
        {with_node(master_missing("port")), "CLUSTER SHARDS: shard 0: node 0: missing \"port\""},
        {with_node(master_missing("role")), "CLUSTER SHARDS: shard 0: node 0: missing \"role\""},
        {with_node(master_missing("ip")), "CLUSTER SHARDS: shard 0: node 0: missing \"ip\""},
        {with_node(
             map({str("port"), str("70x0"), str("ip"), str("h"), str("role"), str("master")})),
         "CLUSTER SHARDS: shard 0: node 0: \"port\": expected a port number, got \"70x0\""},
        {with_node(map({str("port"), num(70000), str("ip"), str("h"), str("role"), str("master")})),
         "CLUSTER SHARDS: shard 0: node 0: \"port\": expected a port number, got \"70000\""},
        {with_node(map({str("port"), num(1), str("ip"), str("h"), str("role"), str("boss")})),
         "CLUSTER SHARDS: shard 0: node 0: \"role\": expected \"master\" or \"replica\", got "
         "\"boss\""},
        {with_node(array({str("port")})),
         "CLUSTER SHARDS: shard 0: node 0: expected a map, got an array"},
        {array({shard_entry({num(0), num(1)}, {shards_node("a", "h", 1, "master"),
                                               shards_node("b", "h", 2, "master")})}),
         "CLUSTER SHARDS: shard 0: node 1: a second master in the shard"},
        {array({shard_entry({num(0), num(10)}, {shards_node("a", "h", 1, "master")}),
                shard_entry({num(10), num(20)}, {shards_node("b", "h", 2, "master")})}),
         "CLUSTER SHARDS: shard 1: slot 10 is served by shard 0 too"},
        {array({shard_entry({num(0), num(10)}, {shards_node("a", "h", 1, "master")}),
                shard_entry({num(11), num(20)}, {shards_node("b", "h", 1, "master")})}),
         "CLUSTER SHARDS: shard 1: master h:1 is the master of shard 0 too"},
    };
    for (const auto& c : cases)
        EXPECT_EQ(shards_error(c.reply), c.message);
}

TEST(ClusterSlotMap, MalformedSlotsRepliesSayWhatAndWhere) {
    struct bad {
        value reply;
        std::string message;
    };
    const std::vector<bad> cases{
        {map({}), "CLUSTER SLOTS: expected an array of slot ranges, got a map"},
        {array({array({num(0), num(1)})}),
         "CLUSTER SLOTS: range 0: expected [first, last, master, replicas...], got an array of 2"},
        {array({array({num(-1), num(1), slots_node("h", 1, "a")})}),
         "CLUSTER SLOTS: range 0: first slot: expected a slot number, got \"-1\""},
        {array({array({num(5), num(1), slots_node("h", 1, "a")})}),
         "CLUSTER SLOTS: range 0: range 5-1 ends before it starts"},
        {array({array({num(0), num(1), array({str("h")})})}),
         "CLUSTER SLOTS: range 0: master: expected [host, port, ...], got an array"},
        {array({array({num(0), num(1), array({str("h"), num(0)})})}),
         "CLUSTER SLOTS: range 0: master: \"port\": expected a port number, got \"0\""},
        {array({array({num(0), num(1), slots_node("h", 1, "a"), str("x")})}),
         "CLUSTER SLOTS: range 0: replica 0: expected [host, port, ...], got \"x\""},
        {array({array({num(0), num(9), slots_node("h", 1, "a")}),
                array({num(5), num(20), slots_node("h", 2, "b")})}),
         "CLUSTER SLOTS: range 1: slot 5 is in an earlier range too"},
    };
    for (const auto& c : cases)
        EXPECT_EQ(slots_error(c.reply), c.message);
}

TEST(ClusterSlotMap, FailedParseLeavesTheMapAsItWas) {
    slot_map map;
    ASSERT_EQ(slot_map::from_shards(three_shards(), map), std::nullopt);
    value broken = three_shards();
    broken.elements[2].elements[1].elements.clear(); // shard 2 loses its slots
    broken.elements[2].elements[1].elements.push_back(num(1));
    EXPECT_NE(slot_map::from_shards(broken, map), std::nullopt);
    expect_three_shards(map);
}

TEST(ClusterSlotMap, AssignMovesOneSlotToAKnownMaster) {
    slot_map map;
    ASSERT_EQ(slot_map::from_shards(three_shards(), map), std::nullopt);
    map.assign(100, {"10.0.0.2", 7001});
    EXPECT_EQ(map.owner(100)->master_id, "m2");
    EXPECT_EQ(map.owner(101)->master_id, "m1");
    EXPECT_EQ(map.covered_slots(), 16384u);
    EXPECT_EQ(map.shards().size(), 3u);
}

TEST(ClusterSlotMap, AssignToAnUnknownMasterMakesAShard) {
    slot_map map;
    map.assign(7, {"10.0.0.9", 7000});
    EXPECT_EQ(map.covered_slots(), 1u);
    EXPECT_FALSE(map.empty());
    ASSERT_NE(map.owner(7), nullptr);
    EXPECT_EQ(map.owner(7)->master, (endpoint{"10.0.0.9", 7000}));
    EXPECT_TRUE(map.owner(7)->replicas.empty());
    EXPECT_EQ(map.owner(8), nullptr);
    // When its only slot moves away, the shard serves nothing and is no longer a master to use.
    map.assign(7, {"10.0.0.1", 7000});
    EXPECT_EQ(map.masters(), (std::vector<endpoint>{{"10.0.0.1", 7000}}));
    map.assign(16384, {"10.0.0.1", 7000}); // not a slot: ignored
    EXPECT_EQ(map.covered_slots(), 1u);
}

TEST(ClusterSlotMap, ManyMovesToNewMastersStayBounded) {
    slot_map map;
    for (int i = 0; i < 5000; ++i)
        map.assign(static_cast<std::uint16_t>(i % 3),
                   {"10.0.0.1", static_cast<std::uint16_t>(1 + i)});
    EXPECT_EQ(map.covered_slots(), 3u);
    EXPECT_LE(map.shards().size(), 1025u);
    EXPECT_EQ(map.owner(0)->master.port, 4999);
    EXPECT_EQ(map.owner(1)->master.port, 5000);
    EXPECT_EQ(map.owner(2)->master.port, 4998);
    EXPECT_EQ(map.masters().size(), 3u);
}

// Random damage to valid replies: a message or a map, never a crash (run under ASan too).
TEST(ClusterSlotMap, DamagedRepliesNeverCrash) {
    std::mt19937 rng(20240601);
    const std::vector<value> sources{three_shards(), as_resp2(three_shards()), three_slot_ranges()};
    const std::vector<value> replacements{
        str(""), str("?"),  num(-1), num(16384), num(99999),
        nil(),   array({}), map({}), str("x"),   value{type::simple_error, "ERR", {}}};
    for (int round = 0; round < 3000; ++round) {
        value reply = sources[rng() % sources.size()];
        for (int edits = 1 + static_cast<int>(rng() % 3); edits > 0; --edits) {
            value* at = &reply;
            while (!at->elements.empty() && rng() % 3 != 0)
                at = &at->elements[rng() % at->elements.size()];
            switch (rng() % 3) {
            case 0:
                *at = replacements[rng() % replacements.size()];
                break;
            case 1:
                if (!at->elements.empty()) at->elements.pop_back();
                break;
            default:
                at->data_type = static_cast<type>(rng() % 15);
            }
        }
        slot_map map;
        const auto shards = slot_map::from_shards(reply, map);
        const auto slots = slot_map::from_slots(reply, map);
        if (shards && slots) {
            EXPECT_TRUE(map.empty());
        }
        for (std::uint32_t s = 0; s < 16384; s += 97) {
            if (const auto* sh = map.owner(static_cast<std::uint16_t>(s))) {
                EXPECT_FALSE(sh->master.host.empty());
            }
        }
    }
}
