#include <akv/detail/multiplexer.hpp>
#include <akv/error.hpp>

#include <cstring>

namespace akv::detail {

multiplexer::multiplexer(resp::limits limits)
    : parser_(limits) {
    nodes_.reserve(64);
}

void multiplexer::add(pending_request& r) {
    r.seq = front_seq_ + queue_.size();
    r.reply_bytes = 0;
    queue_.push_back({&r, static_cast<std::uint32_t>(r.req->expected_replies()),
                      static_cast<std::uint32_t>(r.req->expected_confirmations()), 0});
}

void multiplexer::add_front(pending_request& r) {
    // Only while nothing is written: the handshake goes before every queued request.
    r.reply_bytes = 0;
    queue_.push_front({&r, static_cast<std::uint32_t>(r.req->expected_replies()),
                       static_cast<std::uint32_t>(r.req->expected_confirmations()), 0});
    --front_seq_;
    r.seq = front_seq_;
}

multiplexer::slot* multiplexer::find(pending_request& r) {
    const std::uint64_t index = r.seq - front_seq_;
    if (index >= queue_.size()) return nullptr;
    slot& s = queue_[index];
    return s.op == &r ? &s : nullptr;
}

void multiplexer::complete(slot& s, boost::system::error_code ec) {
    pending_request* op = s.op;
    s.op = nullptr;
    if (op) op->on_complete(ec);
}

bool multiplexer::cancel(pending_request& r, boost::system::error_code reason) {
    slot* s = find(r);
    if (!s) return false;
    const std::size_t index = static_cast<std::size_t>(r.seq - front_seq_);
    if (index >= written_ + staged_) s->replies_left = s->pushes_left = 0; // nothing will come
    complete(*s, reason);
    pop_finished_front();
    return true;
}

std::string_view multiplexer::prepare_write(std::size_t max_requests) {
    write_buffer_.clear();
    const std::size_t begin = written_ + staged_;
    std::size_t end = queue_.size();
    if (end - begin > max_requests) end = begin + max_requests;
    for (std::size_t i = begin; i < end; ++i) {
        const slot& s = queue_[i];
        if (!s.op) continue;
        write_buffer_.append(s.op->req->payload());
        ++counters_.requests_written;
    }
    staged_ += end - begin;
    return write_buffer_;
}

void multiplexer::on_write_done() {
    std::size_t begin = written_;
    written_ += staged_;
    staged_ = 0;
    counters_.bytes_written += write_buffer_.size();
    for (std::size_t i = begin; i < written_; ++i) {
        slot& s = queue_[i];
        // Only (un)subscribes whose confirmations are not counted: done once written.
        if (s.op && s.replies_left == 0 && s.pushes_left == 0) complete(s, {});
    }
    write_buffer_.clear();
    pop_finished_front();
}

void multiplexer::pop_finished_front() {
    // Replies may arrive for staged requests too: the server answers the start of a large
    // write before the write completes.
    while (written_ + staged_ > 0 && queue_.front().replies_left == 0 &&
           queue_.front().pushes_left == 0 && queue_.front().op == nullptr) {
        queue_.pop_front();
        ++front_seq_;
        if (written_ > 0)
            --written_;
        else
            --staged_;
    }
    // Cancelled requests that were never written leave no trace at the front either.
    while (written_ == 0 && staged_ == 0 && !queue_.empty() && queue_.front().op == nullptr) {
        queue_.pop_front();
        ++front_seq_;
    }
}

std::span<char> multiplexer::prepare_read(std::size_t min_space) {
    if (message_start_ > 0) {
        // Keep only the unparsed tail: node offsets are relative to the message start.
        std::memmove(read_buffer_.data(), read_buffer_.data() + message_start_,
                     filled_ - message_start_);
        filled_ -= message_start_;
        message_start_ = 0;
    }
    if (read_buffer_.size() - filled_ < min_space) {
        std::size_t size = read_buffer_.empty() ? 64 * 1024 : read_buffer_.size();
        while (size - filled_ < min_space)
            size *= 2;
        read_buffer_.resize(size);
    }
    return {read_buffer_.data() + filled_, read_buffer_.size() - filled_};
}

void multiplexer::commit_read(std::size_t n, boost::system::error_code& ec) {
    filled_ += n;
    counters_.bytes_read += n;
    for (;;) {
        const std::string_view message(read_buffer_.data() + message_start_,
                                       filled_ - message_start_);
        auto node = parser_.next(message, ec);
        if (ec) {
            error_message_ = parser_.error_message();
            return;
        }
        if (!node) break;
        nodes_.push_back(*node);
        if (!parser_.done()) continue;
        const std::size_t size = parser_.consumed();
        dispatch(message.substr(0, size), ec);
        if (ec) return;
        message_start_ += size;
        parser_.reset();
        nodes_.clear();
    }
    if (message_start_ == filled_) message_start_ = filled_ = 0;
}

void multiplexer::dispatch(std::string_view message, boost::system::error_code& ec) {
    std::size_t first = 0;
    while (nodes_[first].data_type == resp::type::attribute) {
        const std::uint32_t depth = nodes_[first].depth;
        ++first;
        while (nodes_[first].depth > depth)
            ++first;
    }
    if (nodes_[first].data_type == resp::type::push) {
        ++counters_.pushes;
        if (first + 1 < nodes_.size() && is_confirmation(nodes_[first + 1].value(message)))
            on_confirmation();
        if (on_push_) on_push_(std::span(nodes_).subspan(first), message);
        return;
    }
    pop_finished_front();
    // A request of subscribes waits for its confirmations: an error reply comes in their place
    // (NOPERM, MOVED, CROSSSLOT), and is that request's, not the next one's.
    while (written_ + staged_ > 0 && queue_.front().replies_left == 0 &&
           queue_.front().pushes_left > 0) {
        slot& s = queue_.front();
        s.pushes_left = 0;
        if (resp::is_error(nodes_[first].data_type)) {
            ++counters_.replies;
            if (s.op) {
                s.op->adapter(0, nodes_, message);
                s.op->reply_bytes += message.size();
            }
            complete(s, {});
            pop_finished_front();
            return;
        }
        // Not an error: the confirmations counted will not come; stop waiting for them.
        complete(s, {});
        pop_finished_front();
    }
    if (written_ + staged_ == 0) {
        ec = make_error_code(error::resp_protocol);
        error_message_ = "resp: a reply arrived with no request waiting for it";
        return;
    }
    ++counters_.replies;
    slot& s = queue_.front();
    if (s.op) {
        s.op->adapter(s.next_reply, nodes_, message);
        s.op->reply_bytes += message.size();
    }
    ++s.next_reply;
    if (--s.replies_left == 0) {
        complete(s, {});
        pop_finished_front();
    }
}

bool multiplexer::is_confirmation(std::string_view kind) {
    for (std::string_view k : {"subscribe", "psubscribe", "ssubscribe", "unsubscribe",
                               "punsubscribe", "sunsubscribe"})
        if (kind == k) return true;
    return false;
}

void multiplexer::on_confirmation() {
    for (std::size_t i = 0; i < written_ + staged_; ++i) {
        slot& s = queue_[i];
        if (s.pushes_left == 0) continue;
        if (--s.pushes_left == 0 && s.replies_left == 0) {
            complete(s, {});
            pop_finished_front();
        }
        return;
    }
}

void multiplexer::renumber() {
    // Drop finished slots and give the survivors consecutive positions again.
    ring<slot> kept(queue_.size() + 1);
    for (std::size_t i = 0; i < queue_.size(); ++i)
        if (queue_[i].op) kept.push_back(queue_[i]);
    queue_ = std::move(kept);
    for (std::size_t i = 0; i < queue_.size(); ++i)
        queue_[i].op->seq = front_seq_ + i;
}

void multiplexer::on_disconnect() {
    const auto lost = make_error_code(error::connection_lost);
    for (std::size_t i = 0; i < written_ + staged_; ++i) {
        slot& s = queue_[i];
        if (!s.op) continue;
        if (s.op->effective_options().idempotent) {
            s.replies_left = static_cast<std::uint32_t>(s.op->req->expected_replies());
            s.pushes_left = static_cast<std::uint32_t>(s.op->req->expected_confirmations());
            s.next_reply = 0;
            s.op->reply_bytes = 0;
        } else {
            complete(s, lost);
        }
    }
    written_ = staged_ = 0;
    renumber();
    parser_.reset();
    nodes_.clear();
    message_start_ = filled_ = 0;
    write_buffer_.clear();
}

void multiplexer::fail_unwritten_not_waiting(boost::system::error_code reason) {
    for (std::size_t i = written_ + staged_; i < queue_.size(); ++i) {
        slot& s = queue_[i];
        if (s.op && s.op->effective_options().fail_if_not_connected) {
            s.replies_left = s.pushes_left = 0;
            complete(s, reason);
        }
    }
    pop_finished_front();
}

void multiplexer::fail_all(boost::system::error_code reason) {
    for (std::size_t i = 0; i < queue_.size(); ++i) {
        queue_[i].replies_left = queue_[i].pushes_left = 0;
        complete(queue_[i], reason);
    }
    queue_.clear();
    written_ = staged_ = 0;
}

} // namespace akv::detail
