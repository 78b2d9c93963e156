// akv-gateway --console in headless Chromium: the page's counts against `akv queue stats`, a
// failed job retried from the page runs again, pause from the page stops claims, the plots have
// points, a live worker is listed, a job is found by its id, dead letters are sent back from
// the page; screenshots are saved in the build tree. Once with jobs made and failed in the
// test, once against running binaries: akv-gateway,
// akv-worker with its exec handler, `akv queue`. And the API behind a login.
#include "support/cdp.hpp"
#include "support/gateway_client.hpp"
#include "support/harness.hpp"
#include "support/running_client.hpp"

#include <akv/gateway/token.hpp>
#include <akv/messaging/consumer_group.hpp>
#include <akv/queue/admin.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/queue_keys.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <ctime>
#include <fstream>
#include <regex>
#include <sys/wait.h>
#include <thread>

using namespace akv::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

std::string bin(const std::string& name) {
    return std::string(AKV_BIN_DIR) + "/" + name;
}

constexpr const char* ops_login = "Basic b3BzOmh1bnRlcjI="; // ops:hunter2

// A gateway with the console, its password (and `env`) in the environment.
std::unique_ptr<child_process> start_console(const temp_dir& dir,
                                             const akv::testing::embedded_server& redis,
                                             std::uint16_t port,
                                             const std::vector<std::string>& flags = {},
                                             const std::vector<std::string>& env = {}) {
    std::vector<std::string> args{
        bin("akv-gateway"), "--redis", redis.url(), "--listen", "127.0.0.1:" + std::to_string(port),
        "--console"};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<std::string> environment{"AKV_CONSOLE_PASSWORD=hunter2"};
    environment.insert(environment.end(), env.begin(), env.end());
    auto gateway =
        std::make_unique<child_process>(std::move(args), environment, dir.path() / "gateway.log");
    EXPECT_TRUE(
        poll_until([&] { return gateway->log().find("listening on") != std::string::npos; }, 20s))
        << gateway->log_tail();
    return gateway;
}

// A tab on the console, logged in with the password.
std::string open_console(headless_chromium& browser, std::uint16_t port) {
    const std::string page = browser.new_page();
    browser.cdp().call("Network.enable", {}, page);
    json::object auth;
    auth["Authorization"] = ops_login;
    browser.cdp().call("Network.setExtraHTTPHeaders", {{"headers", auth}}, page);
    browser.cdp().navigate(page, "http://127.0.0.1:" + std::to_string(port) + "/console");
    return page;
}

// Polls `expression` in the page until it is true (20 s at most); a failure says why, with what
// the page printed and the tail of `log`.
bool page_true(headless_chromium& browser, const std::string& page, const std::string& expression,
               const child_process& log) {
    std::string why;
    const bool ok = browser.cdp().wait_true(page, expression, 20s, 100ms, &why);
    EXPECT_TRUE(ok) << expression << "\n"
                    << why << "\n"
                    << browser.cdp().console_log() << log.log_tail();
    return ok;
}

// A picture of the page (the whole of it with `whole_page`), in the build tree.
std::filesystem::path save_screenshot(headless_chromium& browser, const std::string& page,
                                      const std::string& name, bool whole_page = false) {
    json::object params;
    if (whole_page) params["captureBeyondViewport"] = true;
    const json::value shot = browser.cdp().call("Page.captureScreenshot", params, page);
    const std::string_view b64 = shot.at("data").as_string();
    std::string png(boost::beast::detail::base64::decoded_size(b64.size()), '\0');
    png.resize(boost::beast::detail::base64::decode(png.data(), b64.data(), b64.size()).first);
    const std::filesystem::path file = std::filesystem::path(AKV_BIN_DIR) / name;
    std::ofstream(file, std::ios::binary) << png;
    return file;
}

// A worker with a client of its own on a thread of its own, while the test's thread drives the
// browser: it completes every job it claims. Stopped (and drained) on destruction.
struct worker_thread {
    worker_thread(const akv::config& cfg, const std::string& queue)
        : client(io.get_executor(), cfg)
        , w(client, queue,
            [](akv::queue::job_context&) -> asio::awaitable<std::string> { co_return "sent"; }) {
        asio::co_spawn(io, client.run(), asio::detached);
        asio::co_spawn(io, w.run(), [this](std::exception_ptr) { client.cancel(); });
        thread = std::thread([this] { io.run(); });
    }
    ~worker_thread() {
        asio::post(io, [this] { w.stop(); });
        thread.join();
    }
    asio::io_context io;
    akv::client client;
    akv::queue::worker w;
    std::thread thread;
};

} // namespace

