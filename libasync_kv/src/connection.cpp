#include <akv/connection.hpp>
#include <akv/detail/admission.hpp>
#include <akv/detail/complete_on.hpp>
#include <akv/detail/handshake.hpp>
#include <akv/detail/liveness.hpp>
#include <akv/detail/multiplexer.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>

#include <deque>
#include <optional>
#include <variant>

namespace akv {

using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

asio::awaitable<bool> cancelled() {
    auto state = co_await asio::this_coro::cancellation_state;
    co_return state.cancelled() != asio::cancellation_type::none;
}

} // namespace

struct connection::impl {
    // A caller's exec(), pooled: a steady state of requests allocates nothing here.
    struct exec_op final : detail::pending_request {
        explicit exec_op(impl& o)
            : owner(o)
            , timer(o.ex) {}
        impl& owner;
        asio::any_completion_handler<exec_signature> handler;
        executor_type handler_ex;
        asio::steady_timer timer;
        asio::cancellation_slot slot;
        std::uint64_t generation = 0; // tells a stale timer or cancellation from a live one
        bool timer_armed = false;
        request::options override_options; // used when the caller gives its own

        void on_complete(error_code ec) override { owner.finish(*this, ec); }
    };

    // The connection's own requests (HELLO, health-check PING).
    struct internal_op final : detail::pending_request {
        bool in_queue = false;
        std::optional<error_code> outcome;
        void on_complete(error_code ec) override {
            in_queue = false;
            outcome = ec;
        }
    };

