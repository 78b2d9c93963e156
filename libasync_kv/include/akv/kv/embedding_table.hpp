// akv::kv::embedding_table<K>: a TFRA-style embedding table in Redis: keys (std::int64_t or
// std::string) mapped to float vectors of a fixed dimension D, read and written in batches.
//
//   akv::tfra_options opts = cfg.tfra;          // storage_slice, keys_sending_size, tags, ...
//   kv::embedding_table<std::int64_t> users(redis, "user_emb", 64, opts);
//   co_await users.open();                      // model_tag_old -> model_tag_new migration
//   co_await users.insert(ids, values);         // values: ids.size() * 64 floats, row major
//   auto rows = co_await users.find(ids, kv::embedding_initializer::random_normal(0, 1, 42));
//   co_await users.accumulate(ids, gradients);  // v += delta, atomically per key (Lua)
//
// Layout in Redis (other clients may read and write it):
//
//   <prefix>{<base>_<bucket>}   one hash per bucket, bucket = 0 .. storage_slice-1
//       field  the key: an int64 as 8 bytes little-endian, a string as its bytes
//       value  D float32, little-endian, 4*D bytes
//
//   <base> is "<table>_<model_tag_new>", or, with using_md5_prefix_name, the 32 lowercase hex
//   digits of md5("<table>_<model_tag_new>") (short keys whatever the names).
//   bucket = fnv1a64(field bytes) % storage_slice   (FNV-1a, 64 bit, offset 14695981039346656037,
//   prime 1099511628211). Each bucket is its own {hash tag}, so on a cluster the buckets spread
//   over the masters while every command touches one bucket (one slot).
//
// tfra_options, as TFRA's Redis config file means them:
//   storage_slice              the number of buckets (>= 1)
//   keys_sending_size          keys per HMGET / HSET / HDEL / accumulate script call (>= 1)
//   using_md5_prefix_name      see <base> above
//   model_tag_old/new          open(): when they differ and the new table is empty, the old
//                              tag's buckets are copied (DUMP / RESTORE) to the new tag's
//   expire_model_tag_in_seconds  when the tags differ and this is > 0: the copied buckets get
//                              this TTL, and buckets the table writes to get it if they have
//                              none yet (EXPIRE ... NX), so an abandoned version disappears
//   table_store_mode           save()/restore(): 0 = a checkpoint file the caller names,
//                              1 = DUMP payloads in model_lib_abs_dir, 2 = nothing (Redis only)
//   model_lib_abs_dir          mode 1: the files are <dir>/<base>_<bucket>.dump
//
// Checkpoint file (mode 0): "AKVEMB01", u32 dimension, u8 key kind (0 int64, 1 string), u64
// count, then per entry: the key (int64: 8 bytes; string: u32 length + bytes) and D float32;
// all little-endian.
//
// Batches: keys are grouped by bucket and sent keys_sending_size to a command, many commands
// to a pipelined request. A batch is not atomic as a whole (a key is). The spans passed in must
// stay alive until the returned awaitable completes. accumulate() adds in Lua (doubles, stored
// back rounded to float32), so integral deltas sum exactly.
#pragma once

#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/kv/key_schema.hpp>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace akv::kv {

// What find() returns for a key the table does not hold. random_normal is deterministic: the
// vector of a key depends only on (seed, key), not on the batch it was asked in.
struct embedding_initializer {
    enum class kind { zeros, constant, random_normal };
    kind type = kind::zeros;
    float value = 0.0f; // constant
    float mean = 0.0f;  // random_normal
    float stddev = 1.0f;
    std::uint64_t seed = 0;

    static embedding_initializer zeros() { return {}; }
    static embedding_initializer constant(float v) {
        embedding_initializer i;
        i.type = kind::constant;
        i.value = v;
        return i;
    }
    static embedding_initializer random_normal(float mean, float stddev, std::uint64_t seed) {
        embedding_initializer i;
        i.type = kind::random_normal;
        i.mean = mean;
        i.stddev = stddev;
        i.seed = seed;
        return i;
    }
};

