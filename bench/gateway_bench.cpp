// WebSocket fan-out: our gateway (websocket_gateway) against socket.io 4 + @socket.io/redis-adapter
// (bench/peers/gateway, the peer harness of issue "WebSocket gateway"), the same scenarios with
// the same measurement in one run, and the ratios.
//
//   akv_bench_gateway [--quick] [--rounds R] [--only REGEX] [--no-peer] [--threads N]
//                     [--peer PATH/TO/bench_socketio.sh]
//   akv_bench_gateway --serve --redis-port P [--redis-host H] [--send-queue N] [--threads N]
//
// Scenario by scenario, the peer runs first (its script starts its own redis-server, a socket.io
// server process, a client process and its orchestrator/publisher, bench.js, for that scenario
// alone), then ours, so both figures of a line are taken close in time on a possibly shared
// machine, never at once (2 cores). Ours: bench/gateway/akv_bench.js is that orchestrator
// adapted to our gateway (same scenarios, modes, knobs, histogram and /proc figures), against a
// private embedded_server. Its server under test is this very binary in --serve mode, one fresh
// child process per (scenario, mode): only the gateway and its akv::client on one io_context,
// options port 0, anonymous "*", send_queue 100000 (sat mode measures throughput, not drops), no
// client rate limit, sessions over THREADS event loops (options::threads); its RSS and CPU (all
// its threads) are read by pid, as the peer's server.js. The clients
// (bench/gateway/akv_clients.js) are `ws` WebSockets in a separate node process, as the peer's
// socket.io-client process.
//
// Knobs (env), the names and defaults of the peer's bench.js, passed to both sides unchanged:
//   CLIENTS [100,1000,1000]  CHANNELS [1,1,100] (paired: scenario k = CLIENTS[k] clients over
//   CHANNELS[k] channels)    RATE [200] msgs/s (fixed mode)   SECONDS [10] (fixed)
//   SAT_SECONDS [5]          BACKLOG [20000] outstanding deliveries (sat)
//   DRAIN_S [5]  QUIET_S [5] MODES [fixed,sat,conn]   DEADLINE_S [60] per (scenario, mode)
//   CLIENT_PROCS [1]  CONNECT_CONC [50]  PAYLOAD [0]  SCENARIOS [.*] regex on c1000_ch1_sat...
//   (each side's node run of one (scenario, mode) is stopped after DEADLINE_S + 30..45 s)
// and the connections scenarios (mode conn, c5000_ch100_conn, c18000_ch100_conn; run last;
// SCENARIOS=_conn selects only them, MODES=fixed,sat leaves them out):
//   CONN_CLIENTS [5000,18000] one scenario each   CONN_CHANNELS [100]
//   CONN_PER_PROC [4000] clients per client process: these machines allow 20,000 descriptors
//   per process and refuse to raise it, so the clients are spread over several processes and
//   the server (one descriptor per connection, plus Redis) stays under the limit; each
//   connection takes one local port (net.ipv4.ip_local_port_range, checked at start)
//   HOLD_S [35] (past socket.io's 25 s heartbeat and our 30 s ping)   BCAST_WAIT_S [10]
//   CONN_DEADLINE_S [240] per conn (scenario, side), in place of DEADLINE_S
//   QUICK=1 (= --quick): SECONDS 3, SAT_SECONDS 2, DRAIN_S 3, QUIET_S 2, HOLD_S 5 unless set.
//   ROUNDS [1] (= --rounds): each scenario runs R times (peer, ours, peer, ours...) and each
//   figure is the median of its rounds. PEER=0 (= --no-peer).
//   BENCH_DIR: the peer's npm install (socket.io, ioredis, ws), also used by our side; default
//   <tmp>/akv_bench_gateway_npm, kept between runs so nothing is downloaded twice.
//   PEER_TIMEOUT_S [1200]: one run of the peer's script, npm install included.
//   THREADS [the machine's cores, as akv-gateway --threads] (= --threads): our gateway's
//   options::threads; socket.io stays one Node process. Each line says "threads":N.
// When the peer gives no result (npm install failed, no network, ...), a line
// {"bench":"gateway","peer_error":true,"error":...,"log_tail":...} says why and our figures are
// printed all the same, with null for the peer's.
//
// One JSON line per (scenario, mode): delivered msgs/s of both and their ratio, e2e latency,
// lost, connections per GB of server RSS, server CPU, and the goal: in sat mode ratio >= 3 and a
// lower p99 than the peer's; in fixed mode (both are offered the same rate, so the throughput
// ratio is ~1 by construction) a lower p99 and no more lost than the peer. "noisy": true when
// other processes took over 25% of a core during a side's run (foreign_cpu_pct): rerun on an
// idle machine. A last line sums up which scenarios met their goal.
//
// The connections scenario (c<N>_ch<C>_conn): N idle clients, client j subscribed to channel
// j % C (socket.io: joined to that room), connected CONNECT_CONC at a time per process; the
// server's RSS before any client and 1 s after the last one subscribed (socket.io's after a
// GC) give kb_per_conn_marginal (RSS growth / N) and conns_per_gb_marginal (1048576 / KB);
// then the connections are held HOLD_S (kb_per_conn_held: the growth after the hold) and one
// message is published to each of the C channels: broadcast_receivers counts the clients that
// got it within BCAST_WAIT_S, client_disconnects those closed since all were connected. One
// line per scenario with both sides' figures and ratio = socket.io's KB per connection / ours
// (higher is better, as in every line); server_fds is the server's descriptors, all connected.
// The goal is ours alone (issue: at most 6 KB per idle connection): kb_per_conn_marginal <= 6,
// all N connected, 0 disconnects, all N reached by the broadcast (with ROUNDS, the worst round).
//
// Reading the figures on a 2-core machine: server, clients, publisher and Redis share the two
// cores, and in sat mode the closed loop (BACKLOG outstanding deliveries, progress every 10 ms)
// and the single client process bound what a fast server can show; server CPU per delivery
// (cpu_per_delivery_ratio) is the figure that depends least on them. CLIENT_PROCS=2 spreads the
// clients of both sides over two processes.
#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/gateway/options.hpp>
#include <akv/gateway/server.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/version.hpp>

