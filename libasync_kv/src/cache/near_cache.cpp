#include "near_cache.hpp"

#include "../cluster/plan.hpp"

#include <akv/cluster/command_keys.hpp>
#include <akv/cluster_slot.hpp>
#include <akv/detail/complete_on.hpp>
#include <akv/error.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/dispatch.hpp>

#include <algorithm>
#include <charconv>
#include <list>

namespace akv::detail {

namespace {

using boost::system::error_code;

// What an entry costs beyond its id, bytes and nodes, as malloc sees it: the entry and its
// hooks, its map node and bucket, the value and its control block, and the allocator's
// rounding of the three heap blocks (measured against RSS by ./script/bench cache).
constexpr std::size_t entry_overhead = 288;

void write_command(std::string& out, std::string_view name,
                   std::span<const std::string_view> args) {
    resp::write_aggregate_header(out, '*', 1 + args.size());
    resp::write_bulk(out, name);
    for (std::string_view a : args)
        resp::write_bulk(out, a);
}

std::shared_ptr<const near_cache::value> copy_reply(std::span<const resp::node> nodes,
                                                    std::string_view message) {
    auto v = std::make_shared<near_cache::value>();
    v->bytes.assign(message);
    v->nodes.assign(nodes.begin(), nodes.end());
    return v;
}

// One scalar of an aggregate reply, as a reply of its own.
std::shared_ptr<const near_cache::value> copy_element(const resp::node& n,
                                                      std::string_view message) {
    auto v = std::make_shared<near_cache::value>();
    v->bytes.assign(n.value(message));
    resp::node top = n;
    top.depth = 0;
    top.offset = 0;
    v->nodes.push_back(top);
    return v;
}

std::shared_ptr<const near_cache::value> error_value(std::string text) {
    auto v = std::make_shared<near_cache::value>();
    v->bytes = std::move(text);
    v->nodes.push_back({resp::type::simple_error, 0, 0, 0, v->bytes.size()});
    return v;
}

} // namespace

// A read of what missed, out at the server.
struct near_cache::fetch {
    // Where reply number i of `req` goes.
    struct reply_slot {
        std::size_t command = 0;
        std::size_t first = 0; // into `pending`
        std::size_t count = 0;
        shape how = shape::whole;
        bool skip = false; // CLIENT CACHING's +OK
    };
    // A piece that missed.
    struct pending {
        std::size_t piece = 0;
        key_state* key = nullptr;
        std::uint64_t version = 0;
        std::string id;
    };

    // Move-constructed: Boost 1.81's any_completion_handler move-assignment recurses forever.
    fetch(handler_type h, executor_type hex)
        : handler(std::move(h))
        , handler_ex(std::move(hex)) {}

    handler_type handler;
    executor_type handler_ex;
    reply_adapter adapter;
    std::vector<command> commands;
    std::vector<std::shared_ptr<const value>> pieces; // hits from the start, misses once read
    std::vector<std::shared_ptr<const value>> failed; // per command: a reply that is not its shape
    // Per command: an HMGET answered whole from memory, or read whole (then also kept whole,
    // under whole_ids[c], if its key did not change meanwhile).
    std::vector<std::shared_ptr<const value>> wholes;
    std::vector<std::string> whole_ids;
    std::vector<std::size_t> whole_first; // its first piece in `missed`
    std::vector<pending> missed;
    std::vector<reply_slot> replies;
    std::uint64_t epoch = 0;
    std::uint64_t redirects = 0; // the cluster's MOVED, ASK and waits when it went out
    // The same single read asked again while this one was out, its key unchanged since: they
    // take this reply instead of asking the server each (a hot key just invalidated would
    // otherwise be read once per reader).
    struct follower {
        follower(handler_type h, executor_type hex, reply_adapter a)
            : handler(std::move(h))
            , handler_ex(std::move(hex))
            , adapter(a) {}

        handler_type handler;
        executor_type handler_ex;
        reply_adapter adapter;
    };
    std::list<follower> followers; // a list: an any_completion_handler is never relocated
    std::string solo_id;           // set when this fetch is one read that followers may join
    request req;