// akv-gateway --console: refused without a way to log in; with a password, its API answers.
TEST(Console, TheGatewayServesTheConsoleApiBehindALogin) {
    temp_dir dir{"akv-e2e-console-"};
    akv::testing::embedded_server redis;
    const auto no_login =
        run_to_end(dir, {bin("akv-gateway"), "--redis", redis.url(), "--console"});
    EXPECT_EQ(no_login.exit_code, 2) << no_login.output;
    EXPECT_NE(no_login.output.find("--console: set AKV_GATEWAY_SECRET"), std::string::npos)
        << no_login.output;

    const std::uint16_t port = free_port();
    const auto gateway = start_console(dir, redis, port);
    asio::io_context io;
    std::pair<int, std::string> anonymous, page, ops;
    run_task(io, [&]() -> asio::awaitable<void> {
        anonymous = co_await http_call(port, http::verb::get, "/console/api/whoami");
        page = co_await http_call(port, http::verb::get, "/console");
        ops = co_await http_call(port, http::verb::get, "/console/api/whoami", "", "Authorization",
                                 ops_login);
    }());
    EXPECT_EQ(anonymous.first, 401);
    EXPECT_EQ(page.first, 401); // the page is behind the login too
    EXPECT_EQ(ops.first, 200) << ops.second;
    EXPECT_NE(ops.second.find(R"("role":"write")"), std::string::npos) << ops.second;
}

