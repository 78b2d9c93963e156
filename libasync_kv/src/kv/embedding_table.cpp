#include <akv/kv/embedding_table.hpp>

#include <akv/kv/detail/command.hpp>
#include <akv/resp/parser.hpp>
#include <akv/script.hpp>

#include "lua_scripts.hpp"

#include <openssl/evp.h>

#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>

namespace akv::kv {

static_assert(std::endian::native == std::endian::little,
              "embedding_table stores the host's float32 bytes as little-endian");

namespace {

// Keys per pipelined request: enough to hide the round trip, few enough to bound its memory.
constexpr std::size_t keys_per_request = 64 * 1024;

std::uint64_t fnv1a64(std::string_view bytes) {
    std::uint64_t h = 14695981039346656037ull;
    for (unsigned char c : bytes) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

std::string md5_hex(std::string_view text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_md5(), nullptr) != 1)
        throw_error(error::invalid_config, "kv: embedding_table: md5 unavailable");
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
}

std::string encode_int(std::int64_t k) {
    std::string out(8, '\0');
    std::memcpy(out.data(), &k, 8);
    return out;
}

std::string_view key_bytes(const std::string& k) {
    return k;
}

std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void fill_initial(const embedding_initializer& init, std::string_view field, float* out,
                  std::size_t dim) {
    switch (init.type) {
    case embedding_initializer::kind::zeros:
        std::fill(out, out + dim, 0.0f);
        break;
    case embedding_initializer::kind::constant:
        std::fill(out, out + dim, init.value);
        break;
    case embedding_initializer::kind::random_normal: {
        std::mt19937_64 gen(splitmix64(init.seed ^ fnv1a64(field)));
        std::normal_distribution<float> dist(init.mean, init.stddev);
        for (std::size_t i = 0; i < dim; ++i)
            out[i] = dist(gen);
        break;
    }
    }
}

long long integer_of(const result<resp::value>& r, std::string_view key, std::string_view cmd) {
    if (r.has_error()) detail::throw_reply_error(r.error(), key, cmd);
    const auto& v = r.value();
    if (v.is_null()) return 0;
    return std::stoll(v.str);
}

[[noreturn]] void throw_file_error(const std::string& path, const std::string& what) {
    throw boost::system::system_error(make_error_code(boost::system::errc::io_error),
                                      "kv: embedding_table: " + path + ": " + what);
}

// Where the HMGET replies of one request go: straight into the caller's rows.
struct find_sink {
    std::vector<const std::uint32_t*> rows; // per command of the request: its key indices
    std::vector<std::size_t> counts;
    std::vector<const std::string*> bucket; // per command, for messages
    float* out = nullptr;
    std::vector<bool>* found = nullptr;
    std::size_t dim = 0;
    std::optional<error_info> error;
    std::string error_key;

    static void on_reply(void* self, std::size_t index, std::span<const resp::node> nodes,
                         std::string_view message) {
        auto& s = *static_cast<find_sink*>(self);
        if (s.error || index >= s.rows.size() || nodes.empty()) return;
        const resp::node& top = nodes.front();
        if (resp::is_error(top.data_type)) {
            s.error =
                error_info{make_error_code(error::server_error), std::string(top.value(message))};
            s.error_key = *s.bucket[index];
            return;
        }
        const std::size_t width = s.dim * sizeof(float);
        std::size_t element = 0;
        for (std::size_t n = 1; n < nodes.size(); ++n) {
            const resp::node& e = nodes[n];
            if (e.depth != 1) continue;
            if (element >= s.counts[index]) break;
            const std::uint32_t row = s.rows[index][element++];
            if (e.data_type == resp::type::null) continue;
            const std::string_view bytes = e.value(message);
            if (bytes.size() != width) {
                s.error = error_info{make_error_code(error::type_mismatch),
                                     "HMGET: an embedding of " + std::to_string(bytes.size()) +
                                         " bytes, expected " + std::to_string(width)};
                s.error_key = *s.bucket[index];
                return;
            }
            std::memcpy(s.out + std::size_t(row) * s.dim, bytes.data(), width);
            (*s.found)[row] = true;
        }
    }
};

const script& accumulate_script() {
    static const script s(lua::kv_embedding_accumulate);
    return s;
}

} // namespace

