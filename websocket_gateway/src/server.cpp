// The gateway server: accept loop, HTTP routes, WebSocket upgrade into sessions, shutdown.
#include "assets.hpp"
#include "protocol.hpp"
#include "server_state.hpp"
#include "upgrade.hpp"

#include <akv/gateway/publish.hpp>
#include <akv/gateway/server.hpp>
#include <akv/gateway/token.hpp>

#include <akv/metrics/client_metrics.hpp>
#include <akv/response.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>


#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <list>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <variant>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace akv::gateway {

namespace http = boost::beast::http;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using detail::tuple_awaitable;
using tcp = asio::ip::tcp;

namespace {

using response_t = http::response<http::string_body>;

response_t text_response(http::status status, std::string body,
                         std::string_view type = "text/plain; charset=utf-8") {
    response_t res{status, 11};
    res.set(http::field::content_type, type);
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(body);
    return res;
}

response_t json_error(http::status status, std::string_view message) {
    return text_response(status, "{" + protocol::field("error", message) + "}",
                         "application/json");
}

std::string_view content_type_for(const std::filesystem::path& p) {
    const std::string ext = p.extension().string();
    if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
    if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
    if (ext == ".css") return "text/css; charset=utf-8";
    if (ext == ".json") return "application/json";
    if (ext == ".svg") return "image/svg+xml";
    if (ext == ".png") return "image/png";
    if (ext == ".ico") return "image/x-icon";
    if (ext == ".txt") return "text/plain; charset=utf-8";
    return "application/octet-stream";
}

// A file below `root` for the URL path, or nullopt (no "..", no hidden files).
std::optional<std::string> read_static(const std::string& root, std::string_view path) {
    if (root.empty() || path.empty() || path[0] != '/') return std::nullopt;
    std::string rel(path.substr(1));
    if (rel.empty()) rel = "index.html";
    if (rel.find("..") != std::string::npos || rel.find("/.") != std::string::npos || rel[0] == '.' ||
        rel.find('\\') != std::string::npos || rel.find('\0') != std::string::npos)
        return std::nullopt;
    std::ifstream in(std::filesystem::path(root) / rel, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream body;
    body << in.rdbuf();
    return body.str();
}

// The host[:port] of an Origin ("https://a.example:8443" -> "a.example:8443").
std::string_view origin_host(std::string_view origin) {
    const auto scheme = origin.find("://");
    if (scheme != std::string_view::npos) origin.remove_prefix(scheme + 3);
    return origin;
}

void check_options(const options& o) {
    auto bad = [](const std::string& what) {
        throw boost::system::system_error(make_error_code(gateway_error::bad_options),
                                          "gateway options: " + what);
    };
    if (o.max_frame < 64) bad("max_frame must be at least 64 bytes");
    if (o.max_rate <= 0 || o.max_burst < 1) bad("max_rate must be > 0 and max_burst >= 1");
    if (o.max_channels == 0) bad("max_channels must be at least 1");
    if (o.send_queue == 0) bad("send_queue must be at least 1");
    if (o.max_sessions == 0) bad("max_sessions must be at least 1");
    if (o.threads == 0 || o.threads > 256) bad("threads must be 1 to 256");
    if (o.tls_cert_file.empty() != o.tls_key_file.empty())
        bad("TLS needs both a certificate and a key file");
    for (const auto& r : o.history)
        if (r.pattern.empty()) bad("a history rule needs a channel pattern");
    for (const auto& r : o.presence)
        if (r.pattern.empty()) bad("a presence rule needs a channel pattern");
    if (o.presence_ttl < std::chrono::seconds(1)) bad("presence_ttl must be at least 1 s");
    if (o.proxy.timeout <= std::chrono::milliseconds(0)) bad("proxy.timeout must be positive");
    if (o.proxy.max_reply < 64) bad("proxy.max_reply must be at least 64 bytes");
    if (o.proxy.breaker_failures == 0) bad("proxy.breaker_failures must be at least 1");
}

// A process's tag in front of its client ids: ids stay distinct across gateway processes
// (presence keeps them in Redis).
std::string process_tag() {
    std::random_device rd;
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
    return buf;
}

// A worker that is not the hub's: an io_context and its thread.
struct worker_thread {
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
    std::thread thread;
};

} // namespace

struct server::impl {
    impl(client& redis, options o)
        : opts(std::move(o))
        , state(redis, opts)
        , acceptor(redis.get_executor())
        , stop_signal(redis.get_executor())
        , ping_timer(redis.get_executor()) {
        check_options(opts);
        state.id_prefix = process_tag() + ".";
        state.workers.push_back(std::make_unique<detail::worker>(0, redis.get_executor(), state));
        for (std::size_t i = 1; i < opts.threads; ++i) {
            threads.push_back(std::make_unique<worker_thread>());
            state.workers.push_back(std::make_unique<detail::worker>(
                i, threads.back()->io.get_executor(), state));
        }
        http_sockets.resize(opts.threads);
        stop_signal.expires_at(asio::steady_timer::time_point::max());
        if (!opts.tls_cert_file.empty()) {
            tls.emplace(ssl::context::tls_server);
            try {
                tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                 ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                 ssl::context::no_tlsv1_1);
                tls->use_certificate_chain_file(opts.tls_cert_file);
                tls->use_private_key_file(opts.tls_key_file, ssl::context::pem);
            } catch (const boost::system::system_error& e) {
                throw boost::system::system_error(
                    make_error_code(gateway_error::bad_tls),
                    "gateway TLS: " + opts.tls_cert_file + " / " + opts.tls_key_file + ": " +
                        e.code().message());
            }
        }
    }

