#include "proxy.hpp"

#include "protocol.hpp"

#include <akv/gateway/error.hpp>
#include <akv/gateway/token.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

namespace akv::gateway::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

const char* name_of(proxy_kind k) noexcept {
    switch (k) {
    case proxy_kind::connect:
        return "connect";
    case proxy_kind::subscribe:
        return "subscribe";
    case proxy_kind::publish:
        return "publish";
    case proxy_kind::rpc:
        return "rpc";
    }
    return "?";
}

backend_proxy::backend_proxy(const proxy_options& o)
    : opts_(o) {
    const std::pair<proxy_kind, const std::string*> urls[] = {
        {proxy_kind::connect, &o.connect_url},
        {proxy_kind::subscribe, &o.subscribe_url},
        {proxy_kind::publish, &o.publish_url},
        {proxy_kind::rpc, &o.rpc_url},
    };
    for (const auto& [kind, url] : urls) {
        if (url->empty()) continue;
        auto bad = [&, kind = kind, url = url](const char* why) {
            throw boost::system::system_error(make_error_code(gateway_error::bad_options),
                                              std::string("gateway options: the ") + name_of(kind) +
                                                  " proxy URL '" + *url + "' " + why);
        };
        auto u = boost::urls::parse_absolute_uri(*url);
        if (!u) bad("is not an absolute URL");
        if (u->scheme() != "http") bad("must be http:// (a backend beside the gateway)");
        if (u->host().empty()) bad("has no host");
        endpoint& e = ends_[index(kind)];
        e.host = u->host();
        e.port = u->has_port() ? std::string(u->port()) : "80";
        e.target = u->encoded_path().empty() ? "/" : std::string(u->encoded_path());
        if (u->has_query()) e.target += "?" + std::string(u->encoded_query());
    }
}

bool backend_proxy::admit(endpoint& e) {
    std::lock_guard lock(e.mutex);
    if (e.failures_in_a_row < opts_.breaker_failures) return true;
    if (std::chrono::steady_clock::now() < e.open_until || e.trial) return false;
    e.trial = true; // cooled down: this one request tries
    return true;
}

void backend_proxy::settle(endpoint& e, bool failed) {
    std::lock_guard lock(e.mutex);
    e.trial = false;
    if (!failed) {
        e.failures_in_a_row = 0;
        e.counts.open.store(false, std::memory_order_relaxed);
        return;
    }
    if (++e.failures_in_a_row >= opts_.breaker_failures) {
        e.open_until = std::chrono::steady_clock::now() + opts_.breaker_cooldown;
        e.counts.open.store(true, std::memory_order_relaxed);
    }
}

namespace {

void add(std::atomic<std::uint64_t>& c) noexcept {
    c.fetch_add(1, std::memory_order_relaxed);
}

// The reply's body as an outcome: one of the three forms, or unavailable naming what it is.
proxy_outcome read_reply(const std::string& body) {
    proxy_outcome out;
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec || !v.is_object()) {
        out.message = "the reply is not a JSON object: " +
                      protocol::truncate_utf8(protocol::valid_utf8(body), 80);
        return out;
    }
    json::object& o = v.as_object();
    if (json::value* r = o.if_contains("result"); r && r->is_object()) {
        out.state = proxy_outcome::verdict::ok;
        out.result = std::move(r->as_object());
        return out;
    }
    auto text = [](const json::value* f) -> std::string {
        if (!f) return {};
        if (f->is_string()) return std::string(f->get_string());
        if (f->is_number()) return json::serialize(*f);
        return {};
    };
    if (json::value* e = o.if_contains("error"); e && e->is_object()) {
        out.state = proxy_outcome::verdict::rejected;
        out.code = text(e->as_object().if_contains("code"));
        out.message = text(e->as_object().if_contains("message"));
        if (out.code.empty()) out.code = "rejected";
        out.code = protocol::truncate_utf8(out.code, 64);
        out.message = protocol::truncate_utf8(out.message, 200);
        return out;
    }
    if (json::value* d = o.if_contains("disconnect"); d && d->is_object()) {
        const json::value* c = d->as_object().if_contains("code");
        const auto code = c && c->is_int64() ? c->get_int64() : 0;
        if (code < 4000 || code > 4999) {
            out.message = "the reply's disconnect code must be 4000 to 4999";
            return out;
        }
        out.state = proxy_outcome::verdict::rejected;
        out.code = "disconnect";
        out.disconnect = static_cast<std::uint16_t>(code);
        out.message = protocol::truncate_utf8(text(d->as_object().if_contains("reason")), 120);
        return out;
    }
    out.message = "the reply has none of \"result\", \"error\", \"disconnect\" (objects)";
    return out;
}

} // namespace

