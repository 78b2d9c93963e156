// One session: a reader (client requests, limits) and a writer (the bounded send queue, several
// messages per frame), over any Beast WebSocket stream (TCP or TLS) or an event_stream (SSE and
// HTTP streaming, which look like one). Only session_tcp.cpp
// and session_tls.cpp include this: Beast's WebSocket code stays out of every other file.
#pragma once

#include "event_stream.hpp"
#include "history.hpp"
#include "hub.hpp"
#include "presence.hpp"
#include "protocol.hpp"
#include "server_state.hpp"
#include "upgrade.hpp"

#include <akv/gateway/publish.hpp>
#include <akv/gateway/token.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <chrono>
#include <ctime>
#include <unordered_map>

namespace akv::gateway::detail {

namespace beast = boost::beast;
namespace websocket = beast::websocket;

// What the connect proxy is told about the client's transport.
template <class Stream> const char* transport_name(const Stream&) { return "websocket"; }
template <class Next> const char* transport_name(const event_stream<Next>& s) {
    return s.kind() == stream_kind::sse ? "sse" : "http_stream";
}

// A session's queue of lines to send: a ring that gives its memory back once drained past a
// few entries (most sessions are idle most of the time; a std::deque keeps 576 bytes even
// empty).
class send_queue {
public:
    bool empty() const noexcept { return head_ == items_.size(); }
    std::size_t size() const noexcept { return items_.size() - head_; }
    line_ptr& front() noexcept { return items_[head_]; }
    void push_back(line_ptr line) { items_.push_back(std::move(line)); }
    void pop_front() noexcept {
        items_[head_++].reset();
        if (head_ == items_.size())
            clear_keeping_small();
        else if (head_ >= 64 && head_ * 2 >= items_.size()) {
            // Dropping the oldest of a full queue: the dead half goes, amortized O(1).
            items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
    }
    void clear() noexcept {
        std::vector<line_ptr>().swap(items_);
        head_ = 0;
    }

private:
    void clear_keeping_small() noexcept {
        if (items_.capacity() > 8)
            std::vector<line_ptr>().swap(items_);
        else
            items_.clear();
        head_ = 0;
    }
    std::vector<line_ptr> items_;
    std::size_t head_ = 0;
};

// A session keeps itself alive: each pending operation (a read, a write, the watchdog's
// timer, a request being handled) holds it, and an idle one holds no coroutine frame, only its
// stream, one read and one timer wait (README "Memory"). `WsStream` is a Beast WebSocket
// stream it owns, or a reference to an event_stream its caller keeps.
template <class WsStream>
class session final : public listener,
                      public session_handle,
                      public std::enable_shared_from_this<session<WsStream>> {
public:
    // `forwarded`: the client's request headers for the connect proxy.
    template <class StreamArg>
    session(StreamArg&& stream, worker& w, server_state& srv, header_list forwarded = {})
        : ws_(std::forward<StreamArg>(stream))
        , w_(w)
        , srv_(srv)
        , opts_(srv.opts)
        , deadline_(w.get_executor())
        , id_(srv.id_prefix + std::to_string(w.index()) + "." +
              std::to_string(w.counters.sessions_total.load(std::memory_order_relaxed) + 1))
        , forwarded_(std::move(forwarded))
        , tokens_(srv.opts.max_burst)
        , refilled_(std::chrono::steady_clock::now()) {
        srv_.live_sessions.fetch_add(1, std::memory_order_relaxed);
        deadline_.expires_after(opts_.connect_timeout);
    }

    ~session() {
        srv_.live_sessions.fetch_sub(1, std::memory_order_relaxed);
        w_.changed();
        if (auto t = gone_.lock()) t->cancel();
    }

    WsStream& stream() noexcept { return ws_; }

    // Cancelled when the session is gone: a caller that keeps its stream alive waits on it.
    void notify_when_gone(std::weak_ptr<asio::steady_timer> t) { gone_ = std::move(t); }

    // Accepts the WebSocket upgrade `req` (freed once accepted), then starts.
    void accept_and_start(std::unique_ptr<upgrade_request> req) {
        const upgrade_request& r = *req;
        ws_.async_accept(r, [self = this->shared_from_this(), req = std::move(req)](
                                beast::error_code ec) mutable {
            req.reset(); // its headers are not needed for the session's lifetime
            if (!ec) self->start();
        });
    }

    // Registers the session with its worker and starts its watchdog and reader.
    void start() {
        w_.sessions.push_back(this);
        registered_ = true;
        srv_.open_sessions.fetch_add(1, std::memory_order_relaxed);
        worker_counters::add(w_.counters.sessions);
        worker_counters::add(w_.counters.sessions_total);
        watch();
        read_next();
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
    void on_message(const std::string& channel, const delivery& d) override {
        auto it = subs_.find(channel);
        if (it == subs_.end()) return;
        if (d.join_leave && !it->second.join_leave) return;
        if (it->second.syncing) {
            it->second.pending.push_back(d);
            return;
        }
        enqueue(d.line);
    }

    void on_resync(const std::string& channel) override {
        auto it = subs_.find(channel);
        if (it == subs_.end()) return;
        if (it->second.syncing) {
            it->second.resync = true; // told once its subscribe has answered
            return;
        }
        if (it->second.present) leave_presence(channel);
        subs_.erase(it);
        reply(protocol::resync(protocol::quoted(channel)));
    }

private:
    struct subscription_state {
        bool syncing = true;     // subscribe still reading history: live messages wait
        bool resync = false;     // the hub dropped it meanwhile
        bool join_leave = false; // the client asked for join and leave pushes
        bool present = false;    // its presence entry is in Redis
        std::vector<delivery> pending;
    };

    // Runs `task` on the hub's executor (the presence registry lives there) and waits.
    template <class T> asio::awaitable<T> on_hub(asio::awaitable<T> task) {
        if (w_.on_hub_executor()) co_return co_await std::move(task);
        co_return co_await asio::co_spawn(srv_.redis.get_executor(), std::move(task),
                                          asio::use_awaitable);
    }

    // Leaves `channel`'s presence, without waiting (a failure leaves the entry to expire).
    void leave_presence(const std::string& channel) {
        const presence_rule* rule = presence::rule_for(opts_.presence, channel);
        if (!rule) return;
        asio::co_spawn(srv_.redis.get_executor(),
                       srv_.presence.remove(channel, id_, rule->join_leave), asio::detached);
    }

    void enqueue(line_ptr line) {
        if (closing_ || over_) return;
        if (queue_.size() >= opts_.send_queue) {
            if (opts_.slow_policy == slow_consumer_policy::disconnect) {
                worker_counters::add(w_.counters.slow_disconnects);
                worker_counters::add(w_.counters.dropped, queue_.size() + 1);
                close(4008, "slow consumer: more than " + std::to_string(opts_.send_queue) +
                                " messages waiting", false);
                return;
            }
            queue_.pop_front();
            worker_counters::add(w_.counters.dropped);
        }
        queue_.push_back(std::move(line));
        schedule_write();
    }

    // Starts the writer after what is running now (a hub batch, a request's replies) has
    // queued everything it has: those go out in one frame, not one write each.
    void schedule_write() {
        if (writing_) return;
        writing_ = true; // reserved for the posted start
        asio::post(w_.get_executor(), [self = this->shared_from_this()] { self->write_next(); });
    }

    void reply(std::string text) { enqueue(std::make_shared<const std::string>(std::move(text))); }

    // Asks the writer to send a close frame: after the queue when `drain`, at once otherwise.
    void close(std::uint16_t code, std::string reason, bool drain) {
        if (closing_ || over_) return;
        reason = protocol::truncate_utf8(reason, 120); // a close frame holds 123 bytes of reason
        closing_ = std::make_unique<websocket::close_reason>();
        closing_->code = code;
        closing_->reason = reason;
        if (!drain) queue_.clear();
        schedule_write();
        // A peer that reads nothing never lets the close frame out: cut it off after a while.
        deadline_.expires_after(drain ? opts_.shutdown_grace : std::chrono::milliseconds(2000));
    }

    // The writer: one write at a time, started when something is queued; several queued lines
    // go in one frame (up to 256 KiB), copied into one buffer, which costs less than Beast
    // walking many small ones; a single one goes as it is (its shared line).
    void write_next() {
        if (over_) {
            writing_ = false;
            return;
        }
        if (queue_.empty()) {
            if (closing_ && !close_sent_) {
                close_sent_ = true;
                writing_ = true;
                ws_.async_close(*closing_, [self = this->shared_from_this()](beast::error_code) {
                    self->writing_ = false;
                });
                return;
            }
            writing_ = false;
            if (frame_.capacity() > 16 * 1024) std::string().swap(frame_); // a burst is over
            return;
        }
        writing_ = true;
        std::size_t count = 0;
        if (queue_.size() == 1) {
            one_ = std::move(queue_.front());
            queue_.pop_front();
            count = 1;
            ws_.async_write(asio::buffer(*one_), [self = this->shared_from_this()](
                                                     beast::error_code ec, std::size_t) {
                self->written(ec, 1);
            });
            return;
        }
        frame_.clear();
        while (!queue_.empty() && frame_.size() < 256 * 1024) {
            if (count++) frame_ += '\n';
            frame_ += *queue_.front();
            queue_.pop_front();
        }
        ws_.async_write(asio::buffer(frame_), [self = this->shared_from_this(), count](
                                                  beast::error_code ec, std::size_t) {
            self->written(ec, count);
        });
    }

    void written(beast::error_code ec, std::size_t count) {
        one_.reset();
        if (ec) {
            writing_ = false; // the reader sees the socket fail and ends the session
            return;
        }
        worker_counters::add(w_.counters.messages_out, count);
        worker_counters::add(w_.counters.frames_out);
        write_next();
    }

    // The watchdog: the connect timeout, then the token's expiry, then a close's grace. Moving
    // deadline_ cancels the wait, which waits again for the new time.
    void watch() {
        deadline_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
            self->on_deadline(ec);
        });
    }

