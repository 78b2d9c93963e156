// One WebSocket session: a reader (client requests, limits) and a writer (the bounded send
// queue, several messages per frame), over any Beast stream (TCP or TLS). Only session_tcp.cpp
// and session_tls.cpp include this: Beast's WebSocket code stays out of every other file.
#pragma once

#include "history.hpp"
#include "hub.hpp"
#include "protocol.hpp"
#include "server_state.hpp"
#include "upgrade.hpp"

#include <akv/gateway/publish.hpp>
#include <akv/gateway/token.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <chrono>
#include <deque>
#include <unordered_map>

namespace akv::gateway::detail {

namespace beast = boost::beast;
namespace websocket = beast::websocket;

template <class WsStream> class session final : public listener, public session_handle {
public:
    session(WsStream& ws, server_state& srv)
        : ws_(ws)
        , srv_(srv)
        , opts_(srv.opts)
        , wake_(srv.redis.get_executor())
        , deadline_(srv.redis.get_executor())
        , finished_(srv.redis.get_executor())
        , id_("c" + std::to_string(++srv.counters.sessions_total))
        , tokens_(srv.opts.max_burst)
        , refilled_(std::chrono::steady_clock::now()) {
        wake_.expires_at(asio::steady_timer::time_point::max());
        finished_.expires_at(asio::steady_timer::time_point::max());
        deadline_.expires_after(opts_.connect_timeout);
    }

    // Runs until the session is over; the caller keeps `ws` alive until then.
    asio::awaitable<void> run() {
        srv_.sessions.push_back(this);
        ++srv_.counters.sessions;
        auto ex = srv_.redis.get_executor();
        asio::co_spawn(ex, writer(), [this](std::exception_ptr) {
            writer_done_ = true;
            finished_.cancel();
        });
        asio::co_spawn(ex, watchdog(), [this](std::exception_ptr) {
            watchdog_done_ = true;
            finished_.cancel();
        });
        try {
            co_await reader();
        } catch (...) {
            // Ends the session like a read error.
        }
        over_ = true;
        queue_.clear();
        wake_.cancel();
        deadline_.cancel();
        // The close handshake is done (or the socket failed): a write still pending goes nowhere.
        if (!writer_done_) force_close();
        while (!writer_done_ || !watchdog_done_) {
            finished_.expires_at(asio::steady_timer::time_point::max());
            co_await finished_.async_wait(tuple_awaitable);
        }
        for (auto& [name, st] : subs_) srv_.hub.leave(name, this);
        subs_.clear();
        std::erase(srv_.sessions, static_cast<session_handle*>(this));
        --srv_.counters.sessions;
        srv_.changed.cancel();
    }

    // session_handle
    void shut_down() override { close(websocket::close_code::going_away, "server shutting down", true); }
    void force_close() override {
        beast::error_code ec;
        auto& lowest = beast::get_lowest_layer(ws_);
        if constexpr (requires { lowest.socket(); })
            lowest.socket().close(ec);
        else
            lowest.close(ec);
    }

    // listener
    void on_message(const std::string& channel, const line_ptr& line,
                    const std::optional<std::string>& offset) override {
        auto it = subs_.find(channel);
        if (it == subs_.end()) return;
        if (it->second.syncing) {
            it->second.pending.emplace_back(line, offset);
            return;
        }
        enqueue(line);
    }

private:
    struct subscription_state {
        bool syncing = true; // subscribe still reading history: live messages wait
        std::vector<std::pair<line_ptr, std::optional<std::string>>> pending;
    };

    void enqueue(line_ptr line) {
        if (closing_ || over_) return;
        if (queue_.size() >= opts_.send_queue) {
            if (opts_.slow_policy == slow_consumer_policy::disconnect) {
                ++srv_.counters.slow_disconnects;
                srv_.counters.dropped += queue_.size() + 1;
                close(4008, "slow consumer: more than " + std::to_string(opts_.send_queue) +
                                " messages waiting", false);
                return;
            }
            queue_.pop_front();
            ++srv_.counters.dropped;
        }
        queue_.push_back(std::move(line));
        if (writer_waiting_) wake_.cancel();
    }

    void reply(std::string text) { enqueue(std::make_shared<const std::string>(std::move(text))); }

    // Asks the writer to send a close frame: after the queue when `drain`, at once otherwise.
    void close(std::uint16_t code, std::string reason, bool drain) {
        if (closing_ || over_) return;
        reason = protocol::truncate_utf8(reason, 120); // a close frame holds 123 bytes of reason
        websocket::close_reason why;
        why.code = code;
        why.reason = reason;
        closing_ = why;
        if (!drain) queue_.clear();
        wake_.cancel();
        // A peer that reads nothing never lets the close frame out: cut it off after a while.
        deadline_.expires_after(drain ? opts_.shutdown_grace : std::chrono::milliseconds(2000));
    }

    asio::awaitable<void> writer() {
        std::string frame; // reused: its capacity stays
        while (!over_) {
            if (queue_.empty()) {
                if (closing_) {
                    co_await ws_.async_close(*closing_, tuple_awaitable);
                    co_return;
                }
                writer_waiting_ = true;
                wake_.expires_at(asio::steady_timer::time_point::max());
                co_await wake_.async_wait(tuple_awaitable);
                writer_waiting_ = false;
                continue;
            }
            // One message: its shared line as it is. More: all of them in one frame (up to 256 KiB),
            // copied into one buffer, which costs less than Beast walking many small ones.
            std::size_t count = 0;
            if (queue_.size() == 1) {
                line_ptr one = std::move(queue_.front());
                queue_.pop_front();
                count = 1;
                auto [ec, n] = co_await ws_.async_write(asio::buffer(*one), tuple_awaitable);
                if (ec) co_return;
            } else {
                frame.clear();
                while (!queue_.empty() && frame.size() < 256 * 1024) {
                    if (count++) frame += '\n';
                    frame += *queue_.front();
                    queue_.pop_front();
                }
                auto [ec, n] = co_await ws_.async_write(asio::buffer(frame), tuple_awaitable);
                if (ec) co_return;
            }
            srv_.counters.messages_out += count;
            ++srv_.counters.frames_out;
        }
    }

    asio::awaitable<void> watchdog() {
        while (!over_) {
            auto [ec] = co_await deadline_.async_wait(tuple_awaitable);
            if (over_) break;
            if (ec) continue; // moved: wait for the new time
            if (closing_) {
                force_close();
                break;
            }
            if (!connected_) {
                ++srv_.counters.refused_total;
                close(websocket::close_code::policy_error, "no connect message in time", false);
            } else {
                close(4003, "token expired", false);
            }
        }
    }

    bool allow_rate() {
        const auto now = std::chrono::steady_clock::now();
        const double elapsed = std::chrono::duration<double>(now - refilled_).count();
        refilled_ = now;
        tokens_ = std::min(opts_.max_burst, tokens_ + elapsed * opts_.max_rate);
        if (tokens_ < 1) return false;
        tokens_ -= 1;
        return true;
    }

    asio::awaitable<void> reader() {
        beast::flat_buffer buffer;
        for (;;) {
            buffer.clear();
            auto [ec, n] = co_await ws_.async_read(buffer, tuple_awaitable);
            if (ec) co_return; // closed, too big (Beast sent 1009), reset, timed out
            if (closing_) continue; // drain until the peer answers our close frame
            if (!ws_.got_text()) {
                close(websocket::close_code::unknown_data, "binary frames are not supported", false);
                continue;
            }
            if (!allow_rate()) {
                close(websocket::close_code::policy_error,
                      "rate limit: more than " + std::to_string(static_cast<long>(opts_.max_rate)) +
                          " messages per second",
                      false);
                continue;
            }
            const auto data = buffer.cdata();
            protocol::parsed p = protocol::parse(
                std::string_view(static_cast<const char*>(data.data()), data.size()));
            if (!p.fatal.empty()) {
                close(websocket::close_code::bad_payload, p.fatal, false);
                continue;
            }
            if (!p.invalid.empty()) {
                reply(protocol::error(p.req.id, "bad_request", p.invalid));
                continue;
            }
            co_await handle(p.req);
        }
    }

    asio::awaitable<void> handle(protocol::request& req) {
        using protocol::op;
        if (req.kind == op::connect) {
            connect(req);
            co_return;
        }
        if (!connected_) {
            ++srv_.counters.refused_total;
            close(websocket::close_code::policy_error, "the first message must be connect", false);
            co_return;
        }
        switch (req.kind) {
        case op::subscribe: co_await subscribe(req); break;
        case op::unsubscribe: unsubscribe(req); break;
        case op::publish: co_await publish_(req); break;
        case op::ping: reply(protocol::pong(req.id)); break;
        case op::connect: break;
        }
    }

    void connect(const protocol::request& req) {
        if (connected_) {
            reply(protocol::error(req.id, "bad_request", "already connected"));
            return;
        }
        if (req.token) {
            if (opts_.token_secret.empty()) {
                ++srv_.counters.refused_total;
                close(4001, "this gateway takes no tokens", false);
                return;
            }
            try {
                claims_ = verify_token(*req.token, opts_.token_secret,
                                       std::chrono::system_clock::now());
            } catch (const boost::system::system_error& e) {
                ++srv_.counters.refused_total;
                close(e.code() == token_error::expired ? 4003 : 4001, protocol::describe(e), false);
                return;
            }
            anonymous_ = false;
            connected_ = true;
            const auto left = std::chrono::system_clock::from_time_t(claims_.expires) -
                              std::chrono::system_clock::now();
            deadline_.expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(left));
        } else {
            if (opts_.anonymous.empty()) {
                ++srv_.counters.refused_total;
                close(4001, "a token is required", false);
                return;
            }
            anonymous_ = true;
            connected_ = true;
            deadline_.expires_at(asio::steady_timer::time_point::max());
        }
        reply(protocol::connected(id_, claims_.subject, claims_.expires));
    }

