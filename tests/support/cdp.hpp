// Driving a real browser from a test: headless Chromium as a child process and a client of the
// Chrome DevTools Protocol (CDP) over its WebSocket, synchronous, every call bounded by a
// deadline (a hung browser fails the test instead of hanging it).
//
//   akv::test::headless_chromium browser("/usr/bin/chromium", 15s);
//   auto page = browser.new_page();                  // a CDP session id
//   browser.cdp().navigate(page, "http://127.0.0.1:8080/");
//   auto state = browser.cdp().evaluate(page, "document.title");
//
// Compiled in akv_test_support_web (its Beast comes from akv::gateway): link that.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace akv::test {

// A fresh directory below $TMPDIR (or /tmp), removed with everything in it on destruction.
class temp_dir {
public:
    explicit temp_dir(std::string_view prefix = "akv-test-");
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// The whole text of a file; empty if it cannot be read.
std::string read_text(const std::filesystem::path& file);

// A child process whose stdout and stderr go to a log file. It dies with the thread that
// started it (PR_SET_PDEATHSIG); with `own_group` it leads a process group of its own and kill()
// ends the whole group (a browser's helper processes too). The destructor kills it.
class child_process {
public:
    child_process(std::vector<std::string> args, const std::vector<std::string>& extra_env,
                  std::filesystem::path log_file, bool own_group = false);
    ~child_process() { kill(); }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    // SIGKILL (to the group when it has its own) and reap. Idempotent.
    void kill() noexcept;

    // False once it has exited (reaping it).
    bool running();

    // Sends `sig` (SIGTERM: asks it to stop); running() tells when it has.
    void signal(int sig) noexcept;

    int pid() const { return pid_; }
    int status() const { return status_; } // waitpid status once it exited
    std::string log() const { return read_text(log_file_); }
    // The last `lines` lines of the log, for failure messages.
    std::string log_tail(std::size_t lines = 30) const;

private:
    std::filesystem::path log_file_;
    bool own_group_ = false;
    pid_t pid_ = -1;
    int status_ = -1;
};

// A loopback port free a moment ago: for a child process that must be told its port.
std::uint16_t free_port();

// The pid of `parent`'s child whose command name is `comm`; 0 if none.
int child_pid(int parent, const std::string& comm);

// A process run to its end: its exit code (-1 when it did not exit within the limit) and its
// stdout and stderr together (with "still running after the limit" first when it did not).
struct finished_run {
    int exit_code = -1;
    std::string output;
};
finished_run run_to_end(const temp_dir& dir, std::vector<std::string> args,
                        std::chrono::milliseconds limit = std::chrono::seconds(20));

// The browser of the e2e tests: $AKV_CHROMIUM, else Debian's.
std::string chromium_path();

// Polls `done` every `every` until it is true or `limit` passed: the one way tests here wait
// for something that happens on another process's time. True if it became true.
template <class Done>
bool poll_until(Done&& done, std::chrono::milliseconds limit,
                std::chrono::milliseconds every = std::chrono::milliseconds(50)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (done()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(every);
    }
}

// A Chrome DevTools Protocol connection (the browser endpoint) with flat sessions: commands to
// a page carry its session id. Events are kept (events()), so a failing test can show what the
// page logged.
class cdp_client {
public:
    cdp_client(std::uint16_t port, const std::string& path, std::chrono::milliseconds limit);
    ~cdp_client();
    cdp_client(const cdp_client&) = delete;
    cdp_client& operator=(const cdp_client&) = delete;

    // Sends a command and reads until its reply; the reply's "result". Throws on a CDP error
    // (with its message), a broken connection or the deadline.
    boost::json::value call(std::string_view method, boost::json::object params = {},
                            std::string_view session = {},
                            std::chrono::milliseconds limit = std::chrono::seconds(10));

    // A new tab (about:blank) attached with a flat session; its session id.
    std::string new_page();

    void navigate(std::string_view session, std::string_view url);

    // The value of a JavaScript expression in the page (returnByValue: JSON-able values only);
    // `await_promise` waits for a promise it returns. Throws with the exception's text when
    // the expression throws (or the page is between documents).
    boost::json::value evaluate(std::string_view session, std::string_view expression,
                                bool await_promise = false,
                                std::chrono::milliseconds limit = std::chrono::seconds(10));

    // Polls `expression` in the page every `every` until it is true. An exception (a document
    // still loading) counts as not yet; the last one's text goes to `last_error` if given.
    // False at the deadline.
    bool wait_true(std::string_view session, const std::string& expression,
                   std::chrono::milliseconds limit, std::chrono::milliseconds every,
                   std::string* last_error = nullptr);

    // Events read so far (CDP messages without an id), oldest first.
    const std::vector<boost::json::value>& events() const { return events_; }

    // What the page printed to its console and what it threw, one line each.
    std::string console_log() const;

private:
    struct connection; // the io_context, the WebSocket and its read buffer

    boost::json::value read(std::chrono::steady_clock::time_point deadline,
                            std::string_view method);

    std::unique_ptr<connection> connection_;
    std::int64_t next_id_ = 1;
    std::vector<boost::json::value> events_;
};

// Headless Chromium in a fresh profile, debugged over CDP on a port it picks
// (--remote-debugging-port=0, announced in <profile>/DevToolsActivePort). Killed, with its
// helper processes, on destruction.
class headless_chromium {
public:
    headless_chromium(const std::string& executable, std::chrono::milliseconds limit);
    ~headless_chromium();

    cdp_client& cdp() { return *cdp_; }
    std::string new_page() { return cdp_->new_page(); }
    std::string log_tail(std::size_t lines = 30) const { return process_->log_tail(lines); }

private:
    temp_dir dir_;
    std::optional<child_process> process_;
    std::optional<cdp_client> cdp_;
};

} // namespace akv::test
