// command_keys against a real server: our table against COMMAND, our keys against COMMAND
// GETKEYS.
#include "support/harness.hpp"

#include <akv/cluster/command_keys.hpp>
#include <akv/config.hpp>
#include <akv/connection.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace akv::test;
namespace asio = boost::asio;
using akv::cluster::command_keys;
using akv::cluster::key_rule;
using akv::cluster::routing;
using akv::resp::value;

namespace {

// One command per line, split on spaces; "" is an empty argument.
constexpr const char* samples[] = {
    "APPEND k v",
    "BITCOUNT k 0 -1 BYTE",
    "BITFIELD k SET u8 0 255 GET u8 0",
    "BITFIELD_RO k GET u8 0",
    "BITOP AND dest a b c",
    "BITOP NOT dest a",
    "BITPOS k 1 0 -1",
    "BLMOVE src dst LEFT RIGHT 0",
    "BLMPOP 0 2 a b LEFT COUNT 2",
    "BLPOP a b c 0",
    "BRPOP a 1.5",
    "BRPOPLPUSH src dst 0",
    "BZMPOP 0 1 z MIN",
    "BZPOPMAX a b 0",
    "BZPOPMIN a 0",
    "COPY src dst DB 0 REPLACE",
    "DBSIZE x",
    "DECR k",
    "DECRBY k 5",
    "DEL a b c",
    "DUMP k",
    "ECHO hello",
    "EVAL s 2 a b x y",
    "EVAL s 0",
    "EVALSHA 0123456789abcdef0123456789abcdef01234567 1 k arg",
    "EVALSHA_RO 0123456789abcdef0123456789abcdef01234567 2 a b",
    "EVAL_RO s 3 a b c",
    "EXISTS a b",
    "EXPIRE k 10 NX",
    "EXPIREAT k 1700000000",
    "EXPIRETIME k",
    "FCALL fn 2 a b arg",
    "FCALL_RO fn 0 arg",
    "FLUSHALL ASYNC",
    "FLUSHDB SYNC",
    "GEOADD g 13.36 38.11 palermo",
    "GEODIST g a b km",
    "GEOHASH g a b",
    "GEOPOS g a",
    "GEORADIUS g 15 37 200 km WITHDIST STORE dst",
    "GEORADIUS g 15 37 200 km STORE a STOREDIST b",
    "GEORADIUS g 15 37 200 km ASC COUNT 5",
    "GEORADIUSBYMEMBER g m 100 km STOREDIST d",
    "GEORADIUSBYMEMBER_RO g m 100 km",
    "GEORADIUS_RO g 15 37 200 km",
    "GEOSEARCH g FROMMEMBER m BYRADIUS 10 km",
    "GEOSEARCHSTORE dst src FROMLONLAT 15 37 BYBOX 400 400 km STOREDIST",
    "GET k",
    "GETBIT k 7",
    "GETDEL k",
    "GETEX k PERSIST",
    "GETRANGE k 0 -1",
    "GETSET k v",
    "HDEL h a b",
    "HEXISTS h f",
    "HGET h f",
    "HGETALL h",
    "HINCRBY h f 1",
    "HINCRBYFLOAT h f 1.5",
    "HKEYS h",
    "HLEN h",
    "HMGET h a b",
    "HMSET h a 1 b 2",
    "HRANDFIELD h 2 WITHVALUES",
    "HSCAN h 0 MATCH * COUNT 10",
    "HSET h a 1 b 2",
    "HSETNX h f v",
    "HSTRLEN h f",
    "HVALS h",
    "INCR k",
    "INCRBY k 2",
    "INCRBYFLOAT k 0.5",
    "KEYS user:*",
    "LCS a b LEN",
    "LINDEX l 0",
    "LINSERT l BEFORE p v",
    "LLEN l",
    "LMOVE src dst LEFT LEFT",
    "LMPOP 2 a b RIGHT COUNT 3",
    "LPOP l 2",
    "LPOS l v RANK 1",
    "LPUSH l a b",
    "LPUSHX l a",
    "LRANGE l 0 -1",
    "LREM l 0 v",
    "LSET l 0 v",
    "LTRIM l 0 10",
    "MEMORY USAGE k SAMPLES 5",
    "MEMORY STATS x",
    "MGET a b c",
    "MIGRATE 127.0.0.1 6380 k 0 1000 COPY REPLACE",
    "MIGRATE 127.0.0.1 6380 \"\" 0 1000 KEYS a b c",
    "MIGRATE 127.0.0.1 6380 \"\" 0 1000 AUTH keys KEYS a",
    "MIGRATE 127.0.0.1 6380 \"\" 0 1000 AUTH2 u keys KEYS a b",
    "MOVE k 1",
    "MSET a 1 b 2 c 3",
    "MSETNX a 1 b 2",
    "OBJECT ENCODING k",
    "OBJECT FREQ k",
    "OBJECT IDLETIME k",
    "OBJECT REFCOUNT k",
    "PERSIST k",
    "PEXPIRE k 100",
    "PEXPIREAT k 1700000000000",
    "PEXPIRETIME k",
    "PFADD hll a b",
    "PFCOUNT a b",
    "PFDEBUG GETREG k",
    "PFMERGE dst a b",
    "PING hello",
    "PSETEX k 100 v",
    "PSUBSCRIBE news.*",
    "PTTL k",
    "PUBLISH ch msg",
    "PUBSUB CHANNELS x",
    "RANDOMKEY x",
    "RENAME a b",
    "RENAMENX a b",
    "RESTORE k 0 payload REPLACE",
    "RESTORE-ASKING k 0 payload",
    "RPOP l 1",
    "RPOPLPUSH a b",
    "RPUSH l a b",
    "RPUSHX l a",
    "SADD s a b",
    "SCAN 0 MATCH * COUNT 100",
    "SCARD s",
    "SCRIPT LOAD x",
    "SCRIPT EXISTS x",
    "SDIFF a b",
    "SDIFFSTORE dst a b",
    "SET k v EX 10 NX GET",
    "SETBIT k 7 1",
    "SETEX k 10 v",
    "SETNX k v",
    "SETRANGE k 0 v",
    "SINTER a b",
    "SINTERCARD 2 a b LIMIT 10",
    "SINTERSTORE dst a b",
    "SISMEMBER s m",
    "SMEMBERS s",
    "SMISMEMBER s a b",
    "SMOVE src dst m",
    "SORT k BY w_* LIMIT 0 10 GET o_* GET # DESC ALPHA STORE dst",
    "SORT k GET store",
    "SORT k STORE a STORE b",
    "SORT k",
    "SORT_RO k BY w_* GET o_*",
    "SPOP s 2",
    "SPUBLISH ch msg",
    "SRANDMEMBER s 2",
    "SREM s a",
    "SSCAN s 0",
    "SSUBSCRIBE a b",
    "STRLEN k",
    "SUBSCRIBE a b",
    "SUBSTR k 0 1",
    "SUNION a b",
    "SUNIONSTORE dst a b",
    "SUNSUBSCRIBE a",
    "TOUCH a b",
    "TTL k",
    "TYPE k",
    "UNLINK a b",
    "WATCH a b",
    "XACK s g 0-1 0-2",
    "XADD s MAXLEN ~ 1000 * f v",
    "XAUTOCLAIM s g c 1000 0-0 COUNT 10",
    "XCLAIM s g c 1000 0-1 0-2 JUSTID",
    "XDEL s 0-1",
    "XGROUP CREATE s g $ MKSTREAM",
    "XGROUP CREATECONSUMER s g c",
    "XGROUP DELCONSUMER s g c",
    "XGROUP DESTROY s g",
    "XGROUP SETID s g 0",
    "XINFO CONSUMERS s g",
    "XINFO GROUPS s",
    "XINFO STREAM s FULL COUNT 10",
    "XLEN s",
    "XPENDING s g - + 10 c",
    "XRANGE s - + COUNT 10",
    "XREAD COUNT 10 BLOCK 0 STREAMS a b 0 0",
    "XREAD STREAMS s $",
    "XREAD STREAMS streams 0",
    "XREADGROUP GROUP g c COUNT 10 BLOCK 0 STREAMS a b > >",
    "XREADGROUP GROUP streams c NOACK STREAMS streams >",
    "XREVRANGE s + - COUNT 1",
    "XSETID s 5-0",
    "XTRIM s MINID 0-1",
    "ZADD z NX 1 a 2 b",
    "ZCARD z",
    "ZCOUNT z -inf +inf",
    "ZDIFF 2 a b WITHSCORES",
    "ZDIFFSTORE dst 2 a b",
    "ZINCRBY z 1 m",
    "ZINTER 3 a b c WEIGHTS 1 2 3",
    "ZINTERCARD 2 a b",
    "ZINTERSTORE dst 2 a b AGGREGATE MAX",
    "ZLEXCOUNT z - +",
    "ZMPOP 2 a b MAX COUNT 2",
    "ZMSCORE z a b",
    "ZPOPMAX z 2",
    "ZPOPMIN z",
    "ZRANDMEMBER z 2",
    "ZRANGE z 0 -1 WITHSCORES",
    "ZRANGEBYLEX z - +",
    "ZRANGEBYSCORE z -inf +inf LIMIT 0 10",
    "ZRANGESTORE dst src 0 -1",
    "ZRANK z m",
    "ZREM z a",
    "ZREMRANGEBYLEX z - +",
    "ZREMRANGEBYRANK z 0 1",
    "ZREMRANGEBYSCORE z 0 1",
    "ZREVRANGE z 0 -1",
    "ZREVRANGEBYLEX z + -",
    "ZREVRANGEBYSCORE z +inf -inf",
    "ZREVRANK z m",
    "ZSCAN z 0",
    "ZSCORE z m",
    "ZUNION 2 a b AGGREGATE SUM",
    "ZUNIONSTORE dst 2 a b WEIGHTS 1 2",
    "CLIENT SETNAME x",
    "CLIENT KILL ID 1",
    "CLUSTER KEYSLOT k",
    "CLUSTER COUNTKEYSINSLOT 1",
    "CONFIG SET maxmemory 100mb",
    "CONFIG GET maxmemory",
    "FUNCTION LOAD x",
    "FUNCTION DELETE lib",
    "FUNCTION FLUSH ASYNC",
    "SCRIPT FLUSH SYNC",
    "LATENCY HISTORY event",
    "SLOWLOG GET 10",
    "ACL GETUSER default",
    "INFO server",
    "HELLO 3",
    "AUTH user pw",
    "SELECT 0",
    "WAIT 1 0",
    "SWAPDB 0 1",
    "REPLICAOF NO ONE",
    "LOLWUT VERSION 5",
    "OBJECT HELP x",
    "get k",
    "gEtRaNgE k 0 1",
    "xreadgroup group g c streams s >",
    "eval s 1 k",
    "mset a 1 b 2",
    "GET a b",
    "ZUNIONSTORE dst 3 a b",
    "ZUNION 0 a",
    "EVAL s -1 a",
    "XREAD STREAMS a",
    "MIGRATE h 1 k 0 100 KEYS a b",
};

std::vector<std::string> split(std::string_view line) {
    std::vector<std::string> args;
    std::istringstream in{std::string(line)};
    for (std::string word; in >> word;)
        args.push_back(word == "\"\"" ? std::string() : word);
    return args;
}

// Sends the commands in one pipeline and returns their replies.
akv::generic_response exec_all(const akv::config& cfg,
                               const std::vector<std::vector<std::string>>& commands) {
    asio::io_context io;
    running_connection rc(io, cfg);
    akv::request req;
    for (const auto& args : commands)
        req.push_range(args.front(), std::vector<std::string>(args.begin() + 1, args.end()));
    akv::generic_response replies;
    run_task(io, [&]() -> asio::awaitable<void> { co_await rc.conn.exec(req, replies); }());
    return replies;
}

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
    return s;
}

