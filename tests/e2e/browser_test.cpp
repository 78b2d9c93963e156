// End to end in a real browser: headless Chromium opens the gateway's demo page (served by the
// akv-gateway binary, which talks to an embedded redis-server) and the test watches the page's
// DOM over the DevTools protocol while it publishes, kills and restarts the gateway. Skipped
// when Chromium is not installed (script/deps installs it).
#include "support/cdp.hpp"
#include "support/eventually.hpp"
#include "support/harness.hpp"
#include "support/running_client.hpp"

#include <akv/gateway/options.hpp>
#include <akv/gateway/publish.hpp>
#include <akv/gateway/token.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <charconv>
#include <cstdlib>
#include <random>
#include <regex>

#include <sys/wait.h>

#ifndef AKV_GATEWAY_PATH
#error "AKV_GATEWAY_PATH must name the akv-gateway binary (tests/CMakeLists.txt)"
#endif

using namespace akv::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

namespace {

std::string random_hex(std::size_t bytes) {
    std::random_device rd;
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < bytes; ++i) {
        const auto b = static_cast<unsigned>(rd()) & 0xff;
        out += digits[b >> 4];
        out += digits[b & 0xf];
    }
    return out;
}

// A stream id "ms-seq" as the two numbers it is made of; nullopt if it is not one.
std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_offset(std::string_view s) {
    const auto dash = s.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    std::uint64_t ms = 0, seq = 0;
    const auto a = std::from_chars(s.data(), s.data() + dash, ms);
    const auto b = std::from_chars(s.data() + dash + 1, s.data() + s.size(), seq);
    if (a.ec != std::errc{} || a.ptr != s.data() + dash || b.ec != std::errc{} ||
        b.ptr != s.data() + s.size() || dash == 0 || dash + 1 == s.size())
        return std::nullopt;
    return std::make_pair(ms, seq);
}

struct http_reply {
    unsigned status = 0;
    std::string body;
};

// One HTTP/1.1 POST to the gateway, bounded by `limit`.
http_reply http_post(std::uint16_t port, const std::string& target, const std::string& api_key,
                     const std::string& body, std::chrono::milliseconds limit = 10s) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(limit);
    http::request<http::string_body> req(http::verb::post, target, 11);
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    req.set(http::field::authorization, "apikey " + api_key);
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::response<http::string_body> res;
    beast::flat_buffer buffer;
    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    std::exception_ptr failure;
    bool done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await stream.async_connect(endpoint, asio::use_awaitable);
            co_await http::async_write(stream, req, asio::use_awaitable);
            co_await http::async_read(stream, buffer, res, asio::use_awaitable);
        },
        [&](std::exception_ptr e) {
            failure = e;
            done = true;
        });
    io.run();
    if (!done) throw std::runtime_error("POST " + target + ": did not complete");
    if (failure) std::rethrow_exception(failure);
    return {res.result_int(), res.body()};
}

// The akv-gateway binary as a child process, its output in a log file.
class gateway_process {
public:
    // `extra`: more flags; `prefix`: a command that runs the gateway (prlimit ...).
    gateway_process(const std::filesystem::path& log_file, const std::string& listen,
                    const std::string& redis_url, const std::string& secret,
                    const std::string& api_key, const std::vector<std::string>& extra = {},
                    const std::vector<std::string>& prefix = {})
        : process_(command(prefix, {AKV_GATEWAY_PATH, "--listen", listen, "--redis", redis_url,
                                    "--history", "demo*=1000"},
                           extra),
                   {"AKV_GATEWAY_SECRET=" + secret, "AKV_GATEWAY_API_KEY=" + api_key}, log_file) {}