    bool may_subscribe_to(std::string_view channel) const {
        if (!anonymous_ && may_subscribe(claims_, channel)) return true;
        for (const auto& p : opts_.anonymous)
            if (pattern_matches(p, channel)) return true;
        return false;
    }

    asio::awaitable<void> subscribe(protocol::request& req) {
        if (!valid_channel(req.channel)) {
            reply(protocol::error(req.id, "bad_request", "bad channel name"));
            co_return;
        }
        if (!may_subscribe_to(req.channel)) {
            reply(protocol::error(req.id, "forbidden",
                                  "not allowed to subscribe to '" + req.channel + "'"));
            co_return;
        }
        if (subs_.count(req.channel)) {
            reply(protocol::error(req.id, "already_subscribed", "already subscribed to '" + req.channel + "'"));
            co_return;
        }
        if (subs_.size() >= opts_.max_channels) {
            close(websocket::close_code::policy_error,
                  "too many channels (limit " + std::to_string(opts_.max_channels) + ")", false);
            co_return;
        }
        const std::string channel = req.channel;
        subs_.emplace(channel, subscription_state{});
        bool joined = false;
        std::string failure;
        try {
            co_await srv_.hub.join(channel, this);
            joined = true;
        } catch (const std::exception& e) {
            failure = protocol::describe(e);
        }
        if (!joined) {
            subs_.erase(channel);
            reply(protocol::error(req.id, "unavailable", "cannot subscribe: " + failure));
            co_return;
        }
        std::string extra = protocol::field("channel", channel);
        std::optional<std::string> floor;
        std::vector<std::string> missed;
        if (const history_rule* rule = history_for(opts_.history, channel)) {
            std::optional<history::recovery> rec;
            try {
                const std::string redis_channel = opts_.channel_prefix + channel;
                const std::string from = req.offset.value_or("");
                rec = co_await history::recover(srv_.redis, *rule, redis_channel, from);
            } catch (const std::exception& e) {
                failure = protocol::describe(e);
            }
            if (over_) co_return;
            if (!rec) {
                srv_.hub.leave(channel, this);
                subs_.erase(channel);
                reply(protocol::error(req.id, "unavailable", "cannot read history: " + failure));
                co_return;
            }
            extra += "," + protocol::field("offset", rec->newest);
            if (req.offset) extra += rec->gap ? ",\"recovered\":false" : ",\"recovered\":true";
            if (req.offset && !rec->gap) {
                const std::string quoted = protocol::quoted(channel);
                for (auto& [offset, data] : rec->entries)
                    missed.push_back(protocol::push(quoted, offset, data));
            }
            floor = rec->newest;
            srv_.hub.note_offset(channel, rec->newest);
        }
        if (over_) co_return;
        auto it = subs_.find(channel);
        if (it == subs_.end()) co_return;
        reply(protocol::ok(req.id, extra));
        for (auto& line : missed) reply(std::move(line));
        // Live messages that came while history was read: only those after it.
        for (auto& [line, offset] : it->second.pending)
            if (!floor || !offset || protocol::offset_less(*floor, *offset)) enqueue(line);
        it->second.pending.clear();
        it->second.syncing = false;
    }

