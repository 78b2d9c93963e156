// What a gateway serves and what it allows: limits, history rules, auth, TLS. Plain data, so
// apps fill it from flags or files and tests from literals.
#pragma once

#include <akv/gateway/proxy.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace akv::gateway {

// Channels whose name matches `pattern` (`*` wildcard) keep their messages in a Redis stream,
// so a client that reconnects gets what it missed. 0 = no bound of that kind.
struct history_rule {
    std::string pattern;
    std::size_t max_length = 1000;
    std::chrono::seconds max_age{0};
};

// Channels whose name matches `pattern` keep who is subscribed (presence) in Redis, across
// every gateway process: each session's entry (its client id, `sub`, and the token's `info`)
// lives presence_ttl unless its gateway refreshes it, so a crashed gateway's sessions disappear
// within that time. `join_leave`: subscribers may ask for join and leave pushes.
struct presence_rule {
    std::string pattern;
    bool join_leave = false;
};

// What a session whose send queue is full gets.
enum class slow_consumer_policy {
    disconnect,  // close 4008: the client reconnects and resumes from its offsets
    drop_oldest, // keep the newest messages; the client sees a hole (offsets tell it)
};

// A POST route the app answers (a webhook: a form, Facebook's or GitHub's callbacks): the
// gateway reads and bounds the body, checks the signature, and hands it over.
struct webhook_request {
    std::string path;
    std::string body;
    std::string content_type;
};

struct webhook_reply {
    unsigned status = 200;
    std::string body = "{}"; // JSON text
};

// May throw: system_error with a gateway_error is a 400 naming it, anything else a 503.
using webhook_handler = std::function<boost::asio::awaitable<webhook_reply>(webhook_request)>;

// An application's own HTTP endpoint on the gateway's port (the operator's console is one):
// the request as it came, and the reply to send.
struct http_request {
    std::string method; // "GET", "POST", ...
    std::string path;   // without the query string
    std::string query;  // after '?', as sent (percent-encoded)
    std::string body;
    std::map<std::string, std::string> headers; // names in lower case
};

struct http_reply {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

// Runs on the Redis client's executor. Throwing gives 500 with the exception's message.
using http_handler = std::function<boost::asio::awaitable<http_reply>(http_request)>;

struct options {
    std::string address = "127.0.0.1";
    std::uint16_t port = 8080; // 0: any free port (server::port() tells which)

    // Connection tokens (HS256). Empty: only anonymous sessions, if `anonymous` allows any.
    std::string token_secret;
    // Channel patterns a session without a token may subscribe to (never publish to).
    std::vector<std::string> anonymous;
    // POST /api/publish needs it; empty: the publish API is off (403).
    std::string api_key;
    // Origins allowed to open a WebSocket ("https://app.example.com"); "*" allows any. Empty:
    // only the gateway's own origin (Origin's host:port equal to the Host header) and clients
    // that send no Origin (non-browser).
    std::vector<std::string> allowed_origins;

    // POST PATH -> handler (exact paths, "/hooks/comments").
    std::map<std::string, webhook_handler> webhooks;
    // PREFIX -> handler, for any method: "/console" serves /console and /console/...; the
    // longest prefix wins. Asked after the gateway's own paths, before static files.
    std::map<std::string, http_handler> routes;
    // Non-empty: a webhook request must carry X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
    // the body with this secret> (Facebook's and GitHub's scheme), else 401.
    std::string webhook_secret;

    std::vector<history_rule> history;
    std::vector<presence_rule> presence;
    std::chrono::seconds presence_ttl{60}; // refreshed every third of it
    // Redis channel = prefix + gateway channel, so several apps can share one Redis.
    std::string channel_prefix;

    // Per session.
    std::size_t max_frame = 64 * 1024;    // bytes of one client message (close 1009)
    double max_rate = 100;                // client messages per second, sustained (close 1008)
    double max_burst = 200;               // ... and at once
    std::size_t max_channels = 128;       // subscriptions (close 1008)
    std::size_t send_queue = 4096;        // messages waiting to be written
    slow_consumer_policy slow_policy = slow_consumer_policy::disconnect;
    std::chrono::milliseconds connect_timeout{10000}; // upgrade to `connect` message
    std::chrono::seconds idle_timeout{60}; // no frame nor pong for this long: gone (pings at half)

    std::size_t max_sessions = 100000;
    // Event loops the sessions are spread over: the client's executor and threads - 1 threads
    // of the server's own. Still one Redis subscription per channel per process; a message is
    // encoded once and handed to each thread once.
    std::size_t threads = 1;
    std::size_t max_publish = 1024 * 1024; // bytes of a publish body or a published message
    std::string static_dir;                // files served over the built-in ones; empty: none
    std::chrono::milliseconds shutdown_grace{5000};

    // The application's HTTP endpoints that decide connects, subscribes, publishes and RPCs.
    proxy_options proxy;

    // TLS on the one port when both are set (PEM files).
    std::string tls_cert_file;
    std::string tls_key_file;
};

} // namespace akv::gateway