    static void on_reply(void* self, std::size_t index, std::span<const resp::node> nodes,
                         std::string_view message) {
        auto& f = *static_cast<fetch*>(self);
        if (index >= f.replies.size() || nodes.empty()) return;
        const reply_slot& r = f.replies[index];
        if (r.skip) return;
        const resp::node& top = nodes.front();
        auto fail = [&] { f.failed[r.command] = copy_reply(nodes, message); };
        if (resp::is_error(top.data_type)) return fail();
        switch (r.how) {
        case shape::whole:
            f.pieces[f.missed[r.first].piece] = copy_reply(nodes, message);
            return;
        case shape::count:
            if (top.data_type != resp::type::number) return fail();
            f.pieces[f.missed[r.first].piece] = copy_element(top, message);
            return;
        case shape::elements: {
            if (top.data_type != resp::type::array || top.size != r.count ||
                nodes.size() != r.count + 1)
                return fail(); // an element that is itself an aggregate: not an MGET reply
            if (!f.whole_ids[r.command].empty()) f.wholes[r.command] = copy_reply(nodes, message);
            for (std::size_t j = 0; j < r.count; ++j)
                f.pieces[f.missed[r.first + j].piece] = copy_element(nodes[1 + j], message);
            return;
        }
        }
    }
};

near_cache::near_cache(executor_type ex, const config& cfg, topology& topo)
    : ex_(std::move(ex))
    , opts_(cfg.cache)
    , cluster_(cfg.topology == config::mode::cluster)
    , topo_(topo) {
    if (cluster_) {
        slot_owner_.resize(16384);
        for (std::size_t s = 0; s < slot_owner_.size(); ++s)
            if (auto m = topo_.master_of(static_cast<std::uint16_t>(s)))
                slot_owner_[s] = to_string(*m);
    }
}

near_cache::~near_cache() {
    lru_.clear();
    for (auto& [key, k] : keys_)
        k->entries.clear();
}

request near_cache::tracking_setup(const cache_options& opts) {
    std::vector<std::string_view> args{"TRACKING", "ON"};
    if (opts.kind == cache_options::mode::broadcast) {
        args.push_back("BCAST");
        for (const std::string& p : opts.prefixes) {
            args.push_back("PREFIX");
            args.push_back(p);
        }
    } else if (opts.kind == cache_options::mode::optin) {
        args.push_back("OPTIN");
    }
    request r;
    r.push("CLIENT", args);
    return r;
}

bool near_cache::cacheable(std::string_view name, shape& how, std::string_view& canonical) {
    struct read {
        std::string_view name;
        shape how;
    };
    // Reads whose reply depends only on their key's value (no clock, no randomness, no cursor):
    // the ones the issue names and what the kv containers read.
    static constexpr read reads[] = {
        {"GET", shape::whole},
        {"MGET", shape::elements},
        {"HGET", shape::whole},
        {"HMGET", shape::elements},
        {"HGETALL", shape::whole},
        {"EXISTS", shape::count},
        {"STRLEN", shape::whole},
        {"GETRANGE", shape::whole},
        {"GETBIT", shape::whole},
        {"BITCOUNT", shape::whole},
        {"TYPE", shape::whole},
        {"HEXISTS", shape::whole},
        {"HLEN", shape::whole},
        {"HSTRLEN", shape::whole},
        {"HKEYS", shape::whole},
        {"HVALS", shape::whole},
        {"LINDEX", shape::whole},
        {"LLEN", shape::whole},
        {"LRANGE", shape::whole},
        {"LPOS", shape::whole},
        {"SISMEMBER", shape::whole},
        {"SMISMEMBER", shape::whole},
        {"SCARD", shape::whole},
        {"SMEMBERS", shape::whole},
        {"ZSCORE", shape::whole},
        {"ZMSCORE", shape::whole},
        {"ZRANK", shape::whole},
        {"ZREVRANK", shape::whole},
        {"ZCARD", shape::whole},
        {"ZCOUNT", shape::whole},
        {"ZLEXCOUNT", shape::whole},
        {"ZRANGE", shape::whole},
        {"ZREVRANGE", shape::whole},
        {"ZRANGEBYSCORE", shape::whole},
        {"ZREVRANGEBYSCORE", shape::whole},
        {"ZRANGEBYLEX", shape::whole},
        {"ZREVRANGEBYLEX", shape::whole},
        {"XLEN", shape::whole},
    };
    for (const read& r : reads) {
        if (r.name.size() == name.size() && (r.name == name || iequals(r.name, name))) {
            how = r.how;
            canonical = r.name;
            return true;
        }
    }
    return false;
}

bool near_cache::tracked_prefix(std::string_view key) const {
    if (opts_.kind != cache_options::mode::broadcast || opts_.prefixes.empty()) return true;
    return std::any_of(opts_.prefixes.begin(), opts_.prefixes.end(),
                       [key](const std::string& p) { return key.starts_with(p); });
}

bool near_cache::classify(const request& req) {
    std::string_view p = req.payload();
    std::size_t n = 0;
    std::size_t pieces = 0;
    while (!p.empty()) {
        if (n == commands_.size()) commands_.emplace_back();
        command& c = commands_[n++];
        c.args.clear();
        std::string_view name;
        const char* start = p.data();
        const std::size_t argc = cluster::read_command(p, static_cast<std::size_t>(-1),
                                                       [&](std::size_t i, std::string_view a) {
                                                           if (i == 0)
                                                               name = a;
                                                           else
                                                               c.args.push_back(a);
                                                       });
        if (argc == 0 || !cacheable(name, c.how, c.name)) return false;
        c.raw = std::string_view(start, static_cast<std::size_t>(p.data() - start));
        c.canonical = name == c.name; // as akv::request wrote it: its bytes are its id
        const bool hmget = c.name == "HMGET";
        if (c.args.size() < (hmget ? 2u : 1u)) return false; // the server's arity error
        c.first_piece = pieces;
        c.pieces = c.how == shape::whole ? 1 : hmget ? c.args.size() - 1 : c.args.size();
        pieces += c.pieces;
        // Keys: args[0], or every argument of MGET and EXISTS.
        const std::size_t keys = c.how == shape::whole || hmget ? 1 : c.args.size();
        int slot = -1;
        for (std::size_t i = 0; i < keys; ++i) {
            if (!tracked_prefix(c.args[i])) return false; // no invalidation would come
            // On a cluster, keys in two slots fail (CROSSSLOT) as they would uncached.
            if (cluster_) {
                const int s = cluster_slot(c.args[i]);
                if (slot >= 0 && s != slot) return false;
                slot = s;
            }
        }
    }
    command_count_ = n;
    return n > 0;
}

std::string_view near_cache::piece_key(const command& c, std::size_t piece) const {
    if (c.how == shape::whole || c.name == "HMGET") return c.args[0];
    return c.args[piece];
}

std::string_view near_cache::whole_id(const command& c, std::string& scratch) const {
    if (c.canonical) return c.raw;
    scratch.clear();
    write_command(scratch, c.name, c.args);
    return scratch;
}

void near_cache::piece_id(const command& c, std::size_t piece, std::string& out) const {
    if (c.how == shape::whole) {
        out.assign(whole_id(c, out)); // its own bytes when canonical: not built again
        return;
    }
    out.clear();
    if (c.name == "HMGET") {
        const std::string_view args[] = {c.args[0], c.args[1 + piece]};
        write_command(out, c.name, args);
    } else {
        write_command(out, c.name, std::span<const std::string_view>(&c.args[piece], 1));
    }
}

near_cache::entry* near_cache::lookup(std::string_view id, clock::time_point now) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return nullptr;
    entry& e = *it->second;
    if (opts_.ttl.count() > 0 && now >= e.expires) {
        ++stats_.expirations;
        drop(e);
        return nullptr;
    }
    return &e;
}

