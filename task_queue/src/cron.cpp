#include <akv/queue/cron.hpp>

#include <akv/error.hpp>

#include <array>
#include <charconv>
#include <cstddef>
#include <vector>

namespace akv::queue {
namespace {

// The longest gap between two fires of a satisfiable expression is 40 years: February 29 on a
// given weekday (say "0 0 29 2 */7", Sundays only) skips the non-leap 2100. Looking a little
// further than that finds every answer, and "0 0 30 2 *" still gives up after a few thousand
// cheap steps (only days of the selected months are visited).
constexpr int horizon_years = 41;

struct field_spec {
    const char* name;
    unsigned min;
    unsigned max;      // largest value accepted (7 for day-of-week)
    unsigned star_max; // where `*` and `a/n` end (6 for day-of-week: 7 is Sunday again)
    const std::array<std::string_view, 12>* names; // names[i] is value min + i, or null
    std::size_t name_count;
};

constexpr std::array<std::string_view, 12> month_names{"jan", "feb", "mar", "apr", "may", "jun",
                                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 12> day_names{"sun", "mon", "tue", "wed",
                                                     "thu", "fri", "sat"};

constexpr std::array<field_spec, 6> specs{{
    {"second", 0, 59, 59, nullptr, 0},
    {"minute", 0, 59, 59, nullptr, 0},
    {"hour", 0, 23, 23, nullptr, 0},
    {"day-of-month", 1, 31, 31, nullptr, 0},
    {"month", 1, 12, 12, &month_names, 12},
    {"day-of-week", 0, 7, 6, &day_names, 7},
}};

enum field_index : std::size_t { sec, min, hour, dom, mon, dow };

bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

bool all_digits(std::string_view s) noexcept {
    for (const char c : s)
        if (!is_digit(c)) return false;
    return !s.empty();
}

char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

// A token quoted for an error message, cut short so a huge input makes a readable message.
std::string quoted(std::string_view s, std::size_t limit = 64) {
    std::string out = "\"";
    out.append(s.substr(0, limit));
    if (s.size() > limit) out += "...";
    out += '"';
    return out;
}

// Reports errors with the expression and, once known, the field they are in.
class reporter {
public:
    explicit reporter(std::string_view expr)
        : expr_(expr) {}

    void at_field(std::size_t position, const field_spec& f) {
        where_ = ": field " + std::to_string(position) + " (" + f.name + ")";
    }

    [[noreturn]] void fail(const std::string& what) const {
        throw_error(error::invalid_config, "cron " + quoted(expr_, 200) + where_ + ": " + what);
    }

private:
    std::string_view expr_;
    std::string where_;
};

std::string range_text(const field_spec& f) {
    return std::to_string(f.min) + "-" + std::to_string(f.max);
}

// A value of the field: digits, or a name where the field has names.
unsigned parse_value(std::string_view tok, std::string_view item, const field_spec& f,
                     const reporter& r) {
    if (tok.empty()) r.fail("missing value in " + quoted(item));
    if (is_digit(tok[0])) {
        if (!all_digits(tok)) r.fail(quoted(tok) + " is not a number");
        unsigned v = 0;
        const std::errc ec = std::from_chars(tok.data(), tok.data() + tok.size(), v).ec;
        if (ec != std::errc{} || v < f.min || v > f.max)
            r.fail(std::string(tok.substr(0, 64)) + " is out of range " + range_text(f));
        return v;
    }
    if (f.names != nullptr) {
        for (std::size_t i = 0; i < f.name_count; ++i)
            if (iequals(tok, (*f.names)[i])) return f.min + static_cast<unsigned>(i);
        std::string expected = f.names == &month_names ? "JAN-DEC" : "SUN-SAT";
        r.fail(quoted(tok) + " is not a number or one of " + expected);
    }
    r.fail(quoted(tok) + " is not a number");
}

unsigned parse_step(std::string_view tok, std::string_view item, const field_spec& f,
                    const reporter& r) {
    const unsigned span = f.max - f.min + 1;
    if (tok.empty()) r.fail("missing step after '/' in " + quoted(item));
    if (!all_digits(tok))
        r.fail("step " + quoted(tok) + " in " + quoted(item) + " is not a number");
    unsigned v = 0;
    const std::errc ec = std::from_chars(tok.data(), tok.data() + tok.size(), v).ec;
    if (ec == std::errc{} && v == 0) r.fail("step 0 in " + quoted(item) + " must be at least 1");
    if (ec != std::errc{} || v > span)
        r.fail("step " + std::string(tok.substr(0, 64)) + " in " + quoted(item) +
               " is out of range 1-" + std::to_string(span));
    return v;
}

// One list item: `*`, `a`, `a-b`, each optionally followed by `/n`.
std::uint64_t parse_item(std::string_view item, const field_spec& f, const reporter& r) {
    if (item.empty()) r.fail("empty item in the list");
    std::string_view range = item;
    unsigned step = 1;
    bool stepped = false;
    if (const auto slash = item.find('/'); slash != std::string_view::npos) {
        range = item.substr(0, slash);
        step = parse_step(item.substr(slash + 1), item, f, r);
        stepped = true;
    }
    unsigned lo = 0;
    unsigned hi = 0;
    if (range == "*") {
        lo = f.min;
        hi = f.star_max;
    } else if (const auto dash = range.find('-'); dash != std::string_view::npos) {
        lo = parse_value(range.substr(0, dash), item, f, r);
        hi = parse_value(range.substr(dash + 1), item, f, r);
        if (lo > hi)
            r.fail("range " + quoted(range) + " is reversed (" + std::to_string(lo) + " > " +
                   std::to_string(hi) + ")");
    } else {
        if (range.empty()) r.fail("missing value before '/' in " + quoted(item));
        lo = parse_value(range, item, f, r);
        hi = stepped ? (lo > f.star_max ? lo : f.star_max) : lo;
    }
    std::uint64_t bits = 0;
    for (unsigned v = lo; v <= hi; v += step)
        bits |= std::uint64_t{1} << v;
    return bits;
}

std::uint64_t parse_field(std::string_view text, const field_spec& f, const reporter& r) {
    std::uint64_t bits = 0;
    for (;;) {
        const auto comma = text.find(',');
        bits |= parse_item(text.substr(0, comma), f, r);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return bits;
}

std::string_view macro_expansion(std::string_view m) noexcept {
    constexpr std::array<std::pair<std::string_view, std::string_view>, 7> macros{{
        {"@yearly", "0 0 1 1 *"},
        {"@annually", "0 0 1 1 *"},
        {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"},
        {"@daily", "0 0 * * *"},
        {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"},
    }};
    for (const auto& [name, fields] : macros)
        if (iequals(m, name)) return fields;
    return {};
}

std::vector<std::string_view> split_fields(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_space(s[i]))
            ++i;
        const std::size_t start = i;
        while (i < s.size() && !is_space(s[i]))
            ++i;
        if (i > start) out.push_back(s.substr(start, i - start));
    }
    return out;
}

// The lowest set bit at or above `from` (up to bit 63), or -1.
int next_bit(std::uint64_t bits, unsigned from) noexcept {
    if (from > 63) return -1;
    const std::uint64_t rest = bits >> from << from;
    if (rest == 0) return -1;
    int i = 0;
    while (((rest >> i) & 1) == 0)
        ++i;
    return i;
}

} // namespace

cron_schedule cron_schedule::parse(std::string_view expr) {
    reporter r(expr);
    std::vector<std::string_view> fields = split_fields(expr);
    if (fields.empty()) r.fail("empty expression");
    if (fields.size() == 1 && fields[0][0] == '@') {
        const std::string_view expansion = macro_expansion(fields[0]);
        if (expansion.empty())
            r.fail("unknown macro " + quoted(fields[0]) +
                   " (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or "
                   "@hourly)");
        fields = split_fields(expansion);
    }
    if (fields.size() != 5 && fields.size() != 6)
        r.fail("expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second "
               "first), got " +
               std::to_string(fields.size()));

    const std::size_t first = fields.size() == 6 ? sec : min; // the spec of fields[0]
    std::array<std::uint64_t, 6> bits{};
    bits[sec] = 1; // five fields: second 0
    for (std::size_t i = 0; i < fields.size(); ++i) {
        const field_spec& f = specs[first + i];
        r.at_field(i + 1, f);
        bits[first + i] = parse_field(fields[i], f, r);
    }

    cron_schedule c;
    c.expr_ = std::string(expr);
    c.seconds_ = bits[sec];
    c.minutes_ = bits[min];
    c.hours_ = static_cast<std::uint32_t>(bits[hour]);
    c.doms_ = static_cast<std::uint32_t>(bits[dom]);
    c.months_ = static_cast<std::uint32_t>(bits[mon]);
    std::uint64_t dows = bits[dow];
    if (dows & (std::uint64_t{1} << 7)) dows = (dows | 1) & ~(std::uint64_t{1} << 7);
    c.dows_ = static_cast<std::uint32_t>(dows);
    c.dom_star_ = fields[first == sec ? 3 : 2][0] == '*';
    c.dow_star_ = fields[first == sec ? 5 : 4][0] == '*';
    return c;
}

bool cron_schedule::day_matches(unsigned day_of_month, unsigned weekday) const noexcept {
    const bool dom_ok = (doms_ >> day_of_month) & 1;
    const bool dow_ok = (dows_ >> weekday) & 1;
    if (dom_star_ || dow_star_) return dom_ok && dow_ok;
    return dom_ok || dow_ok;
}

std::chrono::system_clock::time_point
cron_schedule::next_after(std::chrono::system_clock::time_point t) const {
    using namespace std::chrono;
    const reporter r(expr_);

    // Whole seconds from here on: the rep is 64-bit, so any system_clock time fits with years
    // to spare, and the search cannot overflow.
    sys_seconds cur = floor<seconds>(t) + seconds{1};
    const sys_days limit = floor<days>(cur) + days{366 * horizon_years};

    // Each step moves `cur` to the earliest time the failing field allows, resetting the
    // smaller fields, and looks again: at most a few steps per visited day.
    for (;;) {
        const sys_days today = floor<days>(cur);
        if (today > limit)
            r.fail("no time matches within " + std::to_string(horizon_years) + " years");
        const year_month_day ymd{today};
        const unsigned month_now = static_cast<unsigned>(ymd.month());
        if (((months_ >> month_now) & 1) == 0) {
            int y = static_cast<int>(ymd.year());
            int m = next_bit(months_, month_now + 1);
            if (m < 0) {
                ++y;
                m = next_bit(months_, 1);
            }
            cur = sys_days{year{y} / month{static_cast<unsigned>(m)} / day{1}};
            continue;
        }
        if (!day_matches(static_cast<unsigned>(ymd.day()), weekday{today}.c_encoding())) {
            cur = today + days{1};
            continue;
        }
        const auto tod = (cur - today).count();
        const auto h = static_cast<unsigned>(tod / 3600);
        const auto mi = static_cast<unsigned>(tod / 60 % 60);
        const auto s = static_cast<unsigned>(tod % 60);

        const int nh = next_bit(hours_, h);
        if (nh < 0) {
            cur = today + days{1};
            continue;
        }
        if (static_cast<unsigned>(nh) != h) {
            cur = today + hours{nh};
            continue;
        }
        const int nm = next_bit(minutes_, mi);
        if (nm < 0) {
            cur = today + hours{h + 1};
            continue;
        }
        if (static_cast<unsigned>(nm) != mi) {
            cur = today + hours{h} + minutes{nm};
            continue;
        }
        const int ns = next_bit(seconds_, s);
        if (ns < 0) {
            cur = today + hours{h} + minutes{mi + 1};
            continue;
        }
        cur = today + hours{h} + minutes{mi} + seconds{ns};
        break;
    }

    const auto latest = floor<seconds>(system_clock::time_point::max());
    if (cur > latest) r.fail("the next time is beyond the range of system_clock");
    return time_point_cast<system_clock::duration>(cur);
}

} // namespace akv::queue
