// The cluster's routing decisions with no socket: the test plays the nodes, handing each group
// its replies, and checks where every command went and what the caller received.
#include "cluster/plan.hpp"

#include <akv/cluster_slot.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using akv::endpoint;
using akv::cluster::group;
using akv::cluster::plan;
using akv::cluster::slot_map;
using boost::system::error_code;

const endpoint node_a{"10.0.0.1", 7000};
const endpoint node_b{"10.0.0.2", 7001};
const endpoint node_c{"10.0.0.3", 7002};
const endpoint node_d{"10.0.0.4", 7003}; // not in the map until a MOVED names it

// Three masters, the slot ranges redis-cli --cluster create gives them.
slot_map three_masters() {
    slot_map map;
    for (unsigned s = 0; s < 16384; ++s)
        map.assign(static_cast<std::uint16_t>(s), s <= 5460    ? node_a
                                                  : s <= 10922 ? node_b
                                                               : node_c);
    return map;
}

// A key (prefix0, prefix1, ...) whose slot `map` gives to `master`.
std::string key_on(const slot_map& map, const endpoint& master, const std::string& prefix) {
    for (int i = 0;; ++i) {
        std::string k = prefix + std::to_string(i);
        if (map.owner(akv::cluster_slot(k))->master == master) return k;
    }
}

// What the caller's adapter received: reply index -> text ("-" in front of an error).
struct caller {
    std::vector<std::string> replies;
    int deliveries = 0;
    akv::detail::reply_adapter adapter() {
        return {this,
                [](void* p, std::size_t i, std::span<const akv::resp::node> nodes,
                   std::string_view msg) {
                    auto& c = *static_cast<caller*>(p);
                    if (c.replies.size() <= i) c.replies.resize(i + 1);
                    const bool error = akv::resp::is_error(nodes.front().data_type);
                    c.replies[i] = (error ? "-" : "") + std::string(nodes.front().value(msg));
                    ++c.deliveries;
                },
                static_cast<std::size_t>(-1)};
    }
};

// A node's reply to the group's local command `local`.
void reply(group& g, std::size_t local, std::string_view text, bool error = false) {
    const akv::resp::node n{error ? akv::resp::type::simple_error : akv::resp::type::simple_string,
                            0, 0, 0, text.size()};
    g.adapter()(local, std::span<const akv::resp::node>(&n, 1), text);
}

// The commands of a group's request, as "CMD arg arg" lines.
std::vector<std::string> sent(const group& g, const akv::request& caller_req) {
    std::vector<akv::cluster::command_view> cmds;
    EXPECT_TRUE(
        akv::cluster::split_commands(g.whole ? caller_req.payload() : g.sub.payload(), cmds));
    std::vector<std::string> out;
    for (const auto& c : cmds) {
        std::string line;
        for (auto a : c.args)
            line += (line.empty() ? "" : " ") + std::string(a);
        out.push_back(line);
    }
    return out;
}

const group* to(const std::vector<group*>& groups, const endpoint& ep) {
    for (const group* g : groups)
        if (!g->to_main && g->target == ep) return g;
    return nullptr;
}

struct fixture {
    slot_map map = three_masters();
    akv::cluster_stats stats;
    caller user;
    plan p;
    bool missing_owner = false;

    error_code start(const akv::request& req) { return p.start(req, user.adapter(), 0, stats); }
    const std::vector<group*>& round() {
        EXPECT_TRUE(p.pending(map.masters()));
        return p.make_groups(map, false, missing_owner);
    }
};

} // namespace

TEST(ClusterPlan, SingleSlotFindsTheSlotOfAKeyedPipeline) {
    const slot_map map = three_masters();
    std::array<std::string_view, 16> args;
    std::vector<std::string_view> keys;
    akv::request req;
    req.push("SET", "{user1}:name", "x");
    req.push("INCR", "{user1}:visits");
    EXPECT_EQ(akv::cluster::single_slot(req.payload(), args, keys), akv::cluster_slot("user1"));
    req.push("GET", "{user2}:name");
    EXPECT_EQ(akv::cluster::single_slot(req.payload(), args, keys), -1);
    akv::request keyless;
    keyless.push("PING");
    EXPECT_EQ(akv::cluster::single_slot(keyless.payload(), args, keys), -1);
}

