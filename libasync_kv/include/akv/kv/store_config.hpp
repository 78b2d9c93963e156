// One URL or one JSON document for the KV layer: where Redis is, how the blob store behaves
// (as Scaler's Redis backend configures it, seed 003), and the key schema of the containers
// (AMI2's HOSTNAME:PROCESS_TYPE:ID: prefix, seed 001).
//
//   redis://user:pass@host:6379/0?key_prefix=scaler:&max_object_size=100MB&chunk_size=4MB
//   {"url": "rediss://host:6380", "key_prefix": "scaler:", "max_object_size": "100MB",
//    "process_type": "worker", "process_id": "3", "connect_timeout_ms": 500}
//
// Blob store keys: key_prefix, max_object_size, chunk_size, max_bytes_in_flight,
// read_lease_ms, unfinished_put_ttl_ms. Container keys: kv_prefix (any prefix), or
// process_type + process_id (+ hostname, default this host's) for HOSTNAME:TYPE:ID:.
// The store's keys are taken out first; every other key goes to akv::config, which reports
// unknown keys by name as usual. Sizes are a number of bytes or a number with KB, MB, GB
// (powers of 1024).
#pragma once

#include <akv/config.hpp>
#include <akv/kv/blob_store.hpp>
#include <akv/kv/key_schema.hpp>

#include <string_view>

namespace akv::kv {

struct blob_store_config {
    akv::config connection;
    blob_options blob;
    key_schema keys; // for typed_map and the collections

    static blob_store_config from_url(std::string_view url);
    static blob_store_config from_json(std::string_view json_text);
    static blob_store_config from_json_file(const std::string& path);
};

// "512", "4KB", "100MB", "2GB" -> bytes; throws system_error(invalid_config) naming `key`.
std::size_t parse_size(std::string_view key, std::string_view text);

} // namespace akv::kv
