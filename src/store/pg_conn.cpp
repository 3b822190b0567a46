#include "store/pg_conn.hpp"

#include <libpq-fe.h>

#include <cstdlib>
#include <cstring>
#include <optional>

namespace twinhub::store {
namespace {

constexpr Oid oid_of(char c) {
    switch (c) {
    case 'i': return 20;  // int8
    case 'b': return 17;  // bytea
    default: return 25;   // text
    }
}

std::string trimmed(const char* msg) {
    std::string s = msg ? msg : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

PGconn* c(void* p) { return static_cast<PGconn*>(p); }
PGresult* r(void* p) { return static_cast<PGresult*>(p); }

}  // namespace

pg_params& pg_params::text(std::string_view v) {
    if (n_ == max) std::abort();
    values_[n_] = v.data() ? v.data() : "";
    lengths_[n_] = static_cast<int>(v.size());
    formats_[n_] = 1;
    ++n_;
    return *this;
}

pg_params& pg_params::i64(std::int64_t v) {
    if (n_ == max) std::abort();
    auto u = static_cast<std::uint64_t>(v);
    for (int i = 0; i < 8; ++i) ints_[n_][i] = static_cast<char>((u >> (56 - 8 * i)) & 0xff);
    values_[n_] = ints_[n_];
    lengths_[n_] = 8;
    formats_[n_] = 1;
    ++n_;
    return *this;
}

pg_params& pg_params::null() {
    if (n_ == max) std::abort();
    values_[n_] = nullptr;
    lengths_[n_] = 0;
    formats_[n_] = 1;
    ++n_;
    return *this;
}

pg_rows& pg_rows::operator=(pg_rows&& o) noexcept {
    if (this != &o) {
        if (r_) PQclear(r(r_));
        r_ = o.r_;
        o.r_ = nullptr;
    }
    return *this;
}

pg_rows::~pg_rows() {
    if (r_) PQclear(r(r_));
}

int pg_rows::size() const noexcept { return PQntuples(r(r_)); }
bool pg_rows::null(int row, int col) const noexcept { return PQgetisnull(r(r_), row, col) != 0; }

std::string_view pg_rows::bytes(int row, int col) const noexcept {
    if (null(row, col)) return {};
    return {PQgetvalue(r(r_), row, col), static_cast<std::size_t>(PQgetlength(r(r_), row, col))};
}

std::int64_t pg_rows::i64(int row, int col) const noexcept {
    if (null(row, col) || PQgetlength(r(r_), row, col) != 8) return 0;
    auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r(r_), row, col));
    std::uint64_t u = 0;
    for (int i = 0; i < 8; ++i) u = (u << 8) | p[i];
    return static_cast<std::int64_t>(u);
}

std::int64_t pg_rows::changed() const noexcept {
    const char* n = PQcmdTuples(r(r_));
    return n && *n ? std::atoll(n) : 0;
}

result<std::unique_ptr<pg_db>> pg_db::connect(const std::string& conninfo, const std::vector<pg_statement>& statements) {
    PGconn* conn = PQconnectdb(conninfo.c_str());
    if (!conn) return error{errc::storage_error, "Cannot connect to PostgreSQL: out of memory."};
    std::unique_ptr<pg_db> db(new pg_db(conn, statements));
    // Server notices ("relation ... already exists, skipping") are not errors; drop them.
    PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
    if (PQstatus(conn) != CONNECTION_OK)
        return error{errc::storage_error, "Cannot connect to PostgreSQL: " + trimmed(PQerrorMessage(conn)) + "."};
    // Every acknowledged write must be on disk on the server: whatever the server's default.
    if (auto x = db->exec("SET synchronous_commit = on", "configuring the session"); !x) return x.error();
    if (auto x = db->prepare_all(); !x) return x.error();
    return db;
}

pg_db::~pg_db() { PQfinish(c(conn_)); }

error pg_db::fail(std::string_view what, void* res) const {
    std::string msg = res ? trimmed(PQresultErrorMessage(r(res))) : std::string();
    if (msg.empty()) msg = trimmed(PQerrorMessage(c(conn_)));
    return error{errc::storage_error, "PostgreSQL failed " + std::string(what) + ": " + msg};
}

result<void> pg_db::prepare_all() {
    for (std::size_t i = 0; i < statements_.size(); ++i) {
        std::vector<Oid> types;
        for (const char* t = statements_[i].types; *t; ++t) types.push_back(oid_of(*t));
        std::string name = "s" + std::to_string(i);
        PGresult* res = PQprepare(c(conn_), name.c_str(), statements_[i].sql, static_cast<int>(types.size()),
                                  types.empty() ? nullptr : types.data());
        pg_rows guard(res);
        if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) return fail("preparing a statement", res);
    }
    return {};
}

