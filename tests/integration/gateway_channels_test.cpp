// Django Channels groups joined to gateway channels (akv/gateway/channels_layer.hpp), against
// the real channels_redis 4.0 (Debian's python3-channels-redis, run by /usr/bin/python3) on an
// embedded server: a Python group_send reaches a WebSocket session, a gateway publish reaches a
// Python consumer of the group, for both layers; bad messages in a group are counted and
// skipped while the bridge goes on. Skipped when channels_redis cannot be imported.
#include "support/eventually.hpp"
#include "support/gateway_client.hpp"
#include "support/side_thread.hpp"

#include <akv/gateway/channels_layer.hpp>
#include <akv/gateway/error.hpp>
#include <akv/gateway/publish.hpp>
#include <akv/kv/msgpack.hpp>
#include <akv/response.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace {

using namespace akv::test;
namespace gw = akv::gateway;

// What a Django process does with its channel layer, by argv: LAYER PORT send GROUP JSON (a
// message, or an array of them sent in turn), or
// LAYER PORT receive GROUP SECONDS (joins the group with a new channel, prints the first
// message as JSON, exits 3 on timeout).
constexpr const char* layer_script = R"(
import asyncio, json, sys
layer_kind, port, mode, group, arg = sys.argv[1:6]

def make_layer():
    if layer_kind == "core":
        from channels_redis.core import RedisChannelLayer
        return RedisChannelLayer(hosts=[("127.0.0.1", int(port))])
    from channels_redis.pubsub import RedisPubSubChannelLayer
    return RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:" + port])

async def main():
    layer = make_layer()
    code = 0
    if mode == "send":
        messages = json.loads(arg)
        for message in messages if isinstance(messages, list) else [messages]:
            await layer.group_send(group, message)
    else:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        try:
            message = await asyncio.wait_for(layer.receive(channel), float(arg))
            print(json.dumps(message, sort_keys=True))
        except asyncio.TimeoutError:
            code = 3
    if layer_kind == "core":
        await layer.close_pools()  # flush() would delete every asgi key, the groups too
    else:
        await layer.flush()
    return code

sys.exit(asyncio.run(main()))
)";

bool have_channels_redis() {
    static const bool have =
        std::system("/usr/bin/python3 -c 'import channels_redis.core, channels_redis.pubsub' "
                    ">/dev/null 2>&1") == 0;
    return have;
}

// The script in a file of its own for the test's lifetime.
class layer_process_script {
public:
    layer_process_script()
        : path_(std::filesystem::temp_directory_path() /
                ("akv-channels-" + std::to_string(::getpid()) + ".py")) {
        std::ofstream(path_) << layer_script;
    }
    ~layer_process_script() { std::filesystem::remove(path_); }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

struct python_result {
    int status = -1;
    std::string out;
};

// Runs the script (bounded by timeout(1)); arguments must hold no single quote.
python_result run_layer_script(const std::filesystem::path& script,
                               const std::vector<std::string>& args) {
    std::string command = "timeout 30 /usr/bin/python3 " + script.string();
    for (const auto& a : args)
        command += " '" + a + "'";
    command += " 2>&1";
    python_result r;
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) return r;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, p))
        r.out.append(buffer, n);
    r.status = ::pclose(p);
    return r;
}

std::string layer_name(gw::channels_layer_kind k) {
    return k == gw::channels_layer_kind::core ? "core" : "pubsub";
}

// A bridge on a client of its own, running for the object's lifetime.
class running_bridge {
public:
    running_bridge(asio::io_context& io, akv::config cfg, const gw::options& gateway,
                   gw::channels_options opts)
        : io_(io)
        , redis_(io, std::move(cfg))
        , bridge(redis_.client, gateway, std::move(opts)) {
        asio::co_spawn(io, bridge.run(), [this](std::exception_ptr) { finished_ = true; });
    }
    ~running_bridge() {
        bridge.stop();
        run_until(
            io_, [&] { return finished_; }, 10s);
    }
    akv::client& redis() { return redis_.client; }

    asio::io_context& io_;
    running_client redis_;
    gw::channels_bridge bridge;

private:
    bool finished_ = false;
};

gw::options open_gateway() {
    gw::options o;
    o.anonymous = {"*"};
    o.threads = 1;
    return o;
}

// A session subscribed to `channel`.
asio::awaitable<gateway_client> session_on(asio::io_context& io, std::uint16_t port,
                                           std::string_view channel) {
    gateway_client c(io);
    co_await c.open(port);
    co_await c.connect();
    auto ok = co_await c.subscribe(channel);
    EXPECT_TRUE(ok.contains("ok")) << json::serialize(ok);
    co_return c;
}

// Runs the layer script on a side thread while the coroutine waits for it (deadline).
// (Arguments by reference: g++ 12 mishandles temporaries in co_await expressions.)
asio::awaitable<python_result> python(const layer_process_script& script,
                                      const std::vector<std::string>& args) {
    python_result result;
    side_thread t([&] { result = run_layer_script(script.path(), args); });
    std::function<asio::awaitable<bool>()> finished = [&]() -> asio::awaitable<bool> {
        co_return t.done.load();
    };
    const bool done = co_await eventually(finished, 40s);
    EXPECT_TRUE(done) << "the Python channel layer did not finish";
    co_return result;
}

