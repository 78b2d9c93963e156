// The connection's timing decisions, apart from I/O: when to reconnect, and when a silent
// connection is dead. Tested with no socket and no clock.
#pragma once

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <random>

namespace akv::detail {

// Jittered exponential backoff between reconnection attempts.
class backoff {
public:
    backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, std::uint32_t seed)
        : min_(min)
        , max_(std::max(min, max))
        , rng_(seed) {}

    bool enabled() const noexcept { return max_.count() > 0; }

    // The wait before attempt number `attempt` (0 for the first retry) after failing with `ec`.
    std::chrono::milliseconds next(unsigned attempt, boost::system::error_code ec);

private:
    std::chrono::milliseconds min_, max_;
    std::minstd_rand rng_;
};

// Any byte read is a sign of life, so a busy connection is never judged dead. After a whole
// interval of silence a PING goes out; a second silent interval means the connection is dead.
class health_check {
public:
    enum class action { none, ping, dead };

    // Called every interval with the total bytes read so far.
    action on_tick(std::uint64_t bytes_read) noexcept {
        if (bytes_read != seen_) {
            seen_ = bytes_read;
            ping_sent_ = false;
            return action::none;
        }
        if (ping_sent_) return action::dead;
        ping_sent_ = true;
        return action::ping;
    }

    void reset(std::uint64_t bytes_read) noexcept {
        seen_ = bytes_read;
        ping_sent_ = false;
    }

private:
    std::uint64_t seen_ = 0;
    bool ping_sent_ = false;
};

} // namespace akv::detail
