// `akv model ...`: versions of an akv::kv::model_registry, from and to directories.
#include "commands.hpp"
#include "subcommand.hpp"

#include <akv/kv/model_registry.hpp>
#include <akv/ml/model_spec.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace akv::cli {

const char* const model_usage = R"(usage: akv [OPTIONS] model SUBCOMMAND NAME [ARG...]

Versioned models (akv::kv::model_registry): a directory of files plus JSON metadata per
version, tags, and `latest`. OPTIONS (--redis URL, ...) as for `akv --help`, before the word
`model`.

subcommands:
  put NAME DIR                stores the files under DIR as a new version, which becomes the
                              latest; prints its name (NAME:v<n>). A model.json in DIR is
                              checked first; of kind "torchscript", so is its module (model.pt)
      --metadata JSON         the version's metadata (default {})
      --tag TAG               points TAG at the new version (repeatable)
  get NAME [REF] DIR          writes the files of version REF into DIR (created if missing,
                              files of the same path replaced). REF: latest (default), v<n>,
                              NAME:v<n> or a tag
  list NAME                   every version, oldest first: size of its archive, files,
                              unpacked bytes, created (UTC), tags
      --json                  one JSON object on stdout (with each version's metadata)
  tag NAME TAG VERSION        points TAG at VERSION (<n>, v<n>, NAME:v<n>, or another tag),
                              moving it if it pointed elsewhere

options:
  --help                      this text

A TAG must not be empty, "latest", v<n>, or hold ':'.

exit status: 0 done; 1 no such model, version or tag, or a stored archive that does not
unpack; 2 usage (bad name, tag, metadata or directory), configuration or connection error
)";

namespace {

namespace json = boost::json;

const subcommand_table& subcommands() {
    static const subcommand_table table{
        {"put", {{"NAME", "DIR"}, {{"--metadata", true}, {"--tag", true, true}}}},
        {"get", {{"NAME", "[REF]", "DIR"}, {}}},
        {"list", {{"NAME"}, {{"--json"}}}},
        {"tag", {{"NAME", "TAG", "VERSION"}, {}}},
    };
    return table;
}

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// What model_registry::tag accepts, checked before a put stores anything.
void check_tag(const std::string& tag) {
    const bool version_like = tag.size() > 1 && tag[0] == 'v' && all_digits(tag.substr(1));
    if (tag.empty() || tag == "latest" || version_like || tag.find(':') != std::string::npos)
        throw std::invalid_argument("model: tag " + in_quotes(tag) +
                                    " is empty, \"latest\", a version (v<n>) or holds ':'");
}

// A directory with a model.json must hold what it declares: a TorchScript model its module
// file, which TorchScript writes as a zip archive. (The module itself is compiled by the
// batcher that loads it; the CLI does not link libtorch.)
void check_model_directory(const std::filesystem::path& dir) {
    const std::filesystem::path spec_file = dir / "model.json";
    if (!std::filesystem::exists(spec_file)) return;
    std::ifstream in(spec_file, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    akv::ml::model_spec spec;
    try {
        spec = akv::ml::model_spec::parse(text, spec_file.string());
    } catch (const boost::system::system_error& e) {
        throw std::invalid_argument("model put: " + std::string(e.what()));
    }
    if (spec.kind != "torchscript") return;
    const std::filesystem::path module = dir / spec.file;
    if (!std::filesystem::is_regular_file(module))
        throw std::invalid_argument("model put: no " + spec.file + " in " +
                                    in_quotes(dir.string()) + " (the module model.json names)");
    char magic[4] = {};
    std::ifstream(module, std::ios::binary).read(magic, sizeof magic);
    if (std::string_view(magic, sizeof magic) != std::string_view("PK\x03\x04", 4))
        throw std::invalid_argument("model put: " + in_quotes(module.string()) +
                                    " is not a TorchScript file (torch.jit.save writes a zip "
                                    "archive)");
}

std::int64_t epoch_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

asio::awaitable<int> put(akv::client& cl, const parsed_args& a) {
    const std::string name = *a.arg("NAME");
    const std::filesystem::path dir = *a.arg("DIR");
    const std::string metadata = a.value("--metadata").value_or("{}");
    boost::system::error_code ec;
    json::parse(metadata, ec);
    if (ec)
        throw std::invalid_argument("model put: --metadata is not JSON (" + ec.message() +
                                    "): " + metadata);
    const std::vector<std::string> tags = a.values("--tag");
    for (const auto& t : tags)
        check_tag(t);
    if (!std::filesystem::is_directory(dir))
        throw std::invalid_argument("model put: " + in_quotes(dir.string()) +
                                    " is not a directory");
    check_model_directory(dir);

    akv::kv::model_registry reg(cl, name);
    const std::uint64_t version = co_await reg.save_directory(dir, metadata);
    for (const auto& t : tags) {
        const std::string_view tag = t;
        co_await reg.tag(tag, version);
    }
    std::cout << reg.version_name(version) << "\n";
    co_return exit_done;
}

asio::awaitable<int> get(akv::client& cl, const parsed_args& a) {
    const std::string name = *a.arg("NAME");
    const std::string ref = a.arg("REF").value_or("latest");
    const std::filesystem::path dir = *a.arg("DIR");
    if (std::filesystem::exists(dir) && !std::filesystem::is_directory(dir))
        throw std::invalid_argument("model get: " + in_quotes(dir.string()) +
                                    " is not a directory");
    akv::kv::model_registry reg(cl, name);
    const bool exists = co_await reg.exists();
    if (!exists) throw refused("model " + in_quotes(name) + ": no such model");
    const std::string_view ref_arg = ref;
    const akv::kv::model m = co_await reg.load_to_directory(ref_arg, dir);
    std::uint64_t bytes = 0;
    for (const auto& [path, content] : m.files)
        bytes += content.size();
    std::cout << reg.version_name(m.version) << " written to " << dir.string() << ": "
              << m.files.size() << " file" << (m.files.size() == 1 ? "" : "s") << ", " << bytes
              << " bytes\n";
    co_return exit_done;
}

// Metadata as JSON when it parses, else as the text it is.
json::value metadata_json(const std::string& text) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec) return json::string(text);
    return v;
}