#include "bench_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace asio = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

extern char** environ;

namespace {

using namespace akv::bench; // the helpers every benchmark shares (bench_support.hpp)

std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) return std::nullopt;
    return std::string(v);
}

// The gateway's default (akv-gateway --threads): one event loop per core.
std::size_t default_threads() {
    return std::max<std::size_t>(1, std::thread::hardware_concurrency());
}

// Children inherit it: 1000 clients need 1000 sockets in the client process and in the server.
void raise_nofile_limit() {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &r);
    }
}

// ---- --serve: the gateway alone, for akv_bench.js

// Reads {"cmd":"stats","id":N} lines on stdin, answers on stdout; prints the ready line once
// listening; stops on SIGTERM or when stdin closes (its parent is gone).
int serve(int argc, char** argv) {
    std::string host = "127.0.0.1";
    int redis_port = 0;
    std::size_t send_queue = 100000;
    std::size_t threads = default_threads();
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--redis-port" && i + 1 < argc)
            redis_port = std::stoi(argv[++i]);
        else if (arg == "--redis-host" && i + 1 < argc)
            host = argv[++i];
        else if (arg == "--send-queue" && i + 1 < argc)
            send_queue = std::stoul(argv[++i]);
        else if (arg == "--threads" && i + 1 < argc)
            threads = std::stoul(argv[++i]);
        else {
            std::cerr << "usage: akv_bench_gateway --serve --redis-port P [--redis-host H] "
                         "[--send-queue N] [--threads N]\n";
            return 2;
        }
    }
    if (redis_port <= 0) {
        std::cerr << "akv_bench_gateway --serve: --redis-port is required\n";
        return 2;
    }
    if (threads == 0 || threads > 256) {
        std::cerr << "akv_bench_gateway --serve: --threads: expected 1 to 256\n";
        return 2;
    }
    ::prctl(PR_SET_PDEATHSIG, SIGKILL); // the orchestrator gone: so are we
    raise_nofile_limit();

    asio::io_context io(1);
    akv::config cfg;
    cfg.hosts = {akv::endpoint{host, std::uint16_t(redis_port)}};
    akv::client redis(io.get_executor(), cfg);
    asio::co_spawn(io, redis.run(), asio::detached);

    akv::gateway::options o;
    o.port = 0;
    o.anonymous = {"*"};
    o.send_queue = send_queue;
    o.max_rate = 1e6;
    o.max_burst = 1e6;
    o.shutdown_grace = 2000ms;
    o.threads = threads;
    akv::gateway::server gw(redis, o);

    int status = 0;
    bool stopping = false;
    auto stop = [&] {
        if (stopping) return;
        stopping = true;
        gw.stop();
    };
    asio::co_spawn(io, gw.run(), [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                std::cerr << "akv_bench_gateway --serve: " << x.what() << "\n";
            }
            status = 1;
        }
        redis.cancel();
        io.stop();
    });
    // The ready line, once listening.
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer t(co_await asio::this_coro::executor);
            const auto give_up = clock_type::now() + 15s;
            while (!gw.listening() && clock_type::now() < give_up) {
                t.expires_after(2ms);
                co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            if (!gw.listening()) {
                std::cerr << "akv_bench_gateway --serve: not listening after 15 s\n";
                status = 1;
                stop();
                co_return;
            }
            std::printf("{\"type\":\"ready\",\"port\":%u,\"versions\":{\"akv_gateway\":\"dev\","
                        "\"boost\":\"%d.%d.%d\"}}\n",
                        unsigned(gw.port()), BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000,
                        BOOST_VERSION % 100);
            std::fflush(stdout);
        },
        asio::detached);
    asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (!ec) stop();
    });
    // stdin: stats requests; EOF stops the server. Detached: it may stay blocked in read until
    // the process exits (with _exit, below).
    std::thread([&io, &gw, &stop] {
        std::string line;
        while (std::getline(std::cin, line)) {
            json::error_code ec;
            json::value v = json::parse(line, ec);
            if (ec || !v.is_object()) continue;
            const json::object& m = v.as_object();
            const json::value* cmd = m.if_contains("cmd");
            if (!cmd || !cmd->is_string() || cmd->as_string() != "stats") continue;
            const json::value* idv = m.if_contains("id");
            const long long id = idv && idv->is_int64() ? idv->as_int64() : 0;
            asio::post(io, [&gw, id] {
                const akv::gateway::stats s = gw.snapshot();
                std::printf("{\"type\":\"stats\",\"id\":%lld,\"conns\":%llu,\"channels\":%llu,"
                            "\"sessions_total\":%llu,\"refused_total\":%llu,\"messages_in\":%llu,"
                            "\"messages_out\":%llu,\"frames_out\":%llu,\"dropped\":%llu,"
                            "\"slow_disconnects\":%llu}\n",
                            id, (unsigned long long)s.sessions, (unsigned long long)s.channels,
                            (unsigned long long)s.sessions_total,
                            (unsigned long long)s.refused_total,
                            (unsigned long long)s.messages_in, (unsigned long long)s.messages_out,
                            (unsigned long long)s.frames_out, (unsigned long long)s.dropped,
                            (unsigned long long)s.slow_disconnects);
                std::fflush(stdout);
            });
        }
        asio::post(io, stop);
    }).detach();
    io.run();
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(status);
}

