// akv::kv::model_registry: versioned models (a directory of files plus JSON metadata) kept in
// Redis as tar.gz archives, with tags and a `latest` pointer (SKOL's model persistence).
//
//   akv::kv::model_registry reg = co_await akv::kv::model_registry::open(client, "skol");
//   if (!reg.current()) {                                   // nothing saved yet: train
//       akv::kv::model m = akv::kv::read_directory("/models/skol");   // or fill m.files
//       m.metadata = R"({"labels":["Nomenclature","Description"]})";
//       std::uint64_t v = co_await reg.save(m);             // "skol:v1", latest -> 1
//   }
//   akv::kv::write_directory(*reg.current(), "/tmp/skol");  // back to disk
//   co_await reg.tag("production", 1);
//   akv::kv::model prod = co_await reg.load("production");  // or "latest", "v1"
//
// Layout, for key_prefix "model:" and the model "skol":
//
//   model:{skol}:next_version      string  the last version number handed out (INCR)
//   model:{skol}:latest            string  the latest version number; absent when none
//   model:{skol}:versions          zset    version -> version, the versions that exist
//   model:{skol}:v:<n>             hash    metadata (JSON text), archive_size, files,
//                                          unpacked_size, created_ms (server time)
//   model:{skol}:tags              hash    tag -> version
//   model:{skol}:blob:{v<n>}:...   the archive of version n, in a blob_store whose key_prefix
//                                  is model:{skol}:blob: (chunked past blob_options.chunk_size)
//
// Every key carries the hash tag {skol}, so on a Redis Cluster a model lives on one slot and
// the Lua calls that move `latest` (lua/kv/registry_*.lua) touch only that slot.
//
// The archive is a gzip-compressed POSIX tar (libarchive) of the model's files with relative
// paths, and an entry for each directory (so empty ones survive): `tar xzf` unpacks it. The
// metadata is kept beside the archive, not in it, so listing versions reads no archive.
//
// A save packs the archive, refuses it before anything is sent if it is larger than
// blob_options.max_object_size, takes a version number, stores the archive, and only then, in
// one Lua call, records the version and moves `latest` to it (never backwards, if a
// concurrent save of a higher version got there first). A save that fails anywhere leaves
// `latest` and every existing version as they were; at worst a version number is skipped.
//
// Errors: system_error with error::not_found (no such model, version or tag; the message
// names the model and the reference), error::corrupt_archive (stored bytes that do not unpack:
// not gzip, a damaged tar, an entry with an absolute or ".." path, more than
// max_unpacked_size bytes), error::object_too_large (an archive over the size limit; nothing
// is changed), and what blob_store and the client throw. Invalid names (empty, with '{' or
// '}') and tags ("latest", "v<n>", empty) are std::invalid_argument.
//
// A model_registry is cheap and any number of them, in any process, may share a model's keys.
// It is used from its client's executor; the client must outlive the registry's operations.
#pragma once

#include <akv/client.hpp>
#include <akv/kv/blob_store.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace akv::kv {

// A model's contents: files by relative path ('/' separated), the directories among them (empty
// ones included), and its metadata as JSON text.
struct model {
    std::map<std::string, std::string> files;
    std::set<std::string> directories;
    std::string metadata = "{}";
    std::uint64_t version = 0; // set by save and load; 0 for a model not from the registry
};

// One version, as listed: what a save recorded beside the archive.
struct model_version {
    std::uint64_t version = 0;
    std::string metadata; // JSON text, as saved
    std::uint64_t archive_size = 0;
    std::uint64_t files = 0;
    std::uint64_t unpacked_size = 0;               // the files' bytes
    std::chrono::system_clock::time_point created; // the server's clock, at the commit
    std::vector<std::string> tags;                 // tags pointing to it, sorted
};

struct model_registry_options {
    std::string key_prefix = "model:";
    // The archives' store; its key_prefix is replaced by <key_prefix>{name}:blob:.
    // max_object_size bounds the compressed archive.
    blob_options blobs;
    // Loads refuse archives that unpack to more than this (a bound against gzip bombs).
    std::uint64_t max_unpacked_size = 16ull << 30;
    int compression_level = 6; // gzip, 1 (fast) to 9 (small)
};

