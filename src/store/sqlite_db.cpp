#include "store/sqlite_db.hpp"

namespace twinhub::store {

result<std::unique_ptr<sqlite_db>> sqlite_db::open(const std::string& path, mode m) {
    sqlite3* db = nullptr;
    int flags = SQLITE_OPEN_NOMUTEX;
    switch (m) {
    case mode::read_write: flags |= SQLITE_OPEN_READWRITE; break;
    case mode::create: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE; break;
    case mode::read_only: flags |= SQLITE_OPEN_READONLY; break;
    }
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        sqlite3_close_v2(db);
        return error{errc::storage_error, "Cannot open the store '" + path + "': " + msg + "."};
    }
    sqlite3_extended_result_codes(db, 1);
    return std::unique_ptr<sqlite_db>(new sqlite_db(db));
}

sqlite_db::~sqlite_db() {
    for (auto& [_, s] : cache_) sqlite3_finalize(s);
    sqlite3_close_v2(db_);
}

result<void> sqlite_db::exec(const char* sql, std::string_view what) {
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return fail(rc, what);
    return {};
}

result<void> sqlite_db::exec_cached(const char* sql, std::string_view what) {
    auto s = prepare(sql);
    if (!s) return s.error();
    statement_guard g(*s);
    int rc = sqlite3_step(*s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return fail(rc, what);
    return {};
}

result<sqlite3_stmt*> sqlite_db::prepare(const char* sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) return it->second;
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) return fail(rc, std::string("preparing \"") + sql + "\"");
    cache_.emplace(sql, s);
    return s;
}

error sqlite_db::fail(int rc, std::string_view what) const {
    std::string msg = "Store failure while " + std::string(what) + ": " + sqlite3_errmsg(db_) + " (SQLite code " +
                      std::to_string(rc) + ").";
    int primary = rc & 0xff;
    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) return error{errc::corrupt_data, std::move(msg)};
    return error{errc::storage_error, std::move(msg)};
}

}  // namespace twinhub::store
