// akv::kv::key_schema: the prefix every container puts before its name, so each process's keys
// are recognisable (and scannable, `SCAN 0 MATCH "node7:worker:3:*"`) in a shared Redis.
//
//   auto schema = key_schema::for_process("worker", "3");  // "node7:worker:3:" on host node7
//   kv::typed_map<std::string, double> stats(redis, "stats", schema);
//   // stats lives in the hash "node7:worker:3:stats"
//
//   key_schema("ami2/")       // any prefix, used as is: "ami2/stats"
//   key_schema()              // none: the name is the key
//
// Cluster hash tags. Redis Cluster puts a key in one of 16384 slots by hashing the whole key, or,
// when the key holds a '{' followed later by a '}' with at least one byte between them, only
// those bytes (the first such "{tag}"). A command or Lua script that touches several keys needs
// them all in one slot. So a container that uses two or more keys (lru_dict: a hash and a zset)
// names them `prefix{name}` and `prefix{name}:suffix`: the same tag, the same slot, whatever
// the prefix. tagged_key() builds such names and require_same_slot() checks a group of them
// (a prefix holding "{}" would make Redis ignore the later tag; that is refused there).
// Containers of one key use key(): `prefix` + `name`, no braces, spread over the cluster.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace akv::kv {

class key_schema {
public:
    key_schema() = default;
    explicit key_schema(std::string prefix)
        : prefix_(std::move(prefix)) {}

    // "HOSTNAME:PROCESS_TYPE:ID:" (the AMI2 layout), HOSTNAME from gethostname().
    static key_schema for_process(std::string_view process_type, std::string_view id);
    static key_schema for_process(std::string_view hostname, std::string_view process_type,
                                  std::string_view id);

    const std::string& prefix() const noexcept { return prefix_; }

    // prefix + name.
    std::string key(std::string_view name) const;
    // prefix + "{" + name + "}" [+ ":" + suffix]: keys of one container, in one cluster slot.
    std::string tagged_key(std::string_view name) const;
    std::string tagged_key(std::string_view name, std::string_view suffix) const;

    friend bool operator==(const key_schema&, const key_schema&) = default;

private:
    std::string prefix_;
};

// The bytes Redis Cluster hashes for `key`: the first non-empty {tag}, or the whole key.
std::string_view hash_tag(std::string_view key);

// Throws system_error(error::invalid_config) naming two keys of `keys` that would land in
// different cluster slots.
void require_same_slot(std::span<const std::string> keys);

// gethostname(), or "localhost" if it fails.
std::string local_hostname();

} // namespace akv::kv
