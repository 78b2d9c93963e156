// akv-gateway: Redis channels pushed to browsers over WebSocket (websocket_gateway/README.md),
// webhooks into task queues, on one port. `akv-gateway --help` lists the flags; every flag may
// also come from --config FILE.json. Without --redis it starts a private redis-server whose
// data stay in the data dir for the next run.
#include "common/app.hpp"
#include "common/gateway_flags.hpp"

#include <akv/client.hpp>
#include <akv/config.hpp>
#include <akv/console/api.hpp>
#include <akv/console/sampler.hpp>
#include <akv/gateway/channels_layer.hpp>
#include <akv/gateway/error.hpp>
#include <akv/gateway/server.hpp>
#include <akv/gateway/token.hpp>
#include <akv/queue/producer.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>

namespace asio = boost::asio;
namespace gw = akv::gateway;

namespace {

struct flags {
    gw::options opts;
    std::vector<std::pair<std::string, std::string>> webhooks; // path, queue
    bool demo = false;
    bool console = false;
    std::string console_password;
    gw::channels_options channels;
};

akv::app::command_line command_line() {
    return akv::app::command_line(
        "akv-gateway", "Pushes Redis channels to browsers over WebSocket; one port for HTTP too.",
        {
            {"listen", "HOST:PORT", "where to listen (default 127.0.0.1:8080; port 0: any)"},
            {"history", "PATTERN[=MAXLEN[,AGE_S]]",
             "channels matching PATTERN keep history (default 1000 messages)", true},
            {"anonymous", "PATTERN", "channels anyone may subscribe to without a token", true},
            {"presence", "PATTERN[:join-leave]",
             "channels that keep who is subscribed (and may push joins and leaves)", true},
            {"presence-ttl", "S", "a presence entry outlives its gateway by this (default 60)"},
            {"origin", "ORIGIN", "a browser origin allowed to connect (* any)", true},
            {"webhook", "PATH=QUEUE",
             "POST PATH enqueues its JSON body (an object, or an array of them) as jobs of QUEUE",
             true},
            {"open-webhooks", "",
             "accept unsigned webhook posts (else AKV_GATEWAY_WEBHOOK_SECRET is required)"},
            {"console", "",
             "serve the operator's console API under /console/api (a token whose \"admin\" "
             "claim is true or \"read\", or the console password)"},
            {"console-password", "P",
             "the console's password, HTTP Basic (or AKV_CONSOLE_PASSWORD, off the command line)"},
            {"static", "DIR", "serve files of DIR over the built-in ones"},
            {"prefix", "P", "Redis channel = P + channel"},
            {"tls-cert", "FILE", "PEM certificate (with --tls-key: HTTPS and WSS on the port)"},
            {"tls-key", "FILE", "PEM private key"},
            {"send-queue", "N", "messages waiting per session (default 4096)"},
            {"slow", "POLICY", "slow consumers: disconnect (default) or drop-oldest"},
            {"max-channels", "N", "subscriptions per session (default 128)"},
            {"max-frame", "BYTES", "bytes of a client message (default 65536)"},
            {"max-rate", "N", "client messages per second per session (default 100)"},
            {"max-sessions", "N", "sessions at once (default 100000)"},
            {"threads", "N", "event loops for the sessions (default: the machine's cores)"},
            {"proxy-connect", "URL",
             "http:// endpoint of the app that decides connects without a token"},
            {"proxy-subscribe", "URL", "... subscribes the client's claims do not allow"},
            {"proxy-publish", "URL", "... every client publish (allow, refuse, replace data)"},
            {"proxy-rpc", "URL", "... answers the clients' rpc requests"},
            {"proxy-timeout-ms", "N", "a proxy request's deadline (default 2000)"},
            {"grace-ms", "N", "shutdown: time to drain queues before closing (default 5000)"},
            {"demo", "", "print a demo page address with a token good for a day"},
            {"channels-group", "GROUP",
             "join the Django Channels group: its group_send reaches the gateway channel GROUP",
             true},
            {"channels-forward", "CHANNEL[=GROUP]",
             "send the gateway channel's messages to the Channels group (default: CHANNEL)", true},
            {"channels-layer", "LAYER",
             "the Django app's layer: core (channels_redis.core.RedisChannelLayer, default) or "
             "pubsub (channels_redis.pubsub.RedisPubSubChannelLayer)"},
            {"channels-prefix", "P", "the layer's prefix (default asgi)"},
            {"channels-expiry", "S", "core: the layer's expiry (default 60)"},
            {"channels-group-expiry", "S", "core: the layer's group_expiry (default 86400)"},
            {"channels-capacity", "N", "core: the layer's capacity (default 100)"},
        },
        "Secrets come from the environment, never flags: AKV_GATEWAY_SECRET (token secret),\n"
        "AKV_GATEWAY_API_KEY (POST /api/publish), AKV_GATEWAY_WEBHOOK_SECRET (webhooks must\n"
        "carry X-Hub-Signature-256). Prints \"akv-gateway listening on http[s]://HOST:PORT\"\n"
        "once it serves. SIGINT/SIGTERM: every session gets 1001 once its queue drains; exit 0.");
}

template <class T> T number(const std::string& flag, const std::string& text) {
    return akv::app::command_line::parse_number<T>(flag, text);
}

flags parse(const akv::app::command_line& cl) {
    flags f;
    if (auto v = cl.get("listen"))
        std::tie(f.opts.address, f.opts.port) = akv::app::host_port("listen", *v);
    for (const auto& h : cl.all("history"))
        f.opts.history.push_back(akv::app::history_rule(h));
    f.opts.anonymous = cl.all("anonymous");
    for (const auto& p : cl.all("presence")) {
        gw::presence_rule rule;
        const auto colon = p.rfind(':');
        rule.pattern = p;
        if (colon != std::string::npos && p.substr(colon + 1) == "join-leave") {
            rule.pattern = p.substr(0, colon);
            rule.join_leave = true;
        }
        if (rule.pattern.empty())
            throw akv::app::usage_error("--presence: expected PATTERN[:join-leave], got '" + p + "'");
        f.opts.presence.push_back(std::move(rule));
    }
    if (cl.has("presence-ttl")) {
        const long ttl = cl.number<long>("presence-ttl", 60);
        if (ttl < 3 || ttl > 86400)
            throw akv::app::usage_error("--presence-ttl: expected 3 to 86400 seconds, got " +
                                        std::to_string(ttl));
        f.opts.presence_ttl = std::chrono::seconds(ttl);
    }
    f.opts.allowed_origins = cl.all("origin");
    for (const auto& w : cl.all("webhook")) {
        const auto eq = w.find('=');
        if (eq == std::string::npos || eq == 0 || w[0] != '/' || eq + 1 == w.size())
            throw akv::app::usage_error("--webhook: expected /PATH=QUEUE, got '" + w + "'");
        f.webhooks.emplace_back(w.substr(0, eq), w.substr(eq + 1));
    }
    f.opts.proxy.connect_url = cl.get_or("proxy-connect", "");
    f.opts.proxy.subscribe_url = cl.get_or("proxy-subscribe", "");
    f.opts.proxy.publish_url = cl.get_or("proxy-publish", "");
    f.opts.proxy.rpc_url = cl.get_or("proxy-rpc", "");
    f.opts.proxy.timeout = std::chrono::milliseconds(
        cl.number<long>("proxy-timeout-ms", f.opts.proxy.timeout.count()));
    f.opts.static_dir = cl.get_or("static", "");
    f.opts.channel_prefix = cl.get_or("prefix", "");
    f.opts.tls_cert_file = cl.get_or("tls-cert", "");
    f.opts.tls_key_file = cl.get_or("tls-key", "");
    f.opts.send_queue = cl.number<std::size_t>("send-queue", f.opts.send_queue);
    if (auto v = cl.get("slow")) {
        if (*v == "disconnect")
            f.opts.slow_policy = gw::slow_consumer_policy::disconnect;
        else if (*v == "drop-oldest")
            f.opts.slow_policy = gw::slow_consumer_policy::drop_oldest;
        else
            throw akv::app::usage_error("--slow: expected disconnect or drop-oldest, got '" + *v +
                                        "'");
    }
    f.opts.max_channels = cl.number<std::size_t>("max-channels", f.opts.max_channels);
    f.opts.max_frame = cl.number<std::size_t>("max-frame", f.opts.max_frame);
    if (cl.has("max-rate")) {
        f.opts.max_rate = cl.number<double>("max-rate", f.opts.max_rate);
        f.opts.max_burst = std::max(f.opts.max_burst, f.opts.max_rate * 2);
    }
    f.opts.max_sessions = cl.number<std::size_t>("max-sessions", f.opts.max_sessions);
    f.opts.threads = cl.number<std::size_t>(
        "threads", std::max<std::size_t>(1, std::thread::hardware_concurrency()));
    if (f.opts.threads == 0 || f.opts.threads > 256)
        throw akv::app::usage_error("--threads: expected 1 to 256, got " +
                                    std::to_string(f.opts.threads));
    f.opts.shutdown_grace = std::chrono::milliseconds(cl.number<long>("grace-ms", 5000));
    f.channels.groups = cl.all("channels-group");
    for (const auto& fw : cl.all("channels-forward")) {
        const auto eq = fw.find('=');
        if (eq == 0 || eq + 1 == fw.size())
            throw akv::app::usage_error("--channels-forward: expected CHANNEL[=GROUP], got '" + fw +
                                        "'");
        if (eq == std::string::npos)
            f.channels.forwards.emplace_back(fw, fw);
        else
            f.channels.forwards.emplace_back(fw.substr(0, eq), fw.substr(eq + 1));
    }
    if (auto v = cl.get("channels-layer")) {
        if (*v == "core")
            f.channels.layer = gw::channels_layer_kind::core;
        else if (*v == "pubsub")
            f.channels.layer = gw::channels_layer_kind::pubsub;
        else
            throw akv::app::usage_error("--channels-layer: expected core or pubsub, got '" + *v +
                                        "'");
    }
    f.channels.prefix = cl.get_or("channels-prefix", f.channels.prefix);
    f.channels.expiry =
        std::chrono::seconds(cl.number<long>("channels-expiry", f.channels.expiry.count()));
    f.channels.group_expiry = std::chrono::seconds(
        cl.number<long>("channels-group-expiry", f.channels.group_expiry.count()));
    f.channels.capacity = cl.number<std::size_t>("channels-capacity", f.channels.capacity);
    f.demo = cl.has("demo");
    if (const char* s = std::getenv("AKV_GATEWAY_SECRET")) f.opts.token_secret = s;
    if (const char* k = std::getenv("AKV_GATEWAY_API_KEY")) f.opts.api_key = k;
    if (const char* w = std::getenv("AKV_GATEWAY_WEBHOOK_SECRET")) f.opts.webhook_secret = w;
    f.console = cl.has("console");
    f.console_password = cl.get_or("console-password", "");
    if (const char* p = std::getenv("AKV_CONSOLE_PASSWORD"); p && f.console_password.empty())
        f.console_password = p;
    if (f.console && f.console_password.empty() && f.opts.token_secret.empty() && !f.demo)
        throw akv::app::usage_error("--console: set AKV_GATEWAY_SECRET (tokens with an \"admin\" "
                                    "claim) or a console password (--console-password or "
                                    "AKV_CONSOLE_PASSWORD)");
    // Refuse what is not explicitly open: an unsigned webhook is anyone's way into a queue.
    if (!f.webhooks.empty() && f.opts.webhook_secret.empty() && !cl.has("open-webhooks"))
        throw akv::app::usage_error("--webhook: set AKV_GATEWAY_WEBHOOK_SECRET (posts must be signed), or "
                                    "give --open-webhooks to accept unsigned posts");
    return f;
}

// POST body -> jobs: an object is one job, an array of objects one job each. Each gets
// "received_ms" (when the gateway read it) unless it has one, so later stages can tell the
// end-to-end latency.
gw::webhook_handler enqueue_webhook(std::shared_ptr<akv::queue::producer> queue) {
    return [queue](gw::webhook_request in) -> asio::awaitable<gw::webhook_reply> {
        boost::system::error_code ec;
        boost::json::value body = boost::json::parse(in.body, ec);
        if (ec)
            throw boost::system::system_error(gw::gateway_error::bad_message,
                                              in.path + ": body is not JSON: " + ec.message());
        const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        std::vector<akv::queue::new_job> jobs;
        auto add = [&](boost::json::value& v) {
            if (!v.is_object())
                throw boost::system::system_error(
                    gw::gateway_error::bad_message,
                    in.path + ": expected a JSON object or an array of objects");
            if (!v.get_object().contains("received_ms")) v.get_object()["received_ms"] = now_ms;
            // Nobody awaits a webhook's job (the sender got its 202): no result is kept, so a
            // busy webhook does not fill Redis with an hour of results. Failures keep theirs.
            akv::queue::job_options o;
            o.result_ttl = std::chrono::milliseconds(0);
            jobs.push_back({boost::json::serialize(v), o});
        };
        if (body.is_array()) {
            for (auto& v : body.get_array())
                add(v);
        } else {
            add(body);
        }
        std::vector<std::string> ids = co_await queue->enqueue_bulk(jobs);
        gw::webhook_reply reply;
        reply.status = 202;
        boost::json::array list;
        for (auto& id : ids)
            list.emplace_back(std::move(id));
        reply.body = boost::json::serialize(
            boost::json::object{{"queued", list.size()}, {"ids", std::move(list)}});
        co_return reply;
    };
}

std::string random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size()));
    std::string out;
    for (unsigned char c : raw)
        out += fmt::format("{:02x}", c);
    return out;
}

} // namespace

