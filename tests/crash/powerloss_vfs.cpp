#include "powerloss_vfs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <random>
#include <string_view>
#include <vector>

namespace twinhub::store::testing {

// Before-images are kept in blocks of this size; tearing works on powerloss_vfs::sector_size.
constexpr std::int64_t block_size = 4096;

// What the page cache holds for one file beyond its last synced content, shared by every handle
// of the file (an fsync through any descriptor flushes the inode).
struct powerloss_vfs::file_record {
    struct change {
        bool truncate = false;
        std::int64_t offset = 0;  // truncate: the new size
        std::string data;
    };

    // Serializes the writes, truncates and syncs of this file, so that a sync covers exactly the
    // changes recorded before it and a change is recorded and made as one step.
    std::mutex m;
    std::string path;
    bool main_db = false;
    bool wal = false;
    bool deleted = false;  // under powerloss_vfs::m_

    // Under m.
    bool dirty = false;
    std::int64_t synced_size = 0;
    std::map<std::int64_t, std::string> before;  // block index -> synced content (blocks below synced_size)
    std::vector<change> changes;                  // since the last sync, in order
};

// The sqlite3_file the shim hands to SQLite; the real VFS's file follows it in the same allocation.
struct powerloss_vfs::file_handle {
    sqlite3_file base;
    powerloss_vfs* vfs;
    std::shared_ptr<file_record> rec;  // null for a file opened without a name: passed through
    sqlite3_file* real;
};

namespace {

constexpr std::size_t handle_bytes = (sizeof(powerloss_vfs::file_handle) + 15) / 16 * 16;

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

// The sqlite3_vfs and sqlite3_io_methods callbacks.
struct shim {
    using file_handle = powerloss_vfs::file_handle;
    using file_record = powerloss_vfs::file_record;
    using io_event = powerloss_vfs::io_event;

    static file_handle* h(sqlite3_file* f) { return reinterpret_cast<file_handle*>(f); }
    static powerloss_vfs* self(sqlite3_vfs* v) { return static_cast<powerloss_vfs*>(v->pAppData); }

    // Before the first change since the last sync, remembers the synced size; then remembers the
    // synced content of every block in [from, to) that is not yet remembered. Under rec.m.
    static int note_change(file_record& r, sqlite3_file* real, std::int64_t from, std::int64_t to) {
        if (!r.dirty) {
            sqlite3_int64 size = 0;
            if (int rc = real->pMethods->xFileSize(real, &size); rc != SQLITE_OK) return rc;
            r.dirty = true;
            r.synced_size = size;
        }
        to = std::min(to, r.synced_size);
        for (std::int64_t b = from / block_size; b * block_size < to; ++b) {
            if (r.before.count(b)) continue;
            std::int64_t len = std::min(block_size, r.synced_size - b * block_size);
            std::string bytes(static_cast<std::size_t>(len), '\0');
            int rc = real->pMethods->xRead(real, bytes.data(), static_cast<int>(len), b * block_size);
            if (rc != SQLITE_OK) return rc;  // unchanged since the sync, and below its size: never short
            r.before.emplace(b, std::move(bytes));
        }
        return SQLITE_OK;
    }

    static io_event event(const file_handle& f, io_event::kind k, std::int64_t offset, std::int64_t size) {
        io_event e{k};
        e.main_db = f.rec && f.rec->main_db;
        e.wal = f.rec && f.rec->wal;
        e.offset = offset;
        e.size = size;
        return e;
    }

    // ---- io methods ----

    static int close(sqlite3_file* f) {
        auto* x = h(f);
        int rc = x->real->pMethods ? x->real->pMethods->xClose(x->real) : SQLITE_OK;
        x->vfs->open_files_.fetch_sub(1);
        x->~file_handle();
        return rc;
    }

    static int read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
        auto* x = h(f);
        if (x->vfs->crashed()) return SQLITE_IOERR_READ;
        return x->real->pMethods->xRead(x->real, buf, n, off);
    }

    static int write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
        auto* x = h(f);
        if (!x->rec) {
            if (!x->vfs->admit(event(*x, io_event::kind::write, off, n))) return SQLITE_IOERR_WRITE;
            return x->real->pMethods->xWrite(x->real, buf, n, off);
        }
        auto& r = *x->rec;
        std::lock_guard lock(r.m);
        if (!x->vfs->admit(event(*x, io_event::kind::write, off, n))) return SQLITE_IOERR_WRITE;
        if (int rc = note_change(r, x->real, off, off + n); rc != SQLITE_OK) return rc;
        r.changes.push_back({false, off, std::string(static_cast<const char*>(buf), static_cast<std::size_t>(n))});
        return x->real->pMethods->xWrite(x->real, buf, n, off);
    }

