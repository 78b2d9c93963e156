// Seed 004's pipeline end to end, as ./script/demo runs it: akv-demo supervises akv-gateway,
// akv-worker and akv-batcher on its own redis-server; 1,000 comments go through the webhook
// while the worker and then the batcher are SIGKILLed (akv-demo restarts them). Every comment
// the classifier finds interested must be in SQLite exactly once and on the admin page in
// headless Chromium; nothing else may be.
#include "support/cdp.hpp"

#include "demo/load.hpp"
#include "demo/pipeline.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <sqlite3.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <set>
#include <sys/wait.h>

#ifndef AKV_BIN_DIR
#error "AKV_BIN_DIR must name the directory of the bundled binaries (tests/CMakeLists.txt)"
#endif

using namespace akv::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// comment ids in the demo's database for `post`, with how many rows each has.
std::map<std::string, int> signups_in_db(const std::filesystem::path& db, const std::string& post) {
    std::map<std::string, int> out;
    sqlite3* h = nullptr;
    if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        sqlite3_close(h);
        return out;
    }
    sqlite3_busy_timeout(h, 2000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, "SELECT comment FROM signups WHERE post = ?", -1, &st, nullptr) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, post.c_str(), -1, SQLITE_TRANSIENT);
        while (sqlite3_step(st) == SQLITE_ROW)
            ++out[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))];
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
}

class DemoPipeline : public ::testing::Test {
protected:
    void SetUp() override {
        if (!std::filesystem::exists(chromium_path()))
            GTEST_SKIP() << chromium_path() << " is not installed (script/deps installs chromium)";
        port_ = free_port();
        demo_.emplace(std::vector<std::string>{std::string(AKV_BIN_DIR) + "/akv-demo", "--data-dir",
                                               data_.path().string(), "--listen",
                                               "127.0.0.1:" + std::to_string(port_), "--lease-ms",
                                               "2000", "--claim-idle-ms", "2000"},
                      std::vector<std::string>{}, data_.path() / "demo.log");
        const std::regex ready(R"(akv-demo: open http://127\.0\.0\.1:(\d+)/)");
        ASSERT_TRUE(poll_until(
            [&] { return std::regex_search(demo_->log(), ready) || !demo_->running(); }, 60s));
        ASSERT_TRUE(demo_->running()) << demo_->log_tail();
        browser_.emplace(chromium_path(), 20s);
        page_ = browser_->new_page();
    }

    void TearDown() override {
        browser_.reset();
        demo_.reset();
    }

    bool wait_page(const std::string& expression, std::chrono::milliseconds limit) {
        return browser_->cdp().wait_true(page_, expression, limit, 100ms, &last_page_error_);
    }

    std::string page_state() {
        try {
            return json::serialize(browser_->cdp().evaluate(
                page_,
                "JSON.stringify({state: document.getElementById('state').textContent, post: "
                "window.demo && window.demo.post, signups: window.demo && "
                "window.demo.signups.size, "
                "items: document.querySelectorAll('#signups li').length})",
                false));
        } catch (const std::exception& e) {
            return std::string("unreadable: ") + e.what() + " / " + last_page_error_;
        }
    }

    temp_dir data_{"akv-e2e-demo-"};
    std::uint16_t port_ = 0;
    std::optional<child_process> demo_;
    std::optional<headless_chromium> browser_;
    std::string page_, last_page_error_;
};

