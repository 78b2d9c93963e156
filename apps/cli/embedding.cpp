// `akv embedding export|import ...`: an akv::kv::embedding_table as a text file, one line per
// key, so that tables can be diffed, edited, moved between servers and fed by scripts. (The
// table's own checkpoint format, embedding_table::save, is binary and wants a path on the
// server's side of things; this one is for people and pipes.)
#include "commands.hpp"
#include "progress.hpp"
#include "subcommand.hpp"

#include <akv/kv/embedding_table.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <unistd.h>

namespace akv::cli {

const char* const embedding_usage =
    R"(usage: akv [OPTIONS] embedding export|import TABLE FILE|- [--keys KIND] [--dim N]

Copies an embedding table (akv::kv::embedding_table, TFRA's Redis layout) to or from a text
file. OPTIONS (--redis URL, ...) as for `akv --help`, before the word `embedding`; the table's
layout comes from them too: --storage_slice N, --model_tag_new TAG, --using_md5_prefix_name
true, ... (or --config FILE with TFRA keys), as the table's writers use them.

subcommands:
  export TABLE FILE|-         writes every entry to FILE (- : stdout); FILE is written under a
                              temporary name and renamed when complete. A table with no entry
                              is refused (Redis keeps no empty table: likely a wrong name or
                              layout option)
  import TABLE FILE|-         reads FILE (- : stdin) and inserts its entries (an upsert: keys
                              not in the file are left alone). The whole input is checked
                              first: a malformed line is reported with its line number and
                              nothing at all is written

options:
  --keys int64|string         the table's key type (export default int64; import: the file's
                              header, else int64)
  --dim N                     the dimension (export: default from a stored vector; import:
                              the file's header, else the first line; must agree with both)
  --help                      this text

file format (UTF-8 text, '\n' line ends):
  #akv-embedding keys=int64 dim=4          first line, optional on import: the header
  42<TAB>0.5,-1,3.25e-05,0                 one line per key: key, a tab, dim floats
  an int64 key is decimal; a string key is its bytes with \\, \t, \n, \r and \xNN escapes
  (\xNN for other bytes below 0x20 and 0x7f); floats are the shortest text that reads back
  as the same float32 (nan, inf, -inf included). Export writes the entries bucket by bucket,
  sorted by key within a bucket, so two exports of equal tables are identical. On import,
  empty lines and lines starting with # are skipped.

On a terminal, a progress bar (entries done/total, rate) is drawn on stderr.

A table with more buckets than --storage_slice says is refused (exit 2), export or import.

exit status: 0 done; 1 refused (no entry in the table, a stored value of another size);
2 usage, malformed input (the message names the line), file, configuration or connection error
)";

namespace {

enum class key_kind { int64, string };

const subcommand_table& subcommands() {
    static const std::vector<option_spec> options{{"--keys", true}, {"--dim", true}};
    static const subcommand_table table{
        {"export", {{"TABLE", "FILE"}, options}},
        {"import", {{"TABLE", "FILE"}, options}},
    };
    return table;
}

std::string kind_name(key_kind k) {
    return k == key_kind::int64 ? "int64" : "string";
}

key_kind parse_kind(std::string_view what, const std::string& s) {
    if (s == "int64") return key_kind::int64;
    if (s == "string") return key_kind::string;
    throw std::invalid_argument(std::string(what) + ": \"" + s + "\" is not int64 or string");
}

// ---- the line format ----

constexpr std::string_view hex = "0123456789abcdef";

void append_key(std::string& out, std::int64_t key) {
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof buf, key).ptr;
    out.append(buf, end);
}

void append_key(std::string& out, const std::string& key) {
    for (unsigned char c : key) {
        switch (c) {
        case '\\':
            out += "\\\\";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                out += "\\x";
                out += hex[c >> 4];
                out += hex[c & 0xf];
            } else {
                out += static_cast<char>(c);
            }
        }
    }
}