    // The port from its "akv-gateway listening on http://127.0.0.1:<port>" line; 0 if it
    // exited or did not print it in time.
    std::uint16_t wait_listening(std::chrono::milliseconds limit) {
        static const std::regex ready(R"(akv-gateway listening on http://127\.0\.0\.1:(\d+)\s)");
        std::uint16_t port = 0;
        poll_until(
            [&] {
                std::smatch m;
                const std::string log = process_.log();
                if (std::regex_search(log, m, ready)) {
                    port = static_cast<std::uint16_t>(std::stoul(m[1].str()));
                    return true;
                }
                return !process_.running();
            },
            limit, 20ms);
        return port;
    }

    void kill() { process_.kill(); }
    bool running() { return process_.running(); }
    int pid() const { return process_.pid(); }
    int status() const { return process_.status(); }
    std::string log_tail() const { return process_.log_tail(); }

private:
    static std::vector<std::string> command(const std::vector<std::string>& prefix,
                                            const std::vector<std::string>& base,
                                            const std::vector<std::string>& extra) {
        std::vector<std::string> out = prefix;
        out.insert(out.end(), base.begin(), base.end());
        out.insert(out.end(), extra.begin(), extra.end());
        return out;
    }

    child_process process_;
};

class BrowserE2E : public ::testing::Test {
protected:
    void SetUp() override {
        if (!std::filesystem::exists(chromium_path()))
            GTEST_SKIP() << chromium_path()
                         << " is not installed (script/deps installs chromium; AKV_CHROMIUM "
                            "names another binary)";
        redis_.emplace();
        secret_ = random_hex(32);
        api_key_ = random_hex(16);
        start_gateway("127.0.0.1:0");
        ASSERT_NE(gateway_port_, 0);
        browser_.emplace(chromium_path(), 20s);
        page_ = browser_->new_page();

        akv::gateway::token_claims claims;
        claims.subject = "e2e";
        claims.expires = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count() +
                         3600;
        claims.channels = {"demo*"};
        claims.publish = {"demo*"};
        token_ = akv::gateway::sign_token(claims, secret_);
    }

    void TearDown() override {
        browser_.reset();
        gateway_.reset();
    }

    // Starts akv-gateway (again) and sets gateway_port_; 0 if it did not come up. A restart
    // on the same port retries while the port is not free yet.
    void start_gateway(const std::string& listen, std::chrono::milliseconds limit = 20s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        gateway_port_ = 0;
        while (gateway_port_ == 0 && std::chrono::steady_clock::now() < deadline) {
            gateway_.reset();
            const auto log =
                logs_.path() / ("gateway-" + std::to_string(++gateway_starts_) + ".log");
            gateway_.emplace(log, listen, redis_->url(), secret_, api_key_);
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            gateway_port_ = gateway_->wait_listening(std::max(left, 0ms));
        }
    }

    // The value of `expression` in the page.
    json::value evaluate(const std::string& expression, bool await_promise = false) {
        return browser_->cdp().evaluate(page_, expression, await_promise);
    }

    // Polls `expression` until it is true; an exception in the page (a document still
    // loading) counts as not yet. False at the deadline.
    bool wait_page(const std::string& expression, std::chrono::milliseconds limit) {
        return browser_->cdp().wait_true(page_, expression, limit, 50ms, &last_page_error_);
    }

    void open_page_and_wait_connected() {
        const std::string url = "http://127.0.0.1:" + std::to_string(gateway_port_) +
                                "/?token=" + token_ + "&channel=demo";
        browser_->cdp().navigate(page_, url);
        ASSERT_TRUE(wait_page(connected_and_subscribed, 15s))
            << "the page did not connect and subscribe\n"
            << diagnostics();
    }

    // (data-offset, text) of each <li> in #messages, in document order.
    std::vector<std::pair<std::string, std::string>> page_messages() {
        const json::value v =
            evaluate("JSON.stringify(Array.from(document.querySelectorAll('#messages li'))"
                     ".map((li) => [li.dataset.offset || '', li.textContent]))");
        std::vector<std::pair<std::string, std::string>> out;
        const json::value list = json::parse(v.as_string());
        for (const auto& item : list.as_array()) {
            const auto& pair = item.as_array();
            out.emplace_back(std::string(pair.at(0).as_string()),
                             std::string(pair.at(1).as_string()));
        }
        return out;
    }

