// akv::kv::blob_store: named byte objects with metadata, any size up to a limit, kept in Redis
// in a layout any client can read (the object store of Scaler's Redis backend).
//
//   akv::kv::blob_store store(client);                    // key_prefix "blob:"
//   co_await store.put("photo", bytes, akv::kv::blob_attributes("image/png"));
//   std::optional<std::string> back = co_await store.get("photo");
//   akv::kv::blob_info totals = co_await store.info();    // objects, bytes
//
// Layout, for key_prefix "blob:" and an object named "photo":
//
//   blob:{photo}:meta              hash    the manifest: size, chunks, chunk_size, generation,
//                                          content_type, modified_ms (server time of the put),
//                                          and user:<key> for each user metadata entry
//   blob:{photo}:chunk:<gen>:<i>   string  bytes [i * chunk_size, (i + 1) * chunk_size) of the
//                                          object; gen is the manifest's generation. An empty
//                                          object has no chunk.
//   blob:{photo}:readers           zset    "<gen>:<token>" -> lease end (ms since the epoch),
//                                          only while large reads are running
//   blob:info                      hash    objects, bytes (the store's totals), and
//                                          last_generation (each blob_store takes a block of
//                                          generations at a time from it)
//
// Every key starts with key_prefix. The keys of one object share the hash tag {name}, so a
// Redis Cluster keeps them on one slot (a name must then not start with '}'). The puts and
// erases also update the totals in the same Lua call, so on a cluster the totals must be on
// the object's slot:
//   * key_prefix with a hash tag of its own ("{blob}:"): the whole store is on that one slot,
//     totals in <prefix>info as on a single server;
//   * otherwise (the default "blob:" on a cluster) the objects spread over the cluster and
//     each slot keeps the totals of its objects in blob:info:{<t>}, <t> a short string that
//     hashes to that slot; info() sums them (one HMGET per slot, pipelined per node).
//     blob:info then holds only last_generation.
// A single server and Sentinel keep the one blob:info: the layout there is unchanged.
//
// A put is atomic for readers. Its chunks are SET under a generation no other put uses (with a
// TTL, so the chunks of a put that dies half way expire on their own), then one Lua call
// (lua/kv/blob_commit.lua) checks them, flips the manifest to the new generation, moves the
// totals by the difference and retires the old generation; an object of one chunk takes one
// request for both. A chunk key is written once and never changed, so a GET that finds it
// finds the right bytes, and a reader sees the old object or the new one, never a mix: it
// reads the manifest, then the chunks of its generation. If a put retired them in between,
// an object of one chunk is read again; a larger one is read under a lease on its
// generation (lua/kv/blob_open.lua), which keeps retired chunks until their readers are done
// (blob_renew.lua, blob_release.lua). The bytes never pass through Lua, which copies large
// strings slowly.
//
// The totals change only in the Lua calls that change a manifest, so they stay exact under any
// number of concurrent puts and erases: an overwrite moves bytes by the difference, the erase
// of a missing object changes nothing.
//
// Large objects stream: put and get pipeline their chunk writes and reads on the client's
// shared connection, with at most max_bytes_in_flight bytes of chunks in flight, and
// put_stream / get_stream never hold the whole object in memory.
//
// Errors: system_error with error::object_too_large (a put over max_object_size, refused
// before anything is sent; the message names the object and both sizes), error::type_mismatch
// (a manifest or chunk that is not what a put writes; the message names the key),
// error::script_error (a Lua call refused, e.g. chunks that expired before their commit),
// error::timeout (a reader that kept a chunk longer than its read lease while the object was
// replaced, or one whose object was replaced under it again and again), and the client's own
// codes. A missing object is std::nullopt or false,
// never an error. Empty names are refused with std::invalid_argument.
//
// A blob_store is cheap (a few strings and counters) and any number of them may share a store's
// keys, in one process or many. It is used from its client's executor, as the client itself;
// the client must outlive the store's operations.
#pragma once

#include <akv/client.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace akv::kv {

struct blob_options {
    std::string key_prefix = "blob:";         // every key this store touches starts with it
    std::size_t max_object_size = 512u << 20; // larger puts are refused before anything is sent
    // Objects larger than this are split into chunks of this size; at most 512 MB, Redis's
    // default proto-max-bulk-len. Chunking also makes objects over 512 MB possible.
    std::size_t chunk_size = 4u << 20;
    // Chunk bytes written or read ahead at once by one put or get (at least one chunk).
    std::size_t max_bytes_in_flight = 64u << 20;
    // How long a reader of a large object keeps its generation against a concurrent put or
    // erase without renewing; renewed as it goes, so it only bounds a reader that stalls.
    std::chrono::milliseconds read_lease{30000};
    // How long the chunks of an unfinished put live; a put that takes longer fails.
    std::chrono::milliseconds unfinished_put_ttl{std::chrono::hours(1)};
};

// What a put stores beside the bytes. Not an aggregate on purpose: g++ 12 destroys an
// aggregate temporary twice when it is built in a co_await expression, so
// `co_await store.put(name, bytes, blob_attributes("image/png"))` must not be written with
// braces.
struct blob_attributes {
    blob_attributes() = default;
    explicit blob_attributes(std::string type, std::map<std::string, std::string> fields = {})
        : content_type(std::move(type))
        , user(std::move(fields)) {}

