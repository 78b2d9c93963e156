// The transports for clients that cannot keep a WebSocket (README "Transports"): the session's
// messages go down one long HTTP response, as Server-Sent Events (EventSource) or as lines of a
// chunked body (HTTP streaming), and the client's requests come up as POSTs to
// /connection/emulation, which the server hands to the session's inbox. event_stream offers what
// session<> uses of a Beast WebSocket stream, so one session class serves every transport with
// the same auth, limits, history and presence.
#pragma once

#include "inbox.hpp"
#include "protocol.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json.hpp>

#include <array>
#include <chrono>
#include <cstring>
#include <tuple>

namespace akv::gateway::detail {

template <class Stream> class event_stream {
public:
    event_stream(Stream& next, stream_kind kind, std::shared_ptr<inbox> in,
                 std::chrono::milliseconds heartbeat)
        : next_(next)
        , kind_(kind)
        , inbox_(std::move(in))
        , heartbeat_(heartbeat)
        , written_(inbox_->signal().get_executor()) {
        written_.expires_at(asio::steady_timer::time_point::max());
    }

    Stream& next_layer() noexcept { return next_; }
    stream_kind kind() const noexcept { return kind_; }
    bool got_text() const noexcept { return true; }

    // The response's head, then the session's key as the first message: the client names it
    // in its POSTs to /connection/emulation.
    asio::awaitable<boost::system::error_code> start(std::string_view key,
                                                     std::string_view allow_origin) {
        std::string head = "HTTP/1.1 200 OK\r\nCache-Control: no-cache, no-store\r\n"
                           "X-Accel-Buffering: no\r\n";
        if (kind_ == stream_kind::sse)
            head += "Content-Type: text/event-stream\r\nConnection: close\r\n";
        else
            head += "Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n";
        if (!allow_origin.empty()) {
            head += "Access-Control-Allow-Origin: ";
            head += allow_origin;
            head += "\r\nVary: Origin\r\n";
        }
        head += "\r\n";
        const std::string first = "{\"op\":\"session\",\"key\":" + protocol::quoted(key) + "}";
        head += kind_ == stream_kind::sse ? "data: " + first + "\n\n" : frame(first);
        auto [ec, n] = co_await asio::async_write(next_, asio::buffer(head),
                                                  asio::as_tuple(asio::use_awaitable));
        co_return ec;
    }

    // The next request from the inbox; an error once the peer went away or the stream closed.
    // The session's stream operations, as Beast's WebSocket stream offers them: a handler per
    // call, completed on the session's executor.
    template <class Handler> void async_read(boost::beast::flat_buffer& buffer, Handler&& h) {
        complete(read_one(buffer), std::forward<Handler>(h));
    }
    // Requests come whole: `limit` does not apply, and every message is done.
    template <class Handler>
    void async_read_some(boost::beast::flat_buffer& buffer, std::size_t, Handler&& h) {
        complete(read_one(buffer), std::forward<Handler>(h));
    }
    bool is_message_done() const noexcept { return true; }
    template <class Handler> void async_write(asio::const_buffer text, Handler&& h) {
        complete(write_one(text), std::forward<Handler>(h));
    }
    template <class Handler>
    void async_close(const boost::beast::websocket::close_reason& why, Handler&& h) {
        complete(close_one(why), std::forward<Handler>(h));
    }

    asio::awaitable<std::tuple<boost::system::error_code, std::size_t>>
    read_one(boost::beast::flat_buffer& buffer) {
        for (;;) {
            if (ended_) co_return std::tuple{asio::error::eof, std::size_t(0)};
            if (auto r = inbox_->pop()) {
                auto dst = buffer.prepare(r->size());
                std::memcpy(dst.data(), r->data(), r->size());
                buffer.commit(r->size());
                co_return std::tuple{boost::system::error_code{}, r->size()};
            }
            auto& signal = inbox_->signal();
            signal.expires_after(heartbeat_);
            auto [ec] = co_await signal.async_wait(asio::as_tuple(asio::use_awaitable));
            // A quiet stream says it is alive, so that proxies keep it and a gone peer shows.
            if (!ec && !writing_ && !ended_) {
                writing_ = true;
                const std::string beat =
                    kind_ == stream_kind::sse ? std::string(":\n\n") : frame("");
                auto [wec, n] = co_await asio::async_write(next_, asio::buffer(beat),
                                                           asio::as_tuple(asio::use_awaitable));
                done_writing();
                if (wec) ended_ = true;
            }
        }
    }

    asio::awaitable<std::tuple<boost::system::error_code, std::size_t>>
    write_one(asio::const_buffer text) {
        co_await wait_for_writes();
        if (ended_) co_return std::tuple{asio::error::eof, std::size_t(0)};
        writing_ = true;
        out_.clear();
        const std::string_view all(static_cast<const char*>(text.data()), text.size());
        if (kind_ == stream_kind::sse)
            event(all);
        else
            out_ = frame(all);
        auto [ec, n] = co_await asio::async_write(next_, asio::buffer(out_),
                                                  asio::as_tuple(asio::use_awaitable));
        done_writing();
        if (ec) end();
        co_return std::tuple{ec, text.size()};
    }

    // The close as a last message ({"op":"close","code":...,"reason":...}), then the end.
    asio::awaitable<std::tuple<boost::system::error_code>>
    close_one(const boost::beast::websocket::close_reason& why) {
        const std::string last = "{\"op\":\"close\",\"code\":" + std::to_string(why.code) +
                                 ",\"reason\":" + protocol::quoted(why.reason.c_str()) + "}";
        auto [ec, n] = co_await write_one(asio::buffer(last));
        if (!ec && kind_ == stream_kind::http_stream) {
            co_await wait_for_writes();
            static constexpr std::string_view last_chunk = "0\r\n\r\n";
            co_await asio::async_write(next_, asio::buffer(last_chunk),
                                       asio::as_tuple(asio::use_awaitable));
        }
        end();
        co_return std::tuple{ec};
    }

    // Reads what the peer sends after its request (nothing, normally) until it goes away:
    // then the session's reader ends, as a WebSocket's does on a reset.
    asio::awaitable<void> watch_peer() {
        std::array<char, 512> sink;
        for (;;) {
            auto [ec, n] = co_await next_.async_read_some(asio::buffer(sink),
                                                          asio::as_tuple(asio::use_awaitable));
            if (ec) break;
        }
        end();
    }

    void end() {
        ended_ = true;
        inbox_->signal().cancel();
    }

private:
    // Runs `op` and hands its result to `h` (an exception, which these do not throw, as eof).
    template <class Result, class Handler> void complete(asio::awaitable<Result> op, Handler&& h) {
        asio::co_spawn(inbox_->signal().get_executor(), std::move(op),
                       [h = std::forward<Handler>(h)](std::exception_ptr e, Result r) mutable {
                           if (e) std::get<0>(r) = asio::error::eof;
                           std::apply(h, std::move(r));
                       });
    }

    // One message of the HTTP stream: a chunk holding the line and its newline.
    static std::string frame(std::string_view line) {
        char size[20];
        const int len = std::snprintf(size, sizeof size, "%zx\r\n", line.size() + 1);
        std::string out(size, static_cast<std::size_t>(len));
        out += line;
        out += "\n\r\n";
        return out;
    }

    // One event: each message a data line (EventSource joins them with newlines, as a
    // WebSocket frame holds them), and an id naming the positions reached so far, which the
    // browser sends back as Last-Event-ID when it reconnects on its own.
    void event(std::string_view all) {
        bool moved = false;
        for (std::size_t at = 0; at <= all.size();) {
            std::size_t end = all.find('\n', at);
            if (end == std::string_view::npos) end = all.size();
            const std::string_view line = all.substr(at, end - at);
            out_ += "data: ";
            out_ += line;
            out_ += '\n';
            moved = note(line) || moved;
            at = end + 1;
        }
        if (moved) {
            out_ += "id: ";
            out_ += boost::json::serialize(positions_);
            out_ += '\n';
        }
        out_ += '\n';
    }

    // Keeps the newest position of each channel from its pushes and "subscribed" answers.
    bool note(std::string_view line) {
        const bool resync = line.find("\"op\":\"resync\"") != std::string_view::npos;
        if (!resync && line.find("\"offset\":") == std::string_view::npos) return false;
        boost::system::error_code ec;
        const boost::json::value v = boost::json::parse(line, ec);
        const boost::json::object* o = ec ? nullptr : v.if_object();
        const boost::json::value* ch = o ? o->if_contains("channel") : nullptr;
        if (!ch || !ch->is_string()) return false;
        if (resync) return positions_.erase(ch->get_string()) > 0;
        const boost::json::value* off = o->if_contains("offset");
        const boost::json::value* ep = o->if_contains("epoch");
        if (!off || !off->is_string()) return false;
        const std::string name(ch->get_string());
        if (ep && ep->is_string()) epochs_[name] = ep->get_string();
        auto known = epochs_.find(name);
        if (known == epochs_.end()) return false; // no epoch yet: not a position to resume from
        boost::json::object& at = positions_[name].emplace_object();
        at["offset"] = off->get_string();
        at["epoch"] = known->second;
        return true;
    }

    asio::awaitable<void> wait_for_writes() {
        while (writing_ && !ended_) {
            written_.expires_at(asio::steady_timer::time_point::max());
            co_await written_.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }
    void done_writing() {
        writing_ = false;
        written_.cancel();
    }

    Stream& next_;
    stream_kind kind_;
    std::shared_ptr<inbox> inbox_;
    std::chrono::milliseconds heartbeat_;
    asio::steady_timer written_; // cancelled when a write ends
    bool writing_ = false;
    bool ended_ = false;
    std::string out_;
    boost::json::object positions_; // channel -> {"offset","epoch"}: the events' id
    std::unordered_map<std::string, boost::json::string> epochs_;
};

} // namespace akv::gateway::detail