TEST(ClusterPlan, EachCommandGoesToTheMasterOfItsSlotInTheCallersOrder) {
    fixture f;
    const std::string a1 = key_on(f.map, node_a, "x"), a2 = key_on(f.map, node_a, "y");
    const std::string b1 = key_on(f.map, node_b, "x");
    akv::request req;
    req.push("SET", a1, "1");
    req.push("SET", b1, "2");
    req.push("GET", a2);
    ASSERT_FALSE(f.start(req));
    const auto& groups = f.round();
    ASSERT_EQ(groups.size(), 2u);
    const group* ga = to(groups, node_a);
    const group* gb = to(groups, node_b);
    ASSERT_TRUE(ga && gb);
    EXPECT_EQ(sent(*ga, req), (std::vector<std::string>{"SET " + a1 + " 1", "GET " + a2}));
    EXPECT_EQ(sent(*gb, req), (std::vector<std::string>{"SET " + b1 + " 2"}));
    // Replies come back per node; the caller gets them at its own indices.
    reply(*groups[1], 0, "OK-b");
    reply(*groups[0], 0, "OK-a");
    reply(*groups[0], 1, "value-a2");
    EXPECT_EQ(f.user.replies, (std::vector<std::string>{"OK-a", "OK-b", "value-a2"}));
    EXPECT_FALSE(f.p.after_round(f.map, 16, false, f.stats).ec);
    EXPECT_FALSE(f.p.pending(f.map.masters()));
}

TEST(ClusterPlan, ARequestOnOneNodeGoesAsItIs) {
    fixture f;
    akv::request req;
    req.push("SET", key_on(f.map, node_c, "k"), "1");
    req.push("PING"); // keyless: rides with the only keyed group
    ASSERT_FALSE(f.start(req));
    const auto& groups = f.round();
    ASSERT_EQ(groups.size(), 1u);
    EXPECT_EQ(groups[0]->target, node_c);
    EXPECT_TRUE(groups[0]->whole);
    EXPECT_EQ(groups[0]->cmds, (std::vector<std::size_t>{0, 1}));
}

TEST(ClusterPlan, KeylessCommandsKeepTheirPlaceAmongKeyedOnesOfOneNode) {
    for (bool keyless_first : {false, true}) {
        fixture f;
        const std::string k = key_on(f.map, node_b, "k");
        akv::request req;
        if (keyless_first) {
            req.push("PING", "p1");
            req.push("SET", k, "1");
            req.push("PING", "p2");
        } else {
            req.push("SET", k, "1");
            req.push("PING", "p1");
            req.push("GET", k);
        }
        ASSERT_FALSE(f.start(req));
        const auto& groups = f.round();
        ASSERT_EQ(groups.size(), 1u);
        EXPECT_EQ(groups[0]->target, node_b);
        EXPECT_EQ(groups[0]->cmds, (std::vector<std::size_t>{0, 1, 2}));
        reply(*groups[0], 0, "r0");
        reply(*groups[0], 1, "r1");
        reply(*groups[0], 2, "r2");
        EXPECT_EQ(f.user.replies, (std::vector<std::string>{"r0", "r1", "r2"}))
            << (keyless_first ? "keyless first" : "keyed first");
    }
}

