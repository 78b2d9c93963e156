// A cron expression and its next fire time, so periodic jobs can say "0 3 * * MON-FRI".
// Sans-I/O: parse() checks the text, next_after() is pure calendar arithmetic in UTC.
//
// Fields: minute hour day-of-month month day-of-week, or six with a leading second field.
// Each field is `*`, a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (a to the field's
// end), or a comma list of those. Months take JAN-DEC, days of week SUN-SAT (any case);
// day-of-week 0 and 7 are both Sunday. Macros: @yearly @annually @monthly @weekly @daily
// @midnight @hourly. As in Vixie cron, when neither day field starts with `*`, a day matches
// if either field matches it; otherwise both must.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace akv::queue {

class cron_schedule {
public:
    // Throws system_error(invalid_config) naming the field and the bad token, e.g.
    // `cron "5 70 * * *": field 2 (hour): 70 is out of range 0-23`.
    static cron_schedule parse(std::string_view expr);

    // The first matching time strictly after t, in whole seconds (second 0 for five fields).
    // Throws system_error(invalid_config) if no time matches within the search horizon (such
    // as "0 0 30 2 *") or the answer is beyond what system_clock can hold.
    std::chrono::system_clock::time_point next_after(std::chrono::system_clock::time_point t) const;

    // The text given to parse().
    std::string_view expression() const noexcept { return expr_; }

private:
    cron_schedule() = default;

    bool day_matches(unsigned dom, unsigned dow) const noexcept;

    std::string expr_;
    std::uint64_t seconds_ = 0; // bit i: second i (0-59)
    std::uint64_t minutes_ = 0; // bit i: minute i (0-59)
    std::uint32_t hours_ = 0;   // bit i: hour i (0-23)
    std::uint32_t doms_ = 0;    // bit i: day of month i (1-31)
    std::uint32_t months_ = 0;  // bit i: month i (1-12)
    std::uint32_t dows_ = 0;    // bit i: weekday i (0-6, Sunday 0)
    bool dom_star_ = false;     // the day-of-month field starts with '*'
    bool dow_star_ = false;     // the day-of-week field starts with '*'
};

} // namespace akv::queue