result<void> pg_db::exec(const char* sql, std::string_view what) {
    PGresult* res = PQexec(c(conn_), sql);
    pg_rows guard(res);
    auto st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return fail(what, res);
    return {};
}

result<pg_rows> pg_db::run(int index, const pg_params& p, std::string_view what) {
    char name[16];
    std::snprintf(name, sizeof name, "s%d", index);
    PGresult* res = PQexecPrepared(c(conn_), name, p.size(), p.values(), p.lengths(), p.formats(), 1);
    pg_rows rows(res);
    auto st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return fail(what, res);
    return rows;
}

result<pg_rows> pg_db::query(const char* sql, std::string_view what) {
    PGresult* res = PQexecParams(c(conn_), sql, 0, nullptr, nullptr, nullptr, nullptr, 1);
    pg_rows rows(res);
    auto st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return fail(what, res);
    return rows;
}

result<std::vector<std::int64_t>> pg_db::run_pipelined(int index, const std::deque<pg_params>& params,
                                                       std::string_view what) {
    char name[16];
    std::snprintf(name, sizeof name, "s%d", index);
    PGconn* conn = c(conn_);
    if (PQenterPipelineMode(conn) != 1) return fail(what, nullptr);
    std::optional<error> failed;
    std::vector<std::int64_t> changed;
    changed.reserve(params.size());
    for (auto& p : params)
        if (PQsendQueryPrepared(conn, name, p.size(), p.values(), p.lengths(), p.formats(), 1) != 1) {
            failed = fail(what, nullptr);
            break;
        }
    if (PQpipelineSync(conn) != 1 && !failed) failed = fail(what, nullptr);
    // One result (then a null) per statement sent, then the sync's result; read all of them so that
    // the connection is usable afterwards, whatever failed.
    for (;;) {
        PGresult* res = PQgetResult(conn);
        if (!res) {
            if (PQstatus(conn) != CONNECTION_OK) {
                if (!failed) failed = fail(what, nullptr);
                break;
            }
            continue;  // the end of one statement's results
        }
        pg_rows rows(res);
        auto st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) break;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) changed.push_back(rows.changed());
        else if (!failed) failed = fail(what, res);
    }
    if (PQexitPipelineMode(conn) != 1 && !failed) failed = fail(what, nullptr);
    if (failed) return *failed;
    if (changed.size() != params.size())
        return error{errc::storage_error, "PostgreSQL returned " + std::to_string(changed.size()) + " results for " +
                                              std::to_string(params.size()) + " statements " + std::string(what) + "."};
    return changed;
}

result<void> pg_db::commit() {
    PGresult* res = PQexec(c(conn_), "COMMIT");
    pg_rows guard(res);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) return fail("committing", res);
    if (std::strcmp(PQcmdStatus(res), "COMMIT") != 0)
        return error{errc::storage_error, "PostgreSQL rolled the transaction back instead of committing it."};
    return {};
}

bool pg_db::in_failed_transaction() const noexcept { return PQtransactionStatus(c(conn_)) == PQTRANS_INERROR; }

bool pg_db::healthy() const noexcept { return PQstatus(c(conn_)) == CONNECTION_OK; }

result<void> pg_db::reconnect() {
    PQreset(c(conn_));
    if (PQstatus(c(conn_)) != CONNECTION_OK)
        return error{errc::storage_error, "Cannot reconnect to PostgreSQL: " + trimmed(PQerrorMessage(c(conn_))) + "."};
    if (auto x = exec("SET synchronous_commit = on", "configuring the session"); !x) return x;
    return prepare_all();
}

pg_pool::lease::~lease() {
    if (p_ && c_) p_->give_back(std::move(c_));
}

result<pg_pool::lease> pg_pool::acquire() {
    std::unique_ptr<pg_db> conn;
    {
        std::unique_lock l(m_);
        cv_.wait(l, [this] { return !free_.empty(); });
        conn = std::move(free_.back());
        free_.pop_back();
    }
    lease out(*this, std::move(conn));
    if (!out->healthy())
        if (auto x = out->reconnect(); !x) return x.error();
    return out;
}

void pg_pool::give_back(std::unique_ptr<pg_db> conn) {
    {
        std::lock_guard l(m_);
        free_.push_back(std::move(conn));
    }
    cv_.notify_one();
}

}  // namespace twinhub::store