// Client-side caching's OPTIN: CLIENT CACHING yes concerns the next command on the same
// connection, so it goes to that command's node, just before it.
TEST(ClusterPlan, ClientCachingGoesWithTheCommandAfterIt) {
    fixture f;
    const std::string a = key_on(f.map, node_a, "x"), b = key_on(f.map, node_b, "x");
    akv::request req;
    req.push("CLIENT", "CACHING", "yes");
    req.push("GET", a);
    req.push("client", "caching", "yes");
    req.push("GET", b);
    req.push("PING"); // any other keyless command still goes to the main connection
    ASSERT_FALSE(f.start(req));
    const auto& groups = f.round();
    ASSERT_EQ(groups.size(), 3u);
    const group* ga = to(groups, node_a);
    const group* gb = to(groups, node_b);
    ASSERT_TRUE(ga && gb);
    EXPECT_EQ(sent(*ga, req), (std::vector<std::string>{"CLIENT CACHING yes", "GET " + a}));
    EXPECT_EQ(sent(*gb, req), (std::vector<std::string>{"client caching yes", "GET " + b}));
}

TEST(ClusterPlan, KeylessCommandsAloneGoToTheMainConnection) {
    fixture f;
    akv::request req;
    req.push("PING");
    ASSERT_FALSE(f.start(req));
    const auto& groups = f.round();
    ASSERT_EQ(groups.size(), 1u);
    EXPECT_TRUE(groups[0]->to_main);
}

TEST(ClusterPlan, CrossSlotCommandsAreRefusedUnsentAndTheRestGoes) {
    fixture f;
    const std::string a = key_on(f.map, node_a, "k"), b = key_on(f.map, node_b, "k");
    akv::request req;
    req.push("MGET", a, b);
    req.push("GET", a);
    ASSERT_FALSE(f.start(req));
    ASSERT_EQ(f.user.replies.size(), 1u);
    EXPECT_TRUE(f.user.replies[0].starts_with("-CROSSSLOT keys of MGET hash to different cluster "
                                              "slots: \"" +
                                              a + "\""))
        << f.user.replies[0];
    EXPECT_EQ(f.stats.refusals, 1u);
    const auto& groups = f.round();
    ASSERT_EQ(groups.size(), 1u);
    EXPECT_EQ(sent(*groups[0], req), (std::vector<std::string>{"GET " + a}));
}

TEST(ClusterPlan, ATransactionRunsOnOneNode) {
    fixture f;
    akv::request req;
    req.push("MULTI");
    req.push("SET", "{t}a", "1");
    req.push("INCR", "{t}b");
    req.push("EXEC");
    ASSERT_FALSE(f.start(req));
    EXPECT_TRUE(f.p.transaction());
    const auto& groups = f.round();
    ASSERT_EQ(groups.size(), 1u); // MULTI and EXEC follow the keys' slot
    EXPECT_EQ(groups[0]->target, f.map.owner(akv::cluster_slot("t"))->master);
    EXPECT_TRUE(groups[0]->whole);
}

TEST(ClusterPlan, ATransactionAcrossSlotsIsRefusedWhole) {
    fixture f;
    akv::request req;
    req.push("MULTI");
    req.push("SET", key_on(f.map, node_a, "k"), "1");
    req.push("SET", key_on(f.map, node_b, "k"), "2");
    req.push("EXEC");
    ASSERT_FALSE(f.start(req));
    ASSERT_EQ(f.user.replies.size(), 4u);
    for (const auto& r : f.user.replies)
        EXPECT_TRUE(r.starts_with("-CROSSSLOT the keys of this MULTI/EXEC transaction")) << r;
    EXPECT_FALSE(f.p.pending(f.map.masters()));
}

TEST(ClusterPlan, KeyspaceWideCommandsGoToEveryMasterAndTheFirstErrorWins) {
    fixture f;
    akv::request req;
    req.push("FLUSHALL");
    ASSERT_FALSE(f.start(req));
    const auto& groups = f.round();
    ASSERT_EQ(groups.size(), 3u);
    EXPECT_TRUE(to(groups, node_a) && to(groups, node_b) && to(groups, node_c));
    reply(*groups[0], 0, "OK");
    reply(*groups[1], 0, "ERR busy", true);
    reply(*groups[2], 0, "OK");
    EXPECT_EQ(f.user.replies, (std::vector<std::string>{"-ERR busy"}));
    EXPECT_FALSE(f.p.after_round(f.map, 16, false, f.stats).ec);
    EXPECT_FALSE(f.p.pending(f.map.masters())) << "every master answered";
}

