// The SQLite store's internals, shared by its translation units: sqlite_store.cpp (the commit
// pipeline and open_sqlite_store), sqlite_apply.cpp (one write op as SQL), sqlite_load.cpp (start-up
// loads and event reads) and sqlite_schema.cpp (migrations and connection set-up). Not installed.
#pragma once

#include "store/sqlite_store.hpp"
#include "common/log.hpp"
#include "store/commit_queue.hpp"
#include "store/conditions.hpp"
#include "store/sqlite_db.hpp"
#include "store/store_codec.hpp"

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace twinhub::store::sqlite_detail {

// Cached statements; the cache is keyed by these addresses (inline arrays: one address in every
// translation unit).
inline constexpr char q_begin[] = "BEGIN IMMEDIATE";
inline constexpr char q_commit[] = "COMMIT";
inline constexpr char q_rollback[] = "ROLLBACK";
inline constexpr char q_savepoint[] = "SAVEPOINT b";
inline constexpr char q_release[] = "RELEASE b";
inline constexpr char q_rollback_to[] = "ROLLBACK TO b";
inline constexpr char q_policy_put[] =
    "INSERT INTO policies (key_name, doc) VALUES (?1, ?2) ON CONFLICT (key_name) DO UPDATE SET doc = excluded.doc";
inline constexpr char q_policy_delete[] = "DELETE FROM policies WHERE key_name = ?1";
inline constexpr char q_device_get[] = "SELECT etag FROM devices WHERE device_id = ?1";
inline constexpr char q_device_put[] =
    "INSERT INTO devices (device_id, etag, doc) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (device_id) DO UPDATE SET etag = excluded.etag, doc = excluded.doc";
inline constexpr char q_device_delete[] = "DELETE FROM devices WHERE device_id = ?1";
inline constexpr char q_device_modules_delete[] = "DELETE FROM modules WHERE device_id = ?1";
inline constexpr char q_device_twins_delete[] = "DELETE FROM twins WHERE device_id = ?1";
inline constexpr char q_device_sessions_delete[] = "DELETE FROM sessions WHERE device_id = ?1";
inline constexpr char q_module_get[] = "SELECT etag FROM modules WHERE device_id = ?1 AND module_id = ?2";
inline constexpr char q_module_put[] =
    "INSERT INTO modules (device_id, module_id, etag, doc) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (device_id, module_id) DO UPDATE SET etag = excluded.etag, doc = excluded.doc";
inline constexpr char q_module_delete[] = "DELETE FROM modules WHERE device_id = ?1 AND module_id = ?2";
inline constexpr char q_twin_delete[] = "DELETE FROM twins WHERE device_id = ?1 AND module_id = ?2";
inline constexpr char q_twin_update[] =
    "UPDATE twins SET version = ?3, doc = ?4 WHERE device_id = ?1 AND module_id = ?2 AND (?5 IS NULL OR version = ?5)";
inline constexpr char q_twin_get[] = "SELECT version FROM twins WHERE device_id = ?1 AND module_id = ?2";
inline constexpr char q_twin_insert[] = "INSERT INTO twins (device_id, module_id, version, doc) VALUES (?1, ?2, ?3, ?4)";
inline constexpr char q_session_put[] =
    "INSERT INTO sessions (client_id, device_id, doc) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (client_id) DO UPDATE SET device_id = excluded.device_id, doc = excluded.doc";
inline constexpr char q_session_delete[] = "DELETE FROM sessions WHERE client_id = ?1";
inline constexpr char q_event_put[] =
    "INSERT INTO events (part, seq, device_id, module_id, enqueued_ns, body, props) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
inline constexpr char q_event_max[] = "SELECT part, MAX(seq) FROM events GROUP BY part";
// Retention: the oldest rows before a time, never the partition's last (?3 is its sequence number).
inline constexpr char q_event_trim[] =
    "DELETE FROM events WHERE part = ?1 AND seq IN "
    "(SELECT seq FROM events WHERE part = ?1 AND seq < ?3 AND enqueued_ns < ?2 ORDER BY seq LIMIT ?4)";
inline constexpr char q_setting_put[] =
    "INSERT INTO settings (key, doc) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET doc = excluded.doc";
inline constexpr char q_setting_delete[] = "DELETE FROM settings WHERE key = ?1";
inline constexpr char q_load_settings[] = "SELECT key, doc FROM settings ORDER BY key";
inline constexpr char q_c2d_put[] =
    "INSERT INTO c2d (seq, device_id, module_id, enqueued_ns, expiry_ns, ack, delivery_count, body, props) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
inline constexpr char q_c2d_update[] = "UPDATE c2d SET delivery_count = ?2 WHERE seq = ?1";
inline constexpr char q_c2d_delete[] = "DELETE FROM c2d WHERE seq = ?1";
inline constexpr char q_device_c2d_delete[] = "DELETE FROM c2d WHERE device_id = ?1";
inline constexpr char q_module_c2d_delete[] = "DELETE FROM c2d WHERE device_id = ?1 AND module_id = ?2";
inline constexpr char q_feedback_put[] = "INSERT INTO feedback (seq, doc) VALUES (?1, ?2)";
inline constexpr char q_feedback_delete[] = "DELETE FROM feedback WHERE seq = ?1";
inline constexpr char q_load_c2d[] =
    "SELECT seq, device_id, module_id, enqueued_ns, expiry_ns, ack, delivery_count, body, props FROM c2d ORDER BY seq";
inline constexpr char q_load_feedback[] = "SELECT seq, doc FROM feedback ORDER BY seq";
inline constexpr char q_c2d_next[] = "SELECT name, seq FROM sqlite_sequence WHERE name IN ('c2d', 'feedback')";
inline constexpr char q_load_policies[] = "SELECT key_name, doc FROM policies ORDER BY key_name";
inline constexpr char q_load_devices[] =
    "SELECT d.device_id, d.doc, t.doc FROM devices d "
    "LEFT JOIN twins t ON t.device_id = d.device_id AND t.module_id = '' ORDER BY d.device_id";
inline constexpr char q_load_modules[] =
    "SELECT m.device_id || '/' || m.module_id, m.doc, t.doc FROM modules m "
    "LEFT JOIN twins t ON t.device_id = m.device_id AND t.module_id = m.module_id ORDER BY m.device_id, m.module_id";
inline constexpr char q_load_sessions[] = "SELECT client_id, doc FROM sessions ORDER BY client_id";
inline constexpr char q_read_events[] =
    "SELECT seq, device_id, module_id, enqueued_ns, body, props FROM events "
    "WHERE part = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3";
inline constexpr char q_event_bounds[] =
    "SELECT (SELECT MIN(seq) FROM events WHERE part = ?1), seq, enqueued_ns FROM events WHERE part = ?1 "
    "ORDER BY seq DESC LIMIT 1";
inline constexpr char q_read_begin[] = "BEGIN";
inline constexpr char q_read_end[] = "COMMIT";

inline constexpr std::size_t max_group = 2048;

// WAL checkpoints: SQLite's own auto-checkpoint (the whole backlog, inside the writer's COMMIT) is
// off. A checkpoint thread with its own connection copies pages to the database file (PASSIVE: it
// never blocks the writer) whenever checkpoint_pages new pages are in the WAL (SQLite's default
// auto-checkpoint threshold). Under sustained writes such a checkpoint never quite completes, and
// the WAL only starts over from its beginning after a complete one; so once the WAL holds
// writer_checkpoint_pages, the writer checkpoints (PASSIVE) between commits itself, which copies
// only what the background checkpoints have not, and the WAL restarts at the next commit.
// (sqlite_open_options::checkpoint_pages: tests lower it to checkpoint and restart the WAL often.)

// ---- binding helpers --------------------------------------------------------------------------

// Named apart from each other and from std::bind, which ADL would otherwise pick for std::string.
inline void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}
inline void bind_int(sqlite3_stmt* s, int i, std::int64_t v) { sqlite3_bind_int64(s, i, v); }
inline void bind_blob(sqlite3_stmt* s, int i, std::string_view v) {
    sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

inline std::string_view column_text(sqlite3_stmt* s, int i) {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : std::string_view();
}

inline std::string_view column_blob(sqlite3_stmt* s, int i) {
    auto p = static_cast<const char*>(sqlite3_column_blob(s, i));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : std::string_view();
}

// ---- the store --------------------------------------------------------------------------------

// A batch with its documents already serialized (on the committing thread), one per op (empty
// where an op has none).
struct pending {
    write_batch batch;
    std::vector<std::string> docs;
    commit_handler done;
};

class sqlite_store final : public store {
public:
    sqlite_store(std::unique_ptr<sqlite_db> writer, std::unique_ptr<sqlite_db> reader,
                 std::unique_ptr<sqlite_db> checkpointer, std::vector<std::uint64_t> next_seq,
                 int checkpoint_pages)
        : w_(std::move(writer)), r_(std::move(reader)), ck_(std::move(checkpointer)),
          checkpoint_pages_(checkpoint_pages), writer_checkpoint_pages_(4 * checkpoint_pages), next_seq_(std::move(next_seq)),
          checkpoint_thread_([this] { run_checkpoints(); }), writer_thread_([this] {
              // On the writer thread: the writer connection is used by that thread only.
              sqlite3_wal_autocheckpoint(w_->handle(), 0);
              sqlite3_wal_hook(w_->handle(), &sqlite_store::on_wal, this);
              run();
          }) {}

    ~sqlite_store() override { close(); }

    result<snapshot> load() override;
    result<std::vector<auth::shared_access_policy>> load_policies() override;
    void commit(write_batch batch, commit_handler done) override;
    result<std::vector<event_record>> read_events(std::uint32_t partition, std::uint64_t from,
                                                  std::size_t max_count) override;
    result<c2d_state> load_c2d() override;

    result<partition_info> event_partition_info(std::uint32_t partition) override {
        if (partition >= max_event_streams)
            return error{errc::invalid_argument, "Partition " + std::to_string(partition) + " does not exist."};
        std::lock_guard lock(reader_m_);
        auto s = r_->prepare(q_event_bounds);
        if (!s) return s.error();
        statement_guard g(*s);
        bind_int(*s, 1, static_cast<std::int64_t>(partition));
        partition_info i;
        int rc = sqlite3_step(*s);
        if (rc == SQLITE_ROW) {
            i.begin_sequence_number = static_cast<std::uint64_t>(sqlite3_column_int64(*s, 0));
            i.last_sequence_number = sqlite3_column_int64(*s, 1);
            i.last_enqueued_time_ns = sqlite3_column_int64(*s, 2);
        } else if (rc != SQLITE_DONE) {
            return r_->fail(rc, "reading partition bounds");
        }
        return i;
    }

    void set_change_listener(change_listener l) override {
        std::lock_guard lock(listener_m_);
        listener_ = std::move(l);
    }

    void close() override {
        queue_.close();
        std::lock_guard lock(close_m_);
        if (writer_thread_.joinable() && writer_thread_.get_id() != std::this_thread::get_id()) writer_thread_.join();
        {
            std::lock_guard l(ck_m_);
            ck_stop_ = true;
        }
        ck_cv_.notify_all();
        if (checkpoint_thread_.joinable() && checkpoint_thread_.get_id() != std::this_thread::get_id())
            checkpoint_thread_.join();
    }

private:
    // SQLite's WAL hook on the writer connection: runs after each commit, on the writer thread.
    static int on_wal(void* self, sqlite3* db, const char*, int pages) {
        auto* st = static_cast<sqlite_store*>(self);
        int done = st->ck_done_.load(std::memory_order_relaxed);
        if (pages < done) st->ck_done_.store(done = 0, std::memory_order_relaxed);  // the WAL restarted
        if (pages >= st->writer_checkpoint_pages_) {
            // Bound the WAL: finish what the background checkpoints left (BUSY while one runs:
            // then the next commit tries again).
            (void)sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        } else if (pages - done >= st->checkpoint_pages_) {
            {
                std::lock_guard l(st->ck_m_);
                st->ck_wanted_ = true;
            }
            st->ck_cv_.notify_one();
        }
        return SQLITE_OK;
    }
    void run_checkpoints() {
        std::unique_lock l(ck_m_);
        for (;;) {
            ck_cv_.wait(l, [this] { return ck_stop_ || ck_wanted_; });
            if (ck_stop_) return;
            ck_wanted_ = false;
            l.unlock();
            int log_pages = 0, copied = 0;
            int rc = sqlite3_wal_checkpoint_v2(ck_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
            if (rc == SQLITE_OK) ck_done_.store(copied, std::memory_order_relaxed);
            else if (rc != SQLITE_BUSY)
                log::warn("store.checkpoint_failed", {{"message", sqlite3_errmsg(ck_->handle())}, {"code", rc}});
            l.lock();
        }
    }

    void run();
    void commit_group(std::vector<pending>& group, std::vector<result<void>>& results);
    result<void> apply(pending& p);
    result<void> apply_op(write_batch::op& o, const std::string& doc);
    result<std::optional<std::int64_t>> get_int(const char* sql, std::string_view a, std::string_view b,
                                                std::string_view what);
    result<void> run_stmt(const char* sql, std::string_view what, std::initializer_list<std::string_view> args);

    std::unique_ptr<sqlite_db> w_;  // writer thread only
    std::mutex reader_m_;
    std::unique_ptr<sqlite_db> r_;  // under reader_m_
    std::unique_ptr<sqlite_db> ck_;  // checkpoint thread only
    std::mutex ck_m_;
    std::condition_variable ck_cv_;
    bool ck_wanted_ = false;  // under ck_m_
    bool ck_stop_ = false;    // under ck_m_
    std::atomic<int> ck_done_{0};  // WAL pages the last background checkpoint had copied
    const int checkpoint_pages_;
    const int writer_checkpoint_pages_;
    std::vector<std::uint64_t> next_seq_;   // per partition (stream); writer thread only
    std::vector<std::uint32_t> seq_undo_;  // partitions whose next_seq_ this group advanced
    std::mutex listener_m_;
    change_listener listener_;
    std::mutex close_m_;
    commit_queue<pending> queue_;
    std::thread checkpoint_thread_;
    std::thread writer_thread_;  // last: starts once everything it uses exists
};

std::optional<std::uint64_t> as_rev(const std::optional<std::int64_t>& v);

// Schema and connection set-up (sqlite_schema.cpp).
result<void> secure_files(const std::string& path);
result<void> migrate(sqlite_db& db, const std::string& path);
result<void> configure(sqlite_db& db, bool writer);
result<void> check_schema_current(sqlite_db& db, const std::string& path);

}  // namespace twinhub::store::sqlite_detail
