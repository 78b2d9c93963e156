#include "support/cache_history.hpp"

#include "support/eventually.hpp"
#include "support/harness.hpp"

#include <akv/request.hpp>
#include <akv/response.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <optional>
#include <random>

namespace akv::test {

namespace asio = boost::asio;

void cache_history::wrote(const std::string& key, long version, std::uint64_t replied) {
    writes_[key].push_back({version, replied});
}

void cache_history::invalidated(std::span<const std::string_view> keys) {
    const std::uint64_t at = next();
    if (keys.empty()) {
        flushes_.push_back(at);
        return;
    }
    for (std::string_view k : keys)
        notices_[std::string(k)].push_back(at);
}

void cache_history::read(const std::string& key, std::uint64_t started, long version) {
    reads_.push_back({key, started, version});
}

cache_history::verdict cache_history::check() const {
    verdict v;
    v.reads = reads_.size();
    for (const auto& [k, w] : writes_)
        v.writes += w.size();
    v.notices = flushes_.size();
    for (const auto& [k, n] : notices_)
        v.notices += n.size();
    static const std::vector<std::uint64_t> none;
    for (const read_event& r : reads_) {
        // The last notice about r.key before the read started.
        std::uint64_t notice = 0;
        const auto nk = notices_.find(r.key);
        for (const auto* list : {nk == notices_.end() ? &none : &nk->second, &flushes_}) {
            auto it = std::lower_bound(list->begin(), list->end(), r.started);
            if (it != list->begin()) notice = std::max(notice, *std::prev(it));
        }
        if (notice == 0) continue;
        // The newest version whose reply came before that notice.
        const auto wk = writes_.find(r.key);
        if (wk == writes_.end()) continue;
        long newest = -1;
        for (const write& w : wk->second) {
            if (w.replied >= notice) break; // replies are recorded in order
            newest = std::max(newest, w.version);
        }
        if (newest < 0) continue;
        ++v.checked;
        if (r.version < newest) {
            if (v.stale++ == 0)
                v.first_stale = "read of " + r.key + " at " + std::to_string(r.started) +
                                " saw version " + std::to_string(r.version) + " after notice " +
                                std::to_string(notice) + " of version " + std::to_string(newest);
        }
    }
    return v;
}

namespace {

long version_of(const std::optional<std::string>& v) {
    return v ? std::stol(*v) : 0;
}

} // namespace

asio::awaitable<void> run_cache_workload(akv::client& reader, akv::client& writer,
                                         cache_workload& w, cache_history& history) {
    const std::size_t listener = reader.add_invalidation_listener(
        [&history](std::span<const std::string_view> keys) { history.invalidated(keys); });
    auto ex = co_await asio::this_coro::executor;
    std::size_t ops = 0;
    std::size_t running = 0;
    auto key = [&w](std::mt19937& rng) {
        // Most reads and writes go to a few hot keys, so that entries are hit and invalidated.
        std::uniform_int_distribution<std::size_t> hot(0, std::min<std::size_t>(7, w.keys - 1));
        std::uniform_int_distribution<std::size_t> any(0, w.keys - 1);
        std::bernoulli_distribution is_hot(0.8);
        return w.prefix + std::to_string(is_hot(rng) ? hot(rng) : any(rng));
    };
    auto read_loop = [&](unsigned seed) -> asio::awaitable<void> {
        std::mt19937 rng(seed);
        std::bernoulli_distribution is_mget(0.15);
        akv::request::options o;
        o.cache = true;
        while (ops < w.operations) {
            akv::request req(o);
            std::vector<std::string> keys;
            if (is_mget(rng)) {
                keys = {key(rng), key(rng), key(rng)};
                req.push("MGET", keys);
            } else {
                keys = {key(rng)};
                req.push("GET", keys.front());
            }
            const std::uint64_t started = history.next();
            std::vector<std::optional<std::string>> values;
            bool ok = true;
            try {
                if (keys.size() == 1) {
                    akv::response<std::optional<std::string>> resp;
                    co_await reader.exec(req, resp);
                    values.push_back(std::get<0>(resp).value());
                } else {
                    akv::response<std::vector<std::optional<std::string>>> resp;
                    co_await reader.exec(req, resp);
                    values = std::get<0>(resp).value();
                }
            } catch (const std::exception&) {
                ok = false; // a read lost to the fault tells nothing
            }
            ++ops;
            if (!ok) continue;
            for (std::size_t i = 0; i < keys.size() && i < values.size(); ++i)
                history.read(keys[i], started, version_of(values[i]));
        }
    };
    auto write_loop = [&]() -> asio::awaitable<void> {
        std::mt19937 rng(12345);
        asio::steady_timer pause(ex);
        long version = 0;
        while (ops < w.operations) {
            if (w.writes_paused) {
                pause.expires_after(std::chrono::milliseconds(1));
                co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                continue;
            }
            const std::string k = key(rng);
            akv::request set;
            set.push("SET", k, ++version);
            try {
                co_await writer.exec(set, akv::ignore);
                history.wrote(k, version, history.next());
            } catch (const std::exception&) {
                // Not acknowledged: whether it applied is unknown, and only a lower bound
                // matters (later versions are higher).
            }
            ++ops;
        }
    };
    auto fault_loop = [&]() -> asio::awaitable<void> {
        asio::steady_timer wait(ex);
        while (ops < w.operations / 2) {
            wait.expires_after(std::chrono::milliseconds(1));
            co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        co_await w.fault();
    };
    asio::steady_timer all_done(ex);
    all_done.expires_at(asio::steady_timer::time_point::max());
    auto spawn = [&](auto coro) {
        ++running;
        asio::co_spawn(ex, std::move(coro), [&](std::exception_ptr) {
            if (--running == 0) all_done.cancel();
        });
    };
    for (std::size_t r = 0; r < w.readers; ++r)
        spawn(read_loop(static_cast<unsigned>(r + 1)));
    spawn(write_loop());
    if (w.fault) spawn(fault_loop());
    co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
    reader.remove_invalidation_listener(listener);
}

invalidation_log::invalidation_log(akv::client& c)
    : client_(c) {
    id_ = c.add_invalidation_listener([this](std::span<const std::string_view> keys) {
        if (keys.empty()) ++flushes;
        for (std::string_view k : keys)
            seen.insert(std::string(k));
    });
}

invalidation_log::~invalidation_log() {
    client_.remove_invalidation_listener(id_);
}

asio::awaitable<bool> invalidation_log::wait_for(const std::string& key) {
    co_return co_await eventually(
        [&]() -> asio::awaitable<bool> { co_return seen.count(key) > 0; });
}

asio::awaitable<bool> invalidation_log::wait_for_flush() {
    co_return co_await eventually([&]() -> asio::awaitable<bool> { co_return flushes > 0; });
}

cache_history::verdict expect_no_stale_read(asio::io_context& io, akv::client& reader,
                                            akv::client& writer, cache_workload& w,
                                            std::size_t min_checked, std::chrono::seconds limit) {
    cache_history history;
    run_task(
        io,
        [&]() -> asio::awaitable<void> {
            co_await run_cache_workload(reader, writer, w, history);
        }(),
        limit);
    const cache_history::verdict v = history.check();
    EXPECT_EQ(v.stale, 0u) << v.first_stale;
    EXPECT_GT(v.checked, min_checked);
    return v;
}

} // namespace akv::test
