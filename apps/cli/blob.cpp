// `akv blob ...`: objects of an akv::kv::blob_store, from and to files or stdin/stdout.
#include "commands.hpp"
#include "subcommand.hpp"

#include <akv/kv/blob_store.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

namespace akv::cli {

const char* const blob_usage = R"(usage: akv [OPTIONS] blob SUBCOMMAND [ARG...] [--prefix P]

Stores and reads named byte objects of any size (akv::kv::blob_store: chunked, a reader sees
an old or a new object whole, never a mix). OPTIONS (--redis URL, ...) as for `akv --help`,
before the word `blob`.

subcommands:
  put KEY FILE|-              stores FILE (- reads stdin) as the object KEY, replacing any
      --content-type TYPE     kept in the manifest (default none)
  get KEY [FILE|-]            writes the object to FILE (default -: stdout); FILE is written
                              under a temporary name and renamed when complete
  list [PATTERN]              objects whose name matches the glob PATTERN (default *): name,
                              size, chunks, last modified (UTC), content type. Not on a cluster
      --json                  one JSON object on stdout
  rm KEY                      deletes the object

options:
  --prefix P                  the store's key prefix (default "blob:"): keys P{KEY}:meta, ...
  --help                      this text

exit status: 0 done; 1 no such object (get, rm) or the server refused; 2 usage, file,
configuration or connection error
)";

namespace {

namespace json = boost::json;

const option_spec prefix_option{"--prefix", true};

const subcommand_table& subcommands() {
    static const subcommand_table table{
        {"put", {{"KEY", "FILE"}, {prefix_option, {"--content-type", true}}}},
        {"get", {{"KEY", "[FILE]"}, {prefix_option}}},
        {"list", {{"[PATTERN]"}, {prefix_option, {"--json"}}}},
        {"rm", {{"KEY"}, {prefix_option}}},
    };
    return table;
}

akv::kv::blob_options options_of(const parsed_args& a) {
    akv::kv::blob_options o;
    if (const auto prefix = a.value("--prefix")) {
        if (prefix->empty()) throw std::invalid_argument("option --prefix: empty prefix");
        o.key_prefix = *prefix;
    }
    return o;
}

std::int64_t epoch_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string read_stdin() {
    std::string bytes;
    char buf[1 << 16];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0)
        bytes.append(buf, n);
    if (std::ferror(stdin)) throw std::invalid_argument("blob put: cannot read stdin");
    return bytes;
}

asio::awaitable<int> put(akv::client& cl, const parsed_args& a) {
    const std::string name = *a.arg("KEY");
    const std::string file = *a.arg("FILE");
    akv::kv::blob_store store(cl, options_of(a));
    const akv::kv::blob_attributes attributes(a.value("--content-type").value_or(""));
    std::uint64_t size = 0;
    if (file == "-") {
        const std::string bytes = read_stdin();
        size = bytes.size();
        co_await store.put(name, bytes, attributes);
    } else {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(file, ec))
            throw std::invalid_argument("blob put: " + in_quotes(file) + " is not a readable file");
        size = std::filesystem::file_size(file);
        std::ifstream in(file, std::ios::binary);
        if (!in) throw std::invalid_argument("blob put: cannot open " + in_quotes(file));
        // Streamed: never more than a chunk (plus the chunks in flight) in memory.
        akv::kv::blob_store::source next =
            [&in, &file](std::span<char> buffer) -> asio::awaitable<std::size_t> {
            in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
            const std::streamsize got = in.gcount();
            if (got <= 0)
                throw std::invalid_argument("blob put: " + in_quotes(file) +
                                            " became shorter while it was read");
            co_return static_cast<std::size_t>(got);
        };
        co_await store.put_stream(name, size, next, attributes);
    }
    std::cout << "blob " << in_quotes(name) << " stored: " << size << " bytes\n";
    co_return exit_done;
}

