// A progress bar on stderr for long transfers ("[#####.....] 1200/5000  24%  3400/s"),
// redrawn in place at most every 100 ms, and only when stderr is a terminal: piped or
// redirected output gets none of it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace akv::cli {

// The bar's text for `done` of `total` after `elapsed` (no "\r", no newline).
std::string progress_line(std::uint64_t done, std::uint64_t total,
                          std::chrono::steady_clock::duration elapsed);

class progress_bar {
public:
    // Draws nothing unless `enabled` (callers pass isatty(STDERR_FILENO)).
    progress_bar(std::uint64_t total, bool enabled);
    ~progress_bar() { finish(); }
    progress_bar(const progress_bar&) = delete;
    progress_bar& operator=(const progress_bar&) = delete;

    void advance(std::uint64_t n);
    // The final state and a newline; later calls do nothing.
    void finish();

private:
    void draw();

    std::uint64_t total_;
    std::uint64_t done_ = 0;
    bool enabled_;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last_draw_{};
};

} // namespace akv::cli
