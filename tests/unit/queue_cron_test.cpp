#include <akv/queue/cron.hpp>

#include <akv/error.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

using akv::queue::cron_schedule;
using std::chrono::system_clock;

// "YYYY-MM-DD HH:MM:SS" (UTC) to a time point, and back: tests read as calendar times.
system_clock::time_point at(const std::string& text) {
    int y = 0;
    unsigned mo = 0, d = 0, h = 0, mi = 0, s = 0;
    if (std::sscanf(text.c_str(), "%d-%u-%u %u:%u:%u", &y, &mo, &d, &h, &mi, &s) != 6)
        ADD_FAILURE() << "bad time in test: " << text;
    using namespace std::chrono;
    return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s};
}

std::string text(system_clock::time_point t) {
    using namespace std::chrono;
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss hms{floor<seconds>(t - day)};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02ld:%02ld:%02ld", int(ymd.year()),
                  unsigned(ymd.month()), unsigned(ymd.day()), long(hms.hours().count()),
                  long(hms.minutes().count()), long(hms.seconds().count()));
    return buf;
}

std::string next(std::string_view expr, const std::string& from) {
    return text(cron_schedule::parse(expr).next_after(at(from)));
}

// The what() of the invalid_config error that parse() throws, or "" after a test failure.
std::string parse_error(std::string_view expr) {
    try {
        cron_schedule::parse(expr);
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::error::invalid_config) << expr;
        return e.what();
    }
    ADD_FAILURE() << "parse accepted \"" << expr << "\"";
    return "";
}

} // namespace

TEST(QueueCron, EveryMinuteFiresAtTheNextWholeMinute) {
    EXPECT_EQ(next("* * * * *", "2025-01-01 10:15:30"), "2025-01-01 10:16:00");
    EXPECT_EQ(next("* * * * *", "2025-01-01 10:15:00"), "2025-01-01 10:16:00"); // strictly after
    EXPECT_EQ(next("* * * * *", "2025-01-01 10:59:59"), "2025-01-01 11:00:00");
    const auto almost = at("2025-01-01 10:15:59") + std::chrono::milliseconds(999);
    EXPECT_EQ(text(cron_schedule::parse("* * * * *").next_after(almost)), "2025-01-01 10:16:00");
}

TEST(QueueCron, StepsRangesAndLists) {
    EXPECT_EQ(next("*/15 * * * *", "2025-01-01 10:16:00"), "2025-01-01 10:30:00");
    EXPECT_EQ(next("*/15 * * * *", "2025-01-01 10:45:00"), "2025-01-01 11:00:00");
    EXPECT_EQ(next("0 9-17/2 * * *", "2025-01-01 10:00:00"), "2025-01-01 11:00:00");
    EXPECT_EQ(next("0 9-17/2 * * *", "2025-01-01 17:00:00"), "2025-01-02 09:00:00");
    EXPECT_EQ(next("5,10,50 * * * *", "2025-01-01 10:10:00"), "2025-01-01 10:50:00");
    EXPECT_EQ(next("5,10,50 * * * *", "2025-01-01 10:50:00"), "2025-01-01 11:05:00");
    EXPECT_EQ(next("30/10 * * * *", "2025-01-01 10:55:00"), "2025-01-01 11:30:00"); // a/n
    EXPECT_EQ(next("1-3,58 22 * * *", "2025-01-01 22:03:00"), "2025-01-01 22:58:00");
    EXPECT_EQ(next("0 0 * 2-3 *", "2025-01-15 00:00:00"), "2025-02-01 00:00:00");
}

TEST(QueueCron, MonthAndWeekdayNamesAreCaseInsensitive) {
    // 2025-01-04 is a Saturday.
    EXPECT_EQ(next("0 12 * * MON-fri", "2025-01-04 08:00:00"), "2025-01-06 12:00:00");
    EXPECT_EQ(next("0 12 * * Sat,SUN", "2025-01-06 08:00:00"), "2025-01-11 12:00:00");
    EXPECT_EQ(next("0 0 1 jan,Jul *", "2025-01-01 00:00:00"), "2025-07-01 00:00:00");
    EXPECT_EQ(next("0 0 1 MAR-may/2 *", "2025-03-01 00:00:00"), "2025-05-01 00:00:00");
}

