#include <akv/kv/syncable.hpp>

namespace akv::kv::detail {

asio::awaitable<void> write_buffer::flush() {
    if (commands_ == 0) co_return;
    // Taken out before the round trip: writes buffered meanwhile go with the next flush.
    request req = std::move(req_);
    req_.clear();
    commands_ = 0;
    req.push("EXEC");
    generic_response resp;
    co_await client_->exec(req, resp);
    // OK, QUEUED per command, then EXEC's reply: an array of the commands' replies, or an error
    // (EXECABORT) when a command was refused as it was queued.
    for (std::size_t i = 1; i + 1 < resp.size(); ++i) {
        if (resp[i].has_error()) throw_reply_error(resp[i].error(), key_, "MULTI");
    }
    const resp::value& replies = take(resp.back(), key_, "EXEC");
    for (const resp::value& reply : replies.elements) {
        if (reply.is_error()) {
            throw_reply_error({make_error_code(error::server_error), reply.str}, key_, "EXEC");
        }
    }
}

} // namespace akv::kv::detail
