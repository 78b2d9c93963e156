// The stored list of a partitioned queue's partitions (akv/queue/partitioned.hpp): where each
// new partition goes (a pure plan), and reading, creating and growing the list.
#pragma once

#include <akv/client.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace akv::queue::detail {

// The queue name of partition `index` of `queue`, candidate `salt`: "<queue>~<index>", then
// "<queue>~<index>.<salt>" for salt 1, 2, ...
std::string partition_name(std::string_view queue, std::size_t index, std::size_t salt);

// Names for partitions [first, first + count) of `queue`. Each goes to one of the masters
// holding the fewest of the queue's partitions so far (`owners_before`: the masters of the
// existing ones; `masters`: every master), trying salts until its slot's master (`owner_of`)
// is one of them: spread over the masters as evenly as counts allow. With one master (or none
// known) every partition is "<queue>~<index>".
std::vector<std::string>
plan_partition_names(std::string_view queue, std::size_t first, std::size_t count,
                     std::span<const std::string> masters,
                     std::span<const std::string> owners_before,
                     const std::function<std::string(std::uint16_t slot)>& owner_of);

// The stored names (empty: not a partitioned queue).
asio::awaitable<std::vector<std::string>> read_partitions(client& c, const std::string& queue);

// The names, created with `wanted` partitions when the queue has none. Throws
// partition_mismatch when `wanted` (not 0) differs from the stored count, unknown_queue for 0
// and no list, invalid_config for a bad count or a plain queue of that name.
asio::awaitable<std::vector<std::string>> open_partitions(client& c, const std::string& queue,
                                                          std::size_t wanted);

// Names for `more` partitions after `current`, spread over the client's masters as its slot
// map says now (plan_partition_names). Throws invalid_config beyond max_partitions.
std::vector<std::string> plan_more(client& c, const std::string& queue,
                                   const std::vector<std::string>& current, std::size_t more);

// Appends `planned` to `current` (the stored list as read) and returns every name. Throws
// partition_mismatch if the stored list is no longer `current`.
asio::awaitable<std::vector<std::string>>
append_partitions(client& c, const std::string& queue, const std::vector<std::string>& current,
                  const std::vector<std::string>& planned);

// Runs make(0) ... make(n - 1) at once and waits for every one, even when cancelled (the
// tasks may use the caller's locals); then rethrows the first failure.
template <class MakeTask> asio::awaitable<void> all_of(std::size_t n, MakeTask make) {
    auto ex = co_await asio::this_coro::executor;
    const bool threw_if_cancelled = co_await asio::this_coro::throw_if_cancelled();
    co_await asio::this_coro::throw_if_cancelled(false);
    asio::steady_timer finished(ex, asio::steady_timer::time_point::max());
    std::size_t remaining = n;
    std::exception_ptr failure;
    for (std::size_t i = 0; i < n; ++i)
        asio::co_spawn(ex, make(i), [&](std::exception_ptr e) {
            if (e && !failure) failure = e;
            if (--remaining == 0) finished.cancel();
        });
    while (remaining > 0)
        co_await finished.async_wait(asio::as_tuple(asio::use_awaitable));
    co_await asio::this_coro::throw_if_cancelled(threw_if_cancelled);
    if (failure) std::rethrow_exception(failure);
}

} // namespace akv::queue::detail