template <class K> class embedding_table {
    static_assert(std::is_same_v<K, std::int64_t> || std::is_same_v<K, std::string>,
                  "embedding_table keys are std::int64_t or std::string");

public:
    using key_type = K;
    // Called with a page of entries: keys and their keys.size() * dimension() values.
    using export_sink = std::function<void(std::span<const K>, std::span<const float>)>;

    // Throws system_error(error::invalid_config) for dimension 0, storage_slice < 1,
    // keys_sending_size 0 or a table_store_mode other than 0, 1, 2.
    embedding_table(client& c, std::string_view name, std::size_t dimension,
                    const tfra_options& options, const key_schema& schema = {});

    std::size_t dimension() const noexcept { return dim_; }
    const tfra_options& options() const noexcept { return options_; }
    // The bucket hashes, index = bucket; and the bucket of a key.
    const std::vector<std::string>& bucket_keys() const noexcept { return buckets_; }
    std::size_t bucket_of(const K& key) const;
    // The buckets of model_tag_old (the same as bucket_keys() when the tags are equal).
    const std::vector<std::string>& old_bucket_keys() const noexcept { return old_buckets_; }

    // The tag migration: when model_tag_old != model_tag_new and no bucket of the new tag
    // exists, copies the old tag's buckets (DUMP/RESTORE, with the expiry). Returns the number
    // of buckets copied.
    asio::awaitable<std::size_t> open();

    // keys.size() * dimension() values, row major; missing keys get `init`'s values.
    asio::awaitable<std::vector<float>> find(std::span<const K> keys, embedding_initializer init);
    // As find(), into `out` (keys.size() * dimension()); found[i] says whether keys[i] is held.
    asio::awaitable<void> find_into(std::span<const K> keys, embedding_initializer init,
                                    std::span<float> out, std::vector<bool>& found);

    // Upsert: values holds keys.size() * dimension() floats.
    asio::awaitable<void> insert(std::span<const K> keys, std::span<const float> values);
    // value += delta for held keys, value = delta for the others; atomic per key.
    asio::awaitable<void> accumulate(std::span<const K> keys, std::span<const float> deltas);
    // Returns how many of the keys were held.
    asio::awaitable<std::size_t> remove(std::span<const K> keys);
    asio::awaitable<std::size_t> size();
    asio::awaitable<void> clear();

    // Every entry, a page (at most about keys_sending_size entries) at a time, bucket by bucket
    // with HSCAN. Entries written during the export may or may not be seen.
    asio::awaitable<void> export_entries(export_sink sink);
    // Inserts keys/values (as insert(); a name for the other half of export_entries()).
    asio::awaitable<void> import_entries(std::span<const K> keys, std::span<const float> values);

    // table_store_mode 0: writes every entry to `path`; 1: writes each bucket's DUMP to
    // model_lib_abs_dir (path unused); 2: nothing. Returns the number of entries (0 and 2) or
    // buckets (1) written.
    asio::awaitable<std::size_t> save(std::string path);
    // The reverse of save(): mode 0 clears the table and imports the file; mode 1 RESTOREs
    // each bucket from its file (REPLACE, with the expiry) and deletes a bucket that has no
    // file (it was empty when saved); 2: nothing. Returns entries / buckets restored.
    asio::awaitable<std::size_t> restore(std::string path);

    // The file mode 1 uses for `bucket`.
    std::string dump_file(std::size_t bucket) const;

private:
    struct plan; // keys grouped by bucket and cut into commands
    plan make_plan(std::span<const K> keys) const;
    std::string_view field(const plan& p, std::size_t key_index) const;
    // Seconds of TTL the table's buckets get (0: none).
    std::int64_t expiry_seconds() const noexcept;
    asio::awaitable<void> run_checked(const request& req, std::string_view command);

    client* client_;
    std::string name_;
    std::size_t dim_;
    tfra_options options_;
    std::string base_;
    std::vector<std::string> buckets_;
    std::vector<std::string> old_buckets_;
};

extern template class embedding_table<std::int64_t>;
extern template class embedding_table<std::string>;

} // namespace akv::kv
