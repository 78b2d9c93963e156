#include "cluster.hpp"

#include <akv/cluster_slot.hpp>
#include <akv/detail/admission.hpp>
#include <akv/detail/complete_on.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <array>

namespace akv::detail {

using boost::system::error_code;
using clock_type = std::chrono::steady_clock;
using akv::cluster::group;
using akv::cluster::redirect_kind;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

std::string key_of(const endpoint& ep) {
    return to_string(ep);
}

// connection::exec with the options a cluster request is sent with (its own are replaced).
template <class Token>
auto exec_with(connection& c, const request& r, reply_adapter a, const request::options& o,
               Token&& token) {
    return asio::async_initiate<Token, connection::exec_signature>(
        [&c](auto h, const request* r, reply_adapter a, const request::options* o) {
            auto hex = completion_executor(h, c.get_executor());
            c.start_exec(recycled(std::move(h)), std::move(hex), r, a, o);
        },
        token, &r, a, &o);
}

// Whether every slot has the same master in both maps.
bool same_owners(const cluster::slot_map& a, const cluster::slot_map& b) {
    for (std::uint16_t s = 0; s < 16384; ++s) {
        const cluster::shard* x = a.owner(s);
        const cluster::shard* y = b.owner(s);
        if ((x == nullptr) != (y == nullptr) || (x && x->master != y->master)) return false;
    }
    return true;
}

} // namespace

struct cluster_topology::node_state {
    node_state(executor_type ex, config c)
        : conn(std::move(ex), std::move(c)) {}
    endpoint ep;
    connection conn;
    link_id link = main_link;
    bool replica = false;
};

struct cluster_topology::exec_state {
    explicit exec_state(executor_type ex)
        : all_done(std::move(ex)) {}
    akv::cluster::plan plan;
    request::options opts; // the caller's, with fail_if_not_connected
    std::size_t bytes = 0;
    bool cancelled = false;
    std::vector<asio::cancellation_signal*> signals;
    std::vector<std::unique_ptr<asio::cancellation_signal>> group_signals; // by group index
    asio::steady_timer all_done;
    std::size_t running = 0;
    clock_type::time_point deadline;

    void reset() {
        bytes = 0;
        cancelled = false;
        signals.clear();
        running = 0;
    }
};

cluster_topology::cluster_topology(executor_type ex, const config& cfg, connection_pool& pool,
                                   event_sink events)
    : ex_(ex)
    , cfg_(cfg)
    , main_(ex, cfg)
    , pool_(pool)
    , events_(std::move(events))
    , refresh_timer_(ex) {
    main_.set_address_source(
        [this](endpoint& to, std::string& why) { return address_for_main(to, why); });
    main_.add_event_listener(
        [this](const connection_event& e) { events_(as_client_event(e, main_link)); });
    // A blocking command without keys goes where the main connection goes: a master.
    pool_.set_default_route([this](connection& c) {
        c.set_address_source(
            [this](endpoint& to, std::string& why) { return address_for_pool(to, why); });
    });
}

cluster_topology::~cluster_topology() = default;

// ---- topology

asio::awaitable<error_code> cluster_topology::address_for_main(endpoint& to, std::string& why) {
    std::vector<endpoint> candidates = map_.empty() ? cfg_.hosts : map_.masters();
    if (candidates.empty()) candidates = cfg_.hosts;
    if (candidates.empty()) {
        why = "cluster: no seed node in the configuration";
        co_return error_code(error::invalid_config);
    }
    to = candidates[main_rotation_++ % candidates.size()];
    co_return error_code{};
}

asio::awaitable<error_code> cluster_topology::address_for_pool(endpoint& to, std::string& why) {
    const auto masters = map_.masters();
    if (masters.empty()) {
        why = "cluster: slot map not known yet";
        co_return error_code(error::cluster_down);
    }
    to = masters[pool_rotation_++ % masters.size()];
    co_return error_code{};
}