TEST(QueueCron, DayOfWeekSevenIsSunday) {
    // 2025-01-05 is a Sunday.
    EXPECT_EQ(next("0 0 * * 7", "2025-01-01 00:00:00"), "2025-01-05 00:00:00");
    EXPECT_EQ(next("0 0 * * 0", "2025-01-01 00:00:00"), "2025-01-05 00:00:00");
    EXPECT_EQ(next("0 0 * * 6-7", "2025-01-04 00:00:00"), "2025-01-05 00:00:00");
    EXPECT_EQ(next("0 0 * * 6-7", "2025-01-05 00:00:00"), "2025-01-11 00:00:00");
}

TEST(QueueCron, BothDayFieldsRestrictedMatchEither) {
    // Vixie: "the 13th, or any Friday". 2025-01-03 is a Friday, 2025-01-13 a Monday.
    EXPECT_EQ(next("0 0 13 * FRI", "2025-01-01 00:00:00"), "2025-01-03 00:00:00");
    EXPECT_EQ(next("0 0 13 * FRI", "2025-01-10 00:00:00"), "2025-01-13 00:00:00");
    EXPECT_EQ(next("0 0 13 * FRI", "2025-01-13 00:00:00"), "2025-01-17 00:00:00");
}

TEST(QueueCron, StarDayFieldLeavesTheOtherInCharge) {
    // dom "*": only Fridays; dow "*": only the 13th.
    EXPECT_EQ(next("0 0 * * FRI", "2025-01-03 00:00:00"), "2025-01-10 00:00:00");
    EXPECT_EQ(next("0 0 13 * *", "2025-01-03 00:00:00"), "2025-01-13 00:00:00");
    // As in Vixie cron, a field starting with '*' counts as '*': odd days that are Mondays.
    // 2025-01-06 is a Monday (even), 2025-01-13 the next (odd).
    EXPECT_EQ(next("0 0 */2 * MON", "2025-01-01 00:00:00"), "2025-01-13 00:00:00");
}

TEST(QueueCron, LeapDayWaitsForTheNextLeapYear) {
    EXPECT_EQ(next("0 0 29 2 *", "2025-01-01 00:00:00"), "2028-02-29 00:00:00");
    EXPECT_EQ(next("0 0 29 2 *", "2028-02-29 00:00:00"), "2032-02-29 00:00:00");
    // 2100 is not a leap year.
    EXPECT_EQ(next("0 0 29 2 *", "2096-03-01 00:00:00"), "2104-02-29 00:00:00");
    // The longest gap there is: February 29 on a Sunday, 2088 then 2128.
    EXPECT_EQ(next("0 0 29 2 */7", "2088-03-01 00:00:00"), "2128-02-29 00:00:00");
}

TEST(QueueCron, MonthEndSkipsShortMonths) {
    EXPECT_EQ(next("0 0 31 * *", "2025-01-31 00:00:00"), "2025-03-31 00:00:00");
    EXPECT_EQ(next("0 0 31 * *", "2025-03-31 00:00:00"), "2025-05-31 00:00:00");
    EXPECT_EQ(next("0 0 30 * *", "2025-01-30 00:00:00"), "2025-03-30 00:00:00");
    EXPECT_EQ(next("0 0 28-31 2 *", "2025-02-28 00:00:00"), "2026-02-28 00:00:00");
    EXPECT_EQ(next("0 0 28-31 2 *", "2028-02-28 00:00:00"), "2028-02-29 00:00:00");
}

TEST(QueueCron, Macros) {
    EXPECT_EQ(next("@hourly", "2025-01-01 10:15:00"), "2025-01-01 11:00:00");
    EXPECT_EQ(next("@daily", "2025-01-01 10:15:00"), "2025-01-02 00:00:00");
    EXPECT_EQ(next("@midnight", "2025-01-01 00:00:00"), "2025-01-02 00:00:00");
    EXPECT_EQ(next("  @DAILY\t", "2025-01-01 10:15:00"), "2025-01-02 00:00:00");
    EXPECT_EQ(next("@weekly", "2025-01-01 10:15:00"), "2025-01-05 00:00:00"); // Sunday
    EXPECT_EQ(next("@monthly", "2025-01-01 10:15:00"), "2025-02-01 00:00:00");
    EXPECT_EQ(next("@yearly", "2025-01-01 00:00:00"), "2026-01-01 00:00:00");
    EXPECT_EQ(next("@annually", "2025-06-01 00:00:00"), "2026-01-01 00:00:00");
}

