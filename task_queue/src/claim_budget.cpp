#include "claim_budget.hpp"

#include <akv/queue/worker.hpp>

#include <algorithm>

namespace akv::queue::detail {

std::size_t fair_grant(std::span<const share> members, std::size_t m, std::size_t limit,
                       std::size_t want) noexcept {
    std::size_t used = 0, hungry = 1; // the asker counts as hungry: it asks
    for (std::size_t i = 0; i < members.size(); ++i) {
        used += members[i].held;
        if (i != m && members[i].hungry) ++hungry;
    }
    if (used >= limit) return 0;
    const std::size_t fair = (limit + hungry - 1) / hungry;
    const share& me = members[m];
    if (me.held >= fair) return 0;
    std::size_t kept = 0; // for hungry members whose turn comes first
    for (std::size_t i = 0; i < members.size(); ++i) {
        const share& o = members[i];
        if (i == m || !o.hungry || o.held >= fair) continue;
        const bool first =
            o.held < me.held ||
            (o.held == me.held && (o.served < me.served || (o.served == me.served && i < m)));
        if (first) kept += fair - o.held;
    }
    const std::size_t free = limit - used;
    if (kept >= free) return 0;
    return std::min({want, free - kept, fair - me.held});
}

void claim_budget::join(worker& w) {
    members_.push_back(&w);
    served_.push_back(0);
    denied_.push_back(0);
    w.budget_ = this;
}

share claim_budget::share_of(std::size_t i) const {
    const worker& w = *members_[i];
    share s;
    s.held = w.running_.size() + w.claiming_;
    s.hungry = !w.starved_ && !w.stopping_ && !w.drained_ && !w.failing_;
    s.served = served_[i];
    return s;
}

std::size_t claim_budget::grant(const worker& w, std::size_t want) {
    const auto it = std::find(members_.begin(), members_.end(), &w);
    if (it == members_.end()) return want;
    const auto m = static_cast<std::size_t>(it - members_.begin());
    scratch_.clear();
    for (std::size_t i = 0; i < members_.size(); ++i)
        scratch_.push_back(share_of(i));
    const std::size_t n = fair_grant(scratch_, m, limit_, want);
    if (n > 0) served_[m] = ++grants_;
    denied_[m] = n < want;
    return n;
}

void claim_budget::start_ready() {
    std::size_t running = 0;
    for (const worker* w : members_)
        running += w->started_;
    const std::size_t n = members_.size();
    while (running < concurrency_) {
        bool started = false;
        for (std::size_t k = 0; k < n && !started; ++k) {
            const std::size_t i = (next_start_ + k) % n;
            if (members_[i]->start_next()) {
                next_start_ = (i + 1) % n;
                started = true;
            }
        }
        if (!started) break;
        ++running;
    }
    if (std::find(denied_.begin(), denied_.end(), 1) == denied_.end()) return;
    scratch_.clear();
    for (std::size_t i = 0; i < n; ++i)
        scratch_.push_back(share_of(i));
    for (std::size_t i = 0; i < n; ++i)
        if (denied_[i] && fair_grant(scratch_, i, limit_, limit_) > 0) {
            denied_[i] = 0;
            members_[i]->kick();
        }
}

} // namespace akv::queue::detail