cluster_topology::node_state& cluster_topology::node(const endpoint& ep, bool replica) {
    const std::string key = key_of(ep);
    auto it = nodes_.find(key);
    if (it != nodes_.end()) return *it->second;
    config c = config_for_node(cfg_, ep);
    if (c.reconnect_wait_max.count() == 0) c.reconnect_wait_max = std::chrono::milliseconds(2000);
    auto state = std::make_unique<node_state>(ex_, std::move(c));
    state->ep = ep;
    state->replica = replica;
    state->link = ++next_link_;
    if (replica || tracking_) {
        request setup;
        if (replica) setup.push("READONLY");
        if (tracking_) setup.append(*tracking_);
        state->conn.set_setup_commands(std::move(setup));
    }
    if (invalidations_) state->conn.set_invalidation_handler(invalidations_);
    node_state* raw = state.get();
    raw->conn.add_event_listener([this, raw](const connection_event& e) {
        if (e.what == connection_event::kind::disconnected) request_refresh();
        wake_waiters();
        events_(as_client_event(e, raw->link));
    });
    if (pushes_) {
        raw->conn.set_push_handler(
            [this, raw](resp::value&& push) { pushes_(raw->link, std::move(push)); });
    }
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
    return *raw;
}

connection* cluster_topology::link(link_id id) noexcept {
    if (id == main_link) return &main_;
    for (auto& [key, n] : nodes_)
        if (n->link == id) return &n->conn;
    return nullptr; // retired: stopped, or about to be
}

std::optional<link_id> cluster_topology::link_for_channel(std::string_view channel) {
    if (stopped_) return std::nullopt; // a connection made now would never be stopped
    const cluster::shard* s = map_.owner(cluster_slot(channel));
    if (!s) return std::nullopt;
    return node(s->master).link;
}

void cluster_topology::set_push_sink(push_sink sink) {
    pushes_ = std::move(sink);
    if (!pushes_) {
        main_.set_push_handler(nullptr);
        for (auto& [key, n] : nodes_)
            n->conn.set_push_handler(nullptr);
        return;
    }
    main_.set_push_handler([this](resp::value&& push) { pushes_(main_link, std::move(push)); });
    for (auto& [key, n] : nodes_) {
        node_state* raw = n.get();
        raw->conn.set_push_handler(
            [this, raw](resp::value&& push) { pushes_(raw->link, std::move(push)); });
    }
}

void cluster_topology::enable_tracking(request setup, invalidation_sink sink) {
    // The main connection too: a keyed read it ever serves must be tracked like the others.
    main_.set_setup_commands(setup);
    main_.set_invalidation_handler(sink);
    tracking_ = std::move(setup);
    invalidations_ = std::move(sink);
}

std::optional<endpoint> cluster_topology::master_of(std::uint16_t slot) const {
    if (const cluster::shard* s = map_.owner(slot)) return s->master;
    return std::nullopt;
}

void cluster_topology::add_stats(client_stats& into) const {
    into.connections += main_.stats();
    for (const auto& [key, n] : nodes_)
        into.connections += n->conn.stats();
    into.cluster = stats_;
}

std::string cluster_topology::last_error_message() const {
    if (!last_refresh_error_.empty()) return last_refresh_error_;
    return main_.last_error_message();
}

void cluster_topology::apply_map(cluster::slot_map map) {
    const bool changed = map.shards() != map_.shards() || !same_owners(map, map_);
    map_ = std::move(map);
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
    if (changed)
        events_(client_event{
            client_event::kind::topology_changed, {}, "cluster: slot map changed", main_link});
}

void cluster_topology::request_refresh() {
    refresh_wanted_ = true;
    refresh_timer_.cancel();
}

asio::awaitable<error_code> cluster_topology::refresh_once() {
    request req;
    req.get_options().timeout = std::max(cfg_.connect_timeout, std::chrono::milliseconds(1000));
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

asio::awaitable<void> cluster_topology::refresh_loop() {
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
        refresh_timer_.expires_after(ec ? std::chrono::milliseconds(200)
                                        : std::chrono::seconds(30));
        co_await refresh_timer_.async_wait(nothrow);
    }
}