    void on_deadline(beast::error_code ec) {
        if (over_) return;
        if (ec) {
            watch(); // moved: wait for the new time
            return;
        }
        if (closing_) {
            force_close(); // a peer that reads nothing never lets the close frame out
            return;
        }
        if (!connected_) {
            worker_counters::add(w_.counters.refused_total);
            close(websocket::close_code::policy_error, "no connect message in time", false);
        } else {
            close(4003, "token expired", false);
        }
        watch();
    }

    // Tells the hub, on its executor, where this session read the channel's history.
    void note_position(const std::string& channel, const std::string& offset,
                       const std::string& epoch) {
        if (w_.on_hub_executor()) {
            srv_.hub.note_position(channel, offset, epoch);
            return;
        }
        asio::post(srv_.redis.get_executor(), [&hub = srv_.hub, channel, offset, epoch] {
            hub.note_position(channel, offset, epoch);
        });
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

    // The reader: one read at a time, and none while a request is handled (requests are
    // answered in order). Client messages are rare: no buffer is kept between them, and the
    // read that waits for the next one asks for a few bytes only (Beast would otherwise hold
    // 1.5 KiB of buffer per idle session); the rest of a message follows in bigger reads.
    void read_next() {
        if (over_) return;
        buffer_.clear();
        buffer_.shrink_to_fit();
        read_more(64);
    }

    void read_more(std::size_t limit) {
        ws_.async_read_some(buffer_, limit,
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                                self->on_read(ec);
                            });
    }

