#include <akv/cluster/router.hpp>

#include <akv/client.hpp>
#include <akv/cluster/command_keys.hpp>
#include <akv/cluster_slot.hpp>
#include <akv/detail/complete_on.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>

#include <algorithm>
#include <array>
#include <charconv>

namespace akv {

using boost::system::error_code;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t none = static_cast<std::size_t>(-1);

using detail::iequals;

std::string key_of(const endpoint& ep) {
    return to_string(ep);
}

// Commands that only read: with read_from_replicas they may go to a replica of their shard.
bool reads_only(std::string_view name) {
    static constexpr std::string_view names[] = {
        "BITCOUNT", "BITPOS",   "DUMP",        "EVALSHA_RO", "EVAL_RO",   "EXISTS",
        "FCALL_RO", "GEODIST",  "GEOHASH",     "GEOPOS",     "GEOSEARCH", "GET",
        "GETBIT",   "GETRANGE", "HEXISTS",     "HGET",       "HGETALL",   "HKEYS",
        "HLEN",     "HMGET",    "HRANDFIELD",  "HSCAN",      "HSTRLEN",   "HVALS",
        "LINDEX",   "LLEN",     "LPOS",        "LRANGE",     "MGET",      "PFCOUNT",
        "PTTL",     "SCARD",    "SDIFF",       "SINTER",     "SISMEMBER", "SMEMBERS",
        "SMISMEMBER", "SORT_RO", "SRANDMEMBER", "SSCAN",     "STRLEN",    "SUNION",
        "TTL",      "TYPE",     "XLEN",        "XRANGE",     "XREVRANGE", "ZCARD",
        "ZCOUNT",   "ZMSCORE",  "ZRANGE",      "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANK",
        "ZREVRANGE", "ZREVRANGEBYSCORE", "ZREVRANK", "ZSCAN", "ZSCORE"};
    for (std::string_view n : names)
        if (iequals(n, name)) return true;
    return false;
}

// One command of a request, read back from the bytes akv::request wrote (arrays of bulk
// strings, so the grammar is small).
struct command_view {
    std::vector<std::string_view> args;
};

bool read_line_number(std::string_view& p, char tag, std::size_t& n) {
    if (p.empty() || p.front() != tag) return false;
    const std::size_t crlf = p.find("\r\n");
    if (crlf == std::string_view::npos) return false;
    auto [ptr, ec] = std::from_chars(p.data() + 1, p.data() + crlf, n);
    if (ec != std::errc{} || ptr != p.data() + crlf) return false;
    p.remove_prefix(crlf + 2);
    return true;
}

// Reads the command at the front of `p`, handing each argument to `arg`; its argument count,
// or 0 if it is malformed or has more than `max_args`.
template <class F> std::size_t read_command(std::string_view& p, std::size_t max_args, F&& arg) {
    std::size_t argc = 0;
    if (!read_line_number(p, '*', argc) || argc == 0 || argc > max_args) return 0;
    for (std::size_t i = 0; i < argc; ++i) {
        std::size_t len = 0;
        if (!read_line_number(p, '$', len) || p.size() < len + 2) return 0;
        arg(i, p.substr(0, len));
        p.remove_prefix(len + 2);
    }
    return argc;
}

// Reuses `out`'s elements (and their capacity) from an earlier request.
bool split_commands(std::string_view p, std::vector<command_view>& out) {
    std::size_t n = 0;
    while (!p.empty()) {
        if (n == out.size()) out.emplace_back();
        command_view& cmd = out[n++];
        cmd.args.clear();
        const auto add = [&cmd](std::size_t, std::string_view a) { cmd.args.push_back(a); };
        if (read_command(p, static_cast<std::size_t>(-1), add) == 0) return false;
    }
    out.resize(n);
    return true;
}

enum class redirect_kind { none, moved, ask, later };

struct redirect {
    redirect_kind kind = redirect_kind::none;
    std::uint16_t slot = 0;
    endpoint to;
};

// "MOVED 3999 127.0.0.1:6381", "ASK 3999 [::1]:6381", "TRYAGAIN ...", "CLUSTERDOWN ...".
// An empty host means the node that answered (Redis says ":6381" when it does not know its
// own address).
redirect parse_redirect(std::string_view text, const endpoint& asked) {
    redirect r;
    if (text.starts_with("TRYAGAIN") || text.starts_with("CLUSTERDOWN") ||
        text.starts_with("LOADING") || text.starts_with("MASTERDOWN")) {
        r.kind = redirect_kind::later;
        return r;
    }
    redirect_kind kind;
    if (text.starts_with("MOVED "))
        kind = redirect_kind::moved;
    else if (text.starts_with("ASK "))
        kind = redirect_kind::ask;
    else
        return r;
    text.remove_prefix(kind == redirect_kind::moved ? 6 : 4);
    const std::size_t space = text.find(' ');
    if (space == std::string_view::npos) return r;
    unsigned slot = 0;
    auto [p1, e1] = std::from_chars(text.data(), text.data() + space, slot);
    if (e1 != std::errc{} || slot >= 16384) return r;
    std::string_view addr = text.substr(space + 1);
    const std::size_t colon = addr.rfind(':');
    if (colon == std::string_view::npos) return r;
    unsigned port = 0;
    auto [p2, e2] = std::from_chars(addr.data() + colon + 1, addr.data() + addr.size(), port);
    if (e2 != std::errc{} || port == 0 || port > 65535) return r;
    std::string_view host = addr.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    r.kind = kind;
    r.slot = static_cast<std::uint16_t>(slot);
    r.to.host = host.empty() || host == "?" ? asked.host : std::string(host);
    r.to.port = static_cast<std::uint16_t>(port);
    return r;
}

// Delivers a reply we made up (a refusal) to the caller's adapter as a simple error.
void deliver_error(const detail::reply_adapter& user, std::size_t index, std::string_view text) {
    const resp::node n{resp::type::simple_error, 0, 0, 0, text.size()};
    user(index, std::span<const resp::node>(&n, 1), text);
}

std::string describe_keys(std::string_view command, const std::vector<std::string_view>& keys) {
    std::string text = "CROSSSLOT keys of " + std::string(command) +
                       " hash to different cluster slots:";
    for (std::size_t i = 0; i < keys.size() && i < 8; ++i) {
        text += i == 0 ? " \"" : ", \"";
        text.append(keys[i].substr(0, 64));
        text += "\" (slot " + std::to_string(cluster_slot(keys[i])) + ")";
    }
    if (keys.size() > 8) text += ", ...";
    text += "; give keys that must live together a common {hash tag}";
    return text;
}

} // namespace

