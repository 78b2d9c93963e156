// Where the commands of one request go on a Redis Cluster, apart from I/O: the slot of each
// command, the refusals made before anything is sent (CROSSSLOT, a MULTI spanning slots), the
// commands that go to every master, the grouping per node with the caller's order kept, and
// what MOVED, ASK, TRYAGAIN and a lost node mean for the next round. The cluster topology
// (topology/cluster.cpp) sends each round's groups and hands back how they went; the unit tests
// (tests/unit/cluster_plan_test.cpp) play the nodes.
#pragma once

#include <akv/client.hpp>
#include <akv/cluster/slot_map.hpp>
#include <akv/detail/adapt.hpp>
#include <akv/request.hpp>

#include <boost/system/error_code.hpp>

#include <charconv>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace akv::cluster {

inline constexpr std::size_t no_reply = static_cast<std::size_t>(-1);

// One command of a request, read back from the bytes akv::request wrote (arrays of bulk
// strings, so the grammar is small).
struct command_view {
    std::vector<std::string_view> args;
};

namespace detail {
inline bool read_line_number(std::string_view& p, char tag, std::size_t& n) {
    if (p.empty() || p.front() != tag) return false;
    const std::size_t crlf = p.find("\r\n");
    if (crlf == std::string_view::npos) return false;
    auto [ptr, ec] = std::from_chars(p.data() + 1, p.data() + crlf, n);
    if (ec != std::errc{} || ptr != p.data() + crlf) return false;
    p.remove_prefix(crlf + 2);
    return true;
}
} // namespace detail

// Reads the command at the front of `p`, handing each argument to `arg(index, text)`; its
// argument count, or 0 if it is malformed or has more than `max_args`.
template <class F> std::size_t read_command(std::string_view& p, std::size_t max_args, F&& arg) {
    std::size_t argc = 0;
    if (!detail::read_line_number(p, '*', argc) || argc == 0 || argc > max_args) return 0;
    for (std::size_t i = 0; i < argc; ++i) {
        std::size_t len = 0;
        if (!detail::read_line_number(p, '$', len) || p.size() < len + 2) return 0;
        arg(i, p.substr(0, len));
        p.remove_prefix(len + 2);
    }
    return argc;
}

// Every command of `payload`, reusing `out`'s elements (and their capacity); false if
// malformed.
bool split_commands(std::string_view payload, std::vector<command_view>& out);

// The one slot of a request whose every command has keys, all in that slot; -1 otherwise (or
// when a command has more than `args.size()` arguments). `args` and `keys` are scratch space.
int single_slot(std::string_view payload, std::span<std::string_view> args,
                std::vector<std::string_view>& keys);

enum class redirect_kind { none, moved, ask, later };

struct redirect {
    redirect_kind kind = redirect_kind::none;
    std::uint16_t slot = 0;
    endpoint to;
};

// "MOVED 3999 127.0.0.1:6381", "ASK 3999 [::1]:6381", "TRYAGAIN ...", "CLUSTERDOWN ...",
// "LOADING ...", "MASTERDOWN ..."; kind none for any other error. An empty host (or "?") means
// the node that answered, `asked`.
redirect parse_redirect(std::string_view text, const endpoint& asked);

// Commands that only read: with read_from_replicas they may go to a replica of their shard.
bool reads_only(std::string_view command);

// A CROSSSLOT refusal naming the keys and their slots.
std::string describe_cross_slot(std::string_view command, std::span<const std::string_view> keys);

class plan;

// The commands of one round that go to one node, as one request.
struct group {
    plan* owner = nullptr;
    endpoint target;
    bool to_main = false; // keyless commands only: the main connection
    bool asking = false;  // after ASK: each command preceded by ASKING
    bool whole = false;   // every command of the caller's request, which goes as it is
    std::vector<std::size_t> cmds;
    std::vector<std::size_t> reply_cmd; // local reply index -> command (no_reply: ASKING's)
    request sub;                        // the commands to send, unless `whole`
    std::vector<std::pair<std::size_t, redirect>> redirects;
    boost::system::error_code ec; // how sending it went

    // The adapter a group's request is sent with: a reply goes to the caller, or is kept as a
    // redirect for the next round.
    akv::detail::reply_adapter adapter() noexcept;
};

// What the I/O layer does after a round.
struct round_outcome {
    boost::system::error_code ec;     // the request ends with this error
    bool wait = false;                // something will take time (a refresh, a failover): pause
    bool refresh = false;             // read the slot map again
    std::vector<std::uint16_t> moved; // slots whose owner a MOVED changed in the map
};

class plan {
public:
    // Reads `req` and decides where each command goes; the refusals are answered through
    // `user` at once. `done_already`: replies (by index, the first 64) delivered before, by a
    // fast attempt that met a redirect. Fails with resp_protocol if the payload is unreadable.
    boost::system::error_code start(const request& req, akv::detail::reply_adapter user,
                                    std::uint64_t done_already, cluster_stats& stats);

    // Whether any command still waits to be sent (a fanned-out one, to a master of `masters`
    // that has not answered it).
    bool pending(const std::vector<endpoint>& masters);

    // This round's groups, by node, each keeping the caller's order; call after pending().
    // `missing_owner`: a slot nobody serves in `map` (wait for a refresh).
    const std::vector<group*>& make_groups(const slot_map& map, bool read_from_replicas,
                                           bool& missing_owner);

    // Once every group of the round has its ec and redirects: MOVED fixes `map`, ASK and
    // MOVED send their commands to the new node next round, TRYAGAIN-like replies and a node
    // that was down (or lost with an idempotent request) wait and go again, any other failure
    // ends the request. Past `max_redirects` redirects the request fails with
    // too_many_redirects. `stopped`: the client is stopping (nothing goes again).
    const round_outcome& after_round(slot_map& map, std::size_t max_redirects, bool stopped,
                                     cluster_stats& stats);

    bool transaction() const noexcept { return transaction_; }
    std::size_t size() const noexcept { return cmds_.size(); }
    const request& caller_request() const noexcept { return *req_; }

private:
    friend struct group;
    void on_reply(group& g, std::size_t local, std::span<const resp::node> nodes,
                  std::string_view message);
    group& group_for(const endpoint* target, bool asking);

    const request* req_ = nullptr;
    akv::detail::reply_adapter user_;
    std::vector<command_view> cmds_;
    std::vector<std::size_t> reply_of_; // command -> reply index (no_reply: push-answered)
    std::vector<int> slot_;             // command -> slot, -1 for none
    std::vector<bool> fan_out_;         // command -> sent to every master
    std::vector<bool> master_only_;     // command -> a replica failed it: no more replicas
    std::vector<std::uint8_t> done_;    // command -> reply delivered (2: an error, kept)
    std::map<std::size_t, std::vector<std::string>> fanned_; // command -> masters that answered
    std::vector<std::optional<redirect>> to_;                // command -> where a redirect sent it
    std::vector<std::string_view> keys_;
    std::vector<std::size_t> todo_;
    std::vector<endpoint> masters_;             // pending()'s
    std::vector<group*> groups_;                // this round's
    std::vector<std::unique_ptr<group>> spare_; // every group ever made; [0, used_) in use
    std::size_t used_ = 0;
    std::size_t redirects_ = 0;
    bool transaction_ = false;
    bool first_round_ = true;
    round_outcome outcome_;
};

} // namespace akv::cluster
