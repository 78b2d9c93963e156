#include <akv/queue/producer.hpp>
#include <akv/queue/scheduler.hpp>

#include "scripts.hpp"

#include <boost/asio/as_tuple.hpp>

#include <random>

namespace akv::queue {

namespace {
using std::chrono::milliseconds;
using std::chrono::system_clock;

std::int64_t to_ms(system_clock::time_point t) {
    return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}
system_clock::time_point from_ms(std::int64_t ms) {
    return system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(milliseconds(ms)));
}


// A periodic job as stored: "<every ms>|<cron length>|<cron>" then its job record.
struct stored_periodic {
    std::int64_t every_ms = 0;
    std::string cron;
    queue::job job;
};

std::string encode(const periodic_job& p) {
    std::string s = std::to_string(p.every.count()) + "|" + std::to_string(p.cron.size()) + "|" +
                    p.cron;
    s += detail::encode_record(p.options, 0, milliseconds(0), p.payload);
    return s;
}

stored_periodic decode(std::string_view queue, std::string_view name, std::string_view s) {
    stored_periodic out;
    const auto bar1 = s.find('|');
    const auto bar2 = bar1 == std::string_view::npos ? bar1 : s.find('|', bar1 + 1);
    std::size_t cron_len = 0;
    try {
        if (bar2 == std::string_view::npos) throw std::invalid_argument("header");
        out.every_ms = std::stoll(std::string(s.substr(0, bar1)));
        cron_len = std::stoull(std::string(s.substr(bar1 + 1, bar2 - bar1 - 1)));
    } catch (const std::exception&) {
        throw_error(error::bad_job, "queue \"" + std::string(queue) + "\": periodic job \"" +
                                        std::string(name) + "\": malformed definition");
    }
    if (cron_len > s.size() - bar2 - 1)
        throw_error(error::bad_job, "queue \"" + std::string(queue) + "\": periodic job \"" +
                                        std::string(name) + "\": cron runs past the definition");
    out.cron = s.substr(bar2 + 1, cron_len);
    out.job = detail::decode_record(queue, name, s.substr(bar2 + 1 + cron_len));
    return out;
}

// The first run strictly after `after_ms`: the next interval step from `from_ms`, or the cron's.
std::int64_t following(const stored_periodic& p, std::int64_t from, std::int64_t after_ms) {
    if (!p.cron.empty())
        return to_ms(cron_schedule::parse(p.cron).next_after(from_ms(after_ms)));
    const std::int64_t every = std::max<std::int64_t>(p.every_ms, 1);
    if (from > after_ms) return from;
    return from + ((after_ms - from) / every + 1) * every; // missed runs are skipped, not piled up
}
} // namespace

scheduler::scheduler(client& c, std::string queue, scheduler_options options)
    : client_(c)
    , queue_(std::move(queue))
    , keys_(queue_)
    , options_(options)
    , token_(detail::random_token())
    , sleep_(c.get_executor()) {
    validate_queue_name(queue_);
}

scheduler::~scheduler() = default;

asio::awaitable<void> scheduler::add(periodic_job p) {
    if (p.name.empty()) throw_error(error::invalid_config, "periodic job: empty name");
    if ((p.every.count() > 0) == !p.cron.empty())
        throw_error(error::invalid_config, "periodic job \"" + p.name +
                                               "\": give either `every` (> 0) or `cron`, not both");
    if (!p.cron.empty()) (void)cron_schedule::parse(p.cron); // throws naming the field
    p.options.unique_key = "periodic:" + p.name;
    validate(p.options);
    const std::string def = encode(p);
    const auto now = to_ms(system_clock::now());
    const auto first = following(decode(queue_, p.name, def), now, now);
    request req;
    req.push("HSET", keys_.periodic, p.name, def);
    req.push("HSET", keys_.periodic_next, p.name, first);
    response<ignore_t, ignore_t> resp;
    co_await client_.exec(req, resp);
    std::get<0>(resp).value();
    sleep_.cancel(); // a leader here looks again now
}

asio::awaitable<void> scheduler::remove(std::string name) {
    request req;
    req.push("HDEL", keys_.periodic, name);
    req.push("HDEL", keys_.periodic_next, name);
    response<long long, ignore_t> resp;
    co_await client_.exec(req, resp);
    if (std::get<0>(resp).value() == 0)
        throw_error(error::not_found, "queue \"" + queue_ + "\": no periodic job \"" + name + "\"");
}