TEST(Console, ThePageShowsTheQueuesAndItsActionsGoThrough) {
    if (!std::filesystem::exists(chromium_path()))
        GTEST_SKIP() << chromium_path() << " is not installed (script/deps installs chromium)";
    temp_dir dir{"akv-e2e-console-page-"};
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_client rc(io, redis.config());

    // Three jobs that fail once (one attempt each), and two that wait.
    akv::queue::job_options once;
    once.max_attempts = 1;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::queue::producer p(rc.client, "emails");
        for (int i = 0; i < 3; ++i)
            co_await p.enqueue("mail " + std::to_string(i), once);
    }());
    {
        akv::queue::worker w(rc.client, "emails",
                             [](akv::queue::job_context&) -> asio::awaitable<std::string> {
                                 throw std::runtime_error("smtp is down");
                                 co_return "";
                             });
        bool drained = false;
        asio::co_spawn(io, w.run(), [&](std::exception_ptr) { drained = true; });
        akv::queue::state_counts c;
        ASSERT_TRUE(run_until(
            io,
            [&] {
                run_task(io, [&]() -> asio::awaitable<void> {
                    akv::queue::admin a(rc.client, "emails");
                    c = co_await a.counts();
                }());
                return c.failed == 3;
            },
            20s));
        w.stop();
        ASSERT_TRUE(run_until(
            io, [&] { return drained; }, 10s));
    }
    std::vector<std::string> later_ids;
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::queue::producer p(rc.client, "emails");
        later_ids.push_back(co_await p.enqueue("later 1"));
        later_ids.push_back(co_await p.enqueue("later 2"));
    }());

    const std::uint16_t port = free_port();
    const auto gateway = start_console(dir, redis, port);
    headless_chromium browser(chromium_path(), 20s);
    const std::string page = open_console(browser, port);
    auto wait = [&](const std::string& expression) {
        return page_true(browser, page, expression, *gateway);
    };
    auto cells = [&] {
        return browser.cdp().evaluate(
            page, "[...document.querySelectorAll('tr.queue td')].map(td => td.textContent)");
    };

    // The counts the page shows are `akv queue stats`'s.
    ASSERT_TRUE(wait("document.querySelectorAll('tr.queue').length === 1"));
    const auto stats =
        run_to_end(dir, {bin("akv"), "--redis", redis.url(), "queue", "stats", "emails", "--json"});
    ASSERT_EQ(stats.exit_code, 0) << stats.output;
    const json::value cli = json::parse(stats.output);
    const json::value shown = cells();
    auto text = [&](std::size_t i) { return std::string(shown.at(i).as_string()); };
    EXPECT_EQ(text(0), "emails");
    EXPECT_EQ(text(1), std::to_string(cli.at("waiting").to_number<long>()));
    EXPECT_EQ(text(4), std::to_string(cli.at("failed").to_number<long>()));
    EXPECT_EQ(text(1), "2");
    EXPECT_EQ(text(4), "3");

    // The server and the streams are shown too (the queue's keys include none).
    EXPECT_TRUE(wait("[...document.querySelectorAll('#redis td')].some(td => td.textContent === "
                     "'used_memory_human')"));
    // Every node, one row each: here the one server, a master.
    EXPECT_TRUE(wait("document.querySelector('#nodes tr[data-role=master]') !== null"));
    EXPECT_TRUE(wait("document.querySelector('#gateway tr[data-key=sessions]') !== null"));
    // Live: the gateway's sampler's snapshots arrive over its own WebSocket protocol.
    EXPECT_TRUE(wait("document.body.dataset.live === '1'"));

    // The queue: its failed jobs, a plot with points, and a retry that goes through.
    browser.cdp().evaluate(page, "window.confirm = () => true; "
                                 "document.querySelector('tr.queue').click(); true");
    ASSERT_TRUE(wait("document.querySelectorAll('#jobs tbody tr').length === 3"));
    EXPECT_TRUE(wait("document.querySelector('#plot polyline.series-processed')"
                     ".getAttribute('points').split(' ').length > 1"));
    browser.cdp().evaluate(
        page, "document.querySelector('#jobs button[data-action=retry]').click(); true");
    auto counts = [&] {
        akv::queue::state_counts c;
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::queue::admin a(rc.client, "emails");
            c = co_await a.counts();
        }());
        return c;
    };
    EXPECT_TRUE(poll_until([&] { return counts().failed == 2 && counts().waiting == 3; }, 20s));
    EXPECT_TRUE(wait("document.querySelectorAll('#jobs tbody tr').length === 2"));

    // A live worker: listed with its token, counted in the queue's row; the jobs it completes
    // give this minute's latency (a point of each percentile, the row's p50 and p99).
    worker_thread live(redis.config(), "emails");
    EXPECT_TRUE(poll_until([&] { return counts().waiting == 0 && counts().active == 0; }, 20s));
    EXPECT_TRUE(wait("document.querySelector('#workers tbody tr[data-worker=\"" + live.w.token() +
                     "\"]') !== null"));
    EXPECT_TRUE(wait("[...document.querySelectorAll('tr.queue td')][9].textContent === '1'"));
    EXPECT_TRUE(wait("(document.querySelector('#latency polyline.series-p99_ms')"
                     "?.getAttribute('points') ?? '') !== ''"));
    // (They waited since the page opened: seconds, not ms.)
    EXPECT_TRUE(wait("[...document.querySelectorAll('tr.queue td')][10].textContent !== '' && "
                     "[...document.querySelectorAll('tr.queue td')][11].textContent !== ''"));

    // A job by its id, and an id that names none.
    browser.cdp().evaluate(page, "document.getElementById('job-id').value = '424242';"
                                 "document.querySelector('#lookup button').click(); true");
    EXPECT_TRUE(wait("document.getElementById('lookup-result').textContent === "
                     "'no such job: 424242'"));
    browser.cdp().evaluate(page, "document.getElementById('job-id').value = '" + later_ids[0] +
                                     "'; document.querySelector('#lookup button').click(); true");
    EXPECT_TRUE(wait("!document.getElementById('job').hidden && "
                     "document.getElementById('job').textContent.includes("
                     "'\"state\": \"completed\"')"));

    // Pause from the page: the queue says so, and a worker claims nothing.
    browser.cdp().evaluate(page,
                           "document.querySelector('button[data-action=pause]').click(); true");
    EXPECT_TRUE(poll_until([&] { return counts().paused; }, 20s));
    EXPECT_TRUE(wait("[...document.querySelectorAll('tr.queue td')][6].textContent === 'yes'"));

    // A picture of it, in the build tree.
    const std::filesystem::path file = save_screenshot(browser, page, "console.png");
    EXPECT_GT(std::filesystem::file_size(file), 1000u);
}