// ---- children: a command with its stdout captured, its stderr passed on (and its tail kept),
// in its own process group, killed (the whole group) when its time is up

// The process group of the child running now: a Ctrl-C (or SIGTERM) of the benchmark reaches
// it too, although it has a group of its own.
volatile sig_atomic_t running_group = 0;

extern "C" void forward_and_die(int sig) {
    if (running_group > 0) ::kill(-pid_t(running_group), SIGTERM);
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

struct child_result {
    std::string out;
    int status = -1; // exit status, 128 + signal, or -1 if it could not start
    bool timed_out = false;
    std::deque<std::string> err_tail;
};

child_result run_child(const std::vector<std::string>& argv,
                       const std::vector<std::pair<std::string, std::string>>& env_add,
                       const std::string& cwd, double timeout_s) {
    child_result r;
    // The environment: ours with env_add over it, built before fork.
    std::map<std::string, std::string> vars;
    for (char** e = environ; *e; ++e) {
        const std::string kv = *e;
        const auto eq = kv.find('=');
        if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : env_add)
        vars[k] = v;
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : vars)
        env_strings.push_back(k + "=" + v);
    std::vector<char*> envp, args;
    for (std::string& s : env_strings)
        envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_copy = argv;
    for (std::string& s : argv_copy)
        args.push_back(s.data());
    args.push_back(nullptr);

    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe failed");
    std::cout.flush();
    std::cerr.flush();
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::setpgid(0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGTERM); // a shell script's EXIT trap still runs
        if (::getppid() != parent) ::_exit(127);
        ::dup2(out_pipe[1], 1);
        ::dup2(err_pipe[1], 2);
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(127);
        ::execvpe(args[0], args.data(), envp.data());
        const std::string msg = std::string("cannot run ") + args[0] + ": " + std::strerror(errno) + "\n";
        (void)!::write(2, msg.data(), msg.size());
        ::_exit(127);
    }
    ::setpgid(pid, pid);
    running_group = pid;
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);

    const auto start = clock_type::now();
    const auto deadline = start + std::chrono::duration_cast<clock_type::duration>(
                                      std::chrono::duration<double>(timeout_s));
    std::optional<clock_type::time_point> killed_at, exited_at;
    bool out_open = true, err_open = true, reaped = false;
    std::string err_partial;
    auto err_line = [&](std::string line) {
        std::cerr << line << "\n";
        r.err_tail.push_back(std::move(line));
        if (r.err_tail.size() > 20) r.err_tail.pop_front();
    };
    char buf[65536];
    while (out_open || err_open || !reaped) {
        const auto now = clock_type::now();
        if (!killed_at && now >= deadline) {
            std::cerr << "gateway: " << argv[0] << " still running after " << timeout_s
                      << " s: stopping it\n";
            r.timed_out = true;
            ::kill(-pid, SIGTERM);
            killed_at = now;
        } else if (killed_at && now - *killed_at > 10s) {
            ::kill(-pid, SIGKILL);
        }
        if (!reaped) {
            int st = 0;
            if (::waitpid(pid, &st, WNOHANG) == pid) {
                reaped = true;
                r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                exited_at = now;
            }
        }
        // A grandchild may keep the pipes open after the child is gone: not for long.
        if (reaped && exited_at && now - *exited_at > 3s) {
            ::kill(-pid, SIGKILL);
            break;
        }
        pollfd fds[2];
        int n = 0;
        if (out_open) fds[n++] = {out_pipe[0], POLLIN, 0};
        if (err_open) fds[n++] = {err_pipe[0], POLLIN, 0};
        if (n == 0) {
            ::usleep(20000);
            continue;
        }
        if (::poll(fds, nfds_t(n), 100) <= 0) continue;
        for (int i = 0; i < n; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
            const bool is_out = fds[i].fd == out_pipe[0];
            if (got <= 0) {
                (is_out ? out_open : err_open) = false;
                continue;
            }
            if (is_out) {
                r.out.append(buf, std::size_t(got));
            } else {
                err_partial.append(buf, std::size_t(got));
                for (std::size_t nl; (nl = err_partial.find('\n')) != std::string::npos;) {
                    err_line(err_partial.substr(0, nl));
                    err_partial.erase(0, nl + 1);
                }
            }
        }
    }
    if (!err_partial.empty()) err_line(err_partial);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    if (!reaped) {
        int st = 0;
        ::kill(-pid, SIGKILL);
        ::waitpid(pid, &st, 0);
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    running_group = 0;
    return r;
}