class ChannelsGroups : public ::testing::TestWithParam<gw::channels_layer_kind> {
protected:
    void SetUp() override {
        if (!have_channels_redis())
            GTEST_SKIP() << "/usr/bin/python3 cannot import channels_redis "
                            "(python3-channels-redis, script/deps)";
    }
};

TEST_P(ChannelsGroups, GroupSendFromPythonReachesASessionOnTheChannelOfTheGroup) {
    akv::testing::embedded_server redis;
    layer_process_script script;
    asio::io_context io;
    const gw::options gopts = open_gateway();
    running_gateway g(io, redis.config(), gopts);
    gw::channels_options co;
    co.layer = GetParam();
    co.groups = {"signups"};
    running_bridge b(io, redis.config(), g.server->get_options(), co);
    ASSERT_TRUE(run_until(
        io, [&] { return b.bridge.ready(); }, 10s));
    run_task(io, [&]() -> asio::awaitable<void> {
        gateway_client c = co_await session_on(io, g.port(), "signups");
        const std::vector<std::string> args{layer_name(GetParam()), std::to_string(redis.port()),
                                            "send", "signups",
                                            R"({"type": "signup.created", "name": "Ana"})"};
        const python_result sent = co_await python(script, args);
        EXPECT_EQ(sent.status, 0) << sent.out;
        const json::object push = co_await c.push();
        EXPECT_EQ(push.at("channel").as_string(), "signups");
        EXPECT_EQ(json::serialize(push.at("data")), R"({"type":"signup.created","name":"Ana"})");
    });
    EXPECT_EQ(b.bridge.stats().received, 1u);
}

TEST_P(ChannelsGroups, AGatewayPublishReachesAPythonConsumerOfTheGroup) {
    akv::testing::embedded_server redis;
    layer_process_script script;
    asio::io_context io;
    running_gateway g(io, redis.config(), open_gateway());
    gw::channels_options co;
    co.layer = GetParam();
    co.forwards = {{"news", "django-news"}, {"ticks", "django-news"}};
    running_bridge b(io, redis.config(), g.server->get_options(), co);
    ASSERT_TRUE(run_until(
        io, [&] { return b.bridge.ready(); }, 10s));
    run_task(io, [&]() -> asio::awaitable<void> {
        python_result got;
        side_thread consumer([&] {
            got = run_layer_script(script.path(),
                                   {layer_name(GetParam()), std::to_string(redis.port()), "receive",
                                    "django-news", "20"});
        });
        // The consumer is in the group once its channel is in the group's sorted set (core)
        // or it subscribed to the group's Redis channel (pubsub).
        std::function<asio::awaitable<bool>()> in_group = [&]() -> asio::awaitable<bool> {
            akv::request req;
            if (GetParam() == gw::channels_layer_kind::core)
                req.push("ZCARD", "asgi:group:django-news");
            else
                req.push("PUBSUB", "NUMSUB", "asgi__group__django-news");
            akv::generic_response r;
            co_await g.redis().exec(req, r);
            const auto& v = r.at(0).value();
            co_return GetParam() == gw::channels_layer_kind::core
                ? v.str == "1"
                : v.elements.size() == 2 && v.elements[1].str == "1";
        };
        const bool joined = co_await eventually(in_group, 20s);
        EXPECT_TRUE(joined) << "the Python consumer did not join";
        std::string channel = "news", data = R"({"type":"news.item","title":"hi","n":[1,2.5]})";
        co_await gw::publish(g.redis(), g.server->get_options(), std::move(channel),
                             std::move(data));
        std::function<asio::awaitable<bool>()> received = [&]() -> asio::awaitable<bool> {
            co_return consumer.done.load();
        };
        EXPECT_TRUE(co_await eventually(received, 30s)) << "the Python consumer did not finish";
        EXPECT_EQ(got.status, 0) << got.out;
        EXPECT_EQ(got.out, R"({"n": [1, 2.5], "title": "hi", "type": "news.item"})"
                           "\n");
    });
    EXPECT_EQ(b.bridge.stats().forwarded, 1u);
}

