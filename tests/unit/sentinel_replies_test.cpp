// What a sentinel's replies mean, without a sentinel: the master's address, the replicas fit for
// reads, and whether a +switch-master message is about our master.
#include "sentinel/replies.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

using akv::endpoint;
using akv::resp::type;
using akv::resp::value;
using akv::sentinel::has_flag;
using akv::sentinel::master_address;
using akv::sentinel::switched_master;
using akv::sentinel::usable_replicas;

namespace {

value str(std::string s) {
    return {type::blob_string, std::move(s), {}};
}
value nil() {
    return {type::null, {}, {}};
}
value array(std::vector<value> elements) {
    return {type::array, {}, std::move(elements)};
}

// One entry of SENTINEL REPLICAS as Redis 7 sends it over RESP3 (a map of strings);
// `role` empty leaves "role-reported" out.
value replica(const std::string& ip, const std::string& port, const std::string& flags,
              const std::string& role = "slave") {
    value m{type::map, {}, {}};
    const auto add = [&](std::string name, std::string v) {
        m.elements.push_back(str(std::move(name)));
        m.elements.push_back(str(std::move(v)));
    };
    add("name", ip + ":" + port);
    add("ip", ip);
    add("port", port);
    add("runid", "8f3c0d0e");
    add("flags", flags);
    add("link-pending-commands", "0");
    if (!role.empty()) add("role-reported", role);
    add("master-link-status", "ok");
    add("master-host", "10.0.0.1");
    add("master-port", "6379");
    return m;
}

// RESP2 sends each replica's map as a flat array of field, value, ...
value as_resp2(value reply) {
    for (value& r : reply.elements)
        if (r.data_type == type::map) r.data_type = type::array;
    return reply;
}

value switch_message(std::string channel, std::string text) {
    return {type::push, {}, {str("message"), str(std::move(channel)), str(std::move(text))}};
}

} // namespace

TEST(SentinelReplies, HasFlagMatchesWholeCommaSeparatedFlags) {
    EXPECT_TRUE(has_flag("s_down,slave", "s_down"));
    EXPECT_TRUE(has_flag("s_down,slave", "slave"));
    EXPECT_TRUE(has_flag("slave,o_down,disconnected", "o_down"));
    EXPECT_TRUE(has_flag("disconnected", "disconnected"));
    EXPECT_FALSE(has_flag("slave,disconnected", "connected")); // a part of a flag is not it
    EXPECT_FALSE(has_flag("s_down,slave", "down"));
    EXPECT_FALSE(has_flag("s_down,slave", "s_down,slave"));
    EXPECT_FALSE(has_flag("slave", "slaves"));
    EXPECT_FALSE(has_flag("", "s_down"));
    EXPECT_FALSE(has_flag("slave,", "s_down"));
}

TEST(SentinelReplies, MasterAddressIsHostAndPort) {
    EXPECT_EQ(master_address(array({str("10.0.0.1"), str("6380")})), (endpoint{"10.0.0.1", 6380}));
    EXPECT_EQ(master_address(array({str("redis-a.example"), str("65535")})),
              (endpoint{"redis-a.example", 65535}));
}

TEST(SentinelReplies, UnknownMasterNameIsNoAddress) {
    EXPECT_EQ(master_address(nil()), std::nullopt);
}

TEST(SentinelReplies, MalformedMasterAddressThrows) {
    const std::vector<value> malformed{
        str("OK"),
        value{type::simple_error, "ERR unknown command", {}},
        array({}),
        array({str("10.0.0.1")}),
        array({str("10.0.0.1"), str("6379"), str("extra")}),
        array({str("10.0.0.1"), str("63x9")}),
        array({str("10.0.0.1"), str("0")}),
        array({str("10.0.0.1"), str("65536")}),
        array({str("10.0.0.1"), str("-1")}),
        array({str("10.0.0.1"), str("")}),
        array({str("10.0.0.1"), nil()}),
    };
    for (std::size_t i = 0; i < malformed.size(); ++i)
        EXPECT_THROW(master_address(malformed[i]), std::invalid_argument) << "case " << i;
}

TEST(SentinelReplies, HealthyReplicasAreUsableInTheSentinelsOrder) {
    const value reply =
        array({replica("10.0.0.3", "6381", "slave"), replica("10.0.0.2", "6380", "slave"),
               replica("10.0.0.4", "6382", "slave")});
    const std::vector<endpoint> expected{
        {"10.0.0.3", 6381}, {"10.0.0.2", 6380}, {"10.0.0.4", 6382}};
    EXPECT_EQ(usable_replicas(reply), expected);
    EXPECT_EQ(usable_replicas(as_resp2(reply)), expected);
    EXPECT_TRUE(usable_replicas(array({})).empty());
}