    options opts;
    detail::server_state state;
    std::vector<std::unique_ptr<worker_thread>> threads; // workers 1..N-1
    tcp::acceptor acceptor;
    std::optional<ssl::context> tls;
    asio::steady_timer stop_signal;
    asio::steady_timer ping_timer;
    // Per worker (its thread only): connections not upgraded (yet), closed on stop.
    std::vector<std::list<tcp::socket*>> http_sockets;
    std::atomic<std::size_t> connections{0};
    std::size_t tasks = 0; // accept loop and pinger
    std::size_t next_worker = 0;
    std::uint16_t bound_port = 0;
    std::atomic<bool> listening{false};
    std::atomic<bool> stopping{false};
    bool threads_running = false; // the workers' threads (hub's executor)
    // steady_clock ticks of the last PING answered
    std::atomic<std::chrono::steady_clock::rep> redis_ok_at{0};

    ~impl() {
        stop_threads();
        if (spare_fd >= 0) ::close(spare_fd);
    }

    // One descriptor held in reserve: out of descriptors, the gateway gives it up to accept the
    // connection waiting in the backlog and refuse it at once (503), instead of leaving the
    // client hanging there, and keeps serving the sessions it has.
    int spare_fd = -1;
    void reserve_descriptor() {
        if (spare_fd < 0) spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    void refuse_for_descriptors() {
        if (spare_fd >= 0) ::close(spare_fd);
        spare_fd = -1;
        const int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr,
                                 SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            static constexpr std::string_view refusal =
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                "Content-Length: 50\r\nConnection: close\r\n\r\n"
                "{\"error\":\"the gateway is out of file descriptors\"}";
            static_assert(refusal.size() - refusal.find("\r\n\r\n") - 4 == 50);
            (void)::send(fd, refusal.data(), refusal.size(), MSG_NOSIGNAL);
            ::close(fd);
            detail::worker_counters::add(worker_at(0).counters.refused_total);
        }
        reserve_descriptor();
    }

    void stop_threads() {
        for (auto& t : threads) t->guard.reset();
        for (auto& t : threads)
            if (t->thread.joinable()) t->thread.join();
    }

    detail::worker& worker_at(std::size_t i) { return *state.workers[i]; }

    // Runs `f` on worker `w`'s executor (at once for the hub's own worker).
    template <class F> void on_worker(detail::worker& w, F f) {
        if (w.on_hub_executor())
            f();
        else
            asio::post(w.get_executor(), std::move(f));
    }

    void changed() { state.changed.cancel(); }

