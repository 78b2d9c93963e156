// The akv binary's data subcommands (stream, blob, model, embedding, monitor): output and exit
// status against a real server, one embedded server per test.
#include "support/harness.hpp"
#include "support/running_client.hpp"

#include <akv/kv/embedding_table.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <poll.h>
#include <pty.h>
#include <random>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

// A fresh directory under the system's temporary one, removed with its contents.
class temp_dir {
public:
    temp_dir() {
        std::string pattern = (fs::temp_directory_path() / "akv-cli-data-XXXXXX").string();
        if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    std::string operator/(const std::string& name) const { return (path_ / name).string(); }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct outcome {
    std::string out; // stdout
    std::string err; // stderr
    int status = -1;
};

// Runs `akv ARGS` through the shell (ARGS may redirect stdin), stdout and stderr apart; neither
// is a terminal.
outcome run(const std::string& args) {
    temp_dir scratch;
    const std::string err_file = scratch / "stderr";
    const std::string cmd = std::string(AKV_CLI_PATH) + " " + args + " 2>" + err_file;
    outcome o;
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) return o;
    std::array<char, 65536> buf;
    std::size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0)
        o.out.append(buf.data(), n);
    const int raw = pclose(pipe);
    o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    o.err = read_file(err_file);
    return o;
}

std::vector<char*> argv_of(std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    return argv;
}

// Reads `fd` until EOF (or EIO: a pty whose other side closed), a deadline, or `stop(text)`.
bool read_until(int fd, std::string& text, std::chrono::steady_clock::time_point deadline,
                const std::function<bool(const std::string&)>& stop) {
    std::array<char, 4096> buf;
    while (!stop(text)) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n <= 0) return true; // EOF / EIO
        text.append(buf.data(), static_cast<std::size_t>(n));
    }
    return true;
}

int wait_status(pid_t pid) {
    int raw = 0;
    waitpid(pid, &raw, 0);
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
}

// Runs akv with stdin, stdout and stderr on a pseudo-terminal; what it wrote there.
outcome run_on_terminal(std::vector<std::string> args) {
    args.insert(args.begin(), AKV_CLI_PATH);
    std::vector<char*> argv = argv_of(args);
    winsize size{};
    size.ws_row = 40;
    size.ws_col = 120;
    int master = -1;
    const pid_t pid = forkpty(&master, nullptr, nullptr, &size);
    if (pid < 0) return {};
    if (pid == 0) {
        execv(argv[0], argv.data());
        _exit(127);
    }
    outcome o;
    const bool in_time = read_until(master, o.out, std::chrono::steady_clock::now() + 60s,
                                    [](const std::string&) { return false; });
    if (!in_time) kill(pid, SIGKILL);
    close(master);
    o.status = wait_status(pid);
    return o;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        lines.push_back(line);
    return lines;
}

// The whitespace-separated cells of the first line of `text` whose first cell is `key`.
std::vector<std::string> row(const std::string& text, const std::string& key) {
    for (const auto& line : lines_of(text)) {
        std::istringstream in(line);
        std::vector<std::string> cells;
        std::string c;
        while (in >> c)
            cells.push_back(c);
        if (!cells.empty() && cells[0] == key) return cells;
    }
    return {};
}

json::object json_of(const outcome& o) {
    EXPECT_EQ(o.status, 0) << o.out << o.err;
    try {
        return json::parse(o.out).as_object();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "not a JSON object: " << e.what() << "\n" << o.out;
        return {};
    }
}

std::int64_t number(const json::value& v) {
    return v.to_number<std::int64_t>();
}

struct cli {
    explicit cli(const akv::testing::embedded_server& server)
        : prefix("--redis " + server.url() + " ") {}
    outcome operator()(const std::string& args) const { return run(prefix + args); }
    // The same, asserting success (setup steps).
    outcome ok(const std::string& args) const {
        outcome o = run(prefix + args);
        EXPECT_EQ(o.status, 0) << args << "\n" << o.out << o.err;
        return o;
    }
    std::string prefix;
};

} // namespace

// ---- akv stream ----

namespace {

// s: entries 1-0, 2-0, 3-0; group g1 from the start, consumer c1 has read two (not acked);
// group g2 from the end.
void make_stream(const cli& akv) {
    akv.ok("XADD s 1-0 a 1");
    akv.ok("XADD s 2-0 a 2");
    akv.ok("XADD s 3-0 a 3");
    akv.ok("XGROUP CREATE s g1 0");
    akv.ok("XGROUP CREATE s g2 '$'");
    akv.ok("XREADGROUP GROUP g1 c1 COUNT 2 STREAMS s '>'");
}

} // namespace

