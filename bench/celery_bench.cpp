// Our Celery worker (akv/queue/celery.hpp) against Python's own `celery worker` (prefork,
// concurrency 2), on the same no-op task from the same Python producer, in the same run:
//
//   1. the Python producer (tests/integration/celery/client.py fill N, Celery's send_task)
//      puts N "tests.noop" messages on the queue "celery", with no worker listening to it;
//   2. the worker under test is up and idle on the queue "bench" (a first task run through);
//   3. RENAME celery bench hands it all N at once; the clock runs until N results are stored,
//      and the server's CPU (INFO cpu) is read before and after.
//
// One JSON line: tasks/s of both, their ratio, the server's CPU per task of both and its
// ratio (goal: >= 10x the tasks/s, <= 1/5 of the CPU per task).
//
//   akv_bench_celery [--quick]
#include "bench_support.hpp"

#include <akv/queue/celery.hpp>
#include <akv/queue/celery_producer.hpp>
#include <akv/testing/embedded_server.hpp>

#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

extern char** environ;

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace celery = akv::queue::celery;
using namespace std::chrono_literals;

const std::filesystem::path tasks_dir =
    akv::bench::bench_source_dir().parent_path() / "tests" / "integration" / "celery";

std::string env_prefix(const akv::testing::embedded_server& server) {
    return "AKV_CELERY_BROKER=" + server.url() + "/0 PYTHONPATH=" + tasks_dir.string() +
           " PYTHONDONTWRITEBYTECODE=1 ";
}

// The Python producer: N no-op tasks on "celery"; its send rate.
double fill(const akv::testing::embedded_server& server, long n) {
    const std::string out = akv::bench::run_command(env_prefix(server) + "/usr/bin/python3 " +
                                                    (tasks_dir / "client.py").string() + " fill " +
                                                    std::to_string(n) + " 2>&1");
    return std::atof(out.c_str());
}

struct python_worker {
    pid_t pid = -1;
    python_worker(const akv::testing::embedded_server& server) {
        std::vector<std::string> env_vars{"AKV_CELERY_BROKER=" + server.url() + "/0",
                                          "PYTHONPATH=" + tasks_dir.string(),
                                          "PYTHONDONTWRITEBYTECODE=1"};
        std::vector<char*> envp;
        for (char** e = environ; *e; ++e)
            envp.push_back(*e);
        for (auto& e : env_vars)
            envp.push_back(e.data());
        envp.push_back(nullptr);
        std::vector<std::string> args{"/usr/bin/python3",
                                      "-m",
                                      "celery",
                                      "-A",
                                      "celery_tasks",
                                      "worker",
                                      "--pool",
                                      "prefork",
                                      "-c",
                                      "2",
                                      "-Q",
                                      "bench",
                                      "-n",
                                      "py@bench",
                                      "--without-gossip",
                                      "--without-mingle",
                                      "--without-heartbeat",
                                      "-l",
                                      "error"};
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        // Its banner and warnings to /dev/null: this program's stdout is the JSON line.
        posix_spawn_file_actions_t quiet;
        posix_spawn_file_actions_init(&quiet);
        posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
        const int rc = ::posix_spawn(&pid, argv[0], &quiet, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&quiet);
        if (rc != 0) throw std::runtime_error("cannot start the Python celery worker");
    }
    ~python_worker() {
        ::kill(pid, SIGTERM);
        int st;
        ::waitpid(pid, &st, 0);
    }
};

struct side {
    double tasks_per_s = 0;
    double cpu_us_per_task = 0;
};