bool near_cache::fits(const reply_adapter& adapter) const noexcept {
    return adapter.slots == static_cast<std::size_t>(-1) || adapter.slots == command_count_;
}

bool near_cache::on_executor() const noexcept {
    const auto* io = ex_.target<asio::io_context::executor_type>();
    return io && io->running_in_this_thread();
}

void near_cache::start_exec(handler_type handler, executor_type handler_ex, const request* req,
                            reply_adapter adapter) {
    if (on_executor()) { // the common case: no wrapping, no dispatch
        exec_now(std::move(handler), std::move(handler_ex), req, adapter);
        return;
    }
    asio::dispatch(ex_,
                   [this, h = std::move(handler), hex = std::move(handler_ex), req,
                    adapter]() mutable { exec_now(std::move(h), std::move(hex), req, adapter); });
}

std::size_t near_cache::lookup_all() {
    const clock::time_point now = opts_.ttl.count() > 0 ? clock::now() : clock::time_point{};
    found_.clear();
    whole_.assign(command_count_, nullptr);
    std::size_t misses = 0;
    for (std::size_t c = 0; c < command_count_; ++c) {
        const command& cmd = commands_[c];
        if (cmd.how == shape::whole) {
            entry* e = lookup(whole_id(cmd, id_), now);
            found_.push_back(e);
            misses += e ? 0 : 1;
            continue;
        }
        // An HMGET read again with the same fields (an embedding table's hot rows): one
        // lookup for all of them.
        if (cmd.name == "HMGET" && cmd.pieces > 1) { // one field: the whole is the piece
            if (entry* e = lookup(whole_id(cmd, id_), now)) {
                whole_[c] = e;
                found_.insert(found_.end(), cmd.pieces, nullptr);
                continue;
            }
        }
        for (std::size_t i = 0; i < cmd.pieces; ++i) {
            piece_id(cmd, i, id_);
            entry* e = lookup(id_, now);
            if (!e && cmd.name == "MGET") {
                // A kept GET answers an MGET of its key too (an error, which MGET would not
                // give, is never kept); not the other way round: MGET's nil may be a hash.
                id_.clear();
                write_command(id_, "GET", std::span<const std::string_view>(&cmd.args[i], 1));
                e = lookup(id_, now);
            }
            found_.push_back(e);
            misses += e ? 0 : 1;
        }
    }
    return misses;
}