asio::awaitable<int> list(akv::client& cl, const parsed_args& a) {
    const std::string name = *a.arg("NAME");
    akv::kv::model_registry reg(cl, name);
    const std::vector<akv::kv::model_version> versions = co_await reg.versions();
    if (versions.empty()) throw refused("model " + in_quotes(name) + ": no such model");
    const std::optional<std::uint64_t> latest = co_await reg.latest();

    if (a.has("--json")) {
        json::array arr;
        for (const auto& v : versions) {
            json::object j;
            j["version"] = v.version;
            j["name"] = reg.version_name(v.version);
            j["latest"] = latest == v.version;
            j["archive_size"] = v.archive_size;
            j["files"] = v.files;
            j["unpacked_size"] = v.unpacked_size;
            j["created_ms"] = epoch_ms(v.created);
            json::array tags;
            for (const auto& t : v.tags)
                tags.emplace_back(t);
            j["tags"] = std::move(tags);
            j["metadata"] = metadata_json(v.metadata);
            arr.push_back(std::move(j));
        }
        json::object j;
        j["model"] = name;
        if (latest)
            j["latest"] = *latest;
        else
            j["latest"] = nullptr;
        j["versions"] = std::move(arr);
        print_json(j);
        co_return exit_done;
    }
    std::vector<std::vector<std::string>> rows{
        {"VERSION", "SIZE", "FILES", "UNPACKED", "CREATED", "TAGS"}};
    for (const auto& v : versions) {
        std::string tags = latest == v.version ? "latest" : "";
        for (const auto& t : v.tags)
            tags += (tags.empty() ? "" : ",") + t;
        rows.push_back({reg.version_name(v.version), std::to_string(v.archive_size),
                        std::to_string(v.files), std::to_string(v.unpacked_size),
                        utc(epoch_ms(v.created)), tags.empty() ? "-" : tags});
    }
    std::cout << table(rows, true);
    co_return exit_done;
}

asio::awaitable<int> tag(akv::client& cl, const parsed_args& a) {
    const std::string name = *a.arg("NAME");
    const std::string tag_name = *a.arg("TAG");
    const std::string version_ref = *a.arg("VERSION");
    check_tag(tag_name);
    akv::kv::model_registry reg(cl, name);
    const bool exists = co_await reg.exists();
    if (!exists) throw refused("model " + in_quotes(name) + ": no such model");
    const std::string ref = all_digits(version_ref) ? "v" + version_ref : version_ref;
    const std::string_view ref_arg = ref;
    const std::optional<std::uint64_t> version = co_await reg.resolve(ref_arg);
    if (!version)
        throw refused("model " + in_quotes(name) + ": no version or tag " + in_quotes(version_ref));
    const std::string_view tag_arg = tag_name;
    co_await reg.tag(tag_arg, *version);
    std::cout << "tag " << tag_name << " -> " << reg.version_name(*version) << "\n";
    co_return exit_done;
}

} // namespace

int run_model_command(const akv::config& cfg, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << model_usage;
        return exit_done;
    }
    parsed_args a;
    try {
        a = parse_args("model", subcommands(), args);
    } catch (const std::exception& e) {
        std::cerr << "akv: " << e.what() << "\n(akv model --help lists the subcommands)\n";
        return exit_usage;
    }
    return run_on_client(cfg, [&](akv::client& cl) -> asio::awaitable<int> {
        if (a.sub == "put") co_return co_await put(cl, a);
        if (a.sub == "get") co_return co_await get(cl, a);
        if (a.sub == "list") co_return co_await list(cl, a);
        co_return co_await tag(cl, a);
    });
}

} // namespace akv::cli