    std::string diagnostics() {
        std::string out = "last page error: " + last_page_error_ + "\n";
        try {
            out += "page: " +
                   json::serialize(
                       evaluate("JSON.stringify({state: document.getElementById('state')"
                                ".textContent, count: document.getElementById('count')"
                                ".textContent, error: document.getElementById('error')"
                                ".textContent, messages: document.getElementById('messages')"
                                ".innerText})")) +
                   "\n";
        } catch (const std::exception& e) {
            out += std::string("page unreadable: ") + e.what() + "\n";
        }
        if (browser_) out += "page console:\n" + browser_->cdp().console_log();
        if (gateway_) out += "gateway log:\n" + gateway_->log_tail();
        return out;
    }

    // One message, the gateway killed, three published meanwhile, the gateway back: the page
    // shows all four once, in order, with their offsets.
    void check_resume_across_restart() {

        const http_reply first =
            http_post(gateway_port_, "/api/publish", api_key_, R"({"channel":"demo","data":{"n":1}})");
        ASSERT_EQ(first.status, 200U) << first.body;
        const std::string first_offset(json::parse(first.body).at("offset").as_string());
        ASSERT_TRUE(wait_page("document.querySelectorAll('#messages li').length === 1", 10s))
            << diagnostics();

        // The gateway crashes; while it is away, three messages go through Redis exactly as the
        // gateway would publish them (history stream + PUBLISH).
        const std::uint16_t port = gateway_port_;
        gateway_->kill();
        ASSERT_TRUE(wait_page("akvClient.state !== 'connected'", 10s)) << diagnostics();
        std::vector<std::string> offsets{first_offset};
        {
            asio::io_context io;
            running_client redis(io, redis_->config());
            akv::gateway::options opts;
            opts.history = {akv::gateway::history_rule{"demo*", 1000, std::chrono::seconds(0)}};
            run_task(io, [&]() -> asio::awaitable<void> {
                for (int n = 2; n <= 4; ++n) {
                    std::string channel = "demo";
                    std::string data = "{\"n\":" + std::to_string(n) + "}";
                    auto offset = co_await akv::gateway::publish(redis.client, opts, channel, data);
                    offsets.push_back(offset ? offset->offset : "(none)");
                }
            }());
        }
        ASSERT_EQ(offsets.size(), 4U);

        start_gateway("127.0.0.1:" + std::to_string(port));
        ASSERT_EQ(gateway_port_, port) << "the gateway did not come back on port " << port << "\n"
                                       << diagnostics();
        ASSERT_TRUE(wait_page(std::string(connected_and_subscribed) +
                                  " && document.querySelectorAll('#messages li').length >= 4",
                              30s))
            << diagnostics();

        // A ping's reply comes after everything the server sent before it: a duplicate of the
        // resume would be on the page by now.
        const json::value after_ping = browser_->cdp().evaluate(
            page_, "akvClient.ping().then(() => document.querySelectorAll('#messages li').length)",
            /*await_promise=*/true);
        EXPECT_EQ(after_ping, json::value(4)) << diagnostics();

        const auto messages = page_messages();
        ASSERT_EQ(messages.size(), 4U) << diagnostics();
        for (std::size_t i = 0; i < messages.size(); ++i) {
            EXPECT_EQ(messages[i].second, "{\"n\":" + std::to_string(i + 1) + "}") << "message " << i;
            EXPECT_EQ(messages[i].first, offsets[i]) << "message " << i;
            ASSERT_TRUE(parse_offset(messages[i].first)) << messages[i].first;
            if (i > 0)
                EXPECT_LT(*parse_offset(messages[i - 1].first), *parse_offset(messages[i].first))
                    << "offsets not strictly increasing at " << i;
        }
        EXPECT_EQ(evaluate("document.getElementById('count').textContent"), json::value("4"));
    }