struct cluster_router::node_state {
    node_state(executor_type ex, config c)
        : conn(std::move(ex), std::move(c)) {}
    endpoint ep;
    connection conn;
    bool replica = false;
};

struct cluster_router::exec_state {
    explicit exec_state(executor_type ex)
        : all_done(std::move(ex)) {}
    const request* req = nullptr;
    detail::reply_adapter user;
    request::options opts;
    std::vector<command_view> cmds;
    std::vector<std::size_t> reply_of;       // command -> reply index (none: push-answered)
    std::vector<int> slot;                   // command -> slot, -1 for none
    std::vector<bool> fan_out;               // command -> sent to every master
    std::vector<bool> master_only;           // command -> a replica failed it: no more replicas
    std::vector<std::uint8_t> done;          // command -> reply delivered
    std::map<std::size_t, std::vector<std::string>> fanned; // command -> masters that answered
    std::vector<std::optional<redirect>> to; // command -> where a redirect sent it
    std::size_t bytes = 0;
    std::uint64_t preset_done = 0; // replies a fast attempt delivered already
    bool transaction = false;
    bool cancelled = false;
    std::vector<asio::cancellation_signal*> signals;
    asio::steady_timer all_done;
    std::size_t running = 0;
    clock_type::time_point deadline;
    // Scratch kept from one request to the next (a state is pooled, see acquire_state()).
    std::vector<std::string_view> keys;
    std::vector<std::size_t> todo;
    std::vector<group*> groups;                 // this round's
    std::vector<std::unique_ptr<group>> spare;  // every group ever made; [0, used) in use
    std::size_t used = 0;

    void reset() {
        req = nullptr;
        fanned.clear();
        bytes = 0;
        preset_done = 0;
        transaction = false;
        cancelled = false;
        signals.clear();
        running = 0;
    }
};

struct cluster_router::group {
    exec_state* st = nullptr;
    endpoint target;
    bool to_main = false; // keyless only: the main connection
    bool asking = false;
    bool whole = false; // sends the caller's request itself
    std::vector<std::size_t> cmds;
    std::vector<std::size_t> reply_cmd; // local reply index -> command (none: ASKING's)
    request sub;
    std::vector<std::pair<std::size_t, redirect>> redirects;
    error_code ec;
    asio::cancellation_signal cancel; // a group sent without a coroutine (start_direct)

    static void on_reply(void* p, std::size_t local, std::span<const resp::node> nodes,
                         std::string_view message) {
        auto& g = *static_cast<group*>(p);
        if (local >= g.reply_cmd.size()) return;
        const std::size_t cmd = g.reply_cmd[local];
        if (cmd == none) return;
        if (!nodes.empty() && resp::is_error(nodes.front().data_type)) {
            redirect r = parse_redirect(nodes.front().value(message), g.target);
            if (r.kind != redirect_kind::none) {
                g.redirects.emplace_back(cmd, std::move(r));
                return;
            }
        }
        exec_state& st = *g.st;
        // A fanned-out command: the first error wins, else the last reply.
        if (st.fan_out[cmd]) {
            st.fanned[cmd].push_back(key_of(g.target));
            if (st.done[cmd] == 2) return;
        }
        st.user(st.reply_of[cmd], nodes, message);
        st.done[cmd] = (!nodes.empty() && resp::is_error(nodes.front().data_type)) ? 2 : 1;
    }
};

