// The WebSocket sessions over TLS (see upgrade.hpp for why they have a file of their own).
#include "session.hpp"

namespace akv::gateway::detail {

asio::awaitable<void> run_websocket(tls_layer& stream, std::unique_ptr<upgrade_request> request, worker& w,
                                    server_state& state) {
    // The session's stream refers to the TLS layer, which lives here: wait for it.
    co_await wait_gone(start_websocket<tls_layer&>(stream, std::move(request), w, state));
}

asio::awaitable<void> run_event_stream(tls_layer& stream, stream_request request, worker& w,
                                       server_state& state) {
    co_await stream_and_run(stream, std::move(request), w, state);
}

} // namespace akv::gateway::detail