    static int truncate(sqlite3_file* f, sqlite3_int64 size) {
        auto* x = h(f);
        if (!x->rec) {
            if (!x->vfs->admit(event(*x, io_event::kind::truncate, size, 0))) return SQLITE_IOERR_TRUNCATE;
            return x->real->pMethods->xTruncate(x->real, size);
        }
        auto& r = *x->rec;
        std::lock_guard lock(r.m);
        if (!x->vfs->admit(event(*x, io_event::kind::truncate, size, 0))) return SQLITE_IOERR_TRUNCATE;
        if (int rc = note_change(r, x->real, size, INT64_MAX); rc != SQLITE_OK) return rc;
        r.changes.push_back({true, size, {}});
        return x->real->pMethods->xTruncate(x->real, size);
    }

    static int sync(sqlite3_file* f, int flags) {
        auto* x = h(f);
        if (!x->rec) {
            if (!x->vfs->admit(event(*x, io_event::kind::sync, 0, 0))) return SQLITE_IOERR_FSYNC;
            return SQLITE_OK;
        }
        auto& r = *x->rec;
        // Held across the sync: a write to this file waits, so the sync covers exactly what
        // is recorded now.
        std::lock_guard lock(r.m);
        if (!x->vfs->admit(event(*x, io_event::kind::sync, 0, 0))) return SQLITE_IOERR_FSYNC;
        (void)flags;  // the record is the disk: no real fsync (see the header)
        // The power went while the disk was flushing: the sync did not complete.
        if (x->vfs->crashed()) return SQLITE_IOERR_FSYNC;
        if (x->vfs->sync_lies_.load() || (r.main_db && x->vfs->database_sync_lies_.load())) return SQLITE_OK;
        r.dirty = false;
        r.before.clear();
        r.changes.clear();
        return SQLITE_OK;
    }

    static int file_size(sqlite3_file* f, sqlite3_int64* size) {
        auto* x = h(f);
        if (x->vfs->crashed()) return SQLITE_IOERR_FSTAT;
        return x->real->pMethods->xFileSize(x->real, size);
    }

    static int lock(sqlite3_file* f, int level) {
        auto* x = h(f);
        if (x->vfs->crashed()) return SQLITE_IOERR_LOCK;
        return x->real->pMethods->xLock(x->real, level);
    }

    static int unlock(sqlite3_file* f, int level) {
        auto* x = h(f);
        return x->real->pMethods->xUnlock(x->real, level);
    }

    static int check_reserved_lock(sqlite3_file* f, int* out) {
        auto* x = h(f);
        if (x->vfs->crashed()) return SQLITE_IOERR_CHECKRESERVEDLOCK;
        return x->real->pMethods->xCheckReservedLock(x->real, out);
    }

    static int file_control(sqlite3_file* f, int op, void* arg) {
        auto* x = h(f);
        // Hints that would let the real VFS grow the file behind the shim's back; both are optional.
        if (op == SQLITE_FCNTL_SIZE_HINT || op == SQLITE_FCNTL_CHUNK_SIZE) return SQLITE_OK;
        if (op == SQLITE_FCNTL_PRAGMA && x->vfs->ignore_synchronous_.load()) {
            auto** a = static_cast<char**>(arg);
            if (a[1] && a[2] && iequals(a[1], "synchronous") && !iequals(a[2], "off") && !iequals(a[2], "0"))
                return SQLITE_OK;  // claimed: SQLite does not apply it
        }
        return x->real->pMethods->xFileControl(x->real, op, arg);
    }

    static int sector_size(sqlite3_file* f) { return h(f)->real->pMethods->xSectorSize(h(f)->real); }

    static int device_characteristics(sqlite3_file* f) {
        return h(f)->real->pMethods->xDeviceCharacteristics(h(f)->real);
    }