// The streams on the page: each consumer's pending entries, a dead-letter stream whose entries
// go back to their source from the page, a live batcher's counters; a screenshot beside the
// first.
TEST(Console, ThePageShowsDeadLettersAndSendsThemBackAndTheBatchers) {
    if (!std::filesystem::exists(chromium_path()))
        GTEST_SKIP() << chromium_path() << " is not installed (script/deps installs chromium)";
    temp_dir dir{"akv-e2e-console-streams-"};
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_client rc(io, redis.config());
    auto xlen = [&](const std::string& key) {
        long long n = -1;
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::request req;
            req.push("XLEN", key);
            akv::response<long long> resp;
            co_await rc.client.exec(req, resp);
            n = std::get<0>(resp).value();
        }());
        return n;
    };
    // Three orders a consumer read and never acked, dead-lettered by another's claim; a status
    // record as a batcher writes it.
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::messaging::stream_producer orders(rc.client, "orders");
        for (int i = 0; i < 3; ++i) {
            const akv::messaging::field_list order{{"order", std::to_string(i)}};
            co_await orders.add(order);
        }
        akv::messaging::group_options o;
        o.stream = "orders";
        o.group = "billing";
        o.consumer = "crashed";
        o.claim_idle = std::chrono::milliseconds(0);
        o.max_deliveries = 1;
        akv::messaging::consumer_group crashed(rc.client, o);
        co_await crashed.create();
        co_await crashed.read(10, std::chrono::milliseconds(0));
        o.consumer = "rescuer";
        akv::messaging::consumer_group rescuer(rc.client, o);
        co_await rescuer.claim_stale(10);
        const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        akv::request req;
        req.push("HSET", "akv:batcher:orders:scorers:s1", "stream", "orders", "group", "scorers",
                 "consumer", "s1", "output", "scores", "batches", 40, "entries", 2000, "outputs",
                 2000, "handler_failures", 0, "batches_per_s", "12.5", "entries_per_s", "800",
                 "mean_batch", "64", "model", "interest", "model_version", 3, "updated_at_ms",
                 now_ms);
        req.push("PEXPIRE", "akv:batcher:orders:scorers:s1", 120000);
        co_await rc.client.exec(req, akv::ignore);
    }());
    ASSERT_EQ(xlen("orders:dead"), 3);

    const std::uint16_t port = free_port();
    const auto gateway = start_console(dir, redis, port);
    headless_chromium browser(chromium_path(), 20s);
    const std::string page = browser.new_page();
    browser.cdp().call("Network.enable", {}, page);
    json::object auth;
    auth["Authorization"] = ops_login;
    browser.cdp().call("Network.setExtraHTTPHeaders", {{"headers", auth}}, page);
    browser.cdp().navigate(page, "http://127.0.0.1:" + std::to_string(port) + "/console");
    std::string why;
    auto wait = [&](const std::string& expression) {
        const bool ok = browser.cdp().wait_true(page, expression, 20s, 100ms, &why);
        EXPECT_TRUE(ok) << expression << "\n"
                        << why << "\n"
                        << browser.cdp().console_log() << gateway->log_tail();
        return ok;
    };
    auto row = [](const std::string& selector) {
        return "[...document.querySelectorAll('" + selector +
               " td')].map(td => td.textContent).join('|')";
    };

    EXPECT_TRUE(wait(row("#consumers tr[data-consumer=\"orders/billing/rescuer\"]") +
                     ".startsWith('rescuer|orders|billing|0|')"));
    ASSERT_TRUE(wait(row("#dead-letters tr[data-dead=\"orders:dead\"]") +
                     ".startsWith('orders:dead|orders|3')"));
    EXPECT_TRUE(wait(row("#batchers tr") + ".startsWith('s1|orders → scores|scorers|interest "
                                           "v3|12.5|800|64|40|2000|0|')"));

    // Its entries, newest first; one sent back from the page, then all.
    browser.cdp().evaluate(page, "window.confirm = () => true; document.querySelector("
                                 "'#dead-letters tr[data-dead=\"orders:dead\"] button').click(); "
                                 "true");
    ASSERT_TRUE(wait("document.querySelectorAll('#dead-entries tbody tr').length === 3"));
    EXPECT_TRUE(wait(row("#dead-entries tbody tr") + ".includes('billing|2|delivered more than 1 "
                                                     "times|order=2')"));
    browser.cdp().evaluate(
        page, "document.querySelector('#dead-entries button[data-dead-action=requeue]').click(); "
              "true");
    EXPECT_TRUE(poll_until([&] { return xlen("orders:dead") == 2 && xlen("orders") == 4; }, 20s));
    EXPECT_TRUE(wait("document.querySelectorAll('#dead-entries tbody tr').length === 2"));

    const json::value shot = browser.cdp().call("Page.captureScreenshot", {}, page);
    const std::string_view b64 = shot.at("data").as_string();
    std::string png(boost::beast::detail::base64::decoded_size(b64.size()), '\0');
    png.resize(boost::beast::detail::base64::decode(png.data(), b64.data(), b64.size()).first);
    const std::filesystem::path file = std::filesystem::path(AKV_BIN_DIR) / "console-streams.png";
    std::ofstream(file, std::ios::binary) << png;
    EXPECT_GT(std::filesystem::file_size(file), 1000u);

    browser.cdp().evaluate(page, "document.querySelector('#dead-requeue-all').click(); true");
    EXPECT_TRUE(poll_until([&] { return xlen("orders:dead") == 0 && xlen("orders") == 6; }, 20s));
    EXPECT_TRUE(wait("document.querySelectorAll('#dead-entries tbody tr').length === 0"));
}