void near_cache::touch(entry& e) {
    // A mark, not a move: a hit writes only its own entry (moving it to the front would touch
    // two neighbours, cache misses on a big cache). Eviction gives marked entries a second
    // chance: least recently used, approximately (CLOCK).
    e.referenced = true;
}

std::size_t near_cache::answer(const reply_adapter& adapter) {
    std::size_t bytes = 0;
    values_.clear();
    for (entry* e : found_) {
        values_.push_back(e ? e->val.get() : nullptr);
        if (e) touch(*e);
    }
    for (std::size_t c = 0; c < command_count_; ++c) {
        const command& cmd = commands_[c];
        if (entry* w = whole_[c]) {
            touch(*w);
            adapter(c, w->val->nodes, w->val->bytes);
            bytes += w->val->bytes.size();
            stats_.hits += cmd.pieces;
            continue;
        }
        deliver(adapter, c, cmd, std::span(values_).subspan(cmd.first_piece, cmd.pieces), bytes);
        stats_.hits += cmd.pieces;
    }
    return bytes;
}

bool near_cache::try_answer(const request& req, reply_adapter adapter) {
    // Every so often a hit goes the posted way (false: exec() then answers it from memory), so
    // that a loop of hits still lets the I/O in: an invalidation waiting to be read, a timer.
    if (!req.get_options().cache || ++sync_answers_ % 32 == 0 || !on_executor() || !classify(req) ||
        !fits(adapter) || lookup_all() > 0)
        return false;
    answer(adapter);
    return true;
}

