// The Redis 7.0 command table and the key rules of the commands whose keys move with their
// options. Each rule follows what the server itself does (key specs, or the getkeys function
// where the spec is incomplete), so that we agree with COMMAND GETKEYS and with the node's own
// CROSSSLOT and MOVED checks.
#include <akv/cluster/command_keys.hpp>

#include <algorithm>
#include <array>
#include <cstddef>

namespace akv::cluster {

namespace {

// From COMMAND on redis-server 7.0.15: name, arity, legacy first/last/step key range. The rules
// of the movable-keys commands and the fan-out choices are ours (see routing in the header).
// tests/integration/cluster_command_keys_test.cpp checks the table against a running server.
constexpr command_spec commands[] = {
    {"ACL", -2, 0, 0, 0, key_rule::container, 0},
    {"ACL|CAT", -2, 0, 0, 0, key_rule::keyless, 0},
    {"ACL|DELUSER", -3, 0, 0, 0, key_rule::keyless, 0},
    {"ACL|DRYRUN", -4, 0, 0, 0, key_rule::keyless, 0},
    {"ACL|GENPASS", -2, 0, 0, 0, key_rule::keyless, 0},
    {"ACL|GETUSER", 3, 0, 0, 0, key_rule::keyless, 0},
    {"ACL|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"ACL|LIST", 2, 0, 0, 0, key_rule::keyless, 0},
    {"ACL|LOAD", 2, 0, 0, 0, key_rule::keyless, 0},
    {"ACL|LOG", -2, 0, 0, 0, key_rule::keyless, 0},
    {"ACL|SAVE", 2, 0, 0, 0, key_rule::keyless, 0},
    {"ACL|SETUSER", -3, 0, 0, 0, key_rule::keyless, 0},
    {"ACL|USERS", 2, 0, 0, 0, key_rule::keyless, 0},
    {"ACL|WHOAMI", 2, 0, 0, 0, key_rule::keyless, 0},
    {"APPEND", 3, 1, 1, 1, key_rule::range, 0},
    {"ASKING", 1, 0, 0, 0, key_rule::keyless, 0},
    {"AUTH", -2, 0, 0, 0, key_rule::keyless, 0},
    {"BGREWRITEAOF", 1, 0, 0, 0, key_rule::keyless, 0},
    {"BGSAVE", -1, 0, 0, 0, key_rule::keyless, 0},
    {"BITCOUNT", -2, 1, 1, 1, key_rule::range, 0},
    {"BITFIELD", -2, 1, 1, 1, key_rule::range, 0},
    {"BITFIELD_RO", -2, 1, 1, 1, key_rule::range, 0},
    {"BITOP", -4, 2, -1, 1, key_rule::range, 0},
    {"BITPOS", -3, 1, 1, 1, key_rule::range, 0},
    {"BLMOVE", 6, 1, 2, 1, key_rule::range, 0},
    {"BLMPOP", -5, 0, 0, 0, key_rule::numkeys, 2},
    {"BLPOP", -3, 1, -2, 1, key_rule::range, 0},
    {"BRPOP", -3, 1, -2, 1, key_rule::range, 0},
    {"BRPOPLPUSH", 4, 1, 2, 1, key_rule::range, 0},
    {"BZMPOP", -5, 0, 0, 0, key_rule::numkeys, 2},
    {"BZPOPMAX", -3, 1, -2, 1, key_rule::range, 0},
    {"BZPOPMIN", -3, 1, -2, 1, key_rule::range, 0},
    {"CLIENT", -2, 0, 0, 0, key_rule::container, 0},
    {"CLIENT|CACHING", 3, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|GETNAME", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|GETREDIR", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|ID", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|INFO", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|KILL", -3, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|LIST", -2, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|NO-EVICT", 3, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|PAUSE", -3, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|REPLY", 3, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|SETNAME", 3, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|TRACKING", -3, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|TRACKINGINFO", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|UNBLOCK", -3, 0, 0, 0, key_rule::keyless, 0},
    {"CLIENT|UNPAUSE", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER", -2, 0, 0, 0, key_rule::container, 0},
    {"CLUSTER|ADDSLOTS", -3, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|ADDSLOTSRANGE", -4, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|BUMPEPOCH", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|COUNT-FAILURE-REPORTS", 3, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|COUNTKEYSINSLOT", 3, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|DELSLOTS", -3, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|DELSLOTSRANGE", -4, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|FAILOVER", -2, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|FLUSHSLOTS", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|FORGET", 3, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|GETKEYSINSLOT", 4, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|INFO", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|KEYSLOT", 3, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|LINKS", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|MEET", -4, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|MYID", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|NODES", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|REPLICAS", 3, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|REPLICATE", 3, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|RESET", -2, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|SAVECONFIG", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|SET-CONFIG-EPOCH", 3, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|SETSLOT", -4, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|SHARDS", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|SLAVES", 3, 0, 0, 0, key_rule::keyless, 0},
    {"CLUSTER|SLOTS", 2, 0, 0, 0, key_rule::keyless, 0},
    {"COMMAND", -1, 0, 0, 0, key_rule::container, 0},
    {"COMMAND|COUNT", 2, 0, 0, 0, key_rule::keyless, 0},
    {"COMMAND|DOCS", -2, 0, 0, 0, key_rule::keyless, 0},
    {"COMMAND|GETKEYS", -4, 0, 0, 0, key_rule::keyless, 0},
    {"COMMAND|GETKEYSANDFLAGS", -4, 0, 0, 0, key_rule::keyless, 0},
    {"COMMAND|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"COMMAND|INFO", -2, 0, 0, 0, key_rule::keyless, 0},
    {"COMMAND|LIST", -2, 0, 0, 0, key_rule::keyless, 0},
    {"CONFIG", -2, 0, 0, 0, key_rule::container, 0},
    {"CONFIG|GET", -3, 0, 0, 0, key_rule::keyless, 0},
    {"CONFIG|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CONFIG|RESETSTAT", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CONFIG|REWRITE", 2, 0, 0, 0, key_rule::keyless, 0},
    {"CONFIG|SET", -4, 0, 0, 0, key_rule::keyless, 0},
    {"COPY", -3, 1, 2, 1, key_rule::range, 0},
    {"DBSIZE", 1, 0, 0, 0, key_rule::fan_out, 0},
    {"DEBUG", -2, 0, 0, 0, key_rule::keyless, 0},
    {"DECR", 2, 1, 1, 1, key_rule::range, 0},
    {"DECRBY", 3, 1, 1, 1, key_rule::range, 0},
    {"DEL", -2, 1, -1, 1, key_rule::range, 0},
    {"DISCARD", 1, 0, 0, 0, key_rule::keyless, 0},
    {"DUMP", 2, 1, 1, 1, key_rule::range, 0},
    {"ECHO", 2, 0, 0, 0, key_rule::keyless, 0},
    {"EVAL", -3, 0, 0, 0, key_rule::numkeys, 2},
    {"EVALSHA", -3, 0, 0, 0, key_rule::numkeys, 2},
    {"EVALSHA_RO", -3, 0, 0, 0, key_rule::numkeys, 2},
    {"EVAL_RO", -3, 0, 0, 0, key_rule::numkeys, 2},
    {"EXEC", 1, 0, 0, 0, key_rule::keyless, 0},
    {"EXISTS", -2, 1, -1, 1, key_rule::range, 0},
    {"EXPIRE", -3, 1, 1, 1, key_rule::range, 0},
    {"EXPIREAT", -3, 1, 1, 1, key_rule::range, 0},
    {"EXPIRETIME", 2, 1, 1, 1, key_rule::range, 0},
    {"FAILOVER", -1, 0, 0, 0, key_rule::keyless, 0},
    {"FCALL", -3, 0, 0, 0, key_rule::numkeys, 2},
    {"FCALL_RO", -3, 0, 0, 0, key_rule::numkeys, 2},
    {"FLUSHALL", -1, 0, 0, 0, key_rule::fan_out, 0},
    {"FLUSHDB", -1, 0, 0, 0, key_rule::fan_out, 0},
    {"FUNCTION", -2, 0, 0, 0, key_rule::container, 0},
    {"FUNCTION|DELETE", 3, 0, 0, 0, key_rule::fan_out, 0},
    {"FUNCTION|DUMP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"FUNCTION|FLUSH", -2, 0, 0, 0, key_rule::fan_out, 0},
    {"FUNCTION|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"FUNCTION|KILL", 2, 0, 0, 0, key_rule::fan_out, 0},
    {"FUNCTION|LIST", -2, 0, 0, 0, key_rule::keyless, 0},
    {"FUNCTION|LOAD", -3, 0, 0, 0, key_rule::fan_out, 0},
    {"FUNCTION|RESTORE", -3, 0, 0, 0, key_rule::fan_out, 0},
    {"FUNCTION|STATS", 2, 0, 0, 0, key_rule::keyless, 0},
    {"GEOADD", -5, 1, 1, 1, key_rule::range, 0},
    {"GEODIST", -4, 1, 1, 1, key_rule::range, 0},
    {"GEOHASH", -2, 1, 1, 1, key_rule::range, 0},
    {"GEOPOS", -2, 1, 1, 1, key_rule::range, 0},
    {"GEORADIUS", -6, 1, 1, 1, key_rule::store_keywords, 6},
    {"GEORADIUSBYMEMBER", -5, 1, 1, 1, key_rule::store_keywords, 5},
    {"GEORADIUSBYMEMBER_RO", -5, 1, 1, 1, key_rule::range, 0},
    {"GEORADIUS_RO", -6, 1, 1, 1, key_rule::range, 0},
    {"GEOSEARCH", -7, 1, 1, 1, key_rule::range, 0},
    {"GEOSEARCHSTORE", -8, 1, 2, 1, key_rule::range, 0},
    {"GET", 2, 1, 1, 1, key_rule::range, 0},
    {"GETBIT", 3, 1, 1, 1, key_rule::range, 0},
    {"GETDEL", 2, 1, 1, 1, key_rule::range, 0},
    {"GETEX", -2, 1, 1, 1, key_rule::range, 0},
    {"GETRANGE", 4, 1, 1, 1, key_rule::range, 0},
    {"GETSET", 3, 1, 1, 1, key_rule::range, 0},
    {"HDEL", -3, 1, 1, 1, key_rule::range, 0},
    {"HELLO", -1, 0, 0, 0, key_rule::keyless, 0},
    {"HEXISTS", 3, 1, 1, 1, key_rule::range, 0},
    {"HGET", 3, 1, 1, 1, key_rule::range, 0},
    {"HGETALL", 2, 1, 1, 1, key_rule::range, 0},
    {"HINCRBY", 4, 1, 1, 1, key_rule::range, 0},
    {"HINCRBYFLOAT", 4, 1, 1, 1, key_rule::range, 0},
    {"HKEYS", 2, 1, 1, 1, key_rule::range, 0},
    {"HLEN", 2, 1, 1, 1, key_rule::range, 0},
    {"HMGET", -3, 1, 1, 1, key_rule::range, 0},
    {"HMSET", -4, 1, 1, 1, key_rule::range, 0},
    {"HRANDFIELD", -2, 1, 1, 1, key_rule::range, 0},
    {"HSCAN", -3, 1, 1, 1, key_rule::range, 0},
    {"HSET", -4, 1, 1, 1, key_rule::range, 0},
    {"HSETNX", 4, 1, 1, 1, key_rule::range, 0},
    {"HSTRLEN", 3, 1, 1, 1, key_rule::range, 0},
    {"HVALS", 2, 1, 1, 1, key_rule::range, 0},
    {"INCR", 2, 1, 1, 1, key_rule::range, 0},
    {"INCRBY", 3, 1, 1, 1, key_rule::range, 0},
    {"INCRBYFLOAT", 3, 1, 1, 1, key_rule::range, 0},
    {"INFO", -1, 0, 0, 0, key_rule::keyless, 0},
    {"KEYS", 2, 0, 0, 0, key_rule::fan_out, 0},
    {"LASTSAVE", 1, 0, 0, 0, key_rule::keyless, 0},
    {"LATENCY", -2, 0, 0, 0, key_rule::container, 0},
    {"LATENCY|DOCTOR", 2, 0, 0, 0, key_rule::keyless, 0},
    {"LATENCY|GRAPH", 3, 0, 0, 0, key_rule::keyless, 0},
    {"LATENCY|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"LATENCY|HISTOGRAM", -2, 0, 0, 0, key_rule::keyless, 0},
    {"LATENCY|HISTORY", 3, 0, 0, 0, key_rule::keyless, 0},
    {"LATENCY|LATEST", 2, 0, 0, 0, key_rule::keyless, 0},
    {"LATENCY|RESET", -2, 0, 0, 0, key_rule::keyless, 0},
    {"LCS", -3, 1, 2, 1, key_rule::range, 0},
    {"LINDEX", 3, 1, 1, 1, key_rule::range, 0},
    {"LINSERT", 5, 1, 1, 1, key_rule::range, 0},
    {"LLEN", 2, 1, 1, 1, key_rule::range, 0},
    {"LMOVE", 5, 1, 2, 1, key_rule::range, 0},
    {"LMPOP", -4, 0, 0, 0, key_rule::numkeys, 1},
    {"LOLWUT", -1, 0, 0, 0, key_rule::keyless, 0},
    {"LPOP", -2, 1, 1, 1, key_rule::range, 0},
    {"LPOS", -3, 1, 1, 1, key_rule::range, 0},
    {"LPUSH", -3, 1, 1, 1, key_rule::range, 0},
    {"LPUSHX", -3, 1, 1, 1, key_rule::range, 0},
    {"LRANGE", 4, 1, 1, 1, key_rule::range, 0},
    {"LREM", 4, 1, 1, 1, key_rule::range, 0},
    {"LSET", 4, 1, 1, 1, key_rule::range, 0},
    {"LTRIM", 4, 1, 1, 1, key_rule::range, 0},
    {"MEMORY", -2, 0, 0, 0, key_rule::container, 0},
    {"MEMORY|DOCTOR", 2, 0, 0, 0, key_rule::keyless, 0},
    {"MEMORY|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"MEMORY|MALLOC-STATS", 2, 0, 0, 0, key_rule::keyless, 0},
    {"MEMORY|PURGE", 2, 0, 0, 0, key_rule::keyless, 0},
    {"MEMORY|STATS", 2, 0, 0, 0, key_rule::keyless, 0},
    {"MEMORY|USAGE", -3, 2, 2, 1, key_rule::range, 0},
    {"MGET", -2, 1, -1, 1, key_rule::range, 0},
    {"MIGRATE", -6, 3, 3, 1, key_rule::migrate, 0},
    {"MODULE", -2, 0, 0, 0, key_rule::container, 0},
    {"MODULE|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"MODULE|LIST", 2, 0, 0, 0, key_rule::keyless, 0},
    {"MODULE|LOAD", -3, 0, 0, 0, key_rule::keyless, 0},
    {"MODULE|LOADEX", -3, 0, 0, 0, key_rule::keyless, 0},
    {"MODULE|UNLOAD", 3, 0, 0, 0, key_rule::keyless, 0},
    {"MONITOR", 1, 0, 0, 0, key_rule::keyless, 0},
    {"MOVE", 3, 1, 1, 1, key_rule::range, 0},
    {"MSET", -3, 1, -1, 2, key_rule::range, 0},
    {"MSETNX", -3, 1, -1, 2, key_rule::range, 0},
    {"MULTI", 1, 0, 0, 0, key_rule::keyless, 0},
    {"OBJECT", -2, 0, 0, 0, key_rule::container, 0},
    {"OBJECT|ENCODING", 3, 2, 2, 1, key_rule::range, 0},
    {"OBJECT|FREQ", 3, 2, 2, 1, key_rule::range, 0},
    {"OBJECT|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"OBJECT|IDLETIME", 3, 2, 2, 1, key_rule::range, 0},
    {"OBJECT|REFCOUNT", 3, 2, 2, 1, key_rule::range, 0},
    {"PERSIST", 2, 1, 1, 1, key_rule::range, 0},
    {"PEXPIRE", -3, 1, 1, 1, key_rule::range, 0},
    {"PEXPIREAT", -3, 1, 1, 1, key_rule::range, 0},
    {"PEXPIRETIME", 2, 1, 1, 1, key_rule::range, 0},
    {"PFADD", -2, 1, 1, 1, key_rule::range, 0},
    {"PFCOUNT", -2, 1, -1, 1, key_rule::range, 0},
    {"PFDEBUG", 3, 2, 2, 1, key_rule::range, 0},
    {"PFMERGE", -2, 1, -1, 1, key_rule::range, 0},
    {"PFSELFTEST", 1, 0, 0, 0, key_rule::keyless, 0},
    {"PING", -1, 0, 0, 0, key_rule::keyless, 0},
    {"PSETEX", 4, 1, 1, 1, key_rule::range, 0},
    {"PSUBSCRIBE", -2, 0, 0, 0, key_rule::keyless, 0},
    {"PSYNC", -3, 0, 0, 0, key_rule::keyless, 0},
    {"PTTL", 2, 1, 1, 1, key_rule::range, 0},
    {"PUBLISH", 3, 0, 0, 0, key_rule::keyless, 0},
    {"PUBSUB", -2, 0, 0, 0, key_rule::container, 0},
    {"PUBSUB|CHANNELS", -2, 0, 0, 0, key_rule::keyless, 0},
    {"PUBSUB|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"PUBSUB|NUMPAT", 2, 0, 0, 0, key_rule::keyless, 0},
    {"PUBSUB|NUMSUB", -2, 0, 0, 0, key_rule::keyless, 0},
    {"PUBSUB|SHARDCHANNELS", -2, 0, 0, 0, key_rule::keyless, 0},
    {"PUBSUB|SHARDNUMSUB", -2, 0, 0, 0, key_rule::keyless, 0},
    {"PUNSUBSCRIBE", -1, 0, 0, 0, key_rule::keyless, 0},
    {"QUIT", -1, 0, 0, 0, key_rule::keyless, 0},
    {"RANDOMKEY", 1, 0, 0, 0, key_rule::fan_out, 0},
    {"READONLY", 1, 0, 0, 0, key_rule::keyless, 0},
    {"READWRITE", 1, 0, 0, 0, key_rule::keyless, 0},
    {"RENAME", 3, 1, 2, 1, key_rule::range, 0},
    {"RENAMENX", 3, 1, 2, 1, key_rule::range, 0},
    {"REPLCONF", -1, 0, 0, 0, key_rule::keyless, 0},
    {"REPLICAOF", 3, 0, 0, 0, key_rule::keyless, 0},
    {"RESET", 1, 0, 0, 0, key_rule::keyless, 0},
    {"RESTORE", -4, 1, 1, 1, key_rule::range, 0},
    {"RESTORE-ASKING", -4, 1, 1, 1, key_rule::range, 0},
    {"ROLE", 1, 0, 0, 0, key_rule::keyless, 0},
    {"RPOP", -2, 1, 1, 1, key_rule::range, 0},
    {"RPOPLPUSH", 3, 1, 2, 1, key_rule::range, 0},
    {"RPUSH", -3, 1, 1, 1, key_rule::range, 0},
    {"RPUSHX", -3, 1, 1, 1, key_rule::range, 0},
    {"SADD", -3, 1, 1, 1, key_rule::range, 0},
    {"SAVE", 1, 0, 0, 0, key_rule::keyless, 0},
    {"SCAN", -2, 0, 0, 0, key_rule::fan_out, 0},
    {"SCARD", 2, 1, 1, 1, key_rule::range, 0},
    {"SCRIPT", -2, 0, 0, 0, key_rule::container, 0},
    {"SCRIPT|DEBUG", 3, 0, 0, 0, key_rule::keyless, 0},
    {"SCRIPT|EXISTS", -3, 0, 0, 0, key_rule::keyless, 0},
    {"SCRIPT|FLUSH", -2, 0, 0, 0, key_rule::fan_out, 0},
    {"SCRIPT|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"SCRIPT|KILL", 2, 0, 0, 0, key_rule::fan_out, 0},
    {"SCRIPT|LOAD", 3, 0, 0, 0, key_rule::fan_out, 0},
    {"SDIFF", -2, 1, -1, 1, key_rule::range, 0},
    {"SDIFFSTORE", -3, 1, -1, 1, key_rule::range, 0},
    {"SELECT", 2, 0, 0, 0, key_rule::keyless, 0},
    {"SET", -3, 1, 1, 1, key_rule::range, 0},
    {"SETBIT", 4, 1, 1, 1, key_rule::range, 0},
    {"SETEX", 4, 1, 1, 1, key_rule::range, 0},
    {"SETNX", 3, 1, 1, 1, key_rule::range, 0},
    {"SETRANGE", 4, 1, 1, 1, key_rule::range, 0},
    {"SHUTDOWN", -1, 0, 0, 0, key_rule::keyless, 0},
    {"SINTER", -2, 1, -1, 1, key_rule::range, 0},
    {"SINTERCARD", -3, 0, 0, 0, key_rule::numkeys, 1},
    {"SINTERSTORE", -3, 1, -1, 1, key_rule::range, 0},
    {"SISMEMBER", 3, 1, 1, 1, key_rule::range, 0},
    {"SLAVEOF", 3, 0, 0, 0, key_rule::keyless, 0},
    {"SLOWLOG", -2, 0, 0, 0, key_rule::container, 0},
    {"SLOWLOG|GET", -2, 0, 0, 0, key_rule::keyless, 0},
    {"SLOWLOG|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"SLOWLOG|LEN", 2, 0, 0, 0, key_rule::keyless, 0},
    {"SLOWLOG|RESET", 2, 0, 0, 0, key_rule::keyless, 0},
    {"SMEMBERS", 2, 1, 1, 1, key_rule::range, 0},
    {"SMISMEMBER", -3, 1, 1, 1, key_rule::range, 0},
    {"SMOVE", 4, 1, 2, 1, key_rule::range, 0},
    {"SORT", -2, 1, 1, 1, key_rule::sort, 0},
    {"SORT_RO", -2, 1, 1, 1, key_rule::range, 0},
    {"SPOP", -2, 1, 1, 1, key_rule::range, 0},
    {"SPUBLISH", 3, 1, 1, 1, key_rule::range, 0},
    {"SRANDMEMBER", -2, 1, 1, 1, key_rule::range, 0},
    {"SREM", -3, 1, 1, 1, key_rule::range, 0},
    {"SSCAN", -3, 1, 1, 1, key_rule::range, 0},
    {"SSUBSCRIBE", -2, 1, -1, 1, key_rule::range, 0},
    {"STRLEN", 2, 1, 1, 1, key_rule::range, 0},
    {"SUBSCRIBE", -2, 0, 0, 0, key_rule::keyless, 0},
    {"SUBSTR", 4, 1, 1, 1, key_rule::range, 0},
    {"SUNION", -2, 1, -1, 1, key_rule::range, 0},
    {"SUNIONSTORE", -3, 1, -1, 1, key_rule::range, 0},
    {"SUNSUBSCRIBE", -1, 1, -1, 1, key_rule::range, 0},
    {"SWAPDB", 3, 0, 0, 0, key_rule::keyless, 0},
    {"SYNC", 1, 0, 0, 0, key_rule::keyless, 0},
    {"TIME", 1, 0, 0, 0, key_rule::keyless, 0},
    {"TOUCH", -2, 1, -1, 1, key_rule::range, 0},
    {"TTL", 2, 1, 1, 1, key_rule::range, 0},
    {"TYPE", 2, 1, 1, 1, key_rule::range, 0},
    {"UNLINK", -2, 1, -1, 1, key_rule::range, 0},
    {"UNSUBSCRIBE", -1, 0, 0, 0, key_rule::keyless, 0},
    {"UNWATCH", 1, 0, 0, 0, key_rule::keyless, 0},
    {"WAIT", 3, 0, 0, 0, key_rule::keyless, 0},
    {"WATCH", -2, 1, -1, 1, key_rule::range, 0},
    {"XACK", -4, 1, 1, 1, key_rule::range, 0},
    {"XADD", -5, 1, 1, 1, key_rule::range, 0},
    {"XAUTOCLAIM", -6, 1, 1, 1, key_rule::range, 0},
    {"XCLAIM", -6, 1, 1, 1, key_rule::range, 0},
    {"XDEL", -3, 1, 1, 1, key_rule::range, 0},
    {"XGROUP", -2, 0, 0, 0, key_rule::container, 0},
    {"XGROUP|CREATE", -5, 2, 2, 1, key_rule::range, 0},
    {"XGROUP|CREATECONSUMER", 5, 2, 2, 1, key_rule::range, 0},
    {"XGROUP|DELCONSUMER", 5, 2, 2, 1, key_rule::range, 0},
    {"XGROUP|DESTROY", 4, 2, 2, 1, key_rule::range, 0},
    {"XGROUP|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"XGROUP|SETID", -5, 2, 2, 1, key_rule::range, 0},
    {"XINFO", -2, 0, 0, 0, key_rule::container, 0},
    {"XINFO|CONSUMERS", 4, 2, 2, 1, key_rule::range, 0},
    {"XINFO|GROUPS", 3, 2, 2, 1, key_rule::range, 0},
    {"XINFO|HELP", 2, 0, 0, 0, key_rule::keyless, 0},
    {"XINFO|STREAM", -3, 2, 2, 1, key_rule::range, 0},
    {"XLEN", 2, 1, 1, 1, key_rule::range, 0},
    {"XPENDING", -3, 1, 1, 1, key_rule::range, 0},
    {"XRANGE", -4, 1, 1, 1, key_rule::range, 0},
    {"XREAD", -4, 0, 0, 0, key_rule::streams, 1},
    {"XREADGROUP", -7, 0, 0, 0, key_rule::streams, 4},
    {"XREVRANGE", -4, 1, 1, 1, key_rule::range, 0},
    {"XSETID", -3, 1, 1, 1, key_rule::range, 0},
    {"XTRIM", -4, 1, 1, 1, key_rule::range, 0},
    {"ZADD", -4, 1, 1, 1, key_rule::range, 0},
    {"ZCARD", 2, 1, 1, 1, key_rule::range, 0},
    {"ZCOUNT", 4, 1, 1, 1, key_rule::range, 0},
    {"ZDIFF", -3, 0, 0, 0, key_rule::numkeys, 1},
    {"ZDIFFSTORE", -4, 1, 1, 1, key_rule::store_numkeys, 2},
    {"ZINCRBY", 4, 1, 1, 1, key_rule::range, 0},
    {"ZINTER", -3, 0, 0, 0, key_rule::numkeys, 1},
    {"ZINTERCARD", -3, 0, 0, 0, key_rule::numkeys, 1},
    {"ZINTERSTORE", -4, 1, 1, 1, key_rule::store_numkeys, 2},
    {"ZLEXCOUNT", 4, 1, 1, 1, key_rule::range, 0},
    {"ZMPOP", -4, 0, 0, 0, key_rule::numkeys, 1},
    {"ZMSCORE", -3, 1, 1, 1, key_rule::range, 0},
    {"ZPOPMAX", -2, 1, 1, 1, key_rule::range, 0},
    {"ZPOPMIN", -2, 1, 1, 1, key_rule::range, 0},
    {"ZRANDMEMBER", -2, 1, 1, 1, key_rule::range, 0},
    {"ZRANGE", -4, 1, 1, 1, key_rule::range, 0},
    {"ZRANGEBYLEX", -4, 1, 1, 1, key_rule::range, 0},
    {"ZRANGEBYSCORE", -4, 1, 1, 1, key_rule::range, 0},
    {"ZRANGESTORE", -5, 1, 2, 1, key_rule::range, 0},
    {"ZRANK", 3, 1, 1, 1, key_rule::range, 0},
    {"ZREM", -3, 1, 1, 1, key_rule::range, 0},
    {"ZREMRANGEBYLEX", 4, 1, 1, 1, key_rule::range, 0},
    {"ZREMRANGEBYRANK", 4, 1, 1, 1, key_rule::range, 0},
    {"ZREMRANGEBYSCORE", 4, 1, 1, 1, key_rule::range, 0},
    {"ZREVRANGE", -4, 1, 1, 1, key_rule::range, 0},
    {"ZREVRANGEBYLEX", -4, 1, 1, 1, key_rule::range, 0},
    {"ZREVRANGEBYSCORE", -4, 1, 1, 1, key_rule::range, 0},
    {"ZREVRANK", 3, 1, 1, 1, key_rule::range, 0},
    {"ZSCAN", -3, 1, 1, 1, key_rule::range, 0},
    {"ZSCORE", 3, 1, 1, 1, key_rule::range, 0},
    {"ZUNION", -3, 0, 0, 0, key_rule::numkeys, 1},
    {"ZUNIONSTORE", -4, 1, 1, 1, key_rule::store_numkeys, 2},
};

static_assert(std::ranges::adjacent_find(commands, std::ranges::greater_equal{},
                                         &command_spec::name) == std::ranges::end(commands),
              "the command table must be sorted by name, without duplicates");

// Longer than any command name plus '|' plus any subcommand name of Redis 7.0.
constexpr std::size_t max_name = 64;

constexpr char to_upper(char c) noexcept {
    return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

// `upper` is an upper-case literal.
bool is_keyword(std::string_view arg, std::string_view upper) noexcept {
    return arg.size() == upper.size() &&
           std::equal(arg.begin(), arg.end(), upper.begin(),
                      [](char a, char u) { return to_upper(a) == u; });
}

bool arity_allows(const command_spec& spec, std::size_t argc) noexcept {
    const auto arity = static_cast<std::size_t>(spec.arity < 0 ? -spec.arity : spec.arity);
    return spec.arity < 0 ? argc >= arity : argc == arity;
}

// A key count as Redis's string2ll reads it: decimal digits, no sign, no leading zero. Counts
// larger than any argument list are refused as the server would.
bool parse_count(std::string_view text, std::size_t& out) noexcept {
    if (text.empty() || text.size() > 9) return false;
    if (text.size() > 1 && text.front() == '0') return false;
    std::size_t n = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        n = n * 10 + static_cast<std::size_t>(c - '0');
    }
    out = n;
    return true;
}

using args_t = std::span<const std::string_view>;
using keys_t = std::vector<std::string_view>;

void add_range(args_t args, const command_spec& spec, keys_t& keys) {
    const auto argc = static_cast<std::ptrdiff_t>(args.size());
    const std::ptrdiff_t first = spec.first_key;
    const std::ptrdiff_t last = spec.last_key < 0 ? argc + spec.last_key : spec.last_key;
    if (first <= 0 || spec.key_step <= 0 || last < first || last >= argc) return;
    for (std::ptrdiff_t i = first; i <= last; i += spec.key_step)
        keys.push_back(args[static_cast<std::size_t>(i)]);
}

// A count at args[at], then that many keys; nothing when the count is bad or zero.
bool add_counted(args_t args, std::size_t at, keys_t& keys) {
    std::size_t count = 0;
    if (at >= args.size() || !parse_count(args[at], count) || count == 0) return false;
    if (count > args.size() - at - 1) return false;
    keys.insert(keys.end(), args.begin() + static_cast<std::ptrdiff_t>(at + 1),
                args.begin() + static_cast<std::ptrdiff_t>(at + 1 + count));
    return true;
}

// A keyword search of the key specs: the first `keyword` at args[from] or later, never the
// last argument (a keyword there has nothing after it). Returns its index, or 0.
std::size_t find_keyword(args_t args, std::size_t from, std::string_view keyword) noexcept {
    for (std::size_t i = std::max<std::size_t>(from, 1); i + 1 < args.size(); ++i)
        if (is_keyword(args[i], keyword)) return i;
    return 0;
}

// XREAD/XREADGROUP: after STREAMS come N keys and N ids.
void add_streams(args_t args, std::size_t from, keys_t& keys) {
    const std::size_t at = find_keyword(args, from, "STREAMS");
    if (at == 0) return;
    const std::size_t first = at + 1;
    const std::size_t count = (args.size() - first) / 2;
    keys.insert(keys.end(), args.begin() + static_cast<std::ptrdiff_t>(first),
                args.begin() + static_cast<std::ptrdiff_t>(first + count));
}

// GEORADIUS and GEORADIUSBYMEMBER: the source, then the STORE and STOREDIST destinations.
void add_store_keywords(args_t args, std::size_t from, keys_t& keys) {
    keys.push_back(args[1]);
    for (std::string_view keyword : {std::string_view("STORE"), std::string_view("STOREDIST")})
        if (const std::size_t at = find_keyword(args, from, keyword)) keys.push_back(args[at + 1]);
}

// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE dest]:
// the options are skipped with their arguments, so a pattern named "store" is not a STORE;
// the last STORE wins, as in SORT itself.
void add_sort(args_t args, keys_t& keys) {
    keys.push_back(args[1]);
    std::size_t store = 0;
    for (std::size_t i = 2; i < args.size(); ++i) {
        if (is_keyword(args[i], "LIMIT"))
            i += 2;
        else if (is_keyword(args[i], "STORE") && i + 1 < args.size())
            store = i + 1;
        else if (is_keyword(args[i], "GET") || is_keyword(args[i], "BY"))
            i += 1;
    }
    if (store != 0) keys.push_back(args[store]);
}

// MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS key...]
void add_migrate(args_t args, keys_t& keys) {
    std::size_t first = 3;
    std::size_t count = 1;
    for (std::size_t i = 6; i < args.size(); ++i) {
        if (is_keyword(args[i], "KEYS")) {
            if (!args[3].empty()) return; // KEYS with a key too: the server refuses it
            first = i + 1;
            count = args.size() - first;
            break;
        }
        if (is_keyword(args[i], "AUTH"))
            i += 1;
        else if (is_keyword(args[i], "AUTH2"))
            i += 2;
    }
    keys.insert(keys.end(), args.begin() + static_cast<std::ptrdiff_t>(first),
                args.begin() + static_cast<std::ptrdiff_t>(first + count));
}

} // namespace

std::span<const command_spec> command_table() noexcept {
    return commands;
}

const command_spec* find_command(std::string_view name, std::string_view subcommand) noexcept {
    std::array<char, max_name> buffer;
    const std::size_t size = subcommand.empty() ? name.size() : name.size() + 1 + subcommand.size();
    if (name.empty() || size > buffer.size()) return nullptr;
    char* out = std::transform(name.begin(), name.end(), buffer.begin(), to_upper);
    if (!subcommand.empty()) {
        *out++ = '|';
        std::transform(subcommand.begin(), subcommand.end(), out, to_upper);
    }
    const std::string_view wanted(buffer.data(), size);
    const auto* row = std::ranges::lower_bound(commands, wanted, {}, &command_spec::name);
    if (row == std::ranges::end(commands) || row->name != wanted) return nullptr;
    return row;
}

routing command_keys(std::span<const std::string_view> args, std::vector<std::string_view>& keys) {
    keys.clear();
    if (args.empty()) return routing::any_node;
    const command_spec* spec = find_command(args[0]);
    if (spec == nullptr) return routing::unknown;
    if (!arity_allows(*spec, args.size())) return routing::any_node;
    if (spec->rule == key_rule::container) {
        // Redis 7.0 answers an unknown subcommand with an error, from any node.
        spec = find_command(args[0], args[1]);
        if (spec == nullptr || !arity_allows(*spec, args.size())) return routing::any_node;
    }

    const auto rule_arg = static_cast<std::size_t>(spec->rule_arg);
    switch (spec->rule) {
    case key_rule::keyless:
    case key_rule::container:
        return routing::any_node;
    case key_rule::fan_out:
        return routing::all_masters;
    case key_rule::range:
        add_range(args, *spec, keys);
        break;
    case key_rule::numkeys:
        add_counted(args, rule_arg, keys);
        break;
    case key_rule::store_numkeys:
        // A bad count makes the whole command a syntax error: no destination either.
        keys.push_back(args[1]);
        if (!add_counted(args, rule_arg, keys)) keys.clear();
        break;
    case key_rule::streams:
        add_streams(args, rule_arg, keys);
        break;
    case key_rule::store_keywords:
        add_store_keywords(args, rule_arg, keys);
        break;
    case key_rule::sort:
        add_sort(args, keys);
        break;
    case key_rule::migrate:
        add_migrate(args, keys);
        break;
    }
    return keys.empty() ? routing::any_node : routing::by_keys;
}

} // namespace akv::cluster
