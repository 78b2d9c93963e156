#include <akv/cluster/command_keys.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using akv::cluster::command_keys;
using akv::cluster::routing;

namespace {

struct outcome {
    routing how;
    std::vector<std::string> keys;

    friend bool operator==(const outcome&, const outcome&) = default;
    friend std::ostream& operator<<(std::ostream& os, const outcome& o) {
        static constexpr const char* names[] = {"by_keys", "any_node", "all_masters", "unknown"};
        os << names[static_cast<int>(o.how)] << " {";
        for (const auto& k : o.keys)
            os << " \"" << k << "\"";
        return os << " }";
    }
};

outcome keys_of(std::initializer_list<std::string_view> args) {
    const std::vector<std::string_view> argv(args);
    std::vector<std::string_view> keys{"left over"};
    const routing how = command_keys(argv, keys);
    return {how, std::vector<std::string>(keys.begin(), keys.end())};
}

outcome by_keys(std::initializer_list<std::string> keys) {
    return {routing::by_keys, keys};
}
const outcome any_node{routing::any_node, {}};
const outcome all_masters{routing::all_masters, {}};
const outcome unknown{routing::unknown, {}};

} // namespace

TEST(ClusterCommandKeys, SingleKeyCommandsGiveTheirKey) {
    EXPECT_EQ(keys_of({"GET", "k"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"SET", "k", "v", "EX", "10", "NX"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"HSET", "h", "f", "v", "g", "w"}), by_keys({"h"}));
    EXPECT_EQ(keys_of({"XADD", "s", "*", "f", "v"}), by_keys({"s"}));
}

TEST(ClusterCommandKeys, CommandNamesMatchInAnyCase) {
    EXPECT_EQ(keys_of({"get", "k"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"gEtRaNgE", "k", "0", "1"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"object", "encoding", "k"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"xreadgroup", "group", "g", "c", "streams", "s", ">"}), by_keys({"s"}));
}

TEST(ClusterCommandKeys, KeysAreViewsIntoTheArguments) {
    const std::vector<std::string_view> args{"MGET", "a", "b"};
    std::vector<std::string_view> keys;
    ASSERT_EQ(command_keys(args, keys), routing::by_keys);
    ASSERT_EQ(keys.size(), 2u);
    EXPECT_EQ(keys[0].data(), args[1].data());
    EXPECT_EQ(keys[1].data(), args[2].data());
}

TEST(ClusterCommandKeys, RangesFollowTheLegacyKeySpec) {
    EXPECT_EQ(keys_of({"DEL", "a", "b", "c"}), by_keys({"a", "b", "c"}));
    EXPECT_EQ(keys_of({"MSET", "k1", "v1", "k2", "v2"}), by_keys({"k1", "k2"}));
    EXPECT_EQ(keys_of({"MSETNX", "k1", "v1"}), by_keys({"k1"}));
    EXPECT_EQ(keys_of({"BLPOP", "a", "b", "0"}), by_keys({"a", "b"})); // the timeout is not
    EXPECT_EQ(keys_of({"BITOP", "AND", "dest", "a", "b"}), by_keys({"dest", "a", "b"}));
    EXPECT_EQ(keys_of({"RENAME", "a", "b"}), by_keys({"a", "b"}));
    EXPECT_EQ(keys_of({"LMOVE", "a", "b", "LEFT", "RIGHT"}), by_keys({"a", "b"}));
    EXPECT_EQ(keys_of({"PFDEBUG", "GETREG", "k"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"WATCH", "a", "b"}), by_keys({"a", "b"}));
}

TEST(ClusterCommandKeys, EvalTakesNumkeysKeys) {
    EXPECT_EQ(keys_of({"EVAL", "return 1", "2", "a", "b", "arg"}), by_keys({"a", "b"}));
    EXPECT_EQ(keys_of({"evalsha", "abc", "1", "k"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"EVAL_RO", "s", "1", "k", "x"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"FCALL", "f", "2", "a", "b"}), by_keys({"a", "b"}));
    EXPECT_EQ(keys_of({"FCALL_RO", "f", "1", "k"}), by_keys({"k"}));
}

TEST(ClusterCommandKeys, EvalWithoutKeysRunsAnywhere) {
    EXPECT_EQ(keys_of({"EVAL", "return 1", "0"}), any_node);
    EXPECT_EQ(keys_of({"EVAL", "return 1", "0", "arg"}), any_node);
}