TEST(CliStream, GroupsShowConsumersPendingLastDeliveredAndLag) {
    akv::testing::embedded_server server;
    cli akv(server);
    make_stream(akv);

    auto j = json_of(akv("stream groups s --json"));
    EXPECT_EQ(j["stream"].as_string(), "s");
    auto& groups = j["groups"].as_array();
    ASSERT_EQ(groups.size(), 2u);
    auto& g1 = groups[0].as_object();
    EXPECT_EQ(g1["name"].as_string(), "g1");
    EXPECT_EQ(number(g1["consumers"]), 1);
    EXPECT_EQ(number(g1["pending"]), 2);
    EXPECT_EQ(g1["last_delivered_id"].as_string(), "2-0");
    EXPECT_EQ(number(g1["lag"]), 1);
    auto& g2 = groups[1].as_object();
    EXPECT_EQ(g2["name"].as_string(), "g2");
    EXPECT_EQ(number(g2["consumers"]), 0);
    EXPECT_EQ(number(g2["pending"]), 0);
    EXPECT_EQ(g2["last_delivered_id"].as_string(), "3-0");
    EXPECT_EQ(number(g2["lag"]), 0);

    auto text = akv("stream groups s");
    EXPECT_EQ(text.status, 0) << text.err;
    EXPECT_EQ(row(text.out, "GROUP"), (std::vector<std::string>{"GROUP", "CONSUMERS", "PENDING",
                                                                "LAST", "DELIVERED", "LAG"}));
    EXPECT_EQ(row(text.out, "g1"), (std::vector<std::string>{"g1", "1", "2", "2-0", "1"}));
    EXPECT_EQ(row(text.out, "g2"), (std::vector<std::string>{"g2", "0", "0", "3-0", "0"}));
}

TEST(CliStream, PendingSummaryAndDetailPerEntry) {
    akv::testing::embedded_server server;
    cli akv(server);
    make_stream(akv);
    akv.ok("XREADGROUP GROUP g1 c2 COUNT 1 STREAMS s '>'");

    auto summary = json_of(akv("stream pending s g1 --json"));
    EXPECT_EQ(number(summary["pending"]), 3);
    EXPECT_EQ(summary["first_id"].as_string(), "1-0");
    EXPECT_EQ(summary["last_id"].as_string(), "3-0");
    auto& consumers = summary["consumers"].as_array();
    ASSERT_EQ(consumers.size(), 2u);
    EXPECT_EQ(consumers[0].as_object().at("name").as_string(), "c1");
    EXPECT_EQ(number(consumers[0].as_object().at("pending")), 2);
    EXPECT_EQ(consumers[1].as_object().at("name").as_string(), "c2");
    EXPECT_EQ(number(consumers[1].as_object().at("pending")), 1);
    EXPECT_FALSE(summary.contains("entries"));

    auto detail = json_of(akv("stream pending s g1 --detail --count 2 --json"));
    auto& entries = detail["entries"].as_array();
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].as_object().at("id").as_string(), "1-0");
    EXPECT_EQ(entries[0].as_object().at("consumer").as_string(), "c1");
    EXPECT_EQ(number(entries[0].as_object().at("deliveries")), 1);
    EXPECT_GE(number(entries[0].as_object().at("idle_ms")), 0);
    EXPECT_EQ(entries[1].as_object().at("id").as_string(), "2-0");

    auto text = akv("stream pending s g1 --detail");
    EXPECT_EQ(text.status, 0) << text.err;
    EXPECT_EQ(row(text.out, "pending"), (std::vector<std::string>{"pending", "3"}));
    EXPECT_EQ(row(text.out, "c2"), (std::vector<std::string>{"c2", "1"}));
    const auto third = row(text.out, "3-0");
    ASSERT_EQ(third.size(), 4u) << text.out;
    EXPECT_EQ(third[1], "c2");
    EXPECT_EQ(third[3], "1");
}

TEST(CliStream, InfoShowsLengthEndsAndGroups) {
    akv::testing::embedded_server server;
    cli akv(server);
    make_stream(akv);
    auto j = json_of(akv("stream info s --json"));
    EXPECT_EQ(number(j["length"]), 3);
    EXPECT_EQ(j["first_id"].as_string(), "1-0");
    EXPECT_EQ(j["last_id"].as_string(), "3-0");
    EXPECT_EQ(number(j["entries_added"]), 3);
    EXPECT_EQ(j["groups"].as_array().size(), 2u);

    auto text = akv("stream info s");
    EXPECT_EQ(text.status, 0) << text.err;
    EXPECT_EQ(row(text.out, "length"), (std::vector<std::string>{"length", "3"}));
    EXPECT_EQ(row(text.out, "groups"), (std::vector<std::string>{"groups", "2"}));
    EXPECT_EQ(row(text.out, "g1").size(), 5u) << text.out;
}

TEST(CliStream, NoSuchStreamOrGroupExitsOneNamingIt) {
    akv::testing::embedded_server server;
    cli akv(server);
    make_stream(akv);
    akv.ok("SET plain x");

    auto missing = akv("stream groups nostream");
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("\"nostream\": no such stream"), std::string::npos) << missing.err;
    EXPECT_EQ(missing.out, "");
    auto info = akv("stream info nostream --json");
    EXPECT_EQ(info.status, 1);
    auto group = akv("stream pending s nogroup");
    EXPECT_EQ(group.status, 1);
    EXPECT_NE(group.err.find("no consumer group \"nogroup\""), std::string::npos) << group.err;
    auto wrong_type = akv("stream info plain");
    EXPECT_EQ(wrong_type.status, 1);
    EXPECT_NE(wrong_type.err.find("not a stream"), std::string::npos) << wrong_type.err;
}