    void on_read(beast::error_code ec) {
        if (ec) { // closed, too big (Beast sent 1009), reset, timed out
            end();
            return;
        }
        if (!ws_.is_message_done()) return read_more(0);
        if (closing_) return read_next(); // drain until the peer answers our close frame
        if (!ws_.got_text()) {
            close(websocket::close_code::unknown_data, "binary frames are not supported", false);
            return read_next();
        }
        if (!allow_rate()) {
            close(websocket::close_code::policy_error,
                  "rate limit: more than " + std::to_string(static_cast<long>(opts_.max_rate)) +
                      " messages per second",
                  false);
            return read_next();
        }
        const auto data = buffer_.cdata();
        protocol::parsed p = protocol::parse(
            std::string_view(static_cast<const char*>(data.data()), data.size()));
        if (!p.fatal.empty()) {
            close(websocket::close_code::bad_payload, p.fatal, false);
            return read_next();
        }
        if (!p.invalid.empty()) {
            reply(protocol::error(p.req.id, "bad_request", p.invalid));
            return read_next();
        }
        if (p.req.kind == protocol::op::ping && connected_) { // the common one, at once
            reply(protocol::pong(p.req.id));
            return read_next();
        }
        asio::co_spawn(w_.get_executor(), handle_owned(std::move(p.req)),
                       [self = this->shared_from_this()](std::exception_ptr) {
                           self->read_next();
                       });
    }

