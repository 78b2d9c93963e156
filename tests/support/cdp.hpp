// Driving a real browser from a test: headless Chromium as a child process and a client of the
// Chrome DevTools Protocol (CDP) over its WebSocket, synchronous, every call bounded by a
// deadline (a hung browser fails the test instead of hanging it).
//
//   akv::test::headless_chromium browser("/usr/bin/chromium", 15s);
//   auto page = browser.new_page();                  // a CDP session id
//   browser.cdp().navigate(page, "http://127.0.0.1:8080/");
//   auto state = browser.cdp().evaluate(page, "document.title");
//
// Beast is compiled once, in akv::gateway (BOOST_BEAST_SEPARATE_COMPILATION): link it.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace akv::test {

namespace cdp_detail {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace json = boost::json;
using clock = std::chrono::steady_clock;
} // namespace cdp_detail

// A fresh directory below $TMPDIR (or /tmp), removed with everything in it on destruction.
class temp_dir {
public:
    explicit temp_dir(std::string_view prefix = "akv-test-") {
        std::string pattern =
            (std::filesystem::temp_directory_path() / (std::string(prefix) + "XXXXXX")).string();
        if (::mkdtemp(pattern.data()) == nullptr)
            throw std::runtime_error("mkdtemp failed for " + pattern);
        path_ = pattern;
    }
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// The whole text of a file; empty if it cannot be read.
inline std::string read_text(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// A child process whose stdout and stderr go to a log file. It dies with the thread that
// started it (PR_SET_PDEATHSIG); with `own_group` it leads a process group of its own and kill()
// ends the whole group (a browser's helper processes too). The destructor kills it.
class child_process {
public:
    child_process(std::vector<std::string> args, const std::vector<std::string>& extra_env,
                  std::filesystem::path log_file, bool own_group = false)
        : log_file_(std::move(log_file))
        , own_group_(own_group) {
        if (args.empty()) throw std::invalid_argument("child_process: no program");
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        std::vector<std::string> env_strings(extra_env);
        for (char** e = environ; *e != nullptr; ++e)
            env_strings.emplace_back(*e);
        std::vector<char*> envp; // the extra entries first: getenv finds them before others
        for (auto& e : env_strings)
            envp.push_back(e.data());
        envp.push_back(nullptr);

        const int log = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log < 0) throw std::runtime_error("cannot open " + log_file_.string());
        const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        sigset_t unblocked;
        sigemptyset(&unblocked);
        const pid_t parent = ::getpid();
        const pid_t pid = ::fork();
        if (pid < 0) {
            ::close(log);
            if (devnull >= 0) ::close(devnull);
            throw std::runtime_error("fork failed");
        }
        if (pid == 0) { // only async-signal-safe calls until exec
            if (own_group) ::setpgid(0, 0);
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(127);
            ::sigprocmask(SIG_SETMASK, &unblocked, nullptr);
            if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
            if (::dup2(log, STDOUT_FILENO) < 0 || ::dup2(log, STDERR_FILENO) < 0) ::_exit(127);
            ::syscall(SYS_close_range, 3U, ~0U, 0U);
            ::execve(argv[0], argv.data(), envp.data());
            ::_exit(127);
        }
        if (own_group) ::setpgid(pid, pid); // also here: no race with kill() before the child ran
        ::close(log);
        if (devnull >= 0) ::close(devnull);
        pid_ = pid;
    }
    ~child_process() { kill(); }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    // SIGKILL (to the group when it has its own) and reap. Idempotent.
    void kill() noexcept {
        if (pid_ <= 0) return;
        if (own_group_) ::kill(-pid_, SIGKILL);
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status_, 0);
        pid_ = -1;
    }