std::string describe(routing how, const std::vector<std::string_view>& keys) {
    static constexpr const char* names[] = {"by_keys", "any_node", "all_masters", "unknown"};
    std::string out = names[static_cast<int>(how)];
    for (auto k : keys)
        out += " \"" + std::string(k) + "\"";
    return out;
}

std::string describe(const akv::result<value>& reply) {
    if (reply.has_error()) return "error: " + reply.error().message;
    std::string out = "keys";
    for (const auto& k : reply.value().elements)
        out += " \"" + k.str + "\"";
    return out;
}

bool is_movable(key_rule rule) {
    return rule != key_rule::keyless && rule != key_rule::fan_out && rule != key_rule::range &&
           rule != key_rule::container;
}

} // namespace

TEST(ClusterCommandKeys, TableMatchesTheServersCommandTable) {
    akv::testing::embedded_server server;
    const auto replies = exec_all(server.config(), {{"COMMAND"}});
    ASSERT_EQ(replies.size(), 1u);
    ASSERT_TRUE(replies[0].has_value()) << replies[0].error().message;

    std::vector<std::string> problems;
    std::size_t server_rows = 0;
    auto check = [&](const value& info, auto& self) -> void {
        if (info.elements.size() < 6) {
            problems.push_back("short COMMAND entry");
            return;
        }
        ++server_rows;
        const std::string name = upper(info.elements[0].str);
        const auto* spec = akv::cluster::find_command(name);
        if (spec == nullptr) {
            problems.push_back(name + ": not in our table");
        } else {
            const std::string theirs = info.elements[1].str + " " + info.elements[3].str + " " +
                                       info.elements[4].str + " " + info.elements[5].str;
            const std::string ours =
                std::to_string(spec->arity) + " " + std::to_string(spec->first_key) + " " +
                std::to_string(spec->last_key) + " " + std::to_string(spec->key_step);
            if (theirs != ours) problems.push_back(name + ": server " + theirs + ", ours " + ours);
            bool movable = false;
            for (const auto& flag : info.elements[2].elements)
                movable = movable || flag.str == "movablekeys";
            // SORT_RO is movable for its BY/GET patterns only, which are no keys to route by.
            if (movable != is_movable(spec->rule) && name != "SORT_RO")
                problems.push_back(name + ": movablekeys differs");
        }
        if (info.elements.size() > 9)
            for (const auto& sub : info.elements[9].elements)
                self(sub, self);
    };
    for (const auto& info : replies[0].value().elements)
        check(info, check);

    EXPECT_EQ(server_rows, akv::cluster::command_table().size());
    EXPECT_GE(server_rows, 360u);
    for (const auto& p : problems)
        ADD_FAILURE() << p;
}