    asio::awaitable<void> handle_owned(protocol::request req) { co_await handle(req); }

    // The reader saw the end: the close handshake is done, or the socket failed.
    void end() {
        if (over_) return;
        over_ = true;
        queue_.clear();
        deadline_.cancel();
        if (writing_) force_close(); // a write still pending goes nowhere
        for (auto& [name, st] : subs_) {
            w_.leave(name, this);
            if (st.present) leave_presence(name);
        }
        subs_.clear();
        if (registered_) {
            std::erase(w_.sessions, static_cast<session_handle*>(this));
            w_.counters.sessions.store(w_.counters.sessions.load(std::memory_order_relaxed) - 1,
                                       std::memory_order_relaxed);
            srv_.open_sessions.fetch_sub(1, std::memory_order_relaxed);
        }
        w_.changed();
    }

    asio::awaitable<void> handle(protocol::request& req) {
        using protocol::op;
        if (req.kind == op::connect) {
            co_await connect(req);
            // The token's server-side channels, from the positions the client held.
            if (connected_ && !closing_)
                for (const std::string& ch : claims_.subs) {
                    protocol::request sub;
                    sub.kind = op::subscribe;
                    sub.channel = ch;
                    if (auto at = req.positions.find(ch); at != req.positions.end()) {
                        sub.offset = at->second.first;
                        sub.epoch = at->second.second;
                    }
                    co_await subscribe(sub, true);
                    if (over_ || closing_) break;
                }
            co_return;
        }
        if (!connected_) {
            worker_counters::add(w_.counters.refused_total);
            close(websocket::close_code::policy_error, "the first message must be connect", false);
            co_return;
        }
        switch (req.kind) {
        case op::subscribe: co_await subscribe(req); break;
        case op::unsubscribe: unsubscribe(req); break;
        case op::publish: co_await publish_(req); break;
        case op::presence:
        case op::presence_stats: co_await read_presence(req); break;
        case op::rpc: co_await rpc(req); break;
        case op::ping: reply(protocol::pong(req.id)); break;
        case op::connect: break;
        }
    }

    asio::awaitable<void> connect(const protocol::request& req) {
        if (connected_) {
            reply(protocol::error(req.id, "bad_request", "already connected"));
            co_return;
        }
        if (req.token) {
            if (opts_.token_secret.empty()) {
                worker_counters::add(w_.counters.refused_total);
                close(4001, "this gateway takes no tokens", false);
                co_return;
            }
            try {
                claims_ = verify_token(*req.token, opts_.token_secret,
                                       std::chrono::system_clock::now());
            } catch (const boost::system::system_error& e) {
                worker_counters::add(w_.counters.refused_total);
                close(e.code() == token_error::expired ? 4003 : 4001, protocol::describe(e), false);
                co_return;
            }
            anonymous_ = false;
        } else if (srv_.proxy.enabled(proxy_kind::connect)) {
            // The application decides who this is (its own session cookie, say).
            boost::json::object ask{{"client", id_}, {"transport", transport_name(ws_)}};
            if (!req.data.empty()) ask["data"] = boost::json::parse(req.data);
            const proxy_outcome r = co_await srv_.proxy.ask(proxy_kind::connect, ask, forwarded_);
            if (over_ || closing_) co_return;
            std::string bad;
            if (r.state == proxy_outcome::verdict::ok) {
                bad = claims_from_result(r.result, claims_);
                if (bad.empty() && claims_.expires != 0 && claims_.expires <= std::time(nullptr))
                    bad = "\"expire_at\" has passed";
            }
            if (r.state != proxy_outcome::verdict::ok || !bad.empty()) {
                worker_counters::add(w_.counters.refused_total);
                if (r.state == proxy_outcome::verdict::rejected)
                    close(r.disconnect ? r.disconnect : 4001,
                          r.message.empty() ? "refused by the connect proxy" : r.message, false);
                else
                    close(1013, bad.empty() ? r.message : "connect proxy: " + bad, false);
                co_return;
            }
            anonymous_ = false;
        } else {
            if (opts_.anonymous.empty()) {
                worker_counters::add(w_.counters.refused_total);
                close(4001, "a token is required", false);
                co_return;
            }
            anonymous_ = true;
        }
        connected_ = true;
        if (anonymous_ || claims_.expires == 0) {
            deadline_.expires_at(asio::steady_timer::time_point::max());
        } else {
            const auto left = std::chrono::system_clock::from_time_t(claims_.expires) -
                              std::chrono::system_clock::now();
            deadline_.expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(left));
        }
        reply(protocol::connected(id_, claims_.subject, claims_.expires));
    }