    // False once it has exited (reaping it).
    bool running() {
        if (pid_ <= 0) return false;
        if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
            if (own_group_) ::kill(-pid_, SIGKILL); // helpers it left behind
            pid_ = -1;
        }
        return pid_ > 0;
    }

    // Sends `sig` (SIGTERM: asks it to stop); running() tells when it has.
    void signal(int sig) noexcept {
        if (pid_ > 0) ::kill(pid_, sig);
    }

    int pid() const { return pid_; }
    int status() const { return status_; } // waitpid status once it exited
    std::string log() const { return read_text(log_file_); }
    // The last `lines` lines of the log, for failure messages.
    std::string log_tail(std::size_t lines = 30) const {
        const std::string all = log();
        std::size_t at = all.size();
        for (std::size_t n = 0; n <= lines && at > 0; ++n) {
            const auto nl = all.rfind('\n', at - 1);
            if (nl == std::string::npos) return all;
            at = nl;
        }
        return all.substr(at + 1);
    }

private:
    std::filesystem::path log_file_;
    bool own_group_ = false;
    pid_t pid_ = -1;
    int status_ = -1;
};

// A loopback port free a moment ago: for a child process that must be told its port.
inline std::uint16_t free_port() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

// The pid of `parent`'s child whose command name is `comm`; 0 if none.
inline int child_pid(int parent, const std::string& comm) {
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream in(entry.path() / "stat");
        std::string stat;
        std::getline(in, stat);
        const auto open = stat.find('('), close = stat.rfind(')');
        if (open == std::string::npos || close == std::string::npos) continue;
        std::istringstream rest(stat.substr(close + 2));
        std::string state;
        int ppid = 0;
        rest >> state >> ppid;
        if (ppid == parent && stat.substr(open + 1, close - open - 1) == comm)
            return std::stoi(name);
    }
    return 0;
}

// The browser of the e2e tests: $AKV_CHROMIUM, else Debian's.
inline std::string chromium_path() {
    const char* from_env = std::getenv("AKV_CHROMIUM");
    return from_env && *from_env ? from_env : "/usr/bin/chromium";
}

// Polls `done` every `every` until it is true or `limit` passed: the one way tests here wait
// for something that happens on another process's time. True if it became true.
template <class Done>
bool poll_until(Done&& done, std::chrono::milliseconds limit,
                std::chrono::milliseconds every = std::chrono::milliseconds(50)) {
    const auto deadline = cdp_detail::clock::now() + limit;
    for (;;) {
        if (done()) return true;
        if (cdp_detail::clock::now() >= deadline) return false;
        std::this_thread::sleep_for(every);
    }
}

// A Chrome DevTools Protocol connection (the browser endpoint) with flat sessions: commands to
// a page carry its session id. Events are kept (events()), so a failing test can show what the
// page logged.
class cdp_client {
public:
    cdp_client(std::uint16_t port, const std::string& path, std::chrono::milliseconds limit)
        : ws_(io_) {
        namespace asio = cdp_detail::asio;
        const auto deadline = cdp_detail::clock::now() + limit;
        auto& tcp = ws_.next_layer();
        const asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
        tcp.expires_at(deadline);
        run([&](auto handler) { tcp.async_connect(endpoint, std::move(handler)); },
            "connect to the DevTools port");
        tcp.expires_at(deadline);
        const std::string host = "127.0.0.1:" + std::to_string(port);
        run([&](auto handler) { ws_.async_handshake(host, path, std::move(handler)); },
            "DevTools WebSocket handshake");
        ws_.text(true);
    }
    ~cdp_client() {
        boost::system::error_code ignored;
        ws_.next_layer().socket().close(ignored);
    }
    cdp_client(const cdp_client&) = delete;
    cdp_client& operator=(const cdp_client&) = delete;

