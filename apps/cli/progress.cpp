#include "progress.hpp"

#include <algorithm>
#include <cstdio>

namespace akv::cli {

std::string progress_line(std::uint64_t done, std::uint64_t total,
                          std::chrono::steady_clock::duration elapsed) {
    constexpr std::size_t width = 30;
    const double fraction =
        total == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    const std::size_t filled = static_cast<std::size_t>(fraction * width);
    const double seconds = std::chrono::duration<double>(elapsed).count();
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
    char text[128];
    std::snprintf(text, sizeof text, "] %llu/%llu %3d%% %.0f/s",
                  static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                  static_cast<int>(fraction * 100), rate);
    return "[" + std::string(filled, '#') + std::string(width - filled, '.') + text;
}

progress_bar::progress_bar(std::uint64_t total, bool enabled)
    : total_(total)
    , enabled_(enabled) {}

void progress_bar::advance(std::uint64_t n) {
    done_ += n;
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw();
}

void progress_bar::finish() {
    if (!enabled_) return;
    draw();
    std::fputc('\n', stderr);
    enabled_ = false;
}

void progress_bar::draw() {
    // \r and erase-to-end-of-line: a shorter line leaves nothing of the longer one behind.
    const std::string line =
        progress_line(done_, total_, std::chrono::steady_clock::now() - start_);
    std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
    std::fflush(stderr);
}

} // namespace akv::cli
