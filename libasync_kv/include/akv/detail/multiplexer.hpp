// The connection's decisions, apart from I/O (sans-I/O): which bytes to write next, which request
// a reply completes, what a push is, and what survives a lost connection.
//
// Fed events ("these bytes arrived", "the write finished", "the connection dropped", "cancel
// this request") and answers by completing requests and handing out bytes to write. Tests drive
// it byte by byte with no socket.
#pragma once

#include <akv/detail/adapt.hpp>
#include <akv/detail/ring.hpp>
#include <akv/request.hpp>
#include <akv/resp/parser.hpp>

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace akv::detail {

// A request in flight, as the multiplexer sees it. The connection owns it.
struct pending_request {
    const request* req = nullptr;
    reply_adapter adapter;
    std::uint64_t seq = 0;       // position in the queue, for O(1) cancel
    std::size_t reply_bytes = 0; // size of the replies, what exec() reports
    // Null: req's own. A cluster or sentinel client sets its own (it re-routes on failure).
    const request::options* options = nullptr;

    const request::options& effective_options() const noexcept {
        return options ? *options : req->get_options();
    }

    // Called exactly once, when the request is done or failed.
    virtual void on_complete(boost::system::error_code ec) = 0;

protected:
    ~pending_request() = default;
};

class multiplexer {
public:
    using push_handler =
        std::function<void(std::span<const resp::node> nodes, std::string_view message)>;

    explicit multiplexer(resp::limits limits = {});

    void set_push_handler(push_handler h) { on_push_ = std::move(h); }

    // Queue a request at the back (or, for the connection's own handshake, at the front).
    void add(pending_request& r);
    void add_front(pending_request& r);

    // Fail `r` with `reason` now. A request not yet written is dropped; one already written
    // has its replies discarded when they come. False if `r` was already complete.
    bool cancel(pending_request& r, boost::system::error_code reason);

    // --- writing
    bool has_unwritten() const noexcept { return queue_.size() > written_ + staged_; }
    // The bytes of up to `max_requests` unwritten requests, in queue order.
    std::string_view prepare_write(std::size_t max_requests = static_cast<std::size_t>(-1));
    void on_write_done();

    // --- reading
    std::span<char> prepare_read(std::size_t min_space = 16 * 1024);
    // Parses what arrived, completing requests and routing pushes. On a protocol error sets
    // ec (see error_message()); the connection must then be dropped.
    void commit_read(std::size_t n, boost::system::error_code& ec);

    // --- connection loss and shutdown
    // Requests written (or being written) fail with error::connection_lost unless idempotent,
    // which are sent again; requests never written stay. Read state is reset.
    void on_disconnect();
    // Fails queued requests never written whose options say not to wait for a connection.
    void fail_unwritten_not_waiting(boost::system::error_code reason);
    void fail_all(boost::system::error_code reason);

    bool idle() const noexcept { return queue_.empty(); }
    std::size_t queued() const noexcept { return queue_.size(); }
    const std::string& error_message() const noexcept { return error_message_; }

    struct counters {
        std::uint64_t requests_written = 0;
        std::uint64_t replies = 0;
        std::uint64_t pushes = 0;
        std::uint64_t bytes_written = 0;
        std::uint64_t bytes_read = 0;
    };
    const counters& stats() const noexcept { return counters_; }

private:
    struct slot {
        pending_request* op = nullptr; // null: cancelled or done, replies (if any) discarded
        std::uint32_t replies_left = 0;
        std::uint32_t pushes_left = 0; // subscribe confirmations still to come
        std::uint32_t next_reply = 0;
    };

    slot* find(pending_request& r);
    void complete(slot& s, boost::system::error_code ec);
    void pop_finished_front();
    void dispatch(std::string_view message, boost::system::error_code& ec);
    void renumber();
    static bool is_confirmation(std::string_view kind);
    void on_confirmation(); // a subscribe-family push: the oldest request waiting for one

    resp::parser parser_;
    ring<slot> queue_; // [written | staged | unwritten]
    std::size_t written_ = 0;
    std::size_t staged_ = 0;
    std::uint64_t front_seq_ = 0;

    std::string write_buffer_;
    std::vector<char> read_buffer_;
    std::size_t message_start_ = 0; // first byte of the message being parsed
    std::size_t filled_ = 0;        // bytes in read_buffer_
    std::vector<resp::node> nodes_; // of the message being parsed

    push_handler on_push_;
    std::string error_message_;
    counters counters_;
};

} // namespace akv::detail