cluster_router::cluster_router(client& owner, connection& main, const config& cfg)
    : owner_(owner)
    , main_(main)
    , cfg_(cfg)
    , ex_(main.get_executor())
    , refresh_timer_(ex_) {
    main_.set_address_source(
        [this](endpoint& to, std::string& why) { return address_for_main(to, why); });
}

cluster_router::~cluster_router() = default;

// ---- topology

asio::awaitable<error_code> cluster_router::address_for_main(endpoint& to, std::string& why) {
    std::vector<endpoint> candidates = map_.empty() ? cfg_.hosts : map_.masters();
    if (candidates.empty()) candidates = cfg_.hosts;
    if (candidates.empty()) {
        why = "cluster: no seed node in the configuration";
        co_return error_code(error::invalid_config);
    }
    to = candidates[main_rotation_++ % candidates.size()];
    co_return error_code{};
}

connection& cluster_router::node(const endpoint& ep, bool replica) {
    const std::string key = key_of(ep);
    auto it = nodes_.find(key);
    if (it != nodes_.end()) return it->second->conn;
    config c = cfg_;
    c.topology = config::mode::standalone;
    c.hosts = {ep};
    c.unix_socket.clear();
    if (c.reconnect_wait_max.count() == 0) c.reconnect_wait_max = std::chrono::milliseconds(2000);
    auto state = std::make_unique<node_state>(ex_, std::move(c));
    state->ep = ep;
    state->replica = replica;
    if (replica) {
        request ro;
        ro.push("READONLY");
        state->conn.set_setup_commands(std::move(ro));
    }
    node_state* raw = state.get();
    raw->conn.add_event_listener([this](const connection_event& e) {
        if (e.what == connection_event::kind::disconnected) request_refresh();
        wake_waiters();
    });
    nodes_.emplace(key, std::move(state));
    ++running_nodes_;
    asio::co_spawn(ex_, raw->conn.run(), [this, raw](std::exception_ptr) {
        std::replace(slot_node_.begin(), slot_node_.end(), raw, static_cast<node_state*>(nullptr));
        std::erase_if(retired_, [raw](const auto& p) { return p.get() == raw; });
        for (auto i = nodes_.begin(); i != nodes_.end(); ++i) {
            if (i->second.get() == raw) {
                nodes_.erase(i);
                break;
            }
        }
        --running_nodes_;
        wake_waiters();
    });
    return raw->conn;
}

void cluster_router::apply_map(cluster::slot_map map) {
    map_ = std::move(map);
    ++generation_;
    std::vector<std::string> wanted;
    for (const endpoint& ep : map_.masters()) {
        wanted.push_back(key_of(ep));
        node(ep);
    }
    if (cfg_.read_from_replicas) {
        for (const cluster::shard& sh : map_.shards())
            for (const endpoint& r : sh.replicas)
                if (std::find(wanted.begin(), wanted.end(), key_of(r)) == wanted.end()) {
                    wanted.push_back(key_of(r));
                    node(r, true);
                }
    }
    // Nodes that left the map: their connections end (they may be dead and reconnecting).
    slot_node_.assign(16384, nullptr);
    for (auto i = nodes_.begin(); i != nodes_.end();) {
        if (std::find(wanted.begin(), wanted.end(), i->first) == wanted.end()) {
            i->second->conn.cancel();
            retired_.push_back(std::move(i->second));
            i = nodes_.erase(i);
        } else {
            ++i;
        }
    }
    // One node lookup per run of slots with the same owner, not one per slot.
    const cluster::shard* last = nullptr;
    node_state* owner = nullptr;
    for (std::size_t s = 0; s < 16384; ++s) {
        const cluster::shard* sh = map_.owner(static_cast<std::uint16_t>(s));
        if (sh != last) {
            last = sh;
            auto it = sh ? nodes_.find(key_of(sh->master)) : nodes_.end();
            owner = it != nodes_.end() ? it->second.get() : nullptr;
        }
        slot_node_[s] = owner;
    }
    wake_waiters();
}

void cluster_router::request_refresh() {
    refresh_wanted_ = true;
    refresh_timer_.cancel();
}

