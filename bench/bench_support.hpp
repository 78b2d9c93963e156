// What the benchmarks share: running a peer's command and reading what it printed, and the
// small helpers that more than one benchmark needs the very same way.
#pragma once

#include <akv/client.hpp>
#include <akv/config.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#ifndef AKV_SOURCE_DIR
#error "AKV_SOURCE_DIR must name the source tree (bench/CMakeLists.txt)"
#endif

namespace akv::bench {

// bench/ of the source tree: the peers' scripts and our node scripts, wherever the benchmark
// is started from. Not __FILE__, which ccache's base_dir makes relative to the build directory.
inline std::filesystem::path bench_source_dir() {
    return std::filesystem::path(AKV_SOURCE_DIR) / "bench";
}

inline std::string run_command(const std::string& cmd) {
    std::array<char, 4096> buf;
    std::string out;
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
    if (!pipe) throw std::runtime_error("cannot run: " + cmd);
    while (std::fgets(buf.data(), buf.size(), pipe.get()))
        out += buf.data();
    return out;
}

// The one option of a benchmark that takes no other: --quick. nullopt after printing the usage
// (the caller exits 2); shared so that such benchmarks read their command line alike.
inline std::optional<bool> quick_option(int argc, char** argv, std::string_view name) {
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) != "--quick") {
            std::cerr << "usage: " << name << " [--quick]\n";
            return std::nullopt;
        }
        quick = true;
    }
    return quick;
}

