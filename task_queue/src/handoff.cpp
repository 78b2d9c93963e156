#include "handoff.hpp"

#include "scripts.hpp"

#include <akv/queue/queue_keys.hpp>
#include <akv/script.hpp>

#include <algorithm>
#include <array>
#include <map>

namespace akv::queue::detail {

namespace {
// Parents form a tree no deeper than max_flow_depth: a chain of hand-offs ends within it.
constexpr std::size_t max_rounds = 64;
} // namespace

void read_notices(const resp::value& flat, const std::string& queue, std::vector<notice>& out) {
    const auto& e = flat.elements;
    for (std::size_t i = 0; i + 1 < e.size(); i += 2) {
        // "<policy><parent queue> <parent id> <index> <child queue> <child id> <outcome>"
        const std::string_view text = e[i + 1].str;
        std::array<std::size_t, 5> space{};
        std::size_t at = 0; // the policy is the first byte, the parent queue follows
        bool whole = !text.empty();
        for (std::size_t s = 0; whole && s < space.size(); ++s) {
            at = text.find(' ', at + 1);
            whole = at != std::string_view::npos;
            space[s] = at;
        }
        if (!whole) continue; // not a notice: no script of ours writes one
        notice n;
        n.outbox_queue = queue;
        n.stream_id = e[i].str;
        n.policy = text.substr(0, 1);
        n.parent_queue = text.substr(1, space[0] - 1);
        n.parent_id = text.substr(space[0] + 1, space[1] - space[0] - 1);
        n.index = text.substr(space[1] + 1, space[2] - space[1] - 1);
        n.child = text.substr(space[2] + 1, space[4] - space[2] - 1);
        n.outcome = text.substr(space[4] + 1);
        out.push_back(std::move(n));
    }
}

asio::awaitable<void> hand_off(client& c, std::vector<notice> notices) {
    for (std::size_t round = 0; !notices.empty() && round < max_rounds; ++round) {
        // One apply.lua call per parent queue, in one pipeline (split per node on a cluster),
        // the notices for one parent in a row: apply.lua takes each run in three calls.
        std::vector<const notice*> sorted;
        sorted.reserve(notices.size());
        for (const auto& n : notices)
            sorted.push_back(&n);
        std::ranges::stable_sort(
            sorted, {}, [](const notice* n) -> const std::string& { return n->parent_id; });
        std::map<std::string, std::vector<std::string_view>> by_parent;
        for (const notice* n : sorted) {
            auto& args = by_parent[n->parent_queue];
            args.insert(args.end(), {n->parent_id, n->index, n->policy, n->child, n->outcome});
        }
        script_request apply;
        std::vector<std::string> queues;
        for (const auto& [queue, args] : by_parent) {
            const queue_keys keys(queue);
            const std::array<std::string_view, 1> prefix{keys.prefix};
            apply.call(scripts::apply(), prefix, args);
            queues.push_back(queue);
        }
        generic_response applied;
        co_await apply.run(c, applied);
        std::vector<notice> next;
        for (std::size_t i = 0; i < queues.size(); ++i) {
            const auto& v = scripts::reply(applied, i, "queue \"" + queues[i] + "\": apply.lua");
            read_notices(v, queues[i], next);
        }
        // Applied: deleted from their outboxes (a notice applied twice changes nothing, so a
        // failure here only costs a second application later).
        std::map<std::string, std::vector<std::string_view>> by_outbox;
        for (const auto& n : notices) {
            auto& ids = by_outbox[n.outbox_queue];
            // The notices of one ack share an entry (lib.lua write_notices), and come in a row.
            if (ids.empty() || ids.back() != n.stream_id) ids.push_back(n.stream_id);
        }
        request del;
        for (const auto& [queue, ids] : by_outbox)
            del.push("XDEL", queue_keys(queue).outbox, ids);
        generic_response deleted;
        co_await c.exec(del, deleted);
        notices = std::move(next);
    }
}

asio::awaitable<std::vector<notice>> stale_notices(client& c, const std::string& queue,
                                                   std::chrono::milliseconds age,
                                                   std::size_t limit) {
    const queue_keys keys(queue);
    const std::array<std::string_view, 1> prefix{keys.prefix};
    const std::string age_ms = std::to_string(age.count()), count = std::to_string(limit);
    script_request req;
    req.call(scripts::outbox(), prefix, std::array<std::string_view, 2>{age_ms, count});
    generic_response resp;
    co_await req.run(c, resp);
    std::vector<notice> out;
    read_notices(scripts::reply(resp, 0, "queue \"" + queue + "\": outbox.lua"), queue, out);
    co_return out;
}

} // namespace akv::queue::detail