TEST(ClusterCommandKeys, BadNumkeysLeavesTheErrorToTheServer) {
    EXPECT_EQ(keys_of({"EVAL", "s", "3", "a", "b"}), any_node); // more keys than arguments
    EXPECT_EQ(keys_of({"EVAL", "s", "-1", "a"}), any_node);
    EXPECT_EQ(keys_of({"EVAL", "s", "1x", "a"}), any_node);
    EXPECT_EQ(keys_of({"EVAL", "s", "01", "a"}), any_node);
    EXPECT_EQ(keys_of({"EVAL", "s", "99999999999999999999", "a"}), any_node);
    EXPECT_EQ(keys_of({"ZUNION", "0", "a"}), any_node);
    EXPECT_EQ(keys_of({"ZUNIONSTORE", "dst", "3", "a", "b"}), any_node); // no destination either
}

TEST(ClusterCommandKeys, NumkeysCommands) {
    EXPECT_EQ(keys_of({"ZUNION", "2", "a", "b", "WEIGHTS", "1", "2"}), by_keys({"a", "b"}));
    EXPECT_EQ(keys_of({"ZINTERCARD", "2", "a", "b", "LIMIT", "5"}), by_keys({"a", "b"}));
    EXPECT_EQ(keys_of({"SINTERCARD", "1", "a"}), by_keys({"a"}));
    EXPECT_EQ(keys_of({"LMPOP", "2", "a", "b", "LEFT", "COUNT", "3"}), by_keys({"a", "b"}));
    EXPECT_EQ(keys_of({"ZMPOP", "1", "z", "MIN"}), by_keys({"z"}));
    EXPECT_EQ(keys_of({"BLMPOP", "0.5", "2", "a", "b", "LEFT"}), by_keys({"a", "b"}));
    EXPECT_EQ(keys_of({"BZMPOP", "0", "1", "z", "MAX"}), by_keys({"z"}));
}

TEST(ClusterCommandKeys, StoreCommandsTakeTheDestinationAndTheSources) {
    EXPECT_EQ(keys_of({"ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"}),
              by_keys({"d", "a", "b"}));
    EXPECT_EQ(keys_of({"ZINTERSTORE", "d", "1", "a"}), by_keys({"d", "a"}));
    EXPECT_EQ(keys_of({"ZDIFFSTORE", "d", "2", "a", "b"}), by_keys({"d", "a", "b"}));
}

TEST(ClusterCommandKeys, XreadgroupKeysAreTheFirstHalfAfterStreams) {
    EXPECT_EQ(keys_of({"XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "BLOCK", "0", "STREAMS", "a",
                       "b", ">", ">"}),
              by_keys({"a", "b"}));
    EXPECT_EQ(keys_of({"XREAD", "COUNT", "1", "STREAMS", "a", "b", "c", "0", "0", "0"}),
              by_keys({"a", "b", "c"}));
    // A group or a stream named "streams" is not the keyword.
    EXPECT_EQ(keys_of({"XREADGROUP", "GROUP", "streams", "c", "STREAMS", "streams", ">"}),
              by_keys({"streams"}));
    EXPECT_EQ(keys_of({"XREAD", "STREAMS", "a"}), any_node); // STREAMS with nothing after it
    EXPECT_EQ(keys_of({"XREAD", "COUNT", "1", "BLOCK", "0"}), any_node);
}

TEST(ClusterCommandKeys, SortStoresIntoItsLastStoreKey) {
    EXPECT_EQ(keys_of({"SORT", "k"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"SORT", "k", "BY", "w_*", "LIMIT", "0", "10", "GET", "o_*", "STORE", "d"}),
              by_keys({"k", "d"}));
    EXPECT_EQ(keys_of({"SORT", "k", "STORE", "a", "STORE", "b"}), by_keys({"k", "b"}));
    EXPECT_EQ(keys_of({"SORT", "k", "GET", "store"}), by_keys({"k"})); // a pattern, not STORE
    EXPECT_EQ(keys_of({"SORT", "k", "STORE"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"SORT_RO", "k", "BY", "w_*"}), by_keys({"k"}));
}

TEST(ClusterCommandKeys, MigrateTakesItsKeyOrItsKeysList) {
    EXPECT_EQ(keys_of({"MIGRATE", "h", "6379", "k", "0", "1000", "COPY"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"MIGRATE", "h", "6379", "", "0", "1000", "REPLACE", "KEYS", "a", "b"}),
              by_keys({"a", "b"}));
    // A password that reads "keys" is skipped with its AUTH.
    EXPECT_EQ(keys_of({"MIGRATE", "h", "1", "", "0", "1", "AUTH", "keys", "KEYS", "a"}),
              by_keys({"a"}));
    EXPECT_EQ(keys_of({"MIGRATE", "h", "1", "", "0", "1", "AUTH2", "u", "keys", "KEYS", "a"}),
              by_keys({"a"}));
    EXPECT_EQ(keys_of({"MIGRATE", "h", "1", "k", "0", "1", "KEYS", "a"}), any_node); // both
}