    // Asks the application's proxy `k` about this session's `channel` (and data); an error
    // reply (through `answer`) unless it said yes.
    template <class Answer>
    asio::awaitable<std::optional<proxy_outcome>>
    ask_proxy(proxy_kind k, const std::string& channel, const std::string& data, Answer&& answer) {
        boost::json::object ask{{"client", id_}, {"user", claims_.subject}, {"channel", channel}};
        if (!data.empty()) ask["data"] = boost::json::parse(data);
        proxy_outcome r = co_await srv_.proxy.ask(k, ask);
        if (over_) co_return std::nullopt;
        if (r.state == proxy_outcome::verdict::ok) co_return r;
        if (r.state == proxy_outcome::verdict::rejected)
            answer("forbidden", r.message.empty() ? std::string("refused by the ") + name_of(k) +
                                                        " proxy"
                                                  : r.message);
        else
            answer("unavailable", r.message);
        co_return std::nullopt;
    }

    asio::awaitable<void> rpc(protocol::request& req) {
        if (!srv_.proxy.enabled(proxy_kind::rpc)) {
            reply(protocol::error(req.id, "not_available", "no RPC proxy is configured"));
            co_return;
        }
        boost::json::object ask{{"client", id_}, {"user", claims_.subject}, {"method", req.method}};
        if (!req.data.empty()) ask["data"] = boost::json::parse(req.data);
        proxy_outcome r = co_await srv_.proxy.ask(proxy_kind::rpc, ask);
        if (over_) co_return;
        if (r.state == proxy_outcome::verdict::rejected) {
            reply(protocol::error(req.id, r.code, r.message));
        } else if (r.state == proxy_outcome::verdict::unavailable) {
            reply(protocol::error(req.id, "unavailable", r.message));
        } else {
            const boost::json::value* d = r.result.if_contains("data");
            const auto data = protocol::one_line_json(d ? boost::json::serialize(*d) : "null");
            reply(protocol::ok(req.id, "\"data\":" + data.value_or("null")));
        }
    }

    bool may_subscribe_to(std::string_view channel) const {
        if (!anonymous_ && may_subscribe(claims_, channel)) return true;
        if (is_console_channel(channel)) return false; // never anonymous
        for (const auto& p : opts_.anonymous)
            if (pattern_matches(p, channel)) return true;
        return false;
    }

