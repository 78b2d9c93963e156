#include <akv/gateway/metrics_listener.hpp>

#include <akv/error.hpp>
#include <akv/metrics/prometheus.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <list>

namespace akv::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Scrapers open a connection or two; more at once is someone else.
constexpr std::size_t max_connections = 32;
constexpr std::chrono::seconds io_deadline{5};

} // namespace

struct metrics_listener::state : std::enable_shared_from_this<state> {
    tcp::acceptor acceptor;
    source metrics;
    bool stopped = false;
    std::size_t connections = 0;        // accepted and not done, counted at accept
    std::list<beast::tcp_stream*> open; // closed by stop()

    state(asio::any_io_executor ex, source m)
        : acceptor(ex)
        , metrics(std::move(m)) {}

    asio::awaitable<void> serve(tcp::socket socket);
};

namespace {

http::response<http::string_body> reply(http::status status, std::string body,
                                        std::string_view type, unsigned version, bool head) {
    http::response<http::string_body> res(status, version);
    res.set(http::field::content_type, type);
    res.keep_alive(false);
    res.body() = std::move(body);
    res.prepare_payload();
    if (head) res.body().clear(); // Content-Length stays the GET's
    return res;
}

} // namespace

// One request, one answer, then close: scrapers open a connection per scrape anyway.
asio::awaitable<void> metrics_listener::state::serve(tcp::socket socket) {
    const auto self = shared_from_this();
    beast::tcp_stream stream(std::move(socket));
    const auto at = open.insert(open.end(), &stream);
    struct forget {
        state& s;
        std::list<beast::tcp_stream*>::iterator at;
        ~forget() {
            s.open.erase(at);
            --s.connections;
        }
    } forget_on_exit{*this, at};

    beast::flat_buffer buffer;
    http::request_parser<http::empty_body> parser;
    parser.header_limit(16 * 1024);
    stream.expires_after(io_deadline);
    auto [ec, n] =
        co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    if (stopped) co_return;
    http::response<http::string_body> res;
    if (ec) {
        if (ec == beast::error::timeout || ec == http::error::end_of_stream ||
            ec == asio::error::operation_aborted)
            co_return;
        res = reply(http::status::bad_request, "bad request: " + ec.message() + "\n", "text/plain",
                    11, false);
    } else {
        const auto& req = parser.get();
        const bool head = req.method() == http::verb::head;
        const std::string_view target = req.target();
        const std::string_view path = target.substr(0, target.find('?'));
        if (req.method() != http::verb::get && !head)
            res = reply(http::status::method_not_allowed, "use GET\n", "text/plain", req.version(),
                        false);
        else if (path == "/metrics")
            res =
                reply(http::status::ok, metrics(), akv::metrics::content_type, req.version(), head);
        else if (path == "/healthz")
            res = reply(http::status::ok, "ok\n", "text/plain", req.version(), head);
        else
            res = reply(http::status::not_found,
                        "no such path: " + std::string(path) + " (try /metrics)\n", "text/plain",
                        req.version(), head);
    }
    stream.expires_after(io_deadline);
    co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

metrics_listener::metrics_listener(asio::any_io_executor ex, const std::string& host,
                                   std::uint16_t port, source metrics)
    : state_(std::make_shared<state>(ex, std::move(metrics))) {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec)
        throw_error(error::invalid_config, "metrics listener: \"" + host +
                                               "\" is not an IP address (" + ec.message() + ")");
    const tcp::endpoint at(address, port);
    state_->acceptor.open(at.protocol());
    state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    state_->acceptor.bind(at);
    state_->acceptor.listen();
}

metrics_listener::~metrics_listener() {
    stop();
}

asio::awaitable<void> metrics_listener::run() {
    const auto s = state_;
    while (!s->stopped) {
        auto [ec, socket] = co_await s->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            if (ec == asio::error::operation_aborted || s->stopped) break;
            // A peer that gave up before we accepted it, or no descriptor free: again soon.
            asio::steady_timer pause(s->acceptor.get_executor(), std::chrono::milliseconds(50));
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        if (s->connections >= max_connections) {
            boost::system::error_code ignored;
            socket.close(ignored);
            continue;
        }
        ++s->connections;
        asio::co_spawn(s->acceptor.get_executor(), s->serve(std::move(socket)), asio::detached);
    }
}

void metrics_listener::stop() {
    if (!state_ || state_->stopped) return;
    state_->stopped = true;
    boost::system::error_code ignored;
    state_->acceptor.close(ignored);
    for (beast::tcp_stream* stream : state_->open)
        stream->socket().close(ignored); // its read or write completes, aborted
}

std::uint16_t metrics_listener::port() const {
    boost::system::error_code ec;
    return state_->acceptor.local_endpoint(ec).port();
}

} // namespace akv::gateway
