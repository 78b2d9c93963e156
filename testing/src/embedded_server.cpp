#include <akv/config.hpp>
#include <akv/error.hpp>
#include <akv/testing/embedded_server.hpp>

#include "sync_resp.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

namespace akv::testing {
namespace {

using namespace std::chrono_literals;
using steady_clock = std::chrono::steady_clock;

constexpr auto poll_interval = 10ms;
constexpr std::chrono::milliseconds probe_timeout = 1s; // a hung server must not stall the loop
constexpr auto stop_grace = 5s;
constexpr int port_attempts = 5;

[[noreturn]] void fail(const std::string& what) {
    throw_error(error::server_start_failed, "embedded_server: " + what);
}

std::string errno_text(const char* call, int err = errno) {
    return std::string(call) + ": " + std::strerror(err);
}

using detail::unique_fd;

// The child's stdin/stdout/stderr are dup2()ed from these, so none may be 0, 1 or 2 itself (as
// when this process runs with a standard stream closed): dup2(fd, fd) would keep FD_CLOEXEC.
unique_fd above_stdio(int fd) {
    if (fd < 0 || fd > STDERR_FILENO) return unique_fd(fd);
    unique_fd original(fd);
    return unique_fd(::fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1));
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    return addr;
}

// A port the kernel had free a moment ago. Another process may still take it before redis
// binds; the caller then tries another one.
std::uint16_t free_loopback_port() {
    unique_fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) fail(errno_text("socket"));
    sockaddr_in addr = loopback(0);
    socklen_t length = sizeof addr;
    if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        fail(errno_text("bind to 127.0.0.1:0"));
    if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&addr), &length) != 0)
        fail(errno_text("getsockname"));
    return ntohs(addr.sin_port);
}

std::string make_temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string path = std::string(base && *base ? base : "/tmp") + "/akv-redis-XXXXXX";
    if (!::mkdtemp(path.data())) fail(errno_text(("mkdtemp " + path).c_str()));
    return path;
}

// The executable's path: a name with a '/' as is, a bare name searched in PATH like execvp
// does. Done before fork() because execvp is not async-signal-safe. Empty if not found.
std::string find_executable(const std::string& name) {
    if (name.empty()) return {};
    if (name.find('/') != std::string::npos) return name;
    const char* path_env = std::getenv("PATH");
    std::string_view dirs = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
    for (;;) {
        const auto colon = dirs.find(':');
        const std::string_view dir = dirs.substr(0, colon);
        const std::string candidate = std::string(dir.empty() ? "." : dir) + "/" + name;
        struct stat st {};
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
            ::access(candidate.c_str(), X_OK) == 0)
            return candidate;
        if (colon == std::string_view::npos) break;
        dirs.remove_prefix(colon + 1);
    }
    return {};
}

std::string describe_exit(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
    return "stopped (wait status " + std::to_string(status) + ")";
}

std::string last_lines(std::string_view text, std::size_t lines) {
    while (!text.empty() && text.back() == '\n')
        text.remove_suffix(1);
    while (!text.empty() && text.front() == '\n')
        text.remove_prefix(1);
    if (lines == 0) return {};
    std::size_t start = text.size();
    for (std::size_t i = 0; i < lines; ++i) {
        const auto newline = start == 0 ? std::string_view::npos : text.rfind('\n', start - 1);
        if (newline == std::string_view::npos) return std::string(text);
        start = newline;
    }
    return std::string(text.substr(start + 1));
}

// Up to `max_bytes` of the file from `offset` on: enough for a tail, bounded even if the log
// has grown large over many restarts.
std::string read_file_from(const std::string& path, std::uintmax_t offset,
                           std::size_t max_bytes = 64 * 1024) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) return {};
    const std::uintmax_t size = static_cast<std::uintmax_t>(in.tellg());
    if (size <= offset) return {};
    offset = std::max<std::uintmax_t>(offset, size > max_bytes ? size - max_bytes : 0);
    in.seekg(static_cast<std::streamoff>(offset));
    std::string text(size - offset, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    return text;
}

