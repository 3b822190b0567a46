// A thin owner of one SQLite connection for the SQLite backend: opening, a cache of prepared
// statements, and the translation of SQLite result codes into twinhub errors (the only place that
// does it). Statements are keyed by the address of their SQL text, so pass string literals or
// other text with static storage.
// Thread safety: none; one thread (or one mutex holder) uses a connection at a time.
#pragma once

#include "common/errc.hpp"

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace twinhub::store {

class sqlite_db {
public:
    enum class mode { read_write, create, read_only };

    // Opens the database file at `path` through SQLite only (creating it for mode::create;
    // SQLITE_OPEN_READONLY for mode::read_only). Fails with storage_error.
    static result<std::unique_ptr<sqlite_db>> open(const std::string& path, mode m);

    ~sqlite_db();
    sqlite_db(const sqlite_db&) = delete;
    sqlite_db& operator=(const sqlite_db&) = delete;

    sqlite3* handle() const noexcept { return db_; }

    // Runs one or more statements without results (schema, pragmas).
    result<void> exec(const char* sql, std::string_view what);

    // Runs a cached statement that takes no parameters and returns no rows (BEGIN, COMMIT, ...).
    result<void> exec_cached(const char* sql, std::string_view what);

    // The cached prepared statement for `sql`, reset and with its bindings cleared. Use with
    // statement_guard so that it is reset after use.
    result<sqlite3_stmt*> prepare(const char* sql);

    // The twinhub error for SQLite result code `rc` while doing `what` ("committing", "loading
    // devices"): corrupt_data for a damaged database, storage_error otherwise.
    error fail(int rc, std::string_view what) const;

private:
    explicit sqlite_db(sqlite3* db) : db_(db) {}

    sqlite3* db_;
    std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

// Resets a cached statement when it leaves scope, so that it holds no read transaction open and
// no pointer to bound text.
class statement_guard {
public:
    explicit statement_guard(sqlite3_stmt* s) noexcept : s_(s) {}
    ~statement_guard() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    statement_guard(const statement_guard&) = delete;
    statement_guard& operator=(const statement_guard&) = delete;

private:
    sqlite3_stmt* s_;
};

}  // namespace twinhub::store
