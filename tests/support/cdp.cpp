#include "support/cdp.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace akv::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace json = boost::json;
using clock = std::chrono::steady_clock;

temp_dir::temp_dir(std::string_view prefix) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / (std::string(prefix) + "XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr)
        throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
}

temp_dir::~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

std::string read_text(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

child_process::child_process(std::vector<std::string> args,
                             const std::vector<std::string>& extra_env,
                             std::filesystem::path log_file, bool own_group)
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

void child_process::kill() noexcept {
    if (pid_ <= 0) return;
    if (own_group_) ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
    pid_ = -1;
}

finished_run run_to_end(const temp_dir& dir, std::vector<std::string> args,
                        std::chrono::milliseconds limit) {
    static int n = 0;
    const auto log = dir.path() / ("run-" + std::to_string(++n) + ".log");
    child_process p(std::move(args), {}, log);
    finished_run r;
    if (!poll_until([&] { return !p.running(); }, limit)) {
        r.output = "still running after the limit\n" + p.log();
        return r;
    }
    r.exit_code = WIFEXITED(p.status()) ? WEXITSTATUS(p.status()) : -1;
    r.output = p.log();
    return r;
}

bool child_process::running() {
    if (pid_ <= 0) return false;
    if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
        if (own_group_) ::kill(-pid_, SIGKILL); // helpers it left behind
        pid_ = -1;
    }
    return pid_ > 0;
}

void child_process::signal(int sig) noexcept {
    if (pid_ > 0) ::kill(pid_, sig);
}

std::string child_process::log_tail(std::size_t lines) const {
    const std::string all = log();
    std::size_t at = all.size();
    for (std::size_t n = 0; n <= lines && at > 0; ++n) {
        const auto nl = all.rfind('\n', at - 1);
        if (nl == std::string::npos) return all;
        at = nl;
    }
    return all.substr(at + 1);
}

std::uint16_t free_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

int child_pid(int parent, const std::string& comm) {
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

std::string chromium_path() {
    const char* from_env = std::getenv("AKV_CHROMIUM");
    return from_env && *from_env ? from_env : "/usr/bin/chromium";
}

struct cdp_client::connection {
    connection()
        : ws(io) {}

    // Starts one asynchronous operation and runs the context until it completes; the stream's
    // expiry (set by the caller) bounds it: a timeout completes it with beast::error::timeout.
    template <class Start> void run(Start&& start, const std::string& what) {
        std::optional<boost::system::error_code> result;
        start([&](boost::system::error_code ec, auto&&...) { result = ec; });
        io.restart();
        io.run();
        if (!result) throw std::runtime_error("cdp: " + what + ": did not complete");
        if (*result) throw std::runtime_error("cdp: " + what + ": " + result->message());
    }

    asio::io_context io;
    beast::websocket::stream<beast::tcp_stream> ws;
    beast::flat_buffer buffer;
};

cdp_client::cdp_client(std::uint16_t port, const std::string& path, std::chrono::milliseconds limit)
    : connection_(std::make_unique<connection>()) {
    const auto deadline = clock::now() + limit;
    auto& ws = connection_->ws;
    auto& tcp = ws.next_layer();
    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    tcp.expires_at(deadline);
    connection_->run([&](auto handler) { tcp.async_connect(endpoint, std::move(handler)); },
                     "connect to the DevTools port");
    tcp.expires_at(deadline);
    const std::string host = "127.0.0.1:" + std::to_string(port);
    connection_->run([&](auto handler) { ws.async_handshake(host, path, std::move(handler)); },
                     "DevTools WebSocket handshake");
    ws.text(true);
}

cdp_client::~cdp_client() {
    boost::system::error_code ignored;
    connection_->ws.next_layer().socket().close(ignored);
}

json::value cdp_client::call(std::string_view method, json::object params, std::string_view session,
                             std::chrono::milliseconds limit) {
    const auto deadline = clock::now() + limit;
    const std::int64_t id = next_id_++;
    json::object command;
    command["id"] = id;
    command["method"] = method;
    command["params"] = std::move(params);
    if (!session.empty()) command["sessionId"] = session;
    const std::string text = json::serialize(command);
    auto& ws = connection_->ws;
    ws.next_layer().expires_at(deadline);
    connection_->run([&](auto handler) { ws.async_write(asio::buffer(text), std::move(handler)); },
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

std::string cdp_client::new_page() {
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

void cdp_client::navigate(std::string_view session, std::string_view url) {
    json::object params;
    params["url"] = url;
    const json::value result = call("Page.navigate", std::move(params), session);
    if (const json::value* error = result.as_object().if_contains("errorText"))
        throw std::runtime_error("Page.navigate " + std::string(url) + ": " +
                                 json::serialize(*error));
}

json::value cdp_client::evaluate(std::string_view session, std::string_view expression,
                                 bool await_promise, std::chrono::milliseconds limit) {
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

bool cdp_client::wait_true(std::string_view session, const std::string& expression,
                           std::chrono::milliseconds limit, std::chrono::milliseconds every,
                           std::string* last_error) {
    return poll_until(
        [&] {
            try {
                const json::value v = evaluate(session, expression);
                return v.is_bool() && v.get_bool();
            } catch (const std::exception& e) {
                if (last_error) *last_error = e.what();
                return false;
            }
        },
        limit, every);
}

std::string cdp_client::console_log() const {
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

json::value cdp_client::read(clock::time_point deadline, std::string_view method) {
    auto& buffer = connection_->buffer;
    auto& ws = connection_->ws;
    buffer.clear();
    ws.next_layer().expires_at(deadline);
    connection_->run([&](auto handler) { ws.async_read(buffer, std::move(handler)); },
                     "waiting for the reply to " + std::string(method));
    const auto data = buffer.cdata();
    const std::string_view text(static_cast<const char*>(data.data()), data.size());
    boost::system::error_code ec;
    json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
    if (ec || !v.is_object())
        throw std::runtime_error("cdp: not a JSON object: " + std::string(text.substr(0, 200)));
    return v;
}

headless_chromium::headless_chromium(const std::string& executable, std::chrono::milliseconds limit)
    : dir_("akv-chromium-") {
    const auto profile = dir_.path() / "profile";
    std::filesystem::create_directory(profile);
    process_.emplace(
        std::vector<std::string>{
            executable, "--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
            "--disable-extensions", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
            "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
            "--user-data-dir=" + profile.string(), "about:blank"},
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

headless_chromium::~headless_chromium() {
    cdp_.reset();
    if (process_) process_->kill();
}

} // namespace akv::test