    static int shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** p) {
        auto* x = h(f);
        if (x->vfs->crashed()) return SQLITE_IOERR_SHMMAP;
        return x->real->pMethods->xShmMap(x->real, region, size, extend, p);
    }

    static int shm_lock(sqlite3_file* f, int offset, int n, int flags) {
        auto* x = h(f);
        if (x->vfs->crashed() && !(flags & SQLITE_SHM_UNLOCK)) return SQLITE_IOERR_SHMLOCK;
        return x->real->pMethods->xShmLock(x->real, offset, n, flags);
    }

    static void shm_barrier(sqlite3_file* f) { h(f)->real->pMethods->xShmBarrier(h(f)->real); }

    static int shm_unmap(sqlite3_file* f, int delete_flag) {
        return h(f)->real->pMethods->xShmUnmap(h(f)->real, delete_flag);
    }

    // Version 2: shared memory, no xFetch/xUnfetch, so SQLite never reads through mmap.
    static constexpr sqlite3_io_methods methods = {
        2,         close,     read,      write,       truncate,   sync,
        file_size, lock,      unlock,    check_reserved_lock, file_control, sector_size,
        device_characteristics, shm_map, shm_lock, shm_barrier, shm_unmap, nullptr, nullptr,
    };

    // ---- vfs methods ----

    static int open(sqlite3_vfs* v, const char* name, sqlite3_file* f, int flags, int* out_flags) {
        auto* s = self(v);
        f->pMethods = nullptr;
        if (s->crashed()) return SQLITE_CANTOPEN;
        auto* x = new (f) file_handle{};
        x->vfs = s;
        x->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + handle_bytes);
        std::memset(x->real, 0, static_cast<std::size_t>(s->real()->szOsFile));
        int rc = s->real()->xOpen(s->real(), name, x->real, flags, out_flags);
        if (rc != SQLITE_OK) {
            if (x->real->pMethods) x->real->pMethods->xClose(x->real);
            x->~file_handle();
            f->pMethods = nullptr;
            return rc;
        }
        constexpr int durable = SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL |
                                SQLITE_OPEN_SUPER_JOURNAL;
        if (name && (flags & durable) && !(flags & SQLITE_OPEN_DELETEONCLOSE))
            x->rec = s->record_for(name, (flags & SQLITE_OPEN_MAIN_DB) != 0, (flags & SQLITE_OPEN_WAL) != 0);
        s->open_files_.fetch_add(1);
        x->base.pMethods = &methods;
        return SQLITE_OK;
    }

    static int remove(sqlite3_vfs* v, const char* name, int sync_dir) {
        auto* s = self(v);
        if (s->crashed()) return SQLITE_IOERR_DELETE;
        s->forget(name);
        return s->real()->xDelete(s->real(), name, sync_dir);
    }

    static int access(sqlite3_vfs* v, const char* name, int flags, int* out) {
        return self(v)->real()->xAccess(self(v)->real(), name, flags, out);
    }
    static int full_pathname(sqlite3_vfs* v, const char* name, int n, char* out) {
        return self(v)->real()->xFullPathname(self(v)->real(), name, n, out);
    }
    static void* dl_open(sqlite3_vfs* v, const char* name) { return self(v)->real()->xDlOpen(self(v)->real(), name); }
    static void dl_error(sqlite3_vfs* v, int n, char* out) { self(v)->real()->xDlError(self(v)->real(), n, out); }
    static void (*dl_sym(sqlite3_vfs* v, void* lib, const char* sym))(void) {
        return self(v)->real()->xDlSym(self(v)->real(), lib, sym);
    }
    static void dl_close(sqlite3_vfs* v, void* lib) { self(v)->real()->xDlClose(self(v)->real(), lib); }
    static int randomness(sqlite3_vfs* v, int n, char* out) {
        return self(v)->real()->xRandomness(self(v)->real(), n, out);
    }
    static int sleep(sqlite3_vfs* v, int us) { return self(v)->real()->xSleep(self(v)->real(), us); }
    static int current_time(sqlite3_vfs* v, double* t) { return self(v)->real()->xCurrentTime(self(v)->real(), t); }
    static int last_error(sqlite3_vfs* v, int n, char* out) {
        return self(v)->real()->xGetLastError(self(v)->real(), n, out);
    }
    static int current_time_int64(sqlite3_vfs* v, sqlite3_int64* t) {
        return self(v)->real()->xCurrentTimeInt64(self(v)->real(), t);
    }
};

