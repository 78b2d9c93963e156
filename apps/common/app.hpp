// What every bundled binary shares: flags that may also come from a JSON file, spdlog set-up,
// the Redis it talks to (a URL, or the embedded default whose data outlive the process), and
// exit codes that mean the same in each of them.
//
//   akv::app::command_line cl("akv-worker", "runs handlers for named queues", {
//       {"queue", "NAME=HANDLER", "run HANDLER on the jobs of queue NAME", true},
//   });
//   cl.parse(argc, argv);                       // throws usage_error; --help sets help_requested
//   akv::app::setup_logging(cl);
//   akv::app::redis_target redis(cl, "akv-worker");  // --redis URL or an embedded server
#pragma once

#include <akv/config.hpp>
#include <akv/testing/embedded_server.hpp>

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace akv::app {

// Exit codes of every bundled binary.
enum exit_code : int {
    exit_ok = 0,          // done, or shut down cleanly after SIGINT/SIGTERM
    exit_failure = 1,     // a runtime failure after start-up
    exit_usage = 2,       // bad flags, configuration file or value
    exit_unavailable = 3, // Redis could not be started or reached at start-up
};

// A bad flag, value or configuration file: the message names it.
struct usage_error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

struct flag {
    std::string name;       // without the dashes: "queue" is --queue
    std::string value_name; // empty: a switch, no value
    std::string help;
    bool repeat = false; // may be given several times (a JSON array in the file)
};

class command_line {
public:
    // `flags` are the program's own; --redis, --data-dir, --config, --log-level and --help are
    // added to every program.
    command_line(std::string program, std::string summary, std::vector<flag> flags,
                 std::string epilog = {});

    // Reads argv, and the file named by --config (a JSON object whose keys are flag names:
    // {"redis": "redis://...", "queue": ["a=exec"], "verbose": true}). The command line wins
    // over the file; a repeated flag given on the command line replaces the file's list.
    // Throws usage_error naming the flag, the value or the file's key.
    void parse(int argc, char** argv);

    bool help_requested() const noexcept { return help_; }
    std::string usage() const;
    const std::string& program() const noexcept { return program_; }

    bool has(std::string_view name) const; // given (a switch: set)
    std::optional<std::string> get(std::string_view name) const;
    std::string get_or(std::string_view name, std::string fallback) const;
    const std::vector<std::string>& all(std::string_view name) const;

    template <class T> T number(std::string_view name, T fallback) const {
        auto v = get(name);
        return v ? parse_number<T>(name, *v) : fallback;
    }

    // Throws usage_error "--NAME must be at least 1" for each given flag that is not.
    void require_positive(std::initializer_list<const char*> names) const;

    template <class T> static T parse_number(std::string_view name, std::string_view text) {
        T v{};
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc{} || p != text.data() + text.size() || text.empty())
            throw usage_error("--" + std::string(name) + ": expected a number, got '" +
                              std::string(text) + "'");
        return v;
    }

    std::vector<std::string> positional; // arguments that are not flags, in order

private:
    const flag* find(std::string_view name) const;
    void set(const flag& f, std::string value, bool from_file);
    void load_file(const std::string& path);

    std::string program_, summary_, epilog_;
    std::vector<flag> flags_;
    std::map<std::string, std::vector<std::string>, std::less<>> values_;
    std::map<std::string, bool, std::less<>> from_file_; // the values came from --config
    bool help_ = false;
};

// spdlog: "HH:MM:SS.mmm level program: message" on stderr, level from --log-level
// (trace, debug, info, warn, error, off; default info). Throws usage_error on a bad level.
void setup_logging(const command_line& cl);

// Where an app keeps its embedded server's data when --data-dir is not given:
// $AKV_DATA_DIR/<app>, else $XDG_DATA_HOME/async_kv/<app>, else ~/.local/share/async_kv/<app>.
std::filesystem::path default_data_dir(std::string_view app);

// The Redis an app talks to. With --redis URL (or $AKV_REDIS, which keeps a password off the
// command line), that server; otherwise a private redis-server
// with append-only on, its data in <data-dir>/redis, so the next run finds them. The data dir
// is locked (flock) while the server runs: a second instance is told to give --redis or
// another --data-dir instead of corrupting the first one's files.
class redis_target {
public:
    // Throws usage_error for a bad URL, std::runtime_error when the server cannot start or the
    // data dir is in use (exit_unavailable).
    redis_target(const command_line& cl, std::string_view app);
    ~redis_target();
    redis_target(const redis_target&) = delete;
    redis_target& operator=(const redis_target&) = delete;

    const akv::config& config() const noexcept { return config_; }
    akv::config& config() noexcept { return config_; }
    bool embedded() const noexcept { return server_ != nullptr; }
    akv::testing::embedded_server* server() noexcept { return server_.get(); }
    // The data dir the app uses for its own files (its embedded server's, or --data-dir).
    const std::filesystem::path& data_dir() const noexcept { return data_dir_; }

private:
    akv::config config_;
    std::unique_ptr<akv::testing::embedded_server> server_;
    std::filesystem::path data_dir_;
    int lock_fd_ = -1;
};

// What every main() does first: parse (with --config), --help (usage on stdout), logging, then
// the app's own `check` of its flags. nullopt: go on; else the exit code to return, the
// problem printed on stderr naming the flag ("akv-worker: --queue: expected NAME=HANDLER").
std::optional<int> start(command_line& cl, int argc, char** argv,
                         const std::function<void()>& check = {});

// The app's redis_target, or nullptr after logging why, with the exit code in `failure`
// (exit_usage for a bad URL, exit_unavailable when the server cannot start or is locked).
std::unique_ptr<redis_target> open_redis(const command_line& cl, std::string_view app,
                                         int& failure);

// "HOST:PORT" ("[::1]:PORT" too) of the flag --NAME; throws usage_error naming the flag.
std::pair<std::string, std::uint16_t> host_port(const std::string& flag, const std::string& value);

} // namespace akv::app