// `akv console`: a local console for a quick look, its address and password printed.
TEST(Console, AkvConsoleServesOnAFreePortWithAPasswordOfItsOwn) {
    temp_dir dir{"akv-e2e-akv-console-"};
    akv::testing::embedded_server redis;
    child_process console({bin("akv"), "--redis", redis.url(), "console"}, {},
                          dir.path() / "console.log");
    std::smatch m;
    std::string log;
    const std::regex announced(
        R"(console at http://127\.0\.0\.1:(\d+)/console \(any user, password ([0-9a-f]+)\))");
    ASSERT_TRUE(poll_until(
        [&] {
            log = console.log();
            return std::regex_search(log, m, announced);
        },
        20s))
        << log;
    const auto port = static_cast<std::uint16_t>(std::stoi(m[1]));
    const std::string login = "ops:" + m[2].str();
    std::string basic(boost::beast::detail::base64::encoded_size(login.size()), '\0');
    basic.resize(boost::beast::detail::base64::encode(basic.data(), login.data(), login.size()));
    asio::io_context io;
    std::pair<int, std::string> anonymous, ops;
    const std::string authorization = "Basic " + basic;
    run_task(io, [&]() -> asio::awaitable<void> {
        anonymous = co_await http_call(port, http::verb::get, "/console/api/whoami");
        ops = co_await http_call(port, http::verb::get, "/console/api/whoami", "", "Authorization",
                                 authorization);
    }());
    EXPECT_EQ(anonymous.first, 401);
    EXPECT_EQ(ops.first, 200) << ops.second;
    console.signal(SIGTERM);
    ASSERT_TRUE(poll_until([&] { return !console.running(); }, 20s)) << console.log_tail();
    EXPECT_TRUE(WIFEXITED(console.status()) && WEXITSTATUS(console.status()) == 0)
        << console.log_tail();
}