    // Waits until `done()` or `deadline`; true if done.
    template <class Done>
    asio::awaitable<bool> wait_until(Done done, std::chrono::steady_clock::time_point deadline) {
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) co_return false;
            state.changed.expires_at(deadline);
            co_await state.changed.async_wait(tuple_awaitable);
        }
        co_return true;
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            // Round robin over the workers: the socket is made on the worker's executor, and so
            // is everything of its connection.
            detail::worker& w = worker_at(next_worker++ % state.workers.size());
            auto [ec, sock] = co_await acceptor.async_accept(w.get_executor(), tuple_awaitable);
            if (stopping) break;
            if (ec == asio::error::no_descriptors || ec.value() == ENFILE) {
                refuse_for_descriptors();
                if (spare_fd >= 0) continue;
            }
            if (ec) {
                if (ec == asio::error::operation_aborted) break;
                // Out of descriptors with none in reserve, and the like: breathe, then go on.
                asio::steady_timer t(state.redis.get_executor());
                t.expires_after(std::chrono::milliseconds(50));
                co_await t.async_wait(tuple_awaitable);
                continue;
            }
            beast::error_code ignored;
            sock.set_option(tcp::no_delay(true), ignored);
            connections.fetch_add(1, std::memory_order_relaxed);
            asio::co_spawn(w.get_executor(), connection(std::move(sock), w),
                           [this, &w](std::exception_ptr) {
                               connections.fetch_sub(1, std::memory_order_relaxed);
                               w.changed();
                           });
        }
        --tasks;
        changed();
    }

    static request::options ping_options() {
        request::options o;
        o.timeout = std::chrono::milliseconds(1000);
        return o;
    }

    asio::awaitable<bool> ping_now() {
        request req(ping_options());
        req.push("PING");
        response<std::string> resp;
        try {
            co_await state.redis.exec(req, resp);
        } catch (const boost::system::system_error&) {
            co_return false;
        }
        if (std::get<0>(resp).has_error()) co_return false;
        redis_ok_at.store(std::chrono::steady_clock::now().time_since_epoch().count());
        co_return true;
    }

    asio::awaitable<void> pinger() {
        while (!stopping) {
            const auto start = std::chrono::steady_clock::now();
            request req(ping_options());
            req.push("PING");
            response<std::string> resp;
            boost::system::error_code ec;
            try {
                co_await state.redis.exec(req, resp);
            } catch (const boost::system::system_error& e) {
                ec = e.code();
            }
            if (!ec && !std::get<0>(resp).has_error()) {
                const auto now = std::chrono::steady_clock::now();
                redis_ok_at.store(now.time_since_epoch().count());
                state.redis_latency_ms.store(
                    std::chrono::duration<double, std::milli>(now - start).count());
            }
            if (stopping) break;
            ping_timer.expires_after(std::chrono::seconds(2));
            co_await ping_timer.async_wait(tuple_awaitable);
        }
        --tasks;
        changed();
    }

    asio::awaitable<void> presence_refresher() {
        co_await state.presence.run();
        --tasks;
        changed();
    }

    // A connection's socket stays in http_sockets (closed by stop()) while it speaks plain
    // HTTP; an upgraded one is shut down through its session instead.
    class http_registration {
    public:
        http_registration(std::list<tcp::socket*>& list, tcp::socket& socket)
            : list_(list)
            , at_(list.insert(list.end(), &socket)) {}
        ~http_registration() { drop(); }
        http_registration(const http_registration&) = delete;
        http_registration& operator=(const http_registration&) = delete;
        void drop() {
            if (on_) list_.erase(at_);
            on_ = false;
        }

    private:
        std::list<tcp::socket*>& list_;
        std::list<tcp::socket*>::iterator at_;
        bool on_ = true;
    };

    // What a plain-TCP connection becomes after an HTTP request that starts a session: the
    // session runs once the HTTP machinery (the stream, the parser, its buffer, those coroutine
    // frames) is gone, which keeps an idle session small.
    struct handoff {
        tcp::socket socket;
        std::unique_ptr<detail::upgrade_request> upgrade; // a WebSocket, else ...
        detail::stream_request stream;                    // ... SSE or HTTP streaming
    };

    asio::awaitable<void> connection(tcp::socket sock, detail::worker& w) {
        try {
            if (tls) {
                co_await connection_tls(std::move(sock), w);
                co_return;
            }
            std::optional<handoff> next = co_await connection_tcp(std::move(sock), w);
            if (!next) co_return;
            if (next->upgrade)
                co_await detail::run_websocket(next->socket, std::move(next->upgrade), w, state);
            else
                co_await detail::run_event_stream(next->socket, std::move(next->stream), w, state);
        } catch (...) {
            // A connection's failure is its own.
        }
    }

    asio::awaitable<std::optional<handoff>> connection_tcp(tcp::socket sock, detail::worker& w) {
        beast::tcp_stream stream(std::move(sock));
        http_registration registration(http_sockets[w.index()], stream.socket());
        co_return co_await serve(stream, registration, w);
    }

    asio::awaitable<void> connection_tls(tcp::socket sock, detail::worker& w) {
        beast::ssl_stream<beast::tcp_stream> stream(std::move(sock), *tls);
        http_registration registration(http_sockets[w.index()],
                                       beast::get_lowest_layer(stream).socket());
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
        auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, tuple_awaitable);
        detail::tls_layer layer(stream);
        if (!ec) co_await serve(layer, registration, w);
    }

    // Plain HTTP requests until one starts a session: over TCP, that one is handed back to
    // connection(); over TLS (whose stream cannot be handed on), it runs here.
    template <class Stream>
    asio::awaitable<std::optional<handoff>> serve(Stream& stream, http_registration& registration,
                                                  detail::worker& w) {
        constexpr bool tcp_stream = std::is_same_v<Stream, beast::tcp_stream>;
        beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(16 * 1024);
            parser.body_limit(opts.max_publish + 1024);
            beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
            auto [ec, n] = co_await http::async_read(stream, buffer, parser, tuple_awaitable);
            if (ec == http::error::body_limit) {
                response_t res = json_error(http::status::payload_too_large,
                                            "body over " + std::to_string(opts.max_publish) + " bytes");
                res.keep_alive(false);
                res.prepare_payload();
                co_await http::async_write(stream, res, tuple_awaitable);
                break;
            }
            if (ec) break;
            auto& req = parser.get();
            if (websocket::is_upgrade(req)) {
                std::optional<response_t> refusal = check_upgrade(req);
                if (refusal) {
                    detail::worker_counters::add(w.counters.refused_total);
                    refusal->keep_alive(false);
                    refusal->prepare_payload();
                    co_await http::async_write(stream, *refusal, tuple_awaitable);
                    break;
                }
                beast::get_lowest_layer(stream).expires_never();
                registration.drop(); // from now on shutdown goes through the session
                auto upgrade = std::make_unique<detail::upgrade_request>(parser.release());
                if constexpr (tcp_stream) {
                    // The bare socket: Beast's own timeouts cover the session, and tcp_stream's
                    // timer bookkeeping on every write is measurable at fan-out rates.
                    co_return handoff{stream.release_socket(), std::move(upgrade), {}};
                } else {
                    co_await detail::run_websocket(stream, std::move(upgrade), w, state);
                    co_return std::nullopt;
                }
            }
            auto streamed = stream_request_of(req);
            if (auto* refusal = std::get_if<response_t>(&streamed)) {
                if (refusal->result() != http::status::method_not_allowed)
                    detail::worker_counters::add(w.counters.refused_total);
                refusal->keep_alive(false);
                refusal->prepare_payload();
                co_await http::async_write(stream, *refusal, tuple_awaitable);
                break;
            }
            if (auto* start = std::get_if<detail::stream_request>(&streamed)) {
                beast::get_lowest_layer(stream).expires_never();
                registration.drop(); // from now on shutdown goes through the session
                if constexpr (tcp_stream) {
                    co_return handoff{stream.release_socket(), nullptr, std::move(*start)};
                } else {
                    co_await detail::run_event_stream(stream, std::move(*start), w, state);
                    co_return std::nullopt;
                }
            }
            response_t res = co_await route(req, w);
            res.keep_alive(req.keep_alive() && !stopping);
            res.prepare_payload();
            auto [wec, wn] = co_await http::async_write(stream, res, tuple_awaitable);
            if (wec || !res.keep_alive()) break;
        }
        beast::error_code ignored;
        beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
        co_return std::nullopt;
    }

    std::optional<response_t> check_upgrade(const http::request<http::string_body>& req) {
        const std::string_view target(req.target().data(), req.target().size());
        if (target.substr(0, target.find('?')) != "/ws")
            return json_error(http::status::not_found, "WebSocket sessions are at /ws");
        return check_session(req);
    }

    // What every transport's new session must pass: not stopping, under max_sessions, and a
    // browser's page from an allowed origin.
    std::optional<response_t> check_session(const http::request<http::string_body>& req) {
        if (stopping) return json_error(http::status::service_unavailable, "shutting down");
        if (state.open_sessions.load(std::memory_order_relaxed) >= opts.max_sessions)
            return json_error(http::status::service_unavailable, "too many sessions");
        if (!origin_allowed(req))
            return json_error(http::status::forbidden,
                              "origin not allowed: " + std::string(req[http::field::origin]));
        return std::nullopt;
    }

    bool origin_allowed(const http::request<http::string_body>& req) const {
        const auto origin = req.find(http::field::origin);
        if (origin == req.end()) return true; // not a browser
        const std::string_view o(origin->value().data(), origin->value().size());
        for (const auto& allowed : opts.allowed_origins)
            if (allowed == "*" || allowed == o) return true;
        if (opts.allowed_origins.empty()) {
            const auto host = req.find(http::field::host);
            return host != req.end() &&
                   origin_host(o) == std::string_view(host->value().data(), host->value().size());
        }
        return false;
    }

    // The Origin to echo in Access-Control-Allow-Origin: a browser's page from another allowed
    // origin may read the response (empty: none to echo).
    std::string cors_origin(const http::request<http::string_body>& req) const {
        const auto origin = req.find(http::field::origin);
        if (origin == req.end() || !origin_allowed(req)) return {};
        return std::string(origin->value());
    }

    // GET /connection/sse?connect=<connect message> (EventSource) or POST
    // /connection/http_stream with the connect message as its body. An EventSource that
    // reconnects on its own sends back the id of the last event it got (Last-Event-ID, the
    // positions reached): they become the connect message's "subs", so the server-side
    // channels resume from there.
    std::variant<std::monostate, response_t, detail::stream_request>
    stream_request_of(const http::request<http::string_body>& req) {
        const std::string_view full(req.target().data(), req.target().size());
        const std::string_view path = full.substr(0, full.find('?'));
        detail::stream_request out;
        if (path == "/connection/sse")
            out.kind = detail::stream_kind::sse;
        else if (path == "/connection/http_stream")
            out.kind = detail::stream_kind::http_stream;
        else
            return std::monostate{};
        const bool sse = out.kind == detail::stream_kind::sse;
        if (req.method() != (sse ? http::verb::get : http::verb::post))
            return json_error(http::status::method_not_allowed, sse ? "use GET" : "use POST");
        if (auto refusal = check_session(req)) return std::move(*refusal);
        if (sse) {
            auto url = boost::urls::parse_origin_form(full);
            if (!url) return json_error(http::status::bad_request, "the query string is not a URL's");
            auto it = url->params().find("connect");
            if (it == url->params().end() || !(*it).has_value)
                return json_error(http::status::bad_request,
                                  "connect=<the connect message as JSON> is required");
            out.connect = (*it).value;
        } else {
            out.connect = req.body();
        }
        if (out.connect.size() > opts.max_frame)
            return json_error(http::status::payload_too_large,
                              "the connect message is over " + std::to_string(opts.max_frame) +
                                  " bytes");
        if (auto last = req.find("Last-Event-ID"); last != req.end() && !last->value().empty()) {
            boost::system::error_code ec;
            json::value positions = json::parse(std::string_view(last->value()), ec);
            json::value connect = ec ? json::value() : json::parse(out.connect, ec);
            if (!positions.is_object())
                return json_error(http::status::bad_request,
                                  "Last-Event-ID is not the id of one of our events (a JSON "
                                  "object of positions)");
            if (ec || !connect.is_object())
                return json_error(http::status::bad_request, "the connect message is not a JSON object");
            connect.as_object()["subs"] = std::move(positions);
            out.connect = json::serialize(connect);
        }
        out.allow_origin = cors_origin(req);
        if (state.proxy.enabled(detail::proxy_kind::connect))
            out.forwarded = detail::forwarded_headers(req, opts.proxy);
        return out;
    }

    asio::awaitable<response_t> route(const http::request<http::string_body>& req,
                                      detail::worker& w) {
        const std::string_view full(req.target().data(), req.target().size());
        const std::string_view path = full.substr(0, full.find('?'));
        if (path == "/api/publish") {
            if (req.method() != http::verb::post)
                co_return json_error(http::status::method_not_allowed, "use POST");
            co_return co_await publish_api(req, w);
        }
        if (path == "/connection/emulation") {
            if (req.method() != http::verb::post)
                co_return json_error(http::status::method_not_allowed, "use POST");
            response_t res = emulation(req);
            if (std::string origin = cors_origin(req); !origin.empty()) {
                res.set(http::field::access_control_allow_origin, origin);
                res.set(http::field::vary, "Origin");
            }
            co_return res;
        }
        if (auto hook = opts.webhooks.find(std::string(path)); hook != opts.webhooks.end()) {
            if (req.method() != http::verb::post)
                co_return json_error(http::status::method_not_allowed, "use POST");
            co_return co_await webhook(req, hook->first, hook->second, w);
        }
        if (path != "/healthz" && path != "/metrics")
            if (const http_handler* h = route_for(path)) co_return co_await application(req, *h);
        if (req.method() != http::verb::get && req.method() != http::verb::head)
            co_return json_error(http::status::method_not_allowed, "use GET");
        if (path == "/healthz") {
            const std::chrono::steady_clock::time_point ok_at{
                std::chrono::steady_clock::duration(redis_ok_at.load())};
            bool ok = std::chrono::steady_clock::now() - ok_at < std::chrono::seconds(3);
            if (!ok) ok = co_await ping_now();
            co_return ok ? text_response(http::status::ok, "ok\n")
                         : text_response(http::status::service_unavailable, "redis unreachable\n");
        }
        if (path == "/metrics") {
            // Read on the hub's executor: the hub's figures are its own.
            std::string text = co_await asio::co_spawn(
                state.redis.get_executor(),
                [this]() -> asio::awaitable<std::string> { co_return metrics(); },
                asio::use_awaitable);
            co_return text_response(http::status::ok, std::move(text),
                                    "text/plain; version=0.0.4; charset=utf-8");
        }
        if (auto body = read_static(opts.static_dir, path)) {
            const std::filesystem::path p(path == "/" ? "/index.html" : std::string(path));
            co_return text_response(http::status::ok, std::move(*body), content_type_for(p));
        }
        if (const assets::file* f = assets::find(path))
            co_return text_response(http::status::ok, std::string(f->body), f->content_type);
        co_return json_error(http::status::not_found, "no such path: " + std::string(path));
    }

    // A streaming session's requests (POST /connection/emulation?session=KEY), one per line of
    // the body, in order, as if they had come in WebSocket frames.
    response_t emulation(const http::request<http::string_body>& req) {
        const std::string_view full(req.target().data(), req.target().size());
        auto url = boost::urls::parse_origin_form(full);
        std::string key;
        if (url)
            if (auto it = url->params().find("session"); it != url->params().end())
                key = (*it).value;
        if (key.empty())
            return json_error(http::status::bad_request,
                              "session=<the key of the streaming session> is required");
        std::vector<std::string> requests;
        const std::string_view body = req.body();
        for (std::size_t at = 0; at < body.size();) {
            std::size_t end = body.find('\n', at);
            if (end == std::string_view::npos) end = body.size();
            std::string_view line = body.substr(at, end - at);
            at = end + 1;
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.empty()) continue;
            if (line.size() > opts.max_frame)
                return json_error(http::status::payload_too_large,
                                  "a request is over " + std::to_string(opts.max_frame) + " bytes");
            requests.emplace_back(line);
        }
        if (requests.empty())
            return json_error(http::status::bad_request, "no request in the body (one JSON per line)");
        std::shared_ptr<detail::inbox> in = state.streams.find(key);
        if (!in)
            return json_error(http::status::not_found,
                              "no such streaming session (it ended, or the key is wrong)");
        if (!in->post(std::move(requests), max_emulated))
            return json_error(http::status::too_many_requests,
                              "the session has " + std::to_string(max_emulated) +
                                  " requests not yet handled: slow down");
        return text_response(http::status::ok, "{\"ok\":true}", "application/json");
    }

    // Requests a streaming session may have waiting: its reader's rate limit does the rest.
    static constexpr std::size_t max_emulated = 256;

    asio::awaitable<response_t> publish_api(const http::request<http::string_body>& req,
                                            detail::worker& w) {
        if (opts.api_key.empty())
            co_return json_error(http::status::forbidden, "the publish API is off (no API key set)");
        std::string_view key;
        if (auto a = req.find(http::field::authorization); a != req.end()) {
            std::string_view v(a->value().data(), a->value().size());
            if (v.substr(0, 7) == "apikey ") key = v.substr(7);
        } else if (auto x = req.find("X-API-Key"); x != req.end()) {
            key = std::string_view(x->value().data(), x->value().size());
        }
        if (key.empty() || !same_secret(key, opts.api_key))
            co_return json_error(http::status::unauthorized, "missing or wrong API key");
        boost::system::error_code ec;
        boost::json::value body = boost::json::parse(req.body(), ec);
        if (ec) co_return json_error(http::status::bad_request, "body is not JSON: " + ec.message());
        const boost::json::object* o = body.if_object();
        const boost::json::value* ch = o ? o->if_contains("channel") : nullptr;
        const boost::json::value* data = o ? o->if_contains("data") : nullptr;
        if (!ch || !ch->is_string())
            co_return json_error(http::status::bad_request, "body needs \"channel\" (a string)");
        if (!data) co_return json_error(http::status::bad_request, "body needs \"data\"");
        std::optional<position> at;
        std::string failure;
        http::status status = http::status::ok;
        try {
            std::string channel(ch->get_string());
            if (is_console_channel(channel))
                co_return json_error(http::status::forbidden,
                                     "channels under \"akv:console:\" are the console's own");
            std::string json = boost::json::serialize(*data);
            at = co_await publish(state.redis, opts, std::move(channel), std::move(json));
            detail::worker_counters::add(w.counters.published);
        } catch (const boost::system::system_error& e) {
            failure = protocol::describe(e);
            status = e.code() == gateway_error::too_large ? http::status::payload_too_large
                     : e.code().category() == gateway_category() ? http::status::bad_request
                                                                 : http::status::service_unavailable;
        }
        if (status != http::status::ok) co_return json_error(status, failure);
        co_return text_response(http::status::ok,
                                at ? "{" + protocol::field("offset", at->offset) + "," +
                                         protocol::field("epoch", at->epoch) + "}"
                                   : "{}",
                                "application/json");
    }

    asio::awaitable<response_t> webhook(const http::request<http::string_body>& req,
                                        const std::string& path, const webhook_handler& handler,
                                        detail::worker& w) {
        if (!opts.webhook_secret.empty()) {
            auto sig = req.find("X-Hub-Signature-256");
            const std::string_view header =
                sig == req.end() ? std::string_view{}
                                 : std::string_view(sig->value().data(), sig->value().size());
            if (!check_hub_signature(header, req.body(), opts.webhook_secret))
                co_return json_error(http::status::unauthorized,
                                     sig == req.end() ? "missing X-Hub-Signature-256"
                                                      : "X-Hub-Signature-256 does not match the body");
        }
        webhook_request in;
        in.path = path;
        in.body = req.body();
        if (auto ct = req.find(http::field::content_type); ct != req.end())
            in.content_type = std::string(ct->value().data(), ct->value().size());
        webhook_reply out;
        std::string failure;
        http::status status = http::status::ok;
        try {
            // The app's handler runs on the client's executor, whatever thread took the request.
            out = co_await asio::co_spawn(state.redis.get_executor(), handler(std::move(in)),
                                          asio::use_awaitable);
            detail::worker_counters::add(w.counters.webhooks);
        } catch (const boost::system::system_error& e) {
            failure = protocol::describe(e);
            status = e.code().category() == gateway_category() ? http::status::bad_request
                                                              : http::status::service_unavailable;
        } catch (const std::exception& e) {
            failure = e.what();
            status = http::status::service_unavailable;
        }
        if (status != http::status::ok) co_return json_error(status, failure);
        co_return text_response(static_cast<http::status>(out.status), std::move(out.body),
                                "application/json");
    }

    static bool same_secret(std::string_view a, std::string_view b) {
        if (a.size() != b.size()) return false;
        unsigned char diff = 0;
        for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
        return diff == 0;
    }

    // The application's route for `path`: the longest prefix that is the path or a parent.
    const http_handler* route_for(std::string_view path) const {
        const http_handler* best = nullptr;
        std::size_t best_size = 0;
        for (const auto& [prefix, handler] : opts.routes) {
            const bool under =
                path == prefix ||
                (path.starts_with(prefix) && (prefix.ends_with('/') || path[prefix.size()] == '/'));
            if (under && prefix.size() >= best_size) {
                best = &handler;
                best_size = prefix.size();
            }
        }
        return best;
    }

    // An application's endpoint, run on the Redis client's executor like the hub's work.
    asio::awaitable<response_t> application(const http::request<http::string_body>& req,
                                            const http_handler& handler) {
        http_request in;
        in.method = std::string(req.method_string());
        const std::string_view full(req.target().data(), req.target().size());
        const auto q = full.find('?');
        in.path = std::string(full.substr(0, q));
        if (q != std::string_view::npos) in.query = std::string(full.substr(q + 1));
        in.body = req.body();
        for (const auto& field : req) {
            std::string name(field.name_string());
            std::transform(name.begin(), name.end(), name.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            in.headers[name] = std::string(field.value());
        }
        http_reply out;
        std::string failure;
        try {
            out = co_await asio::co_spawn(state.redis.get_executor(), handler(std::move(in)),
                                          asio::use_awaitable);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (!failure.empty()) co_return json_error(http::status::internal_server_error, failure);
        response_t res = text_response(static_cast<http::status>(out.status), std::move(out.body),
                                       out.content_type);
        for (const auto& [name, value] : out.headers)
            res.set(name, value);
        if (req.method() == http::verb::head) res.body().clear(); // no body on HEAD
        co_return res;
    }

    std::string metrics() const {
        const stats s = snapshot();
        std::string out;
        auto metric = [&](const char* name, const char* type, const char* help, auto value) {
            std::ostringstream v;
            v << value;
            out += std::string("# HELP akv_gateway_") + name + " " + help + "\n# TYPE akv_gateway_" +
                   name + " " + type + "\nakv_gateway_" + name + " " + v.str() + "\n";
        };
        metric("sessions", "gauge", "Open WebSocket sessions.", s.sessions);
        metric("channels", "gauge", "Redis channels subscribed.", s.channels);
        metric("sessions_total", "counter", "Sessions accepted.", s.sessions_total);
        metric("refused_total", "counter", "Upgrades or connects refused.", s.refused_total);
        metric("messages_in_total", "counter", "Messages received from Redis.", s.messages_in);
        metric("messages_out_total", "counter", "Messages sent to sessions.", s.messages_out);
        metric("frames_out_total", "counter", "WebSocket frames sent.", s.frames_out);
        metric("dropped_total", "counter", "Messages dropped by full queues.", s.dropped);
        metric("slow_disconnects_total", "counter", "Sessions closed as slow consumers.",
               s.slow_disconnects);
        metric("published_total", "counter", "Messages published through the gateway.",
               s.published);
        metric("webhooks_total", "counter", "Webhook requests handled.", s.webhooks);
        metric("recovered_total", "counter",
               "Messages read back from history after a Redis reconnect.", s.recovered);
        metric("redis_latency_seconds", "gauge", "Last Redis PING round trip.",
               s.redis_latency_ms / 1000.0);
        proxy_metrics(out);
        // The Redis client's own: connections, requests, the near cache when it is on.
        akv::metrics::exposition client;
        akv::metrics::write_client_metrics(client, state.redis);
        return out + client.text();
    }

    // The backend proxies' counters, one series per configured proxy.
    void proxy_metrics(std::string& out) const {
        using detail::proxy_kind;
        const proxy_kind kinds[] = {proxy_kind::connect, proxy_kind::subscribe,
                                    proxy_kind::publish, proxy_kind::rpc};
        auto family = [&](const char* name, const char* type, const char* help, auto value) {
            bool head = false;
            for (proxy_kind k : kinds) {
                if (!state.proxy.enabled(k)) continue;
                if (!head)
                    out += std::string("# HELP akv_gateway_proxy_") + name + " " + help +
                           "\n# TYPE akv_gateway_proxy_" + name + " " + type + "\n";
                head = true;
                out += std::string("akv_gateway_proxy_") + name + "{proxy=\"" +
                       detail::name_of(k) + "\"} " + std::to_string(value(state.proxy.stats(k))) +
                       "\n";
            }
        };
        using counters = detail::backend_proxy::counters;
        family("requests_total", "counter", "Requests sent to the application's proxy.",
               [](const counters& c) { return c.requests.load(); });
        family("rejected_total", "counter", "Requests the application refused.",
               [](const counters& c) { return c.rejected.load(); });
        family("failures_total", "counter",
               "Requests that failed: timeout, connection, HTTP status, bad reply.",
               [](const counters& c) { return c.failures.load(); });
        family("short_circuited_total", "counter",
               "Requests failed at once while the circuit breaker was open.",
               [](const counters& c) { return c.short_circuited.load(); });
        family("circuit_open", "gauge", "1 while the circuit breaker keeps the proxy unasked.",
               [](const counters& c) { return c.open.load() ? 1 : 0; });
    }

    // On the hub's executor.
    stats snapshot() const {
        stats s;
        const auto get = [](const std::atomic<std::uint64_t>& c) {
            return c.load(std::memory_order_relaxed);
        };
        for (const auto& w : state.workers) {
            const auto& c = w->counters;
            s.sessions += get(c.sessions);
            s.sessions_total += get(c.sessions_total);
            s.refused_total += get(c.refused_total);
            s.messages_out += get(c.messages_out);
            s.frames_out += get(c.frames_out);
            s.dropped += get(c.dropped);
            s.slow_disconnects += get(c.slow_disconnects);
            s.published += get(c.published);
            s.webhooks += get(c.webhooks);
        }
        s.channels = state.hub.channels();
        s.messages_in = state.hub.messages_in();
        s.dropped += state.hub.dropped();
        s.recovered = state.hub.recovered();
        s.redis_latency_ms = state.redis_latency_ms.load();
        return s;
    }

    // On the hub's executor. Each worker counts its own sessions on its own thread (a post there
    // and back): only while run() has the threads going, else a post would never come back
    // (and only worker 0 could have sessions anyway).
    asio::awaitable<std::vector<channel_count>> channel_counts(std::size_t limit) {
        using counted = std::vector<std::pair<std::string, std::size_t>>;
        std::unordered_map<std::string, std::uint64_t> subscribers;
        for (auto& w : state.workers) {
            counted part;
            if (w->on_hub_executor())
                part = w->subscriber_counts();
            else if (threads_running)
                part = co_await asio::co_spawn(
                    w->get_executor(),
                    [&w = *w]() -> asio::awaitable<counted> { co_return w.subscriber_counts(); },
                    asio::use_awaitable);
            for (auto& [name, n] : part)
                subscribers[name] += n;
        }
        std::vector<channel_count> all;
        all.reserve(subscribers.size());
        for (auto& [name, n] : subscribers)
            all.push_back({name, n, std::nullopt});
        const auto more = [](const channel_count& a, const channel_count& b) {
            return a.subscribers != b.subscribers ? a.subscribers > b.subscribers : a.name < b.name;
        };
        const std::size_t shown = std::min(limit, all.size());
        std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(shown), all.end(),
                          more);
        all.resize(shown);
        co_await presence_counts(all);
        co_return all;
    }

    // The presence count of every channel of `channels` that keeps presence, asked all at once:
    // the client pipelines the calls into a few writes (one round trip, not one each).
    asio::awaitable<void> presence_counts(std::vector<channel_count>& channels) {
        std::size_t left = 1; // this frame's own, so the count reaches 0 only after the loop
        std::exception_ptr failure;
        asio::steady_timer all_done(state.redis.get_executor(),
                                    asio::steady_timer::time_point::max());
        const auto finished = [&](std::exception_ptr e) {
            if (e && !failure) failure = e;
            if (--left == 0) all_done.cancel();
        };
        for (auto& c : channels) {
            const presence_rule* rule = presence::rule_for(opts.presence, c.name);
            if (!rule) continue;
            ++left;
            asio::co_spawn(
                state.redis.get_executor(),
                [this, &c, announce = rule->join_leave]() -> asio::awaitable<void> {
                    c.present = static_cast<std::uint64_t>(co_await presence::count(
                        state.redis, opts.channel_prefix + c.name, announce));
                },
                finished);
        }
        finished(nullptr);
        // The calls write into this frame: it waits for every one of them, whatever wakes it.
        while (left > 0)
            co_await all_done.async_wait(tuple_awaitable);
        if (failure) std::rethrow_exception(failure);
    }

    void bind() {
        beast::error_code ec;
        const auto address = asio::ip::make_address(opts.address, ec);
        if (ec)
            throw boost::system::system_error(make_error_code(gateway_error::bind_failed),
                                              "gateway: bad listen address '" + opts.address + "'");
        const tcp::endpoint ep(address, opts.port);
        auto fail = [&](const char* step) {
            throw boost::system::system_error(
                make_error_code(gateway_error::bind_failed),
                "gateway: cannot listen on " + opts.address + ":" + std::to_string(opts.port) +
                    ": " + ec.message() + " (" + step + ")");
        };
        acceptor.open(ep.protocol(), ec);
        if (ec) fail("open");
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
        acceptor.bind(ep, ec);
        if (ec) fail("bind");
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) fail("listen");
        bound_port = acceptor.local_endpoint().port();
        reserve_descriptor();
        listening = true;
    }

    asio::awaitable<void> run() {
        bind();
        for (auto& t : threads) t->thread = std::thread([&io = t->io] { io.run(); });
        threads_running = true;
        auto ex = state.redis.get_executor();
        tasks = 3;
        asio::co_spawn(ex, accept_loop(), asio::detached);
        asio::co_spawn(ex, pinger(), asio::detached);
        asio::co_spawn(ex, presence_refresher(), asio::detached);
        while (!stopping) {
            stop_signal.expires_at(asio::steady_timer::time_point::max());
            co_await stop_signal.async_wait(tuple_awaitable);
        }
        // Shutdown: no new connections; sessions get 1001 after their queues; idle HTTP goes.
        const auto deadline = std::chrono::steady_clock::now() + opts.shutdown_grace;
        beast::error_code ignored;
        acceptor.close(ignored);
        ping_timer.cancel();
        state.presence.stop();
        // Each worker's connections on its own thread.
        for (auto& w : state.workers)
            on_worker(*w, [this, &w = *w] {
                beast::error_code e;
                for (tcp::socket* s : http_sockets[w.index()]) s->close(e);
                for (auto* s : std::vector(w.sessions)) s->shut_down();
            });
        // Sessions outlive their connection's coroutine (session.hpp): both must be gone.
        const auto none_left = [this] {
            return connections.load() == 0 && state.live_sessions.load() == 0;
        };
        // Named first: g++ 12 miscompiles `if (!co_await ...)`.
        const bool drained = co_await wait_until(none_left, deadline);
        if (!drained) {
            for (auto& w : state.workers)
                on_worker(*w, [this, &w = *w] {
                    beast::error_code e;
                    for (auto* s : std::vector(w.sessions)) s->force_close();
                    for (tcp::socket* s : http_sockets[w.index()]) s->close(e);
                });
            co_await wait_until(none_left,
                                std::chrono::steady_clock::now() + std::chrono::seconds(5));
        }
        state.hub.stop();
        co_await wait_until([this] {
            return tasks == 0 && state.hub.drained() && state.presence.idle();
        },
                            std::chrono::steady_clock::now() + std::chrono::seconds(5));
        threads_running = false;
        stop_threads();
        listening = false;
    }
};

server::server(client& redis, options opts)
    : impl_(std::make_unique<impl>(redis, std::move(opts))) {}

server::~server() = default;

asio::awaitable<void> server::run() { co_await impl_->run(); }

void server::stop() {
    if (impl_->stopping) return;
    impl_->stopping = true;
    impl_->stop_signal.cancel();
}

std::uint16_t server::port() const noexcept { return impl_->bound_port; }
bool server::listening() const noexcept { return impl_->listening; }
stats server::snapshot() const { return impl_->snapshot(); }
asio::awaitable<std::vector<channel_count>> server::channel_counts(std::size_t limit) const {
    co_return co_await impl_->channel_counts(limit);
}
const options& server::get_options() const noexcept { return impl_->opts; }

} // namespace akv::gateway
