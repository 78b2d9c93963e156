#include <akv/detail/liveness.hpp>
#include <akv/error.hpp>

#include <algorithm>

namespace akv::detail {

std::chrono::milliseconds backoff::next(unsigned attempt, boost::system::error_code ec) {
    // No retry storm on bad credentials: they will not fix themselves in 50 ms.
    if (ec == error::auth_failed) return max_;
    auto wait = min_ * (std::int64_t{1} << std::min(attempt, 16u));
    if (wait > max_ || wait.count() <= 0) wait = max_;
    // Jitter in [wait/2, wait]: many clients of one restarted server do not come back at once.
    std::uniform_int_distribution<std::int64_t> jitter(wait.count() / 2, wait.count());
    return std::chrono::milliseconds(jitter(rng_));
}

} // namespace akv::detail