TEST_P(ChannelsGroups, BadMessagesInAGroupAreCountedAndSkipped) {
    akv::testing::embedded_server redis;
    layer_process_script script;
    asio::io_context io;
    running_gateway g(io, redis.config(), open_gateway());
    gw::channels_options co;
    co.layer = GetParam();
    co.groups = {"signups"};
    co.max_message = 1000;
    running_bridge b(io, redis.config(), g.server->get_options(), co);
    ASSERT_TRUE(run_until(
        io, [&] { return b.bridge.ready(); }, 10s));
    const bool core = GetParam() == gw::channels_layer_kind::core;
    run_task(io, [&]() -> asio::awaitable<void> {
        gateway_client c = co_await session_on(io, g.port(), "signups");
        // Stored as the layer stores them: after 12 random bytes (core), or as they are.
        const std::string random12 = "0123456789ab";
        std::string oversized = akv::kv::msgpack::encode(
            json::object{{"type", "big"}, {"blob", std::string(2000, 'x')}});
        const std::vector<std::string> bad = {
            "not msgpack at all", akv::kv::msgpack::encode(json::array{1, 2}), std::move(oversized),
            "gAAAAABl-an-encrypted-fernet-token"};
        for (const auto& payload : bad) {
            akv::request req;
            if (core)
                req.push("ZADD", "asgiakv-gateway.signups", "1", random12 + payload);
            else
                req.push("PUBLISH", "asgi__group__signups", payload);
            akv::generic_response r;
            co_await g.redis().exec(req, r);
        }
        // A good one after them still arrives: the bridge went on.
        const std::vector<std::string> args{layer_name(GetParam()), std::to_string(redis.port()),
                                            "send", "signups", R"({"type": "after.bad"})"};
        const python_result sent = co_await python(script, args);
        EXPECT_EQ(sent.status, 0) << sent.out;
        const json::object push = co_await c.push();
        EXPECT_EQ(json::serialize(push.at("data")), R"({"type":"after.bad"})");
    });
    const gw::channels_stats s = b.bridge.stats();
    EXPECT_EQ(s.skipped, 4u) << s.last_error;
    EXPECT_EQ(s.received, 1u);
    EXPECT_EQ(s.last_error.rfind("group signups: ", 0), 0u) << s.last_error;
}

class ChannelsCore : public ::testing::Test {
protected:
    void SetUp() override {
        if (!have_channels_redis())
            GTEST_SKIP() << "/usr/bin/python3 cannot import channels_redis "
                            "(python3-channels-redis, script/deps)";
    }
};

// Two gateway processes joined to one group (core layer) share one member: each message is
// taken by one of them and reaches the sessions once.
TEST_F(ChannelsCore, TwoBridgesOnOneGroupDeliverEachMessageOnce) {
    akv::testing::embedded_server redis;
    layer_process_script script;
    asio::io_context io;
    running_gateway g(io, redis.config(), open_gateway());
    gw::channels_options co;
    co.groups = {"signups"};
    running_bridge a(io, redis.config(), g.server->get_options(), co);
    running_bridge b(io, redis.config(), g.server->get_options(), co);
    ASSERT_TRUE(run_until(
        io, [&] { return a.bridge.ready() && b.bridge.ready(); }, 10s));
    constexpr int count = 50;
    run_task(io, [&]() -> asio::awaitable<void> {
        gateway_client c = co_await session_on(io, g.port(), "signups");
        json::array messages;
        for (int i = 0; i < count; ++i)
            messages.push_back(json::object{{"type", "signup.created"}, {"i", i}});
        const std::vector<std::string> args{"core", std::to_string(redis.port()), "send", "signups",
                                            json::serialize(messages)};
        const python_result sent = co_await python(script, args);
        EXPECT_EQ(sent.status, 0) << sent.out;
        std::vector<int> seen(count, 0);
        for (int i = 0; i < count; ++i) {
            const json::object push = co_await c.push();
            ++seen.at(push.at("data").at("i").to_number<std::size_t>());
        }
        EXPECT_EQ(seen, std::vector<int>(count, 1));
    });
    EXPECT_EQ(a.bridge.stats().received + b.bridge.stats().received, std::uint64_t(count));
}

INSTANTIATE_TEST_SUITE_P(Layers, ChannelsGroups,
                         ::testing::Values(gw::channels_layer_kind::core,
                                           gw::channels_layer_kind::pubsub),
                         [](const auto& info) { return layer_name(info.param); });

TEST(ChannelsBridge, RefusesGroupNamesChannelsRefusesAndLoops) {
    asio::io_context io;
    akv::client redis(io.get_executor(), akv::config{});
    const gw::options gopts;
    auto refusal = [&](gw::channels_options co) -> std::string {
        try {
            gw::channels_bridge b(redis, gopts, std::move(co));
            return "";
        } catch (const boost::system::system_error& e) {
            EXPECT_EQ(e.code(), gw::gateway_error::bad_options);
            return e.what();
        }
    };
    gw::channels_options co;
    co.groups = {"room 1"};
    EXPECT_NE(refusal(co).find("group \"room 1\": Channels accepts"), std::string::npos);
    co.groups = {std::string(100, 'a')};
    EXPECT_NE(refusal(co).find("fewer than 100"), std::string::npos);
    co.groups = {"chat"};
    co.forwards = {{"chat", "chat"}};
    EXPECT_NE(refusal(co).find("a loop"), std::string::npos);
    co.forwards = {{"chat-out", "chat"}};
    EXPECT_EQ(refusal(co), "");
    EXPECT_NE(refusal(gw::channels_options{}).find("no group to join"), std::string::npos);
}

} // namespace
