// The WebSocket sessions over plain TCP (see upgrade.hpp for why they have a file of their own).
#include "session.hpp"

namespace akv::gateway::detail {

asio::awaitable<void> run_websocket(asio::ip::tcp::socket& socket, upgrade_request& request,
                                    worker& w, server_state& state) {
    websocket::stream<asio::ip::tcp::socket> ws(std::move(socket));
    co_await accept_and_run(ws, request, w, state);
}

asio::awaitable<void> run_event_stream(asio::ip::tcp::socket& socket, stream_request request, worker& w,
                                       server_state& state) {
    co_await stream_and_run(socket, std::move(request), w, state);
}

} // namespace akv::gateway::detail
