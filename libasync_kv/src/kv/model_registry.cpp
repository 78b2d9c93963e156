#include <akv/kv/model_registry.hpp>
#include <akv/script.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <fstream>
#include <stdexcept>
#include <tuple>

#include "archive.hpp"
#include "lua_scripts.hpp"

namespace akv::kv {

namespace {

const script& commit_script() {
    static const script s(lua::kv_registry_commit); // immutable after construction
    return s;
}
const script& erase_script() {
    static const script s(lua::kv_registry_erase);
    return s;
}
const script& tag_script() {
    static const script s(lua::kv_registry_tag);
    return s;
}
const script& list_script() {
    static const script s(lua::kv_registry_list);
    return s;
}

std::string in_quotes(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

std::optional<std::uint64_t> to_unsigned(std::string_view text) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return n;
}

// "v<n>" -> n (n >= 1).
std::optional<std::uint64_t> version_of(std::string_view ref) {
    if (ref.size() < 2 || ref.front() != 'v') return std::nullopt;
    const auto n = to_unsigned(ref.substr(1));
    if (!n || *n == 0) return std::nullopt;
    return n;
}

void check_name(const std::string& name) {
    if (name.empty()) throw std::invalid_argument("model_registry: a model name must not be empty");
    if (name.find_first_of("{}") != std::string::npos)
        throw std::invalid_argument("model_registry: model name " + in_quotes(name) +
                                    " must not hold '{' or '}' (it is the keys' hash tag)");
}

void check_tag(std::string_view tag) {
    if (tag.empty() || tag == "latest" || version_of(tag) ||
        tag.find(':') != std::string_view::npos)
        throw std::invalid_argument("model_registry: tag " + in_quotes(tag) +
                                    " is empty, \"latest\", a version (v<n>) or holds ':'");
}

template <class Result> void throw_if_error(const Result& r, const std::string& what) {
    if (r.has_error()) throw_error(error::script_error, what + ": " + r.error().message);
}

std::uint64_t number_field(const std::string& text, const std::string& what) {
    const auto n = to_unsigned(text);
    if (!n) throw_error(error::type_mismatch, what + ": expected a number, got " + in_quotes(text));
    return *n;
}

std::uint64_t total_size(const model& m) {
    std::uint64_t n = 0;
    for (const auto& [path, data] : m.files)
        n += data.size();
    return n;
}

// Regular files and directories under `root`, with '/'-separated relative paths.
std::string relative_path(const std::filesystem::path& root, const std::filesystem::path& p) {
    return p.lexically_relative(root).generic_string();
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in)
        throw std::filesystem::filesystem_error("model: cannot open", p,
                                                std::make_error_code(std::errc::io_error));
    std::string data(static_cast<std::size_t>(std::filesystem::file_size(p)), '\0');
    in.read(data.data(), static_cast<std::streamsize>(data.size()));
    if (in.gcount() != static_cast<std::streamsize>(data.size()))
        throw std::filesystem::filesystem_error("model: short read", p,
                                                std::make_error_code(std::errc::io_error));
    return data;
}

} // namespace

model read_directory(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(dir))
        throw std::invalid_argument("model: " + in_quotes(dir.string()) + " is not a directory");
    model m;
    for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir)) {
        const std::string path = relative_path(dir, e.path());
        if (e.is_symlink())
            throw std::invalid_argument("model: " + in_quotes(e.path().string()) +
                                        " is a symbolic link; only files and directories");
        if (e.is_directory()) {
            m.directories.insert(path);
        } else if (e.is_regular_file()) {
            m.files[path] = read_file(e.path());
        } else {
            throw std::invalid_argument("model: " + in_quotes(e.path().string()) +
                                        " is neither a regular file nor a directory");
        }
    }
    return m;
}

void write_directory(const model& m, const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    fs::create_directories(dir);
    for (const std::string& d : m.directories) {
        if (!detail::is_safe_relative_path(d))
            throw std::invalid_argument("model: directory path " + in_quotes(d) +
                                        " is not relative");
        fs::create_directories(dir / fs::path(d));
    }
    for (const auto& [path, data] : m.files) {
        if (!detail::is_safe_relative_path(path))
            throw std::invalid_argument("model: file path " + in_quotes(path) + " is not relative");
        const fs::path target = dir / fs::path(path);
        fs::create_directories(target.parent_path());
        std::ofstream out(target, std::ios::binary | std::ios::trunc);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        out.close();
        if (!out)
            throw fs::filesystem_error("model: cannot write", target,
                                       std::make_error_code(std::errc::io_error));
    }
}

model_registry_options model_registry::with_blob_prefix(const std::string& name,
                                                        model_registry_options options) {
    check_name(name);
    if (options.compression_level < 1 || options.compression_level > 9)
        throw_error(error::invalid_config,
                    "model_registry_options: compression_level must be 1 to 9, got " +
                        std::to_string(options.compression_level));
    // The prefix's own hash tag {name} puts every archive key on the model's slot.
    options.blobs.key_prefix = options.key_prefix + "{" + name + "}:blob:";
    return options;
}