asio::awaitable<error_code> cluster_router::refresh_once() {
    request req;
    req.get_options().timeout =
        std::max(cfg_.connect_timeout, std::chrono::milliseconds(1000));
    req.push("CLUSTER", "SHARDS");
    generic_response resp;
    auto [ec, n] = co_await main_.exec(req, resp, nothrow);
    if (ec) {
        if (ec == error::timeout) main_.reconnect(); // a hung node: ask another one
        last_refresh_error_ = "CLUSTER SHARDS: " + ec.message();
        if (!main_.last_error_message().empty())
            last_refresh_error_ += " (" + main_.last_error_message() + ")";
        last_refresh_ec_ = ec;
        co_return ec;
    }
    last_refresh_ec_ = {};
    cluster::slot_map map;
    std::optional<std::string> problem;
    if (resp.empty()) co_return error_code(error::resp_protocol);
    if (resp[0].has_error()) {
        const std::string& text = resp[0].error().message;
        if (text.find("nknown subcommand") == std::string::npos &&
            text.find("unknown command") == std::string::npos) {
            last_refresh_error_ = "CLUSTER SHARDS refused: " + text;
            main_.reconnect();
            co_return error_code(error::server_error);
        }
        req.clear();
        req.push("CLUSTER", "SLOTS");
        std::tie(ec, n) = co_await main_.exec(req, resp, nothrow);
        if (ec) co_return ec;
        if (resp.empty() || resp[0].has_error()) {
            last_refresh_error_ =
                "CLUSTER SLOTS refused: " + (resp.empty() ? "" : resp[0].error().message);
            co_return error_code(error::server_error);
        }
        problem = cluster::slot_map::from_slots(resp[0].value(), map, cfg_.use_tls,
                                                 main_.remote_endpoint().host);
    } else {
        problem = cluster::slot_map::from_shards(resp[0].value(), map, cfg_.use_tls,
                                                  main_.remote_endpoint().host);
    }
    if (problem) {
        last_refresh_error_ = *problem;
        co_return error_code(error::resp_protocol);
    }
    if (map.empty()) {
        last_refresh_error_ = "the cluster serves no slot yet";
        main_.reconnect();
        co_return error_code(error::cluster_down);
    }
    apply_map(std::move(map));
    ++stats_.refreshes;
    last_refresh_error_.clear();
    co_return error_code{};
}

asio::awaitable<void> cluster_router::refresh_loop() {
    auto last = clock_type::now() - std::chrono::seconds(1);
    while (!stopped_) {
        // At most one refresh per 100 ms however many MOVED replies ask for one.
        const auto earliest = last + std::chrono::milliseconds(100);
        if (clock_type::now() < earliest) {
            refresh_timer_.expires_at(earliest);
            co_await refresh_timer_.async_wait(nothrow);
            if (stopped_) break;
        }
        refresh_wanted_ = false;
        last = clock_type::now();
        const error_code ec = co_await refresh_once();
        if (stopped_) break;
        if (refresh_wanted_) continue;
        // A map that works is checked again now and then; one that did not come, soon.
        refresh_timer_.expires_after(ec ? std::chrono::milliseconds(200) : std::chrono::seconds(30));
        co_await refresh_timer_.async_wait(nothrow);
    }
}

asio::awaitable<void> cluster_router::run() {
    stopped_ = false;
    co_await refresh_loop();
    // Every node connection ends before run() does: they refer to this object.
    for (auto& [key, n] : nodes_)
        n->conn.cancel();
    for (auto& n : retired_)
        n->conn.cancel();
    while (running_nodes_ > 0) {
        asio::steady_timer t(ex_, std::chrono::milliseconds(50));
        waiters_.push_back(&t);
        co_await t.async_wait(nothrow);
        std::erase(waiters_, &t);
    }
}

void cluster_router::cancel() {
    asio::dispatch(ex_, [this] {
        stopped_ = true;
        refresh_timer_.cancel();
        for (auto& [key, n] : nodes_)
            n->conn.cancel();
        wake_waiters();
    });
}

void cluster_router::wake_waiters() {
    for (asio::steady_timer* t : waiters_)
        t->cancel();
}

asio::awaitable<void> cluster_router::wait_change(clock_type::time_point until) {
    asio::steady_timer t(ex_, until);
    waiters_.push_back(&t);
    co_await t.async_wait(nothrow);
    std::erase(waiters_, &t);
}

std::optional<endpoint> cluster_router::master_of(std::uint16_t slot) const {
    if (const cluster::shard* s = map_.owner(slot)) return s->master;
    return std::nullopt;
}

connection* cluster_router::connection_for_slot(std::uint16_t slot) {
    if (stopped_) return nullptr; // a connection made now would never be stopped
    const cluster::shard* s = map_.owner(slot);
    return s ? &node(s->master) : nullptr;
}

std::vector<endpoint> cluster_router::masters() const {
    return map_.masters();
}

// ---- exec

// The common case without a coroutine or an allocation: every command of the request has keys
// in one slot, whose master is connected. The request goes to that node as it is; the first
// MOVED, ASK or failure hands what is left to exec() below.
struct cluster_router::fast_op {
    cluster_router* router = nullptr;
    handler_type handler;
    executor_type handler_ex;
    const request* req = nullptr;
    detail::reply_adapter user;
    request::options opts;
    endpoint target;
    std::uint64_t done = 0; // replies delivered, by index (at most 64 commands)
    redirect_kind redirected = redirect_kind::none;
    std::uint16_t moved_slot = 0;
    endpoint moved_to;

