#include "store/sqlite_store.hpp"

#include "common/log.hpp"
#include "store/commit_queue.hpp"
#include "store/conditions.hpp"
#include "store/sqlite_db.hpp"
#include "store/store_codec.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

namespace twinhub::store {
namespace {

// Forward-only: a released migration is never edited; a schema change is a new entry.
struct migration {
    int version;
    const char* sql;
};

constexpr migration migrations[] = {
    {1, R"sql(
CREATE TABLE policies (key_name TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE devices (device_id TEXT PRIMARY KEY, etag INTEGER NOT NULL, doc TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE modules (device_id TEXT NOT NULL, module_id TEXT NOT NULL, etag INTEGER NOT NULL, doc TEXT NOT NULL,
                      PRIMARY KEY (device_id, module_id)) WITHOUT ROWID;
-- module_id is '' for a device's twin.
CREATE TABLE twins (device_id TEXT NOT NULL, module_id TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,
                    PRIMARY KEY (device_id, module_id)) WITHOUT ROWID;
-- device_id is the client id up to its first '/', for the cascade of a device delete.
CREATE TABLE sessions (client_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, doc TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX sessions_by_device ON sessions (device_id);
CREATE TABLE events (part INTEGER NOT NULL, seq INTEGER NOT NULL, device_id TEXT NOT NULL, module_id TEXT NOT NULL,
                     enqueued_ns INTEGER NOT NULL, body BLOB NOT NULL, props BLOB NOT NULL,
                     PRIMARY KEY (part, seq)) WITHOUT ROWID;
)sql"},
    // Cloud-to-device queues and the feedback queue. AUTOINCREMENT: sqlite_sequence remembers the
    // largest sequence number ever stored, so that numbers are never reused after deletes.
    {2, R"sql(
CREATE TABLE c2d (seq INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, module_id TEXT NOT NULL,
                  enqueued_ns INTEGER NOT NULL, expiry_ns INTEGER NOT NULL, ack INTEGER NOT NULL,
                  delivery_count INTEGER NOT NULL, body BLOB NOT NULL, props BLOB NOT NULL);
CREATE INDEX c2d_by_identity ON c2d (device_id, module_id);
CREATE TABLE feedback (seq INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL);
)sql"},
    // Hub-wide settings: consumer groups, the built-in endpoint's partition count.
    {3, R"sql(
CREATE TABLE settings (key TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
)sql"},
};
static_assert(std::size(migrations) > 0 && migrations[std::size(migrations) - 1].version == sqlite_schema_version);

// Cached statements; the cache is keyed by these addresses.
constexpr const char* q_begin = "BEGIN IMMEDIATE";
constexpr const char* q_commit = "COMMIT";
constexpr const char* q_rollback = "ROLLBACK";
constexpr const char* q_savepoint = "SAVEPOINT b";
constexpr const char* q_release = "RELEASE b";
constexpr const char* q_rollback_to = "ROLLBACK TO b";
constexpr const char* q_policy_put =
    "INSERT INTO policies (key_name, doc) VALUES (?1, ?2) ON CONFLICT (key_name) DO UPDATE SET doc = excluded.doc";
constexpr const char* q_policy_delete = "DELETE FROM policies WHERE key_name = ?1";
constexpr const char* q_device_get = "SELECT etag FROM devices WHERE device_id = ?1";
constexpr const char* q_device_put =
    "INSERT INTO devices (device_id, etag, doc) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (device_id) DO UPDATE SET etag = excluded.etag, doc = excluded.doc";
constexpr const char* q_device_delete = "DELETE FROM devices WHERE device_id = ?1";
constexpr const char* q_device_modules_delete = "DELETE FROM modules WHERE device_id = ?1";
constexpr const char* q_device_twins_delete = "DELETE FROM twins WHERE device_id = ?1";
constexpr const char* q_device_sessions_delete = "DELETE FROM sessions WHERE device_id = ?1";
constexpr const char* q_module_get = "SELECT etag FROM modules WHERE device_id = ?1 AND module_id = ?2";
constexpr const char* q_module_put =
    "INSERT INTO modules (device_id, module_id, etag, doc) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (device_id, module_id) DO UPDATE SET etag = excluded.etag, doc = excluded.doc";
constexpr const char* q_module_delete = "DELETE FROM modules WHERE device_id = ?1 AND module_id = ?2";
constexpr const char* q_twin_delete = "DELETE FROM twins WHERE device_id = ?1 AND module_id = ?2";
constexpr const char* q_twin_update =
    "UPDATE twins SET version = ?3, doc = ?4 WHERE device_id = ?1 AND module_id = ?2 AND (?5 IS NULL OR version = ?5)";
constexpr const char* q_twin_get = "SELECT version FROM twins WHERE device_id = ?1 AND module_id = ?2";
constexpr const char* q_twin_insert = "INSERT INTO twins (device_id, module_id, version, doc) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* q_session_put =
    "INSERT INTO sessions (client_id, device_id, doc) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (client_id) DO UPDATE SET device_id = excluded.device_id, doc = excluded.doc";
constexpr const char* q_session_delete = "DELETE FROM sessions WHERE client_id = ?1";
constexpr const char* q_event_put =
    "INSERT INTO events (part, seq, device_id, module_id, enqueued_ns, body, props) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr const char* q_event_max = "SELECT part, MAX(seq) FROM events GROUP BY part";
// Retention: the oldest rows before a time, never the partition's last (?3 is its sequence number).
constexpr const char* q_event_trim =
    "DELETE FROM events WHERE part = ?1 AND seq IN "
    "(SELECT seq FROM events WHERE part = ?1 AND seq < ?3 AND enqueued_ns < ?2 ORDER BY seq LIMIT ?4)";
constexpr const char* q_setting_put =
    "INSERT INTO settings (key, doc) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET doc = excluded.doc";
constexpr const char* q_setting_delete = "DELETE FROM settings WHERE key = ?1";
constexpr const char* q_load_settings = "SELECT key, doc FROM settings ORDER BY key";
constexpr const char* q_c2d_put =
    "INSERT INTO c2d (seq, device_id, module_id, enqueued_ns, expiry_ns, ack, delivery_count, body, props) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
constexpr const char* q_c2d_update = "UPDATE c2d SET delivery_count = ?2 WHERE seq = ?1";
constexpr const char* q_c2d_delete = "DELETE FROM c2d WHERE seq = ?1";
constexpr const char* q_device_c2d_delete = "DELETE FROM c2d WHERE device_id = ?1";
constexpr const char* q_module_c2d_delete = "DELETE FROM c2d WHERE device_id = ?1 AND module_id = ?2";
constexpr const char* q_feedback_put = "INSERT INTO feedback (seq, doc) VALUES (?1, ?2)";
constexpr const char* q_feedback_delete = "DELETE FROM feedback WHERE seq = ?1";
constexpr const char* q_load_c2d =
    "SELECT seq, device_id, module_id, enqueued_ns, expiry_ns, ack, delivery_count, body, props FROM c2d ORDER BY seq";
constexpr const char* q_load_feedback = "SELECT seq, doc FROM feedback ORDER BY seq";
constexpr const char* q_c2d_next = "SELECT name, seq FROM sqlite_sequence WHERE name IN ('c2d', 'feedback')";
constexpr const char* q_load_policies = "SELECT key_name, doc FROM policies ORDER BY key_name";
constexpr const char* q_load_devices =
    "SELECT d.device_id, d.doc, t.doc FROM devices d "
    "LEFT JOIN twins t ON t.device_id = d.device_id AND t.module_id = '' ORDER BY d.device_id";
constexpr const char* q_load_modules =
    "SELECT m.device_id || '/' || m.module_id, m.doc, t.doc FROM modules m "
    "LEFT JOIN twins t ON t.device_id = m.device_id AND t.module_id = m.module_id ORDER BY m.device_id, m.module_id";
constexpr const char* q_load_sessions = "SELECT client_id, doc FROM sessions ORDER BY client_id";
constexpr const char* q_read_events =
    "SELECT seq, device_id, module_id, enqueued_ns, body, props FROM events "
    "WHERE part = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3";
constexpr const char* q_event_bounds =
    "SELECT (SELECT MIN(seq) FROM events WHERE part = ?1), seq, enqueued_ns FROM events WHERE part = ?1 "
    "ORDER BY seq DESC LIMIT 1";
constexpr const char* q_read_begin = "BEGIN";
constexpr const char* q_read_end = "COMMIT";

constexpr std::size_t max_group = 2048;

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
void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}
void bind_int(sqlite3_stmt* s, int i, std::int64_t v) { sqlite3_bind_int64(s, i, v); }
void bind_blob(sqlite3_stmt* s, int i, std::string_view v) {
    sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

std::string_view column_text(sqlite3_stmt* s, int i) {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i))) : std::string_view();
}

std::string_view column_blob(sqlite3_stmt* s, int i) {
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

void sqlite_store::commit(write_batch batch, commit_handler done) {
    pending p{std::move(batch), {}, std::move(done)};
    p.docs = serialize_docs(p.batch);
    if (!queue_.push(p)) p.done(error{errc::shutting_down, "The store is closed."});
}

void sqlite_store::run() {
    std::vector<pending> group;
    std::vector<result<void>> results;
    while (queue_.take(group, max_group)) {
        results.assign(group.size(), result<void>{});
        commit_group(group, results);
        complete_group(group, results, listener_m_, listener_);
    }
}

void sqlite_store::commit_group(std::vector<pending>& group, std::vector<result<void>>& results) {
    // Sequence numbers handed out in this group, to take back when a batch or the group fails.
    seq_undo_.clear();
    auto undo_seq_to = [&](std::size_t n) {
        while (seq_undo_.size() > n) {
            --next_seq_[seq_undo_.back()];
            seq_undo_.pop_back();
        }
    };
    auto fail_all = [&](const error& e) {
        for (auto& r : results) r = e;
        undo_seq_to(0);
    };
    if (auto r = w_->exec_cached(q_begin, "starting a transaction"); !r) return fail_all(r.error());
    for (std::size_t i = 0; i < group.size(); ++i) {
        const std::size_t seq_at_batch = seq_undo_.size();
        // A batch that is one twin write runs at most one statement that changes anything (the
        // UPDATE, or the INSERT after it matched nothing), and a failed statement leaves nothing
        // behind on its own: no savepoint needed. Everything else is all-or-nothing by savepoint.
        const auto& ops = group[i].batch.ops();
        const bool single = ops.size() == 1 && std::holds_alternative<write_batch::put_twin_op>(ops[0]);
        auto r = single ? result<void>{} : w_->exec_cached(q_savepoint, "starting a batch");
        if (r) r = apply(group[i]);
        if (r && !single) r = w_->exec_cached(q_release, "ending a batch");
        if (!r) {
            undo_seq_to(seq_at_batch);
            if (sqlite3_get_autocommit(w_->handle())) {
                // SQLite rolled the whole transaction back (I/O error, disk full): nothing of the
                // group is stored.
                log::error("store.transaction_lost", {{"message", r.error().message}});
                return fail_all(r.error());
            }
            if (!single) {
                (void)w_->exec_cached(q_rollback_to, "rolling back a batch");
                (void)w_->exec_cached(q_release, "ending a batch");
            }
        }
        results[i] = std::move(r);
    }
    if (auto r = w_->exec_cached(q_commit, "committing"); !r) {
        log::error("store.commit_failed", {{"message", r.error().message}, {"batches", group.size()}});
        if (!sqlite3_get_autocommit(w_->handle())) (void)w_->exec_cached(q_rollback, "rolling back");
        return fail_all(r.error());
    }
}

result<void> sqlite_store::apply(pending& p) {
    auto& ops = p.batch.ops();
    for (std::size_t i = 0; i < ops.size(); ++i)
        if (auto r = apply_op(ops[i], p.docs[i]); !r) return r;
    return {};
}

result<void> sqlite_store::run_stmt(const char* sql, std::string_view what,
                                    std::initializer_list<std::string_view> args) {
    auto s = w_->prepare(sql);
    if (!s) return s.error();
    statement_guard g(*s);
    int i = 1;
    for (auto a : args) bind_text(*s, i++, a);
    int rc = sqlite3_step(*s);
    if (rc != SQLITE_DONE) return w_->fail(rc, what);
    return {};
}

result<std::optional<std::int64_t>> sqlite_store::get_int(const char* sql, std::string_view a, std::string_view b,
                                                          std::string_view what) {
    auto s = w_->prepare(sql);
    if (!s) return s.error();
    statement_guard g(*s);
    bind_text(*s, 1, a);
    if (sqlite3_bind_parameter_count(*s) >= 2) bind_text(*s, 2, b);
    int rc = sqlite3_step(*s);
    if (rc == SQLITE_ROW) return std::optional<std::int64_t>(sqlite3_column_int64(*s, 0));
    if (rc == SQLITE_DONE) return std::optional<std::int64_t>();
    return w_->fail(rc, what);
}

std::optional<std::uint64_t> as_rev(const std::optional<std::int64_t>& v) {
    if (!v) return std::nullopt;
    return static_cast<std::uint64_t>(*v);
}

result<void> sqlite_store::apply_op(write_batch::op& o, const std::string& doc) {
    using wb = write_batch;
    if (auto* op = std::get_if<wb::put_twin_op>(&o)) {
        const auto& id = op->id;
        // Writes the twin; with `if_version`, only over that stored version. Returns rows changed.
        auto write = [&](const char* sql, std::optional<std::int64_t> if_version) -> result<int> {
            auto s = w_->prepare(sql);
            if (!s) return s.error();
            statement_guard g(*s);
            bind_text(*s, 1, id.device_id);
            bind_text(*s, 2, id.module_id);
            bind_int(*s, 3, static_cast<std::int64_t>(op->t->version));
            bind_text(*s, 4, doc);
            if (if_version) bind_int(*s, 5, *if_version);
            int rc = sqlite3_step(*s);
            if (rc != SQLITE_DONE) return w_->fail(rc, "writing a twin");
            return sqlite3_changes(w_->handle());
        };
        if (op->e.k != expect::kind::absent) {
            // Fast path, one statement: the twin exists (so does its identity) and the condition holds.
            std::optional<std::int64_t> if_version;
            if (op->e.k == expect::kind::revision) if_version = static_cast<std::int64_t>(op->e.rev);
            auto n = write(q_twin_update, if_version);
            if (!n) return n.error();
            if (*n == 1) return {};
        }
        // Slow path: find out which rule fails, or insert a twin that was never written.
        auto dev = get_int(q_device_get, id.device_id, {}, "reading a device");
        if (!dev) return dev.error();
        if (!*dev) return error{errc::device_not_found, "Device '" + id.device_id + "' not found."};
        if (id.is_module()) {
            auto mod = get_int(q_module_get, id.device_id, id.module_id, "reading a module");
            if (!mod) return mod.error();
            if (!*mod)
                return error{errc::module_not_found,
                             "Module '" + id.module_id + "' on device '" + id.device_id + "' not found."};
        }
        auto cur = get_int(q_twin_get, id.device_id, id.module_id, "reading a twin");
        if (!cur) return cur.error();
        if (auto r = check_condition(op->e, as_rev(*cur), twin_kind(id)); !r) return r;
        if (*cur) return error{errc::internal, "Twin write missed an existing twin."};  // the fast path covers it
        auto n = write(q_twin_insert, std::nullopt);
        if (!n) return n.error();
        return {};
    }
    if (auto* op = std::get_if<wb::put_device_op>(&o)) {
        auto cur = get_int(q_device_get, op->d.device_id, {}, "reading a device");
        if (!cur) return cur.error();
        if (auto r = check_condition(op->e, as_rev(*cur), device_kind(op->d.device_id)); !r) return r;
        auto s = w_->prepare(q_device_put);
        if (!s) return s.error();
        statement_guard g(*s);
        bind_text(*s, 1, op->d.device_id);
        bind_int(*s, 2, static_cast<std::int64_t>(op->d.etag));
        bind_text(*s, 3, doc);
        int rc = sqlite3_step(*s);
        if (rc != SQLITE_DONE) return w_->fail(rc, "writing a device");
        return {};
    }
    if (auto* op = std::get_if<wb::delete_device_op>(&o)) {
        auto cur = get_int(q_device_get, op->device_id, {}, "reading a device");
        if (!cur) return cur.error();
        if (auto r = check_condition(op->e, as_rev(*cur), device_kind(op->device_id)); !r) return r;
        for (auto q : {q_device_delete, q_device_modules_delete, q_device_twins_delete, q_device_sessions_delete,
                       q_device_c2d_delete})
            if (auto r = run_stmt(q, "deleting a device", {op->device_id}); !r) return r;
        return {};
    }
    if (auto* op = std::get_if<wb::put_module_op>(&o)) {
        auto dev = get_int(q_device_get, op->m.device_id, {}, "reading a device");
        if (!dev) return dev.error();
        if (!*dev) return error{errc::device_not_found, "Device '" + op->m.device_id + "' not found."};
        auto cur = get_int(q_module_get, op->m.device_id, op->m.module_id, "reading a module");
        if (!cur) return cur.error();
        if (auto r = check_condition(op->e, as_rev(*cur), module_kind(op->m.device_id, op->m.module_id)); !r) return r;
        auto s = w_->prepare(q_module_put);
        if (!s) return s.error();
        statement_guard g(*s);
        bind_text(*s, 1, op->m.device_id);
        bind_text(*s, 2, op->m.module_id);
        bind_int(*s, 3, static_cast<std::int64_t>(op->m.etag));
        bind_text(*s, 4, doc);
        int rc = sqlite3_step(*s);
        if (rc != SQLITE_DONE) return w_->fail(rc, "writing a module");
        return {};
    }
    if (auto* op = std::get_if<wb::delete_module_op>(&o)) {
        auto dev = get_int(q_device_get, op->device_id, {}, "reading a device");
        if (!dev) return dev.error();
        if (!*dev) {
            if (op->e.k == expect::kind::any) return {};
            return error{errc::device_not_found, "Device '" + op->device_id + "' not found."};
        }
        auto cur = get_int(q_module_get, op->device_id, op->module_id, "reading a module");
        if (!cur) return cur.error();
        if (auto r = check_condition(op->e, as_rev(*cur), module_kind(op->device_id, op->module_id)); !r) return r;
        if (auto r = run_stmt(q_module_delete, "deleting a module", {op->device_id, op->module_id}); !r) return r;
        if (auto r = run_stmt(q_twin_delete, "deleting a module", {op->device_id, op->module_id}); !r) return r;
        if (auto r = run_stmt(q_module_c2d_delete, "deleting a module", {op->device_id, op->module_id}); !r) return r;
        std::string client = op->device_id + "/" + op->module_id;
        return run_stmt(q_session_delete, "deleting a module", {client});
    }
    if (auto* op = std::get_if<wb::trim_events_op>(&o)) {
        if (op->partition >= next_seq_.size() || next_seq_[op->partition] == 0) return {};
        auto s = w_->prepare(q_event_trim);
        if (!s) return s.error();
        statement_guard g(*s);
        bind_int(*s, 1, static_cast<std::int64_t>(op->partition));
        bind_int(*s, 2, op->before_ns);
        bind_int(*s, 3, static_cast<std::int64_t>(next_seq_[op->partition] - 1));
        bind_int(*s, 4, static_cast<std::int64_t>(op->max_rows));
        int rc = sqlite3_step(*s);
        if (rc != SQLITE_DONE) return w_->fail(rc, "trimming events");
        return {};
    }
    if (auto* op = std::get_if<wb::put_setting_op>(&o)) return run_stmt(q_setting_put, "writing a setting", {op->key, doc});
    if (auto* op = std::get_if<wb::delete_setting_op>(&o)) return run_stmt(q_setting_delete, "deleting a setting", {op->key});
    if (auto* op = std::get_if<wb::put_policy_op>(&o)) return run_stmt(q_policy_put, "writing a policy", {op->p.key_name, doc});
    if (auto* op = std::get_if<wb::delete_policy_op>(&o)) return run_stmt(q_policy_delete, "deleting a policy", {op->key_name});
    if (auto* op = std::get_if<wb::put_session_op>(&o))
        return run_stmt(q_session_put, "writing a session", {op->s.client_id, device_of_client(op->s.client_id), doc});
    if (auto* op = std::get_if<wb::delete_session_op>(&o))
        return run_stmt(q_session_delete, "deleting a session", {op->client_id});
    if (auto* op = std::get_if<wb::append_event_op>(&o)) {
        auto& e = op->e;
        if (e.partition >= next_seq_.size())
            return error{errc::invalid_argument, "Partition " + std::to_string(e.partition) + " does not exist."};
        e.sequence_number = next_seq_[e.partition];
        auto s = w_->prepare(q_event_put);
        if (!s) return s.error();
        statement_guard g(*s);
        bind_int(*s, 1, static_cast<std::int64_t>(e.partition));
        bind_int(*s, 2, static_cast<std::int64_t>(e.sequence_number));
        bind_text(*s, 3, e.source.device_id);
        bind_text(*s, 4, e.source.module_id);
        bind_int(*s, 5, e.enqueued_time_ns);
        bind_blob(*s, 6, e.body);
        bind_blob(*s, 7, doc);
        int rc = sqlite3_step(*s);
        if (rc != SQLITE_DONE) return w_->fail(rc, "appending an event");
        ++next_seq_[e.partition];
        seq_undo_.push_back(e.partition);
        return {};
    }
    if (auto* op = std::get_if<wb::enqueue_c2d_op>(&o)) {
        const auto& m = op->m;
        auto dev = get_int(q_device_get, m.target.device_id, {}, "reading a device");
        if (!dev) return dev.error();
        if (!*dev) return error{errc::device_not_found, "Device '" + m.target.device_id + "' not found."};
        if (m.target.is_module()) {
            auto mod = get_int(q_module_get, m.target.device_id, m.target.module_id, "reading a module");
            if (!mod) return mod.error();
            if (!*mod)
                return error{errc::module_not_found,
                             "Module '" + m.target.module_id + "' on device '" + m.target.device_id + "' not found."};
        }
        auto s = w_->prepare(q_c2d_put);
        if (!s) return s.error();
        statement_guard g(*s);
        bind_int(*s, 1, static_cast<std::int64_t>(m.sequence_number));
        bind_text(*s, 2, m.target.device_id);
        bind_text(*s, 3, m.target.module_id);
        bind_int(*s, 4, m.enqueued_time_ns);
        bind_int(*s, 5, m.expiry_time_ns);
        bind_int(*s, 6, static_cast<std::int64_t>(m.ack));
        bind_int(*s, 7, static_cast<std::int64_t>(m.delivery_count));
        bind_blob(*s, 8, m.body);
        bind_blob(*s, 9, doc);
        int rc = sqlite3_step(*s);
        if (rc != SQLITE_DONE) return w_->fail(rc, "enqueueing a cloud-to-device message");
        return {};
    }
    // Statements on one row by sequence number: (seq) or (seq, value).
    auto by_seq = [&](const char* sql, std::uint64_t seq, std::optional<std::int64_t> v, std::string_view what)
        -> result<void> {
        auto s = w_->prepare(sql);
        if (!s) return s.error();
        statement_guard g(*s);
        bind_int(*s, 1, static_cast<std::int64_t>(seq));
        if (v) bind_int(*s, 2, *v);
        int rc = sqlite3_step(*s);
        if (rc != SQLITE_DONE) return w_->fail(rc, what);
        return {};
    };
    if (auto* op = std::get_if<wb::update_c2d_op>(&o))
        return by_seq(q_c2d_update, op->seq, op->delivery_count, "updating a cloud-to-device message");
    if (auto* op = std::get_if<wb::delete_c2d_op>(&o))
        return by_seq(q_c2d_delete, op->seq, std::nullopt, "deleting a cloud-to-device message");
    if (auto* op = std::get_if<wb::delete_feedback_op>(&o))
        return by_seq(q_feedback_delete, op->seq, std::nullopt, "deleting a feedback record");
    if (auto* op = std::get_if<wb::append_feedback_op>(&o)) {
        auto s = w_->prepare(q_feedback_put);
        if (!s) return s.error();
        statement_guard g(*s);
        bind_int(*s, 1, static_cast<std::int64_t>(op->f.sequence_number));
        bind_text(*s, 2, doc);
        int rc = sqlite3_step(*s);
        if (rc != SQLITE_DONE) return w_->fail(rc, "appending a feedback record");
        return {};
    }
    return error{errc::internal, "Unknown store operation."};
}

result<std::vector<auth::shared_access_policy>> sqlite_store::load_policies() {
    std::lock_guard lock(reader_m_);
    auto s = r_->prepare(q_load_policies);
    if (!s) return s.error();
    statement_guard g(*s);
    std::vector<auth::shared_access_policy> out;
    for (;;) {
        int rc = sqlite3_step(*s);
        if (rc == SQLITE_DONE) return out;
        if (rc != SQLITE_ROW) return r_->fail(rc, "loading policies");
        auto v = parse_doc(column_text(*s, 1), "policy '" + std::string(column_text(*s, 0)) + "'");
        if (!v) return v.error();
        auto p = auth::policy_from_storage_json(*v);
        if (!p) return p.error();
        out.push_back(std::move(*p));
    }
}

result<snapshot> sqlite_store::load() {
    std::lock_guard lock(reader_m_);
    // One read transaction, so that the snapshot is consistent.
    if (auto r = r_->exec_cached(q_read_begin, "starting a read"); !r) return r.error();
    struct end_read {
        sqlite_db& db;
        ~end_read() { (void)db.exec_cached(q_read_end, "ending a read"); }
    } end{*r_};

    snapshot snap;
    // Calls `row` for each row of `sql`; stops at the first error.
    auto each = [&](const char* sql, std::string_view what, auto&& row) -> result<void> {
        auto s = r_->prepare(sql);
        if (!s) return s.error();
        statement_guard g(*s);
        for (;;) {
            int rc = sqlite3_step(*s);
            if (rc == SQLITE_DONE) return {};
            if (rc != SQLITE_ROW) return r_->fail(rc, what);
            if (auto r = row(*s); !r) return r;
        }
    };
    auto twin_of = [](sqlite3_stmt* s, std::string_view name) -> result<twin::twin_document> {
        if (sqlite3_column_type(s, 2) == SQLITE_NULL) return twin::twin_document{};
        auto v = parse_doc(column_text(s, 2), "twin of '" + std::string(name) + "'");
        if (!v) return v.error();
        return twin::from_storage_json(*v);
    };

    auto r = each(q_load_policies, "loading policies", [&](sqlite3_stmt* s) -> result<void> {
        auto v = parse_doc(column_text(s, 1), "policy '" + std::string(column_text(s, 0)) + "'");
        if (!v) return v.error();
        auto p = auth::policy_from_storage_json(*v);
        if (!p) return p.error();
        snap.policies.push_back(std::move(*p));
        return {};
    });
    if (!r) return r.error();
    r = each(q_load_devices, "loading devices", [&](sqlite3_stmt* s) -> result<void> {
        auto name = column_text(s, 0);
        auto v = parse_doc(column_text(s, 1), "device '" + std::string(name) + "'");
        if (!v) return v.error();
        auto d = registry::device_from_storage_json(*v);
        if (!d) return d.error();
        auto t = twin_of(s, name);
        if (!t) return t.error();
        snap.devices.push_back({std::move(*d), std::move(*t)});
        return {};
    });
    if (!r) return r.error();
    r = each(q_load_modules, "loading modules", [&](sqlite3_stmt* s) -> result<void> {
        auto name = column_text(s, 0);
        auto v = parse_doc(column_text(s, 1), "module '" + std::string(name) + "'");
        if (!v) return v.error();
        auto m = registry::module_from_storage_json(*v);
        if (!m) return m.error();
        auto t = twin_of(s, name);
        if (!t) return t.error();
        snap.modules.push_back({std::move(*m), std::move(*t)});
        return {};
    });
    if (!r) return r.error();
    r = each(q_load_sessions, "loading sessions", [&](sqlite3_stmt* s) -> result<void> {
        auto x = parse_session(column_text(s, 0), column_text(s, 1));
        if (!x) return x.error();
        snap.sessions.push_back(std::move(*x));
        return {};
    });
    if (!r) return r.error();
    r = each(q_load_settings, "loading settings", [&](sqlite3_stmt* s) -> result<void> {
        snap.settings.emplace_back(std::string(column_text(s, 0)), std::string(column_text(s, 1)));
        return {};
    });
    if (!r) return r.error();
    return snap;
}

result<std::vector<event_record>> sqlite_store::read_events(std::uint32_t partition, std::uint64_t from,
                                                            std::size_t max_count) {
    if (partition >= max_event_streams)
        return error{errc::invalid_argument, "Partition " + std::to_string(partition) + " does not exist."};
    std::lock_guard lock(reader_m_);
    auto s = r_->prepare(q_read_events);
    if (!s) return s.error();
    statement_guard g(*s);
    bind_int(*s, 1, static_cast<std::int64_t>(partition));
    bind_int(*s, 2, static_cast<std::int64_t>(from));
    bind_int(*s, 3, static_cast<std::int64_t>(std::min<std::size_t>(max_count, INT64_MAX)));
    std::vector<event_record> out;
    for (;;) {
        int rc = sqlite3_step(*s);
        if (rc == SQLITE_DONE) return out;
        if (rc != SQLITE_ROW) return r_->fail(rc, "reading events");
        event_record e;
        e.partition = partition;
        e.sequence_number = static_cast<std::uint64_t>(sqlite3_column_int64(*s, 0));
        e.source.device_id = std::string(column_text(*s, 1));
        e.source.module_id = std::string(column_text(*s, 2));
        e.enqueued_time_ns = sqlite3_column_int64(*s, 3);
        e.body = std::string(column_blob(*s, 4));
        if (!parse_event_props(column_blob(*s, 5), e))
            return error{errc::corrupt_data, "Stored event " + std::to_string(e.sequence_number) + " of partition " +
                                                 std::to_string(partition) + " has malformed properties."};
        out.push_back(std::move(e));
    }
}

result<c2d_state> sqlite_store::load_c2d() {
    std::lock_guard lock(reader_m_);
    if (auto r = r_->exec_cached(q_read_begin, "starting a read"); !r) return r.error();
    struct end_read {
        sqlite_db& db;
        ~end_read() { (void)db.exec_cached(q_read_end, "ending a read"); }
    } end{*r_};
    c2d_state out;
    auto each = [&](const char* sql, std::string_view what, auto&& row) -> result<void> {
        auto s = r_->prepare(sql);
        if (!s) return s.error();
        statement_guard g(*s);
        for (;;) {
            int rc = sqlite3_step(*s);
            if (rc == SQLITE_DONE) return {};
            if (rc != SQLITE_ROW) return r_->fail(rc, what);
            if (auto r = row(*s); !r) return r;
        }
    };
    auto r = each(q_load_c2d, "loading cloud-to-device messages", [&](sqlite3_stmt* s) -> result<void> {
        c2d_message m;
        m.sequence_number = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
        m.target.device_id = std::string(column_text(s, 1));
        m.target.module_id = std::string(column_text(s, 2));
        m.enqueued_time_ns = sqlite3_column_int64(s, 3);
        m.expiry_time_ns = sqlite3_column_int64(s, 4);
        auto ack = sqlite3_column_int64(s, 5);
        m.delivery_count = static_cast<std::uint32_t>(sqlite3_column_int64(s, 6));
        m.body = std::string(column_blob(s, 7));
        if (ack < 0 || ack > 3 || !parse_c2d_props(column_blob(s, 8), m))
            return error{errc::corrupt_data,
                         "Stored cloud-to-device message " + std::to_string(m.sequence_number) + " is malformed."};
        m.ack = static_cast<c2d_ack>(ack);
        out.messages.push_back(std::move(m));
        return {};
    });
    if (!r) return r.error();
    r = each(q_load_feedback, "loading feedback", [&](sqlite3_stmt* s) -> result<void> {
        feedback_record f;
        f.sequence_number = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
        if (auto r = parse_feedback(column_text(s, 1), f); !r) return r;
        out.feedback.push_back(std::move(f));
        return {};
    });
    if (!r) return r.error();
    r = each(q_c2d_next, "reading sequence numbers", [&](sqlite3_stmt* s) -> result<void> {
        auto next = static_cast<std::uint64_t>(sqlite3_column_int64(s, 1)) + 1;
        if (column_text(s, 0) == "c2d") out.next_message_sequence = next;
        else out.next_feedback_sequence = next;
        return {};
    });
    if (!r) return r.error();
    return out;
}

// Narrows the database and its -wal and -shm companions to mode 0600, by path. Never by opening
// the file: on Linux, close() of any descriptor of the database drops every POSIX lock this process
// holds on it, SQLite's included, after which another process's connection believes it is the
// last one, checkpoints and deletes the WAL under the running hub (issue 12). SQLite creates -wal
// and -shm with the mode of the database file, so narrowing the database right after SQLite
// created it keeps its companions private too.
result<void> secure_files(const std::string& path) {
    for (auto suffix : {"", "-wal", "-shm"}) {
        std::string p = path + suffix;
        if (::chmod(p.c_str(), 0600) != 0 && errno != ENOENT)
            return error{errc::storage_error, "Cannot chmod '" + p + "': " + std::strerror(errno) + "."};
    }
    return {};
}

result<void> migrate(sqlite_db& db, const std::string& path) {
    if (auto r = db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", "creating the schema");
        !r)
        return r;
    int current = 0;
    {
        auto s = db.prepare("SELECT version FROM schema_version");
        if (!s) return s.error();
        statement_guard g(*s);
        int rc = sqlite3_step(*s);
        if (rc == SQLITE_ROW) current = sqlite3_column_int(*s, 0);
        else if (rc != SQLITE_DONE) return db.fail(rc, "reading the schema version");
    }
    if (current > sqlite_schema_version)
        return error{errc::storage_error, "The store '" + path + "' has schema version " + std::to_string(current) +
                                              ", newer than this twinhub supports (" +
                                              std::to_string(sqlite_schema_version) + "); run a newer twinhub."};
    for (auto& m : migrations) {
        if (m.version <= current) continue;
        std::string sql = std::string("BEGIN IMMEDIATE;") + m.sql + "DELETE FROM schema_version;" +
                          "INSERT INTO schema_version (version) VALUES (" + std::to_string(m.version) + ");COMMIT;";
        if (auto r = db.exec(sql.c_str(), "migrating to schema version " + std::to_string(m.version)); !r) {
            (void)db.exec("ROLLBACK", "rolling back a migration");
            return r;
        }
        log::info("store.migrated", {{"path", path}, {"version", m.version}});
    }
    return {};
}

result<void> configure(sqlite_db& db, bool writer) {
    if (auto r = db.exec("PRAGMA busy_timeout = 10000", "configuring the store"); !r) return r;
    if (writer) {
        auto s = db.prepare("PRAGMA journal_mode = WAL");
        if (!s) return s.error();
        statement_guard g(*s);
        int rc = sqlite3_step(*s);
        if (rc != SQLITE_ROW) return db.fail(rc, "enabling WAL");
        if (column_text(*s, 0) != "wal")
            return error{errc::storage_error, "The store cannot use WAL mode (got '" + std::string(column_text(*s, 0)) +
                                                  "'); is the file on a network file system?"};
    }
    // FULL: the WAL is fsynced at every COMMIT, so an acknowledged batch survives power loss too.
    if (auto r = db.exec("PRAGMA synchronous = FULL", "configuring the store"); !r) return r;
    if (!writer)
        if (auto r = db.exec("PRAGMA query_only = 1", "configuring the store"); !r) return r;
    return {};
}

// A read-only opener takes the store as it is: the schema must be the one this binary knows.
result<void> check_schema_current(sqlite_db& db, const std::string& path) {
    auto s = db.prepare("SELECT version FROM schema_version");
    if (!s) return s.error();
    statement_guard g(*s);
    int rc = sqlite3_step(*s);
    if (rc != SQLITE_ROW) return db.fail(rc, "reading the schema version");
    int v = sqlite3_column_int(*s, 0);
    if (v != sqlite_schema_version)
        return error{errc::storage_error, "The store '" + path + "' has schema version " + std::to_string(v) +
                                              "; this twinhub reads version " + std::to_string(sqlite_schema_version) +
                                              " (start the matching twinhubd once to migrate it)."};
    return {};
}

}  // namespace

result<std::unique_ptr<store>> open_sqlite_store(const std::string& path, sqlite_open_options opts) {
    if (opts.checkpoint_pages < 1)
        return error{errc::invalid_argument, "checkpoint_pages must be at least 1 (got " +
                                                 std::to_string(opts.checkpoint_pages) + ")."};
    const auto rw = opts.read_only ? sqlite_db::mode::read_only : sqlite_db::mode::read_write;
    auto w = sqlite_db::open(path, opts.read_only ? sqlite_db::mode::read_only : sqlite_db::mode::create);
    if (!w) return w.error();
    if (opts.read_only) {
        if (auto r = configure(**w, false); !r) return r.error();
        if (auto r = check_schema_current(**w, path); !r) return r.error();
    } else {
        // Before the first statement, so that the -wal and -shm that SQLite creates next are 0600.
        if (auto r = secure_files(path); !r) return r.error();
        if (auto r = configure(**w, true); !r) return r.error();
        if (auto r = migrate(**w, path); !r) return r.error();
    }

    std::vector<std::uint64_t> next_seq(max_event_streams, 0);
    {
        auto s = (*w)->prepare(q_event_max);
        if (!s) return s.error();
        statement_guard g(*s);
        for (;;) {
            int rc = sqlite3_step(*s);
            if (rc == SQLITE_DONE) break;
            if (rc != SQLITE_ROW) return (*w)->fail(rc, "reading event sequence numbers");
            auto part = sqlite3_column_int64(*s, 0);
            if (part >= 0 && part < static_cast<std::int64_t>(max_event_streams))
                next_seq[static_cast<std::size_t>(part)] = static_cast<std::uint64_t>(sqlite3_column_int64(*s, 1)) + 1;
        }
    }
    auto rd = sqlite_db::open(path, rw);
    if (!rd) return rd.error();
    if (auto r = configure(**rd, false); !r) return r.error();
    // The checkpointer writes the database file (not the WAL): it is no reader, so no query_only.
    auto ck = sqlite_db::open(path, rw);
    if (!ck) return ck.error();
    if (auto r = (*ck)->exec("PRAGMA busy_timeout = 10000", "configuring the store"); !r) return r.error();
    if (auto r = (*ck)->exec("PRAGMA synchronous = FULL", "configuring the store"); !r) return r.error();
    return std::unique_ptr<store>(new sqlite_store(std::move(*w), std::move(*rd), std::move(*ck), std::move(next_seq),
                                                      opts.checkpoint_pages));
}

}  // namespace twinhub::store