TEST(QueueCron, SixFieldsAddASecondsField) {
    EXPECT_EQ(next("*/20 * * * * *", "2025-01-01 10:00:05"), "2025-01-01 10:00:20");
    EXPECT_EQ(next("*/20 * * * * *", "2025-01-01 10:00:40"), "2025-01-01 10:01:00");
    EXPECT_EQ(next("30 0 12 * * *", "2025-01-01 12:00:30"), "2025-01-02 12:00:30");
    EXPECT_EQ(next("* * * * * *", "2025-01-01 12:00:30"), "2025-01-01 12:00:31");
    EXPECT_EQ(next("15,45 * * * * MON", "2025-01-04 23:59:50"), "2025-01-06 00:00:15");
}

TEST(QueueCron, UtcArithmeticAcrossTheYearBoundary) {
    EXPECT_EQ(next("59 23 31 12 *", "2025-12-31 23:59:00"), "2026-12-31 23:59:00");
    EXPECT_EQ(next("0 0 1 1 *", "2025-12-31 23:59:59"), "2026-01-01 00:00:00");
    EXPECT_EQ(next("*/7 * * * * *", "2025-12-31 23:59:58"), "2026-01-01 00:00:00");
    EXPECT_EQ(next("0 0 * * THU", "2025-12-26 00:00:00"), "2026-01-01 00:00:00");
    // No DST: the European and US switch nights have every hour.
    EXPECT_EQ(next("30 * * * *", "2025-03-30 01:30:00"), "2025-03-30 02:30:00");
    EXPECT_EQ(next("30 2 * * *", "2025-03-09 00:00:00"), "2025-03-09 02:30:00");
    EXPECT_EQ(next("0 * * * *", "2025-10-26 01:00:00"), "2025-10-26 02:00:00");
}

TEST(QueueCron, ExpressionKeepsTheText) {
    EXPECT_EQ(cron_schedule::parse(" 0 3 * * MON-FRI ").expression(), " 0 3 * * MON-FRI ");
    EXPECT_EQ(cron_schedule::parse("@hourly").expression(), "@hourly");
    const cron_schedule copy = cron_schedule::parse("*/5 * * * *");
    EXPECT_EQ(copy.expression(), "*/5 * * * *");
}