    static void on_reply(void* p, std::size_t index, std::span<const resp::node> nodes,
                         std::string_view message) {
        auto& op = *static_cast<fast_op*>(p);
        if (!nodes.empty() && resp::is_error(nodes.front().data_type)) {
            redirect r = parse_redirect(nodes.front().value(message), op.target);
            if (r.kind != redirect_kind::none) {
                if (op.redirected == redirect_kind::none || r.kind == redirect_kind::moved) {
                    op.redirected = r.kind;
                    op.moved_slot = r.slot;
                    op.moved_to = std::move(r.to);
                }
                return;
            }
        }
        op.user(index, nodes, message);
        op.done |= std::uint64_t{1} << index;
    }
};

bool cluster_router::try_fast(handler_type& handler, executor_type& handler_ex, const request* req,
                              detail::reply_adapter adapter) {
    if (stopped_ || !ready() || req->empty() || req->has_blocking_command() ||
        cfg_.read_from_replicas || req->size() > 64 || req->size() != req->expected_replies() ||
        (adapter.slots != static_cast<std::size_t>(-1) && adapter.slots != req->size()))
        return false;
    // Read the commands back into a fixed array: no allocation, and long ones go the slow way.
    std::array<std::string_view, 16> args;
    std::string_view p = req->payload();
    int slot = -1;
    while (!p.empty()) {
        const std::size_t argc =
            read_command(p, args.size(), [&args](std::size_t i, std::string_view a) { args[i] = a; });
        if (argc == 0) return false;
        const auto how = cluster::command_keys(std::span(args.data(), argc), keys_);
        if (how != cluster::routing::by_keys || keys_.empty()) return false;
        for (std::string_view k : keys_) {
            const int s = cluster_slot(k);
            if (slot >= 0 && s != slot) return false;
            slot = s;
        }
    }
    node_state* n = slot >= 0 ? slot_node_[static_cast<std::size_t>(slot)] : nullptr;
    if (!n || !n->conn.is_connected()) return false;

    fast_op* op;
    if (free_fast_.empty()) {
        all_fast_.push_back(std::make_unique<fast_op>());
        op = all_fast_.back().get();
    } else {
        op = free_fast_.back();
        free_fast_.pop_back();
    }
    op->router = this;
    op->handler.swap(handler);
    op->handler_ex = std::move(handler_ex);
    op->req = req;
    op->user = adapter;
    op->opts = req->get_options();
    op->opts.fail_if_not_connected = true;
    op->target = n->ep;
    op->done = 0;
    op->redirected = redirect_kind::none;
    // The caller's cancellation reaches the node's exec through our handler.
    auto cancel = asio::get_associated_cancellation_slot(op->handler);
    n->conn.start_exec(
        detail::recycled(asio::bind_cancellation_slot(
            cancel, [op](error_code ec, std::size_t bytes) { op->router->fast_done(*op, ec, bytes); })),
        ex_, req, {op, &fast_op::on_reply, static_cast<std::size_t>(-1)}, &op->opts);
    return true;
}

void cluster_router::fast_done(fast_op& op, error_code ec, std::size_t bytes) {
    handler_type h;
    h.swap(op.handler);
    executor_type handler_ex = std::move(op.handler_ex);
    const request* req = op.req;
    const detail::reply_adapter user = op.user;
    const std::uint64_t done = op.done;
    const redirect_kind redirected = op.redirected;
    if (redirected == redirect_kind::moved) {
        ++stats_.moved;
        map_.assign(op.moved_slot, op.moved_to);
        slot_node_[op.moved_slot] = nullptr;
        request_refresh();
    }
    free_fast_.push_back(&op);
    const bool unsent = ec == error::not_connected;
    const bool lost = (ec == error::connection_lost || ec == error::connection_closed) &&
                      req->get_options().idempotent && !stopped_;
    if ((!ec && redirected == redirect_kind::none) || (ec && !unsent && !lost)) {
        detail::complete_on(handler_ex, std::move(h), ec, bytes);
        return;
    }
    if (unsent || lost) request_refresh();
    asio::co_spawn(ex_, exec(std::move(h), std::move(handler_ex), req, user, done, bytes),
                   asio::detached);
}

void cluster_router::start_exec(handler_type handler, executor_type handler_ex,
                                const request* req, detail::reply_adapter adapter) {
    asio::dispatch(ex_, [this, h = std::move(handler), hex = std::move(handler_ex), req,
                         adapter]() mutable {
        if (try_fast(h, hex, req, adapter)) return;
        asio::co_spawn(ex_, exec(std::move(h), std::move(hex), req, adapter, 0, 0),
                       asio::detached);
    });
}