void near_cache::exec_now(handler_type handler, executor_type handler_ex, const request* req,
                          reply_adapter adapter) {
    // A response that cannot take the replies gets its error (incompatible_size) from the
    // topology, as without the cache.
    if (!req->get_options().cache || !classify(*req) || !fits(adapter)) {
        note_writes(*req);
        topo_.start_exec(std::move(handler), std::move(handler_ex), req, adapter);
        return;
    }
    if (lookup_all() > 0) {
        start_fetch(std::move(handler), std::move(handler_ex), *req, adapter, found_.size());
        return;
    }
    const std::size_t bytes = answer(adapter);
    detail::complete_on(handler_ex, std::move(handler), error_code{}, bytes);
}

void near_cache::deliver(const reply_adapter& adapter, std::size_t index, const command& cmd,
                         std::span<const value* const> pieces, std::size_t& bytes) {
    if (cmd.how == shape::whole) {
        const value& v = *pieces.front();
        adapter(index, v.nodes, v.bytes);
        bytes += v.bytes.size();
        return;
    }
    message_.clear();
    nodes_.clear();
    if (cmd.how == shape::count) {
        long long sum = 0;
        for (const value* v : pieces) {
            long long n = 0;
            const std::string_view t = v->nodes.front().value(v->bytes);
            std::from_chars(t.data(), t.data() + t.size(), n);
            sum += n;
        }
        message_ = std::to_string(sum);
        nodes_.push_back({resp::type::number, 0, 0, 0, message_.size()});
    } else {
        nodes_.push_back({resp::type::array, 0, pieces.size(), 0, 0});
        for (const value* v : pieces) {
            const std::size_t base = message_.size();
            message_ += v->bytes;
            for (resp::node n : v->nodes) {
                n.depth += 1;
                n.offset += base;
                nodes_.push_back(n);
            }
        }
    }
    adapter(index, nodes_, message_);
    bytes += message_.size();
}

void near_cache::start_fetch(handler_type handler, executor_type handler_ex, const request& req,
                             reply_adapter adapter, std::size_t pieces) {
    const bool solo = command_count_ == 1 && commands_[0].how == shape::whole;
    if (solo) {
        const std::string_view id = whole_id(commands_[0], id_);
        if (auto it = solo_inflight_.find(id); it != solo_inflight_.end()) {
            fetch& leader = *it->second;
            const fetch::pending& p = leader.missed.front();
            if (leader.epoch == epoch_ && p.key->version == p.version) {
                leader.followers.emplace_back(std::move(handler), std::move(handler_ex), adapter);
                return;
            }
        }
    }
    auto f = std::make_unique<fetch>(std::move(handler), std::move(handler_ex));
    f->adapter = adapter;
    f->commands.assign(commands_.begin(), commands_.begin() + command_count_);
    f->pieces.resize(pieces);
    f->failed.resize(command_count_);
    f->wholes.resize(command_count_);
    f->whole_ids.resize(command_count_);
    f->whole_first.resize(command_count_);
    f->epoch = epoch_;
    f->redirects = redirects();
    request::options o;
    o.idempotent = true; // reads: safe to send again after a reconnect
    o.fail_if_not_connected = req.get_options().fail_if_not_connected;
    o.timeout = req.get_options().timeout;
    f->req = request(o);
    const bool optin = opts_.kind == cache_options::mode::optin;
    auto track = [&] {
        if (!optin) return;
        f->req.push("CLIENT", "CACHING", "yes");
        f->replies.push_back({0, 0, 0, shape::whole, true});
    };
    for (std::size_t c = 0; c < f->commands.size(); ++c) {
        const command& cmd = f->commands[c];
        if (entry* w = whole_[c]) {
            f->wholes[c] = w->val;
            touch(*w);
            stats_.hits += cmd.pieces;
            continue;
        }
        const std::size_t first = f->missed.size();
        for (std::size_t i = 0; i < cmd.pieces; ++i) {
            const std::size_t piece = cmd.first_piece + i;
            if (entry* e = found_[piece]) {
                f->pieces[piece] = e->val;
                touch(*e);
                ++stats_.hits;
                continue;
            }
            key_state& k = key_of(piece_key(cmd, i));
            ++k.in_flight;
            piece_id(cmd, i, id_);
            f->missed.push_back({piece, &k, k.version, id_});
        }
        const std::size_t count = f->missed.size() - first;
        if (count == 0) continue;
        if (cmd.how == shape::whole) {
            track();
            f->req.push(cmd.name, cmd.args);
            f->replies.push_back({c, first, 1, shape::whole, false});
        } else if (cmd.how == shape::count) {
            for (std::size_t j = first; j < f->missed.size(); ++j) {
                track();
                f->req.push(cmd.name, cmd.args[f->missed[j].piece - cmd.first_piece]);
                f->replies.push_back({c, j, 1, shape::count, false});
            }
        } else {
            args_.clear();
            const bool hmget = cmd.name == "HMGET";
            if (hmget && count == cmd.pieces && count > 1) {
                f->whole_ids[c] = whole_id(cmd, id_);
                f->whole_first[c] = first;
            }
            if (hmget) args_.push_back(cmd.args[0]);
            for (std::size_t j = first; j < f->missed.size(); ++j)
                args_.push_back(cmd.args[(hmget ? 1 : 0) + f->missed[j].piece - cmd.first_piece]);
            track();
            f->req.push(cmd.name, args_);
            f->replies.push_back({c, first, count, shape::elements, false});
        }
    }
    if (solo && f->missed.size() == 1) {
        f->solo_id = f->missed.front().id;
        // Replaces a leader whose key changed meanwhile; the map's key views this fetch's id.
        solo_inflight_.erase(f->solo_id);
        solo_inflight_.emplace(f->solo_id, f.get());
    }
    // The caller's cancellation reaches the read at the server.
    auto slot = f->handler.get_cancellation_slot();
    fetch* raw = f.get();
    const reply_adapter fill{raw, &fetch::on_reply, raw->replies.size()};
    topo_.start_exec(
        handler_type(asio::bind_cancellation_slot(
            slot, detail::recycled([this, f = std::move(f)](error_code ec, std::size_t) mutable {
                fetch_done(std::move(f), ec);
            }))),
        ex_, &raw->req, fill);
}