    // A client's subscribe, or (`server_side`) one of its token's "subs": those are allowed by
    // the token itself and answered by pushes, {"op":"subscribed",...} or
    // {"op":"subscribe_failed","channel":...,"error":{...}}.
    asio::awaitable<void> subscribe(protocol::request& req, bool server_side = false) {
        const auto answer_error = [&](std::string_view code, std::string_view message) {
            if (server_side)
                reply("{\"op\":\"subscribe_failed\"," + protocol::field("channel", req.channel) +
                      ",\"error\":{" + protocol::field("code", code) + "," +
                      protocol::field("message", message) + "}}");
            else
                reply(protocol::error(req.id, code, message));
        };
        if (!valid_channel(req.channel)) {
            answer_error("bad_request", "bad channel name");
            co_return;
        }
        // The console's channels need the admin claim whoever else allows them: a token's
        // "subs", a connect proxy's channels or the subscribe proxy.
        if (is_console_channel(req.channel) && (anonymous_ || claims_.admin.empty())) {
            answer_error("forbidden", "channels under \"akv:console:\" need an admin claim");
            co_return;
        }
        if (!server_side && !may_subscribe_to(req.channel)) {
            if (!srv_.proxy.enabled(proxy_kind::subscribe)) {
                answer_error("forbidden", "not allowed to subscribe to '" + req.channel + "'");
                co_return;
            }
            // Not in the claims: the application may still allow it.
            const std::string no_data;
            if (!co_await ask_proxy(proxy_kind::subscribe, req.channel, no_data, answer_error))
                co_return;
            if (closing_) co_return;
        }
        if (subs_.count(req.channel)) {
            answer_error("already_subscribed", "already subscribed to '" + req.channel + "'");
            co_return;
        }
        if (subs_.size() >= opts_.max_channels) {
            close(websocket::close_code::policy_error,
                  "too many channels (limit " + std::to_string(opts_.max_channels) + ")", false);
            co_return;
        }
        const presence_rule* presence_of = presence::rule_for(opts_.presence, req.channel);
        if (req.join_leave && !(presence_of && presence_of->join_leave)) {
            answer_error("not_available",
                                  "join and leave are not kept for '" + req.channel + "'");
            co_return;
        }
        const std::string channel = req.channel;
        subs_.emplace(channel, subscription_state{});
        subs_[channel].join_leave = req.join_leave;
        bool joined = false;
        std::string failure;
        try {
            co_await w_.join(channel, this);
            joined = true;
        } catch (const std::exception& e) {
            failure = protocol::describe(e);
        }
        if (!joined) {
            subs_.erase(channel);
            answer_error("unavailable", "cannot subscribe: " + failure);
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
                const std::string epoch = req.epoch.value_or("");
                rec = co_await history::recover(srv_.redis, *rule, redis_channel, from, epoch);
            } catch (const std::exception& e) {
                failure = protocol::describe(e);
            }
            if (over_) co_return;
            if (!rec) {
                w_.leave(channel, this);
                subs_.erase(channel);
                answer_error("unavailable", "cannot read history: " + failure);
                co_return;
            }
            extra += "," + protocol::field("offset", rec->newest) + "," +
                     protocol::field("epoch", rec->epoch);
            if (req.offset) extra += rec->gap ? ",\"recovered\":false" : ",\"recovered\":true";
            if (req.offset && !rec->gap) {
                const std::string quoted = protocol::quoted(channel);
                for (auto& [offset, data] : rec->entries)
                    missed.push_back(protocol::push(quoted, offset, data));
            }
            floor = rec->newest;
            note_position(channel, rec->newest, rec->epoch);
        }
        if (over_) co_return;
        if (presence_of && subs_.count(channel)) {
            // In the channel's presence before the reply: a presence read after it shows us.
            failure.clear();
            try {
                co_await on_hub(srv_.presence.add(
                    channel, id_, presence::entry_json(id_, claims_.subject, claims_.info),
                    presence_of->join_leave));
            } catch (const std::exception& e) {
                failure = protocol::describe(e);
            }
            if (over_) co_return;
            if (!failure.empty()) {
                if (subs_.erase(channel)) w_.leave(channel, this);
                answer_error("unavailable", "cannot join presence: " + failure);
                co_return;
            }
            if (auto p = subs_.find(channel); p != subs_.end())
                p->second.present = true;
            else
                leave_presence(channel); // resynced meanwhile: not subscribed any more
        }
        auto it = subs_.find(channel);
        if (it == subs_.end()) co_return;
        if (server_side)
            reply("{\"op\":\"subscribed\"," + extra + "}");
        else
            reply(protocol::ok(req.id, extra));
        for (auto& line : missed) reply(std::move(line));
        // Live messages that came while history was read: only those after it.
        for (const delivery& d : it->second.pending)
            if (!floor || !d.offset || protocol::offset_less(*floor, *d.offset)) enqueue(d.line);
        it->second.pending.clear();
        it->second.syncing = false;
        if (it->second.resync) {
            if (it->second.present) leave_presence(channel);
            subs_.erase(it);
            reply(protocol::resync(protocol::quoted(channel)));
        }
    }

    void unsubscribe(const protocol::request& req) {
        auto it = subs_.find(req.channel);
        if (it == subs_.end()) {
            reply(protocol::error(req.id, "not_subscribed", "not subscribed to '" + req.channel + "'"));
            return;
        }
        if (it->second.present) leave_presence(req.channel);
        subs_.erase(it);
        w_.leave(req.channel, this);
        reply(protocol::ok(req.id));
    }

    asio::awaitable<void> read_presence(const protocol::request& req) {
        if (anonymous_ || !may_read_presence(claims_, req.channel)) {
            reply(protocol::error(req.id, "forbidden",
                                  "not allowed to read the presence of '" + req.channel + "'"));
            co_return;
        }
        const presence_rule* rule = presence::rule_for(opts_.presence, req.channel);
        if (!rule) {
            reply(protocol::error(req.id, "not_available",
                                  "presence is not kept for '" + req.channel + "'"));
            co_return;
        }
        const std::string redis_channel = opts_.channel_prefix + req.channel;
        std::string extra = protocol::field("channel", req.channel);
        std::string failure;
        try {
            if (req.kind == protocol::op::presence) {
                const std::vector<std::string> entries =
                    co_await presence::list(srv_.redis, redis_channel, rule->join_leave);
                extra += ",\"clients\":[";
                for (std::size_t i = 0; i < entries.size(); ++i) {
                    if (i) extra += ',';
                    extra += protocol::one_line_json(entries[i]).value_or("null");
                }
                extra += ']';
            } else {
                const presence::counts c =
                    co_await presence::stats(srv_.redis, redis_channel, rule->join_leave);
                extra += ",\"clients\":" + std::to_string(c.clients) +
                         ",\"users\":" + std::to_string(c.users);
            }
        } catch (const std::exception& e) {
            failure = protocol::describe(e);
        }
        if (!failure.empty()) {
            reply(protocol::error(req.id, "unavailable", failure));
            co_return;
        }
        reply(protocol::ok(req.id, extra));
    }

    asio::awaitable<void> publish_(protocol::request& req) {
        if (is_console_channel(req.channel)) {
            reply(protocol::error(req.id, "forbidden",
                                  "channels under \"akv:console:\" are the console's own"));
            co_return;
        }
        if (srv_.proxy.enabled(proxy_kind::publish)) {
            // The application allows, refuses, or replaces what is published.
            const auto answer = [&](std::string_view code, std::string_view message) {
                reply(protocol::error(req.id, code, message));
            };
            auto r = co_await ask_proxy(proxy_kind::publish, req.channel, req.data, answer);
            if (!r || closing_) co_return;
            if (const boost::json::value* d = r->result.if_contains("data")) {
                auto replaced = protocol::one_line_json(boost::json::serialize(*d));
                if (!replaced) {
                    reply(protocol::error(req.id, "unavailable",
                                          "publish proxy: its \"data\" is not JSON"));
                    co_return;
                }
                req.data = std::move(*replaced);
            }
        } else if (anonymous_ || !may_publish(claims_, req.channel)) {
            reply(protocol::error(req.id, "forbidden", "not allowed to publish to '" + req.channel + "'"));
            co_return;
        }
        std::optional<position> at;
        std::string failure, code = "unavailable";
        bool done = false;
        try {
            std::string channel = req.channel;
            std::string data = std::move(req.data);
            at = co_await gateway::publish(srv_.redis, opts_, std::move(channel), std::move(data));
            done = true;
            worker_counters::add(w_.counters.published);
        } catch (const boost::system::system_error& e) {
            failure = protocol::describe(e);
            if (e.code().category() == gateway_category()) code = "bad_request";
        }
        if (!done) {
            reply(protocol::error(req.id, code, failure));
            co_return;
        }
        reply(protocol::ok(req.id, at ? protocol::field("offset", at->offset) + "," +
                                            protocol::field("epoch", at->epoch)
                                      : std::string{}));
    }

    WsStream ws_;
    worker& w_;
    server_state& srv_;
    const options& opts_;
    asio::steady_timer deadline_; // connect timeout, token expiry, close grace
    std::string id_;
    token_claims claims_;
    bool anonymous_ = true;
    bool connected_ = false;
    bool over_ = false;
    bool registered_ = false; // in w_.sessions (after the upgrade)
    bool writing_ = false;    // a write (or the close) is pending
    bool close_sent_ = false;
    std::unique_ptr<websocket::close_reason> closing_; // set once: a close_reason is 130 bytes
    line_ptr one_;              // the line being written alone
    std::string frame_;         // the lines being written together
    beast::flat_buffer buffer_; // the message being read
    std::weak_ptr<asio::steady_timer> gone_;
    send_queue queue_;
    std::unordered_map<std::string, subscription_state> subs_;
    header_list forwarded_;
    double tokens_;
    std::chrono::steady_clock::time_point refilled_;
};