asio::awaitable<void> cluster_router::exec(handler_type h, executor_type handler_ex,
                                           const request* req, detail::reply_adapter adapter,
                                           std::uint64_t done, std::size_t bytes) {
    exec_state& st = acquire_state();
    st.req = req;
    st.user = adapter;
    st.preset_done = done;
    st.bytes = bytes;
    auto slot = asio::get_associated_cancellation_slot(h);
    if (slot.is_connected()) {
        slot.assign([&st](asio::cancellation_type) {
            st.cancelled = true;
            for (auto* s : st.signals)
                s->emit(asio::cancellation_type::terminal);
            st.all_done.cancel();
        });
    }
    error_code ec;
    try {
        ec = co_await exec_inner(st);
    } catch (const std::exception&) {
        ec = error::resp_protocol;
    }
    if (slot.is_connected()) slot.clear();
    if (st.cancelled && !ec) ec = asio::error::operation_aborted;
    const std::size_t total = st.bytes;
    release_state(st);
    detail::complete_on(handler_ex, std::move(h), ec, total);
}

cluster_router::exec_state& cluster_router::acquire_state() {
    if (free_states_.empty()) {
        all_states_.push_back(std::make_unique<exec_state>(ex_));
        return *all_states_.back();
    }
    exec_state* st = free_states_.back();
    free_states_.pop_back();
    return *st;
}

void cluster_router::release_state(exec_state& st) {
    st.reset();
    free_states_.push_back(&st);
}

// A group whose node is connected goes out with a plain completion handler: no coroutine.
bool cluster_router::start_direct(exec_state& st, group& g) {
    if (st.cancelled || stopped_) return false;
    const request& r = g.whole ? *st.req : g.sub;
    if (r.has_blocking_command()) return false;
    connection* c = &main_;
    if (!g.to_main) {
        auto it = nodes_.find(key_of(g.target));
        if (it == nodes_.end()) return false;
        c = &it->second->conn;
    }
    if (!c->is_connected()) return false;
    st.signals.push_back(&g.cancel);
    c->start_exec(detail::recycled(asio::bind_cancellation_slot(
                      g.cancel.slot(),
                      [&st, &g](error_code ec, std::size_t n) {
                          std::erase(st.signals, &g.cancel);
                          g.ec = ec;
                          st.bytes += n;
                          if (--st.running == 0) st.all_done.cancel();
                      })),
                  ex_, &r, {&g, &group::on_reply, static_cast<std::size_t>(-1)}, &st.opts);
    return true;
}

asio::awaitable<void> cluster_router::run_group(exec_state& st, group& g) {
    asio::cancellation_signal signal;
    st.signals.push_back(&signal);
    const request& r = g.whole ? *st.req : g.sub;
    const detail::reply_adapter adapter{&g, &group::on_reply, static_cast<std::size_t>(-1)};
    error_code ec;
    std::size_t n = 0;
    if (st.cancelled) {
        ec = asio::error::operation_aborted;
    } else if (stopped_) {
        ec = error::connection_closed;
    } else if (r.has_blocking_command()) {
        std::tie(ec, n) = co_await owner_.exec_pooled(g.to_main ? nullptr : &g.target, r,
                                                      adapter, signal.slot());
    } else {
        // A node still connecting (new, or reconnecting) gets connect_timeout before its
        // commands are routed again; one that does not come back is left to the refresh.
        const auto until = std::min(
            st.deadline,
            clock_type::now() + std::max(cfg_.connect_timeout, std::chrono::milliseconds(1000)));
        for (;;) {
            connection& c = g.to_main ? main_ : node(g.target);
            if (c.is_connected() || clock_type::now() >= until || st.cancelled || stopped_) break;
            co_await wait_change(until);
        }
        if (stopped_) {
            ec = error::connection_closed;
        } else {
            connection& c = g.to_main ? main_ : node(g.target);
            std::tie(ec, n) = co_await exec_with(
                c, r, adapter, &st.opts, asio::bind_cancellation_slot(signal.slot(), nothrow));
        }
    }
    std::erase(st.signals, &signal);
    g.ec = ec;
    st.bytes += n;
    if (--st.running == 0) st.all_done.cancel();
}

