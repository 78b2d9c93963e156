// Prometheus's text exposition format (version 0.0.4), what every /metrics of ours answers:
// families with HELP and TYPE, samples with labels escaped as the format wants, histograms
// with cumulative buckets.
//
//   akv::metrics::exposition out;
//   out.family("akv_queue_jobs_processed_total", "counter", "Jobs whose handler returned.");
//   out.sample({{"queue", "emails"}}, 1234);
//   durations.write(out, "akv_queue_job_duration_seconds", "Run time.", {{"queue", "emails"}});
//   respond(out.text()); // Content-Type: akv::metrics::content_type
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace akv::metrics {

inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

using labels = std::vector<std::pair<std::string, std::string>>;

// A label value as the format writes it between quotes: \ " and newline escaped.
std::string escape_label(std::string_view value);

class exposition {
public:
    // Starts the family `name` (# HELP, # TYPE); its samples follow. `type`: counter, gauge,
    // histogram, summary or untyped. A name starts a family once: its second call only makes
    // it current again (a family's samples must be together, so call it before each group).
    exposition& family(std::string_view name, std::string_view type, std::string_view help);
    // A sample of the current family: `suffix` is appended to its name (_bucket, _sum, ...).
    exposition& sample(const labels& l, double value, std::string_view suffix = {});
    exposition& sample(double value) { return sample({}, value); }

    const std::string& text() const noexcept { return text_; }

private:
    std::string text_;
    std::string current_;
    std::vector<std::string> started_;
};

// A histogram over fixed upper bounds (seconds by default: 1 ms to 60 s). Not thread-safe:
// observe and write from one executor.
class histogram {
public:
    histogram();
    explicit histogram(std::vector<double> upper_bounds); // ascending; +Inf is implied

    void observe(double value);
    std::uint64_t count() const noexcept { return count_; }
    double sum() const noexcept { return sum_; }

    // The family `name` (TYPE histogram) when it is not started yet, then this histogram's
    // series under `l`: name_bucket{le=...} (cumulative), name_sum, name_count.
    void write(exposition& out, std::string_view name, std::string_view help,
               const labels& l = {}) const;

private:
    std::vector<double> bounds_;
    std::vector<std::uint64_t> counts_; // per bucket, not cumulative; the last is +Inf
    std::uint64_t count_ = 0;
    double sum_ = 0;
};

} // namespace akv::metrics
