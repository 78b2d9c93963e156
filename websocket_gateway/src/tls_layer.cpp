// The one place the gateway's TLS reads, writes and shutdowns are compiled (see tls_layer.hpp).
#include "tls_layer.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace akv::gateway::detail {

namespace asio = boost::asio;

void tls_layer::read_some(const buffer_list<asio::mutable_buffer>& buffers, const executor_type& ex,
                          io_handler handler) {
    stream_.async_read_some(buffers, asio::bind_executor(ex, std::move(handler)));
}

void tls_layer::write_some(const buffer_list<asio::const_buffer>& buffers, const executor_type& ex,
                           io_handler handler) {
    stream_.async_write_some(buffers, asio::bind_executor(ex, std::move(handler)));
}

void tls_layer::teardown(boost::beast::role_type role, const executor_type& ex,
                         teardown_handler handler) {
    using boost::beast::async_teardown;
    async_teardown(role, stream_, asio::bind_executor(ex, std::move(handler)));
}

} // namespace akv::gateway::detail