model_registry::model_registry(client& c, std::string name, model_registry_options options)
    : client_(c)
    , name_(std::move(name))
    , options_(with_blob_prefix(name_, std::move(options)))
    , blobs_(c, options_.blobs) {}

asio::awaitable<model_registry> model_registry::open(client& c, std::string name) {
    model_registry_options options;
    co_return co_await open(c, std::move(name), std::move(options));
}

asio::awaitable<model_registry> model_registry::open(client& c, std::string name,
                                                     model_registry_options options) {
    model_registry reg(c, std::move(name), std::move(options));
    const std::optional<std::uint64_t> latest = co_await reg.latest();
    if (latest) reg.current_ = co_await reg.load_version(*latest, "latest");
    co_return reg;
}

std::string model_registry::key(std::string_view suffix) const {
    return key_prefix(name_, options_) + std::string(suffix);
}

std::string model_registry::version_name(std::uint64_t version) const {
    return name_ + ":" + archive_name(version);
}

std::string model_registry::archive_name(std::uint64_t version) {
    return "v" + std::to_string(version);
}

asio::awaitable<std::uint64_t> model_registry::save(const model& m) {
    const std::string archive = detail::pack_archive(m, options_.compression_level);
    // Refused before a version number is taken or anything is sent.
    if (archive.size() > options_.blobs.max_object_size)
        throw_error(error::object_too_large, "model_registry: model " + in_quotes(name_) +
                                                 ": archive of " + std::to_string(archive.size()) +
                                                 " bytes is over max_object_size " +
                                                 std::to_string(options_.blobs.max_object_size) +
                                                 "; the latest version is unchanged");

    request next;
    next.push("INCR", key("next_version"));
    response<std::uint64_t> next_resp;
    co_await client_.exec(next, next_resp);
    const std::uint64_t version = std::get<0>(next_resp).value();

    blob_attributes attributes("application/gzip");
    co_await blobs_.put(archive_name(version), archive, attributes);

    const std::string versions_key = key("versions");
    const std::string latest_key = key("latest");
    const std::string version_key = key("v:" + std::to_string(version));
    const std::array<std::string_view, 3> keys{versions_key, latest_key, version_key};
    const std::string version_text = std::to_string(version);
    const std::string archive_size = std::to_string(archive.size());
    const std::string files = std::to_string(m.files.size());
    const std::string unpacked = std::to_string(total_size(m));
    const std::array<std::string_view, 5> args{version_text, m.metadata, archive_size, files,
                                               unpacked};
    response<std::uint64_t> resp;
    co_await commit_script().run(client_, keys, args, resp);
    throw_if_error(std::get<0>(resp), "model_registry: save of " + version_name(version));

    model saved = m;
    saved.version = version;
    current_ = std::move(saved);
    co_return version;
}

asio::awaitable<std::uint64_t> model_registry::save_directory(const std::filesystem::path& dir,
                                                              std::string metadata) {
    model m = read_directory(dir);
    m.metadata = std::move(metadata);
    co_return co_await save(m);
}

namespace {
// A registry's reads go through the client's cache (if it has one): a process that resolves
// "latest" on every request pays no round trip, and is told when it moves.
request cached_read() {
    request::options o;
    o.cache = true;
    return request(o);
}
} // namespace

std::vector<std::string> model_registry::watched_keys(std::string_view ref) const {
    if (ref == "latest" || ref == name_ + ":latest") return {key("latest")};
    return {key("latest"), key("tags"), key("versions")};
}

std::string model_registry::key_prefix(std::string_view name,
                                       const model_registry_options& options) {
    return options.key_prefix + "{" + std::string(name) + "}:";
}

asio::awaitable<std::optional<std::uint64_t>> model_registry::latest() {
    request req = cached_read();
    req.push("GET", key("latest"));
    response<std::optional<std::uint64_t>> resp;
    co_await client_.exec(req, resp);
    co_return std::get<0>(resp).value();
}

asio::awaitable<bool> model_registry::exists() {
    co_return (co_await latest()).has_value();
}

asio::awaitable<std::optional<std::uint64_t>> model_registry::resolve(std::string_view ref) {
    // "<name>:v<n>" is the user-facing name of a version.
    if (ref.size() > name_.size() + 1 && ref.substr(0, name_.size()) == name_ &&
        ref[name_.size()] == ':')
        ref.remove_prefix(name_.size() + 1);
    if (ref == "latest") co_return co_await latest();
    if (const auto v = version_of(ref)) {
        request req = cached_read();
        req.push("ZSCORE", key("versions"), std::to_string(*v));
        response<std::optional<std::string>> resp;
        co_await client_.exec(req, resp);
        if (!std::get<0>(resp).value()) co_return std::nullopt;
        co_return v;
    }
    request req = cached_read();
    req.push("HGET", key("tags"), ref);
    response<std::optional<std::uint64_t>> resp;
    co_await client_.exec(req, resp);
    co_return std::get<0>(resp).value();
}

asio::awaitable<model> model_registry::load() {
    co_return co_await load("latest");
}