powerloss_vfs::powerloss_vfs() : real_(sqlite3_vfs_find("unix")) {
    if (!real_) real_ = sqlite3_vfs_find(nullptr);
    vfs_.iVersion = 2;
    vfs_.szOsFile = static_cast<int>(handle_bytes) + real_->szOsFile;
    vfs_.mxPathname = real_->mxPathname;
    vfs_.zName = name;
    vfs_.pAppData = this;
    vfs_.xOpen = shim::open;
    vfs_.xDelete = shim::remove;
    vfs_.xAccess = shim::access;
    vfs_.xFullPathname = shim::full_pathname;
    vfs_.xDlOpen = shim::dl_open;
    vfs_.xDlError = shim::dl_error;
    vfs_.xDlSym = shim::dl_sym;
    vfs_.xDlClose = shim::dl_close;
    vfs_.xRandomness = shim::randomness;
    vfs_.xSleep = shim::sleep;
    vfs_.xCurrentTime = shim::current_time;
    vfs_.xGetLastError = shim::last_error;
    vfs_.xCurrentTimeInt64 = shim::current_time_int64;
    sqlite3_vfs_register(&vfs_, 0);
}

powerloss_vfs& powerloss_vfs::instance() {
    static powerloss_vfs* v = new powerloss_vfs();  // registered with SQLite for the whole process
    return *v;
}

void powerloss_vfs::make_default(bool on) { sqlite3_vfs_register(on ? &vfs_ : real_, 1); }

void powerloss_vfs::crash() { crashed_.store(true); }

void powerloss_vfs::arm(trigger t) {
    std::lock_guard lock(m_);
    trigger_ = std::move(t);
}

bool powerloss_vfs::admit(const io_event& e) {
    std::lock_guard lock(m_);
    if (crashed_.load()) return false;
    if (trigger_ && trigger_(e)) {
        trigger_ = {};
        crashed_.store(true);
        return false;
    }
    switch (e.what) {
    case io_event::kind::write:
        ++counters_.writes;
        if (e.main_db) ++counters_.db_writes;
        if (e.wal && e.offset == 0) ++counters_.wal_starts;
        break;
    case io_event::kind::truncate:
        if (e.wal) ++counters_.wal_truncates;
        break;
    case io_event::kind::sync:
        ++counters_.syncs;
        if (e.main_db) ++counters_.db_syncs;
        if (e.wal) ++counters_.wal_syncs;
        break;
    }
    return true;
}

std::shared_ptr<powerloss_vfs::file_record> powerloss_vfs::record_for(const std::string& path, bool main_db, bool wal) {
    std::lock_guard lock(m_);
    auto& r = records_[path];
    if (!r) {
        r = std::make_shared<file_record>();
        r->path = path;
        r->main_db = main_db;
        r->wal = wal;
    }
    return r;
}

void powerloss_vfs::forget(const std::string& path) {
    std::lock_guard lock(m_);
    auto it = records_.find(path);
    if (it == records_.end()) return;
    it->second->deleted = true;  // a handle may still hold it; the path is no longer its file
    records_.erase(it);
}

bool powerloss_vfs::forget_all() {
    if (open_files_.load() != 0) return false;
    std::lock_guard lock(m_);
    records_.clear();
    return true;
}

powerloss_vfs::counters powerloss_vfs::stats() const {
    std::lock_guard lock(m_);
    return counters_;
}

void powerloss_vfs::reset_counters() {
    std::lock_guard lock(m_);
    counters_ = {};
}

namespace {

enum class fate { keep, drop, tear };

// Writes the sectors of [data, offset) that `keep(sector_index)` selects.
template <class Keep>
bool write_sectors(int fd, const std::string& data, std::int64_t offset, Keep&& keep) {
    const std::int64_t end = offset + static_cast<std::int64_t>(data.size());
    std::int64_t i = 0;
    for (std::int64_t s = offset / powerloss_vfs::sector_size; s * powerloss_vfs::sector_size < end; ++s, ++i) {
        std::int64_t from = std::max(offset, s * powerloss_vfs::sector_size);
        std::int64_t to = std::min(end, (s + 1) * powerloss_vfs::sector_size);
        if (!keep(i)) continue;
        auto n = static_cast<std::size_t>(to - from);
        if (::pwrite(fd, data.data() + (from - offset), n, from) != static_cast<ssize_t>(n)) return false;
    }
    return true;
}

}  // namespace