    // Sends a command and reads until its reply; the reply's "result". Throws on a CDP error
    // (with its message), a broken connection or the deadline.
    boost::json::value call(std::string_view method, boost::json::object params = {},
                            std::string_view session = {},
                            std::chrono::milliseconds limit = std::chrono::seconds(10)) {
        namespace json = cdp_detail::json;
        const auto deadline = cdp_detail::clock::now() + limit;
        const std::int64_t id = next_id_++;
        json::object command;
        command["id"] = id;
        command["method"] = method;
        command["params"] = std::move(params);
        if (!session.empty()) command["sessionId"] = session;
        const std::string text = json::serialize(command);
        ws_.next_layer().expires_at(deadline);
        run([&](auto handler) { ws_.async_write(boost::asio::buffer(text), std::move(handler)); },
            std::string("send ") + std::string(method));
        for (;;) {
            json::value message = read(deadline, method);
            const json::object& o = message.as_object();
            const json::value* reply_id = o.if_contains("id");
            if (reply_id == nullptr) {
                events_.push_back(std::move(message));
                continue;
            }
            if (!reply_id->is_int64() || reply_id->get_int64() != id) continue;
            if (const json::value* error = o.if_contains("error"))
                throw std::runtime_error(std::string(method) + ": " + json::serialize(*error));
            const json::value* result = o.if_contains("result");
            return result ? *result : json::value(json::object{});
        }
    }

    // A new tab (about:blank) attached with a flat session; its session id.
    std::string new_page() {
        namespace json = cdp_detail::json;
        json::object create;
        create["url"] = "about:blank";
        const json::value target = call("Target.createTarget", std::move(create));
        json::object attach;
        attach["targetId"] = target.at("targetId");
        attach["flatten"] = true;
        const json::value attached = call("Target.attachToTarget", std::move(attach));
        std::string session(attached.at("sessionId").as_string());
        // Console messages and uncaught exceptions become events (kept for failure messages).
        call("Runtime.enable", {}, session);
        return session;
    }

    void navigate(std::string_view session, std::string_view url) {
        namespace json = cdp_detail::json;
        json::object params;
        params["url"] = url;
        const json::value result = call("Page.navigate", std::move(params), session);
        if (const json::value* error = result.as_object().if_contains("errorText"))
            throw std::runtime_error("Page.navigate " + std::string(url) + ": " +
                                     json::serialize(*error));
    }

    // The value of a JavaScript expression in the page (returnByValue: JSON-able values only);
    // `await_promise` waits for a promise it returns. Throws with the exception's text when
    // the expression throws (or the page is between documents).
    boost::json::value evaluate(std::string_view session, std::string_view expression,
                                bool await_promise = false,
                                std::chrono::milliseconds limit = std::chrono::seconds(10)) {
        namespace json = cdp_detail::json;
        json::object params;
        params["expression"] = expression;
        params["returnByValue"] = true;
        params["awaitPromise"] = await_promise;
        const json::value result = call("Runtime.evaluate", std::move(params), session, limit);
        const json::object& o = result.as_object();
        if (const json::value* exception = o.if_contains("exceptionDetails"))
            throw std::runtime_error("evaluate: " + json::serialize(*exception));
        const json::value* remote = o.if_contains("result");
        if (remote == nullptr) return nullptr;
        const json::value* value = remote->as_object().if_contains("value");
        return value ? *value : json::value(nullptr);
    }

    // Polls `expression` in the page every `every` until it is true. An exception (a document
    // still loading) counts as not yet; the last one's text goes to `last_error` if given.
    // False at the deadline.
    bool wait_true(std::string_view session, const std::string& expression,
                   std::chrono::milliseconds limit, std::chrono::milliseconds every,
                   std::string* last_error = nullptr) {
        return poll_until(
            [&] {
                try {
                    const boost::json::value v = evaluate(session, expression);
                    return v.is_bool() && v.get_bool();
                } catch (const std::exception& e) {
                    if (last_error) *last_error = e.what();
                    return false;
                }
            },
            limit, every);
    }

    // Events read so far (CDP messages without an id), oldest first.
    const std::vector<boost::json::value>& events() const { return events_; }

