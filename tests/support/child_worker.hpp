// One akv_queue_test_worker process (tests/support/queue_worker_main.cpp), for the task queue
// tests across processes. Needs AKV_QUEUE_WORKER_PATH (tests/CMakeLists.txt).
#pragma once

#include "support/harness.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <csignal>
#include <fcntl.h>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#ifndef AKV_QUEUE_WORKER_PATH
#error "AKV_QUEUE_WORKER_PATH must name the akv_queue_test_worker binary (tests/CMakeLists.txt)"
#endif

namespace akv::test {

// One akv_queue_test_worker process. Its stdout is read on the test's io_context (lines
// "ready <token>" and "drained ..."); its stderr goes to the test's. The destructor SIGKILLs
// it if it still runs, so a failing test leaves no process behind; it also dies with the test
// process (PR_SET_PDEATHSIG).
class child_worker {
public:
    child_worker(boost::asio::io_context& io, const std::vector<std::string>& args)
        : io_(io)
        , out_(io) {
        std::vector<std::string> all;
        all.push_back(AKV_QUEUE_WORKER_PATH);
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        sigset_t unblocked;
        sigemptyset(&unblocked);
        const pid_t parent = ::getpid();

        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
        const pid_t pid = ::fork();
        if (pid < 0) {
            ::close(fds[0]);
            ::close(fds[1]);
            throw std::runtime_error("fork failed");
        }
        if (pid == 0) { // only async-signal-safe calls until exec
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(127);
            ::sigprocmask(SIG_SETMASK, &unblocked, nullptr);
            if (::dup2(fds[1], STDOUT_FILENO) < 0) ::_exit(127);
            ::syscall(SYS_close_range, 3U, ~0U, 0U);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        pid_ = pid;
        ::close(fds[1]);
        out_.assign(fds[0]);
        boost::asio::co_spawn(io_, read_output(),
                              [this](std::exception_ptr) { reader_done_ = true; });
    }

    ~child_worker() {
        kill_now();
        boost::system::error_code ignored;
        out_.close(ignored);
        run_until(
            io_, [this] { return reader_done_; }, std::chrono::seconds(5));
    }

    child_worker(const child_worker&) = delete;
    child_worker& operator=(const child_worker&) = delete;

    // Until the child printed "ready <token>"; false if it did not in time (or exited).
    bool wait_ready(std::chrono::milliseconds limit) {
        run_until(
            io_, [this] { return ready() || eof_; }, limit);
        return ready();
    }
    bool ready() const { return output_.find("ready ") != std::string::npos; }

    void signal(int sig) {
        if (pid_ > 0) ::kill(pid_, sig);
    }

    // SIGKILL and reap, now. Idempotent.
    void kill_now() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status_, 0);
        pid_ = -1;
    }

    // Until the child exits (its stdout closes); its waitpid status, or nullopt at the deadline.
    std::optional<int> wait_exit(std::chrono::milliseconds limit) {
        if (pid_ > 0) {
            if (!run_until(
                    io_, [this] { return eof_; }, limit))
                return std::nullopt;
            ::waitpid(pid_, &status_, 0);
            pid_ = -1;
        }
        return status_;
    }

    const std::string& output() const { return output_; }
    pid_t pid() const { return pid_; }
    // The worker's token from its "ready <token>" line; empty before it.
    std::string token() const {
        const auto at = output_.find("ready ");
        if (at == std::string::npos) return {};
        const auto end = output_.find('\n', at);
        return output_.substr(at + 6, end == std::string::npos ? end : end - at - 6);
    }

    // A number from the "drained completed=<n> handed_back=<n>" line; -1 if absent.
    long long drained(const std::string& field) const {
        const auto line = output_.find("drained ");
        if (line == std::string::npos) return -1;
        const auto at = output_.find(field + "=", line);
        if (at == std::string::npos) return -1;
        return std::stoll(output_.substr(at + field.size() + 1));
    }

private:
    boost::asio::awaitable<void> read_output() {
        char buf[4096];
        for (;;) {
            auto [ec, n] = co_await out_.async_read_some(
                boost::asio::buffer(buf), boost::asio::as_tuple(boost::asio::use_awaitable));
            output_.append(buf, n);
            if (ec) break;
        }
        eof_ = true;
    }

    boost::asio::io_context& io_;
    boost::asio::posix::stream_descriptor out_;
    pid_t pid_ = -1;
    int status_ = -1;
    std::string output_;
    bool eof_ = false;
    bool reader_done_ = false;
};

} // namespace akv::test