TEST_F(DemoPipeline, ThousandCommentsReachTheDatabaseOnceAndThePageThoughWorkerAndBatcherDie) {
    akv::app::http_poster http("http://127.0.0.1:" + std::to_string(port_));
    const std::string post = akv::demo::create_post(http, "Beach clean-up on Saturday");

    // The page opens the post once the post has come through the pipeline to it.
    browser_->cdp().navigate(page_, "http://127.0.0.1:" + std::to_string(port_) + "/?post=" + post);
    ASSERT_TRUE(wait_page("window.demo.post === '" + post +
                              "' && document.getElementById('state')"
                              ".textContent === 'connected'",
                          30s))
        << page_state() << "\n"
        << demo_->log_tail();

    // A post made with the page's own form comes back through the queue, the worker and the
    // posts channel into the page's list.
    browser_->cdp().evaluate(page_,
                             "document.getElementById('title').value = 'Tree planting';"
                             "document.getElementById('new-post').requestSubmit(); true",
                             false);
    EXPECT_TRUE(wait_page("[...document.querySelectorAll('#posts li')].some((li) => li.textContent === "
                          "'Tree planting')",
                          30s))
        << page_state();

    int killed_worker = 0, killed_batcher = 0;
    akv::demo::load_options load;
    load.comments = 1000;
    load.per_request = 50;
    load.run = "e2e";
    load.before_request = [&](std::size_t first, std::size_t) {
        if (first == 300) {
            killed_worker = child_pid(demo_->pid(), "akv-worker");
            if (killed_worker > 0) ::kill(killed_worker, SIGKILL);
        }
        if (first == 600) {
            killed_batcher = child_pid(demo_->pid(), "akv-batcher");
            if (killed_batcher > 0) ::kill(killed_batcher, SIGKILL);
        }
    };
    const akv::demo::load_result sent = akv::demo::post_comments(http, post, load);
    ASSERT_GT(killed_worker, 0) << "no akv-worker child of akv-demo to kill";
    ASSERT_GT(killed_batcher, 0) << "no akv-batcher child of akv-demo to kill";

    std::set<std::string> expected;
    for (const auto& c : sent.comments)
        if (akv::demo::interested(c.text)) expected.insert(c.id);
    ASSERT_EQ(expected.size(), sent.interested);
    ASSERT_GT(expected.size(), 200u); // a third or so
    ASSERT_LT(expected.size(), 1000u);

    // The database: every interested comment once, nothing else.
    const auto db = data_.path() / "demo.sqlite";
    std::map<std::string, int> rows;
    poll_until(
        [&] {
            rows = signups_in_db(db, post);
            return rows.size() >= expected.size();
        },
        90s, 200ms);
    std::set<std::string> in_db;
    for (const auto& [id, n] : rows) {
        in_db.insert(id);
        EXPECT_EQ(n, 1) << id << " is in the database " << n << " times";
    }
    EXPECT_EQ(in_db, expected) << demo_->log_tail(60);

    // Both deaths were noticed and the processes restarted.
    const std::string log = demo_->log();
    EXPECT_NE(log.find("akv-worker died"), std::string::npos) << demo_->log_tail(60);
    EXPECT_NE(log.find("akv-batcher died"), std::string::npos) << demo_->log_tail(60);

    // The page: the same set, one list item each.
    const std::string n = std::to_string(expected.size());
    EXPECT_TRUE(wait_page("window.demo.signups.size === " + n +
                              " && document.querySelectorAll('#signups li').length === " + n,
                          60s))
        << page_state();
    const json::value ids =
        json::parse(browser_->cdp()
                        .evaluate(page_, "JSON.stringify([...window.demo.signups.keys()])", false)
                        .as_string());
    std::set<std::string> on_page;
    for (const auto& id : ids.as_array())
        on_page.insert(std::string(id.as_string()));
    EXPECT_EQ(on_page, expected);

    // The counters: akv-demo publishes them every second; the signups written are all of them.
    EXPECT_TRUE(wait_page("document.getElementById('s-written').textContent === '" + n +
                              "' && document.getElementById('s-batches').textContent !== '-'"
                              " && document.getElementById('s-comments').textContent === '0'",
                          20s))
        << page_state() << " stats: "
        << json::serialize(browser_->cdp().evaluate(page_, "JSON.stringify(window.demo.stats)", false));

    // SIGTERM: every process stops cleanly, akv-demo exits 0.
    demo_->signal(SIGTERM);
    ASSERT_TRUE(poll_until([&] { return !demo_->running(); }, 30s)) << demo_->log_tail();
    EXPECT_TRUE(WIFEXITED(demo_->status()) && WEXITSTATUS(demo_->status()) == 0)
        << "status " << demo_->status() << "\n"
        << demo_->log_tail();
}

} // namespace