    impl(executor_type e, config c)
        : ex(std::move(e))
        , cfg(std::move(c))
        , socket(ex)
        , resolver(ex)
        , writer_wakeup(ex)
        , health_timer(ex)
        , backoff_timer(ex)
        , connect_timer(ex)
        , mux(cfg.resp_limits)
        , reconnect_wait(cfg.reconnect_wait_min, cfg.reconnect_wait_max,
                         static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(this))) {
        mux.set_push_handler([this](std::span<const resp::node> nodes, std::string_view msg) {
            on_push(nodes, msg);
        });
        if (cfg.use_tls) setup_tls();
        ping_req.push("PING");
        ping_op.req = &ping_req;
        ping_op.adapter = detail::make_adapter(ignore);
    }

    ~impl() {
        for (exec_op* op : all_ops)
            delete op;
    }

    // ---- exec
    exec_op& acquire() {
        if (free_ops.empty()) {
            all_ops.push_back(new exec_op(*this));
            return *all_ops.back();
        }
        exec_op* op = free_ops.back();
        free_ops.pop_back();
        return *op;
    }

    void exec_now(asio::any_completion_handler<exec_signature> h, executor_type handler_ex,
                  const request* req, detail::reply_adapter adapter,
                  const request::options* options) {
        const request::options& opts = options ? *options : req->get_options();
        auto fail = [&](error_code ec) {
            detail::complete_on(handler_ex, std::move(h), ec, std::size_t{0});
        };
        if (const error_code refused = detail::admit(*req, opts, adapter, stopped, connected))
            return fail(refused);

        exec_op& op = acquire();
        op.req = req;
        op.adapter = adapter;
        if (options) {
            op.override_options = *options;
            op.options = &op.override_options;
        } else {
            op.options = nullptr;
        }
        // swap, not move-assignment: Boost 1.81's any_completion_handler::operator=(&&)
        // copies from an lvalue and recurses without end (fixed in 1.82).
        op.handler.swap(h);
        op.handler_ex = std::move(handler_ex);
        const std::uint64_t generation = ++op.generation;

        auto timeout = opts.timeout;
        if (timeout.count() == 0) timeout = cfg.request_timeout;
        if (timeout.count() > 0) {
            op.timer_armed = true;
            op.timer.expires_after(timeout);
            op.timer.async_wait([&op, generation](error_code ec) {
                if (!ec && op.generation == generation) op.owner.mux.cancel(op, error::timeout);
            });
        }
        op.slot = asio::get_associated_cancellation_slot(op.handler);
        if (op.slot.is_connected()) {
            // Deferred: completing inside the slot's own handler would destroy it mid-call.
            op.slot.assign([&op, generation](asio::cancellation_type) {
                asio::post(op.owner.ex, [&op, generation] {
                    if (op.generation == generation)
                        op.owner.mux.cancel(op, asio::error::operation_aborted);
                });
            });
        }
        mux.add(op);
        wake_writer();
    }

    void finish(exec_op& op, error_code ec) {
        ++op.generation;
        if (op.slot.is_connected()) op.slot.clear();
        op.slot = {};
        if (op.timer_armed) {
            op.timer_armed = false;
            op.timer.cancel();
        }
        asio::any_completion_handler<exec_signature> h(std::move(op.handler));
        executor_type handler_ex = std::move(op.handler_ex);
        const std::size_t bytes = op.reply_bytes;
        op.req = nullptr;
        free_ops.push_back(&op);
        detail::complete_on(handler_ex, std::move(h), ec, bytes);
    }

    void wake_writer() {
        if (writer_waiting) {
            writer_waiting = false;
            writer_wakeup.cancel();
        }
    }

    // ---- pushes
    void on_push(std::span<const resp::node> nodes, std::string_view message) {
        if (invalidation_handler && nodes.size() >= 2 && nodes[1].value(message) == "invalidate") {
            invalidation_handler(nodes, message);
            return;
        }
        resp::value v;
        detail::cursor c{nodes, message, 0};
        detail::converter<resp::value>::apply(c, v);
        if (push_handler) {
            push_handler(std::move(v));
            return;
        }
        if (push_waiter) {
            asio::any_completion_handler<push_signature> h(std::move(*push_waiter));
            push_waiter.reset();
            detail::complete_on(push_waiter_ex, std::move(h), error_code{}, std::move(v));
            return;
        }
        if (pushes.size() >= std::max<std::size_t>(cfg.push_queue_capacity, 1)) {
            pushes.pop_front();
            ++pushes_dropped;
        }
        pushes.push_back(std::move(v));
    }

    void receive_push_now(asio::any_completion_handler<push_signature> h,
                          executor_type handler_ex) {
        if (!pushes.empty()) {
            resp::value v = std::move(pushes.front());
            pushes.pop_front();
            detail::complete_on(handler_ex, std::move(h), error_code{}, std::move(v));
            return;
        }
        if (stopped || push_waiter) {
            const error_code ec = stopped ? error_code(error::connection_closed)
                                          : error_code(asio::error::already_started);
            detail::complete_on(handler_ex, std::move(h), ec, resp::value{});
            return;
        }
        auto slot = asio::get_associated_cancellation_slot(h);
        const std::uint64_t generation = ++push_generation;
        if (slot.is_connected()) {
            slot.assign([this, generation](asio::cancellation_type) {
                asio::post(ex, [this, generation] {
                    if (push_waiter && push_generation == generation)
                        fail_push_waiter(asio::error::operation_aborted);
                });
            });
        }
        push_waiter.emplace(std::move(h));
        push_waiter_ex = std::move(handler_ex);
    }

    void fail_push_waiter(error_code ec) {
        if (!push_waiter) return;
        asio::any_completion_handler<push_signature> h(std::move(*push_waiter));
        push_waiter.reset();
        ++push_generation;
        detail::complete_on(push_waiter_ex, std::move(h), ec, resp::value{});
    }

    // ---- life cycle
    void emit(connection_event::kind what, error_code reason = {}, std::string detail = {}) {
        const connection_event event{what, reason, std::move(detail)};
        if (on_event) on_event(event);
        for (std::size_t i = 0; i < listeners.size(); ++i)
            listeners[i].second(event);
    }

    void stop() {
        if (stopping) return;
        stopping = true;
        error_code ignored;
        socket.close(ignored);
        resolver.cancel();
        writer_wakeup.cancel();
        health_timer.cancel();
        backoff_timer.cancel();
        connect_timer.cancel();
        if (!running) shutdown(error::connection_closed);
    }

    void shutdown(error_code reason) {
        stopped = true;
        connected = false;
        mux.fail_all(reason);
        fail_push_waiter(error::connection_closed);
        emit(connection_event::kind::stopped, reason, last_error);
    }

    // Loads CA, client certificate and key once; a problem is reported by each connection
    // attempt, naming the file, rather than thrown from a constructor.
    void setup_tls() {
        try {
            tls_context.emplace(asio::ssl::context::tls_client);
            auto& ctx = *tls_context;
            ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1);
            const auto& t = cfg.tls;
            auto step = [&](const std::string& what, auto&& f) {
                try {
                    f();
                } catch (const boost::system::system_error& e) {
                    throw std::runtime_error("tls: " + what + ": " + e.code().message());
                }
            };
            if (t.ca_file.empty() && t.ca_dir.empty())
                step("system CA store", [&] { ctx.set_default_verify_paths(); });
            if (!t.ca_file.empty())
                step("ca_file \"" + t.ca_file + "\"", [&] { ctx.load_verify_file(t.ca_file); });
            if (!t.ca_dir.empty())
                step("ca_dir \"" + t.ca_dir + "\"", [&] { ctx.add_verify_path(t.ca_dir); });
            if (!t.cert_file.empty())
                step("cert_file \"" + t.cert_file + "\"",
                     [&] { ctx.use_certificate_chain_file(t.cert_file); });
            if (!t.key_file.empty())
                step("key_file \"" + t.key_file + "\"",
                     [&] { ctx.use_private_key_file(t.key_file, asio::ssl::context::pem); });
            ctx.set_verify_mode(t.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none);
        } catch (const std::exception& e) {
            tls_setup_error = e.what();
        }
    }

    asio::awaitable<error_code> tls_handshake(const std::string& host) {
        if (!tls_setup_error.empty()) {
            last_error = tls_setup_error;
            co_return error_code(error::invalid_config);
        }
        tls.emplace(socket, *tls_context);
        const std::string name = cfg.tls.server_name.empty() ? host : cfg.tls.server_name;
        error_code not_an_ip;
        (void)asio::ip::make_address(name, not_an_ip);
        if (not_an_ip) SSL_set_tlsext_host_name(tls->native_handle(), name.c_str()); // SNI
        if (cfg.tls.verify_peer) tls->set_verify_callback(asio::ssl::host_name_verification(name));
        auto [ec] = co_await tls->async_handshake(asio::ssl::stream_base::client, nothrow);
        if (ec) {
            std::string why = ec.message();
            const long verify = SSL_get_verify_result(tls->native_handle());
            if (verify != X509_V_OK)
                why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
            last_error = "TLS handshake with " + name + ": " + why;
        }
        co_return ec;
    }

    asio::awaitable<std::tuple<error_code, std::size_t>> read_some(std::span<char> space) {
        if (tls)
            co_return co_await tls->async_read_some(asio::buffer(space.data(), space.size()),
                                                    nothrow);
        co_return co_await socket.async_read_some(asio::buffer(space.data(), space.size()),
                                                  nothrow);
    }

    asio::awaitable<std::tuple<error_code, std::size_t>> write_all(std::string_view bytes) {
        if (tls) co_return co_await asio::async_write(*tls, asio::buffer(bytes), nothrow);
        co_return co_await asio::async_write(socket, asio::buffer(bytes), nothrow);
    }

    asio::awaitable<error_code> connect_socket() {
        tls.reset();
        error_code ec;
        if (!cfg.unix_socket.empty() && !address_source) {
            asio::generic::stream_protocol::endpoint ep{
                asio::local::stream_protocol::endpoint(cfg.unix_socket)};
            std::tie(ec) = co_await socket.async_connect(ep, nothrow);
            if (ec) last_error = "connect to unix:" + cfg.unix_socket + ": " + ec.message();
            co_return ec;
        }
        if (address_source) {
            std::string why;
            endpoint to;
            if (error_code aec = co_await address_source(to, why)) {
                last_error = std::move(why);
                co_return aec;
            }
            target = std::move(to);
        } else if (cfg.hosts.empty()) {
            last_error = "config: no host to connect to";
            co_return error_code(error::invalid_config);
        } else {
            target = cfg.hosts.front();
        }
        const endpoint& host = target;
        auto [rec, results] =
            co_await resolver.async_resolve(host.host, std::to_string(host.port), nothrow);
        if (rec) {
            last_error = "resolve \"" + host.host + "\": " + rec.message();
            co_return rec == asio::error::operation_aborted ? rec
                                                            : error_code(error::resolve_failed);
        }
        ec = asio::error::host_not_found;
        for (const auto& entry : results) {
            error_code close_ec;
            socket.close(close_ec);
            std::tie(ec) = co_await socket.async_connect(
                asio::generic::stream_protocol::endpoint(entry.endpoint()), nothrow);
            if (!ec) break;
        }
        if (ec) {
            last_error =
                "connect to " + host.host + ":" + std::to_string(host.port) + ": " + ec.message();
            co_return ec;
        }
        socket.set_option(asio::ip::tcp::no_delay(true), ec);
        if (cfg.keep_alive) socket.set_option(asio::socket_base::keep_alive(true), ec);
        if (cfg.use_tls) co_return co_await tls_handshake(host.host);
        co_return error_code{};
    }

    asio::awaitable<error_code> handshake() {
        hello.emplace(cfg, required_role, setup_cmds);
        hello_resp.clear();
        hello_op.req = &hello->get_request();
        hello_op.adapter = detail::make_adapter(hello_resp);
        hello_op.outcome.reset();
        hello_op.in_queue = true;
        mux.add_front(hello_op);

        const std::string_view bytes = mux.prepare_write(1);
        auto [wec, written] = co_await write_all(bytes);
        if (wec) {
            last_error = "handshake write: " + wec.message();
            co_return wec;
        }
        mux.on_write_done();
        while (!hello_op.outcome) {
            auto space = mux.prepare_read();
            auto [rec, n] = co_await read_some(space);
            if (rec) {
                last_error = "handshake read: " + rec.message();
                co_return rec;
            }
            mux.commit_read(n, rec);
            if (rec) {
                last_error = mux.error_message();
                co_return rec;
            }
        }
        if (*hello_op.outcome) co_return *hello_op.outcome;
        co_return hello->judge(hello_resp, target, last_error);
    }

    asio::awaitable<error_code> connect_steps() {
        if (auto ec = co_await connect_socket()) co_return ec;
        co_return co_await handshake();
    }

    asio::awaitable<error_code> connect_and_handshake() {
        connect_timer.expires_after(cfg.connect_timeout.count() > 0 ? cfg.connect_timeout
                                                                    : std::chrono::hours(24));
        auto outcome = co_await (connect_steps() || connect_timer.async_wait(nothrow));
        if (outcome.index() == 1) {
            if (stopping) co_return error_code(error::connection_closed);
            last_error = "connect and handshake did not finish within connect_timeout (" +
                         std::to_string(cfg.connect_timeout.count()) + " ms)";
            co_return error_code(error::connect_timeout);
        }
        co_return std::get<0>(outcome);
    }

    asio::awaitable<error_code> reader() {
        for (;;) {
            auto space = mux.prepare_read();
            auto [ec, n] = co_await read_some(space);
            if (ec) {
                last_error = ec == asio::error::eof ? "server closed the connection"
                                                    : "read: " + ec.message();
                co_return ec;
            }
            mux.commit_read(n, ec);
            if (ec) {
                last_error = mux.error_message();
                co_return ec;
            }
        }
    }

    asio::awaitable<error_code> writer() {
        for (;;) {
            while (!mux.has_unwritten()) {
                writer_waiting = true;
                writer_wakeup.expires_at(asio::steady_timer::time_point::max());
                co_await writer_wakeup.async_wait(nothrow);
                writer_waiting = false;
                if (co_await cancelled() || stopping)
                    co_return error_code(asio::error::operation_aborted);
            }
            const std::string_view bytes = mux.prepare_write();
            if (!bytes.empty()) {
                auto [ec, n] = co_await write_all(bytes);
                if (ec) {
                    if (ec != asio::error::operation_aborted) last_error = "write: " + ec.message();
                    co_return ec;
                }
            }
            mux.on_write_done();
        }
    }

    asio::awaitable<error_code> health() {
        if (cfg.health_check_interval.count() <= 0) {
            health_timer.expires_at(asio::steady_timer::time_point::max());
            auto [ec] = co_await health_timer.async_wait(nothrow);
            co_return ec ? ec : error_code(asio::error::operation_aborted);
        }
        detail::health_check check;
        check.reset(mux.stats().bytes_read);
        for (;;) {
            health_timer.expires_after(cfg.health_check_interval);
            auto [ec] = co_await health_timer.async_wait(nothrow);
            if (ec) co_return ec;
            switch (check.on_tick(mux.stats().bytes_read)) {
            case detail::health_check::action::none:
                break;
            case detail::health_check::action::ping:
                if (!ping_op.in_queue) {
                    ping_op.in_queue = true;
                    mux.add(ping_op);
                    wake_writer();
                    ++health_pings;
                }
                break;
            case detail::health_check::action::dead:
                last_error = "no reply for " +
                             std::to_string(2 * cfg.health_check_interval.count()) +
                             " ms, health-check PING unanswered";
                co_return error_code(error::health_check_timeout);
            }
        }
    }

    void on_disconnected(error_code reason) {
        error_code ignored;
        socket.close(ignored);
        const bool was_connected = connected;
        connected = false;
        mux.on_disconnect();
        if (reason == error::auth_failed) mux.fail_all(reason);
        mux.fail_unwritten_not_waiting(error::not_connected);
        if (was_connected) {
            ++disconnects;
            emit(connection_event::kind::disconnected, reason, last_error);
        }
    }

    executor_type ex;
    config cfg;
    connection::address_source address_source;
    std::string required_role;
    request setup_cmds;
    endpoint target; // of the current or last attempt
    asio::generic::stream_protocol::socket socket;
    // TLS (rediss://): a context made once, a stream over `socket` made per connection.
    std::optional<asio::ssl::context> tls_context;
    std::string tls_setup_error;
    std::optional<asio::ssl::stream<asio::generic::stream_protocol::socket&>> tls;
    asio::ip::tcp::resolver resolver;
    asio::steady_timer writer_wakeup;
    asio::steady_timer health_timer;
    asio::steady_timer backoff_timer;
    asio::steady_timer connect_timer;
    detail::multiplexer mux;

    std::vector<exec_op*> all_ops;
    std::vector<exec_op*> free_ops;

    std::optional<detail::handshake> hello; // this connect's
    generic_response hello_resp;
    internal_op hello_op;
    request ping_req;
    internal_op ping_op;

    std::deque<resp::value> pushes;
    std::optional<asio::any_completion_handler<push_signature>> push_waiter;
    executor_type push_waiter_ex;
    std::uint64_t push_generation = 0;

    std::function<void(const connection_event&)> on_event;
    std::function<void(resp::value&&)> push_handler;
    connection::invalidation_handler invalidation_handler;
    std::vector<std::pair<std::size_t, std::function<void(const connection_event&)>>> listeners;
    std::size_t next_listener = 0;
    std::string last_error;
    detail::backoff reconnect_wait;

    bool running = false;
    bool stopping = false;
    bool stopped = false;
    bool connected = false;
    bool writer_waiting = false;
    bool reconnect_asked = false; // reconnect(): the next attempt without a wait
    std::uint64_t connects = 0;
    std::uint64_t disconnects = 0;
    std::uint64_t pushes_dropped = 0;
    std::uint64_t health_pings = 0;
};

