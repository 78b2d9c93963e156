// Fuzzes what a gateway session reads from a socket: a WebSocket handshake, then the fuzzer's
// bytes as frames (masked or not, fragmented, control frames, bad opcodes, lengths that lie),
// read by Beast with the gateway's settings (64 KiB messages, no auto-fragmenting), each text
// message then parsed by the gateway's protocol reader, each ping answered. Beast's
// _experimental test stream stands for the socket: no I/O, no threads.
//
// Any outcome is fine (a message, a close, an error) but a crash, a sanitizer report, an
// exception other than system_error, or a message over the limit.
#include "protocol.hpp"

#include <boost/asio/error.hpp> // the test stream uses it without including it (Boost 1.81)
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace beast = boost::beast;
namespace websocket = beast::websocket;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    constexpr std::size_t max_message = 64 * 1024;
    static const std::string handshake = "GET /ws HTTP/1.1\r\n"
                                         "Host: 127.0.0.1:8080\r\n"
                                         "Upgrade: websocket\r\n"
                                         "Connection: Upgrade\r\n"
                                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                         "Sec-WebSocket-Version: 13\r\n\r\n";
    boost::asio::io_context io;
    beast::test::stream socket(io, handshake + std::string(reinterpret_cast<const char*>(data), size));
    beast::test::stream peer(io);
    socket.connect(peer); // where our writes (the handshake reply, pongs) go
    websocket::stream<beast::test::stream&> ws(socket);
    ws.read_message_max(max_message);
    ws.auto_fragment(false);
    ws.text(true);
    beast::error_code ec;
    ws.accept(ec);
    if (ec) return 0;
    socket.close_remote(); // the input ends there: a read past it sees eof, never waits
    for (int messages = 0; messages < 64; ++messages) {
        beast::flat_buffer buffer;
        ws.read(buffer, ec);
        if (ec) break; // a close, a protocol error, the end of the input
        if (buffer.size() > max_message) std::abort();
        if (ws.got_text()) {
            const std::string text = beast::buffers_to_string(buffer.data());
            (void)akv::gateway::protocol::parse(text); // must not throw
            ws.write(boost::asio::buffer(akv::gateway::protocol::pong(1)), ec);
            if (ec) break;
        }
    }
    return 0;
}
