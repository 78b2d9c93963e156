#include "app.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <sstream>
#include <sys/file.h>
#include <unistd.h>

namespace akv::app {

namespace {

const std::vector<flag>& common_flags() {
    static const std::vector<flag> flags{
        {"redis", "URL",
         "Redis to use (redis://[user:pass@]host[:port][/db], rediss://, unix:///path); "
         "default: $AKV_REDIS, else a private redis-server, append-only, data in --data-dir"},
        {"data-dir", "DIR", "where the private redis-server and the app keep their files"},
        {"config", "FILE", "JSON object of flags, {\"flag-name\": value}; the command line wins"},
        {"log-level", "LEVEL", "trace, debug, info (default), warn, error, off"},
        {"help", "", "this text"},
    };
    return flags;
}

std::string json_text(const boost::json::value& v, const std::string& key,
                      const std::string& file) {
    if (v.is_string()) return std::string(v.get_string());
    if (v.is_int64()) return std::to_string(v.get_int64());
    if (v.is_uint64()) return std::to_string(v.get_uint64());
    if (v.is_double()) {
        std::ostringstream o;
        o << v.get_double();
        return o.str();
    }
    throw usage_error(file + ": \"" + key + "\": expected a string or a number");
}

} // namespace

command_line::command_line(std::string program, std::string summary, std::vector<flag> flags,
                           std::string epilog)
    : program_(std::move(program))
    , summary_(std::move(summary))
    , epilog_(std::move(epilog))
    , flags_(std::move(flags)) {
    for (const auto& f : common_flags())
        flags_.push_back(f);
}

const flag* command_line::find(std::string_view name) const {
    for (const auto& f : flags_)
        if (f.name == name) return &f;
    return nullptr;
}

void command_line::set(const flag& f, std::string value, bool from_file) {
    auto& list = values_[f.name];
    auto& file_origin = from_file_[f.name];
    if (!from_file && file_origin) { // the command line replaces what the file said
        list.clear();
        file_origin = false;
    }
    if (from_file) file_origin = true;
    if (!f.repeat) list.clear();
    list.push_back(std::move(value));
}

void command_line::parse(int argc, char** argv) {
    std::vector<std::pair<const flag*, std::string>> given;
    std::optional<std::string> config_file;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--") {
            for (++i; i < argc; ++i)
                positional.emplace_back(argv[i]);
            break;
        }
        if (arg == "-h") arg = "--help";
        if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
            positional.push_back(arg);
            continue;
        }
        std::string name = arg.substr(2);
        std::optional<std::string> inline_value;
        if (auto eq = name.find('='); eq != std::string::npos) {
            inline_value = name.substr(eq + 1);
            name.resize(eq);
        }
        const flag* f = find(name);
        if (!f) throw usage_error("unknown option --" + name);
        std::string value;
        if (f->value_name.empty()) {
            if (inline_value) throw usage_error("--" + name + " takes no value");
            value = "true";
        } else if (inline_value) {
            value = *inline_value;
        } else {
            if (i + 1 >= argc)
                throw usage_error("--" + name + " needs a value (" + f->value_name + ")");
            value = argv[++i];
        }
        if (name == "help") help_ = true;
        if (name == "config") config_file = value;
        given.emplace_back(f, std::move(value));
    }
    if (config_file) load_file(*config_file);
    for (auto& [f, value] : given)
        set(*f, std::move(value), false);
}

void command_line::load_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw usage_error("--config: cannot read " + path + ": " + std::strerror(errno));
    std::stringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    boost::json::value doc = boost::json::parse(text.str(), ec);
    if (ec) throw usage_error(path + ": not JSON: " + ec.message());
    if (!doc.is_object()) throw usage_error(path + ": expected a JSON object of flags");
    for (const auto& [k, v] : doc.get_object()) {
        const std::string key(k);
        const flag* f = find(key);
        if (!f || key == "config" || key == "help")
            throw usage_error(path + ": unknown key \"" + key + "\"");
        if (f->value_name.empty()) {
            if (!v.is_bool()) throw usage_error(path + ": \"" + key + "\": expected true or false");
            if (v.get_bool()) set(*f, "true", true);
        } else if (v.is_array()) {
            if (!f->repeat)
                throw usage_error(path + ": \"" + key + "\": takes one value, not a list");
            for (const auto& item : v.get_array())
                set(*f, json_text(item, key, path), true);
        } else {
            set(*f, json_text(v, key, path), true);
        }
    }
}

bool command_line::has(std::string_view name) const {
    auto it = values_.find(name);
    return it != values_.end() && !it->second.empty();
}

std::optional<std::string> command_line::get(std::string_view name) const {
    auto it = values_.find(name);
    if (it == values_.end() || it->second.empty()) return std::nullopt;
    return it->second.back();
}

std::string command_line::get_or(std::string_view name, std::string fallback) const {
    auto v = get(name);
    return v ? *v : std::move(fallback);
}

const std::vector<std::string>& command_line::all(std::string_view name) const {
    static const std::vector<std::string> none;
    auto it = values_.find(name);
    return it == values_.end() ? none : it->second;
}