connection::connection(executor_type ex, config cfg)
    : impl_(std::make_unique<impl>(std::move(ex), std::move(cfg))) {}

connection::~connection() = default;

connection::executor_type connection::get_executor() const noexcept {
    return impl_->ex;
}
const config& connection::get_config() const noexcept {
    return impl_->cfg;
}
bool connection::is_connected() const noexcept {
    return impl_->connected;
}
const std::string& connection::last_error_message() const noexcept {
    return impl_->last_error;
}

void connection::set_event_handler(std::function<void(const connection_event&)> handler) {
    impl_->on_event = std::move(handler);
}

void connection::set_push_handler(std::function<void(resp::value&&)> handler) {
    impl_->push_handler = std::move(handler);
}

void connection::set_invalidation_handler(invalidation_handler handler) {
    impl_->invalidation_handler = std::move(handler);
}

std::size_t connection::add_event_listener(std::function<void(const connection_event&)> listener) {
    impl_->listeners.emplace_back(++impl_->next_listener, std::move(listener));
    return impl_->next_listener;
}

void connection::remove_event_listener(std::size_t id) {
    std::erase_if(impl_->listeners, [id](const auto& l) { return l.first == id; });
}

connection_stats connection::stats() const {
    const auto& m = impl_->mux.stats();
    connection_stats s;
    s.connects = impl_->connects;
    s.disconnects = impl_->disconnects;
    s.requests_written = m.requests_written;
    s.replies = m.replies;
    s.pushes = m.pushes;
    s.pushes_dropped = impl_->pushes_dropped;
    s.health_pings = impl_->health_pings;
    s.bytes_written = m.bytes_written;
    s.bytes_read = m.bytes_read;
    return s;
}