asio::awaitable<error_code> cluster_router::exec_inner(exec_state& st) {
    const request& req = *st.req;
    if (req.empty()) co_return error_code(error::empty_request);
    if (st.user.slots != static_cast<std::size_t>(-1) && st.user.slots != req.expected_replies())
        co_return error_code(error::incompatible_size);
    if (stopped_) co_return error_code(error::connection_closed);
    if (!split_commands(req.payload(), st.cmds)) co_return error_code(error::resp_protocol);

    const std::size_t count = st.cmds.size();
    st.opts = req.get_options();
    st.opts.fail_if_not_connected = true; // a node that is down: route again, do not wait on it
    st.reply_of.assign(count, none);
    st.slot.assign(count, -1);
    st.fan_out.assign(count, false);
    st.master_only.assign(count, false);
    st.done.assign(count, 0);
    for (std::size_t i = 0; i < count && i < 64; ++i)
        if (st.preset_done & (std::uint64_t{1} << i)) st.done[i] = 1;
    st.to.assign(count, std::nullopt);
    const auto wait_budget = cfg_.cluster_failover_wait.count() > 0
                                 ? cfg_.cluster_failover_wait
                                 : std::chrono::milliseconds(10000);
    st.deadline = clock_type::now() + wait_budget;

    // Where each command goes, and which are refused before anything is sent.
    std::vector<std::string_view>& keys = st.keys;
    std::size_t replies = 0;
    int txn_slot = -1;
    bool txn_cross = false;
    for (std::size_t i = 0; i < count; ++i) {
        const auto& args = st.cmds[i].args;
        if (!detail::answers_with_push(args[0])) st.reply_of[i] = replies++;
        if (iequals(args[0], "MULTI")) st.transaction = true;
        const cluster::routing how = cluster::command_keys(args, keys);
        if (how == cluster::routing::all_masters) {
            st.fan_out[i] = true;
            continue;
        }
        if (how == cluster::routing::unknown && args.size() > 1) {
            keys.assign(1, args[1]);
        } else if (how != cluster::routing::by_keys || keys.empty()) {
            continue;
        }
        const std::uint16_t first = cluster_slot(keys.front());
        bool same = true;
        for (std::string_view k : keys)
            same = same && cluster_slot(k) == first;
        if (!same) {
            if (st.transaction) {
                txn_cross = true;
            } else if (st.reply_of[i] != none) {
                deliver_error(st.user, st.reply_of[i], describe_keys(args[0], keys));
                ++stats_.refusals;
                st.done[i] = 1;
            } else {
                st.done[i] = 1; // a push-answered command has no reply slot to refuse in
            }
            continue;
        }
        st.slot[i] = first;
        if (st.transaction) {
            if (txn_slot >= 0 && txn_slot != first) txn_cross = true;
            txn_slot = first;
        }
    }
    if (st.transaction) {
        // A transaction runs on one node or not at all.
        if (txn_cross) {
            for (std::size_t i = 0; i < count; ++i) {
                if (st.reply_of[i] != none)
                    deliver_error(st.user, st.reply_of[i],
                                  "CROSSSLOT the keys of this MULTI/EXEC transaction hash to "
                                  "different cluster slots; give them a common {hash tag}");
                st.done[i] = 1;
            }
            co_return error_code{};
        }
        for (std::size_t i = 0; i < count; ++i) {
            st.slot[i] = txn_slot;
            st.fan_out[i] = false;
        }
    }

    std::size_t redirects = 0;
    bool first_round = true;
    std::vector<group*>& groups = st.groups;
    for (;;) {
        // A fanned-out command is done once every master has answered it.
        const std::vector<endpoint> masters = map_.masters();
        auto fan_pending = [&](std::size_t i, const endpoint& m) {
            const auto& got = st.fanned[i];
            return std::find(got.begin(), got.end(), key_of(m)) == got.end();
        };
        std::vector<std::size_t>& todo = st.todo;
        todo.clear();
        for (std::size_t i = 0; i < count; ++i) {
            if (st.fan_out[i] && !st.transaction && !st.to[i]) {
                if (first_round || std::any_of(masters.begin(), masters.end(), [&](auto& m) {
                        return fan_pending(i, m);
                    }))
                    todo.push_back(i);
            } else if (!st.done[i]) {
                todo.push_back(i);
            }
        }
        if (todo.empty()) break;
        if (st.cancelled) co_return error_code(asio::error::operation_aborted);

        while (!ready() && !stopped_) {
            // Bad credentials will not fix themselves: say so at once, not after the wait.
            if (last_refresh_ec_ == error::auth_failed) co_return last_refresh_ec_;
            if (clock_type::now() >= st.deadline) co_return error_code(error::cluster_down);
            request_refresh();
            co_await wait_change(std::min(st.deadline,
                                          clock_type::now() + std::chrono::milliseconds(200)));
            if (st.cancelled) co_return error_code(asio::error::operation_aborted);
        }
        if (stopped_) co_return error_code(error::connection_closed);

        // Group the commands by node, keeping their order inside each group.
        groups.clear();
        st.used = 0;
        auto group_for = [&](const endpoint* target, bool asking) -> group& {
            for (group* g : groups)
                if (g->asking == asking &&
                    (target ? (!g->to_main && g->target == *target) : g->to_main))
                    return *g;
            if (st.used == st.spare.size()) st.spare.push_back(std::make_unique<group>());
            group& g = *st.spare[st.used++];
            g.st = &st;
            g.asking = asking;
            g.whole = false;
            g.to_main = !target;
            if (target) g.target = *target;
            g.cmds.clear();
            g.reply_cmd.clear();
            g.sub.clear();
            g.redirects.clear();
            g.ec = {};
            groups.push_back(&g);
            return g;
        };
        bool missing_owner = false;
        for (std::size_t i : todo) {
            if (st.to[i]) {
                group_for(&st.to[i]->to, st.to[i]->kind == redirect_kind::ask).cmds.push_back(i);
            } else if (st.fan_out[i] && !st.transaction) {
                for (const endpoint& m : map_.masters())
                    if (fan_pending(i, m)) group_for(&m, false).cmds.push_back(i);
            } else if (st.slot[i] >= 0) {
                const cluster::shard* sh = map_.owner(static_cast<std::uint16_t>(st.slot[i]));
                if (!sh) {
                    missing_owner = true;
                    continue;
                }
                const bool replica = cfg_.read_from_replicas && !st.transaction &&
                                     !st.master_only[i] &&
                                     !sh->replicas.empty() && reads_only(st.cmds[i].args[0]);
                const endpoint& target =
                    replica ? sh->replicas[st.slot[i] % sh->replicas.size()] : sh->master;
                group_for(&target, false).cmds.push_back(i);
            } else {
                group_for(nullptr, false).cmds.push_back(i);
            }
        }
        // Keyless commands ride with the keyed ones when there is a single keyed group.
        if (groups.size() == 2 && groups[1]->to_main && !groups[0]->asking &&
            !st.fan_out[groups[1]->cmds.front()]) {
            auto& a = groups[0]->cmds;
            a.insert(a.end(), groups[1]->cmds.begin(), groups[1]->cmds.end());
            std::sort(a.begin(), a.end());
            groups.pop_back();
        } else if (groups.size() == 2 && groups[0]->to_main && !groups[1]->asking) {
            auto& a = groups[1]->cmds;
            a.insert(a.end(), groups[0]->cmds.begin(), groups[0]->cmds.end());
            std::sort(a.begin(), a.end());
            groups.erase(groups.begin());
        }
        for (auto& g : groups) {
            g->whole = first_round && !g->asking && g->cmds.size() == count;
            for (std::size_t i : g->cmds) {
                if (g->asking) {
                    g->sub.push("ASKING");
                    g->reply_cmd.push_back(none);
                }
                if (!g->whole) {
                    const auto& args = st.cmds[i].args;
                    g->sub.push(args[0], std::span<const std::string_view>(args).subspan(1));
                }
                if (st.reply_of[i] != none) g->reply_cmd.push_back(i);
            }
        }
        st.to.assign(count, std::nullopt);
        first_round = false;

        st.running = groups.size();
        for (auto& g : groups)
            if (!start_direct(st, *g)) asio::co_spawn(ex_, run_group(st, *g), asio::detached);
        while (st.running > 0) {
            st.all_done.expires_at(clock_type::time_point::max());
            co_await st.all_done.async_wait(nothrow);
        }

        bool wait = missing_owner;
        for (auto& g : groups) {
            for (auto& [cmd, r] : g->redirects) {
                if (r.kind == redirect_kind::later || (st.transaction && r.kind == redirect_kind::ask)) {
                    ++stats_.waits;
                    wait = true;
                    request_refresh();
                    continue;
                }
                if (r.kind == redirect_kind::moved) {
                    ++stats_.moved;
                    map_.assign(r.slot, r.to);
                    if (!slot_node_.empty()) slot_node_[r.slot] = nullptr;
                    request_refresh();
                } else {
                    ++stats_.asked;
                }
                if (!st.transaction) {
                    ++redirects;
                    st.to[cmd] = r;
                } else if (!st.to[0]) {
                    // The whole transaction moves: EXEC was refused with EXECABORT.
                    ++redirects;
                    for (std::size_t i = 0; i < count; ++i)
                        st.to[i] = r;
                }
            }
            if (!g->redirects.empty() && st.transaction)
                for (std::size_t i = 0; i < count; ++i)
                    st.done[i] = 0;
            const error_code ec = g->ec;
            if (!ec) continue;
            const bool unsent = ec == error::not_connected;
            const bool lost = ec == error::connection_lost || ec == error::connection_closed;
            if (unsent || (lost && req.get_options().idempotent && !stopped_)) {
                ++stats_.waits;
                wait = true;
                request_refresh();
                for (std::size_t i : g->cmds) {
                    st.to[i].reset();
                    st.master_only[i] = true;
                }
                continue;
            }
            co_return ec;
        }
        if (redirects > std::max<std::size_t>(cfg_.cluster_max_redirects, 1))
            co_return error_code(error::too_many_redirects);
        if (wait) {
            if (clock_type::now() >= st.deadline) co_return error_code(error::cluster_down);
            co_await wait_change(
                std::min(st.deadline, clock_type::now() + std::chrono::milliseconds(100)));
        }
    }
    co_return error_code{};
}

} // namespace akv
