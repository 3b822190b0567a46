// A thin owner of one libpq connection for the PostgreSQL backend: connecting, preparing the
// backend's statements, running them with binary parameters and binary results, and translating
// libpq failures into twinhub errors (storage_error; the only place that does it). Messages never
// carry the connection string (it may hold a password).
// Thread safety: none; one thread (or one lease holder of a pg_pool) uses a connection at a time.
#pragma once

#include "common/errc.hpp"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::store {

// A statement the backend prepares on every connection: its SQL and its parameter types, one
// letter per parameter ('t' text, 'i' int8, 'b' bytea).
struct pg_statement {
    const char* sql;
    const char* types;
};

// Parameters of one statement, all sent in binary format (text as its bytes, int8 big-endian).
// The referenced strings must outlive the call.
class pg_params {
public:
    pg_params() = default;
    // values() points into the object itself: never copied or moved (keep many in a std::deque).
    pg_params(const pg_params&) = delete;
    pg_params& operator=(const pg_params&) = delete;
    pg_params& text(std::string_view v);
    pg_params& bytes(std::string_view v) { return text(v); }
    pg_params& i64(std::int64_t v);
    pg_params& null();

    int size() const noexcept { return n_; }
    const char* const* values() const noexcept { return values_; }
    const int* lengths() const noexcept { return lengths_; }
    const int* formats() const noexcept { return formats_; }

private:
    static constexpr int max = 12;
    int n_ = 0;
    const char* values_[max] = {};
    int lengths_[max] = {};
    int formats_[max] = {};
    char ints_[max][8] = {};
};

// The rows of one statement, in binary format.
class pg_rows {
public:
    explicit pg_rows(void* r) noexcept : r_(r) {}
    pg_rows(pg_rows&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
    pg_rows& operator=(pg_rows&& o) noexcept;
    ~pg_rows();

    int size() const noexcept;
    bool null(int row, int col) const noexcept;
    std::string_view bytes(int row, int col) const noexcept;  // text and bytea columns
    std::int64_t i64(int row, int col) const noexcept;       // int8 columns
    // Rows that an INSERT, UPDATE or DELETE changed.
    std::int64_t changed() const noexcept;

private:
    void* r_;
};

class pg_db {
public:
    // Connects with `conninfo` (a postgresql:// URL or key=value list) and prepares `statements`
    // (named s0, s1, ...). Fails with storage_error.
    static result<std::unique_ptr<pg_db>> connect(const std::string& conninfo, const std::vector<pg_statement>& statements);
    ~pg_db();
    pg_db(const pg_db&) = delete;
    pg_db& operator=(const pg_db&) = delete;

    // A simple query (several statements separated by ';' allowed); its rows are dropped.
    result<void> exec(const char* sql, std::string_view what);
    // An unprepared statement without parameters, with its rows (schema work only).
    result<pg_rows> query(const char* sql, std::string_view what);
    // Runs prepared statement number `index` of the list given to connect().
    result<pg_rows> run(int index, const pg_params& p, std::string_view what);

    // Runs prepared statement `index` once per parameter set in libpq's pipeline mode (one round
    // trip for all); returns the rows each changed. Any failure fails the call: the transaction
    // it ran in is then aborted (or the connection lost) and must be rolled back.
    result<std::vector<std::int64_t>> run_pipelined(int index, const std::deque<pg_params>& params,
                                                    std::string_view what);
    // COMMIT, checking that the server did commit (an aborted transaction "commits" as ROLLBACK).
    result<void> commit();
    // Inside a transaction that a failed statement aborted.
    bool in_failed_transaction() const noexcept;
    // After a connection failure: reconnects and prepares again. False if that fails too.
    bool healthy() const noexcept;
    result<void> reconnect();

private:
    pg_db(void* conn, std::vector<pg_statement> statements) : conn_(conn), statements_(std::move(statements)) {}
    result<void> prepare_all();
    error fail(std::string_view what, void* res) const;

    void* conn_;  // PGconn*
    std::vector<pg_statement> statements_;
};

// A fixed set of connections for readers. acquire() blocks while all are leased.
class pg_pool {
public:
    class lease {
    public:
        lease(pg_pool& p, std::unique_ptr<pg_db> c) : p_(&p), c_(std::move(c)) {}
        lease(lease&& o) noexcept = default;
        ~lease();
        pg_db& operator*() const noexcept { return *c_; }
        pg_db* operator->() const noexcept { return c_.get(); }

    private:
        pg_pool* p_;
        std::unique_ptr<pg_db> c_;
    };

    explicit pg_pool(std::vector<std::unique_ptr<pg_db>> conns) : free_(std::move(conns)) {}
    // A connection, reconnected first if it had failed (storage_error if that fails).
    result<lease> acquire();

private:
    void give_back(std::unique_ptr<pg_db> c);
    std::mutex m_;
    std::condition_variable cv_;
    std::vector<std::unique_ptr<pg_db>> free_;
};

}  // namespace twinhub::store