asio::awaitable<void> cluster_topology::run() {
    using namespace asio::experimental::awaitable_operators;
    stopped_ = false;
    co_await (main_.run() && refresh_loop());
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

void cluster_topology::cancel() {
    stopped_ = true;
    main_.cancel();
    refresh_timer_.cancel();
    for (auto& [key, n] : nodes_)
        n->conn.cancel();
    wake_waiters();
}

void cluster_topology::wake_waiters() {
    for (asio::steady_timer* t : waiters_)
        t->cancel();
}

asio::awaitable<void> cluster_topology::wait_change(clock_type::time_point until) {
    asio::steady_timer t(ex_, until);
    waiters_.push_back(&t);
    co_await t.async_wait(nothrow);
    std::erase(waiters_, &t);
}

// ---- exec

// The common case without a coroutine or an allocation: every command of the request has keys
// in one slot, whose master is connected. The request goes to that node as it is; the first
// MOVED, ASK or failure hands what is left to exec() below.
struct cluster_topology::fast_op {
    cluster_topology* owner = nullptr;
    handler_type handler;
    executor_type handler_ex;
    const request* req = nullptr;
    reply_adapter user;
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
            auto r = cluster::parse_redirect(nodes.front().value(message), op.target);
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

bool cluster_topology::try_fast(handler_type& handler, executor_type& handler_ex,
                                const request* req, reply_adapter adapter) {
    if (stopped_ || !ready() || req->has_blocking_command() || cfg_.read_from_replicas ||
        req->size() > 64 || req->size() != req->expected_replies() ||
        admit(*req, req->get_options(), adapter, stopped_, true))
        return false;
    // Commands read back into a fixed array: no allocation, and long ones go the slow way.
    std::array<std::string_view, 16> args;
    const int slot = cluster::single_slot(req->payload(), args, keys_);
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
    op->owner = this;
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
        recycled(asio::bind_cancellation_slot(
            cancel,
            [op](error_code ec, std::size_t bytes) { op->owner->fast_done(*op, ec, bytes); })),
        ex_, req, {op, &fast_op::on_reply, static_cast<std::size_t>(-1)}, &op->opts);
    return true;
}

void cluster_topology::fast_done(fast_op& op, error_code ec, std::size_t bytes) {
    handler_type h;
    h.swap(op.handler);
    executor_type handler_ex = std::move(op.handler_ex);
    const request* req = op.req;
    const reply_adapter user = op.user;
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
        complete_on(handler_ex, std::move(h), ec, bytes);
        return;
    }
    if (unsent || lost) request_refresh();
    asio::co_spawn(ex_, exec(std::move(h), std::move(handler_ex), req, user, done, bytes),
                   asio::detached);
}

void cluster_topology::start_exec(handler_type handler, executor_type handler_ex,
                                  const request* req, reply_adapter adapter) {
    asio::dispatch(ex_, [this, h = std::move(handler), hex = std::move(handler_ex), req,
                         adapter]() mutable {
        if (try_fast(h, hex, req, adapter)) return;
        asio::co_spawn(ex_, exec(std::move(h), std::move(hex), req, adapter, 0, 0), asio::detached);
    });
}

asio::awaitable<void> cluster_topology::exec(handler_type h, executor_type handler_ex,
                                             const request* req, reply_adapter adapter,
                                             std::uint64_t done, std::size_t bytes) {
    exec_state& st = acquire_state();
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
    error_code ec = admit(*req, req->get_options(), adapter, stopped_, true);
    if (!ec) ec = st.plan.start(*req, adapter, done, stats_);
    if (!ec) {
        try {
            ec = co_await exec_inner(st);
        } catch (const std::exception&) {
            ec = error::resp_protocol;
        }
    }
    if (slot.is_connected()) slot.clear();
    if (st.cancelled && !ec) ec = asio::error::operation_aborted;
    const std::size_t total = st.bytes;
    release_state(st);
    complete_on(handler_ex, std::move(h), ec, total);
}

cluster_topology::exec_state& cluster_topology::acquire_state() {
    if (free_states_.empty()) {
        all_states_.push_back(std::make_unique<exec_state>(ex_));
        return *all_states_.back();
    }
    exec_state* st = free_states_.back();
    free_states_.pop_back();
    return *st;
}

void cluster_topology::release_state(exec_state& st) {
    st.reset();
    free_states_.push_back(&st);
}

void cluster_topology::group_done(exec_state& st, group& g, error_code ec, std::size_t bytes) {
    g.ec = ec;
    st.bytes += bytes;
    if (--st.running == 0) st.all_done.cancel();
}

// A group whose node is connected goes out with a plain completion handler: no coroutine.
bool cluster_topology::start_direct(exec_state& st, group& g, std::size_t index) {
    if (st.cancelled || stopped_) return false;
    const request& r = g.whole ? st.plan.caller_request() : g.sub;
    if (r.has_blocking_command()) return false;
    connection* c = &main_;
    if (!g.to_main) {
        auto it = nodes_.find(key_of(g.target));
        if (it == nodes_.end()) return false;
        c = &it->second->conn;
    }
    if (!c->is_connected()) return false;
    asio::cancellation_signal* signal = st.group_signals[index].get();
    st.signals.push_back(signal);
    c->start_exec(recycled(asio::bind_cancellation_slot(
                      signal->slot(),
                      [this, &st, &g, signal](error_code ec, std::size_t n) {
                          std::erase(st.signals, signal);
                          group_done(st, g, ec, n);
                      })),
                  ex_, &r, g.adapter(), &st.opts);
    return true;
}

