// akv-gateway --console in headless Chromium: the page's counts against `akv queue stats`, a
// failed job retried from the page runs again, pause from the page stops claims, the plots have
// points, a live worker is listed, a job is found by its id; a screenshot is saved in the build
// tree. And the API behind a login.
#include "support/cdp.hpp"
#include "support/gateway_client.hpp"
#include "support/harness.hpp"
#include "support/running_client.hpp"

#include <akv/queue/admin.hpp>
#include <akv/queue/producer.hpp>
#include <akv/queue/worker.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <csignal>
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

// A gateway with the console, its password in the environment.
std::unique_ptr<child_process>
start_console(const temp_dir& dir, const akv::testing::embedded_server& redis, std::uint16_t port) {
    auto gateway = std::make_unique<child_process>(
        std::vector<std::string>{bin("akv-gateway"), "--redis", redis.url(), "--listen",
                                 "127.0.0.1:" + std::to_string(port), "--console"},
        std::vector<std::string>{"AKV_CONSOLE_PASSWORD=hunter2"}, dir.path() / "gateway.log");
    EXPECT_TRUE(
        poll_until([&] { return gateway->log().find("listening on") != std::string::npos; }, 20s))
        << gateway->log_tail();
    return gateway;
}

// A worker with a client of its own on a thread of its own, while the test's thread drives the
// browser: it completes every job it claims. Stopped (and drained) on destruction.
struct worker_thread {
    worker_thread(const akv::config& cfg, const std::string& queue)
        : client(io.get_executor(), cfg)
        , w(client, queue, [](akv::queue::job_context&) -> asio::awaitable<std::string> {
            co_return "sent";
        }) {
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
    const json::value shot = browser.cdp().call("Page.captureScreenshot", {}, page);
    const std::string_view b64 = shot.at("data").as_string();
    std::string png(boost::beast::detail::base64::decoded_size(b64.size()), '\0');
    png.resize(boost::beast::detail::base64::decode(png.data(), b64.data(), b64.size()).first);
    const std::filesystem::path file = std::filesystem::path(AKV_BIN_DIR) / "console.png";
    std::ofstream(file, std::ios::binary) << png;
    EXPECT_GT(std::filesystem::file_size(file), 1000u);
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
