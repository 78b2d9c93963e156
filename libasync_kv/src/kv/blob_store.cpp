#include <akv/cluster_slot.hpp>
#include <akv/kv/blob_store.hpp>
#include <akv/script.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "lua_scripts.hpp"

namespace akv::kv {

namespace {

// Redis's default proto-max-bulk-len: no chunk may be longer.
constexpr std::size_t max_chunk_size = 512u << 20;
// Reads of a one-chunk object that a put replaced between its manifest and its chunk before
// the reader takes a lease; then lease after lease before a get gives up.
constexpr int optimistic_reads = 2;
constexpr int max_leased_reads = 3;
// Generations a store takes from <prefix>info at a time.
constexpr long long generation_block = 1024;

// Each script is blob_lib.lua (the helpers they share) followed by its own body.
const script& commit_script() {
    static const script s(lua::kv_blob_lib, lua::kv_blob_commit); // immutable after construction
    return s;
}
const script& erase_script() {
    static const script s(lua::kv_blob_lib, lua::kv_blob_erase);
    return s;
}
const script& open_script() {
    static const script s(lua::kv_blob_lib, lua::kv_blob_open);
    return s;
}
const script& renew_script() {
    static const script s(lua::kv_blob_lib, lua::kv_blob_renew);
    return s;
}
const script& release_script() {
    static const script s(lua::kv_blob_lib, lua::kv_blob_release);
    return s;
}

// For each cluster slot, a short string that hashes to it: "{<tag>}" puts a key on that slot.
const std::vector<std::string>& slot_tags() {
    static const std::vector<std::string> tags = [] {
        std::vector<std::string> t(cluster_slots);
        std::size_t missing = cluster_slots;
        for (std::uint64_t i = 0; missing > 0; ++i) {
            std::string candidate = std::to_string(i);
            std::string& slot = t[crc16(candidate) % cluster_slots];
            if (!slot.empty()) continue;
            slot = std::move(candidate);
            --missing;
        }
        return t;
    }();
    return tags;
}

std::uint32_t chunk_count(std::uint64_t size, std::uint64_t chunk_size) {
    return static_cast<std::uint32_t>(size == 0 ? 0 : (size - 1) / chunk_size + 1);
}

std::size_t chunk_length(std::uint64_t size, std::uint64_t chunk_size, std::uint32_t index) {
    return static_cast<std::size_t>(std::min(chunk_size, size - index * chunk_size));
}

std::string quoted(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

[[noreturn]] void corrupted(const std::string& key, const std::string& what) {
    throw_error(error::type_mismatch, "blob_store: corrupted manifest " + key + ": " + what);
}

// A Lua call of ours refused: a manifest it found corrupted is a type_mismatch, as when we
// parse one here; anything else a script_error. The scripts' messages name the key.
[[noreturn]] void script_failed(const std::string& what, const error_info& e) {
    const bool corrupt = e.message.find("blob_store: corrupted") != std::string::npos;
    throw_error(corrupt ? error::type_mismatch : error::script_error, what + ": " + e.message);
}

std::optional<std::uint64_t> to_unsigned(std::string_view text) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return n;
}

blob_meta parse_manifest(const std::string& key, const std::map<std::string, std::string>& fields) {
    auto number = [&](const std::string& field) {
        const auto it = fields.find(field);
        if (it == fields.end()) corrupted(key, "field \"" + field + "\" is missing");
        const auto n = to_unsigned(it->second);
        if (!n)
            corrupted(key, "field \"" + field + "\" is " + quoted(it->second) + ", not a number");
        return *n;
    };
    blob_meta m;
    m.size = number("size");
    m.chunk_size = number("chunk_size");
    m.generation = number("generation");
    const std::uint64_t chunks = number("chunks");
    if (m.size > 0 && m.chunk_size == 0) corrupted(key, "chunk_size is 0 for a non-empty object");
    const std::uint64_t expected = m.size == 0 ? 0 : (m.size - 1) / m.chunk_size + 1;
    if (chunks != expected)
        corrupted(key, "chunks is " + std::to_string(chunks) + ", but " + std::to_string(m.size) +
                           " bytes in chunks of " + std::to_string(m.chunk_size) + " make " +
                           std::to_string(expected));
    m.chunks = static_cast<std::uint32_t>(chunks);
    if (const auto it = fields.find("content_type"); it != fields.end())
        m.content_type = it->second;
    if (const auto it = fields.find("modified_ms"); it != fields.end()) {
        if (const auto ms = to_unsigned(it->second))
            m.modified = std::chrono::system_clock::time_point(std::chrono::milliseconds(*ms));
    }
    constexpr std::string_view user_prefix = "user:";
    for (const auto& [field, value] : fields)
        if (field.starts_with(user_prefix)) m.user.emplace(field.substr(user_prefix.size()), value);
    return m;
}

std::map<std::string, std::string> to_map(const std::vector<std::string>& flat) {
    std::map<std::string, std::string> fields;
    for (std::size_t i = 0; i + 1 < flat.size(); i += 2)
        fields.emplace(flat[i], flat[i + 1]);
    return fields;
}

std::string random_id() {
    std::random_device entropy;
    std::mt19937_64 gen((std::uint64_t(entropy()) << 32) ^ entropy());
    static constexpr char hex[] = "0123456789abcdef";
    std::string id;
    for (std::uint64_t v = gen(); id.size() < 16; v >>= 4)
        id += hex[v & 15];
    return id;
}

// The requests one put or get has in flight, shared with the coroutines that run them, so it
// lives as long as the last of them. All on one executor: no locks.
struct flight {
    explicit flight(const asio::any_io_executor& ex)
        : wake(ex, asio::steady_timer::time_point::max()) {}