TEST(SentinelReplies, DownOrDisconnectedReplicasAreLeftOut) {
    const value reply =
        array({replica("10.0.0.2", "6380", "s_down,slave"), replica("10.0.0.3", "6381", "slave"),
               replica("10.0.0.4", "6382", "slave,o_down"),
               replica("10.0.0.5", "6383", "slave,disconnected"),
               replica("10.0.0.6", "6384", "slave,s_down,disconnected"),
               replica("10.0.0.7", "6385", "slave")});
    const std::vector<endpoint> expected{{"10.0.0.3", 6381}, {"10.0.0.7", 6385}};
    EXPECT_EQ(usable_replicas(reply), expected);
    EXPECT_EQ(usable_replicas(as_resp2(reply)), expected);
}

TEST(SentinelReplies, ReplicaReportingTheMasterRoleIsLeftOut) {
    // A demoted master is listed as a replica before it has been told to follow.
    const value reply = array({replica("10.0.0.2", "6380", "slave", "master"),
                               replica("10.0.0.3", "6381", "slave", "slave"),
                               replica("10.0.0.4", "6382", "slave", "")});
    const std::vector<endpoint> expected{{"10.0.0.3", 6381}, {"10.0.0.4", 6382}};
    EXPECT_EQ(usable_replicas(reply), expected);
    EXPECT_EQ(usable_replicas(as_resp2(reply)), expected);
}

TEST(SentinelReplies, ReplicaWithoutAnAddressIsLeftOut) {
    value no_ip = replica("10.0.0.5", "6383", "slave");
    no_ip.elements.erase(no_ip.elements.begin() + 2, no_ip.elements.begin() + 4); // "ip", value
    const value reply =
        array({replica("", "6380", "slave"), replica("10.0.0.2", "0", "slave"),
               replica("10.0.0.3", "6x81", "slave"), replica("10.0.0.4", "65536", "slave"),
               std::move(no_ip), replica("10.0.0.6", "6384", "slave")});
    EXPECT_EQ(usable_replicas(reply), (std::vector<endpoint>{{"10.0.0.6", 6384}}));
}

TEST(SentinelReplies, SwitchOfOurMasterGivesTheNewOne) {
    EXPECT_EQ(
        switched_master(switch_message("+switch-master", "mymaster 10.0.0.1 6379 10.0.0.2 6380"),
                        "mymaster"),
        (endpoint{"10.0.0.2", 6380}));
    // RESP2 subscribers get an array; repeated spaces do not make empty words.
    value resp2 = switch_message("+switch-master", "mymaster  10.0.0.1 6379 10.0.0.2  6380");
    resp2.data_type = type::array;
    EXPECT_EQ(switched_master(resp2, "mymaster"), (endpoint{"10.0.0.2", 6380}));
}

TEST(SentinelReplies, SwitchOfAnotherMasterIsNotOurs) {
    const value other = switch_message("+switch-master", "other 10.0.0.1 6379 10.0.0.2 6380");
    EXPECT_EQ(switched_master(other, "mymaster"), std::nullopt);
    const value longer = switch_message("+switch-master", "mymaster2 10.0.0.1 6379 10.0.0.2 6380");
    EXPECT_EQ(switched_master(longer, "mymaster"), std::nullopt);
    EXPECT_EQ(switched_master(longer, "mymaster2"), (endpoint{"10.0.0.2", 6380}));
}

TEST(SentinelReplies, MalformedSwitchMessagesAreIgnored) {
    const std::string text = "mymaster 10.0.0.1 6379 10.0.0.2 6380";
    const std::vector<value> malformed{
        str(text),
        switch_message("+sdown", text),
        value{type::push, {}, {str("subscribe"), str("+switch-master"), str(text)}},
        value{type::push, {}, {str("message"), str("+switch-master")}},
        value{type::push, {}, {str("pmessage"), str("*"), str("+switch-master"), str(text)}},
        switch_message("+switch-master", "mymaster 10.0.0.1 6379 10.0.0.2"),
        switch_message("+switch-master", text + " extra"),
        switch_message("+switch-master", "mymaster 10.0.0.1 6379 10.0.0.2 63x0"),
        switch_message("+switch-master", "mymaster 10.0.0.1 6379 10.0.0.2 0"),
        switch_message("+switch-master", "mymaster 10.0.0.1 6379 10.0.0.2 65536"),
        switch_message("+switch-master", ""),
    };
    for (std::size_t i = 0; i < malformed.size(); ++i)
        EXPECT_EQ(switched_master(malformed[i], "mymaster"), std::nullopt) << "case " << i;
}
