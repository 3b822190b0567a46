// Power-loss tests of the SQLite store (issue 12): the production store runs unchanged over
// powerloss_vfs, which remembers what each file has not yet fsynced; the power is cut at random
// moments (and at chosen ones: inside a commit's WAL sync, in the middle of a checkpoint, at its
// database sync, at a WAL restart), the unsynced writes are dropped, kept or torn, the -shm is
// deleted, and the store is reopened from what is left. Every write whose completion reported
// success must be there, exactly, in every part of the store (twins, the identity registry, the
// telemetry log, the C2D queues); the database must pass integrity_check and accept new writes.
// The self-tests run the same checker over a store that does not fsync and show that it catches
// the loss, which kill -9 (the page cache survives) does not.
//
// TWINHUB_POWERLOSS_SEED=<n> replays a run's choices (cut points, which writes are lost; thread
// timing still varies); TWINHUB_POWERLOSS_ROUNDS=<n> runs more cuts. The model, the checker and
// the writers are in powerloss_harness.cpp.
#include "powerloss_harness.hpp"
#include "../unit/store/test_dir.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace twinhub::store {
namespace {

using testing::cut;
using testing::cut_names;
using testing::powerloss_vfs;
using testing::run_options;
using testing::run_power_cuts;
using testing::run_report;
using testing::summary;

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

// The self-tests' verdict: the checker reported acknowledged writes lost in each part of the store.
void expect_loss_in_every_part(const run_report& r) {
    for (const char* part : {"twin ", "identity ", "partition ", "C2D "}) {
        bool found = false;
        for (auto& p : r.problems)
            found = found || (p.find(part) != std::string::npos && p.find("lost") != std::string::npos);
        EXPECT_TRUE(found) << "no lost write reported for " << part << (r.problems.empty() ? "" : r.problems.back());
    }
}

class store_powerloss : public ::testing::Test {
protected:
    void SetUp() override {
        auto& v = powerloss_vfs::instance();
        ASSERT_TRUE(v.forget_all()) << "a file of an earlier test is still open";
        v.make_default(true);
    }
    void TearDown() override {
        auto& v = powerloss_vfs::instance();
        v.make_default(false);
        v.set_sync_lies(false);
        v.set_database_sync_lies(false);
        v.set_ignore_synchronous(false);
        powerloss_vfs::install_synchronous_off(false);
    }
};

TEST_F(store_powerloss, every_acknowledged_write_survives_random_power_cuts) {
    const auto seed = env_or("TWINHUB_POWERLOSS_SEED", std::random_device{}());
    testing::test_dir dir;
    run_options o;
    o.seed = seed;
    o.rounds = static_cast<int>(env_or("TWINHUB_POWERLOSS_ROUNDS", 200));
    auto r = run_power_cuts(dir.path().string(), o);
    std::printf("seed %llu: %s\n", static_cast<unsigned long long>(seed), summary(r).c_str());
    std::string all;
    for (auto& p : r.problems) all += "\n  " + p;
    ASSERT_TRUE(r.problems.empty()) << "TWINHUB_POWERLOSS_SEED=" << seed << " reproduces:" << all;
    EXPECT_EQ(r.rounds, o.rounds);
    // The cuts that the issue names did happen: mid-checkpoint, at a checkpoint's sync, at and just
    // after a WAL restart, and inside a commit's WAL sync.
    for (auto c : {cut::at_wal_sync, cut::in_checkpoint, cut::at_checkpoint_sync, cut::at_wal_restart,
                   cut::after_wal_restart, cut::at_wal_truncate})
        EXPECT_GT(r.fired[static_cast<std::size_t>(c)], 0) << cut_names[static_cast<int>(c)] << ", seed " << seed;
    EXPECT_GT(r.io.wal_starts, 0u);
    EXPECT_GT(r.io.wal_truncates, 0u);
    EXPECT_GT(r.io.db_syncs, 0u);
    EXPECT_GT(r.lost.dropped + r.lost.torn, 0u) << "the cuts lost no unsynced write: they tested nothing";
    RecordProperty("power_cuts", r.rounds);
    RecordProperty("acknowledged_writes", static_cast<int>(r.acks));
    RecordProperty("records_checked", static_cast<int>(r.checked));
}

// The checker catches loss: a store whose connections run with synchronous=OFF (the shim claims
// the store's own "PRAGMA synchronous = FULL") acknowledges writes that never reach the disk, and
// a power cut that drops the page cache loses them.
TEST_F(store_powerloss, detects_the_loss_of_a_store_that_does_not_fsync) {
    auto& v = powerloss_vfs::instance();
    powerloss_vfs::install_synchronous_off(true);
    v.set_ignore_synchronous(true);
    testing::test_dir dir;
    run_options o;
    o.seed = env_or("TWINHUB_POWERLOSS_SEED", 7);
    o.rounds = 3;
    o.how = powerloss_vfs::loss::drop_all;
    o.only_after_acks = true;
    o.cut_after_acks = 200;
    o.each_part_acks = 10;
    o.max_acks = 100000;  // a starved writer (a loaded machine) gets its turn
    o.setup_on_disk = true;
    auto r = run_power_cuts(dir.path().string(), o);
    for (std::size_t i = 0; i < r.problems.size() && i < 3; ++i) std::printf("  caught: %s\n", r.problems[i].c_str());
    std::printf("synchronous=OFF, page cache dropped: %s\n", summary(r).c_str());
    ASSERT_FALSE(r.problems.empty()) << "the checker missed the loss of writes that were never synced";
    expect_loss_in_every_part(r);
    EXPECT_EQ(r.io.syncs, 0u) << "the store fsynced although synchronous was OFF";
}

// The same store survives kill -9 (the page cache is kept): the reason power loss needs its own test.
TEST_F(store_powerloss, a_store_that_does_not_fsync_passes_when_the_page_cache_survives) {
    auto& v = powerloss_vfs::instance();
    powerloss_vfs::install_synchronous_off(true);
    v.set_ignore_synchronous(true);
    testing::test_dir dir;
    run_options o;
    o.seed = env_or("TWINHUB_POWERLOSS_SEED", 7);
    o.rounds = 10;
    o.how = powerloss_vfs::loss::keep_all;
    auto r = run_power_cuts(dir.path().string(), o);
    std::string all;
    for (auto& p : r.problems) all += "\n  " + p;
    EXPECT_TRUE(r.problems.empty()) << all;
    EXPECT_GT(r.acks, 0u);
}

// The checker catches a disk that acknowledges fsync and keeps the data in its volatile cache.
TEST_F(store_powerloss, detects_the_loss_on_a_disk_whose_sync_lies) {
    auto& v = powerloss_vfs::instance();
    v.set_sync_lies(true);
    testing::test_dir dir;
    run_options o;
    o.seed = env_or("TWINHUB_POWERLOSS_SEED", 11);
    o.rounds = 3;
    o.how = powerloss_vfs::loss::drop_all;
    o.only_after_acks = true;
    o.cut_after_acks = 200;
    o.each_part_acks = 10;
    o.max_acks = 100000;  // a starved writer (a loaded machine) gets its turn
    o.setup_on_disk = true;
    auto r = run_power_cuts(dir.path().string(), o);
    for (std::size_t i = 0; i < r.problems.size() && i < 3; ++i) std::printf("  caught: %s\n", r.problems[i].c_str());
    std::printf("lying sync, page cache dropped: %s\n", summary(r).c_str());
    ASSERT_FALSE(r.problems.empty()) << "the checker missed the loss of writes that were never synced";
    expect_loss_in_every_part(r);
    EXPECT_GT(r.io.syncs, 0u);
}

// The checkpoint and WAL-restart cuts matter: when only the database file's syncs lie (the WAL's
// are honest, so every commit is on disk), what a checkpoint copied is lost once the WAL has
// started over, and the checker reports acknowledged writes lost (or a damaged database).
TEST_F(store_powerloss, detects_the_loss_when_checkpoints_do_not_reach_the_disk) {
    powerloss_vfs::instance().set_database_sync_lies(true);
    testing::test_dir dir;
    run_options o;
    o.seed = env_or("TWINHUB_POWERLOSS_SEED", 13);
    o.rounds = 40;
    o.how = powerloss_vfs::loss::drop_all;
    o.setup_on_disk = true;
    auto r = run_power_cuts(dir.path().string(), o);
    std::printf("database syncs lie, page cache dropped: %s\n", summary(r).c_str());
    for (std::size_t i = 0; i < r.problems.size() && i < 3; ++i) std::printf("  caught: %s\n", r.problems[i].c_str());
    ASSERT_FALSE(r.problems.empty()) << "the checker missed the loss of checkpointed pages";
    EXPECT_TRUE(std::any_of(r.problems.begin(), r.problems.end(),
                            [](auto& p) { return p.find("lost") != std::string::npos ||
                                                 p.find("integrity_check") != std::string::npos ||
                                                 p.find("malformed") != std::string::npos; }))
        << r.problems.front();
}

}  // namespace
}  // namespace twinhub::store