template <class K> void append_line(std::string& out, const K& key, std::span<const float> v) {
    append_key(out, key);
    out += '\t';
    char buf[32];
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i > 0) out += ',';
        const auto end = std::to_chars(buf, buf + sizeof buf, v[i]).ptr;
        out.append(buf, end);
    }
    out += '\n';
}

std::string header(key_kind keys, std::size_t dim) {
    return "#akv-embedding keys=" + kind_name(keys) + " dim=" + std::to_string(dim) + "\n";
}

// A malformed input line: the message says which and why.
[[noreturn]] void bad_line(std::uint64_t line, const std::string& why) {
    throw std::invalid_argument("line " + std::to_string(line) + ": " + why);
}

int hex_digit(char c) {
    const auto at = hex.find(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

void parse_key(std::string_view text, std::uint64_t line, std::int64_t& key) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), key);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size())
        bad_line(line, "key " + in_quotes(text) + " is not an int64 (--keys string?)");
}

void parse_key(std::string_view text, std::uint64_t line, std::string& key) {
    key.clear();
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '\\') {
            key += text[i];
            continue;
        }
        if (i + 1 >= text.size()) bad_line(line, "the key ends with a lone backslash");
        const char e = text[++i];
        if (e == '\\')
            key += '\\';
        else if (e == 't')
            key += '\t';
        else if (e == 'n')
            key += '\n';
        else if (e == 'r')
            key += '\r';
        else if (e == 'x' && i + 2 < text.size() && hex_digit(text[i + 1]) >= 0 &&
                 hex_digit(text[i + 2]) >= 0) {
            key += static_cast<char>(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2]));
            i += 2;
        } else
            bad_line(line, "unknown escape \\" + std::string(1, e) +
                               " in the key (\\\\, \\t, "
                               "\\n, \\r, \\xNN)");
    }
}

// The number of comma-separated values in `text`.
std::size_t count_values(std::string_view text) {
    return text.empty() ? 0 : std::count(text.begin(), text.end(), ',') + 1;
}

// Appends the `dim` floats of `text` to `out`.
void parse_values(std::string_view text, std::size_t dim, std::uint64_t line,
                  std::vector<float>& out) {
    const std::size_t n = count_values(text);
    if (n != dim)
        bad_line(line, std::to_string(n) + " value" + (n == 1 ? "" : "s") + ", expected " +
                           std::to_string(dim) + " (the dimension)");
    std::size_t at = 0;
    for (std::size_t i = 0; i < dim; ++i) {
        const std::size_t comma = std::min(text.find(',', at), text.size());
        const std::string_view v = text.substr(at, comma - at);
        float f = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), f);
        if (v.empty() || ec != std::errc() || end != v.data() + v.size())
            bad_line(line, "value " + std::to_string(i + 1) + " " + in_quotes(v) +
                               " is not a float32 number");
        out.push_back(f);
        at = comma + 1;
    }
}

// One data line split at its tab.
std::pair<std::string_view, std::string_view> split_line(std::string_view text,
                                                         std::uint64_t line) {
    const auto tab = text.find('\t');
    if (tab == std::string_view::npos) bad_line(line, "no tab between the key and the values");
    return {text.substr(0, tab), text.substr(tab + 1)};
}

// ---- input lines ----

// Lines of a FILE*, without their '\n' (nor a '\r' before it).
class line_reader {
public:
    explicit line_reader(std::FILE* f)
        : file_(f) {}
    ~line_reader() { std::free(buffer_); }
    line_reader(const line_reader&) = delete;
    line_reader& operator=(const line_reader&) = delete;

    bool next(std::string_view& line) {
        const ssize_t n = ::getline(&buffer_, &capacity_, file_);
        if (n < 0) return false;
        std::size_t size = static_cast<std::size_t>(n);
        if (size > 0 && buffer_[size - 1] == '\n') --size;
        if (size > 0 && buffer_[size - 1] == '\r') --size;
        line = std::string_view(buffer_, size);
        ++number_;
        return true;
    }
    std::uint64_t number() const noexcept { return number_; }

private:
    std::FILE* file_;
    char* buffer_ = nullptr;
    std::size_t capacity_ = 0;
    std::uint64_t number_ = 0;
};

