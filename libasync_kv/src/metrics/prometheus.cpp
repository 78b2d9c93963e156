#include <akv/metrics/prometheus.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace akv::metrics {

namespace {

// Whole numbers as integers ("1234", not "1234.0"), the rest as the shortest round-trip text.
void append_number(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    char buf[32];
    const bool whole = v == std::floor(v) && std::abs(v) < 9.007199254740992e15;
    const auto end = whole ? std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v)).ptr
                           : std::to_chars(buf, buf + sizeof buf, v).ptr;
    out.append(buf, end);
}

// Backslash and newline escaped, and the double quote too in a label value (HELP keeps it).
std::string escaped(std::string_view value, bool quote) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '"' && quote)
            out += "\\\"";
        else
            out += c;
    }
    return out;
}

} // namespace

std::string escape_label(std::string_view value) {
    return escaped(value, true);
}

exposition& exposition::family(std::string_view name, std::string_view type,
                               std::string_view help) {
    current_ = name;
    if (std::find(started_.begin(), started_.end(), name) != started_.end()) return *this;
    started_.emplace_back(name);
    text_ += "# HELP ";
    text_ += name;
    text_ += ' ';
    text_ += escaped(help, false);
    text_ += "\n# TYPE ";
    text_ += name;
    text_ += ' ';
    text_ += type;
    text_ += '\n';
    return *this;
}

exposition& exposition::sample(const labels& l, double value, std::string_view suffix) {
    text_ += current_;
    text_ += suffix;
    if (!l.empty()) {
        text_ += '{';
        for (std::size_t i = 0; i < l.size(); ++i) {
            if (i) text_ += ',';
            text_ += l[i].first;
            text_ += "=\"";
            text_ += escape_label(l[i].second);
            text_ += '"';
        }
        text_ += '}';
    }
    text_ += ' ';
    append_number(text_, value);
    text_ += '\n';
    return *this;
}

histogram::histogram()
    : histogram({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}) {}

histogram::histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds))
    , counts_(bounds_.size() + 1, 0) {
    std::sort(bounds_.begin(), bounds_.end());
    // +Inf is implied, and a bound given twice would write its bucket twice.
    bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
    while (!bounds_.empty() && std::isinf(bounds_.back()))
        bounds_.pop_back();
    counts_.assign(bounds_.size() + 1, 0);
}

void histogram::observe(double value) {
    const auto at = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
    ++counts_[static_cast<std::size_t>(at)];
    ++count_;
    sum_ += value;
}

void histogram::write(exposition& out, std::string_view name, std::string_view help,
                      const labels& l) const {
    out.family(name, "histogram", help);
    labels with_le = l;
    with_le.emplace_back("le", "");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        cumulative += counts_[i];
        std::string le;
        append_number(le, i < bounds_.size() ? bounds_[i] : INFINITY);
        with_le.back().second = le;
        out.sample(with_le, static_cast<double>(cumulative), "_bucket");
    }
    out.sample(l, sum_, "_sum");
    out.sample(l, static_cast<double>(count_), "_count");
}

} // namespace akv::metrics
