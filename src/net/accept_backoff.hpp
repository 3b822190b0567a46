// The bookkeeping of a listener's accept loop, without sockets or timers: which accept errors lose
// only one connection and which mean "wait before accepting again" (resource exhaustion: EMFILE,
// ENFILE, ENOBUFS, ENOMEM; anything unknown), how long to wait (initial, doubling up to max while
// failures go on), and which failures to report so that an episode logs two lines, not thousands:
// its first failure, then a recovery with the count. An episode ends at the first connection
// served `settle` or more after its last failure: while descriptors stay scarce, connections that
// close now and then free one for a moment, and each such accept must not start a new episode.
//
// Thread safety: none; one listener's strand owns one accept_backoff.
#pragma once

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace twinhub::net {

enum class accept_error_kind {
    // The connection failed between the kernel's handshake and accept() (ECONNABORTED, EPROTO,
    // EPERM from a firewall rule, network errors accept(2) says to treat like EAGAIN): accept the
    // next one at once.
    connection_lost,
    // The process or the system is out of descriptors, buffers or memory: wait, then accept again.
    resource_exhausted,
    // Anything else (EBADF, EINVAL, unknown): also wait and retry; a listener never gives up.
    other,
};

accept_error_kind classify_accept_error(const boost::system::error_code& ec) noexcept;

struct backoff_policy {
    std::chrono::milliseconds initial{10};
    std::chrono::milliseconds max{1000};
    // This many connection_lost errors in a row, without an accept in between, are treated as a
    // failure (so that an error misclassified as per-connection cannot spin the loop).
    unsigned max_lost_in_a_row = 64;
    // A connection served this long after the last failure ends the episode.
    std::chrono::milliseconds settle{1000};
};

class accept_backoff {
public:
    using clock = std::chrono::steady_clock;

    using policy = backoff_policy;

    // What to do after a failure: wait `delay`, and log the failure when `report` (the first of an
    // episode).
    struct step {
        std::chrono::milliseconds delay;
        bool report;
    };

    // The end of an episode: `failures` in all (the first reported, the rest suppressed), over
    // `lasted`; `last_cause` is the cause of the last one.
    struct recovery {
        std::uint64_t failures;
        std::chrono::milliseconds lasted;
        std::string first_cause;
        std::string last_cause;
    };

    explicit accept_backoff(policy p = {}) noexcept : policy_(p) {}

    // A failed accept (or a connection that could not be set up). The first failure of an episode
    // waits policy.initial and is reported; each further one doubles the wait, up to policy.max
    // (accepts that succeed in between do not reset it: only the end of the episode does).
    step failed(std::string_view cause, clock::time_point now);

    // A connection_lost error: true when it should be handled as failed() (too many in a row).
    bool lost_connection() noexcept;

    // A connection accepted and handed over (the next accept follows at once). Ends the episode,
    // if one is going on and its last failure is policy.settle old or more, and returns it.
    std::optional<recovery> served(clock::time_point now);

    bool failing() const noexcept { return failures_ != 0; }
    std::uint64_t failures() const noexcept { return failures_; }

private:
    policy policy_;
    std::uint64_t failures_ = 0;
    unsigned lost_in_a_row_ = 0;
    std::chrono::milliseconds delay_{0};
    clock::time_point started_{};
    clock::time_point last_failure_{};
    std::string first_cause_;
    std::string last_cause_;
};

}  // namespace twinhub::net