TEST(CliStream, BadArgumentsExitTwoNamingTheProblem) {
    akv::testing::embedded_server server;
    cli akv(server);
    make_stream(akv);
    auto missing_group = akv("stream pending s");
    EXPECT_EQ(missing_group.status, 2);
    EXPECT_NE(missing_group.err.find("expected STREAM GROUP, got 1 argument"), std::string::npos)
        << missing_group.err;
    auto count_alone = akv("stream pending s g1 --count 3");
    EXPECT_EQ(count_alone.status, 2);
    EXPECT_NE(count_alone.err.find("--count goes with --detail"), std::string::npos)
        << count_alone.err;
    auto bad_count = akv("stream pending s g1 --detail --count many");
    EXPECT_EQ(bad_count.status, 2);
    EXPECT_NE(bad_count.err.find("--count: \"many\""), std::string::npos) << bad_count.err;
    auto unknown = akv("stream frobnicate s");
    EXPECT_EQ(unknown.status, 2);
    EXPECT_NE(unknown.err.find("unknown stream subcommand \"frobnicate\""), std::string::npos)
        << unknown.err;
    auto option = akv("stream info s --verbose");
    EXPECT_EQ(option.status, 2);
    EXPECT_NE(option.err.find("unknown option --verbose"), std::string::npos) << option.err;
}

TEST(CliStream, RequeueSendsDeadLettersBackToTheirSource) {
    akv::testing::embedded_server server;
    cli akv(server);
    make_stream(akv);
    // As a consumer group writes them: where from and why, then the entry's own fields.
    akv.ok("XADD s:dead 5-0 dead:id 1-0 dead:group g1 dead:deliveries 6 dead:reason boom a 1");
    akv.ok("XADD s:dead 6-0 dead:id 2-0 dead:group g1 dead:deliveries 6 dead:reason boom a 2");
    akv.ok("XADD s:dead 7-0 note 'written by hand'");

    auto one = json_of(akv("stream requeue s:dead 5-0 --json"));
    EXPECT_EQ(one["source"].as_string(), "s");
    EXPECT_EQ(one["id"].as_string(), "5-0");
    const std::string new_id(one["new_id"].as_string());
    auto added = akv("XRANGE s " + new_id + " " + new_id);
    EXPECT_NE(added.out.find("\"a\"\n"), std::string::npos) << added.out;
    EXPECT_EQ(added.out.find("dead:"), std::string::npos) << added.out; // its own fields only

    auto rest = akv("stream requeue s:dead --all");
    EXPECT_EQ(rest.status, 0) << rest.err;
    EXPECT_EQ(rest.out, "1 sent back to s, 1 left (no dead:id field)\n");
    EXPECT_EQ(akv("XLEN s").out, "(integer) 5\n");
    EXPECT_EQ(akv("XLEN s:dead").out, "(integer) 1\n");

    auto unknown = akv("stream requeue s:dead 9-9");
    EXPECT_EQ(unknown.status, 1);
    EXPECT_NE(unknown.err.find("no entry \"9-9\""), std::string::npos) << unknown.err;
    auto not_dead = akv("stream requeue s 1-0");
    EXPECT_EQ(not_dead.status, 1);
    EXPECT_NE(not_dead.err.find("not a dead-letter stream"), std::string::npos) << not_dead.err;
    auto both = akv("stream requeue s:dead 7-0 --all");
    EXPECT_EQ(both.status, 2);
    EXPECT_NE(both.err.find("an entry ID or --all"), std::string::npos) << both.err;
}

// ---- akv blob ----

namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::string s(n, '\0');
    for (auto& c : s)
        c = static_cast<char>(gen() & 0xff);
    return s;
}

} // namespace

TEST(CliBlob, PutThenGetRoundTripsThreeMebibytesByteIdentical) {
    akv::testing::embedded_server server;
    cli akv(server);
    temp_dir dir;
    const std::string bytes = random_bytes(3u << 20, 7);
    write_file(dir / "in.bin", bytes);

    auto put = akv("blob put big " + (dir / "in.bin"));
    EXPECT_EQ(put.status, 0) << put.err;
    EXPECT_EQ(put.out, "blob \"big\" stored: 3145728 bytes\n");

    auto get = akv("blob get big " + (dir / "out.bin"));
    EXPECT_EQ(get.status, 0) << get.err;
    const std::string back = read_file(dir / "out.bin");
    EXPECT_EQ(back.size(), bytes.size());
    EXPECT_TRUE(back == bytes) << "the file read back differs";
    EXPECT_FALSE(fs::exists(dir / "out.bin.akv-partial"));

    auto to_stdout = akv("blob get big");
    EXPECT_EQ(to_stdout.status, 0) << to_stdout.err;
    EXPECT_TRUE(to_stdout.out == bytes) << "stdout holds " << to_stdout.out.size() << " bytes";
}