template <class K> struct embedding_table<K>::plan {
    std::span<const K> keys;
    std::string int_fields; // int64 keys: 8 bytes each, in key order
    std::vector<std::uint32_t> order;
    struct command {
        std::size_t bucket;
        std::size_t begin; // into order
        std::size_t end;
    };
    std::vector<command> commands;
};

template <class K>
embedding_table<K>::embedding_table(client& c, std::string_view name, std::size_t dimension,
                                    const tfra_options& options, const key_schema& schema)
    : client_(&c)
    , name_(name)
    , dim_(dimension)
    , options_(options) {
    const std::string where = "kv: embedding_table \"" + name_ + "\": ";
    if (dim_ == 0) throw_error(error::invalid_config, where + "dimension must be at least 1");
    if (options_.storage_slice < 1) {
        throw_error(error::invalid_config, where + "storage_slice must be at least 1, got " +
                                               std::to_string(options_.storage_slice));
    }
    if (options_.keys_sending_size == 0)
        throw_error(error::invalid_config, where + "keys_sending_size must be at least 1");
    if (options_.table_store_mode < 0 || options_.table_store_mode > 2) {
        throw_error(error::invalid_config, where + "table_store_mode must be 0, 1 or 2, got " +
                                               std::to_string(options_.table_store_mode));
    }
    auto base_of = [&](const std::string& tag) {
        std::string base = name_ + "_" + tag;
        return options_.using_md5_prefix_name ? md5_hex(base) : base;
    };
    auto buckets_of = [&](const std::string& base) {
        std::vector<std::string> out;
        for (int b = 0; b < options_.storage_slice; ++b)
            out.push_back(schema.prefix() + "{" + base + "_" + std::to_string(b) + "}");
        return out;
    };
    base_ = base_of(options_.model_tag_new);
    buckets_ = buckets_of(base_);
    old_buckets_ = buckets_of(base_of(options_.model_tag_old));
}

template <class K> std::size_t embedding_table<K>::bucket_of(const K& key) const {
    if constexpr (std::is_same_v<K, std::int64_t>) {
        return fnv1a64(encode_int(key)) % buckets_.size();
    } else {
        return fnv1a64(key) % buckets_.size();
    }
}

template <class K> std::int64_t embedding_table<K>::expiry_seconds() const noexcept {
    if (options_.model_tag_old == options_.model_tag_new) return 0;
    return options_.expire_model_tag_in_seconds > 0 ? options_.expire_model_tag_in_seconds : 0;
}

template <class K>
std::string_view embedding_table<K>::field(const plan& p, std::size_t key_index) const {
    if constexpr (std::is_same_v<K, std::int64_t>) {
        return std::string_view(p.int_fields).substr(key_index * 8, 8);
    } else {
        return key_bytes(p.keys[key_index]);
    }
}

template <class K>
typename embedding_table<K>::plan embedding_table<K>::make_plan(std::span<const K> keys) const {
    plan p;
    p.keys = keys;
    if constexpr (std::is_same_v<K, std::int64_t>) {
        p.int_fields.resize(keys.size() * 8);
        std::memcpy(p.int_fields.data(), keys.data(), keys.size() * 8);
    }
    const std::size_t nb = buckets_.size();
    std::vector<std::uint32_t> bucket(keys.size());
    std::vector<std::size_t> start(nb + 1, 0);
    for (std::size_t i = 0; i < keys.size(); ++i) {
        bucket[i] = static_cast<std::uint32_t>(fnv1a64(field(p, i)) % nb);
        ++start[bucket[i] + 1];
    }
    for (std::size_t b = 0; b < nb; ++b)
        start[b + 1] += start[b];
    p.order.resize(keys.size());
    std::vector<std::size_t> next(start.begin(), start.end() - 1);
    for (std::size_t i = 0; i < keys.size(); ++i)
        p.order[next[bucket[i]]++] = static_cast<std::uint32_t>(i);
    const std::size_t chunk = options_.keys_sending_size;
    for (std::size_t b = 0; b < nb; ++b) {
        for (std::size_t from = start[b]; from < start[b + 1]; from += chunk)
            p.commands.push_back({b, from, std::min(from + chunk, start[b + 1])});
    }
    return p;
}

