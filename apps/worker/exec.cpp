#include "exec.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace akv::worker_app {

namespace {

constexpr std::size_t max_output = 1 << 20;

// The child, killed and reaped when the run ends some other way (cancellation, timeout).
struct child {
    pid_t pid = -1;
    int status = 0;
    ~child() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    void wait() {
        ::waitpid(pid, &status, 0);
        pid = -1;
    }
};

struct fd_pair {
    int fd[2] = {-1, -1};
    fd_pair() {
        if (::pipe2(fd, O_CLOEXEC) != 0)
            throw std::runtime_error(std::string("exec: pipe: ") + std::strerror(errno));
    }
    ~fd_pair() {
        for (int f : fd)
            if (f >= 0) ::close(f);
    }
    int release(int i) {
        int f = fd[i];
        fd[i] = -1;
        return f;
    }
};

} // namespace

asio::awaitable<std::string> run_program(std::vector<std::string> args, std::string input,
                                         std::string what, bool with_stderr) {
    // Written whole before the output is read: within one pipe buffer, so a child that
    // talks before it has read all of it cannot deadlock with us.
    if (input.size() > 60000) throw std::invalid_argument(what + ": stdin over 60000 bytes");

    fd_pair out, in;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in.fd[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
    if (with_stderr) posix_spawn_file_actions_adddup2(&actions, out.fd[1], 2);
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    child c;
    const int rc = ::posix_spawnp(&c.pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        c.pid = -1;
        throw std::runtime_error(what + ": cannot run '" + args[0] + "': " + std::strerror(rc));
    }
    ::close(out.release(1));
    ::close(in.release(0));

    auto ex = co_await asio::this_coro::executor;
    asio::posix::stream_descriptor reader(ex, out.release(0));
    {
        asio::posix::stream_descriptor writer(ex, in.release(1));
        if (!input.empty())
            co_await asio::async_write(writer, asio::buffer(input),
                                       asio::as_tuple(asio::use_awaitable));
    } // closed: the child sees end of input
    std::string output;
    std::array<char, 16384> buf;
    for (;;) {
        auto [rec, n] =
            co_await reader.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
        if (output.size() < max_output)
            output.append(buf.data(), std::min(n, max_output - output.size()));
        if (rec) break; // eof: the child closed its output, usually by exiting
    }
    c.wait();
    if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0) co_return output;
    const std::string how =
        WIFEXITED(c.status)     ? "exit status " + std::to_string(WEXITSTATUS(c.status))
        : WIFSIGNALED(c.status) ? "killed by signal " + std::to_string(WTERMSIG(c.status))
                                : "ended oddly";
    const std::string tail = output.size() > 400 ? output.substr(output.size() - 400) : output;
    throw std::runtime_error(what + ": " + args[0] + ": " + how +
                             (tail.empty() ? "" : ": " + tail));
}

queue::handler exec_handler(std::vector<std::string> allowed) {
    return [allowed](queue::job_context& jc) -> asio::awaitable<std::string> {
        const std::string& id = jc.job().id;
        boost::system::error_code ec;
        const boost::json::value payload = boost::json::parse(jc.job().payload, ec);
        const boost::json::object* o = ec ? nullptr : payload.if_object();
        const boost::json::value* argv_v = o ? o->if_contains("argv") : nullptr;
        if (!argv_v || !argv_v->is_array() || argv_v->get_array().empty())
            throw std::invalid_argument("exec job " + id +
                                        ": payload must be {\"argv\": [\"program\", ...]}");
        std::vector<std::string> args;
        for (const auto& a : argv_v->get_array()) {
            if (!a.is_string())
                throw std::invalid_argument("exec job " + id + ": argv holds a non-string");
            args.emplace_back(a.get_string());
        }
        if (std::find(allowed.begin(), allowed.end(), "*") == allowed.end() &&
            std::find(allowed.begin(), allowed.end(), args[0]) == allowed.end())
            throw std::invalid_argument("exec job " + id + ": program '" + args[0] +
                                        "' is not allowed (akv-worker --exec-allow)");
        std::string input;
        if (const auto* s = o->if_contains("stdin"); s && s->is_string()) input = s->get_string();
        co_return co_await run_program(std::move(args), std::move(input), "exec job " + id, true);
    };
}

} // namespace akv::worker_app
