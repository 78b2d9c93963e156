// The Celery worker and producer (akv/queue/celery.hpp, celery_producer.hpp) against the real
// Python Celery (Debian's python3-celery): Python producers in front of our worker, our
// producer in front of a `celery worker` process, our worker SIGKILLed mid-task, bad input.
// The Python side is tests/integration/celery/ (celery_tasks.py, client.py), run with
// /usr/bin/python3; without Celery there the tests are skipped.
#include "support/celery_tasks.hpp"
#include "support/eventually.hpp"
#include "support/running_client.hpp"

#include <akv/messaging/subscriber.hpp>
#include <akv/queue/celery.hpp>
#include <akv/queue/celery_producer.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AKV_CELERY_TESTS_DIR
#error "AKV_CELERY_TESTS_DIR must name tests/integration/celery (tests/CMakeLists.txt)"
#endif
#ifndef AKV_CELERY_WORKER_PATH
#error "AKV_CELERY_WORKER_PATH must name akv_celery_test_worker (tests/CMakeLists.txt)"
#endif

using namespace akv::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace json = boost::json;
namespace celery = akv::queue::celery;

namespace {

constexpr const char* python = "/usr/bin/python3";

bool have_celery() {
    return std::system("/usr/bin/python3 -c 'import celery, redis' >/dev/null 2>&1") == 0;
}

// A child process with its stdout read line by line on the test's io_context; SIGKILLed (and
// reaped) by the destructor if it still runs, and dead with the test process
// (PR_SET_PDEATHSIG).
class process {
public:
    process(asio::io_context& io, std::vector<std::string> args, std::vector<std::string> env = {})
        : io_(io)
        , out_(io) {
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
        const pid_t parent = ::getpid();
        const pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error("fork failed");
        if (pid == 0) { // only async-signal-safe calls until exec
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(127);
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            if (::dup2(fds[1], STDOUT_FILENO) < 0) ::_exit(127);
            ::syscall(SYS_close_range, 3U, ~0U, 0U);
            for (auto& e : env)
                ::putenv(e.data());
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        pid_ = pid;
        ::close(fds[1]);
        out_.assign(fds[0]);
        asio::co_spawn(io_, read(), [this](std::exception_ptr) { eof_ = true; });
    }
    ~process() {
        kill(SIGKILL);
        boost::system::error_code ignored;
        out_.close(ignored);
        run_until(
            io_, [this] { return eof_; }, 5s);
    }

    void kill(int sig) {
        if (pid_ <= 0) return;
        ::kill(pid_, sig);
        if (sig == SIGKILL) reap();
    }
    // Runs the io_context until the process has printed a line starting with `start` (true)
    // or the deadline.
    bool wait_for_line(const std::string& start, std::chrono::milliseconds limit) {
        return run_until(
            io_,
            [&] {
                return std::any_of(lines.begin(), lines.end(),
                                   [&](const std::string& l) { return l.rfind(start, 0) == 0; });
            },
            limit);
    }
    // Runs the io_context until the process has closed its output and exited; its status
    // (-1 on timeout).
    int wait_exit(std::chrono::milliseconds limit) {
        if (!run_until(
                io_, [this] { return eof_; }, limit))
            return -1;
        return reap();
    }
    std::string output() const {
        std::string all;
        for (const auto& l : lines)
            all += l + "\n";
        return all;
    }

    std::vector<std::string> lines;

private:
    int reap() {
        if (pid_ <= 0) return status_;
        int st = 0;
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return status_;
    }
    asio::awaitable<void> read() {
        asio::streambuf buf;
        for (;;) {
            auto [ec, n] = co_await asio::async_read_until(out_, buf, '\n',
                                                           asio::as_tuple(asio::use_awaitable));
            if (ec) break;
            std::string line(asio::buffers_begin(buf.data()),
                             asio::buffers_begin(buf.data()) + static_cast<long>(n) - 1);
            buf.consume(n);
            lines.push_back(line);
        }
    }

    asio::io_context& io_;
    asio::posix::stream_descriptor out_;
    pid_t pid_ = -1;
    int status_ = -1;
    bool eof_ = false;
};

std::vector<std::string> python_env(const akv::testing::embedded_server& server,
                                    const std::string& visibility_s = "3600") {
    return {"AKV_CELERY_BROKER=" + server.url() + "/0",
            "PYTHONPATH=" + std::string(AKV_CELERY_TESTS_DIR),
            "AKV_CELERY_VISIBILITY=" + visibility_s, "PYTHONDONTWRITEBYTECODE=1"};
}

// client.py SCENARIO ARGS..., to its end; its output.
std::string run_client(asio::io_context& io, const akv::testing::embedded_server& server,
                       std::vector<std::string> args, int& status,
                       std::chrono::milliseconds limit = 90s) {
    std::vector<std::string> argv{python, std::string(AKV_CELERY_TESTS_DIR) + "/client.py"};
    argv.insert(argv.end(), args.begin(), args.end());
    process p(io, argv, python_env(server));
    status = p.wait_exit(limit);
    return p.output();
}

// Our worker in this process, on the test's io_context.
struct our_worker {
    our_worker(asio::io_context& io, const akv::testing::embedded_server& server,
               celery::worker_options options = {})
        : redis(io, akv::config::from_url(server.url()))
        , hub(redis.client)
        , worker(redis.client, options, &hub) {
        add_celery_test_tasks(worker, redis.client);
        asio::co_spawn(io, worker.run(), [this](std::exception_ptr e) {
            error = e;
            ended = true;
        });
    }
    ~our_worker() {
        worker.stop();
        run_until(
            redis.io_, [this] { return ended; }, 15s);
    }
    running_client redis;
    akv::messaging::subscriber hub;
    celery::worker worker;
    bool ended = false;
    std::exception_ptr error;
};

class Celery : public ::testing::Test {
protected:
    void SetUp() override {
        if (!have_celery())
            GTEST_SKIP() << "/usr/bin/python3 cannot import celery (python3-celery)";
    }
    asio::io_context io;
    akv::testing::embedded_server server;
};

} // namespace

TEST_F(Celery, PythonDelayIsAnsweredByOurWorker) {
    our_worker w(io, server);
    int status = 0;
    const std::string out = run_client(io, server, {"add"}, status);
    EXPECT_EQ(status, 0) << out;
    EXPECT_EQ(w.worker.stats().succeeded, 51u);
    EXPECT_EQ(w.worker.stats().dead_lettered, 0u);
}

TEST_F(Celery, AFailingTaskRaisesItsExceptionInPython) {
    our_worker w(io, server);
    int status = 0;
    const std::string out = run_client(io, server, {"fail"}, status);
    EXPECT_EQ(status, 0) << out;
    EXPECT_EQ(w.worker.stats().failed, 2u);
}

TEST_F(Celery, CountdownExpiresTimeLimitRetriesAndRevokes) {
    our_worker w(io, server);
    int status = 0;
    const std::string out = run_client(io, server, {"options"}, status);
    EXPECT_EQ(status, 0) << out;
    EXPECT_EQ(w.worker.stats().retried, 2u + 5u);
    EXPECT_EQ(w.worker.stats().revoked, 3u); // expired, revoked, terminated
}

TEST_F(Celery, HigherPrioritiesAreTakenFirst) {
    int status = 0;
    const std::string sent = run_client(io, server, {"priority_send"}, status);
    ASSERT_EQ(status, 0) << sent;
    std::vector<std::string> args{"priority_check"};
    std::istringstream ids(sent.substr(0, sent.find('\n')));
    for (std::string id; ids >> id;)
        args.push_back(id);
    ASSERT_EQ(args.size(), 11u) << sent;
    celery::worker_options one_at_a_time;
    one_at_a_time.concurrency = 1;
    our_worker w(io, server, one_at_a_time);
    const std::string out = run_client(io, server, args, status);
    EXPECT_EQ(status, 0) << out;
}

TEST_F(Celery, BadInputIsDeadLetteredWithAReasonAndTheWorkerGoesOn) {
    our_worker w(io, server);
    int status = 0;
    const std::string out = run_client(io, server, {"bad"}, status);
    EXPECT_EQ(status, 0) << out;
    EXPECT_EQ(w.worker.stats().dead_lettered, 4u);
    std::vector<std::string> reasons;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("LRANGE", "akv:celery:dead-letters", 0, -1);
        req.push("HLEN", "unacked");
        akv::response<std::vector<std::string>, long long> resp;
        co_await w.redis.client.exec(req, resp);
        for (const auto& entry : std::get<0>(resp).value()) {
            const json::value v = json::parse(entry);
            reasons.emplace_back(v.at("reason").as_string());
            EXPECT_FALSE(v.at("message").as_string().empty());
        }
        EXPECT_EQ(std::get<1>(resp).value(), 0); // nothing left unacked: no retry forever
    });
    ASSERT_EQ(reasons.size(), 4u);
    auto has = [&](const std::string& text) {
        return std::any_of(reasons.begin(), reasons.end(),
                           [&](const std::string& r) { return r.find(text) != std::string::npos; });
    };
    EXPECT_TRUE(has("unknown task \"tests.no_such_task\"")) << reasons[0];
    EXPECT_TRUE(has("content type \"application/x-python-serialize\" is not supported"));
    EXPECT_TRUE(has("the body is not JSON"));
    EXPECT_TRUE(has("malformed envelope: no properties.delivery_tag"));
}

