// Schema migrations (forward-only) and connection set-up: WAL, synchronous=FULL, 0600 files.
#include "store/sqlite_internal.hpp"

#include "common/log.hpp"
#include "store/sqlite_store.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <iterator>

namespace twinhub::store::sqlite_detail {

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

}  // namespace

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

}  // namespace twinhub::store::sqlite_detail
