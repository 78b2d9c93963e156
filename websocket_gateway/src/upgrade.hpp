// An upgraded connection handed from the HTTP server (server.cpp) to its WebSocket session.
// Each stream's sessions are compiled in a file of their own (session_tcp.cpp, session_tls.cpp)
// and server.cpp, which speaks HTTP, never includes session.hpp: as one file they took 110 s
// of g++ -O2.
#pragma once

#include "server_state.hpp"
#include "tls_layer.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <memory>

namespace akv::gateway::detail {

inline constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

using upgrade_request = boost::beast::http::request<boost::beast::http::string_body>;

// Accepts the upgrade `request` read from the connection (freed once accepted) and runs its
// session until it ends. The caller keeps the TLS stream alive until then; the plain socket is
// moved into the session.
asio::awaitable<void> run_websocket(asio::ip::tcp::socket& socket,
                                    std::unique_ptr<upgrade_request> request, worker& w,
                                    server_state& state);
asio::awaitable<void> run_websocket(tls_layer& stream, std::unique_ptr<upgrade_request> request,
                                    worker& w, server_state& state);

// Runs a streaming session (SSE or HTTP streaming, event_stream.hpp) on the connection whose
// request was read; the response is the session's stream.
asio::awaitable<void> run_event_stream(asio::ip::tcp::socket& socket, stream_request request,
                                       worker& w, server_state& state);
asio::awaitable<void> run_event_stream(tls_layer& stream, stream_request request, worker& w,
                                       server_state& state);

} // namespace akv::gateway::detail