class model_registry {
public:
    // Throws std::invalid_argument for a bad name, system_error(invalid_config) for bad options.
    model_registry(client& c, std::string name, model_registry_options options = {});

    // The auto-loading constructor: a registry for `name` whose current() is its latest
    // version if the model exists, empty otherwise.
    static asio::awaitable<model_registry> open(client& c, std::string name);
    static asio::awaitable<model_registry> open(client& c, std::string name,
                                                model_registry_options options);

    // The model the last open, load or save produced.
    const std::optional<model>& current() const noexcept { return current_; }

    // Stores `m` as a new version and moves `latest` to it; returns the version number.
    asio::awaitable<std::uint64_t> save(const model& m);
    // Migration disk -> Redis: read_directory(dir) with `metadata` (JSON text), saved.
    asio::awaitable<std::uint64_t> save_directory(const std::filesystem::path& dir,
                                                  std::string metadata);

    // The version `ref` names: "latest", "v<n>", "<name>:v<n>", or a tag. Throws not_found.
    asio::awaitable<model> load();
    asio::awaitable<model> load(std::string_view ref);
    // load(ref), then write_directory into `dir`.
    asio::awaitable<model> load_to_directory(std::string_view ref,
                                             const std::filesystem::path& dir);

    // Whether any version exists.
    asio::awaitable<bool> exists();
    asio::awaitable<std::optional<std::uint64_t>> latest();
    // The version `ref` names, or nullopt.
    asio::awaitable<std::optional<std::uint64_t>> resolve(std::string_view ref);
    // The keys whose change may change what `ref` resolves to. With the client's cache on
    // (config::cache), latest() and resolve() read through it, so the server announces their
    // change (client::add_invalidation_listener): resolve again then, instead of polling.
    std::vector<std::string> watched_keys(std::string_view ref) const;
    // What every key of the registry of model `name` starts with (for config::cache.prefixes,
    // broadcast mode).
    static std::string key_prefix(std::string_view name,
                                  const model_registry_options& options = {});
    // All versions, oldest first, with their metadata and tags.
    asio::awaitable<std::vector<model_version>> versions();

    // Points `tag` at `version` (moving it if it pointed elsewhere); not_found if no such version.
    asio::awaitable<void> tag(std::string_view tag, std::uint64_t version);
    asio::awaitable<bool> untag(std::string_view tag);
    asio::awaitable<std::map<std::string, std::uint64_t>> tags();

    // Deletes a version, its archive and the tags pointing to it; if it was the latest,
    // `latest` moves to the highest remaining version. False if there was no such version.
    asio::awaitable<bool> erase(std::uint64_t version);

    const std::string& name() const noexcept { return name_; }
    // "<name>:v<n>", how a version is named to users.
    std::string version_name(std::uint64_t version) const;
    // Key names, for tools and tests.
    std::string key(std::string_view suffix) const; // <key_prefix>{name}:<suffix>
    blob_store& archives() noexcept { return blobs_; }
    static std::string archive_name(std::uint64_t version); // the blob's name: "v<n>"

private:
    static model_registry_options with_blob_prefix(const std::string& name,
                                                   model_registry_options options);
    asio::awaitable<model> load_version(std::uint64_t version, std::string_view ref);

    client& client_;
    std::string name_;
    model_registry_options options_;
    blob_store blobs_;
    std::optional<model> current_;
};

// A directory on disk as a model (metadata "{}"): regular files and directories, recursively.
// Throws std::invalid_argument for a path that is not a directory or holds other file types
// (symlinks, devices), and std::filesystem::filesystem_error for I/O failures.
model read_directory(const std::filesystem::path& dir);
// Writes the model's directories and files under `dir` (created if missing; files replaced).
void write_directory(const model& m, const std::filesystem::path& dir);

} // namespace akv::kv