    // Until one of the requests finishes (they cancel `wake`).
    asio::awaitable<void> next_event() {
        co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    void finished() {
        --requests;
        wake.cancel();
    }

    asio::steady_timer wake;
    std::size_t requests = 0;
    std::size_t bytes = 0;
    std::exception_ptr failure; // the first request that failed
    // Read ahead, by chunk index.
    std::vector<std::optional<std::string>> chunks;
    std::vector<bool> arrived;
};

asio::awaitable<void> write_chunk(client& c, std::shared_ptr<flight> f, request req,
                                  std::size_t bytes) {
    response<std::string> reply;
    try {
        co_await c.exec(req, reply);
        std::get<0>(reply).value(); // throws the server's error (OOM, ...)
    } catch (...) {
        if (!f->failure) f->failure = std::current_exception();
    }
    f->bytes -= bytes;
    f->finished();
}

asio::awaitable<void> read_chunk(client& c, std::shared_ptr<flight> f, std::string key,
                                 std::uint32_t index) {
    request req;
    req.push("GET", key);
    response<std::optional<std::string>> reply;
    try {
        co_await c.exec(req, reply);
        f->chunks[index] = std::move(std::get<0>(reply).value());
    } catch (...) {
        if (!f->failure) f->failure = std::current_exception();
    }
    f->arrived[index] = true;
    f->finished();
}

} // namespace

struct blob_store::object_keys {
    std::string name; // for messages
    std::string manifest;
    std::string readers;
    std::string chunk_base; // + "<generation>:<index>"
    std::string totals;     // the hash whose objects / bytes count this object

