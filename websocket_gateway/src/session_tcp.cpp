// The WebSocket sessions over plain TCP (see upgrade.hpp for why they have a file of their own).
#include "session.hpp"

namespace akv::gateway::detail {

asio::awaitable<void> run_websocket(asio::ip::tcp::socket& socket, upgrade_request& request,
                                    worker& w, server_state& state) {
    websocket::stream<asio::ip::tcp::socket> ws(std::move(socket));
    co_await accept_and_run(ws, request, w, state);
}

} // namespace akv::gateway::detail