asio::awaitable<model> model_registry::load(std::string_view ref) {
    const std::string what(ref);
    const std::optional<std::uint64_t> version = co_await resolve(what);
    if (!version)
        throw_error(error::not_found, "model_registry: model " + in_quotes(name_) + " has no " +
                                          (what == "latest" ? std::string("version")
                                                            : "version or tag " + in_quotes(what)));
    model m = co_await load_version(*version, what);
    current_ = m;
    co_return m;
}

asio::awaitable<model> model_registry::load_version(std::uint64_t version, std::string_view ref) {
    const std::string what =
        "model_registry: " + version_name(version) + " (" + std::string(ref) + ")";
    std::optional<blob> stored = co_await blobs_.get_blob(archive_name(version));
    if (!stored) throw_error(error::not_found, what + ": its archive is gone (erased meanwhile?)");

    request req;
    req.push("HGET", key("v:" + std::to_string(version)), "metadata");
    response<std::optional<std::string>> resp;
    co_await client_.exec(req, resp);

    model m;
    detail::unpack_archive(stored->bytes, options_.max_unpacked_size, what, m);
    m.metadata = std::get<0>(resp).value().value_or("{}");
    m.version = version;
    co_return m;
}

asio::awaitable<model> model_registry::load_to_directory(std::string_view ref,
                                                         const std::filesystem::path& dir) {
    model m = co_await load(ref);
    write_directory(m, dir);
    co_return m;
}

asio::awaitable<std::vector<model_version>> model_registry::versions() {
    const std::string versions_key = key("versions");
    const std::string tags_key = key("tags");
    const std::array<std::string_view, 2> keys{versions_key, tags_key};
    const std::string hash_prefix = key("v:");
    const std::array<std::string_view, 1> args{hash_prefix};
    response<std::vector<std::vector<std::string>>> resp;
    co_await list_script().run(client_, keys, args, resp);
    throw_if_error(std::get<0>(resp), "model_registry: versions of " + in_quotes(name_));
    std::vector<model_version> out;
    const std::string what = "model_registry: versions of " + in_quotes(name_);
    for (const std::vector<std::string>& row : std::get<0>(resp).value()) {
        if (row.size() < 6) throw_error(error::type_mismatch, what + ": short row");
        model_version v;
        v.version = number_field(row[0], what);
        v.metadata = row[1];
        v.archive_size = number_field(row[2], what);
        v.files = number_field(row[3], what);
        v.unpacked_size = number_field(row[4], what);
        v.created = std::chrono::system_clock::time_point(
            std::chrono::milliseconds(number_field(row[5], what)));
        v.tags.assign(row.begin() + 6, row.end());
        std::sort(v.tags.begin(), v.tags.end());
        out.push_back(std::move(v));
    }
    co_return out;
}

asio::awaitable<void> model_registry::tag(std::string_view tag, std::uint64_t version) {
    check_tag(tag);
    const std::string versions_key = key("versions");
    const std::string tags_key = key("tags");
    const std::array<std::string_view, 2> keys{versions_key, tags_key};
    const std::string version_text = std::to_string(version);
    const std::array<std::string_view, 2> args{tag, version_text};
    response<long long> resp;
    co_await tag_script().run(client_, keys, args, resp);
    throw_if_error(std::get<0>(resp), "model_registry: tag of " + version_name(version));
    if (std::get<0>(resp).value() == 0)
        throw_error(error::not_found, "model_registry: cannot tag " + in_quotes(tag) + ": " +
                                          version_name(version) + " does not exist");
}

asio::awaitable<bool> model_registry::untag(std::string_view tag) {
    check_tag(tag);
    request req;
    req.push("HDEL", key("tags"), tag);
    response<long long> resp;
    co_await client_.exec(req, resp);
    co_return std::get<0>(resp).value() == 1;
}

asio::awaitable<std::map<std::string, std::uint64_t>> model_registry::tags() {
    request req;
    req.push("HGETALL", key("tags"));
    response<std::map<std::string, std::uint64_t>> resp;
    co_await client_.exec(req, resp);
    co_return std::get<0>(resp).value();
}

asio::awaitable<bool> model_registry::erase(std::uint64_t version) {
    const std::string versions_key = key("versions");
    const std::string latest_key = key("latest");
    const std::string version_key = key("v:" + std::to_string(version));
    const std::string tags_key = key("tags");
    const std::array<std::string_view, 4> keys{versions_key, latest_key, version_key, tags_key};
    const std::string version_text = std::to_string(version);
    const std::array<std::string_view, 1> args{version_text};
    response<long long> resp;
    co_await erase_script().run(client_, keys, args, resp);
    throw_if_error(std::get<0>(resp), "model_registry: erase of " + version_name(version));
    // The archive goes after the entry: nothing resolves to this version any more. A version
    // whose save died before its commit has an archive but no entry: erased here too.
    const bool archived = co_await blobs_.erase(archive_name(version));
    if (current_ && current_->version == version) current_.reset();
    co_return std::get<0>(resp).value() == 1 || archived;
}

} // namespace akv::kv