// The issue's test, against running binaries: akv-gateway --console (two threads, presence on
// room.*), akv-worker running jobs with its exec handler (a job that tests for a file fails until
// the file is there), jobs added with `akv queue add`. The page's counts are `akv queue stats`'s
// once the queue holds still; a failed job retried from the page runs; pause from the page stops
// the worker's claims; the plots have points; the channels show the page's own (marked) and one
// with presence; screenshots go to the build tree.
TEST(Console, RunningBinariesThePageMatchesTheCliAndSteersTheWorker) {
    if (!std::filesystem::exists(chromium_path()))
        GTEST_SKIP() << chromium_path() << " is not installed (script/deps installs chromium)";
    temp_dir dir{"akv-e2e-console-binaries-"};
    akv::testing::embedded_server redis;
    asio::io_context io;
    running_client rc(io, redis.config());
    auto cli = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {bin("akv"), "--redis", redis.url()});
        const auto r = run_to_end(dir, args);
        EXPECT_EQ(r.exit_code, 0) << r.output;
        boost::system::error_code ec;
        const json::value v = json::parse(r.output, ec);
        return ec ? json::value(r.output) : v;
    };
    auto counts = [&] {
        akv::queue::state_counts c;
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::queue::admin a(rc.client, "emails");
            c = co_await a.counts();
        }());
        return c;
    };

    child_process worker({bin("akv-worker"), "--redis", redis.url(), "--queue", "emails=exec",
                          "--exec-allow", "test", "--exec-allow", "true", "--concurrency", "2"},
                         {}, dir.path() / "worker.log");

    // Three jobs that fail (one attempt each) until the file is there, two that succeed.
    const std::string gate = (dir.path() / "smtp-up").string();
    const std::string needs_gate = R"({"argv": ["test", "-e", ")" + gate + R"("]})";
    std::vector<std::string> failing;
    for (int i = 0; i < 3; ++i)
        failing.emplace_back(
            cli({"queue", "add", "emails", needs_gate, "--attempts", "1", "--json"})
                .at("id")
                .as_string());
    for (int i = 0; i < 2; ++i)
        cli({"queue", "add", "emails", R"({"argv": ["true"]})", "--json"});
    ASSERT_TRUE(poll_until(
        [&] {
            const auto c = counts();
            return c.failed == 3 && c.completed == 2 && c.waiting == 0 && c.active == 0;
        },
        20s))
        << worker.log_tail();

    // The gateway comes up on a queue that exists (its sampler finds queues again only every
    // tenth snapshot).
    const std::uint16_t port = free_port();
    constexpr const char* secret = "e2e-console-secret";
    const auto gateway = start_console(dir, redis, port, {"--presence", "room.*", "--threads", "2"},
                                       {std::string("AKV_GATEWAY_SECRET=") + secret});

    // The queue holds still: the page shows `akv queue stats`, column by column.
    auto cli_row = [&] {
        const json::value st = cli({"queue", "stats", "emails", "--json"});
        json::array row{"emails"};
        for (const json::value& v : {st.at("waiting"), st.at("delayed"), st.at("active"),
                                     st.at("failed"), st.at("completed")})
            row.emplace_back(json::serialize(v));
        row.emplace_back(st.at("paused").as_bool() ? "yes" : "no");
        row.emplace_back(json::serialize(st.at("totals").at("completed")));
        row.emplace_back(json::serialize(st.at("totals").at("failed")));
        return json::serialize(row);
    };
    // The counts' cells (then come the live workers and the last minute's latency).
    const std::string shown_row = "JSON.stringify([...document.querySelectorAll("
                                  "'tr.queue[data-queue=emails] td')].slice(0, 9)"
                                  ".map(td => td.textContent))";
    headless_chromium browser(chromium_path(), 20s);
    const std::string page = open_console(browser, port);
    auto wait = [&](const std::string& expression) {
        return page_true(browser, page, expression, *gateway);
    };
    ASSERT_TRUE(wait("document.body.dataset.live === '1'")); // from the sampler's snapshots
    const std::string settled = cli_row();
    EXPECT_EQ(settled, R"(["emails","0","0","0","3","2","no","2","3"])");
    EXPECT_TRUE(wait(shown_row + " === '" + settled + "'"));
    EXPECT_EQ(cli_row(), settled); // nothing moved meanwhile
    // And the live worker: the akv-worker, in the page's row as in `akv queue stats`.
    EXPECT_EQ(cli({"queue", "stats", "emails", "--json"}).at("workers"), 1);
    EXPECT_TRUE(wait("[...document.querySelectorAll('tr.queue[data-queue=emails] td')][9]"
                     ".textContent === '1'"));

    // Channels: the page's own (its live snapshots, marked) and a visitor's, with presence.
    gateway_client visitor(io);
    akv::gateway::token_claims claims;
    claims.subject = "visitor";
    claims.expires = std::time(nullptr) + 3600;
    claims.channels = {"room.*"};
    claims.presence = {"room.*"};
    const std::string visitor_token = akv::gateway::sign_token(claims, secret);
    run_task(io, [&]() -> asio::awaitable<void> {
        co_await visitor.open(port);
        co_await visitor.connect(visitor_token);
        co_await visitor.subscribe("room.1");
    }());
    auto channel_row = [](const std::string& name) {
        return "[...(document.querySelector('#channels tr[data-channel=\"" + name +
               "\"]') || {cells: []}).cells].map(td => td.textContent).join('|')";
    };
    EXPECT_TRUE(wait(channel_row("room.1") + " === 'room.1|1|1'"));
    EXPECT_TRUE(
        wait(channel_row("akv:console:snapshot") + " === 'akv:console:snapshot console|1|'"));
    EXPECT_GT(
        std::filesystem::file_size(save_screenshot(browser, page, "console-binaries.png", true)),
        1000u);

    // The queue: its failed jobs, and plots with points above the zero line.
    browser.cdp().evaluate(page, "window.confirm = () => true; "
                                 "document.querySelector('tr.queue[data-queue=emails]').click(); "
                                 "true");
    ASSERT_TRUE(wait("document.querySelectorAll('#jobs tbody tr').length === 3"));
    auto has_points = [](const std::string& series) {
        return "(document.querySelector('#plot polyline.series-" + series +
               "')?.getAttribute('points') ?? '').split(' ')"
               ".some(xy => Number(xy.split(',')[1]) < 115)";
    };
    EXPECT_TRUE(wait(has_points("processed")));
    EXPECT_TRUE(wait(has_points("failed")));

    // The file is there now: the job retried from the page runs, and the worker completes it.
    std::ofstream(gate) << "up\n";
    const std::string& retried = failing[0];
    browser.cdp().evaluate(page, "document.querySelector('#jobs tr[data-job=\"" + retried +
                                     "\"] button[data-action=retry]').click(); true");
    EXPECT_TRUE(poll_until(
        [&] {
            akv::queue::job_state state = akv::queue::job_state::unknown;
            run_task(io, [&]() -> asio::awaitable<void> {
                akv::queue::admin a(rc.client, "emails");
                state = (co_await a.get(retried)).state;
            }());
            return state == akv::queue::job_state::completed;
        },
        20s))
        << worker.log_tail();
    EXPECT_EQ(cli({"queue", "get", "emails", retried, "--json"}).at("state"), "completed");
    EXPECT_TRUE(wait("document.querySelectorAll('#jobs tbody tr').length === 2"));

    // Pause from the page: jobs added then stay waiting while the worker runs.
    browser.cdp().evaluate(page,
                           "document.querySelector('button[data-action=pause]').click(); true");
    ASSERT_TRUE(poll_until([&] { return counts().paused; }, 20s));
    for (int i = 0; i < 2; ++i)
        cli({"queue", "add", "emails", R"({"argv": ["true"]})", "--json"});
    // The worker woke for them (it took the queue's wake-up marker) and claimed nothing: still
    // nothing a second later.
    const akv::queue::queue_keys keys("emails");
    EXPECT_TRUE(poll_until(
        [&] {
            long long left = 1;
            run_task(io, [&]() -> asio::awaitable<void> {
                akv::request req;
                req.push("EXISTS", keys.marker);
                akv::response<long long> resp;
                co_await rc.client.exec(req, resp);
                left = std::get<0>(resp).value();
            }());
            return left == 0;
        },
        10s))
        << worker.log_tail();
    EXPECT_FALSE(poll_until(
        [&] {
            const auto c = counts();
            return c.waiting != 2 || c.active != 0 || c.completed != 3;
        },
        1s));
    EXPECT_TRUE(worker.running()) << worker.log_tail();
    const std::string paused = cli_row();
    EXPECT_EQ(paused, R"(["emails","2","0","0","2","3","yes","3","3"])");
    EXPECT_TRUE(wait(shown_row + " === '" + paused + "'"));
    EXPECT_GT(std::filesystem::file_size(
                  save_screenshot(browser, page, "console-binaries-paused.png", true)),
              1000u);

    // Resumed (by the CLI), the same worker takes them at once.
    cli({"queue", "resume", "emails"});
    EXPECT_TRUE(poll_until([&] { return counts().completed == 5; }, 20s)) << worker.log_tail();
}
