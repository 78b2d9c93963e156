// A TLS connection seen through one non-template read and one non-template write.
//
// Beast's HTTP and WebSocket operations call the stream below them with their own handler and
// buffer types. Over beast::ssl_stream<tcp_stream>, every such pair instantiated the TLS engine's
// operations and tcp_stream's timeout operations anew: session_tls.cpp took 58 s of g++ -O2 and
// server.cpp 34 s. Through this layer they reach the TLS stream by one read_some and one
// write_some, compiled once in tls_layer.cpp (21 s and 22 s then). The price is a type-erased
// handler per read or write (from asio's recycling allocator), small beside the encryption of
// the bytes; the bytes and the TLS records are the same.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <array>
#include <cstddef>
#include <utility>

namespace akv::gateway::detail {

// Up to 64 buffers of a sequence by value (asio's own limit for one scatter/gather write): what
// the TLS stream keeps while the operation is pending.
template <class Buffer> class buffer_list {
public:
    using value_type = Buffer;
    using const_iterator = const Buffer*;

    template <class Sequence> explicit buffer_list(const Sequence& buffers) {
        for (auto it = boost::asio::buffer_sequence_begin(buffers);
             it != boost::asio::buffer_sequence_end(buffers) && count_ < items_.size(); ++it)
            items_[count_++] = Buffer(*it);
    }
    const Buffer* begin() const noexcept { return items_.data(); }
    const Buffer* end() const noexcept { return items_.data() + count_; }

private:
    std::array<Buffer, 64> items_;
    std::size_t count_ = 0;
};

class tls_layer {
public:
    using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
    using executor_type = tls_stream::executor_type;
    using io_handler =
        boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;
    using teardown_handler = boost::asio::any_completion_handler<void(boost::system::error_code)>;

    explicit tls_layer(tls_stream& stream) noexcept
        : stream_(stream) {}

    executor_type get_executor() noexcept { return stream_.get_executor(); }
    // beast::get_lowest_layer() goes through it to the tcp_stream (timeouts, closing).
    tls_stream& next_layer() noexcept { return stream_; }

    // The handler's executor travels beside it: the layers below post to it, which an erased
    // handler's own executor (Boost 1.81) cannot do.
    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, const buffer_list<boost::asio::mutable_buffer>& b) {
                const executor_type ex =
                    boost::asio::get_associated_executor(handler, get_executor());
                read_some(b, ex, io_handler(std::move(handler)));
            },
            token, buffer_list<boost::asio::mutable_buffer>(buffers));
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, const buffer_list<boost::asio::const_buffer>& b) {
                const executor_type ex =
                    boost::asio::get_associated_executor(handler, get_executor());
                write_some(b, ex, io_handler(std::move(handler)));
            },
            token, buffer_list<boost::asio::const_buffer>(buffers));
    }

    // The TLS shutdown, then the TCP one, as Beast does it for its ssl_stream (WebSocket close).
    void teardown(boost::beast::role_type role, const executor_type& ex, teardown_handler handler);

private:
    void read_some(const buffer_list<boost::asio::mutable_buffer>& buffers, const executor_type& ex,
                   io_handler handler);
    void write_some(const buffer_list<boost::asio::const_buffer>& buffers, const executor_type& ex,
                    io_handler handler);

    tls_stream& stream_;
};

// Found by Beast's WebSocket stream when it closes.
template <class Handler>
void async_teardown(boost::beast::role_type role, tls_layer& layer, Handler&& handler) {
    const tls_layer::executor_type ex =
        boost::asio::get_associated_executor(handler, layer.get_executor());
    layer.teardown(role, ex, tls_layer::teardown_handler(std::forward<Handler>(handler)));
}

} // namespace akv::gateway::detail