asio::awaitable<void> cluster_topology::run_group(exec_state& st, group& g) {
    asio::cancellation_signal signal;
    st.signals.push_back(&signal);
    const request& r = g.whole ? st.plan.caller_request() : g.sub;
    const reply_adapter adapter = g.adapter();
    error_code ec;
    std::size_t n = 0;
    if (st.cancelled) {
        ec = asio::error::operation_aborted;
    } else if (stopped_) {
        ec = error::connection_closed;
    } else if (r.has_blocking_command()) {
        std::tie(ec, n) =
            co_await pool_.exec(g.to_main ? nullptr : &g.target, r, adapter, signal.slot());
    } else {
        // A node still connecting (new, or reconnecting) gets connect_timeout before its
        // commands are routed again; one that does not come back is left to the refresh.
        const auto until =
            std::min(st.deadline, clock_type::now() + std::max(cfg_.connect_timeout,
                                                               std::chrono::milliseconds(1000)));
        for (;;) {
            connection& c = g.to_main ? main_ : node(g.target).conn;
            if (c.is_connected() || clock_type::now() >= until || st.cancelled || stopped_) break;
            co_await wait_change(until);
        }
        if (stopped_) {
            ec = error::connection_closed;
        } else {
            connection& c = g.to_main ? main_ : node(g.target).conn;
            std::tie(ec, n) = co_await exec_with(
                c, r, adapter, st.opts, asio::bind_cancellation_slot(signal.slot(), nothrow));
        }
    }
    std::erase(st.signals, &signal);
    group_done(st, g, ec, n);
}

asio::awaitable<error_code> cluster_topology::exec_inner(exec_state& st) {
    cluster::plan& plan = st.plan;
    st.opts = plan.caller_request().get_options();
    st.opts.fail_if_not_connected = true; // a node that is down: route again, do not wait on it
    const auto wait_budget = cfg_.cluster_failover_wait.count() > 0
                                 ? cfg_.cluster_failover_wait
                                 : std::chrono::milliseconds(10000);
    st.deadline = clock_type::now() + wait_budget;

    for (;;) {
        if (!plan.pending(map_.masters())) break;
        if (st.cancelled) co_return error_code(asio::error::operation_aborted);

        while (!ready() && !stopped_) {
            // Bad credentials will not fix themselves: say so at once, not after the wait.
            if (last_refresh_ec_ == error::auth_failed) co_return last_refresh_ec_;
            if (clock_type::now() >= st.deadline) co_return error_code(error::cluster_down);
            request_refresh();
            co_await wait_change(
                std::min(st.deadline, clock_type::now() + std::chrono::milliseconds(200)));
            if (st.cancelled) co_return error_code(asio::error::operation_aborted);
        }
        if (stopped_) co_return error_code(error::connection_closed);

        bool missing_owner = false;
        const std::vector<group*>& groups =
            plan.make_groups(map_, cfg_.read_from_replicas, missing_owner);
        while (st.group_signals.size() < groups.size())
            st.group_signals.push_back(std::make_unique<asio::cancellation_signal>());
        st.running = groups.size();
        for (std::size_t i = 0; i < groups.size(); ++i)
            if (!start_direct(st, *groups[i], i))
                asio::co_spawn(ex_, run_group(st, *groups[i]), asio::detached);
        while (st.running > 0) {
            st.all_done.expires_at(clock_type::time_point::max());
            co_await st.all_done.async_wait(nothrow);
        }

        const cluster::round_outcome& next =
            plan.after_round(map_, cfg_.cluster_max_redirects, stopped_, stats_);
        for (std::uint16_t slot : next.moved)
            if (!slot_node_.empty()) slot_node_[slot] = nullptr;
        if (next.refresh) request_refresh();
        if (next.ec) co_return next.ec;
        if (next.wait || missing_owner) {
            if (clock_type::now() >= st.deadline) co_return error_code(error::cluster_down);
            co_await wait_change(
                std::min(st.deadline, clock_type::now() + std::chrono::milliseconds(100)));
        }
    }
    co_return error_code{};
}

} // namespace akv::detail
