// A SQLite VFS for power-loss tests, in the manner of SQLite's own crash tests (src/test6.c): a shim
// over the real "unix" VFS that passes every call through and remembers, for each file, what has
// been written or truncated since that file was last fsynced (the page cache, which kill -9 leaves
// intact and a power cut does not). crash() cuts the power: from then on every I/O through the
// shim fails, so the connections that are still open can neither write, sync, checkpoint nor
// delete anything while they are closed. power_cycle() then plays the reboot: each file goes back
// to its last synced content, and each write since (in the order they were made) is kept whole,
// dropped, or torn (only some of its 512-byte sectors reach the disk), chosen from a seed; the
// -shm files are deleted (shared memory does not survive a reboot). Self-test modes make the shim
// a disk whose syncs lie (all of them, or the database file's only) or claim the store's
// "PRAGMA synchronous = FULL", so that a test can show its checker catches the loss.
//
// The shim's record is the disk: xSync does not call the real fsync (the files are never really
// power-cycled, so it would only slow the test down); what a sync makes durable is what the shim
// keeps at power_cycle().
//
// What is modelled: unsynced data and size of every named file SQLite opens (database, WAL,
// rollback journal), lost or reordered at sector granularity, each file independently; a sync that
// returned before the cut covers every write to that file (through any connection) that returned
// before the sync began. The shim keeps SQLite's powersafe-overwrite promise (bytes outside a
// write's range are never damaged), as the unix VFS declares it.
// What is not: directory entries (a create, delete or rename is durable at once; on a real disk
// the unix VFS fsyncs the directory of a new WAL or journal at its first sync), garbage in torn sectors, mmap I/O (the
// shim offers no xFetch, so SQLite reads through xRead), and files SQLite opens without a name.
//
// Thread safety: every member function may be called from any thread; power_cycle() only while no
// file is open through the shim (every connection that used it is closed).
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace twinhub::store::testing {

class powerloss_vfs {
public:
    static constexpr const char* name = "twinhub-powerloss";
    static constexpr std::int64_t sector_size = 512;

    // What an armed trigger is shown, before the shim performs the I/O.
    struct io_event {
        enum class kind { write, truncate, sync } what;
        bool main_db = false;  // else the WAL or a journal
        bool wal = false;
        std::int64_t offset = 0;  // write: where; truncate: the new size
        std::int64_t size = 0;    // write: how many bytes
    };
    using trigger = std::function<bool(const io_event&)>;

    // Counters since construction (or reset_counters()).
    struct counters {
        std::uint64_t writes = 0;
        std::uint64_t db_writes = 0;     // writes to a main database file: checkpoints in WAL mode
        std::uint64_t db_syncs = 0;      // syncs of a main database file: completed checkpoints
        std::uint64_t wal_syncs = 0;
        std::uint64_t wal_starts = 0;    // writes of a WAL header (offset 0): a new or restarted WAL
        std::uint64_t wal_truncates = 0;
        std::uint64_t syncs = 0;
    };

    // What one power_cycle() did to the unsynced writes.
    struct cycle_report {
        std::uint64_t files = 0;  // files with unsynced changes
        std::uint64_t kept = 0, dropped = 0, torn = 0;  // writes and truncates
    };

    // What reaches the disk of the writes since each file's last sync.
    enum class loss {
        random,    // per file, from the seed: all, none, an in-order prefix with a torn write at its
                   // end, or each write whole, dropped or torn on its own
        drop_all,  // none of them (the page cache is simply gone)
        keep_all,  // all of them: what kill -9 leaves (the page cache survives)
    };

    // The shim, registered with SQLite on first use (not as the default).
    static powerloss_vfs& instance();

    // Makes the shim (or, with `on` false, the real VFS) SQLite's default, so that code that opens
    // with a null VFS name uses it.
    void make_default(bool on);

    // Cuts the power now: every later I/O through the shim fails with SQLITE_IOERR.
    void crash();
    bool crashed() const noexcept { return crashed_.load(); }
    // Cuts the power from inside the shim, just before the first I/O for which `t` returns true
    // (that I/O fails). A null trigger disarms. The trigger runs under the shim's lock: keep it short.
    void arm(trigger t);

    // After crash(), once every file opened through the shim is closed: applies the power cut to
    // the files as described above, choosing fates from `seed`, deletes the -shm files, forgets
    // every record and restores the power. Fails (returns an error message) if a file is still
    // open or a file cannot be restored.
    std::string power_cycle(std::uint64_t seed, loss how = loss::random, cycle_report* report = nullptr);

    // Forgets every record: what the files hold now counts as synced (a test's starting point).
    // Only while no file is open through the shim; returns false otherwise.
    bool forget_all();

    // Cuts the power and applies it to the files at once, with connections still open (the files
    // are restored under each file's lock, so an I/O in flight finishes first; every later one
    // fails). For a process that ends right after (powerloss_preload.cpp); the power stays off.
    std::string cut_power_now(std::uint64_t seed, loss how = loss::random, cycle_report* report = nullptr);

    // A self-test mode: every "PRAGMA synchronous = X" but OFF is claimed by the shim and ignored,
    // so a connection that set OFF first (see install_synchronous_off) keeps it. Lets a test show
    // that the harness catches a store that does not fsync, without changing the store.
    void set_ignore_synchronous(bool on) { ignore_synchronous_.store(on); }
    // Runs "PRAGMA synchronous = OFF" on every connection opened from now on (sqlite3_auto_extension);
    // `on` false removes it.
    static void install_synchronous_off(bool on);

    // A self-test mode, a disk that lies: every sync reports success and makes nothing durable.
    void set_sync_lies(bool on) { sync_lies_.store(on); }
    // The same for the main database files only (the WAL's syncs are honest): checkpoints then
    // copy pages that never reach the disk before the WAL starts over.
    void set_database_sync_lies(bool on) { database_sync_lies_.store(on); }

    counters stats() const;
    void reset_counters();
    int open_files() const noexcept { return open_files_.load(); }

    // ---- for the shim's callbacks (powerloss_vfs.cpp) ----
    struct file_record;
    struct file_handle;
    sqlite3_vfs* real() const noexcept { return real_; }

private:
    powerloss_vfs();

    friend struct shim;
    std::string restore_files(std::uint64_t seed, loss how, cycle_report* report);
    std::shared_ptr<file_record> record_for(const std::string& path, bool main_db, bool wal);
    void forget(const std::string& path);
    // Counts `e` and runs the armed trigger; returns false if the power is (now) off.
    bool admit(const io_event& e);

    sqlite3_vfs* real_;
    sqlite3_vfs vfs_{};
    std::atomic<bool> crashed_{false};
    std::atomic<bool> ignore_synchronous_{false};
    std::atomic<bool> sync_lies_{false};
    std::atomic<bool> database_sync_lies_{false};
    std::atomic<int> open_files_{0};

    mutable std::mutex m_;  // guards what follows; taken after a file_record's own mutex
    std::map<std::string, std::shared_ptr<file_record>> records_;
    trigger trigger_;
    counters counters_;
};

}  // namespace twinhub::store::testing