std::uint64_t near_cache::redirects() const {
    // OPTIN on a cluster: a redirected read went again without its CLIENT CACHING before it,
    // so the new node does not track it.
    if (!cluster_ || opts_.kind != cache_options::mode::optin) return 0;
    client_stats s;
    topo_.add_stats(s);
    return s.cluster.moved + s.cluster.asked + s.cluster.waits;
}

void near_cache::fetch_done(std::unique_ptr<fetch> f, error_code ec) {
    if (!f->solo_id.empty()) {
        auto it = solo_inflight_.find(f->solo_id);
        if (it != solo_inflight_.end() && it->second == f.get()) solo_inflight_.erase(it);
    }
    const bool same_epoch = f->epoch == epoch_ && f->redirects == redirects();
    for (std::size_t c = 0; c < f->commands.size() && !ec && same_epoch; ++c) {
        // An HMGET read whole: kept whole too, under the same rule as its pieces (its key is
        // alive: its reads are still counted in flight).
        if (f->whole_ids[c].empty() || !f->wholes[c] || f->failed[c]) continue;
        const fetch::pending& p = f->missed[f->whole_first[c]];
        if (p.key->version == p.version) insert(f->whole_ids[c], *p.key, f->wholes[c]);
    }
    for (fetch::pending& p : f->missed) {
        key_state& k = *p.key;
        --k.in_flight;
        const auto& v = f->pieces[p.piece];
        if (!ec && v && !v->nodes.empty() && !resp::is_error(v->nodes.front().data_type)) {
            if (same_epoch && k.version == p.version) {
                insert(p.id, k, v);
                ++stats_.misses;
            } else {
                ++stats_.not_cached;
            }
        }
        release_key(k);
    }
    if (ec) {
        detail::complete_on(f->handler_ex, std::move(f->handler), ec, std::size_t{0});
        for (fetch::follower& w : f->followers)
            detail::complete_on(w.handler_ex, std::move(w.handler), ec, std::size_t{0});
        return;
    }
    std::size_t bytes = 0;
    std::vector<const value*> values;
    values.reserve(f->pieces.size());
    std::shared_ptr<const value> missing;
    for (auto& v : f->pieces) {
        if (!v) {
            if (!missing)
                missing = error_value("ERR akv cache: the server sent no reply for a read");
            values.push_back(missing.get());
        } else {
            values.push_back(v.get());
        }
    }
    for (std::size_t c = 0; c < f->commands.size(); ++c) {
        const command& cmd = f->commands[c];
        if (const auto& bad = f->failed[c]) {
            f->adapter(c, bad->nodes, bad->bytes);
            bytes += bad->bytes.size();
            continue;
        }
        if (const auto& w = f->wholes[c]) {
            f->adapter(c, w->nodes, w->bytes);
            bytes += w->bytes.size();
            continue;
        }
        deliver(f->adapter, c, cmd, std::span(values).subspan(cmd.first_piece, cmd.pieces), bytes);
    }
    detail::complete_on(f->handler_ex, std::move(f->handler), error_code{}, bytes);
    for (fetch::follower& w : f->followers) {
        std::size_t their_bytes = 0;
        if (const auto& bad = f->failed[0]) {
            w.adapter(0, bad->nodes, bad->bytes);
            their_bytes = bad->bytes.size();
        } else {
            deliver(w.adapter, 0, f->commands[0], std::span(values).subspan(0, 1), their_bytes);
        }
        ++stats_.misses;
        detail::complete_on(w.handler_ex, std::move(w.handler), error_code{}, their_bytes);
    }
}