TEST(CliBlob, PutFromStdinAndListWithPatternAndPrefix) {
    akv::testing::embedded_server server;
    cli akv(server);
    temp_dir dir;
    write_file(dir / "a.txt", "hello");
    akv.ok("blob put alpha - --content-type text/plain < " + (dir / "a.txt"));
    akv.ok("blob put beta " + (dir / "a.txt"));
    akv.ok("blob put gamma " + (dir / "a.txt") + " --prefix other:");

    EXPECT_EQ(akv("blob get alpha").out, "hello");

    auto all = json_of(akv("blob list --json"));
    EXPECT_EQ(all["prefix"].as_string(), "blob:");
    auto& objects = all["objects"].as_array();
    ASSERT_EQ(objects.size(), 2u);
    EXPECT_EQ(objects[0].as_object().at("name").as_string(), "alpha");
    EXPECT_EQ(number(objects[0].as_object().at("size")), 5);
    EXPECT_EQ(objects[0].as_object().at("content_type").as_string(), "text/plain");
    EXPECT_EQ(objects[1].as_object().at("name").as_string(), "beta");

    auto pattern = akv("blob list 'b*'");
    EXPECT_EQ(pattern.status, 0) << pattern.err;
    EXPECT_EQ(row(pattern.out, "beta").at(1), "5");
    EXPECT_TRUE(row(pattern.out, "alpha").empty()) << pattern.out;

    auto other = akv("blob list --prefix other:");
    EXPECT_EQ(row(other.out, "gamma").size(), 5u) << other.out;
    EXPECT_TRUE(row(other.out, "alpha").empty()) << other.out;
    EXPECT_EQ(akv("blob get gamma").status, 1);
    EXPECT_EQ(akv("blob get gamma --prefix other:").out, "hello");
}

TEST(CliBlob, RmRemovesAndAMissingKeyExitsOne) {
    akv::testing::embedded_server server;
    cli akv(server);
    temp_dir dir;
    write_file(dir / "a.txt", "bytes");
    akv.ok("blob put k " + (dir / "a.txt"));

    auto rm = akv("blob rm k");
    EXPECT_EQ(rm.status, 0) << rm.err;
    EXPECT_EQ(rm.out, "blob \"k\" removed\n");

    auto again = akv("blob rm k");
    EXPECT_EQ(again.status, 1);
    EXPECT_NE(again.err.find("blob \"k\": no such object"), std::string::npos) << again.err;
    auto get = akv("blob get k " + (dir / "out"));
    EXPECT_EQ(get.status, 1);
    EXPECT_NE(get.err.find("no such object"), std::string::npos) << get.err;
    EXPECT_FALSE(fs::exists(dir / "out"));
    EXPECT_FALSE(fs::exists(dir / "out.akv-partial"));
}

TEST(CliBlob, BadArgumentsExitTwoNamingTheProblem) {
    akv::testing::embedded_server server;
    cli akv(server);
    temp_dir dir;
    auto no_file = akv("blob put k " + (dir / "missing"));
    EXPECT_EQ(no_file.status, 2);
    EXPECT_NE(no_file.err.find(dir / "missing"), std::string::npos) << no_file.err;
    auto missing_arg = akv("blob put k");
    EXPECT_EQ(missing_arg.status, 2);
    EXPECT_NE(missing_arg.err.find("expected KEY FILE"), std::string::npos) << missing_arg.err;
    auto empty_prefix = akv("blob rm k --prefix ''");
    EXPECT_EQ(empty_prefix.status, 2);
    EXPECT_NE(empty_prefix.err.find("--prefix"), std::string::npos) << empty_prefix.err;
}

// ---- akv model ----

namespace {

// Regular files by relative path ("<dir>" for a directory), of everything under `root`.
std::map<std::string, std::string> tree(const fs::path& root) {
    std::map<std::string, std::string> t;
    for (const auto& e : fs::recursive_directory_iterator(root)) {
        const std::string rel = fs::relative(e.path(), root).generic_string();
        t[rel] = e.is_directory() ? "<dir>" : read_file(e.path().string());
    }
    return t;
}

void make_model_dir(const fs::path& root, const std::string& version_text) {
    fs::create_directories(root / "weights" / "layers");
    fs::create_directories(root / "empty");
    write_file((root / "config.json").string(), "{\"version\":\"" + version_text + "\"}");
    write_file((root / "weights" / "layers" / "0.bin").string(), random_bytes(100000, 3));
    write_file((root / "README").string(), version_text);
}

} // namespace

TEST(CliModel, PutDirectoryThenGetIntoAnotherIsIdentical) {
    akv::testing::embedded_server server;
    cli akv(server);
    temp_dir dir;
    make_model_dir(dir.path() / "src", "one");

    auto put = akv("model put clf " + (dir / "src"));
    EXPECT_EQ(put.status, 0) << put.err;
    EXPECT_EQ(put.out, "clf:v1\n");

    auto get = akv("model get clf " + (dir / "dst"));
    EXPECT_EQ(get.status, 0) << get.err;
    EXPECT_EQ(get.out.rfind("clf:v1 written to", 0), 0u) << get.out;
    const auto original = tree(dir.path() / "src");
    EXPECT_EQ(original.size(), 6u); // 3 files, 3 directories (one empty)
    EXPECT_EQ(tree(dir.path() / "dst"), original);
}