// The JSON objects among `out`'s lines.
std::vector<json::object> json_lines(const std::string& out) {
    std::vector<json::object> r;
    std::stringstream in(out);
    for (std::string text; std::getline(in, text);) {
        json::error_code ec;
        json::value v = json::parse(text, ec);
        if (!ec && v.is_object()) r.push_back(std::move(v.as_object()));
    }
    return r;
}

std::string tail_text(const std::deque<std::string>& tail, std::size_t lines) {
    std::string out;
    const std::size_t from = tail.size() > lines ? tail.size() - lines : 0;
    for (std::size_t i = from; i < tail.size(); ++i)
        out += (out.empty() ? "" : "\n") + tail[i];
    return out;
}

// ---- output (the JSON line and ratio: bench_support.hpp)

// The median (the lower one of an even count) of `key` over the rounds that have it.
std::optional<double> med(const std::vector<json::object>& rounds, std::string_view key) {
    std::vector<double> v;
    for (const json::object& o : rounds)
        if (auto x = number_field(&o, key)) v.push_back(*x);
    if (v.empty()) return std::nullopt;
    std::ranges::sort(v);
    return v[(v.size() - 1) / 2];
}

json::array runs(const std::vector<json::object>& rounds, std::string_view key) {
    json::array out;
    for (const json::object& o : rounds) {
        const auto x = number_field(&o, key);
        out.push_back(x ? json::value(*x) : json::value(nullptr));
    }
    return out;
}

struct scenario {
    std::string name; // c1000_ch1_sat
    std::vector<json::object> ours, theirs; // one per round that gave a figure
    std::vector<std::string> our_errors, their_errors;
};