near_cache::key_state& near_cache::key_of(std::string_view key) {
    auto it = keys_.find(key);
    if (it != keys_.end()) return *it->second;
    auto k = std::make_unique<key_state>();
    k->key.assign(key);
    key_state& ref = *k;
    keys_.emplace(ref.key, std::move(k));
    return ref;
}

void near_cache::release_key(key_state& k) {
    if (k.in_flight > 0 || !k.entries.empty()) return;
    auto it = keys_.find(k.key);
    if (it != keys_.end() && it->second.get() == &k) keys_.erase(it);
}

void near_cache::insert(std::string_view id, key_state& key, std::shared_ptr<const value> v) {
    const std::size_t size =
        entry_overhead + id.size() + v->bytes.size() + v->nodes.size() * sizeof(resp::node);
    if (size > opts_.max_bytes) return;
    if (auto it = entries_.find(id); it != entries_.end()) {
        // The same read twice in one request: the later reply replaces the value in place (a
        // drop could release `key`).
        entry& old = *it->second;
        stats_.bytes = stats_.bytes - old.bytes + size;
        old.bytes = size;
        old.val = std::move(v);
        if (opts_.ttl.count() > 0) old.expires = clock::now() + opts_.ttl;
        old.referenced = true;
        return;
    }
    auto e = std::make_unique<entry>();
    e->id.assign(id);
    e->key = &key;
    e->val = std::move(v);
    e->bytes = size;
    if (opts_.ttl.count() > 0) e->expires = clock::now() + opts_.ttl;
    entry& ref = *e;
    entries_.emplace(ref.id, std::move(e));
    lru_.push_front(ref);
    key.entries.push_back(ref);
    stats_.bytes += size;
    // The new entry is at the front: `key` keeps it, so evicting never releases `key`.
    while (stats_.bytes > opts_.max_bytes && !lru_.empty() && &lru_.back() != &ref) {
        entry& victim = lru_.back();
        if (victim.referenced) { // used since it last came round: to the front, unmarked
            victim.referenced = false;
            lru_.erase(lru_.iterator_to(victim));
            lru_.push_front(victim);
            continue;
        }
        ++stats_.evictions;
        drop(victim);
    }
}

void near_cache::drop(entry& e) {
    lru_.erase(lru_.iterator_to(e));
    key_state& k = *e.key;
    k.entries.erase(k.entries.iterator_to(e));
    stats_.bytes -= e.bytes;
    auto it = entries_.find(e.id);
    entries_.erase(it); // destroys e
    release_key(k);
}

