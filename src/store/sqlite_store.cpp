// The SQLite store: one writer thread group-commits batches (commit_group), a reader connection
// serves loads and event reads, a checkpointer keeps the WAL bounded. Internals: sqlite_internal.hpp.
#include "store/sqlite_store.hpp"
#include "store/sqlite_internal.hpp"

#include "common/log.hpp"
#include "store/conditions.hpp"
#include "store/store_codec.hpp"
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace twinhub::store {
namespace sqlite_detail {

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

}  // namespace sqlite_detail

using namespace sqlite_detail;

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