TEST(CliModel, ListShowsVersionsWithSizeFilesCreatedAndTags) {
    akv::testing::embedded_server server;
    cli akv(server);
    temp_dir dir;
    make_model_dir(dir.path() / "one", "one");
    make_model_dir(dir.path() / "two", "two");
    akv.ok("model put clf " + (dir / "one") +
           " --tag prod --tag stable --metadata '{\"acc\":0.9}'");
    akv.ok("model put clf " + (dir / "two"));

    auto j = json_of(akv("model list clf --json"));
    EXPECT_EQ(number(j["latest"]), 2);
    auto& versions = j["versions"].as_array();
    ASSERT_EQ(versions.size(), 2u);
    auto& v1 = versions[0].as_object();
    EXPECT_EQ(number(v1.at("version")), 1);
    EXPECT_EQ(v1.at("name").as_string(), "clf:v1");
    EXPECT_EQ(number(v1.at("files")), 3);
    EXPECT_GT(number(v1.at("archive_size")), 0);
    EXPECT_EQ(number(v1.at("unpacked_size")), 100000 + 17 + 3);
    EXPECT_GT(number(v1.at("created_ms")), 1'600'000'000'000);
    EXPECT_EQ(v1.at("tags").as_array().size(), 2u);
    EXPECT_EQ(v1.at("tags").as_array()[0].as_string(), "prod");
    EXPECT_EQ(v1.at("metadata").as_object().at("acc").as_double(), 0.9);
    EXPECT_EQ(v1.at("latest").as_bool(), false);
    EXPECT_EQ(versions[1].as_object().at("latest").as_bool(), true);

    auto text = akv("model list clf");
    EXPECT_EQ(text.status, 0) << text.err;
    const auto first = row(text.out, "clf:v1");
    ASSERT_EQ(first.size(), 6u) << text.out;
    EXPECT_EQ(first[2], "3");
    EXPECT_EQ(first[5], "prod,stable");
    EXPECT_EQ(row(text.out, "clf:v2").back(), "latest");
}

TEST(CliModel, TagMovesAndGetByTagWritesThatVersion) {
    akv::testing::embedded_server server;
    cli akv(server);
    temp_dir dir;
    make_model_dir(dir.path() / "one", "one");
    make_model_dir(dir.path() / "two", "two");
    akv.ok("model put clf " + (dir / "one") + " --tag prod");
    akv.ok("model put clf " + (dir / "two"));

    auto first = akv("model get clf prod " + (dir / "got1"));
    EXPECT_EQ(first.status, 0) << first.err;
    EXPECT_EQ(read_file(dir / "got1/README"), "one");

    auto tag = akv("model tag clf prod 2");
    EXPECT_EQ(tag.status, 0) << tag.err;
    EXPECT_EQ(tag.out, "tag prod -> clf:v2\n");
    akv.ok("model get clf prod " + (dir / "got2"));
    EXPECT_EQ(read_file(dir / "got2/README"), "two");
    akv.ok("model tag clf old clf:v1");
    akv.ok("model get clf old " + (dir / "got3"));
    EXPECT_EQ(read_file(dir / "got3/README"), "one");
}

TEST(CliModel, NoSuchModelVersionOrTagExitsOneNamingIt) {
    akv::testing::embedded_server server;
    cli akv(server);
    temp_dir dir;
    make_model_dir(dir.path() / "one", "one");
    akv.ok("model put clf " + (dir / "one"));

    auto list = akv("model list nomodel");
    EXPECT_EQ(list.status, 1);
    EXPECT_NE(list.err.find("model \"nomodel\": no such model"), std::string::npos) << list.err;
    auto get = akv("model get nomodel " + (dir / "x"));
    EXPECT_EQ(get.status, 1);
    EXPECT_NE(get.err.find("no such model"), std::string::npos) << get.err;
    auto version = akv("model get clf v9 " + (dir / "x"));
    EXPECT_EQ(version.status, 1);
    EXPECT_NE(version.err.find("\"v9\""), std::string::npos) << version.err;
    auto tag = akv("model tag clf prod 9");
    EXPECT_EQ(tag.status, 1);
    EXPECT_NE(tag.err.find("no version or tag \"9\""), std::string::npos) << tag.err;
}

TEST(CliModel, BadArgumentsExitTwoAndStoreNothing) {
    akv::testing::embedded_server server;
    cli akv(server);
    temp_dir dir;
    make_model_dir(dir.path() / "one", "one");
    auto metadata = akv("model put clf " + (dir / "one") + " --metadata '{oops'");
    EXPECT_EQ(metadata.status, 2);
    EXPECT_NE(metadata.err.find("--metadata is not JSON"), std::string::npos) << metadata.err;
    auto tag = akv("model put clf " + (dir / "one") + " --tag latest");
    EXPECT_EQ(tag.status, 2);
    EXPECT_NE(tag.err.find("tag \"latest\""), std::string::npos) << tag.err;
    auto not_dir = akv("model put clf " + (dir / "nothing"));
    EXPECT_EQ(not_dir.status, 2);
    EXPECT_NE(not_dir.err.find(dir / "nothing"), std::string::npos) << not_dir.err;
    auto name = akv("model put 'c{l}f' " + (dir / "one"));
    EXPECT_EQ(name.status, 2);
    EXPECT_NE(name.err.find("c{l}f"), std::string::npos) << name.err;
    // None of these stored a version.
    EXPECT_EQ(akv("model list clf").status, 1);
}

// ---- akv embedding ----