// Shared so every benchmark times its scenarios on the same clock, in seconds.
inline double seconds_between(std::chrono::steady_clock::time_point a,
                              std::chrono::steady_clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

// Runs make(0) ... make(count - 1) concurrently on this coroutine's executor, waits for all,
// and rethrows the first failure. Shared: every fan-out of coroutines waits the same way.
template <class MakeTask> boost::asio::awaitable<void> all_of(int count, MakeTask make) {
    namespace asio = boost::asio;
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer finished(ex, std::chrono::steady_clock::time_point::max());
    int remaining = count;
    std::exception_ptr failure;
    for (int i = 0; i < count; ++i)
        asio::co_spawn(ex, make(i), [&](std::exception_ptr e) {
            if (e && !failure) failure = e;
            if (--remaining == 0) finished.cancel();
        });
    while (remaining > 0)
        co_await finished.async_wait(asio::as_tuple(asio::use_awaitable));
    if (failure) std::rethrow_exception(failure);
}

// Runs body(client) on a fresh io_context and one client, then stops the client; shared so
// every benchmark gives a scenario its own connection the same way.
template <class Body> void run_with_client(const akv::config& cfg, Body&& body) {
    namespace asio = boost::asio;
    asio::io_context io(1);
    akv::client redis(io.get_executor(), cfg);
    asio::co_spawn(io, redis.run(), asio::detached);
    std::exception_ptr failure;
    asio::co_spawn(io, body(redis), [&](std::exception_ptr e) {
        failure = e;
        redis.cancel();
    });
    io.run();
    if (failure) std::rethrow_exception(failure);
}

// The integer reply of one command (XLEN, DBSIZE, ...).
inline boost::asio::awaitable<long long> integer_command(akv::client& redis, akv::request req) {
    akv::response<long long> resp;
    co_await redis.exec(req, resp);
    co_return std::get<0>(resp).value();
}

// Empties the server before a scenario (and connects the client before any clock starts);
// shared so every scenario starts from the same empty server.
inline boost::asio::awaitable<void> flushall(akv::client& redis) {
    akv::request req;
    req.push("FLUSHALL");
    akv::response<std::string> resp;
    co_await redis.exec(req, resp);
    std::get<0>(resp).value();
}

// The number after `field` in an INFO reply (0 if absent); shared: the benchmarks read the
// server's CPU (used_cpu_user:, used_cpu_sys:) and memory the same way.
inline double info_number(const std::string& info, std::string_view field) {
    const auto at = info.find(field);
    return at == std::string::npos ? 0.0 : std::strtod(info.c_str() + at + field.size(), nullptr);
}

// The server's CPU time so far, s (INFO cpu: user + sys, all its threads); shared so every
// benchmark reads the server's CPU alike.
inline boost::asio::awaitable<double> redis_cpu_seconds(akv::client& redis) {
    akv::request req;
    req.push("INFO", "cpu");
    akv::response<std::string> resp;
    co_await redis.exec(req, resp);
    const std::string& info = std::get<0>(resp).value();
    co_return info_number(info, "used_cpu_user:") + info_number(info, "used_cpu_sys:");
}

// CPU time (user + sys) this process has used so far, s; shared so the client's CPU is
// measured alike in every benchmark.
inline double process_cpu_seconds() {
    rusage self{};
    ::getrusage(RUSAGE_SELF, &self);
    const auto to_seconds = [](timeval t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    return to_seconds(self.ru_utime) + to_seconds(self.ru_stime);
}

// A loopback port free right now, for a peer's own redis-server; shared by every benchmark
// that starts a peer.
inline std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    ::close(fd);
    if (!ok) throw std::runtime_error("cannot find a free loopback port");
    return ntohs(addr.sin_port);
}

// `v` as printf's %g, the form a peer's shell knob (SECONDS=1.5) is passed in; shared so
// every peer gets its numbers written the same way.
inline std::string number_text(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// The last `lines` lines of the file at `path` (a peer's log, gone after the run); shared
// reading, each benchmark lays the lines out as its own output wants.
inline std::deque<std::string> last_lines(const std::string& path, std::size_t lines) {
    std::ifstream in(path);
    std::deque<std::string> tail;
    for (std::string line; std::getline(in, line);) {
        tail.push_back(std::move(line));
        if (tail.size() > lines) tail.pop_front();
    }
    return tail;
}

// `o[key]` as a double if it is a number (nullopt otherwise, or without `o`); shared: the
// benchmarks read a peer's JSON figures the same way.
inline std::optional<double> number_field(const boost::json::object* o, std::string_view key) {
    const boost::json::value* v = o ? o->if_contains(key) : nullptr;
    if (!v || !v->is_number()) return std::nullopt;
    return v->to_number<double>();
}

// Appends `v` with `decimals` decimals, or null when absent or not finite; shared so every
// benchmark's JSON line writes its figures alike.
inline void append_fixed(std::string& out, std::optional<double> v, int decimals) {
    if (!v || !std::isfinite(*v)) {
        out += "null";
        return;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, *v);
    out += buf;
}

// Prints `{fields}` as one line and flushes at once; shared so a scenario's line reaches the
// caller (./script/bench) as soon as it is done, in every benchmark.
inline void print_object_line(const std::string& fields) {
    std::printf("{%s}\n", fields.c_str());
    std::fflush(stdout);
}

// One JSON object on one line, fields in the order they are added; numbers as plain decimals
// (not Boost.JSON's 2.5E-1).
// Shared by the queue and gateway benchmarks (streams_bench.cpp keeps an older one of its own).
class json_line {
public:
    json_line& set(std::string_view key, const boost::json::value& v) {
        field(key);
        append(v);
        return *this;
    }
    json_line& text(std::string_view key, std::string_view v) {
        return set(key, boost::json::string(boost::json::string_view(v.data(), v.size())));
    }
    json_line& number(std::string_view key, std::optional<double> v, int decimals) {
        field(key);
        append_fixed(out_, v, decimals);
        return *this;
    }
    // `from[key]` as `key_as`, if there.
    json_line& copy(std::string_view key_as, const boost::json::object* from, std::string_view key) {
        const boost::json::value* v = from ? from->if_contains(key) : nullptr;
        if (v) set(key_as, *v);
        return *this;
    }
    void print() const { print_object_line(out_); }

private:
    void field(std::string_view key) {
        if (!out_.empty()) out_ += ',';
        out_ += boost::json::serialize(boost::json::string_view(key.data(), key.size()));
        out_ += ':';
    }
    void append(const boost::json::value& v) {
        if (v.is_double()) {
            const double d = v.get_double();
            if (!std::isfinite(d)) {
                out_ += "null";
                return;
            }
            char buf[64];
            if (d == std::floor(d) && std::abs(d) < 1e15)
                std::snprintf(buf, sizeof buf, "%.0f", d);
            else
                std::snprintf(buf, sizeof buf, "%.3f", d);
            std::string s = buf;
            if (s.find('.') != std::string::npos) {
                s.erase(s.find_last_not_of('0') + 1);
                if (s.back() == '.') s.pop_back();
            }
            out_ += s;
        } else if (v.is_object()) {
            out_ += '{';
            bool first = true;
            for (const auto& kv : v.get_object()) {
                if (!first) out_ += ',';
                first = false;
                out_ += boost::json::serialize(kv.key());
                out_ += ':';
                append(kv.value());
            }
            out_ += '}';
        } else if (v.is_array()) {
            out_ += '[';
            bool first = true;
            for (const boost::json::value& e : v.get_array()) {
                if (!first) out_ += ',';
                first = false;
                append(e);
            }
            out_ += ']';
        } else {
            out_ += boost::json::serialize(v);
        }
    }
    std::string out_;
};

// a / b, or nothing when either is missing or b is not positive.
inline std::optional<double> ratio(std::optional<double> a, std::optional<double> b) {
    if (!a || !b || *b <= 0) return std::nullopt;
    return *a / *b;
}

} // namespace akv::bench