    std::string content_type;
    std::map<std::string, std::string> user; // user:<key> fields of the manifest
};

// An object's manifest.
struct blob_meta {
    std::uint64_t size = 0;
    std::uint32_t chunks = 0;
    std::uint64_t chunk_size = 0;
    std::uint64_t generation = 0; // unique per put in the store
    std::string content_type;
    std::map<std::string, std::string> user;
    std::chrono::system_clock::time_point modified; // the server's clock, at the commit
};

// Bytes and manifest of one version of an object, read together.
struct blob {
    blob_meta meta;
    std::string bytes;
};

// The store's totals: exact under concurrent puts and erases.
struct blob_info {
    std::uint64_t objects = 0;
    std::uint64_t bytes = 0;
};

class blob_store {
public:
    // Fills `buffer` with the object's next bytes and returns how many (at least 1 until all
    // `size` bytes were given; put_stream never asks for more).
    using source = std::function<asio::awaitable<std::size_t>(std::span<char> buffer)>;
    // Takes the object's next bytes (one chunk at a time, in order; valid during the call).
    using sink = std::function<asio::awaitable<void>(std::string_view bytes)>;

    // Throws system_error(error::invalid_config) for options it cannot work with.
    explicit blob_store(client& c, blob_options options = {});

    // Stores `bytes` under `name`, replacing any object of that name (a reader sees the old one
    // or the new one, whole). An object of up to chunk_size bytes takes one request.
    asio::awaitable<void> put(std::string_view name, std::string_view bytes);
    asio::awaitable<void> put(std::string_view name, std::string_view bytes,
                              blob_attributes attributes);

    // As put, for `size` bytes pulled from `next` chunk by chunk: never holds more than one
    // chunk plus the chunks in flight. If `next` throws, the object is left as it was.
    asio::awaitable<void> put_stream(std::string_view name, std::uint64_t size, source next);
    asio::awaitable<void> put_stream(std::string_view name, std::uint64_t size, source next,
                                     blob_attributes attributes);

    // The object's bytes, or nullopt if there is none.
    asio::awaitable<std::optional<std::string>> get(std::string_view name);
    // The object's bytes and its manifest, of the same version.
    asio::awaitable<std::optional<blob>> get_blob(std::string_view name);
    // Hands the object's bytes to `out` in order and returns the manifest of the version it
    // read, or nullopt (and no call to `out`) if there is none. Never holds more than
    // max_bytes_in_flight of it.
    asio::awaitable<std::optional<blob_meta>> get_stream(std::string_view name, sink out);

    asio::awaitable<bool> exists(std::string_view name);
    asio::awaitable<std::optional<blob_meta>> stat(std::string_view name);
    // Deletes the object; false if there was none (the totals do not move).
    asio::awaitable<bool> erase(std::string_view name);
    asio::awaitable<blob_info> info();

    const blob_options& options() const noexcept { return options_; }
    // Key names, for tools and tests.
    std::string manifest_key(std::string_view name) const;
    std::string chunk_key(std::string_view name, std::uint64_t generation,
                          std::uint32_t index) const;
    std::string info_key() const { return options_.key_prefix + "info"; }
    // On a cluster without a tagged key_prefix: the totals of the objects of `slot`.
    std::string totals_key(std::uint16_t slot) const;

private:
    struct object_keys;
    struct opened;
    enum class read_outcome { complete, replaced };

    object_keys keys_for(std::string_view name) const;
    void check_size(const object_keys& keys, std::uint64_t size) const;
    asio::awaitable<std::uint64_t> next_generation();
    asio::awaitable<void> commit(const object_keys& keys, std::uint64_t generation,
                                 std::uint64_t size, const blob_attributes& attributes,
                                 std::optional<std::string_view> only_chunk);
    asio::awaitable<void>
    put_chunked(const object_keys& keys, std::uint64_t size, const blob_attributes& attributes,
                const std::function<asio::awaitable<std::string_view>(std::size_t)>& next_chunk);
    asio::awaitable<void> discard(const object_keys& keys, std::uint64_t generation,
                                  std::uint32_t chunks);
    asio::awaitable<std::optional<blob_meta>> read_manifest(const object_keys& keys,
                                                            bool cached = false);
    asio::awaitable<std::optional<blob_meta>> read(const object_keys& keys, const sink& out,
                                                   std::uint64_t& delivered);
    asio::awaitable<read_outcome> read_single(const object_keys& keys, const blob_meta& m,
                                              const sink& out, std::uint64_t& delivered);
    asio::awaitable<std::optional<opened>> open(const object_keys& keys);
    asio::awaitable<read_outcome> read_leased(const object_keys& keys, const opened& o,
                                              const sink& out, std::uint64_t& delivered);
    asio::awaitable<void> release(const object_keys& keys, const opened& o);
    // A chunk is gone: fine if a put or erase retired its generation, else corruption.
    asio::awaitable<void> check_replaced(const object_keys& keys, const blob_meta& m,
                                         std::uint32_t index);

    client& client_;
    blob_options options_;
    std::string reader_id_; // this store's part of its read lease tokens
    std::uint64_t reads_ = 0;
    std::uint64_t next_generation_ = 0; // the block of generations this store has taken
    std::uint64_t generation_limit_ = 0;
    bool sharded_totals_ = false; // totals per slot (cluster, key_prefix without a hash tag)
};

} // namespace akv::kv