namespace {

constexpr std::size_t dim = 8;

float value_of(std::int64_t key, std::size_t j) {
    if (j == 0) return static_cast<float>(key) * -0.37f;
    if (j == 1) return 1e-30f * static_cast<float>(key + 1);
    return static_cast<float>(key * 31 + static_cast<std::int64_t>(j)) / 7.0f;
}

akv::tfra_options slices(int n) {
    akv::tfra_options o;
    o.storage_slice = n;
    return o;
}

// Fills the int64 table `name` (4 buckets) with keys 0..count-1 through the library.
void fill_table(const akv::testing::embedded_server& server, const std::string& name,
                std::int64_t count) {
    boost::asio::io_context io;
    akv::test::running_client rc(io, server.config());
    std::vector<std::int64_t> keys;
    std::vector<float> values;
    for (std::int64_t k = 0; k < count; ++k) {
        keys.push_back(k * 1000 - 50'000);
        for (std::size_t j = 0; j < dim; ++j)
            values.push_back(value_of(keys.back(), j));
    }
    akv::test::run_task(io, [&]() -> boost::asio::awaitable<void> {
        akv::kv::embedding_table<std::int64_t> table(rc.client, name, dim, slices(4));
        const std::span<const std::int64_t> key_span(keys);
        const std::span<const float> value_span(values);
        co_await table.insert(key_span, value_span);
    }());
}

// The vectors of `keys` in the int64 table `name`, and whether each is held.
std::pair<std::vector<float>, std::vector<bool>>
find_in_table(const akv::testing::embedded_server& server, const std::string& name,
              const std::vector<std::int64_t>& keys) {
    boost::asio::io_context io;
    akv::test::running_client rc(io, server.config());
    std::vector<float> out(keys.size() * dim);
    std::vector<bool> found;
    akv::test::run_task(io, [&]() -> boost::asio::awaitable<void> {
        akv::kv::embedding_table<std::int64_t> table(rc.client, name, dim, slices(4));
        const std::span<const std::int64_t> key_span(keys);
        const std::span<float> out_span(out);
        const auto init = akv::kv::embedding_initializer::zeros();
        co_await table.find_into(key_span, init, out_span, found);
    }());
    return {out, found};
}

} // namespace

TEST(CliEmbedding, ExportImportIntoAnotherTableExportsIdentically) {
    akv::testing::embedded_server server;
    const cli akv(server);
    temp_dir dir;
    fill_table(server, "users", 200);
    const std::string opts = "--storage_slice 4 embedding ";

    auto exported = akv(opts + "export users " + (dir / "a.tsv"));
    EXPECT_EQ(exported.status, 0) << exported.err;
    EXPECT_EQ(exported.out, "embedding table \"users\": 200 entries (dimension 8) exported to " +
                                (dir / "a.tsv") + "\n");
    EXPECT_EQ(exported.err, ""); // not a terminal: no progress bar
    const std::string first = read_file(dir / "a.tsv");
    const auto lines = lines_of(first);
    ASSERT_EQ(lines.size(), 201u);
    EXPECT_EQ(lines[0], "#akv-embedding keys=int64 dim=8");
    // Key 1000 (from the library's insert), its floats in their shortest form.
    std::string expected = "1000\t";
    for (std::size_t j = 0; j < dim; ++j) {
        char buf[32];
        expected +=
            (j ? "," : "") + std::string(buf, std::to_chars(buf, buf + 32, value_of(1000, j)).ptr);
    }
    EXPECT_EQ(occurrences(first, "\n" + expected + "\n"), 1u) << expected;

    auto imported = akv(opts + "import copy " + (dir / "a.tsv"));
    EXPECT_EQ(imported.status, 0) << imported.err;
    EXPECT_EQ(imported.out, "embedding table \"copy\": 200 entries (dimension 8) imported\n");

    akv.ok(opts + "export copy " + (dir / "b.tsv"));
    EXPECT_TRUE(read_file(dir / "b.tsv") == first) << read_file(dir / "b.tsv");

    // The copy holds the very floats the library wrote.
    const std::vector<std::int64_t> keys{-50'000, 1000, 149'000};
    const auto [values, found] = find_in_table(server, "copy", keys);
    for (std::size_t i = 0; i < keys.size(); ++i) {
        EXPECT_TRUE(found[i]) << keys[i];
        for (std::size_t j = 0; j < dim; ++j)
            EXPECT_EQ(values[i * dim + j], value_of(keys[i], j)) << keys[i] << "[" << j << "]";
    }
}

TEST(CliEmbedding, StringKeysFromStdinWithEscapesExportSorted) {
    akv::testing::embedded_server server;
    cli akv(server);
    temp_dir dir;
    write_file(dir / "in.tsv", "#akv-embedding keys=string dim=2\n"
                               "zeta\t1,2\n"
                               "\n"
                               "# a comment\n"
                               "tab\\there\t-0.5,3.25e-05\n"
                               "alpha\\x01\\\\\tinf,nan\n");
    auto imported = akv("embedding import words - < " + (dir / "in.tsv"));
    EXPECT_EQ(imported.status, 0) << imported.err;
    EXPECT_EQ(imported.out, "embedding table \"words\": 3 entries (dimension 2) imported\n");

    auto exported = akv("embedding export words - --keys string");
    EXPECT_EQ(exported.status, 0) << exported.err;
    EXPECT_EQ(exported.out, "#akv-embedding keys=string dim=2\n"
                            "alpha\\x01\\\\\tinf,nan\n"
                            "tab\\there\t-0.5,3.25e-05\n"
                            "zeta\t1,2\n");
}

TEST(CliEmbedding, MalformedLineNamesItsNumberAndWritesNothing) {
    akv::testing::embedded_server server;
    cli akv(server);
    temp_dir dir;
    std::string text = "#akv-embedding keys=int64 dim=3\n";
    for (int k = 1; k <= 5; ++k)
        text += std::to_string(k) + "\t1,2,3\n";
    write_file(dir / "short.tsv", text + "6\t1,2\n");
    write_file(dir / "word.tsv", text + "7\t1,x,3\n");
    write_file(dir / "key.tsv", text + "eight\t1,2,3\n");
    write_file(dir / "tab.tsv", text + "9 1,2,3\n");

    auto short_line = akv("embedding import t " + (dir / "short.tsv"));
    EXPECT_EQ(short_line.status, 2);
    EXPECT_NE(short_line.err.find("line 7: 2 values, expected 3"), std::string::npos)
        << short_line.err;
    EXPECT_NE(short_line.err.find("nothing was written"), std::string::npos) << short_line.err;
    auto word = akv("embedding import t " + (dir / "word.tsv"));
    EXPECT_EQ(word.status, 2);
    EXPECT_NE(word.err.find("line 7: value 2 \"x\""), std::string::npos) << word.err;
    auto key = akv("embedding import t " + (dir / "key.tsv"));
    EXPECT_EQ(key.status, 2);
    EXPECT_NE(key.err.find("line 7: key \"eight\" is not an int64"), std::string::npos) << key.err;
    auto tab = akv("embedding import t - < " + (dir / "tab.tsv"));
    EXPECT_EQ(tab.status, 2);
    EXPECT_NE(tab.err.find("stdin line 7: no tab"), std::string::npos) << tab.err;

    // The five good lines before each bad one were not written either.
    EXPECT_EQ(akv("--raw DBSIZE").out, "0\n");
}

TEST(CliEmbedding, MissingTableExitsOneAndBadOptionsExitTwo) {
    akv::testing::embedded_server server;
    cli akv(server);
    temp_dir dir;
    auto missing = akv("embedding export nosuch " + (dir / "out.tsv"));
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("embedding table \"nosuch\": no entries"), std::string::npos)
        << missing.err;
    EXPECT_FALSE(fs::exists(dir / "out.tsv"));