TEST(ClusterPlan, AFannedOutCommandGoesAgainOnlyToTheMastersThatDidNotAnswer) {
    fixture f;
    akv::request req;
    req.push("SCRIPT", "FLUSH");
    ASSERT_FALSE(f.start(req));
    auto& groups = f.round();
    ASSERT_EQ(groups.size(), 3u);
    for (group* g : groups) {
        if (g->target == node_b)
            g->ec = akv::error::not_connected; // down: its command never went
        else
            reply(*g, 0, "OK");
    }
    const auto& next = f.p.after_round(f.map, 16, false, f.stats);
    EXPECT_FALSE(next.ec);
    EXPECT_TRUE(next.wait);
    const auto& again = f.round();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0]->target, node_b);
}

TEST(ClusterPlan, MovedFixesTheMapAndSendsTheCommandToTheNewOwner) {
    fixture f;
    const std::string k = key_on(f.map, node_a, "k");
    const std::uint16_t slot = akv::cluster_slot(k);
    akv::request req;
    req.push("GET", k);
    ASSERT_FALSE(f.start(req));
    auto& groups = f.round();
    ASSERT_EQ(groups.size(), 1u);
    reply(*groups[0], 0, "MOVED " + std::to_string(slot) + " 10.0.0.4:7003", true);
    EXPECT_TRUE(f.user.replies.empty()) << "a redirect is not the caller's reply";
    const auto& next = f.p.after_round(f.map, 16, false, f.stats);
    EXPECT_FALSE(next.ec);
    EXPECT_TRUE(next.refresh);
    EXPECT_EQ(next.moved, (std::vector<std::uint16_t>{slot}));
    EXPECT_EQ(f.map.owner(slot)->master, node_d);
    EXPECT_EQ(f.stats.moved, 1u);
    auto& again = f.round();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0]->target, node_d);
    EXPECT_FALSE(again[0]->asking);
    reply(*again[0], 0, "v");
    EXPECT_EQ(f.user.replies, (std::vector<std::string>{"v"}));
}

TEST(ClusterPlan, AskSendsAskingFirstAndLeavesTheMapAlone) {
    fixture f;
    const std::string k = key_on(f.map, node_a, "k");
    const std::uint16_t slot = akv::cluster_slot(k);
    akv::request req;
    req.push("GET", k);
    ASSERT_FALSE(f.start(req));
    auto& groups = f.round();
    reply(*groups[0], 0, "ASK " + std::to_string(slot) + " 10.0.0.2:7001", true);
    const auto& next = f.p.after_round(f.map, 16, false, f.stats);
    EXPECT_FALSE(next.ec);
    EXPECT_FALSE(next.refresh);
    EXPECT_EQ(f.map.owner(slot)->master, node_a);
    EXPECT_EQ(f.stats.asked, 1u);
    auto& again = f.round();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0]->target, node_b);
    EXPECT_TRUE(again[0]->asking);
    EXPECT_EQ(sent(*again[0], req), (std::vector<std::string>{"ASKING", "GET " + k}));
    reply(*again[0], 0, "OK"); // ASKING's own reply is not the caller's
    reply(*again[0], 1, "v");
    EXPECT_EQ(f.user.replies, (std::vector<std::string>{"v"}));
    // The next request for the slot still goes to the owner the map names.
    EXPECT_FALSE(f.p.after_round(f.map, 16, false, f.stats).ec);
    EXPECT_EQ(f.map.owner(slot)->master, node_a);
}