void connection::start_exec(asio::any_completion_handler<exec_signature> handler,
                            executor_type handler_ex, const request* req,
                            detail::reply_adapter adapter, const request::options* options) {
    asio::dispatch(impl_->ex, [s = impl_.get(), h = std::move(handler), hex = std::move(handler_ex),
                               req, adapter, options]() mutable {
        s->exec_now(std::move(h), std::move(hex), req, adapter, options);
    });
}

void connection::set_address_source(address_source source) {
    impl_->address_source = std::move(source);
}

void connection::require_role(std::string role) {
    impl_->required_role = std::move(role);
}

void connection::set_setup_commands(request setup) {
    impl_->setup_cmds = std::move(setup);
}

void connection::reconnect() {
    asio::dispatch(impl_->ex, [s = impl_.get()] {
        if (!s->connected || s->stopping) return;
        s->last_error = "reconnect asked by the application";
        s->reconnect_asked = true;
        error_code ignored;
        s->socket.close(ignored);
    });
}

endpoint connection::remote_endpoint() const {
    return impl_->target;
}

void connection::start_receive_push(asio::any_completion_handler<push_signature> handler,
                                    executor_type handler_ex) {
    asio::dispatch(impl_->ex, [s = impl_.get(), h = std::move(handler),
                               hex = std::move(handler_ex)]() mutable {
        s->receive_push_now(std::move(h), std::move(hex));
    });
}