template <class K>
asio::awaitable<void> embedding_table<K>::run_checked(const request& req,
                                                      std::string_view command) {
    generic_response resp;
    co_await client_->exec(req, resp);
    for (const auto& r : resp) {
        if (r.has_error()) detail::throw_reply_error(r.error(), base_, command);
    }
}

template <class K> asio::awaitable<std::size_t> embedding_table<K>::open() {
    if (options_.model_tag_old == options_.model_tag_new) co_return 0;
    request exists;
    for (const auto& k : buckets_)
        exists.push("EXISTS", k);
    generic_response held;
    co_await client_->exec(exists, held);
    for (const auto& r : held) {
        if (integer_of(r, base_, "EXISTS") != 0) co_return 0; // the new tag has data already
    }
    const std::int64_t ttl_ms = expiry_seconds() * 1000;
    std::size_t copied = 0;
    for (std::size_t b = 0; b < buckets_.size(); ++b) {
        request dump;
        dump.push("DUMP", old_buckets_[b]);
        response<std::optional<std::string>> payload;
        co_await client_->exec(dump, payload);
        auto bytes = detail::take(std::get<0>(payload), old_buckets_[b], "DUMP");
        if (!bytes) continue;
        request restore;
        restore.push("RESTORE", buckets_[b], ttl_ms, *bytes, "REPLACE");
        co_await run_checked(restore, "RESTORE");
        ++copied;
    }
    co_return copied;
}

template <class K>
asio::awaitable<std::vector<float>> embedding_table<K>::find(std::span<const K> keys,
                                                             embedding_initializer init) {
    std::vector<float> out(keys.size() * dim_);
    std::vector<bool> found;
    co_await find_into(keys, init, out, found);
    co_return out;
}

template <class K>
asio::awaitable<void>
embedding_table<K>::find_into(std::span<const K> keys, embedding_initializer init,
                              std::span<float> out, std::vector<bool>& found) {
    if (out.size() != keys.size() * dim_) {
        throw_error(error::invalid_config, "kv: embedding_table \"" + name_ + "\": find of " +
                                               std::to_string(keys.size()) + " keys into " +
                                               std::to_string(out.size()) + " floats");
    }
    found.assign(keys.size(), false);
    const plan p = make_plan(keys);
    std::size_t c = 0;
    request::options cached;
    cached.cache = true; // hot keys from the client's cache (if it has one): no round trip
    while (c < p.commands.size()) {
        request req(cached);
        find_sink sink;
        sink.out = out.data();
        sink.found = &found;
        sink.dim = dim_;
        std::vector<std::string_view> fields;
        std::size_t in_request = 0;
        for (; c < p.commands.size() && in_request < keys_per_request; ++c) {
            const auto& cmd = p.commands[c];
            fields.clear();
            for (std::size_t i = cmd.begin; i < cmd.end; ++i)
                fields.push_back(field(p, p.order[i]));
            req.push("HMGET", buckets_[cmd.bucket], fields);
            sink.rows.push_back(p.order.data() + cmd.begin);
            sink.counts.push_back(cmd.end - cmd.begin);
            sink.bucket.push_back(&buckets_[cmd.bucket]);
            in_request += cmd.end - cmd.begin;
        }
        akv::detail::reply_adapter adapter{&sink, &find_sink::on_reply, sink.rows.size()};
        if (!client_->try_cached(req, adapter)) co_await client_->exec(req, adapter);
        if (sink.error) detail::throw_reply_error(*sink.error, sink.error_key, "HMGET");
    }
    for (std::size_t i = 0; i < keys.size(); ++i) {
        if (found[i]) continue;
        std::string_view f;
        std::string encoded;
        if constexpr (std::is_same_v<K, std::int64_t>) {
            encoded = encode_int(keys[i]);
            f = encoded;
        } else {
            f = keys[i];
        }
        fill_initial(init, f, out.data() + i * dim_, dim_);
    }
}