    fill_table(server, "users", 3);
    auto wrong_dim = akv("--storage_slice 4 embedding export users - --dim 5");
    EXPECT_EQ(wrong_dim.status, 1);
    EXPECT_NE(wrong_dim.err.find("dimension 8, not 5"), std::string::npos) << wrong_dim.err;
    auto keys = akv("embedding export users - --keys float");
    EXPECT_EQ(keys.status, 2);
    EXPECT_NE(keys.err.find("--keys: \"float\""), std::string::npos) << keys.err;
    auto no_file = akv("embedding import users " + (dir / "none.tsv"));
    EXPECT_EQ(no_file.status, 2);
    EXPECT_NE(no_file.err.find(dir / "none.tsv"), std::string::npos) << no_file.err;
}

TEST(CliEmbedding, ProgressBarOnlyOnATerminal) {
    akv::testing::embedded_server server;
    temp_dir dir;
    fill_table(server, "users", 50);
    auto piped = run("--redis " + server.url() + " --storage_slice 4 embedding export users " +
                     (dir / "piped.tsv"));
    EXPECT_EQ(piped.status, 0) << piped.err;
    EXPECT_EQ(piped.err, "");

    auto tty = run_on_terminal({"--redis", server.url(), "--storage_slice", "4", "embedding",
                                "export", "users", dir / "tty.tsv"});
    EXPECT_EQ(tty.status, 0) << tty.out;
    EXPECT_NE(tty.out.find("50/50 100%"), std::string::npos) << tty.out;
    EXPECT_NE(tty.out.find("[##############################]"), std::string::npos) << tty.out;
    EXPECT_EQ(read_file(dir / "tty.tsv"), read_file(dir / "piped.tsv"));
}

// ---- akv monitor ----

namespace {

// Queue "jobs" with two waiting jobs; stream "s" as make_stream (g1: 2 pending, lag 1).
void make_queue_and_stream(const cli& akv) {
    akv.ok("queue add jobs one");
    akv.ok("queue add jobs two");
    make_stream(akv);
}

} // namespace

TEST(CliMonitor, CountTwoPrintsTwoSamplesOfQueueAndStream) {
    akv::testing::embedded_server server;
    cli akv(server);
    make_queue_and_stream(akv);
    auto m = akv("monitor --count 2 --interval-ms 50 --queue jobs --stream s:g1 --stream s");
    EXPECT_EQ(m.status, 0) << m.err;
    const auto lines = lines_of(m.out);
    ASSERT_EQ(lines.size(), 2u) << m.out;
    for (const auto& line : lines) {
        EXPECT_NE(line.find(" ops/s="), std::string::npos) << line;
        EXPECT_NE(line.find(" clients="), std::string::npos) << line;
        EXPECT_NE(line.find(" memory="), std::string::npos) << line;
        EXPECT_NE(line.find("| queue jobs: waiting=2 delayed=0 active=0 failed=0 completed=0 |"),
                  std::string::npos)
            << line;
        EXPECT_NE(line.find("| stream s:g1: length=3 pending=2 lag=1 |"), std::string::npos)
            << line;
        EXPECT_NE(line.find("| stream s: length=3"), std::string::npos) << line;
    }
}