void near_cache::invalidate_key(std::string_view key) {
    auto it = keys_.find(key);
    if (it == keys_.end()) return;
    key_state& k = *it->second;
    ++k.version;
    while (!k.entries.empty()) {
        ++stats_.invalidations;
        entry& e = k.entries.front();
        if (k.entries.size() == 1 && k.in_flight == 0) {
            drop(e); // the last one: k goes with it
            return;
        }
        drop(e);
    }
}

void near_cache::flush_all() {
    ++epoch_;
    ++stats_.flushes;
    while (!lru_.empty())
        drop(lru_.front());
    for (auto& [key, k] : keys_)
        ++k->version;
    notify({});
}

void near_cache::flush() {
    asio::dispatch(ex_, [this] { flush_all(); });
}

void near_cache::drop_moved_slots() {
    ++epoch_; // a read out across the move may have been answered by the old master
    std::vector<bool> moved(slot_owner_.size(), false);
    bool any = false;
    for (std::size_t s = 0; s < slot_owner_.size(); ++s) {
        const auto m = topo_.master_of(static_cast<std::uint16_t>(s));
        std::string owner = m ? to_string(*m) : std::string();
        if (owner != slot_owner_[s]) {
            moved[s] = any = true;
            slot_owner_[s] = std::move(owner);
        }
    }
    if (!any) return;
    std::vector<std::string> keys;
    for (auto& [key, k] : keys_)
        if (moved[cluster_slot(k->key)]) keys.push_back(k->key);
    invalidated_.clear();
    for (const std::string& key : keys) {
        invalidate_key(key);
        invalidated_.push_back(key);
    }
    if (!invalidated_.empty()) notify(invalidated_);
}

void near_cache::on_invalidation(std::span<const resp::node> nodes, std::string_view message) {
    if (nodes.size() < 3) return;
    const resp::node& list = nodes[2];
    if (list.data_type == resp::type::null) {
        flush_all();
        return;
    }
    if (!resp::is_aggregate(list.data_type)) return;
    invalidated_.clear();
    for (std::size_t i = 3; i < nodes.size(); ++i) {
        if (nodes[i].depth != 2) continue;
        const std::string_view key = nodes[i].value(message);
        invalidate_key(key);
        invalidated_.push_back(key);
    }
    notify(invalidated_);
}

void near_cache::on_event(const client_event& e) {
    switch (e.what) {
    case client_event::kind::disconnected:
        // The server forgot what it tracked for that connection: nothing it read is known.
        flush_all();
        break;
    case client_event::kind::topology_changed:
        if (cluster_)
            drop_moved_slots();
        else
            flush_all(); // a sentinel's new master
        break;
    default:
        break;
    }
}

void near_cache::note_writes(const request& req) {
    if (keys_.empty()) return;
    std::string_view p = req.payload();
    while (!p.empty()) {
        args_.clear();
        if (cluster::read_command(
                p, static_cast<std::size_t>(-1),
                [this](std::size_t, std::string_view a) { args_.push_back(a); }) == 0)
            return;
        const std::string_view name = args_[0];
        if (iequals(name, "FLUSHALL") || iequals(name, "FLUSHDB") || iequals(name, "SWAPDB")) {
            flush_all();
            continue;
        }
        if (cluster::reads_only(name)) continue;
        const auto how = cluster::command_keys(args_, keys_scratch_);
        if (how == cluster::routing::unknown && args_.size() > 1) keys_scratch_.assign(1, args_[1]);
        for (std::string_view k : keys_scratch_)
            invalidate_key(k);
    }
}

void near_cache::notify(std::span<const std::string_view> keys) {
    const std::size_t n = listeners_.size();
    for (std::size_t i = 0; i < n && i < listeners_.size(); ++i)
        listeners_[i].second(keys);
}

std::size_t near_cache::add_listener(listener l) {
    listeners_.emplace_back(++next_listener_, std::move(l));
    return next_listener_;
}

void near_cache::remove_listener(std::size_t id) {
    std::erase_if(listeners_, [id](const auto& l) { return l.first == id; });
}

void near_cache::add_stats(cache_stats& into) const {
    into = stats_;
    into.entries = entries_.size();
}

} // namespace akv::detail