    void unsubscribe(const protocol::request& req) {
        auto it = subs_.find(req.channel);
        if (it == subs_.end()) {
            reply(protocol::error(req.id, "not_subscribed", "not subscribed to '" + req.channel + "'"));
            return;
        }
        subs_.erase(it);
        srv_.hub.leave(req.channel, this);
        reply(protocol::ok(req.id));
    }

    asio::awaitable<void> publish_(protocol::request& req) {
        if (anonymous_ || !may_publish(claims_, req.channel)) {
            reply(protocol::error(req.id, "forbidden", "not allowed to publish to '" + req.channel + "'"));
            co_return;
        }
        std::optional<std::string> offset;
        std::string failure, code = "unavailable";
        bool done = false;
        try {
            std::string channel = req.channel;
            std::string data = std::move(req.data);
            offset = co_await gateway::publish(srv_.redis, opts_, std::move(channel), std::move(data));
            done = true;
            ++srv_.counters.published;
        } catch (const boost::system::system_error& e) {
            failure = protocol::describe(e);
            if (e.code().category() == gateway_category()) code = "bad_request";
        }
        if (!done) {
            reply(protocol::error(req.id, code, failure));
            co_return;
        }
        reply(protocol::ok(req.id, offset ? protocol::field("offset", *offset) : std::string{}));
    }

