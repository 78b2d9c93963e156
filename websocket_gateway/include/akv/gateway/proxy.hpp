// Backend proxies (Centrifugo's connect, subscribe, publish and RPC proxies): HTTP endpoints of
// the application that decide for the gateway, so that a Django or Rails app keeps its own
// session auth (the client's cookies reach the connect proxy) and its own rules. Each is a
// POST of a JSON object; the reply is {"result":{...}} to go ahead, {"error":{"code","message"}}
// to refuse with that error, or (connect) {"disconnect":{"code":4xxx,"reason":"..."}}. The
// request and reply fields are in websocket_gateway/README.md, "Backend proxies".
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace akv::gateway {

struct proxy_options {
    // http://HOST:PORT/PATH of each proxy; empty: not used.
    std::string connect_url;   // a connect without a token: who the client is, what it may do
    std::string subscribe_url; // a subscribe that the client's claims do not allow
    std::string publish_url;   // every client publish: allow, refuse, or replace the data
    std::string rpc_url;       // {"op":"rpc"} requests, answered by the application
    std::chrono::milliseconds timeout{2000}; // the whole exchange, connect to last byte
    std::size_t max_reply = 64 * 1024;       // bytes of a reply body
    // The client's HTTP request headers (upgrade or SSE) passed on to the connect proxy.
    std::vector<std::string> forward_headers{"Cookie", "Authorization",   "User-Agent",
                                             "Origin", "X-Forwarded-For", "X-Real-IP"};
    // After this many failures in a row (no answer in time, no connection, HTTP status other
    // than 200, a reply that is not one of the three forms), the proxy is not asked for
    // `breaker_cooldown`: requests that need it fail at once as unavailable. Then one request
    // tries it again.
    std::size_t breaker_failures = 5;
    std::chrono::milliseconds breaker_cooldown{5000};
};

} // namespace akv::gateway
