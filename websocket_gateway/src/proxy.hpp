// The client of the backend proxies (proxy.hpp of the public headers): one POST per question,
// a deadline over the whole exchange, a circuit breaker per proxy, counters for /metrics.
// Shared by every worker thread; Beast stays in proxy.cpp.
#pragma once

#include <akv/gateway/proxy.hpp>
#include <akv/gateway/token.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace akv::gateway::detail {

enum class proxy_kind { connect, subscribe, publish, rpc };
inline constexpr std::size_t proxy_kind_count = 4;
const char* name_of(proxy_kind k) noexcept;

struct proxy_outcome {
    enum class verdict { ok, rejected, unavailable };
    verdict state = verdict::unavailable;
    boost::json::object result;   // ok: the reply's "result"
    std::string code;             // rejected: the application's error code ("rejected" if none)
    std::string message;          // rejected: the application's; unavailable: what went wrong
    std::uint16_t disconnect = 0; // rejected with {"disconnect":...}: its close code
};

using header_list = std::vector<std::pair<std::string, std::string>>;

class backend_proxy {
public:
    // Throws system_error(bad_options) naming a URL that is not http://HOST[:PORT]/PATH.
    explicit backend_proxy(const proxy_options& o);

    bool enabled(proxy_kind k) const noexcept { return !ends_[index(k)].host.empty(); }

    // Asks proxy `k` (on the caller's executor). Never throws for what the backend does: the
    // outcome says unavailable and why.
    boost::asio::awaitable<proxy_outcome> ask(proxy_kind k, const boost::json::object& request,
                                              const header_list& headers = {});

    struct counters {
        std::atomic<std::uint64_t> requests{0};        // asked (not counting fast failures)
        std::atomic<std::uint64_t> rejected{0};        // the application said no
        std::atomic<std::uint64_t> failures{0};        // unavailable: timeout, status, bad reply
        std::atomic<std::uint64_t> short_circuited{0}; // failed at once: breaker open
        std::atomic<bool> open{false};
    };
    const counters& stats(proxy_kind k) const noexcept { return ends_[index(k)].counts; }

private:
    struct endpoint {
        std::string host, port, target;
        counters counts;
        std::mutex mutex; // the breaker:
        std::size_t failures_in_a_row = 0;
        std::chrono::steady_clock::time_point open_until{};
        bool trial = false; // one request tries a proxy whose cool-down has passed
    };
    static std::size_t index(proxy_kind k) noexcept { return static_cast<std::size_t>(k); }
    bool admit(endpoint& e);
    void settle(endpoint& e, bool failed);

    const proxy_options& opts_;
    std::array<endpoint, proxy_kind_count> ends_;
};

// The headers of `req` (a Beast request) that the options pass on to the connect proxy.
template <class Request> header_list forwarded_headers(const Request& req, const proxy_options& o) {
    header_list out;
    for (const auto& name : o.forward_headers)
        if (auto it = req.find(name); it != req.end())
            out.emplace_back(name, std::string(it->value()));
    return out;
}

// A connect proxy's "result" as the claims a token would carry ("user", "expire_at",
// "channels", "publish", "presence", "subs", "info"); the error text, empty if none.
std::string claims_from_result(const boost::json::object& result, token_claims& claims);

} // namespace akv::gateway::detail