// Steps 2 and 3 for a worker already started; `done(n)` says whether n results are in.
asio::awaitable<side> measure(akv::client& redis, long n) {
    celery::producer warm(redis);
    celery::send_options o;
    o.queue = "bench";
    const auto id = co_await warm.send("tests.noop", json::array{}, json::object{}, o);
    co_await warm.result(id, 120s);
    akv::request size;
    size.push("DBSIZE");
    const long long base = co_await akv::bench::integer_command(redis, size);
    const double cpu0 = co_await akv::bench::redis_cpu_seconds(redis);
    const auto t0 = std::chrono::steady_clock::now();
    akv::request rename;
    rename.push("RENAME", "celery", "bench");
    co_await redis.exec(rename, akv::ignore);
    asio::steady_timer pause(co_await asio::this_coro::executor);
    for (;;) {
        akv::request check;
        check.push("DBSIZE");
        check.push("LLEN", "bench");
        akv::response<long long, long long> r;
        co_await redis.exec(check, r);
        // N result keys more, less the list "celery" renamed away.
        if (std::get<0>(r).value() >= base + n - 1 && std::get<1>(r).value() == 0) break;
        pause.expires_after(5ms);
        co_await pause.async_wait(asio::use_awaitable);
    }
    const double elapsed = akv::bench::seconds_between(t0, std::chrono::steady_clock::now());
    const double cpu1 = co_await akv::bench::redis_cpu_seconds(redis);
    co_return side{n / elapsed, (cpu1 - cpu0) * 1e6 / n};
}

} // namespace

int main(int argc, char** argv) {
    const auto quick = akv::bench::quick_option(argc, argv, "akv_bench_celery");
    if (!quick) return 2;
    const long n_ours = *quick ? 5000 : 20000;
    const long n_python = *quick ? 1000 : 4000;
    try {
        akv::testing::embedded_server server;
        side ours, python;
        double send_rate = 0;

        // Ours, in this process.
        send_rate = fill(server, n_ours);
        {
            asio::io_context io(1);
            akv::client redis(io.get_executor(), akv::config::from_url(server.url()));
            celery::worker_options wo;
            wo.queues = {"bench"};
            wo.concurrency = 64;
            wo.prefetch = 256;
            wo.max_batch = 128;
            celery::worker worker(redis, wo);
            worker.add_task(
                "tests.noop",
                [](celery::task_context&) -> asio::awaitable<json::value> { co_return nullptr; });
            asio::co_spawn(io, redis.run(), asio::detached);
            // Measured, then stopped: the client stops once the worker has drained.
            asio::co_spawn(io, worker.run(), [&](std::exception_ptr) { redis.cancel(); });
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    ours = co_await measure(redis, n_ours);
                    worker.stop();
                },
                [&](std::exception_ptr e) {
                    if (e) std::rethrow_exception(e);
                });
            io.run();
        }

        // Python's, prefork with 2 processes.
        {
            asio::io_context io(1);
            akv::client redis(io.get_executor(), akv::config::from_url(server.url()));
            asio::co_spawn(io, redis.run(), asio::detached);
            std::unique_ptr<python_worker> py;
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    co_await akv::bench::flushall(redis);
                    fill(server, n_python);
                    py = std::make_unique<python_worker>(server);
                    python = co_await measure(redis, n_python);
                    py.reset();
                    redis.cancel();
                },
                [&](std::exception_ptr e) {
                    if (e) std::rethrow_exception(e);
                });
            io.run();
        }

        const double ratio = ours.tasks_per_s / python.tasks_per_s;
        const double cpu_ratio = ours.cpu_us_per_task / python.cpu_us_per_task;
        akv::bench::json_line line;
        line.text("bench", "celery").text("scenario", "celery_noop_worker");
        line.number("tasks", static_cast<double>(n_ours), 0);
        line.number("python_tasks", static_cast<double>(n_python), 0);
        line.number("producer_tasks_per_s", send_rate, 0);
        line.number("akv_tasks_per_s", ours.tasks_per_s, 0);
        line.number("python_tasks_per_s", python.tasks_per_s, 0);
        line.number("ratio", ratio, 2);
        line.number("akv_redis_cpu_us_per_task", ours.cpu_us_per_task, 2);
        line.number("python_redis_cpu_us_per_task", python.cpu_us_per_task, 2);
        line.number("cpu_ratio", cpu_ratio, 3);
        line.text("goal", "ratio>=10 && cpu_ratio<=0.2");
        line.set("goal_met", ratio >= 10 && cpu_ratio <= 0.2);
        line.print();
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_celery: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