TEST(ClusterCommandKeys, GeoradiusStoreDestinations) {
    EXPECT_EQ(keys_of({"GEORADIUS", "g", "15", "37", "200", "km", "STORE", "d"}),
              by_keys({"g", "d"}));
    EXPECT_EQ(keys_of({"GEORADIUS", "g", "15", "37", "200", "km", "STORE", "a", "STOREDIST", "b"}),
              by_keys({"g", "a", "b"}));
    EXPECT_EQ(keys_of({"GEORADIUSBYMEMBER", "g", "m", "5", "km", "storedist", "d"}),
              by_keys({"g", "d"}));
    EXPECT_EQ(keys_of({"GEORADIUS", "g", "15", "37", "200", "km", "COUNT", "3"}), by_keys({"g"}));
    EXPECT_EQ(keys_of({"GEORADIUS_RO", "g", "15", "37", "200", "km"}), by_keys({"g"}));
}

TEST(ClusterCommandKeys, KeyedSubcommandsTakeTheKeyAfterTheSubcommand) {
    EXPECT_EQ(keys_of({"OBJECT", "ENCODING", "k"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"OBJECT", "freq", "k"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"MEMORY", "USAGE", "k", "SAMPLES", "5"}), by_keys({"k"}));
    EXPECT_EQ(keys_of({"XINFO", "STREAM", "s", "FULL"}), by_keys({"s"}));
    EXPECT_EQ(keys_of({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}), by_keys({"s"}));
    EXPECT_EQ(keys_of({"XGROUP", "DESTROY", "s", "g"}), by_keys({"s"}));
}

TEST(ClusterCommandKeys, KeylessSubcommandsGoAnywhere) {
    EXPECT_EQ(keys_of({"OBJECT", "HELP"}), any_node);
    EXPECT_EQ(keys_of({"MEMORY", "STATS"}), any_node);
    EXPECT_EQ(keys_of({"CLIENT", "SETNAME", "worker"}), any_node);
    EXPECT_EQ(keys_of({"CLUSTER", "KEYSLOT", "k"}), any_node);
    EXPECT_EQ(keys_of({"CONFIG", "SET", "maxmemory", "1mb"}), any_node);
    EXPECT_EQ(keys_of({"SCRIPT", "EXISTS", "sha"}), any_node);
    // COMMAND GETKEYS names a command, it does not run it.
    EXPECT_EQ(keys_of({"COMMAND", "GETKEYS", "GET", "k"}), any_node);
}

TEST(ClusterCommandKeys, UnknownSubcommandGoesAnywhere) {
    EXPECT_EQ(keys_of({"OBJECT", "NOSUCH", "k"}), any_node);
    EXPECT_EQ(keys_of({"CLIENT", "NO-SUCH-THING"}), any_node);
}

TEST(ClusterCommandKeys, KeylessCommandsGoAnywhere) {
    for (auto args : {std::initializer_list<std::string_view>{"PING"},
                      {"ECHO", "x"},
                      {"TIME"},
                      {"INFO", "server"},
                      {"HELLO", "3"},
                      {"MULTI"},
                      {"EXEC"},
                      {"DISCARD"},
                      {"UNWATCH"},
                      {"SELECT", "0"},
                      {"READONLY"},
                      {"WAIT", "1", "0"},
                      {"PUBLISH", "ch", "m"},
                      {"SUBSCRIBE", "a", "b"},
                      {"PSUBSCRIBE", "news.*"},
                      {"UNSUBSCRIBE"}})
        EXPECT_EQ(keys_of(args), any_node) << *args.begin();
}

TEST(ClusterCommandKeys, KeyspaceWideCommandsGoToEveryMaster) {
    for (auto args : {std::initializer_list<std::string_view>{"FLUSHALL"},
                      {"FLUSHDB", "ASYNC"},
                      {"DBSIZE"},
                      {"KEYS", "*"},
                      {"SCAN", "0", "COUNT", "10"},
                      {"RANDOMKEY"},
                      {"SCRIPT", "LOAD", "return 1"},
                      {"script", "flush"},
                      {"SCRIPT", "KILL"},
                      {"FUNCTION", "LOAD", "code"},
                      {"FUNCTION", "DELETE", "lib"},
                      {"FUNCTION", "FLUSH"},
                      {"FUNCTION", "RESTORE", "payload"},
                      {"FUNCTION", "KILL"}})
        EXPECT_EQ(keys_of(args), all_masters) << *args.begin();
}

TEST(ClusterCommandKeys, ShardChannelsRouteLikeKeys) {
    EXPECT_EQ(keys_of({"SSUBSCRIBE", "a", "b"}), by_keys({"a", "b"}));
    EXPECT_EQ(keys_of({"SUNSUBSCRIBE", "a"}), by_keys({"a"}));
    EXPECT_EQ(keys_of({"SPUBLISH", "ch", "m"}), by_keys({"ch"}));
    EXPECT_EQ(keys_of({"SUNSUBSCRIBE"}), any_node); // every shard channel: the caller knows where
}