TEST(QueueCron, ErrorsNameTheFieldAndTheToken) {
    EXPECT_EQ(parse_error("5 70 * * *")
                  .rfind("cron \"5 70 * * *\": field 2 (hour): 70 is out of range 0-23", 0),
              0u);

    struct bad {
        const char* expr;
        std::vector<std::string> says;
    };
    const std::vector<bad> cases{
        {"", {"empty expression"}},
        {" \t ", {"empty expression"}},
        {"* * * *", {"expected 5 fields", "got 4"}},
        {"* * * * * * *", {"got 7"}},
        {"*/0 * * * *", {"field 1 (minute)", "step 0", "\"*/0\""}},
        {"5-1 * * * *", {"field 1 (minute)", "\"5-1\"", "reversed"}},
        {"60 * * * *", {"field 1 (minute)", "60 is out of range 0-59"}},
        {"60 * * * * *", {"field 1 (second)", "60 is out of range 0-59"}},
        {"* * 0 * *", {"field 3 (day-of-month)", "0 is out of range 1-31"}},
        {"* * * 13 *", {"field 4 (month)", "13 is out of range 1-12"}},
        {"* * * FOO *", {"field 4 (month)", "\"FOO\"", "JAN-DEC"}},
        {"* * * * 8", {"field 5 (day-of-week)", "8 is out of range 0-7"}},
        {"* * * * FRI-SUN", {"field 5 (day-of-week)", "\"FRI-SUN\"", "reversed"}},
        {"* * * * Monday", {"field 5 (day-of-week)", "\"Monday\"", "SUN-SAT"}},
        {"MON * * * *", {"field 1 (minute)", "\"MON\" is not a number"}},
        {"1,,2 * * * *", {"field 1 (minute)", "empty item"}},
        {"1, * * * *", {"field 1 (minute)", "empty item"}},
        {"a * * * *", {"field 1 (minute)", "\"a\" is not a number"}},
        {"1x * * * *", {"field 1 (minute)", "\"1x\" is not a number"}},
        {"*/ * * * *", {"field 1 (minute)", "missing step", "\"*/\""}},
        {"*/x * * * *", {"field 1 (minute)", "step \"x\""}},
        {"*/61 * * * *", {"field 1 (minute)", "step 61", "out of range 1-60"}},
        {"/5 * * * *", {"field 1 (minute)", "missing value", "\"/5\""}},
        {"-5 * * * *", {"field 1 (minute)", "missing value", "\"-5\""}},
        {"1-2-3 * * * *", {"field 1 (minute)", "\"2-3\" is not a number"}},
        {"*-5 * * * *", {"field 1 (minute)", "\"*\" is not a number"}},
        {"99999999999999999999 * * * *", {"99999999999999999999 is out of range 0-59"}},
        {"* 1-99999999999 * * *", {"field 2 (hour)", "99999999999 is out of range 0-23"}},
        {"@reboot", {"unknown macro \"@reboot\""}},
        {"@daily *", {"got 2"}},
    };
    for (const auto& c : cases) {
        const std::string what = parse_error(c.expr);
        for (const auto& s : c.says)
            EXPECT_NE(what.find(s), std::string::npos)
                << "\"" << c.expr << "\" gave: " << what << "\nexpected it to contain: " << s;
    }
}

TEST(QueueCron, ImpossibleDateThrowsFromNextAfter) {
    for (const char* expr : {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2 */7"}) {
        const auto c = cron_schedule::parse(expr); // each field is fine on its own
        try {
            c.next_after(at("2025-01-01 00:00:00"));
            ADD_FAILURE() << expr << " found a time";
        } catch (const boost::system::system_error& e) {
            EXPECT_EQ(e.code(), akv::error::invalid_config);
            EXPECT_NE(std::string(e.what()).find("no time matches"), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find(expr), std::string::npos) << e.what();
        }
    }
}

TEST(QueueCron, ClockLimitsDoNotOverflow) {
    const auto every = cron_schedule::parse("* * * * * *");
    try {
        every.next_after(system_clock::time_point::max());
        ADD_FAILURE() << "found a time after time_point::max()";
    } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), akv::error::invalid_config);
    }
    const auto lo = system_clock::time_point::min();
    const auto n = every.next_after(lo);
    EXPECT_GT(n, lo);
    EXPECT_LE(n - lo, std::chrono::seconds(1));
}

TEST(QueueCron, GarbageOnlyEverThrowsInvalidConfig) {
    const std::vector<std::string> seeds{"*/5 1-3 * JAN-MAR MON,FRI", "0 0 29 2 *", "@weekly",
                                         "1/7 */2 1,15 * 0-7", "30 */10 * * * SUN"};
    std::string alphabet = "0123456789*/-, \t@JANMONsunfri";
    alphabet += '\0';
    alphabet += '\xff';
    std::mt19937 rng(12345);
    int parsed = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string s = seeds[rng() % seeds.size()];
        for (int k = int(rng() % 4); k >= 0; --k) {
            const std::size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
            const char ch = alphabet[rng() % alphabet.size()];
            switch (rng() % 3) {
            case 0:
                s.insert(pos, 1, ch);
                break;
            case 1:
                if (pos < s.size()) s.erase(pos, 1);
                break;
            default:
                if (pos < s.size()) s[pos] = ch;
            }
        }
        try {
            const auto c = cron_schedule::parse(s);
            ++parsed;
            c.next_after(at("2025-06-15 12:34:56"));
        } catch (const boost::system::system_error& e) {
            EXPECT_EQ(e.code(), akv::error::invalid_config) << s;
        }
    }
    EXPECT_GT(parsed, 0);
}