template <class K>
asio::awaitable<void> embedding_table<K>::insert(std::span<const K> keys,
                                                 std::span<const float> values) {
    if (values.size() != keys.size() * dim_) {
        throw_error(error::invalid_config, "kv: embedding_table \"" + name_ + "\": insert of " +
                                               std::to_string(keys.size()) + " keys with " +
                                               std::to_string(values.size()) + " floats");
    }
    const plan p = make_plan(keys);
    const std::int64_t ttl = expiry_seconds();
    const std::size_t width = dim_ * sizeof(float);
    const char* bytes = reinterpret_cast<const char*>(values.data());
    std::size_t c = 0;
    while (c < p.commands.size()) {
        request req;
        std::vector<std::string_view> args;
        std::size_t in_request = 0;
        for (; c < p.commands.size() && in_request < keys_per_request; ++c) {
            const auto& cmd = p.commands[c];
            args.clear();
            for (std::size_t i = cmd.begin; i < cmd.end; ++i) {
                const std::uint32_t row = p.order[i];
                args.push_back(field(p, row));
                args.emplace_back(bytes + std::size_t(row) * width, width);
            }
            req.push("HSET", buckets_[cmd.bucket], args);
            if (ttl > 0) req.push("EXPIRE", buckets_[cmd.bucket], ttl, "NX");
            in_request += cmd.end - cmd.begin;
        }
        co_await run_checked(req, "HSET");
    }
}

template <class K>
asio::awaitable<void> embedding_table<K>::accumulate(std::span<const K> keys,
                                                     std::span<const float> deltas) {
    if (deltas.size() != keys.size() * dim_) {
        throw_error(error::invalid_config, "kv: embedding_table \"" + name_ + "\": accumulate of " +
                                               std::to_string(keys.size()) + " keys with " +
                                               std::to_string(deltas.size()) + " floats");
    }
    const plan p = make_plan(keys);
    const std::string dim_text = std::to_string(dim_);
    const std::string ttl_text = std::to_string(expiry_seconds());
    const std::size_t width = dim_ * sizeof(float);
    const char* bytes = reinterpret_cast<const char*>(deltas.data());
    std::vector<std::string_view> args;
    std::vector<std::size_t> bucket_of_call;
    std::size_t c = 0;
    while (c < p.commands.size()) {
        script_request req;
        bucket_of_call.clear();
        std::size_t in_request = 0;
        for (; c < p.commands.size() && in_request < keys_per_request; ++c) {
            const auto& cmd = p.commands[c];
            args.clear();
            args.push_back(dim_text);
            args.push_back(ttl_text);
            for (std::size_t i = cmd.begin; i < cmd.end; ++i) {
                const std::uint32_t row = p.order[i];
                args.push_back(field(p, row));
                args.emplace_back(bytes + std::size_t(row) * width, width);
            }
            const std::array<std::string_view, 1> script_keys{buckets_[cmd.bucket]};
            req.call(accumulate_script(), script_keys, args);
            bucket_of_call.push_back(cmd.bucket);
            in_request += cmd.end - cmd.begin;
        }
        generic_response resp;
        co_await req.run(*client_, resp);
        for (std::size_t i = 0; i < resp.size(); ++i) {
            if (resp[i].has_error())
                detail::throw_reply_error(resp[i].error(), buckets_[bucket_of_call[i]],
                                          "embedding_accumulate.lua");
        }
    }
}

template <class K>
asio::awaitable<std::size_t> embedding_table<K>::remove(std::span<const K> keys) {
    const plan p = make_plan(keys);
    std::size_t removed = 0;
    std::size_t c = 0;
    while (c < p.commands.size()) {
        request req;
        std::vector<std::string_view> fields;
        std::size_t in_request = 0;
        for (; c < p.commands.size() && in_request < keys_per_request; ++c) {
            const auto& cmd = p.commands[c];
            fields.clear();
            for (std::size_t i = cmd.begin; i < cmd.end; ++i)
                fields.push_back(field(p, p.order[i]));
            req.push("HDEL", buckets_[cmd.bucket], fields);
            in_request += cmd.end - cmd.begin;
        }
        generic_response resp;
        co_await client_->exec(req, resp);
        for (const auto& r : resp)
            removed += static_cast<std::size_t>(integer_of(r, base_, "HDEL"));
    }
    co_return removed;
}

