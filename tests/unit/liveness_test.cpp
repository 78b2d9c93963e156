#include <akv/detail/liveness.hpp>
#include <akv/error.hpp>

#include <gtest/gtest.h>

using akv::detail::backoff;
using akv::detail::health_check;
using std::chrono::milliseconds;

TEST(Backoff, GrowsExponentiallyWithJitterUpToTheMaximum) {
    backoff b(milliseconds(50), milliseconds(2000), 1);
    for (unsigned attempt = 0; attempt < 10; ++attempt) {
        const auto full = std::min(milliseconds(50 * (1 << attempt)), milliseconds(2000));
        const auto wait = b.next(attempt, {});
        EXPECT_GE(wait, full / 2) << attempt;
        EXPECT_LE(wait, full) << attempt;
    }
    EXPECT_LE(b.next(40, {}), milliseconds(2000)); // no overflow on a long outage
}

TEST(Backoff, BadCredentialsWaitTheLongest) {
    backoff b(milliseconds(50), milliseconds(2000), 1);
    EXPECT_EQ(b.next(0, akv::error::auth_failed), milliseconds(2000));
}

TEST(Backoff, ZeroMeansNoReconnect) {
    EXPECT_FALSE(backoff(milliseconds(0), milliseconds(0), 1).enabled());
    EXPECT_TRUE(backoff(milliseconds(10), milliseconds(0), 1).enabled());
}

TEST(HealthCheck, BusyConnectionIsNeverJudgedDead) {
    health_check h;
    std::uint64_t bytes = 0;
    for (int tick = 0; tick < 100; ++tick) {
        bytes += 10; // something arrived in every interval
        EXPECT_EQ(h.on_tick(bytes), health_check::action::none);
    }
}

TEST(HealthCheck, SilencePingsThenDeclaresDead) {
    health_check h;
    EXPECT_EQ(h.on_tick(0), health_check::action::ping);
    EXPECT_EQ(h.on_tick(0), health_check::action::dead);
}

TEST(HealthCheck, AnswerToThePingKeepsItAlive) {
    health_check h;
    EXPECT_EQ(h.on_tick(5), health_check::action::none);
    EXPECT_EQ(h.on_tick(5), health_check::action::ping);
    EXPECT_EQ(h.on_tick(12), health_check::action::none); // PONG (or anything) came back
    EXPECT_EQ(h.on_tick(12), health_check::action::ping);
}