std::string command_line::usage() const {
    std::string out = "usage: " + program_ + " [OPTIONS]\n\n" + summary_ + "\n\noptions:\n";
    for (const auto& f : flags_) {
        std::string left = "  --" + f.name + (f.value_name.empty() ? "" : " " + f.value_name);
        if (f.repeat) left += " ...";
        if (left.size() < 30)
            left.resize(30, ' ');
        else
            left += "\n" + std::string(30, ' ');
        out += left + f.help + "\n";
    }
    if (!epilog_.empty()) out += "\n" + epilog_ + "\n";
    out += "\nexit status: 0 done (also after SIGINT/SIGTERM), 1 failure while running,\n"
           "2 bad flags or configuration, 3 Redis could not be started or reached\n";
    return out;
}

void command_line::require_positive(std::initializer_list<const char*> names) const {
    for (const char* n : names)
        if (number<long>(n, 1) <= 0)
            throw usage_error(std::string("--") + n + " must be at least 1");
}

std::optional<int> start(command_line& cl, int argc, char** argv,
                         const std::function<void()>& check) {
    try {
        cl.parse(argc, argv);
        if (cl.help_requested()) {
            std::cout << cl.usage();
            return exit_ok;
        }
        setup_logging(cl);
        if (check) check();
    } catch (const usage_error& e) {
        std::cerr << cl.program() << ": " << e.what() << "\n(" << cl.program()
                  << " --help for the flags)\n";
        return exit_usage;
    }
    return std::nullopt;
}

std::unique_ptr<redis_target> open_redis(const command_line& cl, std::string_view app,
                                         int& failure) {
    try {
        auto target = std::make_unique<redis_target>(cl, app);
        if (target->embedded())
            spdlog::info("started a private redis-server on port {} (data in {})",
                         target->server()->port(), target->server()->data_dir());
        return target;
    } catch (const usage_error& e) {
        spdlog::error("{}", e.what());
        failure = exit_usage;
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        failure = exit_unavailable;
    }
    return nullptr;
}

void setup_logging(const command_line& cl) {
    const std::string level = cl.get_or("log-level", "info");
    const auto l = spdlog::level::from_str(level);
    // from_str answers "off" for anything it does not know.
    if (l == spdlog::level::off && level != "off")
        throw usage_error("--log-level: expected trace, debug, info, warn, error or off, got '" +
                          level + "'");
    auto logger = spdlog::stderr_color_mt(cl.program());
    logger->set_pattern("%H:%M:%S.%e %^%l%$ %n: %v");
    logger->set_level(l);
    spdlog::set_default_logger(logger);
}

std::filesystem::path default_data_dir(std::string_view app) {
    if (const char* d = std::getenv("AKV_DATA_DIR"); d && *d) return std::filesystem::path(d) / app;
    if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x)
        return std::filesystem::path(x) / "async_kv" / app;
    if (const char* h = std::getenv("HOME"); h && *h)
        return std::filesystem::path(h) / ".local" / "share" / "async_kv" / app;
    return std::filesystem::current_path() / ".async_kv" / app;
}

redis_target::redis_target(const command_line& cl, std::string_view app) {
    data_dir_ =
        cl.has("data-dir") ? std::filesystem::path(*cl.get("data-dir")) : default_data_dir(app);
    std::optional<std::string> url = cl.get("redis");
    if (!url) // the environment keeps a password out of `ps` and shell history
        if (const char* env = std::getenv("AKV_REDIS"); env && *env) url = env;
    if (url) {
        try {
            config_ = akv::config::from_url(*url);
        } catch (const std::exception& e) {
            throw usage_error(std::string(cl.has("redis") ? "--redis" : "AKV_REDIS") + ": " +
                              e.what());
        }
        config_.client_name = std::string(app);
        return;
    }
    const auto redis_dir = data_dir_ / "redis";
    std::error_code ec;
    std::filesystem::create_directories(redis_dir, ec);
    if (ec) throw std::runtime_error("cannot create " + redis_dir.string() + ": " + ec.message());
    const auto lock_path = data_dir_ / "lock";
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0)
        throw std::runtime_error("cannot open " + lock_path.string() + ": " + std::strerror(errno));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        ::close(lock_fd_);
        lock_fd_ = -1;
        throw std::runtime_error(data_dir_.string() +
                                 " is in use by another process: give --redis URL to share its "
                                 "server, or another --data-dir");
    }
    akv::testing::embedded_server_options o;
    o.append_only = true;
    o.data_dir = redis_dir.string();
    server_ = std::make_unique<akv::testing::embedded_server>(o);
    config_ = server_->config();
    config_.client_name = std::string(app);
}

redis_target::~redis_target() {
    server_.reset(); // stops the server before the lock goes
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::pair<std::string, std::uint16_t> host_port(const std::string& flag, const std::string& value) {
    const auto colon = value.rfind(':');
    if (colon == std::string::npos || colon == 0)
        throw usage_error("--" + flag + ": expected HOST:PORT, got '" + value + "'");
    std::string host = value.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    return {host, command_line::parse_number<std::uint16_t>(flag, value.substr(colon + 1))};
}

} // namespace akv::app