template <class K> asio::awaitable<std::size_t> embedding_table<K>::size() {
    request req;
    for (const auto& k : buckets_)
        req.push("HLEN", k);
    generic_response resp;
    co_await client_->exec(req, resp);
    std::size_t n = 0;
    for (const auto& r : resp)
        n += static_cast<std::size_t>(integer_of(r, base_, "HLEN"));
    co_return n;
}

template <class K> asio::awaitable<void> embedding_table<K>::clear() {
    request req;
    for (const auto& k : buckets_)
        req.push("DEL", k); // one key a command: the buckets live in different slots
    co_await run_checked(req, "DEL");
}

template <class K> asio::awaitable<void> embedding_table<K>::export_entries(export_sink sink) {
    const std::size_t width = dim_ * sizeof(float);
    const std::string count = std::to_string(options_.keys_sending_size);
    std::vector<K> keys;
    std::vector<float> values;
    for (const auto& bucket : buckets_) {
        std::string cursor = "0";
        do {
            request req;
            req.push("HSCAN", bucket, cursor, "COUNT", count);
            response<std::pair<std::string, std::vector<std::string>>> resp;
            co_await client_->exec(req, resp);
            auto page = detail::take(std::get<0>(resp), bucket, "HSCAN");
            cursor = std::move(page.first);
            keys.clear();
            values.clear();
            for (std::size_t i = 0; i + 1 < page.second.size(); i += 2) {
                const std::string& f = page.second[i];
                const std::string& v = page.second[i + 1];
                if (v.size() != width) {
                    throw_error(error::type_mismatch,
                                "kv: " + detail::where(bucket, f) + ": an embedding of " +
                                    std::to_string(v.size()) + " bytes, expected " +
                                    std::to_string(width));
                }
                if constexpr (std::is_same_v<K, std::int64_t>) {
                    if (f.size() != 8) {
                        throw_error(error::type_mismatch, "kv: " + detail::where(bucket, f) +
                                                              ": an int64 key is 8 bytes, got " +
                                                              std::to_string(f.size()));
                    }
                    std::int64_t k;
                    std::memcpy(&k, f.data(), 8);
                    keys.push_back(k);
                } else {
                    keys.push_back(f);
                }
                const std::size_t at = values.size();
                values.resize(at + dim_);
                std::memcpy(values.data() + at, v.data(), width);
            }
            if (!keys.empty()) sink(keys, values);
        } while (cursor != "0");
    }
}

template <class K>
asio::awaitable<void> embedding_table<K>::import_entries(std::span<const K> keys,
                                                         std::span<const float> values) {
    co_await insert(keys, values);
}

template <class K> std::string embedding_table<K>::dump_file(std::size_t bucket) const {
    std::filesystem::path dir(options_.model_lib_abs_dir);
    return (dir / (base_ + "_" + std::to_string(bucket) + ".dump")).string();
}