// The end of a failure message: the log's last lines, which usually say what went wrong.
std::string with_log(std::string_view log) {
    const std::string tail = last_lines(log, 20);
    return tail.empty() ? "; the server's log is empty" : "; log tail:\n" + tail;
}

// Empty when the server on `port` is ready: authenticated, done loading its data (PING answers
// PONG, not LOADING), and it is process `pid` rather than some other server that took the port
// first. Otherwise what happened instead.
std::string probe(std::uint16_t port, int pid, const std::string& password,
                  std::chrono::milliseconds timeout) {
    try {
        detail::sync_client client(port, timeout);
        if (!password.empty()) {
            const auto auth = client.call({"AUTH", password});
            if (auth.type != detail::sync_reply::kind::simple_string)
                return "AUTH: " + auth.to_text();
        }
        const auto pong = client.call({"PING"});
        if (pong.to_text() != "+PONG") return "PING: " + pong.to_text();
        const auto info = client.call({"INFO", "server"});
        if (info.type != detail::sync_reply::kind::bulk_string) return "INFO: " + info.to_text();
        if (info.text.find("\r\nprocess_id:" + std::to_string(pid) + "\r\n") == std::string::npos)
            return "another server answers on port " + std::to_string(port);
        return {};
    } catch (const std::exception& e) {
        return e.what();
    }
}

// Everything the child needs, prepared before fork(): between fork() and exec() only
// async-signal-safe calls are allowed (this process may have other threads holding locks).
struct child_setup {
    const char* path;
    char* const* argv;
    pid_t parent;
    int stdin_fd;
    int log_fd;
    int exec_error_fd; // CLOEXEC: EOF tells the parent that exec() succeeded
    int max_fd;        // for the close() loop when close_range is missing
    sigset_t unblocked;
};

void close_fds_from_3_except(int keep, int max_fd) noexcept {
    bool closed = false;
#ifdef SYS_close_range
    closed = (keep == 3 || ::syscall(SYS_close_range, 3U, unsigned(keep - 1), 0U) == 0) &&
             ::syscall(SYS_close_range, unsigned(keep + 1), ~0U, 0U) == 0;
#endif
    if (!closed)
        for (int fd = 3; fd < max_fd; ++fd)
            if (fd != keep) ::close(fd);
}

[[noreturn]] void exec_child(const child_setup& setup) noexcept {
    // Die with the parent, even if it is SIGKILLed; and if it died before prctl took effect,
    // leave now rather than run as an orphan.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != setup.parent) ::_exit(127);
    ::sigprocmask(SIG_SETMASK, &setup.unblocked, nullptr);

    int err = 0;
    if (::dup2(setup.stdin_fd, STDIN_FILENO) < 0 || ::dup2(setup.log_fd, STDOUT_FILENO) < 0 ||
        ::dup2(setup.log_fd, STDERR_FILENO) < 0) {
        err = errno;
    } else {
        close_fds_from_3_except(setup.exec_error_fd, setup.max_fd);
        ::execve(setup.path, setup.argv, environ);
        err = errno;
    }
    [[maybe_unused]] const auto ignored = ::write(setup.exec_error_fd, &err, sizeof err);
    ::_exit(127);
}

int max_fd_for_close_loop() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY ||
        limit.rlim_cur > (1U << 20))
        return 1 << 20;
    return static_cast<int>(limit.rlim_cur);
}

std::string percent_encode(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xF];
        }
    }
    return out;
}

} // namespace