void connection::cancel() {
    asio::dispatch(impl_->ex, [s = impl_.get()] { s->stop(); });
}

asio::awaitable<void> connection::run() {
    impl& s = *impl_;
    co_await asio::this_coro::throw_if_cancelled(false);
    if (s.running)
        throw boost::system::system_error(asio::error::already_started,
                                          "connection::run() is running already");
    s.running = true;
    s.stopping = s.stopped = false;
    error_code final_ec;
    for (unsigned attempt = 0;; ++attempt) {
        error_code ec = co_await s.connect_and_handshake();
        if (!ec) {
            attempt = 0;
            s.connected = true;
            ++s.connects;
            // Said on every connect: a connection that does not verify its server is loud.
            s.emit(connection_event::kind::connected, {},
                   s.cfg.use_tls && !s.cfg.tls.verify_peer
                       ? "TLS certificate verification is OFF (tls_verify=false)"
                       : "");
            s.wake_writer();
            auto outcome = co_await (s.reader() || s.writer() || s.health());
            ec = std::visit([](error_code e) { return e; }, outcome);
        }
        if (s.stopping) {
            ec = error::connection_closed;
            s.last_error = "closed by the application";
        }
        s.on_disconnected(ec);
        if (s.stopping || co_await cancelled()) break;
        if (!s.reconnect_wait.enabled()) {
            final_ec = ec;
            break;
        }
        s.emit(connection_event::kind::reconnecting, ec, s.last_error);
        if (s.reconnect_asked) {
            s.reconnect_asked = false;
            continue;
        }
        s.backoff_timer.expires_after(s.reconnect_wait.next(attempt, ec));
        co_await s.backoff_timer.async_wait(nothrow);
        if (s.stopping || co_await cancelled()) break;
    }
    s.running = false;
    s.shutdown(final_ec ? final_ec : error_code(error::connection_closed));
    if (final_ec) throw boost::system::system_error(final_ec, s.last_error);
}

} // namespace akv