// A WebSocket session on `stream_arg` (what websocket::stream<Next> is built from): sets the
// stream's options, accepts the upgrade and starts the session, which then lives on its own
// (run_websocket of upgrade.hpp). Returns the session, to wait for it when its stream's lower
// layers live in the caller.
template <class Next, class StreamArg>
std::shared_ptr<session<websocket::stream<Next>>>
start_websocket(StreamArg&& stream_arg, std::unique_ptr<upgrade_request> req, worker& w,
                server_state& state) {
    const options& opts = state.opts;
    header_list forwarded;
    if (state.proxy.enabled(proxy_kind::connect)) forwarded = forwarded_headers(*req, opts.proxy);
    auto s = std::make_shared<session<websocket::stream<Next>>>(
        std::forward<StreamArg>(stream_arg), w, state, std::move(forwarded));
    auto& ws = s->stream();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(5);
    t.idle_timeout = opts.idle_timeout;
    t.keep_alive_pings = true;
    ws.set_option(t);
    ws.read_message_max(opts.max_frame);
    ws.auto_fragment(false);
    ws.text(true);
    s->accept_and_start(std::move(req));
    return s;
}

// Waits until `s` is gone (its caller keeps what its stream refers to).
template <class Session> asio::awaitable<void> wait_gone(std::shared_ptr<Session> s) {
    auto gone = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
    gone->expires_at(asio::steady_timer::time_point::max());
    s->notify_when_gone(gone);
    s.reset();
    co_await gone->async_wait(tuple_awaitable);
}