int main(int argc, char** argv) {
    auto cl = command_line();
    flags f;
    if (auto done = akv::app::start(cl, argc, argv, [&] { f = parse(cl); })) return *done;
    if (f.demo) {
        if (f.opts.token_secret.empty()) f.opts.token_secret = random_hex(32);
        if (f.opts.api_key.empty()) f.opts.api_key = random_hex(16);
        bool has_demo_history = false;
        for (const auto& r : f.opts.history)
            has_demo_history |= gw::pattern_matches(r.pattern, "demo");
        if (!has_demo_history) f.opts.history.push_back({"demo*", 1000, std::chrono::seconds(0)});
    }

    int failure = akv::app::exit_ok;
    const auto target = akv::app::open_redis(cl, "akv-gateway", failure);
    if (!target) return failure;
    if (target->embedded())
        spdlog::info("started a private redis-server on port {} (data in {})",
                     target->server()->port(), target->server()->data_dir());
    akv::config cfg = target->config();
    cfg.client_name = "akv-gateway";

    asio::io_context io(1);
    akv::client redis(io.get_executor(), cfg);
    for (const auto& [path, queue] : f.webhooks) {
        try {
            f.opts.webhooks[path] =
                enqueue_webhook(std::make_shared<akv::queue::producer>(redis, queue));
        } catch (const std::exception& e) {
            spdlog::error("--webhook {}={}: {}", path, queue, e.what());
            return akv::app::exit_usage;
        }
    }
    std::unique_ptr<gw::server> server;
    std::unique_ptr<akv::console::sampler> sampler;
    if (f.console) {
        // The console's live view subscribes with tokens it mints: a secret is needed, and a
        // random one lets in no one else.
        if (f.opts.token_secret.empty()) f.opts.token_secret = random_hex(32);
        auto figures = [&server] { return server ? server->snapshot() : gw::stats{}; };
        // Called only while io runs, by then the server is made.
        auto busiest = [&server](std::size_t n) { return server->channel_counts(n); };
        akv::console::sampler_options so;
        so.channel_prefix = f.opts.channel_prefix;
        so.gateway_stats = figures;
        so.gateway_channels = busiest;
        sampler = std::make_unique<akv::console::sampler>(redis, so);
        akv::console::options co;
        co.token_secret = f.opts.token_secret;
        co.password = f.console_password;
        co.gateway_stats = figures;
        co.gateway_channels = busiest;
        co.live_channel = so.channel;
        f.opts.routes["/console"] = akv::console::api(redis, co);
    }
    try {
        server = std::make_unique<gw::server>(redis, f.opts);
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return akv::app::exit_usage;
    }
    // The server has its own copies. These hold the client by reference, and f outlives it.
    f.opts.routes.clear();
    f.opts.webhooks.clear();
    // Django Channels groups: a client of their own, since the bridge subscribes (the server
    // holds the first client's subscriber).
    std::unique_ptr<akv::client> channels_redis;
    std::unique_ptr<gw::channels_bridge> channels;
    if (!f.channels.groups.empty() || !f.channels.forwards.empty()) {
        akv::config channels_cfg = cfg;
        channels_cfg.client_name = "akv-gateway-channels";
        channels_redis = std::make_unique<akv::client>(io.get_executor(), channels_cfg);
        try {
            channels = std::make_unique<gw::channels_bridge>(*channels_redis, server->get_options(),
                                                             f.channels);
        } catch (const std::exception& e) {
            spdlog::error("{}", e.what());
            return akv::app::exit_usage;
        }
    }

    int status = 0;
    asio::co_spawn(io, redis.run(), [](std::exception_ptr) {});
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int sig) {
        if (ec) return;
        spdlog::info("signal {}: closing sessions", sig);
        if (sampler) sampler->stop();
        if (channels) channels->stop();
        server->stop();
    });
    if (sampler) asio::co_spawn(io, sampler->run(), [](std::exception_ptr) {});
    // The bridge counts what it skips; the operator hears of it here, at most every 5 s.
    asio::steady_timer channels_report(io);
    bool channels_ended = false;
    // (Outlives the coroutine it makes: the frame reads its captures through it.)
    auto report = [&]() -> asio::awaitable<void> {
        std::uint64_t skipped = 0, errors = 0, dropped = 0;
        while (!channels_ended) {
            channels_report.expires_after(std::chrono::seconds(5));
            co_await channels_report.async_wait(asio::as_tuple(asio::use_awaitable));
            const gw::channels_stats s = channels->stats();
            if (s.skipped == skipped && s.redis_errors == errors && s.dropped == dropped) continue;
            spdlog::warn("Django Channels: {} messages skipped, {} dropped behind, {} Redis "
                         "errors so far; the last: {}",
                         s.skipped, s.dropped, s.redis_errors, s.last_error);
            skipped = s.skipped;
            errors = s.redis_errors;
            dropped = s.dropped;
        }
    };
    if (channels) {
        asio::co_spawn(io, channels_redis->run(), [](std::exception_ptr) {});
        asio::co_spawn(io, channels->run(), [&](std::exception_ptr) {
            channels_ended = true;
            channels_report.cancel();
            channels_redis->cancel();
        });
        asio::co_spawn(io, report(), asio::detached);
    }
    asio::co_spawn(io, server->run(), [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("{}", ex.what());
            }
            status = 1;
        }
        if (sampler) sampler->stop();
        if (channels) channels->stop();
        signals.cancel();
        redis.cancel();
    });
    // Announce once bound (the port may have been 0).
    bool announced = false;
    while (!io.stopped()) {
        io.run_one();
        if (!announced && server->listening()) {
            announced = true;
            const std::string scheme = f.opts.tls_cert_file.empty() ? "http" : "https";
            const std::string base =
                fmt::format("{}://{}:{}", scheme, f.opts.address, server->port());
            std::printf("akv-gateway listening on %s\n", base.c_str());
            if (channels) {
                for (const auto& g : f.channels.groups)
                    spdlog::info("Django Channels group {} -> gateway channel {}", g, g);
                for (const auto& [channel, group] : f.channels.forwards)
                    spdlog::info("gateway channel {} -> Django Channels group {}", channel, group);
            }
            if (f.demo) {
                gw::token_claims c;
                c.subject = "demo";
                c.expires = std::time(nullptr) + 24 * 3600;
                c.channels = {"demo*"};
                c.publish = {"demo*"};
                std::printf("demo page: %s/?token=%s\n", base.c_str(),
                            gw::sign_token(c, f.opts.token_secret).c_str());
            }
            std::fflush(stdout);
        }
    }
    return status;
}