TEST_F(Celery, TaskEventsAreSeenByCeleryEventsState) {
    celery::worker_options o;
    o.send_events = true;
    o.heartbeat = 500ms;
    o.hostname = "akv@events-test";
    our_worker w(io, server, o);
    int status = 0;
    const std::string out = run_client(io, server, {"events", "akv@events-test"}, status);
    EXPECT_EQ(status, 0) << out;
}

TEST_F(Celery, OurProducersTasksRunOnACeleryWorker) {
    running_client redis(io, akv::config::from_url(server.url()));
    akv::messaging::subscriber hub(redis.client);
    process py(io,
               {python, "-m", "celery", "-A", "celery_tasks", "worker", "--pool", "solo", "-n",
                "py@test", "--without-gossip", "--without-mingle", "-l", "warning"},
               python_env(server));
    celery::producer producer(redis.client, &hub);
    // Built outside the coroutine: GCC 12 cannot keep an initializer list in a coroutine frame.
    const json::array two_three{2, 3}, boom{"boom"}, forty_two{40, 2}, one_one{1, 1};
    const json::object x_y{{"x", 1}, {"y", 2}};
    celery::send_options later;
    later.countdown = 500ms;
    later.priority = 6;
    celery::send_options expired;
    expired.expires = celery::clock::now() - 5s;
    celery::send_options nobody;
    nobody.queue = "nobody";
    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            // Sent before the Python worker is up: they wait on the queue for it.
            const auto add = co_await producer.send("tests.add", two_three);
            const auto fail = co_await producer.send("tests.fail", boom);
            const auto counted = co_await producer.send("tests.add", forty_two, {}, later);
            const auto gone = co_await producer.send("tests.add", one_one, {}, expired);
            const auto kw = co_await producer.send("tests.add", {}, x_y);

            auto r = co_await producer.result(add, 60s);
            EXPECT_TRUE(r.succeeded()) << r.status;
            EXPECT_EQ(r.result, json::value(5)) << json::serialize(r.result);
            r = co_await producer.result(fail, 20s);
            EXPECT_EQ(r.status, "FAILURE");
            EXPECT_EQ(r.error_text(), "ValueError: boom");
            r = co_await producer.result(counted, 20s);
            EXPECT_EQ(r.result, json::value(42));
            r = co_await producer.result(gone, 20s);
            EXPECT_EQ(r.status, "REVOKED");
            r = co_await producer.result(kw, 20s);
            EXPECT_EQ(r.result, json::value(3));
            // Nobody answers: a timeout, not a hang.
            celery::producer lonely(redis.client); // polls
            const auto never = co_await lonely.send("tests.add", one_one, {}, nobody);
            try {
                co_await lonely.result(never, 300ms);
                ADD_FAILURE() << "no timeout";
            } catch (const boost::system::system_error& e) {
                EXPECT_EQ(e.code(), akv::error::timeout);
            }
        },
        120s);
    py.kill(SIGTERM);
    EXPECT_GE(py.wait_exit(30s), 0);
}