TEST(ClusterCommandKeys, KeysMatchCommandGetkeys) {
    std::vector<std::vector<std::string>> commands;
    std::vector<std::vector<std::string>> getkeys;
    std::set<std::string> names;
    for (const char* line : samples) {
        commands.push_back(split(line));
        names.insert(upper(commands.back().front()));
        getkeys.push_back({"COMMAND", "GETKEYS"});
        getkeys.back().insert(getkeys.back().end(), commands.back().begin(), commands.back().end());
    }
    EXPECT_GE(names.size(), 150u);

    akv::testing::embedded_server server;
    const auto replies = exec_all(server.config(), getkeys);
    ASSERT_EQ(replies.size(), commands.size());

    std::size_t keyed = 0;
    for (std::size_t i = 0; i < commands.size(); ++i) {
        const std::vector<std::string_view> args(commands[i].begin(), commands[i].end());
        std::vector<std::string_view> keys;
        const routing how = command_keys(args, keys);
        EXPECT_NE(how, routing::unknown) << samples[i];
        const auto& reply = replies[i];
        const std::string name = upper(commands[i].front());
        if (name == "SPUBLISH" || name == "SSUBSCRIBE" || name == "SUNSUBSCRIBE") {
            // The server's key specs mark shard channels "not a key"; we route by them.
            EXPECT_TRUE(reply.has_error()) << samples[i];
            EXPECT_EQ(how, routing::by_keys) << samples[i];
            continue;
        }
        bool agree = false;
        if (reply.has_error() || reply.value().elements.empty()) {
            agree = how != routing::by_keys;
        } else {
            ++keyed;
            agree = how == routing::by_keys && keys.size() == reply.value().elements.size() &&
                    std::equal(keys.begin(), keys.end(), reply.value().elements.begin(),
                               [](std::string_view k, const value& v) { return k == v.str; });
        }
        EXPECT_TRUE(agree) << samples[i] << "\n  ours:   " << describe(how, keys)
                           << "\n  server: " << describe(reply);
    }
    EXPECT_GE(keyed, 150u); // most samples have keys: the comparison is not vacuous
}
