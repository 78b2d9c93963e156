#include "support/prometheus_text.hpp"

#include <cmath>
#include <set>
#include <stdexcept>

namespace akv::test {

namespace {

bool name_char(char c, bool first, bool colon) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    return alpha || (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

struct line_reader {
    std::string_view line;
    std::size_t at = 0;
    std::size_t number;

    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error("metrics line " + std::to_string(number) + ": " + what + ": " +
                                 std::string(line));
    }
    bool done() const { return at >= line.size(); }
    char peek() const { return done() ? '\0' : line[at]; }
    std::string name(bool colon) {
        const std::size_t start = at;
        while (!done() && name_char(line[at], at == start, colon))
            ++at;
        if (at == start) fail("expected a name");
        return std::string(line.substr(start, at - start));
    }
    std::string quoted() {
        if (peek() != '"') fail("expected '\"'");
        ++at;
        std::string out;
        for (;;) {
            if (done()) fail("unterminated label value");
            const char c = line[at++];
            if (c == '"') return out;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (done()) fail("a '\\' at the end");
            const char e = line[at++];
            if (e == '\\')
                out += '\\';
            else if (e == '"')
                out += '"';
            else if (e == 'n')
                out += '\n';
            else
                fail(std::string("unknown escape \\") + e);
        }
    }
};

double number_of(const line_reader& r, std::string_view text) {
    if (text == "+Inf") return INFINITY;
    if (text == "-Inf") return -INFINITY;
    if (text == "NaN") return NAN;
    try {
        std::size_t used = 0;
        const double v = std::stod(std::string(text), &used);
        if (used != text.size()) r.fail("not a number: " + std::string(text));
        return v;
    } catch (const std::logic_error&) {
        r.fail("not a number: " + std::string(text));
    }
}

// Whether sample `name` belongs to family `f`.
bool belongs(const prom_family& f, const std::string& name) {
    if (name == f.name) return f.type != "histogram";
    if (f.type != "histogram" && f.type != "summary") return false;
    for (std::string_view suffix : {"_sum", "_count", "_bucket"})
        if (name == f.name + std::string(suffix))
            return suffix != "_bucket" || f.type == "histogram";
    return false;
}

void check_histogram(const prom_family& f) {
    // Per label set without le: buckets in order, cumulative, ending at +Inf == _count.
    std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
    std::map<std::map<std::string, std::string>, double> counts;
    for (const auto& s : f.samples) {
        auto labels = s.labels;
        if (s.name == f.name + "_bucket") {
            const auto le = labels.find("le");
            if (le == labels.end()) throw std::runtime_error(f.name + ": a bucket without le");
            const double bound = le->second == "+Inf" ? INFINITY : std::stod(le->second);
            labels.erase(le);
            buckets[labels].emplace_back(bound, s.value);
        } else if (s.name == f.name + "_count") {
            counts[labels] = s.value;
        }
    }
    if (buckets.empty()) throw std::runtime_error(f.name + ": a histogram without buckets");
    for (const auto& [labels, series] : buckets) {
        for (std::size_t i = 1; i < series.size(); ++i)
            if (series[i].first <= series[i - 1].first || series[i].second < series[i - 1].second)
                throw std::runtime_error(f.name + ": buckets not ascending and cumulative");
        if (!std::isinf(series.back().first))
            throw std::runtime_error(f.name + ": no le=\"+Inf\" bucket");
        const auto count = counts.find(labels);
        if (count == counts.end() || count->second != series.back().second)
            throw std::runtime_error(f.name + ": _count differs from the +Inf bucket");
    }
}

} // namespace

prom_families parse_prometheus(std::string_view text) {
    prom_families families;
    std::string current;
    std::set<std::string> closed; // families whose samples are over
    std::set<std::pair<std::string, std::map<std::string, std::string>>> seen;
    std::size_t number = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        if (nl == std::string_view::npos)
            throw std::runtime_error("metrics: the text does not end with a newline");
        line_reader r{text.substr(0, nl), 0, ++number};
        text.remove_prefix(nl + 1);
        if (r.line.empty()) continue;
        if (r.line.starts_with("# HELP ") || r.line.starts_with("# TYPE ")) {
            const bool help = r.line[2] == 'H';
            r.at = 7;
            const std::string name = r.name(true);
            if (r.peek() != ' ') r.fail("expected ' ' after the name");
            const std::string_view rest = r.line.substr(r.at + 1);
            if (closed.count(name) || (families.count(name) && current != name))
                r.fail("family " + name + " appears twice");
            prom_family& f = families[name];
            f.name = name;
            if (current != name && !current.empty()) closed.insert(current);
            current = name;
            if (help) {
                f.help = std::string(rest);
                continue;
            }
            static const std::set<std::string_view> types{"counter", "gauge", "histogram",
                                                          "summary", "untyped"};
            if (!types.count(rest)) r.fail("unknown type");
            if (!f.type.empty()) r.fail("a second TYPE");
            if (!f.samples.empty()) r.fail("TYPE after samples");
            f.type = std::string(rest);
            if (f.type == "counter" && !name.ends_with("_total"))
                r.fail("a counter's name must end in _total");
            continue;
        }
        if (r.line.starts_with("#")) continue; // a comment
        prom_sample s;
        s.name = r.name(true);
        if (r.peek() == '{') {
            ++r.at;
            while (r.peek() != '}') {
                const std::string label = r.name(false);
                if (r.peek() != '=') r.fail("expected '=' after label " + label);
                ++r.at;
                if (!s.labels.emplace(label, r.quoted()).second)
                    r.fail("label " + label + " twice");
                if (r.peek() == ',')
                    ++r.at;
                else if (r.peek() != '}')
                    r.fail("expected ',' or '}'");
            }
            ++r.at;
        }
        if (r.peek() != ' ') r.fail("expected ' ' before the value");
        ++r.at;
        std::string_view value = r.line.substr(r.at);
        if (const auto space = value.find(' '); space != std::string_view::npos)
            value = value.substr(0, space); // a timestamp may follow
        s.value = number_of(r, value);
        const auto f = families.find(current);
        if (f == families.end() || f->second.type.empty() || !belongs(f->second, s.name))
            r.fail("sample " + s.name + " outside its family's TYPE");
        if (!seen.emplace(s.name, s.labels).second) r.fail("the same sample twice");
        f->second.samples.push_back(std::move(s));
    }
    for (const auto& [name, f] : families) {
        if (f.type.empty()) throw std::runtime_error("metrics: family " + name + " has no TYPE");
        if (f.type == "histogram") check_histogram(f);
    }
    return families;
}

std::optional<double> prom_value(const prom_families& families, std::string_view name,
                                 const std::map<std::string, std::string>& labels) {
    for (const auto& [family, f] : families)
        for (const auto& s : f.samples) {
            if (s.name != name) continue;
            bool match = true;
            for (const auto& [k, v] : labels) {
                const auto it = s.labels.find(k);
                match = match && it != s.labels.end() && it->second == v;
            }
            if (match) return s.value;
        }
    return std::nullopt;
}

} // namespace akv::test