TEST(CliMonitor, JsonIsOneObjectPerSample) {
    akv::testing::embedded_server server;
    cli akv(server);
    make_queue_and_stream(akv);
    auto m = akv("monitor --json --count 2 --interval-ms 10 --queue jobs --stream s:g1");
    EXPECT_EQ(m.status, 0) << m.err;
    const auto lines = lines_of(m.out);
    ASSERT_EQ(lines.size(), 2u) << m.out;
    for (const auto& line : lines) {
        auto j = json::parse(line).as_object();
        EXPECT_GE(number(j["server"].as_object()["connected_clients"]), 1);
        EXPECT_GT(number(j["server"].as_object()["used_memory"]), 0);
        auto& q = j["queues"].as_array().at(0).as_object();
        EXPECT_EQ(q["queue"].as_string(), "jobs");
        EXPECT_EQ(number(q["waiting"]), 2);
        auto& s = j["streams"].as_array().at(0).as_object();
        EXPECT_EQ(s["stream"].as_string(), "s");
        EXPECT_EQ(s["group"].as_string(), "g1");
        EXPECT_EQ(number(s["length"]), 3);
        EXPECT_EQ(number(s["pending"]), 2);
        EXPECT_EQ(number(s["lag"]), 1);
    }
}

TEST(CliMonitor, StreamNameWithAColonIsTakenWhole) {
    akv::testing::embedded_server server;
    cli akv(server);
    akv.ok("XADD events:orders 1-0 a 1");
    auto m = akv("monitor --count 1 --stream events:orders");
    EXPECT_EQ(m.status, 0) << m.err;
    EXPECT_NE(m.out.find("| stream events:orders: length=1\n"), std::string::npos) << m.out;
}

TEST(CliMonitor, OnATerminalRedrawsInPlace) {
    akv::testing::embedded_server server;
    cli akv(server);
    make_queue_and_stream(akv);
    auto m = run_on_terminal({"--redis", server.url(), "monitor", "--count", "2", "--interval-ms",
                              "10", "--queue", "jobs", "--stream", "s:g1"});
    EXPECT_EQ(m.status, 0) << m.out;
    EXPECT_EQ(occurrences(m.out, "\x1b[H\x1b[2J"), 2u) << m.out;
    EXPECT_EQ(occurrences(m.out, "QUEUE"), 2u) << m.out;
    EXPECT_NE(m.out.find("sample 2"), std::string::npos) << m.out;
}

TEST(CliMonitor, SigintEndsWithExitZero) {
    akv::testing::embedded_server server;
    std::vector<std::string> args{AKV_CLI_PATH, "--redis",       server.url(),
                                  "monitor",    "--interval-ms", "20"};
    std::vector<char*> argv = argv_of(args);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv.data());
        _exit(127);
    }
    close(fds[1]);
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    // Two samples printed: the monitor is in its loop, its SIGINT handler in place.
    const bool sampled = read_until(fds[0], out, deadline, [](const std::string& text) {
        return std::count(text.begin(), text.end(), '\n') >= 2;
    });
    EXPECT_TRUE(sampled);
    kill(pid, SIGINT);
    read_until(fds[0], out, deadline, [](const std::string&) { return false; });
    close(fds[0]);
    EXPECT_EQ(wait_status(pid), 0) << out;
    EXPECT_GE(lines_of(out).size(), 2u);
}

TEST(CliMonitor, NoSuchQueueStreamOrGroupExitsOneAndBadOptionsTwo) {
    akv::testing::embedded_server server;
    cli akv(server);
    make_queue_and_stream(akv);
    auto queue = akv("monitor --count 1 --queue nojobs");
    EXPECT_EQ(queue.status, 1);
    EXPECT_NE(queue.err.find("queue \"nojobs\": no such queue"), std::string::npos) << queue.err;
    auto stream = akv("monitor --count 1 --stream nostream");
    EXPECT_EQ(stream.status, 1);
    EXPECT_NE(stream.err.find("\"nostream\": no such stream"), std::string::npos) << stream.err;
    auto group = akv("monitor --count 1 --stream s:nogroup");
    EXPECT_EQ(group.status, 1);
    EXPECT_NE(group.err.find("no consumer group \"nogroup\""), std::string::npos) << group.err;
    auto interval = akv("monitor --interval-ms 0");
    EXPECT_EQ(interval.status, 2);
    EXPECT_NE(interval.err.find("--interval-ms: \"0\""), std::string::npos) << interval.err;
    auto extra = akv("monitor jobs");
    EXPECT_EQ(extra.status, 2);
    EXPECT_NE(extra.err.find("expected nothing, got 1 argument"), std::string::npos) << extra.err;
}

// ---- help ----

TEST(CliData, EveryFamilyHasHelpAndTheMainUsageListsThem) {
    for (const std::string family : {"stream", "blob", "model", "embedding", "monitor"}) {
        auto help = run(family + " --help");
        EXPECT_EQ(help.status, 0) << family;
        EXPECT_EQ(help.out.rfind("usage: akv [OPTIONS] " + family, 0), 0u) << help.out;
        auto sub_help = run(family + " export --help");
        EXPECT_EQ(sub_help.out, help.out) << family;
    }
    auto main_help = run("--help");
    for (const std::string family : {"stream", "blob", "model", "embedding", "monitor"})
        EXPECT_NE(main_help.out.find("\n  " + family + " "), std::string::npos) << family;
}