struct file_closer {
    void operator()(std::FILE* f) const {
        if (f) std::fclose(f);
    }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;

// What the first pass over an import learned.
struct import_plan {
    key_kind keys = key_kind::int64;
    std::size_t dim = 0;
    std::uint64_t entries = 0;
    file_ptr input; // the input again, from its start (stdin: a spooled copy)
};

bool skipped(std::string_view line) {
    return line.empty() || line.front() == '#';
}

// The first pass: checks every line (so that a malformed one writes nothing) and counts them.
import_plan check_input(const std::string& file, std::optional<key_kind> keys_option,
                        std::optional<std::size_t> dim_option) {
    import_plan plan;
    file_ptr in;
    file_ptr spool;
    if (file == "-") {
        spool.reset(std::tmpfile());
        if (!spool) throw std::invalid_argument("embedding import: cannot create a temporary file");
    } else {
        in.reset(std::fopen(file.c_str(), "rb"));
        if (!in) throw std::invalid_argument("embedding import: cannot open " + in_quotes(file));
    }
    std::FILE* source = in ? in.get() : stdin;
    const std::string where = file == "-" ? "stdin" : file;

    std::optional<key_kind> keys = keys_option;
    std::optional<std::size_t> dim = dim_option;
    line_reader lines(source);
    std::string_view line;
    std::vector<float> scratch;
    std::string string_key;
    std::int64_t int_key = 0;
    try {
        while (lines.next(line)) {
            if (spool) {
                std::fwrite(line.data(), 1, line.size(), spool.get());
                std::fputc('\n', spool.get());
            }
            const std::uint64_t n = lines.number();
            if (n == 1 && line.rfind("#akv-embedding", 0) == 0) {
                std::string_view rest = line.substr(std::string_view("#akv-embedding").size());
                while (!rest.empty()) {
                    const auto start = rest.find_first_not_of(' ');
                    if (start == std::string_view::npos) break;
                    rest.remove_prefix(start);
                    const std::string token(rest.substr(0, rest.find(' ')));
                    rest.remove_prefix(token.size());
                    if (token.rfind("keys=", 0) == 0) {
                        const key_kind k = parse_kind("header keys", token.substr(5));
                        if (keys && *keys != k)
                            bad_line(n, "the header says keys=" + kind_name(k) + ", --keys " +
                                            kind_name(*keys));
                        keys = k;
                    } else if (token.rfind("dim=", 0) == 0) {
                        const auto d =
                            parse_number<std::size_t>("header dim", token.substr(4), 1, 1'000'000);
                        if (dim && *dim != d)
                            bad_line(n, "the header says dim=" + std::to_string(d) + ", --dim " +
                                            std::to_string(*dim));
                        dim = d;
                    } else {
                        bad_line(n, "unknown header field " + in_quotes(token));
                    }
                }
                continue;
            }
            if (skipped(line)) continue;
            if (!keys) keys = key_kind::int64;
            const auto [key_text, values_text] = split_line(line, n);
            if (*keys == key_kind::int64)
                parse_key(key_text, n, int_key);
            else
                parse_key(key_text, n, string_key);
            if (!dim) dim = count_values(values_text);
            if (*dim == 0) bad_line(n, "no values");
            scratch.clear();
            parse_values(values_text, *dim, n, scratch);
            ++plan.entries;
        }
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("embedding import: " + where + " " + e.what() +
                                    "; nothing was written");
    }
    if (std::ferror(source)) throw std::invalid_argument("embedding import: cannot read " + where);
    if (plan.entries == 0)
        throw std::invalid_argument("embedding import: " + where + " holds no entry");
    plan.keys = keys.value_or(key_kind::int64);
    plan.dim = *dim;
    if (spool) {
        if (std::fflush(spool.get()) != 0)
            throw std::invalid_argument("embedding import: cannot write a temporary file");
        std::rewind(spool.get());
        plan.input = std::move(spool);
    } else {
        std::rewind(in.get());
        plan.input = std::move(in);
    }
    return plan;
}

// The second pass: the checked lines into the table, a batch at a time.
template <class K>
asio::awaitable<std::uint64_t> import_into(akv::client& cl, const std::string& name,
                                           import_plan& plan) {
    akv::kv::embedding_table<K> table(cl, name, plan.dim, cl.get_config().tfra);
    const std::size_t batch = std::max<std::size_t>(table.options().keys_sending_size * 16, 1);
    progress_bar progress(plan.entries, isatty(STDERR_FILENO) == 1);
    line_reader lines(plan.input.get());
    std::string_view line;
    std::vector<K> keys;
    std::vector<float> values;
    std::uint64_t written = 0;
    bool more = true;
    while (more) {
        keys.clear();
        values.clear();
        while (keys.size() < batch && (more = lines.next(line))) {
            const std::uint64_t n = lines.number();
            if ((n == 1 && line.rfind("#akv-embedding", 0) == 0) || skipped(line)) continue;
            const auto [key_text, values_text] = split_line(line, n);
            K key{};
            parse_key(key_text, n, key);
            keys.push_back(std::move(key));
            parse_values(values_text, plan.dim, n, values);
        }
        if (keys.empty()) continue;
        const std::span<const K> key_span(keys);
        const std::span<const float> value_span(values);
        try {
            co_await table.import_entries(key_span, value_span);
        } catch (const std::exception& e) {
            std::cerr << "akv: embedding import: " << written << " of " << plan.entries
                      << " entries were written before this error\n";
            throw;
        }
        written += keys.size();
        progress.advance(keys.size());
    }
    co_return written;
}

// ---- export ----

// What the table holds, read directly: its entries (HLEN of every bucket) and one stored pair
// (HRANDFIELD), whose size gives the dimension and tells an int64 key from a string.
struct table_probe {
    std::uint64_t entries = 0;
    std::optional<std::pair<std::string, std::string>> sample;
};

asio::awaitable<table_probe> probe(akv::client& cl, const std::vector<std::string>& buckets) {
    request req;
    for (const auto& b : buckets)
        req.push("HLEN", b);
    for (const auto& b : buckets)
        req.push("HRANDFIELD", b, 1, "WITHVALUES");
    generic_response resp;
    co_await cl.exec(req, resp);
    table_probe p;
    for (std::size_t i = 0; i < buckets.size(); ++i)
        p.entries += static_cast<std::uint64_t>(std::stoll(resp.at(i).value().str));
    for (std::size_t i = 0; i < buckets.size() && !p.sample; ++i) {
        const resp::value& pair = resp.at(buckets.size() + i).value();
        // RESP3: [[field, value]]; RESP2: [field, value].
        const resp::value& flat =
            pair.elements.size() == 1 && pair.elements[0].is_aggregate() ? pair.elements[0] : pair;
        if (flat.elements.size() >= 2) p.sample.emplace(flat.elements[0].str, flat.elements[1].str);
    }
    co_return p;
}

// Refuses a storage_slice smaller than the table's: the bucket after the last one it knows
// exists. (Bucket i has the same key whatever the count, so an export would miss entries
// silently, and an import would put keys where readers with the right count never look.)
asio::awaitable<void> check_storage_slice(akv::client& cl, const std::string& name) {
    akv::tfra_options wider = cl.get_config().tfra;
    const int slices = wider.storage_slice;
    wider.storage_slice = slices + 1;
    const akv::kv::embedding_table<std::string> probe_table(cl, name, 1, wider);
    request req;
    req.push("EXISTS", probe_table.bucket_keys().back());
    response<long long> resp;
    co_await cl.exec(req, resp);
    if (std::get<0>(resp).value() > 0)
        throw std::invalid_argument("embedding table " + in_quotes(name) + ": its bucket " +
                                    in_quotes(probe_table.bucket_keys().back()) +
                                    " exists, so it has more than storage_slice " +
                                    std::to_string(slices) + " buckets: give its --storage_slice");
}

// Where an export goes: FILE under a temporary name until complete, or stdout.
class export_output {
public:
    explicit export_output(const std::string& file)
        : file_(file) {
        if (file == "-") {
            out_ = stdout;
            return;
        }
        partial_ = file + ".akv-partial";
        owned_.reset(std::fopen(partial_.c_str(), "wb"));
        if (!owned_)
            throw std::invalid_argument("embedding export: cannot write " + in_quotes(partial_));
        out_ = owned_.get();
    }
    ~export_output() {
        if (owned_) {
            owned_.reset();
            std::filesystem::remove(partial_);
        }
    }
    void write(std::string_view bytes) { std::fwrite(bytes.data(), 1, bytes.size(), out_); }
    void commit() {
        const bool flushed = std::fflush(out_) == 0 && !std::ferror(out_);
        if (!flushed)
            throw std::invalid_argument("embedding export: cannot write " + in_quotes(file_));
        if (!owned_) return;
        const bool closed = std::fclose(owned_.release()) == 0;
        if (!closed)
            throw std::invalid_argument("embedding export: cannot write " + in_quotes(file_));
        std::filesystem::rename(partial_, file_);
    }

private:
    std::string file_;
    std::string partial_;
    file_ptr owned_;
    std::FILE* out_ = nullptr;
};

template <class K>
asio::awaitable<std::uint64_t> export_from(akv::client& cl, const std::string& name,
                                           std::size_t dim, std::uint64_t total,
                                           export_output& out) {
    akv::kv::embedding_table<K> table(cl, name, dim, cl.get_config().tfra);
    progress_bar progress(total, isatty(STDERR_FILENO) == 1);
    out.write(header(std::is_same_v<K, std::int64_t> ? key_kind::int64 : key_kind::string, dim));

    // Pages come bucket by bucket (HSCAN); each bucket is sorted by key and rid of the
    // duplicates HSCAN may return, then written.
    std::vector<std::pair<K, std::vector<float>>> bucket_entries;
    std::size_t current_bucket = 0;
    std::uint64_t written = 0;
    std::string text;
    const auto flush_bucket = [&] {
        std::sort(bucket_entries.begin(), bucket_entries.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        bucket_entries.erase(
            std::unique(bucket_entries.begin(), bucket_entries.end(),
                        [](const auto& a, const auto& b) { return a.first == b.first; }),
            bucket_entries.end());
        text.clear();
        for (const auto& [key, values] : bucket_entries)
            append_line<K>(text, key, values);
        out.write(text);
        written += bucket_entries.size();
        progress.advance(bucket_entries.size());
        bucket_entries.clear();
    };
    typename akv::kv::embedding_table<K>::export_sink sink = [&](std::span<const K> keys,
                                                                 std::span<const float> values) {
        const std::size_t bucket = table.bucket_of(keys.front());
        if (bucket != current_bucket) {
            flush_bucket();
            current_bucket = bucket;
        }
        for (std::size_t i = 0; i < keys.size(); ++i)
            bucket_entries.emplace_back(
                keys[i],
                std::vector<float>(values.begin() + i * dim, values.begin() + (i + 1) * dim));
    };
    co_await table.export_entries(sink);
    flush_bucket();
    co_return written;
}

// ---- subcommands ----

std::optional<std::size_t> dim_option(const parsed_args& a) {
    if (const auto d = a.value("--dim"))
        return parse_number<std::size_t>("option --dim", *d, 1, 1'000'000);
    return std::nullopt;
}

std::optional<key_kind> keys_option(const parsed_args& a) {
    if (const auto k = a.value("--keys")) return parse_kind("option --keys", *k);
    return std::nullopt;
}

asio::awaitable<int> export_table(akv::client& cl, const parsed_args& a) {
    const std::string name = *a.arg("TABLE");
    const std::string file = *a.arg("FILE");
    const key_kind keys = keys_option(a).value_or(key_kind::int64);
    std::optional<std::size_t> dim = dim_option(a);

    co_await check_storage_slice(cl, name);
    // A table of dimension 1 only to learn the bucket keys (they do not depend on it).
    const akv::kv::embedding_table<std::string> layout(cl, name, 1, cl.get_config().tfra);
    const table_probe p = co_await probe(cl, layout.bucket_keys());
    if (!p.sample)
        throw refused("embedding table " + in_quotes(name) + ": no entries (no such table with " +
                      std::to_string(layout.bucket_keys().size()) + " bucket(s) named like " +
                      in_quotes(layout.bucket_keys().front()) + "?)");
    const std::string& value = p.sample->second;
    if (value.size() % sizeof(float) != 0 || value.empty())
        throw refused("embedding table " + in_quotes(name) + ": a stored value of " +
                      std::to_string(value.size()) + " bytes, not float32 values");
    const std::size_t stored_dim = value.size() / sizeof(float);
    if (dim && *dim != stored_dim)
        throw refused("embedding table " + in_quotes(name) + ": its vectors have dimension " +
                      std::to_string(stored_dim) + ", not " + std::to_string(*dim) + " (--dim)");
    if (keys == key_kind::int64 && p.sample->first.size() != 8)
        throw refused("embedding table " + in_quotes(name) + ": a key of " +
                      std::to_string(p.sample->first.size()) +
                      " bytes, not an int64 (8 bytes): --keys string?");

    export_output out(file);
    std::uint64_t written = 0;
    if (keys == key_kind::int64)
        written = co_await export_from<std::int64_t>(cl, name, stored_dim, p.entries, out);
    else
        written = co_await export_from<std::string>(cl, name, stored_dim, p.entries, out);
    out.commit();
    if (file != "-")
        std::cout << "embedding table " << in_quotes(name) << ": " << written
                  << " entries (dimension " << stored_dim << ") exported to " << file << "\n";
    co_return exit_done;
}

// `plan`: the input, checked (before connecting: a malformed file needs no server).
asio::awaitable<int> import_table(akv::client& cl, const parsed_args& a, import_plan& plan) {
    const std::string name = *a.arg("TABLE");
    co_await check_storage_slice(cl, name);
    std::uint64_t written = 0;
    if (plan.keys == key_kind::int64)
        written = co_await import_into<std::int64_t>(cl, name, plan);
    else
        written = co_await import_into<std::string>(cl, name, plan);
    std::cout << "embedding table " << in_quotes(name) << ": " << written << " entries (dimension "
              << plan.dim << ") imported\n";
    co_return exit_done;
}

} // namespace

int run_embedding_command(const akv::config& cfg, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << embedding_usage;
        return exit_done;
    }
    parsed_args a;
    try {
        a = parse_args("embedding", subcommands(), args);
        dim_option(a);
        keys_option(a);
        if (a.arg("TABLE")->empty()) throw std::invalid_argument("embedding: empty TABLE name");
    } catch (const std::exception& e) {
        std::cerr << "akv: " << e.what() << "\n(akv embedding --help lists the subcommands)\n";
        return exit_usage;
    }
    import_plan plan;
    if (a.sub == "import") {
        try {
            plan = check_input(*a.arg("FILE"), keys_option(a), dim_option(a));
        } catch (const std::exception& e) {
            std::cerr << "akv: " << e.what() << "\n";
            return exit_usage;
        }
    }
    return run_on_client(cfg, [&](akv::client& cl) -> asio::awaitable<int> {
        if (a.sub == "export") co_return co_await export_table(cl, a);
        co_return co_await import_table(cl, a, plan);
    });
}

} // namespace akv::cli
