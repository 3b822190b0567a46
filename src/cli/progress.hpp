// Progress of long CLI work (bulk import, paged queries) on stderr, shown only when stderr is a
// terminal: a line rewritten in place at each step (a bulk request of up to 100 devices, a query
// page), then one closing line. When
// stderr is a file or a pipe nothing is written, so scripts see stdout's JSON and errors only.
// Thread safety: one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace twinhub::cli {

class progress {
public:
    // `what` names the work ("import", "query"); `unit` what is counted ("devices", "rows").
    progress(std::string what, std::string unit);
    ~progress();
    progress(const progress&) = delete;
    progress& operator=(const progress&) = delete;

    bool shown() const noexcept { return tty_; }
    // `done` of `total` (0: unknown) so far.
    void update(std::size_t done, std::size_t total = 0);
    // Replaces the progress line with "<what>: <done> <unit> in <seconds> s" (once).
    void finish(std::size_t done);

private:
    std::string what_, unit_;
    bool tty_ = false, finished_ = false, drawn_ = false;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace twinhub::cli
