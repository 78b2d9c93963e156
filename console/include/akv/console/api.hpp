// The operator's console: its page (GET /console, behind the same login) and its JSON API,
// for gateway::options::routes under "/console" (akv-gateway --console).
//
//   GET  /console/api/whoami              {"role": "write" | "read", "who": ...}
//   GET  /console/api/queues              every queue (found by its keys): its counts, live
//                                         workers and last minute (processed, failed, p50,
//                                         p90, p99 latency in ms)
//   GET  /console/api/queues/Q            its counts, the last hour per minute (processed,
//                                         failed, p50/p90/p99 ms), its live workers (host,
//                                         pid, token, concurrency, running, counts, started,
//                                         last seen)
//   GET  /console/api/queues/Q/jobs?state=S&offset=N&limit=N
//                                         a page of jobs; S: waiting, delayed, active, failed,
//                                         completed; N <= max_page
//   GET  /console/api/queues/Q/jobs/ID    one job: payload, attempts, last error, progress,
//                                         result
//   POST /console/api/queues/Q/actions    {"action": A, "id": ..., "reason": ...,
//                                         "max_jobs": N, "window_ms": N}; A: retry, remove,
//                                         cancel, pause, resume, rate_limit, retry_failed
//   GET  /console/api/streams             every stream: its length and groups (consumers,
//                                         pending, lag, last delivered id, and per consumer
//                                         its pending entries and idle ms); a dead-letter
//                                         stream names its source ("dead_letter_of")
//   GET  /console/api/streams/S/entries?offset=N&limit=N&before=ID&after=ID
//                                         a page of entries, newest first; N <= max_page,
//                                         offset <= 10000 (older pages: before=ID); a dead
//                                         entry's origin and reason apart ("dead")
//   POST /console/api/streams/S/actions   {"action": A, "id": ...} on a dead-letter stream; A:
//                                         requeue (back to the source), requeue_all, remove;
//                                         audited with "stream" for "queue"; 404 for an
//                                         unknown stream or entry, 400 for a stream that is
//                                         not a dead-letter stream or whose source is gone
//   GET  /console/api/batchers            live batchers by their status records (counters,
//                                         batches/s, mean batch, model)
//   GET  /console/api/redis               the server: INFO's main figures, keyspace, the last
//                                         10 slow log entries; "nodes": every master and
//                                         replica (address, role, memory, ops/s, clients,
//                                         keyspace, replication, slow log, or its error)
//   GET  /console/api/gateway             the serving gateway's figures (sessions, channels,
//                                         messages in and out, drops, slow disconnects)
//   GET  /console/api/gateway?channels=N  ... and "top_channels": its N (default 20, at most
//                                         max_channels) channels with the most subscribers
//                                         here, each {name, subscribers, presence (every
//                                         gateway's, if kept), console (if the console's own)}
//   GET  /console/api/live                the sampler's channel and a token to subscribe to it
//
// Who may: a bearer token (HS256 with the gateway's secret) whose "admin" claim is true (actions)
// or "read" (reads only), or HTTP Basic with the console password (actions). Anyone else gets
// 401. An action must carry the header X-Akv-Console (which a cross-site form cannot send) and,
// when the browser sends an Origin, come from the console's own origin; each one is recorded
// in the audit stream (who, action, queue, id) before it is answered.
//
// Errors are JSON {"error": "..."} naming what was wrong: 400 for a bad parameter or action,
// 404 for an unknown queue or job, 409 for a job that runs, 503 when Redis fails (away,
// slower than options::timeout, a server error, a master of a cluster that does not answer the
// SCAN listing queues or streams): try again.
#pragma once

#include <akv/client.hpp>
#include <akv/gateway/options.hpp>
#include <akv/gateway/server.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace akv::console {

struct options {
    std::string token_secret; // the gateway's: tokens with an "admin" claim
    std::string password;     // HTTP Basic, any user name; empty: no password login
    std::string audit_stream = "akv:console:audit";
    std::size_t audit_maxlen = 10000; // trimmed to about this many entries
    std::size_t max_page = 500;       // jobs per page at most
    // An answer not ready by then (Redis away or slow) is a 503; what it started is cancelled.
    std::chrono::milliseconds timeout{5000};
    // The figures of the gateway serving the console (gateway::server::snapshot, called on the
    // client's executor); empty: /console/api/gateway answers 404.
    std::function<gateway::stats()> gateway_stats;
    // Its channels with the most subscribers (gateway::server::channel_counts, on the client's
    // executor); empty: the figures list none.
    std::function<asio::awaitable<std::vector<gateway::channel_count>>(std::size_t limit)>
        gateway_channels;
    std::size_t max_channels = 100; // channels=N at most: each with presence is a Redis call
    // The channel a sampler (sampler.hpp) publishes snapshots on: GET /console/api/live gives
    // the page it and a token to subscribe with (needs token_secret). Empty: no live view.
    std::string live_channel;
    // A node (a cluster's, a replica) that has not answered within this is shown with an error;
    // a cluster's master that has not answered a SCAN fails the listing (503).
    std::chrono::milliseconds node_timeout{2000};
};

// The handler of every /console path; uses `redis` (which must outlive it) on its executor.
gateway::http_handler api(client& redis, options o);

} // namespace akv::console
