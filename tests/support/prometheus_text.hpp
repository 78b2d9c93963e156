// A strict reader of Prometheus's text exposition format (0.0.4), for the tests of every
// /metrics we serve: names, types, label escaping, a family's samples together, counters
// named *_total, histograms with cumulative buckets up to le="+Inf" that equal their _count.
// Anything else throws std::runtime_error naming the line.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace akv::test {

struct prom_sample {
    std::string name; // with its suffix (_bucket, _sum, _count)
    std::map<std::string, std::string> labels;
    double value = 0;
};

struct prom_family {
    std::string name, type, help;
    std::vector<prom_sample> samples;
};

using prom_families = std::map<std::string, prom_family>;

prom_families parse_prometheus(std::string_view text);

// The value of the sample `name` whose labels include `labels`; nullopt when there is none.
std::optional<double> prom_value(const prom_families& families, std::string_view name,
                                 const std::map<std::string, std::string>& labels = {});

} // namespace akv::test