TEST(ClusterPlan, RedirectsPastTheLimitFailTheRequest) {
    fixture f;
    const std::string k = key_on(f.map, node_a, "k");
    const std::string moved = "MOVED " + std::to_string(akv::cluster_slot(k)) + " ";
    akv::request req;
    req.push("GET", k);
    ASSERT_FALSE(f.start(req));
    const endpoint nodes[] = {node_b, node_c};
    for (int i = 0;; ++i) {
        auto& groups = f.round();
        const endpoint& next = nodes[i % 2];
        reply(*groups[0], 0, moved + next.host + ":" + std::to_string(next.port), true);
        const error_code ec = f.p.after_round(f.map, 3, false, f.stats).ec;
        if (i < 3) {
            EXPECT_FALSE(ec) << "redirect " << i + 1;
        } else {
            EXPECT_EQ(ec, akv::error::too_many_redirects);
            break;
        }
    }
    EXPECT_TRUE(f.user.replies.empty());
}

TEST(ClusterPlan, TryAgainWaitsAndSendsAgainToTheSameNode) {
    fixture f;
    const std::string k = key_on(f.map, node_c, "k");
    akv::request req;
    req.push("GET", k);
    ASSERT_FALSE(f.start(req));
    reply(*f.round()[0], 0, "TRYAGAIN Multiple keys request during rehashing of slot", true);
    const auto& next = f.p.after_round(f.map, 16, false, f.stats);
    EXPECT_FALSE(next.ec);
    EXPECT_TRUE(next.wait);
    EXPECT_EQ(f.stats.waits, 1u);
    auto& again = f.round();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0]->target, node_c);
}

TEST(ClusterPlan, ALostNodeFailsAWriteButSendsAnIdempotentRequestAgain) {
    for (bool idempotent : {false, true}) {
        fixture f;
        akv::request req;
        req.get_options().idempotent = idempotent;
        req.push("SET", key_on(f.map, node_a, "k"), "1");
        ASSERT_FALSE(f.start(req));
        f.round()[0]->ec = akv::error::connection_lost;
        const auto& next = f.p.after_round(f.map, 16, false, f.stats);
        if (!idempotent) {
            EXPECT_EQ(next.ec, akv::error::connection_lost);
        } else {
            EXPECT_FALSE(next.ec);
            EXPECT_TRUE(next.wait && next.refresh);
            EXPECT_TRUE(f.p.pending(f.map.masters()));
        }
    }
}

TEST(ClusterPlan, NothingGoesAgainOnceTheClientStops) {
    fixture f;
    akv::request req;
    req.get_options().idempotent = true;
    req.push("GET", key_on(f.map, node_a, "k"));
    ASSERT_FALSE(f.start(req));
    f.round()[0]->ec = akv::error::connection_closed;
    EXPECT_EQ(f.p.after_round(f.map, 16, true, f.stats).ec, akv::error::connection_closed);
}

TEST(ClusterPlan, ReadsGoToAReplicaWhenAskedButNeverInsideATransaction) {
    slot_map map;
    akv::resp::value shards;
    // One shard with a replica, through assign() and a parsed map would be long; build it by
    // parsing CLUSTER SLOTS: [[0, 16383, [host, port, id], [host, port, id]]].
    using akv::resp::type;
    using akv::resp::value;
    auto node = [](const endpoint& ep) {
        value n{type::array, {}, {}};
        n.elements.push_back({type::blob_string, ep.host, {}});
        n.elements.push_back({type::number, std::to_string(ep.port), {}});
        return n;
    };
    value range{type::array, {}, {}};
    range.elements.push_back({type::number, "0", {}});
    range.elements.push_back({type::number, "16383", {}});
    range.elements.push_back(node(node_a));
    range.elements.push_back(node(node_b));
    shards.data_type = type::array;
    shards.elements.push_back(range);
    ASSERT_FALSE(slot_map::from_slots(shards, map));

    akv::cluster_stats stats;
    caller user;
    plan p;
    bool missing = false;
    akv::request read;
    read.push("GET", "k");
    ASSERT_FALSE(p.start(read, user.adapter(), 0, stats));
    ASSERT_TRUE(p.pending(map.masters()));
    EXPECT_EQ(p.make_groups(map, true, missing)[0]->target, node_b);

    akv::request txn;
    txn.push("MULTI");
    txn.push("GET", "k");
    txn.push("EXEC");
    ASSERT_FALSE(p.start(txn, user.adapter(), 0, stats));
    ASSERT_TRUE(p.pending(map.masters()));
    const auto& groups = p.make_groups(map, true, missing);
    ASSERT_EQ(groups.size(), 1u) << "a transaction is split";
    EXPECT_EQ(groups[0]->target, node_a);

    akv::request write;
    write.push("SET", "k", "v");
    ASSERT_FALSE(p.start(write, user.adapter(), 0, stats));
    ASSERT_TRUE(p.pending(map.masters()));
    EXPECT_EQ(p.make_groups(map, true, missing)[0]->target, node_a);
}