// Prints the scenario's line; whether its goal was met (nullopt: a side without figures).
std::optional<bool> report(const scenario& s, int rounds, std::size_t threads) {
    const auto& a = s.ours;
    const auto& p = s.theirs;
    const json::object* first = !a.empty() ? &a.front() : !p.empty() ? &p.front() : nullptr;
    const bool sat = s.name.size() > 4 && s.name.ends_with("_sat");

    json_line line;
    line.set("bench", "gateway").text("scenario", s.name);
    line.copy("clients", first, "clients").copy("channels", first, "channels");
    line.copy("mode", first, "mode").copy("fanout_per_msg", first, "fanout_per_msg");
    line.set("threads", threads);
    if (sat)
        line.copy("backlog_limit_deliveries", first, "backlog_limit_deliveries");
    else
        line.copy("offered_deliveries_per_s", first, "offered_deliveries_per_s");

    const auto ours = [&](std::string_view k) { return med(a, k); };
    const auto theirs = [&](std::string_view k) { return med(p, k); };
    const std::optional<double> tput = ratio(ours("delivered_per_s"), theirs("delivered_per_s"));
    line.number("akv_delivered_per_s", ours("delivered_per_s"), 0);
    line.number("socketio_delivered_per_s", theirs("delivered_per_s"), 0);
    line.number("ratio", tput, 2);
    for (const char* f : {"p50_ms", "p90_ms", "p99_ms", "max_ms"}) {
        line.number(std::string("akv_") + f, ours(f), 3);
        line.number(std::string("socketio_") + f, theirs(f), 3);
    }
    const std::optional<double> p99 = ratio(ours("p99_ms"), theirs("p99_ms"));
    line.number("p99_ratio", p99, 3);
    for (const char* f : {"lost", "late_after_drain", "client_disconnects"}) {
        line.number(std::string("akv_") + f, ours(f), 0);
        line.number(std::string("socketio_") + f, theirs(f), 0);
    }
    for (const char* f : {"conns_per_gb", "conns_per_gb_marginal"}) {
        line.number(std::string("akv_") + f, ours(f), 0);
        line.number(std::string("socketio_") + f, theirs(f), 0);
    }
    for (const char* f : {"kb_per_conn_marginal", "server_rss_base_mb", "server_rss_connected_mb",
                          "server_rss_peak_mb", "server_cpu_pct"}) {
        line.number(std::string("akv_") + f, ours(f), 1);
        line.number(std::string("socketio_") + f, theirs(f), 1);
    }
    line.number("akv_server_cpu_us_per_delivery", ours("server_cpu_us_per_delivery"), 2);
    line.number("socketio_server_cpu_us_per_delivery", theirs("server_cpu_us_per_delivery"), 2);
    line.number("cpu_per_delivery_ratio",
                ratio(ours("server_cpu_us_per_delivery"), theirs("server_cpu_us_per_delivery")), 3);
    for (const char* f : {"clients_cpu_pct", "redis_cpu_pct", "publisher_cpu_pct", "foreign_cpu_pct"}) {
        line.number(std::string("akv_") + f, ours(f), 1);
        line.number(std::string("socketio_") + f, theirs(f), 1);
    }
    for (const char* f : {"published_per_s", "connect_ms"}) {
        line.number(std::string("akv_") + f, ours(f), 0);
        line.number(std::string("socketio_") + f, theirs(f), 0);
    }

    // The goal: sat, 3x the peer's throughput and a lower p99; fixed (same offered rate on both
    // sides, so ~1x by construction), a lower p99 and no more lost.
    std::optional<bool> met;
    if (!a.empty() && !p.empty()) {
        const auto al = ours("lost"), pl = theirs("lost");
        const bool lower_p99 = p99 && *p99 < 1;
        if (sat) {
            line.text("goal", "ratio>=3 && akv_p99<socketio_p99");
            met = tput && *tput >= 3 && lower_p99;
        } else {
            line.text("goal", "akv_p99<socketio_p99 && akv_lost<=socketio_lost");
            met = lower_p99 && al && pl && *al <= *pl;
        }
        line.set("goal_met", *met);
    } else {
        line.text("goal", sat ? "ratio>=3 && akv_p99<socketio_p99"
                              : "akv_p99<socketio_p99 && akv_lost<=socketio_lost");
        line.set("goal_met", nullptr);
    }

    // Ours in detail (the gateway's counters), then errors, versions, rounds.
    for (const char* f : {"server_messages_out", "server_frames_out", "server_dropped",
                          "server_slow_disconnects", "client_frames"})
        line.number(std::string("akv_") + f, ours(f), 0);
    line.number("akv_server_msgs_per_frame", ours("server_msgs_per_frame"), 2);
    if (!a.empty()) line.copy("akv_client_close_codes", &a.back(), "client_close_codes");
    if (!a.empty()) line.copy("akv_truncated", &a.back(), "truncated");
    if (!p.empty()) line.copy("socketio_truncated", &p.back(), "truncated");
    if (!s.our_errors.empty()) line.text("akv_error", s.our_errors.back());
    if (!s.their_errors.empty()) line.text("socketio_error", s.their_errors.back());
    if (!p.empty()) line.copy("socketio_versions", &p.back(), "versions");
    if (first) {
        line.copy("redis", first, "redis").copy("node", first, "node").copy("cores", first, "cores");
        line.copy("client_procs", first, "client_procs");
    }
    // Other processes on the machine (a build, ...) took CPU during the run: figures are noisy.
    const double foreign = std::max(ours("foreign_cpu_pct").value_or(0), theirs("foreign_cpu_pct").value_or(0));
    if (foreign > 25) {
        line.set("noisy", true);
        std::cerr << "gateway: " << s.name << ": other processes used " << foreign
                  << "% of a core (median of the rounds) during a side's run: its figures are noisy\n";
    }
    if (rounds > 1) {
        line.set("akv_runs", runs(a, "delivered_per_s")).set("socketio_runs", runs(p, "delivered_per_s"));
        line.set("akv_p99_runs", runs(a, "p99_ms")).set("socketio_p99_runs", runs(p, "p99_ms"));
    }
    line.print();
    return met;
}

bool is_conn(const std::string& name) {
    return name.ends_with("_conn");
}

// Local ports a client may connect from (ip_local_port_range): each of the connections
// scenario's clients takes one; 0 if unknown.
long ephemeral_ports() {
    std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
    long low = 0, high = -1;
    return in >> low >> high ? high - low + 1 : 0;
}