    // The client said connected and the server confirmed the subscription.
    static constexpr const char* connected_and_subscribed =
        "!!window.akvClient && akvClient.state === 'connected' && akvSubscription.subscribed"
        " && document.getElementById('state').textContent === 'connected'";

    temp_dir logs_{"akv-e2e-"};
    std::optional<akv::testing::embedded_server> redis_;
    std::string secret_;
    std::string api_key_;
    std::string token_;
    std::optional<gateway_process> gateway_;
    int gateway_starts_ = 0;
    std::uint16_t gateway_port_ = 0;
    std::optional<headless_chromium> browser_;
    std::string page_;
    std::string last_page_error_;
};

TEST_F(BrowserE2E, PageResumesAfterGatewayRestartWithoutLossOrDuplicates) {
    ASSERT_NO_FATAL_FAILURE(open_page_and_wait_connected());
    EXPECT_EQ(evaluate("akvClient.transport"), json::value("websocket"));
    ASSERT_NO_FATAL_FAILURE(check_resume_across_restart());
}

// Behind a proxy that refuses WebSockets (the page's WebSocket fails before it opens), akv.js
// falls back to Server-Sent Events: the page gets its messages and resumes them across a
// gateway restart all the same.
TEST_F(BrowserE2E, WithoutWebSocketsThePageFallsBackToSseAndStillResumes) {
    const std::string refuse =
        "window.WebSocket = class { constructor() { setTimeout(() => {"
        " if (this.onerror) this.onerror(new Event('error'));"
        " if (this.onclose) this.onclose({code: 1006, reason: ''}); }, 10); }"
        " send() { throw new Error('not open'); } close() {} };";
    browser_->cdp().call("Page.enable", {}, page_);
    const json::value added = browser_->cdp().call("Page.addScriptToEvaluateOnNewDocument",
                                                   json::object{{"source", refuse}}, page_);
    ASSERT_TRUE(added.is_object() && added.as_object().contains("identifier"))
        << json::serialize(added);
    ASSERT_NO_FATAL_FAILURE(open_page_and_wait_connected());
    EXPECT_EQ(evaluate("akvClient.transport"), json::value("sse")) << diagnostics();
    ASSERT_NO_FATAL_FAILURE(check_resume_across_restart());
}

TEST_F(BrowserE2E, PublishFormSendsThroughTheSocketAndTheMessageComesBack) {
    ASSERT_NO_FATAL_FAILURE(open_page_and_wait_connected());

    evaluate("document.getElementById('data').value = '{\"n\":7}';"
             "document.querySelector('#publish button').click(); true");
    ASSERT_TRUE(wait_page("document.querySelectorAll('#messages li').length === 1", 10s))
        << diagnostics();
    const auto messages = page_messages();
    ASSERT_EQ(messages.size(), 1U);
    EXPECT_EQ(messages[0].second, "{\"n\":7}");
    EXPECT_TRUE(parse_offset(messages[0].first))
        << "no offset on a history channel: " << messages[0].first;
    EXPECT_EQ(evaluate("document.getElementById('error').textContent"), json::value(""));
}

TEST_F(BrowserE2E, ModuleExportsTheSameClassAsTheScript) {
    ASSERT_NO_FATAL_FAILURE(open_page_and_wait_connected());

    const json::value same = browser_->cdp().evaluate(
        page_,
        "import('/akv.mjs').then((m) => m.AkvGateway === window.AkvGateway &&"
        " m.default === window.AkvGateway)",
        /*await_promise=*/true);
    EXPECT_EQ(same, json::value(true)) << diagnostics();
}

