#include "plan.hpp"

#include <akv/cluster/command_keys.hpp>
#include <akv/cluster_slot.hpp>
#include <akv/error.hpp>

#include <algorithm>

namespace akv::cluster {

using akv::detail::iequals;
using boost::system::error_code;

namespace {

std::string key_of(const endpoint& ep) {
    return to_string(ep);
}

// Delivers a reply we made up (a refusal) to the caller's adapter as a simple error.
void deliver_error(const akv::detail::reply_adapter& user, std::size_t index,
                   std::string_view text) {
    const resp::node n{resp::type::simple_error, 0, 0, 0, text.size()};
    user(index, std::span<const resp::node>(&n, 1), text);
}

} // namespace

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

int single_slot(std::string_view p, std::span<std::string_view> args,
                std::vector<std::string_view>& keys) {
    int slot = -1;
    while (!p.empty()) {
        const std::size_t argc = read_command(
            p, args.size(), [&args](std::size_t i, std::string_view a) { args[i] = a; });
        if (argc == 0) return -1;
        const auto how = command_keys(args.first(argc), keys);
        if (how != routing::by_keys || keys.empty()) return -1;
        for (std::string_view k : keys) {
            const int s = cluster_slot(k);
            if (slot >= 0 && s != slot) return -1;
            slot = s;
        }
    }
    return slot;
}

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
    if (e1 != std::errc{} || p1 != text.data() + space || slot >= 16384) return r;
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

bool reads_only(std::string_view name) {
    static constexpr std::string_view names[] = {
        "BITCOUNT",      "BITPOS",   "DUMP",        "EVALSHA_RO",
        "EVAL_RO",       "EXISTS",   "FCALL_RO",    "GEODIST",
        "GEOHASH",       "GEOPOS",   "GEOSEARCH",   "GET",
        "GETBIT",        "GETRANGE", "HEXISTS",     "HGET",
        "HGETALL",       "HKEYS",    "HLEN",        "HMGET",
        "HRANDFIELD",    "HSCAN",    "HSTRLEN",     "HVALS",
        "LINDEX",        "LLEN",     "LPOS",        "LRANGE",
        "MGET",          "PFCOUNT",  "PTTL",        "SCARD",
        "SDIFF",         "SINTER",   "SISMEMBER",   "SMEMBERS",
        "SMISMEMBER",    "SORT_RO",  "SRANDMEMBER", "SSCAN",
        "STRLEN",        "SUNION",   "TTL",         "TYPE",
        "XLEN",          "XRANGE",   "XREVRANGE",   "ZCARD",
        "ZCOUNT",        "ZMSCORE",  "ZRANGE",      "ZRANGEBYLEX",
        "ZRANGEBYSCORE", "ZRANK",    "ZREVRANGE",   "ZREVRANGEBYSCORE",
        "ZREVRANK",      "ZSCAN",    "ZSCORE"};
    for (std::string_view n : names)
        if (iequals(n, name)) return true;
    return false;
}

std::string describe_cross_slot(std::string_view command, std::span<const std::string_view> keys) {
    std::string text =
        "CROSSSLOT keys of " + std::string(command) + " hash to different cluster slots:";
    for (std::size_t i = 0; i < keys.size() && i < 8; ++i) {
        text += i == 0 ? " \"" : ", \"";
        text.append(keys[i].substr(0, 64));
        text += "\" (slot " + std::to_string(cluster_slot(keys[i])) + ")";
    }
    if (keys.size() > 8) text += ", ...";
    text += "; give keys that must live together a common {hash tag}";
    return text;
}

akv::detail::reply_adapter group::adapter() noexcept {
    return {this,
            [](void* p, std::size_t local, std::span<const resp::node> nodes,
               std::string_view message) {
                auto& g = *static_cast<group*>(p);
                g.owner->on_reply(g, local, nodes, message);
            },
            static_cast<std::size_t>(-1)};
}

void plan::on_reply(group& g, std::size_t local, std::span<const resp::node> nodes,
                    std::string_view message) {
    if (local >= g.reply_cmd.size()) return;
    const std::size_t cmd = g.reply_cmd[local];
    if (cmd == no_reply) return;
    const bool is_error = !nodes.empty() && resp::is_error(nodes.front().data_type);
    if (is_error) {
        redirect r = parse_redirect(nodes.front().value(message), g.target);
        if (r.kind != redirect_kind::none) {
            g.redirects.emplace_back(cmd, std::move(r));
            return;
        }
    }
    // A fanned-out command: the first error wins, else the last reply.
    if (fan_out_[cmd]) {
        fanned_[cmd].push_back(key_of(g.target));
        if (done_[cmd] == 2) return;
    }
    user_(reply_of_[cmd], nodes, message);
    done_[cmd] = is_error ? 2 : 1;
}

error_code plan::start(const request& req, akv::detail::reply_adapter user,
                       std::uint64_t done_already, cluster_stats& stats) {
    req_ = &req;
    user_ = user;
    fanned_.clear();
    redirects_ = 0;
    transaction_ = false;
    first_round_ = true;
    if (!split_commands(req.payload(), cmds_)) return error::resp_protocol;

    const std::size_t count = cmds_.size();
    reply_of_.assign(count, no_reply);
    slot_.assign(count, -1);
    fan_out_.assign(count, false);
    master_only_.assign(count, false);
    done_.assign(count, 0);
    for (std::size_t i = 0; i < count && i < 64; ++i)
        if (done_already & (std::uint64_t{1} << i)) done_[i] = 1;
    to_.assign(count, std::nullopt);

    // Where each command goes, and which are refused before anything is sent.
    std::size_t replies = 0;
    int txn_slot = -1;
    bool txn_cross = false;
    for (std::size_t i = 0; i < count; ++i) {
        const auto& args = cmds_[i].args;
        if (!akv::detail::answers_with_push(args[0])) reply_of_[i] = replies++;
        if (iequals(args[0], "MULTI")) transaction_ = true;
        const routing how = command_keys(args, keys_);
        if (how == routing::all_masters) {
            fan_out_[i] = true;
            continue;
        }
        if (how == routing::unknown && args.size() > 1) {
            keys_.assign(1, args[1]);
        } else if (how != routing::by_keys || keys_.empty()) {
            continue;
        }
        const std::uint16_t first = cluster_slot(keys_.front());
        bool same = true;
        for (std::string_view k : keys_)
            same = same && cluster_slot(k) == first;
        if (!same) {
            if (transaction_) {
                txn_cross = true;
            } else if (reply_of_[i] != no_reply) {
                deliver_error(user_, reply_of_[i], describe_cross_slot(args[0], keys_));
                ++stats.refusals;
                done_[i] = 1;
            } else {
                done_[i] = 1; // a push-answered command has no reply slot to refuse in
            }
            continue;
        }
        slot_[i] = first;
        if (transaction_) {
            if (txn_slot >= 0 && txn_slot != first) txn_cross = true;
            txn_slot = first;
        }
    }
    // CLIENT CACHING yes|no concerns the next command on the same connection (client-side
    // caching's OPTIN mode): it goes where that command goes.
    for (std::size_t i = count; i-- > 1;) {
        const auto& args = cmds_[i - 1].args;
        if (slot_[i - 1] < 0 && slot_[i] >= 0 && args.size() >= 2 && iequals(args[0], "CLIENT") &&
            iequals(args[1], "CACHING"))
            slot_[i - 1] = slot_[i];
    }
    if (transaction_) {
        // A transaction runs on one node or not at all.
        if (txn_cross) {
            for (std::size_t i = 0; i < count; ++i) {
                if (reply_of_[i] != no_reply)
                    deliver_error(user_, reply_of_[i],
                                  "CROSSSLOT the keys of this MULTI/EXEC transaction hash to "
                                  "different cluster slots; give them a common {hash tag}");
                done_[i] = 1;
            }
            return {};
        }
        for (std::size_t i = 0; i < count; ++i) {
            slot_[i] = txn_slot;
            fan_out_[i] = false;
        }
    }
    return {};
}

bool plan::pending(const std::vector<endpoint>& masters) {
    // A fanned-out command is done once every master has answered it.
    const auto fan_pending = [this](std::size_t i, const endpoint& m) {
        const auto& got = fanned_[i];
        return std::find(got.begin(), got.end(), key_of(m)) == got.end();
    };
    todo_.clear();
    for (std::size_t i = 0; i < cmds_.size(); ++i) {
        if (fan_out_[i] && !transaction_ && !to_[i]) {
            if (first_round_ || std::any_of(masters.begin(), masters.end(),
                                            [&](const endpoint& m) { return fan_pending(i, m); }))
                todo_.push_back(i);
        } else if (!done_[i]) {
            todo_.push_back(i);
        }
    }
    return !todo_.empty();
}

group& plan::group_for(const endpoint* target, bool asking) {
    for (group* g : groups_)
        if (g->asking == asking && (target ? (!g->to_main && g->target == *target) : g->to_main))
            return *g;
    if (used_ == spare_.size()) spare_.push_back(std::make_unique<group>());
    group& g = *spare_[used_++];
    g.owner = this;
    g.asking = asking;
    g.whole = false;
    g.to_main = !target;
    if (target) g.target = *target;
    g.cmds.clear();
    g.reply_cmd.clear();
    g.sub.clear();
    g.redirects.clear();
    g.ec = {};
    groups_.push_back(&g);
    return g;
}

const std::vector<group*>& plan::make_groups(const slot_map& map, bool read_from_replicas,
                                             bool& missing_owner) {
    groups_.clear();
    used_ = 0;
    missing_owner = false;
    for (std::size_t i : todo_) {
        if (to_[i]) {
            group_for(&to_[i]->to, to_[i]->kind == redirect_kind::ask).cmds.push_back(i);
        } else if (fan_out_[i] && !transaction_) {
            for (const endpoint& m : map.masters()) {
                const auto& got = fanned_[i];
                if (std::find(got.begin(), got.end(), key_of(m)) == got.end())
                    group_for(&m, false).cmds.push_back(i);
            }
        } else if (slot_[i] >= 0) {
            const shard* sh = map.owner(static_cast<std::uint16_t>(slot_[i]));
            if (!sh) {
                missing_owner = true;
                continue;
            }
            const bool replica = read_from_replicas && !transaction_ && !master_only_[i] &&
                                 !sh->replicas.empty() && reads_only(cmds_[i].args[0]);
            const endpoint& target =
                replica ? sh->replicas[slot_[i] % sh->replicas.size()] : sh->master;
            group_for(&target, false).cmds.push_back(i);
        } else {
            group_for(nullptr, false).cmds.push_back(i);
        }
    }
    // Keyless commands ride with the keyed ones when there is a single keyed group.
    if (groups_.size() == 2 && groups_[1]->to_main && !groups_[0]->asking &&
        !fan_out_[groups_[1]->cmds.front()]) {
        auto& a = groups_[0]->cmds;
        a.insert(a.end(), groups_[1]->cmds.begin(), groups_[1]->cmds.end());
        std::sort(a.begin(), a.end());
        groups_.pop_back();
    } else if (groups_.size() == 2 && groups_[0]->to_main && !groups_[1]->asking) {
        auto& a = groups_[1]->cmds;
        a.insert(a.end(), groups_[0]->cmds.begin(), groups_[0]->cmds.end());
        std::sort(a.begin(), a.end());
        groups_.erase(groups_.begin());
    }
    for (group* g : groups_) {
        g->whole = first_round_ && !g->asking && g->cmds.size() == cmds_.size();
        for (std::size_t i : g->cmds) {
            if (g->asking) {
                g->sub.push("ASKING");
                g->reply_cmd.push_back(no_reply);
            }
            if (!g->whole) {
                const auto& args = cmds_[i].args;
                g->sub.push(args[0], std::span<const std::string_view>(args).subspan(1));
            }
            if (reply_of_[i] != no_reply) g->reply_cmd.push_back(i);
        }
    }
    to_.assign(cmds_.size(), std::nullopt);
    first_round_ = false;
    return groups_;
}

const round_outcome& plan::after_round(slot_map& map, std::size_t max_redirects, bool stopped,
                                       cluster_stats& stats) {
    round_outcome& out = outcome_;
    out.ec = {};
    out.wait = false;
    out.refresh = false;
    out.moved.clear();
    const std::size_t count = cmds_.size();
    for (group* g : groups_) {
        for (auto& [cmd, r] : g->redirects) {
            if (r.kind == redirect_kind::later || (transaction_ && r.kind == redirect_kind::ask)) {
                ++stats.waits;
                out.wait = true;
                out.refresh = true;
                continue;
            }
            if (r.kind == redirect_kind::moved) {
                ++stats.moved;
                map.assign(r.slot, r.to);
                out.moved.push_back(r.slot);
                out.refresh = true;
            } else {
                ++stats.asked;
            }
            if (!transaction_) {
                ++redirects_;
                to_[cmd] = r;
            } else if (!to_[0]) {
                // The whole transaction moves: EXEC was refused with EXECABORT.
                ++redirects_;
                for (std::size_t i = 0; i < count; ++i)
                    to_[i] = r;
            }
        }
        if (!g->redirects.empty() && transaction_)
            for (std::size_t i = 0; i < count; ++i)
                done_[i] = 0;
        const error_code ec = g->ec;
        if (!ec) continue;
        const bool unsent = ec == error::not_connected;
        const bool lost = ec == error::connection_lost || ec == error::connection_closed;
        if (unsent || (lost && req_->get_options().idempotent && !stopped)) {
            // The node was down, or went down before answering a request safe to send again:
            // wait for the map to say where its slots went, then send there, to a master.
            ++stats.waits;
            out.wait = true;
            out.refresh = true;
            for (std::size_t i : g->cmds) {
                to_[i].reset();
                master_only_[i] = true;
            }
            continue;
        }
        out.ec = ec;
        return out;
    }
    if (redirects_ > std::max<std::size_t>(max_redirects, 1)) out.ec = error::too_many_redirects;
    return out;
}

} // namespace akv::cluster