    // What the page printed to its console and what it threw, one line each.
    std::string console_log() const {
        namespace json = cdp_detail::json;
        std::string out;
        for (const auto& e : events_) {
            const json::object& o = e.as_object();
            const json::value* method = o.if_contains("method");
            if (method == nullptr || !method->is_string()) continue;
            if (*method == "Runtime.consoleAPICalled" || *method == "Runtime.exceptionThrown")
                out += json::serialize(o.at("params")).substr(0, 600) + "\n";
        }
        return out;
    }

private:
    using websocket = cdp_detail::beast::websocket::stream<cdp_detail::beast::tcp_stream>;

    // Starts one asynchronous operation and runs the context until it completes; the stream's
    // expiry (set by the caller) bounds it: a timeout completes it with beast::error::timeout.
    template <class Start> void run(Start&& start, const std::string& what) {
        std::optional<boost::system::error_code> result;
        start([&](boost::system::error_code ec, auto&&...) { result = ec; });
        io_.restart();
        io_.run();
        if (!result) throw std::runtime_error("cdp: " + what + ": did not complete");
        if (*result) throw std::runtime_error("cdp: " + what + ": " + result->message());
    }

    boost::json::value read(cdp_detail::clock::time_point deadline, std::string_view method) {
        buffer_.clear();
        ws_.next_layer().expires_at(deadline);
        run([&](auto handler) { ws_.async_read(buffer_, std::move(handler)); },
            "waiting for the reply to " + std::string(method));
        const auto data = buffer_.cdata();
        const std::string_view text(static_cast<const char*>(data.data()), data.size());
        boost::system::error_code ec;
        boost::json::value v =
            boost::json::parse(boost::json::string_view(text.data(), text.size()), ec);
        if (ec || !v.is_object())
            throw std::runtime_error("cdp: not a JSON object: " + std::string(text.substr(0, 200)));
        return v;
    }

    boost::asio::io_context io_;
    websocket ws_;
    cdp_detail::beast::flat_buffer buffer_;
    std::int64_t next_id_ = 1;
    std::vector<boost::json::value> events_;
};

// Headless Chromium in a fresh profile, debugged over CDP on a port it picks
// (--remote-debugging-port=0, announced in <profile>/DevToolsActivePort). Killed, with its
// helper processes, on destruction.
class headless_chromium {
public:
    headless_chromium(const std::string& executable, std::chrono::milliseconds limit)
        : dir_("akv-chromium-") {
        const auto profile = dir_.path() / "profile";
        std::filesystem::create_directory(profile);
        process_.emplace(
            std::vector<std::string>{
                executable, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows", "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1", "--user-data-dir=" + profile.string(),
                "about:blank"},
            std::vector<std::string>{}, dir_.path() / "chromium.log", /*own_group=*/true);

        // "<port>\n<browser path>\n", written once the endpoint listens.
        const auto active_port = profile / "DevToolsActivePort";
        std::uint16_t port = 0;
        std::string path;
        const bool announced = poll_until(
            [&] {
                std::istringstream in(read_text(active_port));
                unsigned long p = 0;
                if (!(in >> p) || p == 0 || p > 65535 || !(in >> path)) return !process_->running();
                port = static_cast<std::uint16_t>(p);
                return true;
            },
            limit);
        if (!announced || port == 0)
            throw std::runtime_error("chromium did not announce its DevTools port in time; log:\n" +
                                     process_->log_tail());
        cdp_.emplace(port, path, limit);
    }
    ~headless_chromium() {
        cdp_.reset();
        if (process_) process_->kill();
    }

    cdp_client& cdp() { return *cdp_; }
    std::string new_page() { return cdp_->new_page(); }
    std::string log_tail(std::size_t lines = 30) const { return process_->log_tail(lines); }

private:
    temp_dir dir_;
    std::optional<child_process> process_;
    std::optional<cdp_client> cdp_;
};

} // namespace akv::test
