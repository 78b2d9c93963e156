// The WebSocket sessions over TLS (see upgrade.hpp for why they have a file of their own).
#include "session.hpp"

#include <boost/beast/ssl.hpp>

namespace akv::gateway::detail {

asio::awaitable<void> run_websocket(beast::ssl_stream<beast::tcp_stream>& stream,
                                    upgrade_request& request, server_state& state) {
    websocket::stream<beast::ssl_stream<beast::tcp_stream>&> ws(stream);
    co_await accept_and_run(ws, request, state);
}

} // namespace akv::gateway::detail