asio::awaitable<int> get(akv::client& cl, const parsed_args& a) {
    const std::string name = *a.arg("KEY");
    const std::string file = a.arg("FILE").value_or("-");
    akv::kv::blob_store store(cl, options_of(a));
    if (file == "-") {
        akv::kv::blob_store::sink out = [](std::string_view bytes) -> asio::awaitable<void> {
            std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
            co_return;
        };
        const std::optional<akv::kv::blob_meta> meta = co_await store.get_stream(name, out);
        std::cout.flush();
        if (!meta) throw refused("blob " + in_quotes(name) + ": no such object");
        co_return exit_done;
    }

    const std::string partial = file + ".akv-partial";
    std::ofstream os(partial, std::ios::binary | std::ios::trunc);
    if (!os) throw std::invalid_argument("blob get: cannot write " + in_quotes(partial));
    akv::kv::blob_store::sink out = [&os](std::string_view bytes) -> asio::awaitable<void> {
        os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        co_return;
    };
    std::optional<akv::kv::blob_meta> meta;
    bool complete = false;
    try {
        meta = co_await store.get_stream(name, out);
        os.close();
        complete = meta && os;
    } catch (...) {
        os.close();
        std::filesystem::remove(partial);
        throw;
    }
    if (!complete) {
        std::filesystem::remove(partial);
        if (!meta) throw refused("blob " + in_quotes(name) + ": no such object");
        throw std::invalid_argument("blob get: cannot write " + in_quotes(partial));
    }
    std::filesystem::rename(partial, file);
    std::cout << "blob " << in_quotes(name) << " written to " << file << ": " << meta->size
              << " bytes\n";
    co_return exit_done;
}

// `s` with the glob metacharacters of SCAN MATCH escaped.
std::string glob_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

asio::awaitable<int> list(akv::client& cl, const parsed_args& a) {
    if (cl.get_config().topology == akv::config::mode::cluster)
        throw std::invalid_argument("blob list: not on a cluster (SCAN sees one node)");
    const std::string pattern = a.arg("PATTERN").value_or("*");
    akv::kv::blob_store store(cl, options_of(a));
    // A manifest key is <head><name><tail>; the store says which, for a marker name.
    const std::string marker = "\x01";
    const std::string sample = store.manifest_key(marker);
    const std::size_t at = sample.find(marker);
    const std::string head = sample.substr(0, at);
    const std::string tail = sample.substr(at + marker.size());
    const std::string match = glob_escape(head) + pattern + glob_escape(tail);

    std::set<std::string> names; // SCAN may return a key twice
    std::string cursor = "0";
    do {
        request req;
        req.push("SCAN", cursor, "MATCH", match, "COUNT", 1000);
        response<std::pair<std::string, std::vector<std::string>>> resp;
        co_await cl.exec(req, resp);
        auto& page = std::get<0>(resp).value();
        cursor = page.first;
        for (const auto& key : page.second)
            if (key.size() > head.size() + tail.size())
                names.insert(key.substr(head.size(), key.size() - head.size() - tail.size()));
    } while (cursor != "0");

    std::vector<std::pair<std::string, akv::kv::blob_meta>> objects;
    for (const auto& name : names) {
        const std::string_view name_arg = name;
        std::optional<akv::kv::blob_meta> meta = co_await store.stat(name_arg);
        if (meta) objects.emplace_back(name, std::move(*meta)); // else erased meanwhile
    }

    if (a.has("--json")) {
        json::array arr;
        for (const auto& [name, m] : objects) {
            json::object j;
            j["name"] = name;
            j["size"] = m.size;
            j["chunks"] = m.chunks;
            j["content_type"] = m.content_type;
            j["modified_ms"] = epoch_ms(m.modified);
            arr.push_back(std::move(j));
        }
        json::object j;
        j["prefix"] = store.options().key_prefix;
        j["objects"] = std::move(arr);
        print_json(j);
        co_return exit_done;
    }
    std::vector<std::vector<std::string>> rows{{"NAME", "SIZE", "CHUNKS", "MODIFIED", "TYPE"}};
    for (const auto& [name, m] : objects)
        rows.push_back({name, std::to_string(m.size), std::to_string(m.chunks),
                        utc(epoch_ms(m.modified)),
                        m.content_type.empty() ? "(none)" : m.content_type});
    std::cout << table(rows, true);
    co_return exit_done;
}

asio::awaitable<int> rm(akv::client& cl, const parsed_args& a) {
    const std::string name = *a.arg("KEY");
    akv::kv::blob_store store(cl, options_of(a));
    const bool erased = co_await store.erase(name);
    if (!erased) throw refused("blob " + in_quotes(name) + ": no such object");
    std::cout << "blob " << in_quotes(name) << " removed\n";
    co_return exit_done;
}

} // namespace

int run_blob_command(const akv::config& cfg, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << blob_usage;
        return exit_done;
    }
    parsed_args a;
    try {
        a = parse_args("blob", subcommands(), args);
    } catch (const std::exception& e) {
        std::cerr << "akv: " << e.what() << "\n(akv blob --help lists the subcommands)\n";
        return exit_usage;
    }
    return run_on_client(cfg, [&](akv::client& cl) -> asio::awaitable<int> {
        if (a.sub == "put") co_return co_await put(cl, a);
        if (a.sub == "get") co_return co_await get(cl, a);
        if (a.sub == "list") co_return co_await list(cl, a);
        co_return co_await rm(cl, a);
    });
}

} // namespace akv::cli