// The connections scenario's line: the memory of N idle connections, held HOLD_S, and one
// broadcast to all of them; whether its goal was met (nullopt: no figures of ours).
std::optional<bool> report_conn(const scenario& s, int rounds, std::size_t threads) {
    const auto& a = s.ours;
    const auto& p = s.theirs;
    const json::object* first = !a.empty() ? &a.front() : !p.empty() ? &p.front() : nullptr;
    const auto ours = [&](std::string_view k) { return med(a, k); };
    const auto theirs = [&](std::string_view k) { return med(p, k); };
    // The counts the goal is about, from the worst of the rounds, not their median.
    const auto worst = [&](std::string_view k, bool highest) -> std::optional<double> {
        std::optional<double> w;
        for (const json::object& o : a)
            if (auto x = number_field(&o, k))
                w = !w ? *x : highest ? std::max(*w, *x) : std::min(*w, *x);
        return w;
    };
    json_line line;
    line.set("bench", "gateway").text("scenario", s.name);
    line.set("threads", threads);
    line.copy("clients", first, "clients").copy("channels", first, "channels");
    line.copy("mode", first, "mode").copy("client_procs", first, "client_procs");
    line.copy("clients_per_proc", first, "clients_per_proc").copy("hold_s", first, "hold_s");
    line.number("ephemeral_ports", double(ephemeral_ports()), 0);

    const auto pair = [&](const char* f, int decimals) {
        line.number(std::string("akv_") + f, ours(f), decimals);
        line.number(std::string("socketio_") + f, theirs(f), decimals);
    };
    pair("kb_per_conn_marginal", 2);
    // socket.io's KB per connection over ours: how many times more connections we hold per GB.
    line.number("ratio", ratio(theirs("kb_per_conn_marginal"), ours("kb_per_conn_marginal")), 2);
    for (const char* f : {"conns_per_gb_marginal", "conns_per_gb"})
        pair(f, 0);
    pair("kb_per_conn_held", 2);
    for (const char* f : {"server_rss_base_mb", "server_rss_connected_mb", "server_rss_held_mb",
                          "server_rss_peak_mb", "server_rss_hwm_mb"})
        pair(f, 1);
    for (const char* f :
         {"clients_connected", "connect_errors", "client_disconnects", "clients_connected_after",
          "broadcast_receivers", "broadcast_missing", "server_conns", "server_fds", "connect_ms",
          "connects_per_s", "broadcast_ms"})
        pair(f, 0);
    for (const char* f : {"p50_ms", "p99_ms"})
        pair(f, 3);
    for (const char* f :
         {"server_cpu_pct_hold", "clients_cpu_pct_hold", "server_cpu_pct", "foreign_cpu_pct"})
        pair(f, 1);

    // The goal (issue: at most 6 KB per idle connection; every client held, none disconnected,
    // every one reached by the broadcast), ours alone: the peer's figures are for comparison.
    std::optional<bool> met;
    line.text("goal", "akv_kb_per_conn_marginal<=6 && akv_clients_connected==clients && "
                      "akv_client_disconnects==0 && akv_broadcast_receivers==clients");
    const auto clients = number_field(first, "clients");
    if (!a.empty() && clients) {
        const auto kb = worst("kb_per_conn_marginal", true);
        const auto connected = worst("clients_connected", false);
        const auto disconnects = worst("client_disconnects", true);
        const auto receivers = worst("broadcast_receivers", false);
        met = kb && *kb <= 6 && connected && *connected == *clients && disconnects &&
              *disconnects == 0 && receivers && *receivers == *clients;
        line.set("goal_met", *met);
    } else {
        line.set("goal_met", nullptr);
    }

    for (const char* f : {"server_messages_out", "server_dropped", "server_slow_disconnects"})
        line.number(std::string("akv_") + f, ours(f), 0);
    if (!a.empty()) line.copy("akv_client_close_codes", &a.back(), "client_close_codes");
    if (!s.our_errors.empty()) line.text("akv_error", s.our_errors.back());
    if (!s.their_errors.empty()) line.text("socketio_error", s.their_errors.back());
    if (!p.empty()) line.copy("socketio_versions", &p.back(), "versions");
    if (first)
        line.copy("redis", first, "redis")
            .copy("node", first, "node")
            .copy("cores", first, "cores");
    const double foreign =
        std::max(ours("foreign_cpu_pct").value_or(0), theirs("foreign_cpu_pct").value_or(0));
    if (foreign > 25) {
        line.set("noisy", true);
        std::cerr
            << "gateway: " << s.name << ": other processes used " << foreign
            << "% of a core (median of the rounds) during a side's hold: its figures are noisy\n";
    }
    if (rounds > 1) {
        line.set("akv_runs", runs(a, "kb_per_conn_marginal"));
        line.set("socketio_runs", runs(p, "kb_per_conn_marginal"));
    }
    line.print();
    return met;
}

// The scenario names in the order both orchestrators run them (CLIENTS x CHANNELS x MODES,
// then, if MODES has conn, CONN_CLIENTS over CONN_CHANNELS).
std::vector<std::string> scenario_names() {
    const auto list = [](const char* name, const char* def) {
        std::vector<std::string> out;
        std::stringstream in(env(name).value_or(def));
        for (std::string item; std::getline(in, item, ',');)
            if (!item.empty()) out.push_back(item);
        return out;
    };
    const auto clients = list("CLIENTS", "100,1000,1000");
    const auto channels = list("CHANNELS", "1,1,100");
    const auto modes = list("MODES", "fixed,sat,conn");
    const std::regex filter(env("SCENARIOS").value_or(".*"));
    std::vector<std::string> out;
    for (std::size_t k = 0; k < std::min(clients.size(), channels.size()); ++k)
        for (const std::string& m : modes) {
            if (m == "conn") continue;
            const std::string name =
                "c" + std::to_string(std::stol(clients[k])) + "_ch" +
                std::to_string(std::stol(channels[k])) + "_" + m;
            if (std::regex_search(name, filter)) out.push_back(name);
        }
    if (std::ranges::find(modes, "conn") != modes.end()) {
        const long conn_channels = std::max(1L, std::stol(env("CONN_CHANNELS").value_or("100")));
        for (const std::string& n : list("CONN_CLIENTS", "5000,18000")) {
            const std::string name = "c" + std::to_string(std::stol(n)) + "_ch" +
                                     std::to_string(conn_channels) + "_conn";
            if (std::regex_search(name, filter)) out.push_back(name);
        }
    }
    return out;
}

void set_default(const char* name, const char* value) {
    if (!env(name)) ::setenv(name, value, 1);
}