asio::awaitable<proxy_outcome> backend_proxy::ask(proxy_kind k, const json::object& request,
                                                  const header_list& headers) {
    endpoint& e = ends_[index(k)];
    const std::string who = std::string(name_of(k)) + " proxy: ";
    proxy_outcome out;
    if (e.host.empty()) {
        out.message = who + "not configured";
        co_return out;
    }
    if (!admit(e)) {
        add(e.counts.short_circuited);
        out.message = who + "not asked: it failed " + std::to_string(opts_.breaker_failures) +
                      " times in a row (tried again after " +
                      std::to_string(opts_.breaker_cooldown.count()) + " ms)";
        co_return out;
    }
    add(e.counts.requests);
    auto ex = co_await asio::this_coro::executor;
    beast::tcp_stream stream(ex);
    stream.expires_after(opts_.timeout);
    const auto tuple = asio::as_tuple(asio::use_awaitable);
    std::string failure;
    std::string body;
    do {
        asio::ip::tcp::resolver resolver(ex);
        auto [rec, endpoints] = co_await resolver.async_resolve(e.host, e.port, tuple);
        if (rec) {
            failure = "cannot resolve " + e.host + ": " + rec.message();
            break;
        }
        auto [cec, at] = co_await stream.async_connect(endpoints, tuple);
        if (cec) {
            failure = cec == beast::error::timeout
                          ? "no connection within " + std::to_string(opts_.timeout.count()) + " ms"
                          : "cannot connect to " + e.host + ":" + e.port + ": " + cec.message();
            break;
        }
        http::request<http::string_body> req{http::verb::post, e.target, 11};
        req.set(http::field::host, e.host + ":" + e.port);
        req.set(http::field::content_type, "application/json");
        req.set(http::field::user_agent, "akv-gateway");
        for (const auto& [name, value] : headers)
            req.set(name, value);
        req.body() = json::serialize(request);
        req.prepare_payload();
        auto [wec, wn] = co_await http::async_write(stream, req, tuple);
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(opts_.max_reply);
        beast::error_code ec = wec;
        if (!ec) {
            auto [rdec, rn] = co_await http::async_read(stream, buffer, parser, tuple);
            ec = rdec;
        }
        if (ec == beast::error::timeout) {
            failure = "no answer within " + std::to_string(opts_.timeout.count()) + " ms";
            break;
        }
        if (ec == http::error::body_limit) {
            failure = "the reply is over " + std::to_string(opts_.max_reply) + " bytes";
            break;
        }
        if (ec) {
            failure = "the exchange failed: " + ec.message();
            break;
        }
        const auto& res = parser.get();
        if (res.result() != http::status::ok) {
            failure = "HTTP " + std::to_string(res.result_int());
            break;
        }
        body = res.body();
    } while (false);
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    if (failure.empty()) {
        out = read_reply(body);
        if (out.state == proxy_outcome::verdict::unavailable) failure = out.message;
    }
    settle(e, !failure.empty());
    if (!failure.empty()) {
        add(e.counts.failures);
        out.state = proxy_outcome::verdict::unavailable;
        out.message = who + failure;
    } else if (out.state == proxy_outcome::verdict::rejected) {
        add(e.counts.rejected);
    }
    co_return out;
}

std::string claims_from_result(const json::object& result, token_claims& claims) {
    claims = token_claims{};
    if (const json::value* u = result.if_contains("user")) {
        if (!u->is_string()) return "\"user\" must be a string";
        claims.subject = std::string(u->get_string());
    }
    if (const json::value* x = result.if_contains("expire_at"); x && !x->is_null()) {
        if (!x->is_int64()) return "\"expire_at\" must be Unix seconds";
        claims.expires = x->get_int64();
    }
    const std::pair<const char*, std::vector<std::string>*> lists[] = {
        {"channels", &claims.channels},
        {"publish", &claims.publish},
        {"presence", &claims.presence},
        {"subs", &claims.subs},
    };
    for (const auto& [name, list] : lists) {
        const json::value* v = result.if_contains(name);
        if (!v || v->is_null()) continue;
        if (!v->is_array()) return std::string("\"") + name + "\" must be an array of strings";
        for (const auto& item : v->get_array()) {
            if (!item.is_string())
                return std::string("\"") + name + "\" must be an array of strings";
            list->emplace_back(item.get_string());
        }
    }
    if (const json::value* i = result.if_contains("info"); i && !i->is_null()) {
        if (!i->is_object()) return "\"info\" must be an object";
        claims.info = json::serialize(*i);
    }
    return {};
}

} // namespace akv::gateway::detail
