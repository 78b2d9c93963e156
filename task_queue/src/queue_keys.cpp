#include <akv/queue/queue_keys.hpp>

namespace akv::queue {

namespace {
std::string join(std::string_view prefix, std::string_view name) {
    std::string key;
    key.reserve(prefix.size() + name.size());
    key += prefix;
    key += name;
    return key;
}
} // namespace

queue_keys::queue_keys(std::string_view queue)
    : prefix(join(join("akvq:{", queue), "}:"))
    , id(join(prefix, "id"))
    , jobs(join(prefix, "jobs"))
    , wait(join(prefix, "wait"))
    , prio(join(prefix, "prio"))
    , delayed(join(prefix, "delayed"))
    , active(join(prefix, "active"))
    , attempts(join(prefix, "attempts"))
    , failed(join(prefix, "failed"))
    , errors(join(prefix, "errors"))
    , done(join(prefix, "done"))
    , results(join(prefix, "results"))
    , unique(join(prefix, "unique"))
    , dedup(join(prefix, "dedup"))
    , dedup_until(join(prefix, "dedup_until"))
    , meta(join(prefix, "meta"))
    , rate(join(prefix, "rate"))
    , marker(join(prefix, "marker"))
    , cancel(join(prefix, "cancel"))
    , stats(join(prefix, "stats"))
    , leader(join(prefix, "leader"))
    , periodic(join(prefix, "periodic"))
    , periodic_next(join(prefix, "periodic:next"))
    , progress(join(prefix, "progress"))
    , workers(join(prefix, "workers"))
    , workers_seen(join(prefix, "workers:seen"))
    , events(join(prefix, "events"))
    , journal(join(prefix, "journal"))
    , waiting_children(join(prefix, "waiting_children"))
    , children(join(prefix, "children"))
    , outbox(join(prefix, "outbox"))
    , groups(join(prefix, "groups"))
    , groups_maxed(join(prefix, "groups:maxed"))
    , groups_limited(join(prefix, "groups:limited"))
    , groups_active(join(prefix, "groups:active"))
    , groups_limits(join(prefix, "groups:limits"))
    , partitions(join(prefix, "partitions")) {}

std::string queue_keys::metrics(std::int64_t minute) const {
    std::string key = join(prefix, "m:");
    key += std::to_string(minute);
    return key;
}

std::string queue_keys::group(std::string_view name) const {
    return join(join(prefix, "g:"), name);
}

std::string queue_keys::group_rate(std::string_view name) const {
    return join(join(prefix, "grate:"), name);
}

std::array<std::string_view, 34> queue_keys::all() const noexcept {
    return {id,
            jobs,
            wait,
            prio,
            delayed,
            active,
            attempts,
            failed,
            errors,
            done,
            results,
            unique,
            dedup,
            dedup_until,
            meta,
            rate,
            marker,
            cancel,
            stats,
            leader,
            periodic,
            periodic_next,
            journal,
            progress,
            workers,
            workers_seen,
            waiting_children,
            children,
            outbox,
            groups,
            groups_maxed,
            groups_limited,
            groups_active,
            groups_limits};
}

} // namespace akv::queue