TEST_F(Celery, AWorkerKilledMidTaskHasItsTaskRedeliveredAndCompletedOnce) {
    running_client redis(io, akv::config::from_url(server.url()));
    const std::vector<std::string> worker_args{AKV_CELERY_WORKER_PATH, server.url(), "1500", "100"};
    auto first = std::make_unique<process>(io, worker_args);
    ASSERT_TRUE(first->wait_for_line("ready", 20s));
    int status = 0;
    const std::string sent = run_client(io, server, {"send", "1000"}, status);
    ASSERT_EQ(status, 0) << sent;
    const std::string id = sent.substr(0, sent.find('\n'));
    auto count = [&](const char* hash) -> asio::awaitable<long long> {
        akv::request req;
        req.push("HGET", hash, id);
        akv::response<std::optional<long long>> resp;
        co_await redis.client.exec(req, resp);
        co_return std::get<0>(resp).value().value_or(0);
    };
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_TRUE(co_await eventually(
            [&]() -> asio::awaitable<bool> {
                co_return co_await count("akvtest:celery:starts") == 1;
            },
            20s));
    });
    first->kill(SIGKILL); // mid-task: started, not ended
    first.reset();
    process second(io, worker_args);
    ASSERT_TRUE(second.wait_for_line("ready", 20s));
    const std::string waited = run_client(io, server, {"wait", id, "30", "1000"}, status);
    EXPECT_EQ(status, 0) << waited;
    run_task(io, [&]() -> asio::awaitable<void> {
        EXPECT_EQ(co_await count("akvtest:celery:starts"), 2);
        EXPECT_EQ(co_await count("akvtest:celery:ends"), 1); // completed once
        akv::request req;
        req.push("HLEN", "unacked");
        akv::response<long long> resp;
        co_await redis.client.exec(req, resp);
        EXPECT_EQ(std::get<0>(resp).value(), 0);
    });
    second.kill(SIGTERM);
    EXPECT_EQ(second.wait_exit(20s), 0);
}

#ifdef AKV_WORKER_PATH
// akv-worker --celery-queue with --celery-task NAME=PROGRAM: the program gets the task's args
// and kwargs as JSON on stdin, its JSON stdout is the result Python's get() returns.
TEST_F(Celery, AkvWorkerRunsAProgramForACeleryTask) {
    process worker(
        io, {AKV_WORKER_PATH, "--redis", server.url(), "--celery-queue", "celery", "--celery-task",
             std::string("tests.add=") + python + " " + AKV_CELERY_TESTS_DIR + "/add_program.py",
             "--concurrency", "8"});
    ASSERT_TRUE(worker.wait_for_line("akv-worker running:", 20s)) << worker.output();
    EXPECT_EQ(worker.output(), "akv-worker running: 0 queue(s), 0 stream(s), 1 celery queue(s)\n");
    int status = 0;
    const std::string out = run_client(io, server, {"add"}, status);
    EXPECT_EQ(status, 0) << out;
    worker.kill(SIGTERM);
    EXPECT_EQ(worker.wait_exit(20s), 0);
}
#endif
