// The power-loss harness of tests/crash/store_powerloss_test.cpp: runs the SQLite store over
// powerloss_vfs (which must be SQLite's default VFS), writes to every part of it from several
// threads (twins, the identity registry, the telemetry log, the C2D queues), cuts the power at a
// chosen kind of moment, power-cycles the files, reopens the store and checks it against what was
// acknowledged; round after round on the same files.
//
// Thread safety: one run at a time per process (the shim is process-wide).
#pragma once

#include "powerloss_vfs.hpp"

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace twinhub::store::testing {

// Where a round cuts the power. after_acks cuts from outside (a moment in steady writing); the
// others from inside the shim, just before the chosen I/O (which fails).
enum class cut { after_acks, at_write, at_wal_sync, in_checkpoint, at_checkpoint_sync, at_wal_restart,
                 after_wal_restart, at_wal_truncate, count };
inline constexpr const char* cut_names[] = {"after_acks",     "at_write",          "at_wal_sync",
                                            "in_checkpoint",  "at_checkpoint_sync", "at_wal_restart",
                                            "after_wal_restart", "at_wal_truncate"};

// Arms the shim to cut the power at a random instance of `c` (after_acks: disarms; the caller
// cuts). The instance is drawn from `rng`.
void arm_cut(cut c, std::mt19937_64& rng);

// Content derived from (tag, n), so that a checker can tell a stored value is exactly the one
// written without keeping it.
std::string pad(const std::string& tag, std::uint64_t n, std::size_t len);

// PRAGMA integrity_check of the database at `path` through a connection of its own: "ok" or what
// SQLite reports.
std::string integrity_check(const std::string& path);

struct run_options {
    std::uint64_t seed = 1;
    int rounds = 100;
    powerloss_vfs::loss how = powerloss_vfs::loss::random;
    bool only_after_acks = false;
    std::uint64_t cut_after_acks = 0;  // after_acks cuts after this many (0: a random number)
    std::uint64_t each_part_acks = 0;  // ...and once every part of the store has had this many
    std::uint64_t max_acks = 400;  // a round whose trigger has not fired by then is cut anyway
    // Counts the set-up as on disk even if it was never synced (the self-tests, whose store does
    // not fsync: so that what they catch is the loss of acknowledged writes, not of the set-up).
    bool setup_on_disk = false;
};

struct run_report {
    std::vector<std::string> problems;  // "round N (cut): ..."
    int rounds = 0;
    std::uint64_t acks = 0, checked = 0;  // acknowledged writes; acknowledged writes the checker held the store to
    std::array<int, static_cast<std::size_t>(cut::count)> fired{};
    int fallback = 0;
    powerloss_vfs::counters io;
    powerloss_vfs::cycle_report lost;
};

// Runs opt.rounds power cuts on the store at dir/store.db (created), then checks the last one and
// that the store takes a new write. Stops at the first round with a problem.
run_report run_power_cuts(const std::string& dir, const run_options& opt);

// One line: cuts, acknowledged writes, records checked, problems, what the cuts did.
std::string summary(const run_report& r);

}  // namespace twinhub::store::testing
