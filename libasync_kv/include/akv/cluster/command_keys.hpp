// Which arguments of a command are keys, and so where a cluster client sends it. Sans-I/O: a
// built-in table of the Redis 7.0 commands (their key specs, as COMMAND reports them) and the
// few commands whose keys move with their options (EVAL's numkeys, XREAD's STREAMS, SORT's
// STORE, ...). The answers match the server's COMMAND GETKEYS for well-formed commands, which is
// also what a cluster node checks for CROSSSLOT and MOVED.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace akv::cluster {

enum class routing {
    // `keys` holds at least one key: send to the master of their slot (keys in different slots
    // are the caller's CROSSSLOT to report). The shard channels of SSUBSCRIBE, SUNSUBSCRIBE and
    // SPUBLISH count as keys here, though COMMAND GETKEYS does not list them.
    by_keys,
    // No key: any node answers the same. Also what a malformed command gets (too few
    // arguments, a bad numkeys, an unknown subcommand), so that a node reports the error.
    // Connection state (SELECT, AUTH, HELLO, CLIENT ..., READONLY, MULTI/EXEC) and per-node
    // questions (INFO, CONFIG ..., MEMORY STATS, SLOWLOG, LATENCY, WAIT) are here too: the
    // caller decides which connection they concern. PUBLISH, SUBSCRIBE and PSUBSCRIBE are here:
    // classic pub/sub messages reach every node of the cluster.
    any_node,
    // No key, but one node's answer or effect is not the cluster's: the keyspace-wide commands
    // (FLUSHALL, FLUSHDB, DBSIZE, KEYS, SCAN, RANDOMKEY) and the server-side code every master
    // must hold or drop (SCRIPT LOAD/FLUSH, FUNCTION LOAD/DELETE/FLUSH/RESTORE) or stop (SCRIPT
    // KILL, FUNCTION KILL: the busy script runs on one unknown master). The caller merges the
    // replies (sum for DBSIZE, union for KEYS, any non-null for RANDOMKEY, one success for the
    // KILLs). Redis tags SCRIPT LOAD/FLUSH and CONFIG SET "all_nodes" (replicas too): a client
    // that runs EVALSHA on replicas must load its scripts there as well. CONFIG SET stays
    // any_node: changing the configuration of a whole cluster is an operator's act, node by node.
    all_masters,
    // Not a Redis 7.0 command (a module's, a newer server's): `keys` is left empty and the
    // caller may take args[1] as the key and rely on MOVED.
    unknown,
};

// Fills `keys` (cleared first) with views of the key arguments of one command: args[0] is the
// command name (any case), args[1...] its arguments. Never throws on short or bad arguments and
// never allocates except to grow `keys`.
routing command_keys(std::span<const std::string_view> args, std::vector<std::string_view>& keys);

// The table behind command_keys, for tests and diagnostics.

enum class key_rule : std::uint8_t {
    keyless,        // no key; any node
    fan_out,        // no key; every master (routing::all_masters)
    container,      // look up the subcommand's row, "OBJECT|ENCODING"
    range,          // args[first_key] to args[last_key] every key_step (the legacy key spec)
    numkeys,        // a count at args[rule_arg], then that many keys (EVAL, ZUNION, BLMPOP)
    store_numkeys,  // args[1], then a count at args[rule_arg] and that many keys (ZUNIONSTORE)
    streams,        // the first half of what follows the first STREAMS at args[rule_arg] or later
    store_keywords, // args[1], and the argument after the first STORE and after the first
                    // STOREDIST at args[rule_arg] or later (GEORADIUS)
    sort,           // args[1] and the argument of the last STORE option, as SORT reads them
    migrate,        // args[3], or the arguments after KEYS when args[3] is empty
};

struct command_spec {
    std::string_view name; // upper case; a subcommand's row is "CONTAINER|SUBCOMMAND"
    std::int8_t arity;     // as Redis counts (name included): n exactly, -n at least n
    std::int8_t first_key; // Redis's legacy key range: 0 when none or movable
    std::int8_t last_key;  // negative: from the end, -1 the last argument
    std::int8_t key_step;
    key_rule rule;
    std::int8_t rule_arg; // the argument a movable rule starts from; 0 when it has none
};

// Every Redis 7.0 command and subcommand, sorted by name.
std::span<const command_spec> command_table() noexcept;

// The row of `name`, or of "name|subcommand" when `subcommand` is not empty (any case);
// nullptr when there is none.
const command_spec* find_command(std::string_view name, std::string_view subcommand = {}) noexcept;

} // namespace akv::cluster
