// The WebSocket sessions over plain TCP (see upgrade.hpp for why they have a file of their own).
#include "session.hpp"

namespace akv::gateway::detail {

asio::awaitable<void> run_websocket(asio::ip::tcp::socket& socket, std::unique_ptr<upgrade_request> request,
                                    worker& w, server_state& state) {
    // The session owns its stream and lives on its own: nothing of the connection's frames
    // stays for an idle session.
    start_websocket<asio::ip::tcp::socket>(std::move(socket), std::move(request), w, state);
    co_return;
}

asio::awaitable<void> run_event_stream(asio::ip::tcp::socket& socket, stream_request request, worker& w,
                                       server_state& state) {
    co_await stream_and_run(socket, std::move(request), w, state);
}

} // namespace akv::gateway::detail