    WsStream& ws_;
    server_state& srv_;
    const options& opts_;
    asio::steady_timer wake_;     // the writer waits on it for the queue
    asio::steady_timer deadline_; // connect timeout, token expiry, close grace
    asio::steady_timer finished_; // run() waits on it for the writer and watchdog
    std::string id_;
    token_claims claims_;
    bool anonymous_ = true;
    bool connected_ = false;
    bool over_ = false;
    bool writer_waiting_ = false;
    bool writer_done_ = false;
    bool watchdog_done_ = false;
    std::optional<websocket::close_reason> closing_;
    std::deque<line_ptr> queue_;
    std::unordered_map<std::string, subscription_state> subs_;
    double tokens_;
    std::chrono::steady_clock::time_point refilled_;
};

// Accepts the upgrade and runs the session (run_websocket of upgrade.hpp, for each stream).
template <class WsStream>
asio::awaitable<void> accept_and_run(WsStream& ws, upgrade_request& req, server_state& state) {
    const options& opts = state.opts;
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(5);
    t.idle_timeout = opts.idle_timeout;
    t.keep_alive_pings = true;
    ws.set_option(t);
    ws.read_message_max(opts.max_frame);
    ws.auto_fragment(false);
    ws.text(true);
    auto [ec] = co_await ws.async_accept(req, tuple_awaitable);
    if (ec) co_return;
    session<WsStream> s(ws, state);
    co_await s.run();
}

} // namespace akv::gateway::detail