embedded_server::embedded_server(embedded_server_options options)
    : options_(std::move(options)) {
    if (options_.data_dir.empty()) {
        data_dir_ = make_temp_dir();
        owns_data_dir_ = true;
    } else {
        // Absolute: redis chdir()s to --dir before it opens --logfile.
        std::error_code ec;
        std::filesystem::create_directories(options_.data_dir, ec);
        if (ec) fail("data_dir \"" + options_.data_dir + "\": " + ec.message());
        auto dir = std::filesystem::absolute(options_.data_dir, ec).lexically_normal();
        if (ec) fail("data_dir \"" + options_.data_dir + "\": " + ec.message());
        data_dir_ = (dir.has_filename() ? dir : dir.parent_path()).string();
    }
    try {
        if (options_.unix_socket && unix_socket_path().size() >= sizeof(sockaddr_un{}.sun_path))
            fail("unix socket path \"" + unix_socket_path() + "\" is longer than " +
                 std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                 " bytes; use a shorter data_dir or unix_socket = false");
        for (int attempt = 1;; ++attempt) {
            port_ = options_.port != 0 ? options_.port : free_loopback_port();
            if (options_.cluster_enabled) {
                // Not port + 10000, redis's default: that is past 65535 for a high free port.
                do {
                    cluster_bus_port_ = free_loopback_port();
                } while (cluster_bus_port_ == port_);
            }
            if (options_.tls_port) {
                do {
                    tls_port_ = free_loopback_port();
                } while (tls_port_ == port_ || tls_port_ == cluster_bus_port_);
            }
            if (launch_and_wait()) return;
            if (options_.port != 0 || attempt == port_attempts)
                fail("port " + std::to_string(port_) + " is in use" + with_log(log_tail()));
        }
    } catch (...) {
        if (owns_data_dir_) {
            std::error_code ignored;
            std::filesystem::remove_all(data_dir_, ignored);
        }
        throw;
    }
}

embedded_server::~embedded_server() {
    stop();
    if (owns_data_dir_) {
        std::error_code ignored;
        std::filesystem::remove_all(data_dir_, ignored);
    }
}

std::string embedded_server::unix_socket_path() const {
    return options_.unix_socket ? data_dir_ + "/redis.sock" : std::string();
}

std::string embedded_server::url() const {
    std::string credentials =
        options_.password.empty() ? "" : ":" + percent_encode(options_.password) + "@";
    return "redis://" + credentials + host() + ":" + std::to_string(port_);
}

akv::config embedded_server::config() const {
    akv::config result;
    result.hosts = {endpoint{host(), port_}};
    result.password = options_.password;
    return result;
}

bool embedded_server::running() const {
    if (pid_ <= 0) return false;
    siginfo_t info{};
    // WNOWAIT: look without reaping, so running() stays const and stop() still reaps.
    if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        return false;
    return info.si_pid == 0;
}

void embedded_server::stop() noexcept {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = steady_clock::now() + stop_grace;
    while (steady_clock::now() < deadline) {
        int status = 0;
        const pid_t done = ::waitpid(pid_, &status, WNOHANG);
        if (done == pid_ || (done < 0 && errno != EINTR)) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(poll_interval);
    }
    kill();
}

void embedded_server::kill() noexcept {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    reap();
}