bool has_modules(const fs::path& dir) {
    for (const char* m : {"ws", "ioredis"})
        if (!fs::is_directory(dir / "node_modules" / m)) return false;
    return true;
}

} // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "--serve") return serve(argc, argv);

    const fs::path here = bench_source_dir();
    std::string peer_script = (here / "peers/gateway/bench_socketio.sh").string();
    const fs::path our_script = here / "gateway/akv_bench.js";
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--quick") {
            ::setenv("QUICK", "1", 1);
        } else if (arg == "--rounds" && i + 1 < argc) {
            ::setenv("ROUNDS", argv[++i], 1);
        } else if (arg == "--only" && i + 1 < argc) {
            ::setenv("SCENARIOS", argv[++i], 1);
        } else if (arg == "--no-peer") {
            ::setenv("PEER", "0", 1);
        } else if (arg == "--threads" && i + 1 < argc) {
            ::setenv("THREADS", argv[++i], 1);
        } else if (arg == "--peer" && i + 1 < argc) {
            peer_script = argv[++i];
        } else {
            std::cerr << "usage: akv_bench_gateway [--quick] [--rounds R] [--only REGEX] "
                         "[--no-peer] [--threads N] [--peer bench_socketio.sh]\n"
                         "  (knobs also from the env: CLIENTS CHANNELS RATE SECONDS SAT_SECONDS\n"
                         "   BACKLOG DRAIN_S QUIET_S MODES DEADLINE_S CLIENT_PROCS CONNECT_CONC\n"
                         "   PAYLOAD SCENARIOS QUICK ROUNDS PEER BENCH_DIR PEER_TIMEOUT_S\n"
                         "   THREADS CONN_CLIENTS CONN_CHANNELS CONN_PER_PROC HOLD_S\n"
                         "   BCAST_WAIT_S CONN_DEADLINE_S)\n";
            return 2;
        }
    }
    raise_nofile_limit();
    ::signal(SIGINT, forward_and_die);
    ::signal(SIGTERM, forward_and_die);
    int rounds = 1;
    std::size_t threads = default_threads();
    bool with_peer = true;
    double deadline_s = 60, conn_deadline_s = 240, peer_timeout_s = 1200;
    std::vector<std::string> names;
    try {
        if (env("QUICK").value_or("0") == "1") {
            set_default("SECONDS", "3");
            set_default("SAT_SECONDS", "2");
            set_default("DRAIN_S", "3");
            set_default("QUIET_S", "2");
            set_default("HOLD_S", "5");
        }
        if (auto v = env("ROUNDS")) rounds = std::max(1, std::stoi(*v));
        if (auto v = env("THREADS")) {
            const long n = std::stol(*v);
            if (n < 1 || n > 256) throw std::invalid_argument("THREADS: expected 1 to 256");
            threads = std::size_t(n);
        }
        with_peer = env("PEER").value_or("1") != "0";
        if (auto v = env("DEADLINE_S")) deadline_s = std::stod(*v);
        if (auto v = env("CONN_DEADLINE_S")) conn_deadline_s = std::stod(*v);
        if (auto v = env("PEER_TIMEOUT_S")) peer_timeout_s = std::stod(*v);
        names = scenario_names();
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_gateway: bad knob: " << e.what() << "\n";
        return 2;
    }
    if (names.empty()) {
        std::cerr << "akv_bench_gateway: no scenario matches SCENARIOS\n";
        return 2;
    }
    const fs::path bench_dir =
        env("BENCH_DIR") ? fs::path(*env("BENCH_DIR"))
                         : fs::temp_directory_path() / "akv_bench_gateway_npm";
    const std::string self = fs::read_symlink("/proc/self/exe").string();

    std::vector<scenario> scenarios;
    for (const std::string& n : names)
        scenarios.push_back({n, {}, {}, {}, {}});
    const auto find = [&](const std::string& name) -> scenario* {
        for (scenario& s : scenarios)
            if (s.name == name) return &s;
        return nullptr;
    };
    const auto collect = [&](const std::string& out, bool ours) {
        for (json::object& o : json_lines(out)) {
            const json::value* n = o.if_contains("scenario");
            scenario* s = n && n->is_string() ? find(std::string(n->as_string())) : nullptr;
            if (!s) continue;
            if (const json::value* e = o.if_contains("error"); e && e->is_string())
                (ours ? s->our_errors : s->their_errors).push_back(std::string(e->as_string()));
            else
                (ours ? s->ours : s->theirs).push_back(std::move(o));
        }
    };

    int status = 0;
    try {
        fs::create_directories(bench_dir);
        std::string summary = "gateway: scenarios";
        for (const std::string& n : names)
            summary += " " + n;
        std::cerr << summary << "; rounds " << rounds << "; our threads " << threads
                  << (with_peer ? "" : "; no peer") << "; npm dir " << bench_dir.string() << "\n";

        // Ours needs the npm modules of the peer's install (ioredis, ws): installed if missing.
        const auto ensure_modules = [&] {
            if (has_modules(bench_dir)) return;
            std::cerr << "gateway: npm install into " << bench_dir.string() << " ...\n";
            fs::copy_file(here / "peers/gateway/package.json", bench_dir / "package.json",
                          fs::copy_options::overwrite_existing);
            child_result r = run_child({"npm", "install", "--no-audit", "--no-fund",
                                        "--loglevel=error"},
                                       {}, bench_dir.string(), 600);
            if (!has_modules(bench_dir))
                throw std::runtime_error("npm install failed (exit " + std::to_string(r.status) +
                                         "): " + tail_text(r.err_tail, 5));
        };
        akv::testing::embedded_server redis;
        const std::string server_cmd =
            json::serialize(json::array{json::string(self), "--serve", "--send-queue", "100000",
                                        "--threads", json::string(std::to_string(threads))});
        // Each connection takes a local port of its own (all go to one server port).
        for (const std::string& n : names)
            if (is_conn(n)) {
                const long clients = std::stol(n.substr(1, n.find('_') - 1));
                if (const long ports = ephemeral_ports(); ports > 0 && clients + 1000 > ports)
                    std::cerr << "gateway: " << n << ": only " << ports
                              << " local ports (net.ipv4.ip_local_port_range) for " << clients
                              << " connections: connects will fail\n";
            }

        // Scenario by scenario, the peer then ours, so both sides of a line run minutes apart at
        // most (the machine may be shared) and never at once; each line is printed when done.
        json::array met, missed, unjudged;
        bool peer_broken = false; // it printed nothing at all once: not tried again
        for (scenario& s : scenarios) {
            const std::string only = "^" + s.name + "$";
            // One (scenario, mode)'s node run: its deadline, then a margin to stop it.
            const double unit_deadline = is_conn(s.name) ? conn_deadline_s : deadline_s;
            const std::string unit_total = number_text(unit_deadline + 30);
            for (int round = 0; round < rounds; ++round) {
                if (with_peer && !peer_broken) {
                    std::cerr << "gateway: " << s.name << ": round " << round + 1 << ": peer\n";
                    const auto start = clock_type::now();
                    child_result r = run_child({peer_script, std::to_string(free_port())},
                                               {{"BENCH_DIR", bench_dir.string()},
                                                {"SCENARIOS", only},
                                                {"CONN_DEADLINE_S", number_text(conn_deadline_s)},
                                                {"TOTAL_S", unit_total}},
                                               "", peer_timeout_s);
                    std::cerr << "gateway: peer took " << seconds_between(start, clock_type::now())
                              << " s (exit " << r.status << ")\n";
                    const std::size_t before = s.theirs.size() + s.their_errors.size();
                    collect(r.out, false);
                    if (s.theirs.size() + s.their_errors.size() == before) {
                        const std::string why =
                            "the peer printed no result (npm install, node or redis-server "
                            "failed?), exit " + std::to_string(r.status) +
                            (r.timed_out ? ", timed out" : "");
                        s.their_errors.push_back(why);
                        json_line line;
                        line.set("bench", "gateway").set("peer_error", true).text("scenario", s.name);
                        line.text("error", why).text("log_tail", tail_text(r.err_tail, 15));
                        line.print();
                        if (json_lines(r.out).empty()) peer_broken = true;
                    }
                }

                ensure_modules();
                std::cerr << "gateway: " << s.name << ": round " << round + 1 << ": akv (redis on :"
                          << redis.port() << ")\n";
                const auto start = clock_type::now();
                child_result r = run_child({"node", our_script.string()},
                                           {{"REDIS_PORT", std::to_string(redis.port())},
                                            {"SERVER_CMD", server_cmd},
                                            {"SCENARIOS", only},
                                            {"CONN_DEADLINE_S", number_text(conn_deadline_s)},
                                            {"NODE_PATH", (bench_dir / "node_modules").string()}},
                                           "", unit_deadline + 45);
                std::cerr << "gateway: ours took " << seconds_between(start, clock_type::now())
                          << " s (exit " << r.status << ")\n";
                const std::size_t before = s.ours.size() + s.our_errors.size();
                collect(r.out, true);
                if (s.ours.size() + s.our_errors.size() == before) {
                    const std::string why = "akv_bench.js printed no result, exit " +
                                            std::to_string(r.status) +
                                            (r.timed_out ? ", timed out" : "");
                    s.our_errors.push_back(why);
                    json_line line;
                    line.set("bench", "gateway").set("akv_error", true).text("scenario", s.name);
                    line.text("error", why).text("log_tail", tail_text(r.err_tail, 15));
                    line.print();
                }
            }
            const std::optional<bool> ok =
                is_conn(s.name) ? report_conn(s, rounds, threads) : report(s, rounds, threads);
            (ok ? (*ok ? met : missed) : unjudged).push_back(json::string(s.name));
            if (s.ours.empty()) status = 1;
        }
        json_line line;
        line.set("bench", "gateway").set("summary", true).set("rounds", rounds);
        line.set("threads", threads).set("goals_met", met).set("goals_missed", missed);
        if (!unjudged.empty()) line.set("not_judged", unjudged);
        line.print();
    } catch (const std::exception& e) {
        std::cerr << "akv_bench_gateway: " << e.what() << "\n";
        status = 1;
    }
    return status;
}