namespace {

constexpr char checkpoint_magic[8] = {'A', 'K', 'V', 'E', 'M', 'B', '0', '1'};

template <class T> void put(std::ostream& out, T v) {
    out.write(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T> bool get(std::istream& in, T& v) {
    return static_cast<bool>(in.read(reinterpret_cast<char*>(&v), sizeof v));
}

} // namespace

template <class K> asio::awaitable<std::size_t> embedding_table<K>::save(std::string path) {
    if (options_.table_store_mode == 2) co_return 0;
    if (options_.table_store_mode == 1) {
        std::filesystem::create_directories(options_.model_lib_abs_dir);
        std::size_t written = 0;
        for (std::size_t b = 0; b < buckets_.size(); ++b) {
            request dump;
            dump.push("DUMP", buckets_[b]);
            response<std::optional<std::string>> payload;
            co_await client_->exec(dump, payload);
            auto bytes = detail::take(std::get<0>(payload), buckets_[b], "DUMP");
            const std::string file = dump_file(b);
            if (!bytes) {
                std::filesystem::remove(file); // an empty bucket: no stale file restores it
                continue;
            }
            std::ofstream out(file, std::ios::binary | std::ios::trunc);
            out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
            if (!out) throw_file_error(file, "cannot write");
            ++written;
        }
        co_return written;
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw_file_error(path, "cannot open for writing");
    out.write(checkpoint_magic, sizeof checkpoint_magic);
    put(out, static_cast<std::uint32_t>(dim_));
    put(out, static_cast<std::uint8_t>(std::is_same_v<K, std::int64_t> ? 0 : 1));
    const auto count_at = out.tellp();
    put(out, std::uint64_t{0});
    std::uint64_t count = 0;
    const std::size_t width = dim_ * sizeof(float);
    export_sink write_page = [&](std::span<const K> keys, std::span<const float> values) {
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if constexpr (std::is_same_v<K, std::int64_t>) {
                put(out, keys[i]);
            } else {
                put(out, static_cast<std::uint32_t>(keys[i].size()));
                out.write(keys[i].data(), static_cast<std::streamsize>(keys[i].size()));
            }
            out.write(reinterpret_cast<const char*>(values.data() + i * dim_),
                      static_cast<std::streamsize>(width));
        }
        count += keys.size();
    };
    co_await export_entries(write_page);
    out.seekp(count_at);
    put(out, count);
    out.flush();
    if (!out) throw_file_error(path, "cannot write");
    co_return static_cast<std::size_t>(count);
}

template <class K> asio::awaitable<std::size_t> embedding_table<K>::restore(std::string path) {
    if (options_.table_store_mode == 2) co_return 0;
    if (options_.table_store_mode == 1) {
        const std::int64_t ttl_ms = expiry_seconds() * 1000;
        std::size_t restored = 0;
        for (std::size_t b = 0; b < buckets_.size(); ++b) {
            const std::string file = dump_file(b);
            request req;
            if (!std::filesystem::exists(file)) {
                req.push("DEL", buckets_[b]);
                co_await run_checked(req, "DEL");
                continue;
            }
            std::ifstream in(file, std::ios::binary);
            std::string bytes((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
            if (!in && !in.eof()) throw_file_error(file, "cannot read");
            req.push("RESTORE", buckets_[b], ttl_ms, bytes, "REPLACE");
            co_await run_checked(req, "RESTORE");
            ++restored;
        }
        co_return restored;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_file_error(path, "cannot open for reading");
    char magic[sizeof checkpoint_magic];
    std::uint32_t dim = 0;
    std::uint8_t kind = 0;
    std::uint64_t count = 0;
    if (!in.read(magic, sizeof magic) || std::memcmp(magic, checkpoint_magic, sizeof magic) != 0)
        throw_file_error(path, "not an embedding_table checkpoint");
    if (!get(in, dim) || !get(in, kind) || !get(in, count))
        throw_file_error(path, "truncated header");
    const std::uint8_t want_kind = std::is_same_v<K, std::int64_t> ? 0 : 1;
    if (dim != dim_ || kind != want_kind) {
        throw_file_error(path, "holds dimension " + std::to_string(dim) + " key kind " +
                                   std::to_string(kind) + ", the table has dimension " +
                                   std::to_string(dim_) + " key kind " + std::to_string(want_kind));
    }
    co_await clear();
    const std::size_t batch = std::max<std::size_t>(options_.keys_sending_size * 64, 1);
    std::vector<K> keys;
    std::vector<float> values;
    std::uint64_t done = 0;
    while (done < count) {
        keys.clear();
        values.clear();
        for (; done < count && keys.size() < batch; ++done) {
            if constexpr (std::is_same_v<K, std::int64_t>) {
                std::int64_t k;
                if (!get(in, k))
                    throw_file_error(path, "truncated at entry " + std::to_string(done));
                keys.push_back(k);
            } else {
                std::uint32_t length = 0;
                if (!get(in, length))
                    throw_file_error(path, "truncated at entry " + std::to_string(done));
                std::string k(length, '\0');
                if (!in.read(k.data(), length))
                    throw_file_error(path, "truncated at entry " + std::to_string(done));
                keys.push_back(std::move(k));
            }
            const std::size_t at = values.size();
            values.resize(at + dim_);
            if (!in.read(reinterpret_cast<char*>(values.data() + at),
                         static_cast<std::streamsize>(dim_ * sizeof(float))))
                throw_file_error(path, "truncated at entry " + std::to_string(done));
        }
        co_await insert(keys, values);
    }
    co_return static_cast<std::size_t>(count);
}

template class embedding_table<std::int64_t>;
template class embedding_table<std::string>;

} // namespace akv::kv
