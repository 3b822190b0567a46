#include "cli/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace twinhub::cli {

progress::progress(std::string what, std::string unit)
    : what_(std::move(what)), unit_(std::move(unit)), tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

progress::~progress() {
    if (tty_ && drawn_ && !finished_) std::fputs("\r\033[K", stderr);  // an error follows: leave no half line
}

void progress::update(std::size_t done, std::size_t total) {
    if (!tty_ || finished_) return;
    const auto now = std::chrono::steady_clock::now();
    drawn_ = true;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    if (total > 0)
        std::fprintf(stderr, "\r\033[K%s: %zu/%zu %s (%zu%%), %.0f/s", what_.c_str(), done, total, unit_.c_str(),
                     done * 100 / total, rate);
    else
        std::fprintf(stderr, "\r\033[K%s: %zu %s, %.0f/s", what_.c_str(), done, unit_.c_str(), rate);
    std::fflush(stderr);
}

void progress::finish(std::size_t done) {
    if (!tty_ || finished_) return;
    finished_ = true;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "\r\033[K%s: %zu %s in %.1f s\n", what_.c_str(), done, unit_.c_str(), secs);
    std::fflush(stderr);
}

}  // namespace twinhub::cli