std::string powerloss_vfs::power_cycle(std::uint64_t seed, loss how, cycle_report* report) {
    if (int n = open_files_.load(); n != 0) return std::to_string(n) + " files are still open through the shim";
    auto failure = restore_files(seed, how, report);
    crashed_.store(false);
    return failure;
}

std::string powerloss_vfs::cut_power_now(std::uint64_t seed, loss how, cycle_report* report) {
    return restore_files(seed, how, report);
}

std::string powerloss_vfs::restore_files(std::uint64_t seed, loss how, cycle_report* report) {
    crashed_.store(true);
    std::mt19937_64 rng(seed);
    cycle_report rep;
    std::map<std::string, std::shared_ptr<file_record>> records;
    {
        std::lock_guard lock(m_);
        records.swap(records_);
        trigger_ = {};
    }
    std::string failure;
    auto fail = [&](const std::string& what, const std::string& path) {
        if (failure.empty()) failure = what + " '" + path + "': " + std::strerror(errno);
    };
    for (auto& [path, rec] : records) {
        std::lock_guard file_lock(rec->m);
        if (!rec->dirty) continue;
        ++rep.files;
        int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            fail("cannot open", path);
            continue;
        }
        // Back to the synced content...
        for (auto& [b, bytes] : rec->before)
            if (::pwrite(fd, bytes.data(), bytes.size(), b * block_size) != static_cast<ssize_t>(bytes.size()))
                fail("cannot restore", path);
        if (::ftruncate(fd, rec->synced_size) != 0) fail("cannot restore the size of", path);
        // ...then what of each change since reached the disk, in the order they were made. A
        // profile per file: as kill -9 (everything), nothing, writeback in order cut at one point,
        // or each change on its own.
        const auto n = rec->changes.size();
        const int profile = how == loss::keep_all ? 0 : how == loss::drop_all ? 1 : static_cast<int>(rng() % 4);
        const std::size_t cut = static_cast<std::size_t>(rng() % (n + 1));
        for (std::size_t i = 0; i < n; ++i) {
            auto& c = rec->changes[i];
            fate f = profile == 0   ? fate::keep
                     : profile == 1 ? fate::drop
                     : profile == 2 ? (i < cut ? fate::keep : i == cut ? fate::tear : fate::drop)
                                    : static_cast<fate>(rng() % 3);
            const std::int64_t sectors =
                c.truncate ? 0
                           : (c.offset + static_cast<std::int64_t>(c.data.size()) - 1) / sector_size -
                                 c.offset / sector_size + 1;
            if (f == fate::tear && sectors < 2) f = fate::drop;  // one sector is written whole or not at all
            if (c.truncate) {
                if (f == fate::tear) f = fate::keep;
                if (f == fate::keep && ::ftruncate(fd, c.offset) != 0) fail("cannot truncate", path);
            } else if (f == fate::keep) {
                if (!write_sectors(fd, c.data, c.offset, [](std::int64_t) { return true; })) fail("cannot write", path);
            } else if (f == fate::tear) {
                // A prefix (in-order writeback), or any subset of the sectors (a disk that reorders).
                bool ok;
                if (rng() % 2) {
                    auto keep = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(sectors));
                    ok = write_sectors(fd, c.data, c.offset, [&](std::int64_t s) { return s < keep; });
                } else {
                    ok = write_sectors(fd, c.data, c.offset, [&](std::int64_t) { return rng() % 2 == 0; });
                }
                if (!ok) fail("cannot write", path);
            }
            ++(f == fate::keep ? rep.kept : f == fate::drop ? rep.dropped : rep.torn);
        }
        ::close(fd);
    }
    // Shared memory does not survive the reboot.
    for (auto& [path, rec] : records)
        if (rec->main_db && ::unlink((path + "-shm").c_str()) != 0 && errno != ENOENT) fail("cannot delete", path + "-shm");
    if (report) *report = rep;
    return failure;
}

namespace {

int synchronous_off(sqlite3* db, char**, const sqlite3_api_routines*) {
    return sqlite3_exec(db, "PRAGMA synchronous = OFF", nullptr, nullptr, nullptr);
}

}  // namespace

void powerloss_vfs::install_synchronous_off(bool on) {
    auto entry = reinterpret_cast<void (*)()>(&synchronous_off);
    if (on) sqlite3_auto_extension(entry);
    else sqlite3_cancel_auto_extension(entry);
}

}  // namespace twinhub::store::testing