TEST(ClusterCommandKeys, TooFewArgumentsGoAnywhere) {
    EXPECT_EQ(keys_of({}), any_node);
    EXPECT_EQ(keys_of({"GET"}), any_node);
    EXPECT_EQ(keys_of({"SET", "k"}), any_node);
    EXPECT_EQ(keys_of({"MSET"}), any_node);
    EXPECT_EQ(keys_of({"EVAL", "s"}), any_node);
    EXPECT_EQ(keys_of({"XREADGROUP", "GROUP", "g"}), any_node);
    EXPECT_EQ(keys_of({"ZUNIONSTORE", "d", "1"}), any_node);
    EXPECT_EQ(keys_of({"MIGRATE", "h", "1", "k"}), any_node);
    EXPECT_EQ(keys_of({"GEORADIUS", "g", "1", "2"}), any_node);
    EXPECT_EQ(keys_of({"OBJECT"}), any_node);
    EXPECT_EQ(keys_of({"OBJECT", "ENCODING"}), any_node);
    EXPECT_EQ(keys_of({"FLUSHALL", "ASYNC", "extra"}), all_masters); // -1: any number
    EXPECT_EQ(keys_of({"KEYS"}), any_node);
}

TEST(ClusterCommandKeys, TooManyArgumentsForAFixedArityGoAnywhere) {
    EXPECT_EQ(keys_of({"GET", "a", "b"}), any_node);
    EXPECT_EQ(keys_of({"OBJECT", "ENCODING", "a", "b"}), any_node);
}

TEST(ClusterCommandKeys, UnknownCommandsSayUnknown) {
    EXPECT_EQ(keys_of({"NOSUCHCOMMAND", "k"}), unknown);
    EXPECT_EQ(keys_of({"JSON.GET", "doc", "$"}), unknown);
    EXPECT_EQ(keys_of({"HEXPIRE", "h", "10", "FIELDS", "1", "f"}), unknown); // Redis 7.4
    EXPECT_EQ(keys_of({""}), unknown);
    EXPECT_EQ(keys_of({std::string_view(std::string(200, 'G'))}), unknown);
    EXPECT_EQ(keys_of({std::string_view("GET\0", 4), "k"}), unknown);
}

TEST(ClusterCommandKeys, TableIsSortedAndCoversRedis70) {
    const auto table = akv::cluster::command_table();
    EXPECT_GE(table.size(), 360u); // 240 commands and their subcommands
    EXPECT_TRUE(std::ranges::is_sorted(table, {}, &akv::cluster::command_spec::name));
    const auto* get = akv::cluster::find_command("get");
    ASSERT_NE(get, nullptr);
    EXPECT_EQ(get->name, "GET");
    EXPECT_EQ(get->arity, 2);
    const auto* usage = akv::cluster::find_command("Memory", "usage");
    ASSERT_NE(usage, nullptr);
    EXPECT_EQ(usage->name, "MEMORY|USAGE");
    EXPECT_EQ(usage->first_key, 2);
    EXPECT_EQ(akv::cluster::find_command("memory", "nosuch"), nullptr);
    EXPECT_EQ(akv::cluster::find_command(""), nullptr);
}

// Every command of the table with random arguments, keywords and counts among them: the keys
// are always some of the arguments, and nothing reads past the end (run under ASan too).
TEST(ClusterCommandKeys, RandomArgumentsNeverReadPastTheEnd) {
    const std::vector<std::string_view> vocabulary{
        "",        "0",       "1",     "2",         "3",    "-1",   "9999999999",
        "STREAMS", "streams", "STORE", "STOREDIST", "KEYS", "AUTH", "AUTH2",
        "LIMIT",   "GET",     "BY",    "GROUP",     "k",    "x"};
    std::mt19937 rng(7);
    std::vector<std::string_view> args;
    std::vector<std::string_view> keys;
    for (const auto& spec : akv::cluster::command_table()) {
        const auto bar = spec.name.find('|');
        for (int round = 0; round < 200; ++round) {
            args.assign({spec.name.substr(0, bar)});
            if (bar != std::string_view::npos) args.push_back(spec.name.substr(bar + 1));
            for (auto n = rng() % 12; n > 0; --n)
                args.push_back(vocabulary[rng() % vocabulary.size()]);
            const routing how = command_keys(args, keys);
            EXPECT_NE(how, routing::unknown) << spec.name;
            EXPECT_EQ(how == routing::by_keys, !keys.empty()) << spec.name;
            for (std::string_view key : keys) {
                const bool is_an_argument =
                    std::any_of(args.begin() + 1, args.end(),
                                [&](std::string_view a) { return a.data() == key.data(); });
                EXPECT_TRUE(is_an_argument) << spec.name;
            }
        }
    }
}