// Starts the streaming response and runs the session over it (run_event_stream of upgrade.hpp).
template <class Stream>
asio::awaitable<void> stream_and_run(Stream& next, stream_request req, worker& w,
                                     server_state& state) {
    auto in = std::make_shared<inbox>(w.get_executor());
    const std::string key = state.streams.add(in);
    in->post({std::move(req.connect)}, 1);
    const auto beat = std::chrono::duration_cast<std::chrono::milliseconds>(state.opts.idle_timeout) / 2;
    event_stream<Stream> stream(next, req.kind, in, beat);
    if (!co_await stream.start(key, req.allow_origin)) {
        bool watching = true;
        asio::steady_timer watched(w.get_executor());
        asio::co_spawn(w.get_executor(), stream.watch_peer(), [&](std::exception_ptr) {
            watching = false;
            watched.cancel();
        });
        {
            auto s = std::make_shared<session<event_stream<Stream>&>>(stream, w, state,
                                                                       std::move(req.forwarded));
            s->start();
            co_await wait_gone(std::move(s));
        }
        beast::error_code ignored;
        auto& lowest = beast::get_lowest_layer(stream);
        if constexpr (requires { lowest.socket(); }) {
            lowest.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
            lowest.socket().close(ignored);
        } else {
            lowest.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
            lowest.close(ignored);
        }
        while (watching) {
            watched.expires_at(asio::steady_timer::time_point::max());
            co_await watched.async_wait(tuple_awaitable);
        }
    }
    state.streams.remove(key);
    in->close();
}

} // namespace akv::gateway::detail