asio::awaitable<std::vector<std::string>> scheduler::names() {
    request req;
    req.push("HKEYS", keys_.periodic);
    response<std::vector<std::string>> resp;
    co_await client_.exec(req, resp);
    auto names = std::move(std::get<0>(resp).value());
    std::sort(names.begin(), names.end());
    co_return names;
}

void scheduler::stop() {
    stopping_ = true;
    sleep_.cancel();
}

asio::awaitable<bool> scheduler::hold_leadership() {
    const std::array<std::string_view, 1> keys{keys_.prefix};
    const std::vector<std::string> args{token_, std::to_string(options_.leader_ttl.count())};
    response<long long> resp;
    co_await scripts::leader().run(client_, keys, args, resp);
    co_return std::get<0>(resp).value() == 1;
}

asio::awaitable<std::int64_t> scheduler::fire_due(std::int64_t now) {
    request req;
    req.push("HGETALL", keys_.periodic_next);
    response<std::vector<std::string>> resp;
    co_await client_.exec(req, resp);
    const auto& next = std::get<0>(resp).value();
    std::int64_t soonest = -1;
    producer enqueue(client_, queue_);
    for (std::size_t i = 0; i + 1 < next.size(); i += 2) {
        const std::string& name = next[i];
        std::int64_t due = 0;
        try {
            due = std::stoll(next[i + 1]);
        } catch (const std::exception&) {
            continue;
        }
        if (due > now) {
            soonest = soonest < 0 ? due : std::min(soonest, due);
            continue;
        }
        request get;
        get.push("HGET", keys_.periodic, name);
        response<std::optional<std::string>> def;
        co_await client_.exec(get, def);
        if (!std::get<0>(def).value()) continue; // removed meanwhile
        stored_periodic p;
        try {
            p = decode(queue_, name, *std::get<0>(def).value());
        } catch (const boost::system::system_error&) {
            continue; // a definition we cannot read never fires (admin can see it)
        }
        const std::int64_t then = following(p, due, now);
        const std::array<std::string_view, 1> keys{keys_.prefix};
        const std::vector<std::string> args{name, next[i + 1], std::to_string(then)};
        response<long long> won;
        co_await scripts::fire_periodic().run(client_, keys, args, won);
        if (std::get<0>(won).value() == 1) {
            co_await enqueue.enqueue(p.job.payload, p.job.options);
            ++fired_;
        }
        soonest = soonest < 0 ? then : std::min(soonest, then);
    }
    co_return soonest;
}

asio::awaitable<void> scheduler::run() {
    while (!stopping_) {
        milliseconds wait = options_.leader_ttl / 3;
        try {
            leader_ = co_await hold_leadership();
            if (leader_) {
                const std::array<std::string_view, 1> keys{keys_.prefix};
                const std::vector<std::string> args{"1000"};
                response<std::vector<std::int64_t>> promoted;
                co_await scripts::promote().run(client_, keys, args, promoted);
                const auto& v = std::get<0>(promoted).value();
                if (v.size() < 3) throw_error(error::script_error, "promote.lua: short reply");
                promoted_ += static_cast<std::uint64_t>(v[0]);
                const std::int64_t now = v[2];
                std::int64_t soonest = co_await fire_due(now);
                if (v[1] >= 0) soonest = soonest < 0 ? v[1] : std::min(soonest, v[1]);
                wait = std::min(wait, options_.max_sleep);
                if (v[0] >= 1000) wait = milliseconds(0); // more due: go on at once
                else if (soonest >= 0) wait = std::min(wait, milliseconds(std::max<std::int64_t>(0, soonest - now)));
            }
        } catch (const boost::system::system_error&) {
            leader_ = false; // the server is away: try again after a pause
        }
        if (stopping_) break;
        if (wait.count() > 0) {
            sleep_.expires_after(wait);
            co_await sleep_.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }
    if (leader_) {
        // Hand over at once rather than after the key expires.
        const std::array<std::string_view, 1> keys{keys_.prefix};
        const std::vector<std::string> args{token_, "0"};
        response<ignore_t> resp;
        try {
            co_await scripts::leader().run(client_, keys, args, resp);
        } catch (const boost::system::system_error&) {
        }
        leader_ = false;
    }
}

} // namespace akv::queue