void embedded_server::reap() noexcept {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

void embedded_server::start() {
    if (running()) return;
    if (pid_ > 0) reap(); // it exited on its own
    if (!launch_and_wait())
        fail("port " + std::to_string(port_) + " is in use" + with_log(log_tail()));
}

void embedded_server::restart() {
    stop();
    start();
}

std::string embedded_server::log_path() const {
    return data_dir_ + "/redis.log";
}

std::string embedded_server::log_tail(std::size_t lines) const {
    return last_lines(read_file_from(log_path(), 0), lines);
}

// Returns false if redis exited because port_ was taken (the caller may try another port).
// Throws for any other failure, leaving no child behind.
bool embedded_server::launch_and_wait() {
    const std::string path = find_executable(options_.executable);
    if (path.empty()) fail("executable \"" + options_.executable + "\" not found in PATH");

    std::vector<std::string> args{path};
    if (!options_.config_file.empty()) args.push_back(options_.config_file);
    const auto add = [&args](std::initializer_list<std::string> more) {
        args.insert(args.end(), more);
    };
    add({"--port", std::to_string(port_)});
    add({"--bind", "127.0.0.1"});
    add({"--dir", data_dir_});
    add({"--logfile", log_path()});
    add({"--save", ""});
    add({"--appendonly", options_.append_only ? "yes" : "no"});
    if (options_.append_only) add({"--appendfsync", "always"});
    add({"--daemonize", "no"});
    add({"--protected-mode", "no"});
    if (options_.unix_socket) add({"--unixsocket", unix_socket_path(), "--unixsocketperm", "700"});
    if (!options_.password.empty()) add({"--requirepass", options_.password});
    if (options_.cluster_enabled) {
        add({"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"});
        add({"--cluster-port", std::to_string(cluster_bus_port_)});
    }
    if (options_.tls_port) add({"--tls-port", std::to_string(tls_port_)});
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    std::vector<char*> argv;
    for (auto& arg : args)
        argv.push_back(arg.data());
    argv.push_back(nullptr);

    std::error_code no_log;
    const std::uintmax_t log_size = std::filesystem::file_size(log_path(), no_log);
    const std::uintmax_t log_start = no_log ? 0 : log_size; // what this run writes comes after
    const unique_fd null_fd = above_stdio(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!null_fd) fail(errno_text("open /dev/null"));
    const unique_fd log_fd =
        above_stdio(::open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!log_fd) fail(errno_text(("open " + log_path()).c_str()));
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) fail(errno_text("pipe2"));
    unique_fd exec_error_read = above_stdio(pipe_fds[0]);
    unique_fd exec_error_write = above_stdio(pipe_fds[1]);
    if (!exec_error_read || !exec_error_write) fail(errno_text("fcntl"));

    child_setup setup{};
    setup.path = path.c_str();
    setup.argv = argv.data();
    setup.parent = ::getpid();
    setup.stdin_fd = null_fd.get();
    setup.log_fd = log_fd.get();
    setup.exec_error_fd = exec_error_write.get();
    setup.max_fd = max_fd_for_close_loop();
    sigemptyset(&setup.unblocked);

    const pid_t pid = ::fork();
    if (pid < 0) fail(errno_text("fork"));
    if (pid == 0) exec_child(setup);
    pid_ = pid;
    exec_error_write.reset();

    // Blocks only until exec() (EOF) or the child's report of why exec() failed.
    int exec_errno = 0;
    ssize_t got;
    do {
        got = ::read(exec_error_read.get(), &exec_errno, sizeof exec_errno);
    } while (got < 0 && errno == EINTR);
    if (got > 0) {
        reap();
        fail("cannot execute \"" + path + "\": " + std::strerror(exec_errno));
    }

    try {
        return wait_until_ready(log_start);
    } catch (...) {
        kill();
        throw;
    }
}

bool embedded_server::wait_until_ready(std::uintmax_t log_start) {
    const auto deadline = steady_clock::now() + options_.start_timeout;
    std::string last_probe = "none";
    for (;;) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            const std::string log = read_file_from(log_path(), log_start);
            if (log.find("Address already in use") != std::string::npos) return false;
            fail(options_.executable + " " + describe_exit(status) +
                 " before answering PING on port " + std::to_string(port_) + with_log(log));
        }
        const auto now = steady_clock::now();
        if (now >= deadline) {
            kill();
            fail(options_.executable + " did not answer PING on port " + std::to_string(port_) +
                 " within " + std::to_string(options_.start_timeout.count()) +
                 " ms (last attempt: " + last_probe + ")" +
                 with_log(read_file_from(log_path(), log_start)));
        }
        const auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
        last_probe = probe(port_, pid_, options_.password, std::min(remaining, probe_timeout));
        if (last_probe.empty()) return true;
        std::this_thread::sleep_for(std::min<steady_clock::duration>(poll_interval, remaining));
    }
}

} // namespace akv::testing