// Seed 004's realtime push as Voluntree's Django worker makes it: channels_redis's group_send
// from Python (the real library, Debian's python3-channels-redis) reaches the page through
// akv-gateway --channels-group, which joined the Channels group.
TEST_F(BrowserE2E, DjangoChannelsGroupSendReachesThePage) {
    if (std::system("/usr/bin/python3 -c 'import channels_redis.core' >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "/usr/bin/python3 cannot import channels_redis (python3-channels-redis, "
                        "script/deps)";
    gateway_.reset();
    gateway_.emplace(logs_.path() / "gateway-channels.log", "127.0.0.1:0", redis_->url(), secret_,
                     api_key_, std::vector<std::string>{"--channels-group", "demo-signups"});
    gateway_port_ = gateway_->wait_listening(20s);
    ASSERT_NE(gateway_port_, 0) << gateway_->log_tail();
    browser_->cdp().navigate(page_, "http://127.0.0.1:" + std::to_string(gateway_port_) +
                                        "/?token=" + token_ + "&channel=demo-signups");
    ASSERT_TRUE(wait_page(connected_and_subscribed, 15s)) << diagnostics();
    {
        // group_send reaches the members the group has when it is sent: wait for ours.
        asio::io_context io;
        running_client redis(io, redis_->config());
        run_task(io, [&]() -> asio::awaitable<void> {
            std::function<asio::awaitable<bool>()> joined = [&]() -> asio::awaitable<bool> {
                akv::request req;
                req.push("ZSCORE", "asgi:group:demo-signups", "akv-gateway.demo-signups");
                akv::response<std::optional<std::string>> resp;
                co_await redis.client.exec(req, resp);
                co_return std::get<0>(resp).has_value() && std::get<0>(resp).value().has_value();
            };
            EXPECT_TRUE(co_await eventually(joined, 10s)) << "the gateway did not join the group";
        }());
    }
    const char* group_send =
        "import asyncio, json, sys\n"
        "from channels_redis.core import RedisChannelLayer\n"
        "async def main():\n"
        "    layer = RedisChannelLayer(hosts=[('127.0.0.1', int(sys.argv[1]))])\n"
        "    await layer.group_send(sys.argv[2], json.loads(sys.argv[3]))\n"
        "    await layer.close_pools()\n"
        "asyncio.run(main())\n";
    child_process python({"/usr/bin/python3", "-c", group_send, std::to_string(redis_->port()),
                          "demo-signups",
                          R"({"type": "signup.created", "post": 42, "volunteer": "Ana"})"},
                         {}, logs_.path() / "python.log");
    ASSERT_TRUE(poll_until([&] { return !python.running(); }, 30s, 20ms)) << python.log_tail();
    ASSERT_TRUE(WIFEXITED(python.status()) && WEXITSTATUS(python.status()) == 0)
        << python.log_tail();
    ASSERT_TRUE(wait_page("document.querySelectorAll('#messages li').length === 1", 10s))
        << diagnostics();
    const auto messages = page_messages();
    ASSERT_EQ(messages.size(), 1U);
    EXPECT_EQ(messages[0].second, R"({"type":"signup.created","post":42,"volunteer":"Ana"})");
    EXPECT_TRUE(parse_offset(messages[0].first)) << "kept in the channel's history too";
}

} // namespace

namespace {

// A synchronous protocol session on a gateway (no browser needed): connect, subscribe, read.
class sync_session {
public:
    sync_session(std::uint16_t port, const std::string& token, const std::string& channel,
                 const std::string& subscribe_fields = {})
        : ws_(io_) {
        beast::get_lowest_layer(ws_).expires_after(10s);
        beast::get_lowest_layer(ws_).connect(
            asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        ws_.handshake("127.0.0.1:" + std::to_string(port), "/ws");
        send(R"({"op":"connect","token":")" + token + "\"}");
        EXPECT_NE(line().find("connected"), std::string::npos);
        send(R"({"op":"subscribe","id":1,"channel":")" + channel + "\"" + subscribe_fields + "}");
        EXPECT_NE(line().find("\"ok\":true"), std::string::npos);
    }
    void send(const std::string& text) { ws_.write(asio::buffer(text)); }
    // The next line; "" once closed (close_code() tells how).
    std::string line() {
        if (lines_.empty()) {
            beast::flat_buffer buf;
            beast::error_code ec;
            beast::get_lowest_layer(ws_).expires_after(10s);
            ws_.read(buf, ec);
            if (ec) return {};
            std::string text = beast::buffers_to_string(buf.data());
            for (std::size_t start = 0;;) {
                const auto nl = text.find('\n', start);
                lines_.push_back(text.substr(start, nl - start));
                if (nl == std::string::npos) break;
                start = nl + 1;
            }
        }
        std::string l = lines_.front();
        lines_.erase(lines_.begin());
        return l;
    }
    int close_code() const { return ws_.reason().code; }

private:
    asio::io_context io_;
    beast::websocket::stream<beast::tcp_stream> ws_;
    std::vector<std::string> lines_;
};

TEST(GatewayProcesses, TwoProcessesShareAChannelAndStopGracefully) {
    akv::testing::embedded_server redis;
    temp_dir logs{"akv-e2e-procs-"};
    const std::string secret = random_hex(32), key = random_hex(16);
    const std::string url = "redis://127.0.0.1:" + std::to_string(redis.port());
    gateway_process a(logs.path() / "a.log", "127.0.0.1:0", url, secret, key);
    gateway_process b(logs.path() / "b.log", "127.0.0.1:0", url, secret, key);
    const auto port_a = a.wait_listening(20s), port_b = b.wait_listening(20s);
    ASSERT_NE(port_a, 0) << a.log_tail();
    ASSERT_NE(port_b, 0) << b.log_tail();
    akv::gateway::token_claims claims;
    claims.subject = "procs";
    claims.expires = std::time(nullptr) + 3600;
    claims.channels = {"demo*"};
    const std::string token = akv::gateway::sign_token(claims, secret);
    sync_session on_a(port_a, token, "demo.shared"), on_b(port_b, token, "demo.shared");
    // Published through each process: every session on both gets both, in order.
    const auto first = http_post(port_a, "/api/publish", key, R"({"channel":"demo.shared","data":"via a"})");
    ASSERT_EQ(first.status, 200u) << first.body;
    const auto second = http_post(port_b, "/api/publish", key, R"({"channel":"demo.shared","data":"via b"})");
    ASSERT_EQ(second.status, 200u) << second.body;
    for (auto* s : {&on_a, &on_b}) {
        const std::string m1 = s->line(), m2 = s->line();
        EXPECT_NE(m1.find("\"via a\""), std::string::npos) << m1;
        EXPECT_NE(m2.find("\"via b\""), std::string::npos) << m2;
    }
    // SIGTERM: sessions get 1001, the process exits 0.
    ASSERT_EQ(::kill(a.pid(), SIGTERM), 0);
    EXPECT_EQ(on_a.line(), "");
    EXPECT_EQ(on_a.close_code(), 1001);
    EXPECT_TRUE(poll_until([&] { return !a.running(); }, 10s)) << a.log_tail();
    EXPECT_TRUE(WIFEXITED(a.status()) && WEXITSTATUS(a.status()) == 0) << a.log_tail();
    // The other process goes on.
    const auto third = http_post(port_b, "/api/publish", key, R"({"channel":"demo.shared","data":"still b"})");
    EXPECT_EQ(third.status, 200u);
    EXPECT_NE(on_b.line().find("still b"), std::string::npos);
}

// The presence of a channel is one across processes; a SIGKILLed gateway cannot say goodbye
// for its sessions, so their entries expire within the presence ttl (and their leave is
// announced then), and the rest goes on.
TEST(GatewayProcesses, PresenceSpansProcessesAndACrashedOnesSessionsExpire) {
    akv::testing::embedded_server redis;
    temp_dir logs{"akv-e2e-presence-"};
    const std::string secret = random_hex(32), key = random_hex(16);
    const std::string url = "redis://127.0.0.1:" + std::to_string(redis.port());
    const std::vector<std::string> flags{"--presence", "demo.room:join-leave", "--presence-ttl",
                                         "3"};
    gateway_process a(logs.path() / "a.log", "127.0.0.1:0", url, secret, key, flags);
    gateway_process b(logs.path() / "b.log", "127.0.0.1:0", url, secret, key, flags);
    const auto port_a = a.wait_listening(20s), port_b = b.wait_listening(20s);
    ASSERT_NE(port_a, 0) << a.log_tail();
    ASSERT_NE(port_b, 0) << b.log_tail();
    const auto token_for = [&](const std::string& who) {
        akv::gateway::token_claims claims;
        claims.subject = who;
        claims.expires = std::time(nullptr) + 3600;
        claims.channels = {"demo*"};
        claims.presence = {"demo*"};
        return akv::gateway::sign_token(claims, secret);
    };
    sync_session alice(port_a, token_for("alice"), "demo.room", R"(,"join_leave":true)");
    sync_session bob(port_b, token_for("bob"), "demo.room");
    // Alice, on the other process, hears Bob join (after her own join, maybe).
    std::string join;
    for (int i = 0; i < 3 && join.find("bob") == std::string::npos; ++i) join = alice.line();
    EXPECT_NE(join.find("\"op\":\"join\""), std::string::npos) << join;
    EXPECT_NE(join.find("bob"), std::string::npos) << join;
    // Her process lists both.
    int id = 10;
    std::string pushes; // what came to Alice beside the replies
    const auto who_is_there = [&] {
        alice.send(R"({"op":"presence","channel":"demo.room","id":)" + std::to_string(++id) + "}");
        for (;;) {
            std::string l = alice.line();
            if (l.empty() || l.find("\"id\":" + std::to_string(id)) != std::string::npos) return l;
            pushes += l + "\n";
        }
    };
    const std::string both = who_is_there();
    EXPECT_NE(both.find("alice"), std::string::npos) << both;
    EXPECT_NE(both.find("bob"), std::string::npos) << both;
    // Bob's gateway dies without a word: his entry goes within the ttl (3 s), Alice's stays.
    ASSERT_EQ(::kill(b.pid(), SIGKILL), 0);
    std::string after;
    EXPECT_TRUE(poll_until(
        [&] {
            after = who_is_there();
            return after.find("bob") == std::string::npos;
        },
        15s, 250ms))
        << after;
    EXPECT_NE(after.find("alice"), std::string::npos) << after;
    // And the leave its gateway could not announce is announced when the entry expires.
    EXPECT_TRUE(poll_until(
        [&] {
            who_is_there();
            return pushes.find("\"op\":\"leave\"") != std::string::npos;
        },
        15s, 250ms))
        << pushes;
    EXPECT_NE(pushes.find("bob"), std::string::npos) << pushes;
}

// Past its descriptor limit (prlimit: 64) the gateway refuses new connections at once, with a
// 503 that says why, instead of leaving them in the backlog; the sessions it has go on, and
// once some leave it accepts again.
TEST(GatewayProcesses, PastItsDescriptorLimitTheGatewayRefusesNewcomersAndServesTheRest) {
    if (!std::filesystem::exists("/usr/bin/prlimit")) GTEST_SKIP() << "no /usr/bin/prlimit";
    akv::testing::embedded_server redis;
    temp_dir logs{"akv-e2e-fds-"};
    const std::string secret = random_hex(32), key = random_hex(16);
    const std::string url = "redis://127.0.0.1:" + std::to_string(redis.port());
    gateway_process g(logs.path() / "g.log", "127.0.0.1:0", url, secret, key, {"--threads", "1"},
                      {"/usr/bin/prlimit", "--nofile=64"});
    const auto port = g.wait_listening(20s);
    ASSERT_NE(port, 0) << g.log_tail();
    akv::gateway::token_claims claims;
    claims.subject = "fds";
    claims.expires = std::time(nullptr) + 3600;
    claims.channels = {"demo*"};
    const std::string token = akv::gateway::sign_token(claims, secret);
    std::vector<std::unique_ptr<sync_session>> held;
    std::string refused;
    for (int i = 0; i < 100 && refused.empty(); ++i) {
        try {
            held.push_back(std::make_unique<sync_session>(port, token, "demo.fd"));
        } catch (const std::exception& e) {
            refused = e.what();
        }
    }
    ASSERT_FALSE(refused.empty()) << held.size() << " sessions under a limit of 64 descriptors";
    ASSERT_GE(held.size(), 20u) << refused;
    const http_reply newcomer = http_post(port, "/api/publish", key, R"({"channel":"demo.fd"})");
    EXPECT_EQ(newcomer.status, 503u) << newcomer.body;
    EXPECT_NE(newcomer.body.find("out of file descriptors"), std::string::npos) << newcomer.body;
    // Every session it has still gets what is published (straight to Redis: no descriptor
    // needed on the gateway's side).
    {
        asio::io_context io;
        running_client r(io, redis.config());
        run_task(io, [&]() -> asio::awaitable<void> {
            akv::request req;
            req.push("PUBLISH", "demo.fd", R"("still here")");
            co_await r.client.exec(req, akv::ignore);
        }());
    }
    for (auto& s : held) EXPECT_NE(s->line().find("still here"), std::string::npos);
    EXPECT_TRUE(g.running()) << g.log_tail();
    // Some leave: room again.
    held.resize(held.size() - 5);
    http_reply again;
    EXPECT_TRUE(poll_until(
        [&] {
            again = http_post(port, "/api/publish", key, R"({"channel":"demo.fd","data":1})");
            return again.status == 200;
        },
        10s, 100ms))
        << again.status << " " << again.body;
}

} // namespace

namespace {

// akv-gateway refuses bad flags and options with exit 2 and a message naming what was wrong.
TEST(GatewayProcesses, BadFlagsAreNamedAndExitTwo) {
    temp_dir logs{"akv-e2e-flags-"};
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--listen", "nowhere"}, "--listen: expected HOST:PORT, got 'nowhere'"},
        {{"--listen", "127.0.0.1:99999"}, "--listen: expected a number, got '99999'"},
        {{"--history", "=5"}, "--history: empty channel pattern"},
        {{"--history", "chat*=lots"}, "--history: expected a number, got 'lots'"},
        {{"--slow", "sometimes"}, "--slow: expected disconnect or drop-oldest, got 'sometimes'"},
        {{"--send-queue"}, "--send-queue needs a value"},
        {{"--frobnicate"}, "unknown option --frobnicate"},
        {{"--redis", "redis://127.0.0.1:1", "--send-queue", "0"}, "send_queue must be at least 1"},
        {{"--redis", "redis://127.0.0.1:1", "--tls-cert", "/nonexistent/c.pem", "--tls-key",
          "/nonexistent/k.pem"},
         "/nonexistent/c.pem"},
        {{"--redis", "nope://x"}, "nope"},
    };
    int n = 0;
    for (const auto& [flags, expected] : cases) {
        std::vector<std::string> args{AKV_GATEWAY_PATH};
        args.insert(args.end(), flags.begin(), flags.end());
        child_process p(args, {}, logs.path() / ("case-" + std::to_string(++n) + ".log"));
        ASSERT_TRUE(poll_until([&] { return !p.running(); }, 10s)) << expected << ": still running";
        EXPECT_TRUE(WIFEXITED(p.status()) && WEXITSTATUS(p.status()) == 2)
            << expected << ": status " << p.status() << "\n" << p.log();
        EXPECT_NE(p.log().find(expected), std::string::npos) << p.log();
    }
}

} // namespace