TEST(ClusterPlan, ASlotWithoutOwnerWaitsForTheMap) {
    fixture f;
    f.map = slot_map{};
    for (unsigned s = 0; s < 100; ++s)
        f.map.assign(static_cast<std::uint16_t>(s), node_a);
    std::string k = "k0";
    for (int i = 0; akv::cluster_slot(k) < 100; ++i)
        k = "k" + std::to_string(i);
    akv::request req;
    req.push("GET", k);
    ASSERT_FALSE(f.start(req));
    EXPECT_TRUE(f.round().empty());
    EXPECT_TRUE(f.missing_owner);
}

TEST(ClusterPlan, RepliesDeliveredByAFastAttemptAreNotSentAgain) {
    fixture f;
    const std::string a = key_on(f.map, node_a, "k");
    akv::request req;
    req.push("SET", a, "1");
    req.push("GET", a);
    ASSERT_FALSE(f.p.start(req, f.user.adapter(), 0b01, f.stats)); // the SET was answered
    const auto& groups = f.round();
    ASSERT_EQ(groups.size(), 1u);
    EXPECT_EQ(sent(*groups[0], req), (std::vector<std::string>{"GET " + a}));
}

TEST(ClusterPlan, ATruncatedPayloadCannotBeSplit) {
    akv::request req;
    req.push("GET", "k");
    req.push("SET", "k", "v");
    const std::string payload(req.payload());
    std::vector<akv::cluster::command_view> cmds;
    ASSERT_TRUE(akv::cluster::split_commands(payload, cmds));
    EXPECT_EQ(cmds.size(), 2u);
    EXPECT_FALSE(akv::cluster::split_commands(payload.substr(0, payload.size() - 3), cmds));
    EXPECT_FALSE(akv::cluster::split_commands("*1\r\n$3\r\nGE", cmds));
}

TEST(ClusterPlan, RedirectsAreParsed) {
    using akv::cluster::parse_redirect;
    using akv::cluster::redirect_kind;
    auto r = parse_redirect("MOVED 3999 127.0.0.1:6381", node_a);
    EXPECT_EQ(r.kind, redirect_kind::moved);
    EXPECT_EQ(r.slot, 3999);
    EXPECT_EQ(r.to, (endpoint{"127.0.0.1", 6381}));
    r = parse_redirect("ASK 12 [::1]:7005", node_a);
    EXPECT_EQ(r.kind, redirect_kind::ask);
    EXPECT_EQ(r.to, (endpoint{"::1", 7005}));
    r = parse_redirect("MOVED 12 :7005", node_b); // the node does not know its own address
    EXPECT_EQ(r.to, (endpoint{node_b.host, 7005}));
    for (const char* later :
         {"TRYAGAIN x", "CLUSTERDOWN The cluster is down", "LOADING x", "MASTERDOWN x"})
        EXPECT_EQ(parse_redirect(later, node_a).kind, redirect_kind::later) << later;
    for (const char* other : {"ERR wrong", "MOVED", "MOVED 16384 h:1", "MOVED 12 h", "MOVED 12 h:0",
                              "MOVED 1x2 h:7000", "ASK 12 h:70000"})
        EXPECT_EQ(parse_redirect(other, node_a).kind, redirect_kind::none) << other;
}