    std::string chunk(std::uint64_t generation, std::uint32_t index) const {
        return chunk_base + std::to_string(generation) + ":" + std::to_string(index);
    }
};

// An object opened for reading (lua/kv/blob_open.lua).
struct blob_store::opened {
    blob_meta meta;
    std::string token; // "<gen>:<token>" is its member of the readers zset
};

namespace {
std::array<std::string_view, 2> reader_keys(const std::string& manifest,
                                            const std::string& readers) {
    return {manifest, readers};
}
std::array<std::string_view, 3> writer_keys(const std::string& manifest, const std::string& readers,
                                            const std::string& info) {
    return {manifest, readers, info};
}
} // namespace

blob_store::blob_store(client& c, blob_options options)
    : client_(c)
    , options_(std::move(options))
    , reader_id_(random_id()) {
    // The Lua calls that change a manifest move the totals in the same step: on a cluster the
    // totals must be on the object's slot. A key_prefix with a hash tag of its own keeps the
    // whole store on one slot (and the one totals hash); otherwise each slot has its own.
    sharded_totals_ = c.get_config().topology == config::mode::cluster &&
                      hash_tag_of(options_.key_prefix).size() == options_.key_prefix.size();
    const auto bad = [](const std::string& what) {
        throw_error(error::invalid_config, "blob_options: " + what);
    };
    if (options_.chunk_size == 0 || options_.chunk_size > max_chunk_size)
        bad("chunk_size must be 1 to " + std::to_string(max_chunk_size) + " bytes, got " +
            std::to_string(options_.chunk_size));
    if (options_.max_object_size / options_.chunk_size >= std::numeric_limits<std::uint32_t>::max())
        bad("max_object_size " + std::to_string(options_.max_object_size) +
            " would take more than 2^32 chunks of " + std::to_string(options_.chunk_size));
    if (options_.read_lease.count() <= 0)
        bad("read_lease must be positive, got " + std::to_string(options_.read_lease.count()));
    if (options_.unfinished_put_ttl.count() <= 0)
        bad("unfinished_put_ttl must be positive, got " +
            std::to_string(options_.unfinished_put_ttl.count()));
}

blob_store::object_keys blob_store::keys_for(std::string_view name) const {
    if (name.empty()) throw std::invalid_argument("blob_store: an object name must not be empty");
    const std::string base = options_.key_prefix + "{" + std::string(name) + "}:";
    object_keys keys{std::string(name), base + "meta", base + "readers", base + "chunk:", {}};
    keys.totals = sharded_totals_ ? totals_key(cluster_slot(keys.manifest)) : info_key();
    return keys;
}

std::string blob_store::totals_key(std::uint16_t slot) const {
    return options_.key_prefix + "info:{" + slot_tags()[slot] + "}";
}

std::string blob_store::manifest_key(std::string_view name) const {
    return keys_for(name).manifest;
}

std::string blob_store::chunk_key(std::string_view name, std::uint64_t generation,
                                  std::uint32_t index) const {
    return keys_for(name).chunk(generation, index);
}

void blob_store::check_size(const object_keys& keys, std::uint64_t size) const {
    if (size > options_.max_object_size)
        throw_error(error::object_too_large,
                    "blob_store: " + quoted(keys.name) + " is " + std::to_string(size) +
                        " bytes, over max_object_size " + std::to_string(options_.max_object_size));
}

// ---- put ------------------------------------------------------------------------------------

asio::awaitable<std::uint64_t> blob_store::next_generation() {
    if (next_generation_ == generation_limit_) {
        // Two coroutines may both refill: each block is taken once, so no generation repeats.
        request req;
        req.push("HINCRBY", info_key(), "last_generation", generation_block);
        response<long long> resp;
        co_await client_.exec(req, resp);
        const auto last = static_cast<std::uint64_t>(std::get<0>(resp).value());
        next_generation_ = last - generation_block + 1;
        generation_limit_ = last + 1;
    }
    co_return next_generation_++;
}

asio::awaitable<void> blob_store::put(std::string_view name, std::string_view bytes) {
    return put(name, bytes, blob_attributes{});
}

asio::awaitable<void> blob_store::put(std::string_view name, std::string_view bytes,
                                      blob_attributes attributes) {
    const object_keys keys = keys_for(name);
    check_size(keys, bytes.size());
    if (bytes.size() <= options_.chunk_size) {
        const std::uint64_t generation = co_await next_generation();
        std::optional<std::string_view> only_chunk;
        if (!bytes.empty()) only_chunk = bytes;
        co_await commit(keys, generation, bytes.size(), attributes, only_chunk);
        co_return;
    }
    std::size_t offset = 0;
    const std::function<asio::awaitable<std::string_view>(std::size_t)> slices =
        [&](std::size_t length) -> asio::awaitable<std::string_view> {
        const std::string_view piece = bytes.substr(offset, length);
        offset += length;
        co_return piece;
    };
    co_await put_chunked(keys, bytes.size(), attributes, slices);
}

asio::awaitable<void> blob_store::put_stream(std::string_view name, std::uint64_t size,
                                             source next) {
    return put_stream(name, size, std::move(next), blob_attributes{});
}

asio::awaitable<void> blob_store::put_stream(std::string_view name, std::uint64_t size, source next,
                                             blob_attributes attributes) {
    const object_keys keys = keys_for(name);
    check_size(keys, size);
    // One chunk's worth, reused: the request copies each chunk before the next is pulled.
    std::string buffer(static_cast<std::size_t>(std::min<std::uint64_t>(size, options_.chunk_size)),
                       '\0');
    std::uint64_t pulled = 0;
    const std::function<asio::awaitable<std::string_view>(std::size_t)> fill =
        [&](std::size_t length) -> asio::awaitable<std::string_view> {
        std::size_t filled = 0;
        while (filled < length) {
            const std::size_t n =
                co_await next(std::span<char>(buffer.data() + filled, length - filled));
            if (n == 0 || n > length - filled)
                throw std::invalid_argument("blob_store: put_stream of " + quoted(keys.name) +
                                            ": the source gave " + std::to_string(n) +
                                            " bytes after " + std::to_string(pulled + filled) +
                                            " of the " + std::to_string(size) + " announced");
            filled += n;
        }
        pulled += length;
        co_return std::string_view(buffer.data(), length);
    };
    if (size <= options_.chunk_size) {
        std::optional<std::string_view> only_chunk;
        if (size > 0) only_chunk = co_await fill(static_cast<std::size_t>(size));
        const std::uint64_t generation = co_await next_generation();
        co_await commit(keys, generation, size, attributes, only_chunk);
        co_return;
    }
    co_await put_chunked(keys, size, attributes, fill);
}

asio::awaitable<void> blob_store::put_chunked(
    const object_keys& keys, std::uint64_t size, const blob_attributes& attributes,
    const std::function<asio::awaitable<std::string_view>(std::size_t)>& next_chunk) {
    const std::uint64_t generation = co_await next_generation();
    const std::uint32_t chunks = chunk_count(size, options_.chunk_size);
    const std::string ttl = std::to_string(options_.unfinished_put_ttl.count());
    const auto ex = co_await asio::this_coro::executor;
    auto f = std::make_shared<flight>(ex);
    std::exception_ptr failure;
    std::uint32_t started = 0;
    try {
        for (std::uint32_t i = 0; i < chunks && !f->failure; ++i) {
            const std::size_t length = chunk_length(size, options_.chunk_size, i);
            const std::string_view bytes = co_await next_chunk(length);
            while (f->requests > 0 && f->bytes + length > options_.max_bytes_in_flight)
                co_await f->next_event();
            request req;
            req.push("SET", keys.chunk(generation, i), bytes, "PX", ttl);
            f->bytes += length;
            ++f->requests;
            ++started;
            asio::co_spawn(ex, write_chunk(client_, f, std::move(req), length), asio::detached);
        }
    } catch (...) {
        failure = std::current_exception();
    }
    while (f->requests > 0)
        co_await f->next_event();
    if (!failure) failure = f->failure;
    if (!failure) {
        try {
            co_await commit(keys, generation, size, attributes, std::nullopt);
            co_return;
        } catch (...) {
            failure = std::current_exception();
        }
    }
    co_await discard(keys, generation, started);
    std::rethrow_exception(failure);
}

asio::awaitable<void> blob_store::commit(const object_keys& keys, std::uint64_t generation,
                                         std::uint64_t size, const blob_attributes& attributes,
                                         std::optional<std::string_view> only_chunk) {
    const std::string gen = std::to_string(generation);
    const std::string size_text = std::to_string(size);
    const std::string chunks_text = std::to_string(chunk_count(size, options_.chunk_size));
    const std::string chunk_size_text = std::to_string(options_.chunk_size);
    const std::string user_pairs = std::to_string(attributes.user.size());
    std::vector<std::string_view> args;
    args.reserve(7 + 2 * attributes.user.size());
    args.push_back(keys.chunk_base);
    args.push_back(gen);
    args.push_back(size_text);
    args.push_back(chunks_text);
    args.push_back(chunk_size_text);
    args.push_back(attributes.content_type);
    args.push_back(user_pairs);
    for (const auto& [key, value] : attributes.user) {
        args.push_back(key);
        args.push_back(value);
    }
    const auto script_keys = writer_keys(keys.manifest, keys.readers, keys.totals);

    // A one-chunk object: its chunk and the commit in one request.
    script_request req;
    if (only_chunk)
        req.push("SET", keys.chunk(generation, 0), *only_chunk, "PX",
                 options_.unfinished_put_ttl.count());
    req.call(commit_script(), script_keys, args);
    generic_response replies;
    co_await req.run(client_, replies);
    if (only_chunk && replies.front().has_error()) {
        co_await discard(keys, generation, 1);
        throw_error(error::server_error, "blob_store: put of " + quoted(keys.name) + ": SET " +
                                             keys.chunk(generation, 0) + ": " +
                                             replies.front().error().message);
    }
    const result<resp::value>& outcome = replies.back();
    if (outcome.has_error()) {
        co_await discard(keys, generation, only_chunk ? 1 : 0);
        script_failed("blob_store: put of " + quoted(keys.name), outcome.error());
    }
}

asio::awaitable<void> blob_store::discard(const object_keys& keys, std::uint64_t generation,
                                          std::uint32_t chunks) {
    // Best effort: what this misses expires after unfinished_put_ttl.
    constexpr std::uint32_t per_request = 512;
    for (std::uint32_t first = 0; first < chunks; first += per_request) {
        std::vector<std::string> names;
        for (std::uint32_t i = first; i < std::min(chunks, first + per_request); ++i)
            names.push_back(keys.chunk(generation, i));
        request req;
        req.push("UNLINK", names);
        auto [ec, n] = co_await client_.exec(req, ignore, asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
    }
}

// ---- get ------------------------------------------------------------------------------------

asio::awaitable<std::optional<blob_meta>> blob_store::read_manifest(const object_keys& keys,
                                                                    bool cached) {
    request::options o;
    o.cache = cached; // stat: through the client's cache, if it has one
    request req(o);
    req.push("HGETALL", keys.manifest);
    response<std::map<std::string, std::string>> resp;
    co_await client_.exec(req, resp);
    auto& r = std::get<0>(resp);
    if (r.has_error()) corrupted(keys.manifest, r.error().message); // WRONGTYPE: not a hash
    if (r.value().empty()) co_return std::nullopt;
    co_return parse_manifest(keys.manifest, r.value());
}

asio::awaitable<std::optional<blob_meta>> blob_store::read(const object_keys& keys, const sink& out,
                                                           std::uint64_t& delivered) {
    // An object of one chunk: its manifest, then its chunk, no lease. If a put retired the
    // chunk in between, read the new version.
    for (int attempt = 0; attempt < optimistic_reads; ++attempt) {
        std::optional<blob_meta> m = co_await read_manifest(keys);
        if (!m) co_return std::nullopt;
        if (m->chunks > 1) break;
        if (co_await read_single(keys, *m, out, delivered) == read_outcome::complete) co_return m;
    }
    // A larger object, or one replaced under the reader again and again: under a lease.
    for (int attempt = 1;; ++attempt) {
        std::optional<opened> o = co_await open(keys);
        if (!o) co_return std::nullopt;
        if (co_await read_leased(keys, *o, out, delivered) == read_outcome::complete)
            co_return std::move(o->meta);
        if (delivered > 0 || attempt == max_leased_reads)
            throw_error(error::timeout,
                        "blob_store: get of " + quoted(keys.name) + ": generation " +
                            std::to_string(o->meta.generation) + " was replaced and its chunks " +
                            "deleted after " + std::to_string(delivered) + " of " +
                            std::to_string(o->meta.size) +
                            " bytes were delivered (the reader outlived its read_lease of " +
                            std::to_string(options_.read_lease.count()) + " ms)");
    }
}

asio::awaitable<void> blob_store::check_replaced(const object_keys& keys, const blob_meta& m,
                                                 std::uint32_t index) {
    request req;
    req.push("HGET", keys.manifest, "generation");
    response<std::optional<std::string>> current;
    co_await client_.exec(req, current);
    if (std::get<0>(current).value() == std::to_string(m.generation))
        corrupted(keys.manifest, "its chunk " + keys.chunk(m.generation, index) + " is missing");
}

asio::awaitable<blob_store::read_outcome> blob_store::read_single(const object_keys& keys,
                                                                  const blob_meta& m,
                                                                  const sink& out,
                                                                  std::uint64_t& delivered) {
    if (m.chunks == 0) co_return read_outcome::complete;
    const std::string key = keys.chunk(m.generation, 0);
    request req;
    req.push("GET", key);
    response<std::optional<std::string>> resp;
    co_await client_.exec(req, resp);
    const std::optional<std::string>& bytes = std::get<0>(resp).value();
    if (!bytes) {
        co_await check_replaced(keys, m, 0);
        co_return read_outcome::replaced;
    }
    if (bytes->size() != m.size)
        corrupted(keys.manifest, "its chunk " + key + " holds " + std::to_string(bytes->size()) +
                                     " bytes, expected " + std::to_string(m.size));
    co_await out(*bytes);
    delivered += bytes->size();
    co_return read_outcome::complete;
}

asio::awaitable<std::optional<blob_store::opened>> blob_store::open(const object_keys& keys) {
    opened o;
    o.token = reader_id_ + "-" + std::to_string(++reads_);
    const std::string lease = std::to_string(options_.read_lease.count());
    std::vector<std::string_view> args;
    args.push_back(lease);
    args.push_back(o.token);
    const auto script_keys = reader_keys(keys.manifest, keys.readers);
    response<std::optional<std::tuple<std::vector<std::string>, long long>>> resp;
    co_await open_script().run(client_, script_keys, args, resp);
    auto& r = std::get<0>(resp);
    if (r.has_error()) script_failed("blob_store: get of " + quoted(keys.name), r.error());
    if (!r.value()) co_return std::nullopt;
    o.meta = parse_manifest(keys.manifest, to_map(std::get<0>(**r)));
    co_return o;
}

asio::awaitable<blob_store::read_outcome> blob_store::read_leased(const object_keys& keys,
                                                                  const opened& o, const sink& out,
                                                                  std::uint64_t& delivered) {
    // The lease keeps the chunks there; if they are gone anyway (it ran out while the object
    // was replaced), the read is lost, never torn.
    const blob_meta& m = o.meta;
    const auto ex = co_await asio::this_coro::executor;
    auto f = std::make_shared<flight>(ex);
    f->chunks.resize(m.chunks);
    f->arrived.assign(m.chunks, false);
    const std::uint64_t window = std::max<std::uint64_t>(
        1, options_.max_bytes_in_flight / std::max<std::uint64_t>(1, m.chunk_size));
    const std::string gen = std::to_string(m.generation);
    const std::string chunks_text = std::to_string(m.chunks);
    const std::string lease = std::to_string(options_.read_lease.count());
    auto renewed = std::chrono::steady_clock::now();
    read_outcome outcome = read_outcome::complete;
    std::exception_ptr failure;
    std::uint32_t requested = 0;
    try {
        for (std::uint32_t i = 0; i < m.chunks; ++i) {
            while (requested < m.chunks && requested - i < window) {
                ++f->requests;
                asio::co_spawn(
                    ex, read_chunk(client_, f, keys.chunk(m.generation, requested), requested),
                    asio::detached);
                ++requested;
            }
            while (!f->arrived[i] && !f->failure)
                co_await f->next_event();
            if (f->failure) std::rethrow_exception(f->failure);
            const std::optional<std::string> bytes = std::move(f->chunks[i]);
            f->chunks[i].reset();
            if (!bytes) {
                co_await check_replaced(keys, m, i);
                outcome = read_outcome::replaced;
                break;
            }
            const std::size_t expected = chunk_length(m.size, m.chunk_size, i);
            if (bytes->size() != expected)
                corrupted(keys.manifest, "its chunk " + keys.chunk(m.generation, i) + " holds " +
                                             std::to_string(bytes->size()) + " bytes, expected " +
                                             std::to_string(expected));
            if (std::chrono::steady_clock::now() - renewed > options_.read_lease / 3) {
                std::vector<std::string_view> args;
                args.push_back(keys.chunk_base);
                args.push_back(gen);
                args.push_back(chunks_text);
                args.push_back(o.token);
                args.push_back(lease);
                const auto script_keys = reader_keys(keys.manifest, keys.readers);
                response<long long> resp;
                co_await renew_script().run(client_, script_keys, args, resp);
                // A lost lease (0) only matters if a chunk is gone, which the GETs tell.
                if (std::get<0>(resp).has_error())
                    script_failed("blob_store: get of " + quoted(keys.name),
                                  std::get<0>(resp).error());
                renewed = std::chrono::steady_clock::now();
            }
            co_await out(*bytes);
            delivered += expected;
        }
    } catch (...) {
        failure = std::current_exception();
    }
    while (f->requests > 0)
        co_await f->next_event();
    co_await release(keys, o);
    if (failure) std::rethrow_exception(failure);
    co_return outcome;
}

asio::awaitable<void> blob_store::release(const object_keys& keys, const opened& o) {
    // Best effort: a lease not released ends on its own after read_lease.
    const std::string gen = std::to_string(o.meta.generation);
    const std::string chunks_text = std::to_string(o.meta.chunks);
    std::vector<std::string_view> args;
    args.push_back(keys.chunk_base);
    args.push_back(gen);
    args.push_back(chunks_text);
    args.push_back(o.token);
    const auto script_keys = reader_keys(keys.manifest, keys.readers);
    response<ignore_t> resp;
    try {
        co_await release_script().run(client_, script_keys, args, resp);
    } catch (const boost::system::system_error&) {
    }
}

asio::awaitable<std::optional<std::string>> blob_store::get(std::string_view name) {
    std::optional<blob> b = co_await get_blob(name);
    if (!b) co_return std::nullopt;
    co_return std::move(b->bytes);
}

asio::awaitable<std::optional<blob>> blob_store::get_blob(std::string_view name) {
    const object_keys keys = keys_for(name);
    blob out;
    const sink append = [&out](std::string_view piece) -> asio::awaitable<void> {
        if (out.bytes.empty()) out.bytes.reserve(piece.size()); // a one-chunk object: exact
        out.bytes.append(piece);
        co_return;
    };
    std::uint64_t delivered = 0;
    std::optional<blob_meta> meta = co_await read(keys, append, delivered);
    if (!meta) co_return std::nullopt;
    out.meta = std::move(*meta);
    co_return std::move(out);
}

asio::awaitable<std::optional<blob_meta>> blob_store::get_stream(std::string_view name, sink out) {
    const object_keys keys = keys_for(name);
    std::uint64_t delivered = 0;
    co_return co_await read(keys, out, delivered);
}

// ---- the rest -------------------------------------------------------------------------------

asio::awaitable<bool> blob_store::exists(std::string_view name) {
    const object_keys keys = keys_for(name);
    request req;
    req.push("EXISTS", keys.manifest);
    response<long long> resp;
    co_await client_.exec(req, resp);
    co_return std::get<0>(resp).value() == 1;
}

asio::awaitable<std::optional<blob_meta>> blob_store::stat(std::string_view name) {
    const object_keys keys = keys_for(name);
    co_return co_await read_manifest(keys, true);
}

asio::awaitable<bool> blob_store::erase(std::string_view name) {
    const object_keys keys = keys_for(name);
    std::vector<std::string_view> args;
    args.push_back(keys.chunk_base);
    const auto script_keys = writer_keys(keys.manifest, keys.readers, keys.totals);
    response<long long> resp;
    co_await erase_script().run(client_, script_keys, args, resp);
    const auto& r = std::get<0>(resp);
    if (r.has_error()) script_failed("blob_store: erase of " + quoted(keys.name), r.error());
    co_return r.value() == 1;
}

asio::awaitable<blob_info> blob_store::info() {
    // One hash, or on a cluster without a tagged key_prefix one per slot: all in one
    // pipeline, which the client splits per node.
    const std::string key = sharded_totals_ ? options_.key_prefix + "info:{*}" : info_key();
    request req;
    if (sharded_totals_) {
        for (std::uint32_t slot = 0; slot < cluster_slots; ++slot)
            req.push("HMGET", totals_key(static_cast<std::uint16_t>(slot)), "objects", "bytes");
    } else {
        req.push("HMGET", key, "objects", "bytes");
    }
    generic_response resp;
    co_await client_.exec(req, resp);
    blob_info totals;
    for (auto& r : resp) {
        if (r.has_error())
            throw_error(error::type_mismatch, "blob_store: " + key + ": " + r.error().message);
        const auto& fields = r.value().elements;
        const auto field = [&](std::size_t i, const char* name) -> std::uint64_t {
            if (fields.size() <= i || fields[i].is_null()) return 0;
            const auto n = to_unsigned(fields[i].str);
            if (!n)
                throw_error(error::type_mismatch, "blob_store: " + key + ": field \"" + name +
                                                      "\" is " + quoted(fields[i].str) +
                                                      ", not a count");
            return *n;
        };
        totals.objects += field(0, "objects");
        totals.bytes += field(1, "bytes");
    }
    co_return totals;
}

} // namespace akv::kv
