// The PostgreSQL backend's writer: group commit with one SAVEPOINT per batch.
#include "common/log.hpp"
#include "store/conditions.hpp"
#include "store/postgres_internal.hpp"
#include "store/store_codec.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <unordered_set>

namespace twinhub::store::pg {
namespace {

constexpr std::size_t max_group = 2048;

std::optional<std::uint64_t> as_rev(const std::optional<std::int64_t>& v) {
    if (!v) return std::nullopt;
    return static_cast<std::uint64_t>(*v);
}

// A batch that is one twin write over an existing twin (not create-only): the hot path. Its UPDATE
// either changes the one row (done) or nothing (then it runs again as an ordinary batch, which
// finds out why); a failing UPDATE aborts the transaction, and the group runs again without
// pipelining.
bool one_twin_write(const pending& p) {
    const auto& ops = p.batch.ops();
    if (ops.size() != 1) return false;
    auto* op = std::get_if<write_batch::put_twin_op>(&ops[0]);
    return op && op->e.k != expect::kind::absent;
}

constexpr std::size_t max_pipelined = 256;

}  // namespace

postgres_store::postgres_store(std::unique_ptr<pg_db> writer, std::vector<std::unique_ptr<pg_db>> readers,
                               std::unique_ptr<pg_db> feed, std::string node_id, std::uint64_t last_change,
                               std::vector<std::uint64_t> next_seq)
    : w_(std::move(writer)), readers_(std::move(readers)), next_seq_(std::move(next_seq)),
      node_id_(std::move(node_id)), feed_(std::move(feed)), last_change_(last_change),
      feed_thread_([this] { feed_loop(); }), writer_thread_([this] { run(); }) {}

void postgres_store::set_change_listener(change_listener l) {
    std::lock_guard lock(listener_m_);
    listener_ = std::move(l);
}

void postgres_store::close() {
    queue_.close();
    std::lock_guard lock(close_m_);
    if (writer_thread_.joinable() && writer_thread_.get_id() != std::this_thread::get_id()) writer_thread_.join();
    {
        std::lock_guard l(feed_m_);
        feed_stop_ = true;
    }
    feed_cv_.notify_all();
    if (feed_thread_.joinable() && feed_thread_.get_id() != std::this_thread::get_id()) feed_thread_.join();
}

void postgres_store::commit(write_batch batch, commit_handler done) {
    pending p{std::move(batch), {}, std::move(done)};
    p.docs = serialize_docs(p.batch);
    if (!queue_.push(p)) p.done(error{errc::shutting_down, "The store is closed."});
}

void postgres_store::run() {
    std::vector<pending> group;
    std::vector<result<void>> results;
    while (queue_.take(group, max_group)) {
        results.assign(group.size(), result<void>{});
        commit_group(group, results);
        complete_group(group, results, listener_m_, listener_);
    }
}

// Each ordinary batch runs inside SAVEPOINT b (released by the next batch's "RELEASE SAVEPOINT b;
// SAVEPOINT b", one round trip, or by COMMIT): a failed condition, or a statement that fails (a
// duplicate C2D sequence number), rolls back to it and leaves the other batches of the group in
// place. Conditions are checked with SELECTs before the writes, as in the SQLite backend.
// Consecutive one-twin-write batches on distinct twins are sent as one pipeline of UPDATEs without
// savepoints (distinct rows, so their order among themselves does not matter); those that changed
// nothing then run one by one as ordinary batches, in commit order.
void postgres_store::commit_group(std::vector<pending>& group, std::vector<result<void>>& results, bool pipelined) {
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
    auto abandon = [&](const error& e) {
        log::error("store.transaction_lost", {{"message", e.message}, {"batches", group.size()}});
        if (w_->healthy()) (void)w_->exec("ROLLBACK", "rolling back");
        fail_all(e);
    };
    if (!w_->healthy()) {
        if (auto r = w_->reconnect(); !r) return fail_all(r.error());
        log::warn("store.reconnected", {{"backend", "postgresql"}});
    }
    if (auto r = w_->exec("BEGIN", "starting a transaction"); !r) {
        // A connection cut while idle (server restart, a proxy's timeout) shows here; nothing of the
        // group has run yet, so reconnect and begin once more.
        if (w_->healthy()) return fail_all(r.error());
        if (auto x = w_->reconnect(); !x) return fail_all(x.error());
        log::warn("store.reconnected", {{"backend", "postgresql"}});
        if (auto x = w_->exec("BEGIN", "starting a transaction"); !x) return fail_all(x.error());
    }
    if (auto r = lock_counters(group); !r) return abandon(r.error());
    bool savepoint = false;
    // One ordinary batch; false when the transaction is lost (abandoned).
    auto ordinary = [&](std::size_t i) -> bool {
        const std::size_t seq_at_batch = seq_undo_.size();
        if (auto r = w_->exec(savepoint ? "RELEASE SAVEPOINT b; SAVEPOINT b" : "SAVEPOINT b", "starting a batch"); !r) {
            abandon(r.error());
            return false;
        }
        savepoint = true;
        auto r = apply(group[i]);
        if (!r) {
            undo_seq_to(seq_at_batch);
            if (!w_->healthy()) {
                abandon(r.error());
                return false;
            }
            if (auto x = w_->exec("ROLLBACK TO SAVEPOINT b", "rolling back a batch"); !x) {
                abandon(x.error());
                return false;
            }
        }
        results[i] = std::move(r);
        return true;
    };
    std::deque<pg_params> params;
    std::vector<std::size_t> unchanged;
    std::unordered_set<std::string> twins;
    for (std::size_t i = 0; i < group.size();) {
        if (!pipelined || !one_twin_write(group[i])) {
            if (!ordinary(i)) return;
            ++i;
            continue;
        }
        params.clear();
        twins.clear();
        std::size_t j = i;
        for (; j < group.size() && j - i < max_pipelined && one_twin_write(group[j]); ++j) {
            auto& op = std::get<write_batch::put_twin_op>(group[j].batch.ops()[0]);
            if (!twins.insert(op.id.device_id + '\0' + op.id.module_id).second) break;
            auto& p = params.emplace_back();
            p.text(op.id.device_id).text(op.id.module_id).i64(static_cast<std::int64_t>(op.t->version));
            p.text(group[j].docs[0]);
            if (op.e.k == expect::kind::revision) p.i64(static_cast<std::int64_t>(op.e.rev));
            else p.null();
        }
        auto changed = w_->run_pipelined(twin_update, params, "writing twins");
        if (!changed) {
            log::warn("store.pipeline_failed", {{"message", changed.error().message}, {"batches", group.size()}});
            if (w_->healthy()) (void)w_->exec("ROLLBACK", "rolling back");
            undo_seq_to(0);
            for (auto& r : results) r = result<void>{};
            return commit_group(group, results, false);
        }
        unchanged.clear();
        params.clear();
        for (std::size_t k = i; k < j; ++k) {
            if ((*changed)[k - i] != 1) {
                unchanged.push_back(k);
                continue;
            }
            auto& op = std::get<write_batch::put_twin_op>(group[k].batch.ops()[0]);
            auto& p = params.emplace_back();
            p.i64(static_cast<std::int64_t>(next_change_++)).text(node_id_).i64(static_cast<int>(remote_change::kind::twin));
            p.text(op.id.device_id).text(op.id.module_id).text(group[k].docs[0]).text(op.desired_patch).i64(group_ns_);
        }
        if (!params.empty()) {
            if (auto c = w_->run_pipelined(change_put, params, "recording changes"); !c) {
                log::warn("store.pipeline_failed", {{"message", c.error().message}, {"batches", group.size()}});
                if (w_->healthy()) (void)w_->exec("ROLLBACK", "rolling back");
                undo_seq_to(0);
                for (auto& r : results) r = result<void>{};
                return commit_group(group, results, false);
            }
        }
        for (auto k : unchanged)
            if (!ordinary(k)) return;
        i = j;
    }
    if (w_->in_failed_transaction()) return abandon(error{errc::storage_error, "The transaction failed."});
    if (auto r = store_counters(); !r) return abandon(r.error());
    if (auto r = w_->commit(); !r) {
        log::error("store.commit_failed", {{"message", r.error().message}, {"batches", group.size()}});
        if (w_->healthy()) (void)w_->exec("ROLLBACK", "rolling back");
        return fail_all(r.error());
    }
}

result<void> postgres_store::lock_counters(const std::vector<pending>& group) {
    locked_parts_.clear();
    bool c2d = false, feedback = false, change = false;
    for (const auto& p : group)
        for (const auto& o : p.batch.ops()) {
            if (auto* e = std::get_if<write_batch::append_event_op>(&o)) {
                if (e->e.partition < next_seq_.size()) locked_parts_.emplace_back(e->e.partition, 0);
            } else if (std::holds_alternative<write_batch::enqueue_c2d_op>(o)) {
                c2d = change = true;
            } else if (std::holds_alternative<write_batch::append_feedback_op>(o)) {
                feedback = change = true;
            } else if (std::holds_alternative<write_batch::update_c2d_op>(o) ||
                       std::holds_alternative<write_batch::delete_c2d_op>(o) ||
                       std::holds_alternative<write_batch::delete_feedback_op>(o)) {
                change = true;  // every C2D write is a change row (cluster_link::c2d_change)
            } else if (std::holds_alternative<write_batch::put_twin_op>(o) ||
                       std::holds_alternative<write_batch::put_device_op>(o) ||
                       std::holds_alternative<write_batch::delete_device_op>(o) ||
                       std::holds_alternative<write_batch::put_module_op>(o) ||
                       std::holds_alternative<write_batch::delete_module_op>(o) ||
                       std::holds_alternative<write_batch::put_policy_op>(o) ||
                       std::holds_alternative<write_batch::delete_policy_op>(o)) {
                change = true;
            }
        }
    change_locked_ = change;
    group_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
    std::sort(locked_parts_.begin(), locked_parts_.end());
    locked_parts_.erase(std::unique(locked_parts_.begin(), locked_parts_.end()), locked_parts_.end());
    for (auto& [part, value] : locked_parts_) {
        pg_params p;
        p.i64(part);
        auto r = w_->run(event_counter_lock, p, "allocating event sequence numbers");
        if (!r) return r.error();
        if (r->size() != 1) return error{errc::storage_error, "The event counter row is missing."};
        value = static_cast<std::uint64_t>(r->i64(0, 0));
        next_seq_[part] = value;
    }
    auto counter = [&](const char* name, std::uint64_t& next) -> result<void> {
        pg_params p;
        p.text(name);
        auto r = w_->run(counter_lock, p, "allocating sequence numbers");
        if (!r) return r.error();
        if (r->size() != 1) return error{errc::corrupt_data, std::string("The store's counter '") + name + "' is missing."};
        next = static_cast<std::uint64_t>(r->i64(0, 0)) + 1;
        return {};
    };
    if (c2d)
        if (auto r = counter("c2d", next_c2d_); !r) return r;
    if (feedback)
        if (auto r = counter("feedback", next_feedback_); !r) return r;
    // Last: every writer takes the rows in this one order (event partitions ascending, c2d,
    // feedback, change), so two nodes never deadlock on them.
    if (change) {
        if (auto r = counter("change", next_change_); !r) return r;
        change_at_lock_ = next_change_;
    }
    return {};
}

result<void> postgres_store::record_change(remote_change::kind k, std::string_view device_id,
                                           std::string_view module_id, std::string_view doc, std::string_view patch) {
    return record_change(static_cast<std::int64_t>(k), device_id, module_id, doc, patch);
}

result<void> postgres_store::record_c2d_change(cluster_link::c2d_change::kind k, const identity_key& id,
                                               std::uint64_t seq, std::uint32_t delivery_count) {
    return record_change(c2d_kind_base + static_cast<std::int64_t>(k), id.device_id, id.module_id,
                         std::to_string(seq), std::to_string(delivery_count));
}

result<void> postgres_store::record_change(std::int64_t k, std::string_view device_id, std::string_view module_id,
                                           std::string_view doc, std::string_view patch) {
    pg_params p;
    p.i64(static_cast<std::int64_t>(next_change_++)).text(node_id_).i64(k);
    p.text(device_id).text(module_id).text(doc).text(patch).i64(group_ns_);
    auto r = w_->run(change_put, p, "recording a change");
    if (!r) return r.error();
    return {};
}

result<void> postgres_store::store_counters() {
    for (const auto& [part, value] : locked_parts_) {
        if (next_seq_[part] == value) continue;
        pg_params p;
        p.i64(part).i64(static_cast<std::int64_t>(next_seq_[part]));
        if (auto r = w_->run(event_counter_set, p, "allocating event sequence numbers"); !r) return r.error();
    }
    if (change_locked_ && next_change_ != change_at_lock_) {
        pg_params p;
        p.text("change").i64(static_cast<std::int64_t>(next_change_ - 1));
        if (auto r = w_->run(counter_set, p, "numbering changes"); !r) return r.error();
    }
    return {};
}

result<void> postgres_store::apply(pending& p) {
    auto& ops = p.batch.ops();
    c2d_delete_missed_ = false;
    for (std::size_t i = 0; i < ops.size(); ++i)
        if (auto r = apply_op(ops[i], p.docs[i]); !r) return r;
    return {};
}

result<void> postgres_store::run_text(q s, std::string_view what, std::initializer_list<std::string_view> args) {
    pg_params p;
    for (auto a : args) p.text(a);
    auto r = w_->run(s, p, what);
    if (!r) return r.error();
    return {};
}

result<std::optional<std::int64_t>> postgres_store::get_int(q s, std::string_view a, std::optional<std::string_view> b,
                                                            std::string_view what) {
    pg_params p;
    p.text(a);
    if (b) p.text(*b);
    auto r = w_->run(s, p, what);
    if (!r) return r.error();
    if (r->size() == 0) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(r->i64(0, 0));
}

// The device (and, for a module, the module) a write needs.
result<void> postgres_store::identity_exists(const identity_key& id) {
    auto dev = get_int(device_get, id.device_id, std::nullopt, "reading a device");
    if (!dev) return dev.error();
    if (!*dev) return error{errc::device_not_found, "Device '" + id.device_id + "' not found."};
    if (id.is_module()) {
        auto mod = get_int(module_get, id.device_id, id.module_id, "reading a module");
        if (!mod) return mod.error();
        if (!*mod)
            return error{errc::module_not_found, "Module '" + id.module_id + "' on device '" + id.device_id + "' not found."};
    }
    return {};
}

result<void> postgres_store::apply_twin(write_batch::put_twin_op& op, const std::string& doc) {
    const auto& id = op.id;
    if (op.e.k != expect::kind::absent) {
        // Fast path, one statement: the twin exists (so does its identity) and the condition holds.
        pg_params p;
        p.text(id.device_id).text(id.module_id).i64(static_cast<std::int64_t>(op.t->version)).text(doc);
        if (op.e.k == expect::kind::revision) p.i64(static_cast<std::int64_t>(op.e.rev));
        else p.null();
        auto n = w_->run(twin_update, p, "writing a twin");
        if (!n) return n.error();
        if (n->changed() == 1) return record_change(remote_change::kind::twin, id.device_id, id.module_id, doc, op.desired_patch);
    }
    // Slow path: find out which rule fails, or insert a twin that was never written.
    if (auto r = identity_exists(id); !r) return r;
    auto cur = get_int(twin_get, id.device_id, id.module_id, "reading a twin");
    if (!cur) return cur.error();
    if (auto r = check_condition(op.e, as_rev(*cur), twin_kind(id)); !r) return r;
    if (*cur) return error{errc::internal, "Twin write missed an existing twin."};  // the fast path covers it
    pg_params p;
    p.text(id.device_id).text(id.module_id).i64(static_cast<std::int64_t>(op.t->version)).text(doc);
    if (auto r = w_->run(twin_insert, p, "writing a twin"); !r) return r.error();
    return record_change(remote_change::kind::twin, id.device_id, id.module_id, doc, op.desired_patch);
}

result<void> postgres_store::apply_op(write_batch::op& o, const std::string& doc) {
    using wb = write_batch;
    auto run_p = [&](q s, const pg_params& p, std::string_view what) -> result<void> {
        auto r = w_->run(s, p, what);
        if (!r) return r.error();
        return {};
    };
    if (auto* op = std::get_if<wb::put_twin_op>(&o)) return apply_twin(*op, doc);
    if (auto* op = std::get_if<wb::put_device_op>(&o)) {
        auto cur = get_int(device_get, op->d.device_id, std::nullopt, "reading a device");
        if (!cur) return cur.error();
        if (auto r = check_condition(op->e, as_rev(*cur), device_kind(op->d.device_id)); !r) return r;
        pg_params p;
        p.text(op->d.device_id).i64(static_cast<std::int64_t>(op->d.etag)).text(doc);
        if (auto r = run_p(device_put, p, "writing a device"); !r) return r;
        return record_change(remote_change::kind::device, op->d.device_id, "", doc, "");
    }
    if (auto* op = std::get_if<wb::delete_device_op>(&o)) {
        auto cur = get_int(device_get, op->device_id, std::nullopt, "reading a device");
        if (!cur) return cur.error();
        if (auto r = check_condition(op->e, as_rev(*cur), device_kind(op->device_id)); !r) return r;
        for (auto s : {device_delete, device_modules_delete, device_twins_delete, device_sessions_delete,
                       device_c2d_delete})
            if (auto r = run_text(s, "deleting a device", {op->device_id}); !r) return r;
        if (!*cur) return {};
        return record_change(remote_change::kind::device_deleted, op->device_id, "", "", "");
    }
    if (auto* op = std::get_if<wb::put_module_op>(&o)) {
        auto dev = get_int(device_get, op->m.device_id, std::nullopt, "reading a device");
        if (!dev) return dev.error();
        if (!*dev) return error{errc::device_not_found, "Device '" + op->m.device_id + "' not found."};
        auto cur = get_int(module_get, op->m.device_id, op->m.module_id, "reading a module");
        if (!cur) return cur.error();
        if (auto r = check_condition(op->e, as_rev(*cur), module_kind(op->m.device_id, op->m.module_id)); !r) return r;
        pg_params p;
        p.text(op->m.device_id).text(op->m.module_id).i64(static_cast<std::int64_t>(op->m.etag)).text(doc);
        if (auto r = run_p(module_put, p, "writing a module"); !r) return r;
        return record_change(remote_change::kind::module, op->m.device_id, op->m.module_id, doc, "");
    }
    if (auto* op = std::get_if<wb::delete_module_op>(&o)) {
        auto dev = get_int(device_get, op->device_id, std::nullopt, "reading a device");
        if (!dev) return dev.error();
        if (!*dev) {
            if (op->e.k == expect::kind::any) return {};
            return error{errc::device_not_found, "Device '" + op->device_id + "' not found."};
        }
        auto cur = get_int(module_get, op->device_id, op->module_id, "reading a module");
        if (!cur) return cur.error();
        if (auto r = check_condition(op->e, as_rev(*cur), module_kind(op->device_id, op->module_id)); !r) return r;
        for (auto s : {module_delete, twin_delete, module_c2d_delete})
            if (auto r = run_text(s, "deleting a module", {op->device_id, op->module_id}); !r) return r;
        std::string client = op->device_id + "/" + op->module_id;
        if (auto r = run_text(session_delete, "deleting a module", {client}); !r) return r;
        if (!*cur) return {};
        return record_change(remote_change::kind::module_deleted, op->device_id, op->module_id, "", "");
    }
    if (auto* op = std::get_if<wb::trim_events_op>(&o)) {
        if (op->partition >= next_seq_.size()) return {};
        pg_params p;
        p.i64(op->partition).i64(op->before_ns).i64(op->max_rows);
        return run_p(event_trim, p, "trimming events");
    }
    if (auto* op = std::get_if<wb::put_setting_op>(&o)) return run_text(setting_put, "writing a setting", {op->key, doc});
    if (auto* op = std::get_if<wb::delete_setting_op>(&o))
        return run_text(setting_delete, "deleting a setting", {op->key});
    if (auto* op = std::get_if<wb::put_policy_op>(&o)) {
        if (auto r = run_text(policy_put, "writing a policy", {op->p.key_name, doc}); !r) return r;
        return record_change(remote_change::kind::policies, "", "", "", "");
    }
    if (auto* op = std::get_if<wb::delete_policy_op>(&o)) {
        if (auto r = run_text(policy_delete, "deleting a policy", {op->key_name}); !r) return r;
        return record_change(remote_change::kind::policies, "", "", "", "");
    }
    if (auto* op = std::get_if<wb::put_session_op>(&o))
        return run_text(session_put, "writing a session", {op->s.client_id, device_of_client(op->s.client_id), doc});
    if (auto* op = std::get_if<wb::delete_session_op>(&o))
        return run_text(session_delete, "deleting a session", {op->client_id});
    if (auto* op = std::get_if<wb::append_event_op>(&o)) {
        auto& e = op->e;
        if (e.partition >= next_seq_.size())
            return error{errc::invalid_argument, "Partition " + std::to_string(e.partition) + " does not exist."};
        e.sequence_number = next_seq_[e.partition];
        pg_params p;
        p.i64(e.partition).i64(static_cast<std::int64_t>(e.sequence_number)).text(e.source.device_id);
        p.text(e.source.module_id).i64(e.enqueued_time_ns).bytes(e.body).bytes(doc);
        if (auto r = run_p(event_put, p, "appending an event"); !r) return r;
        ++next_seq_[e.partition];
        seq_undo_.push_back(e.partition);
        return {};
    }
    if (auto* op = std::get_if<wb::enqueue_c2d_op>(&o)) {
        auto& m = op->m;
        if (auto r = identity_exists(m.target); !r) return r;
        // next_c2d_ is the locked counter + 1 (lock_counters), advanced past caller-given numbers.
        if (op->assigned) *op->assigned = m.sequence_number = next_c2d_;
        next_c2d_ = std::max(next_c2d_, m.sequence_number + 1);
        pg_params p;
        p.i64(static_cast<std::int64_t>(m.sequence_number)).text(m.target.device_id).text(m.target.module_id);
        p.i64(m.enqueued_time_ns).i64(m.expiry_time_ns).i64(static_cast<std::int64_t>(m.ack));
        p.i64(m.delivery_count).bytes(m.body).bytes(doc);
        if (auto r = run_p(c2d_put, p, "enqueueing a cloud-to-device message"); !r) return r;
        pg_params c;
        c.i64(static_cast<std::int64_t>(m.sequence_number));
        if (auto r = run_p(c2d_counter, c, "enqueueing a cloud-to-device message"); !r) return r;
        return record_c2d_change(c2d_change::kind::enqueued, m.target, m.sequence_number);
    }
    auto by_seq = [&](q s, std::uint64_t seq, std::optional<std::int64_t> v, std::string_view what) {
        pg_params p;
        p.i64(static_cast<std::int64_t>(seq));
        if (v) p.i64(*v);
        return w_->run(s, p, what);
    };
    // The C2D row's target, from RETURNING device_id, module_id; nullopt when no row matched.
    auto c2d_write = [&](q s, std::uint64_t seq, std::optional<std::int64_t> v,
                         std::string_view what) -> result<std::optional<identity_key>> {
        auto r = by_seq(s, seq, v, what);
        if (!r) return r.error();
        if (r->size() == 0) return std::optional<identity_key>{};
        return std::optional<identity_key>{identity_key{std::string(r->bytes(0, 0)), std::string(r->bytes(0, 1))}};
    };
    if (auto* op = std::get_if<wb::update_c2d_op>(&o)) {
        auto id = c2d_write(c2d_update, op->seq, op->delivery_count, "updating a cloud-to-device message");
        if (!id) return id.error();
        if (!*id) return {};
        return record_c2d_change(c2d_change::kind::delivery_count, **id, op->seq, op->delivery_count);
    }
    if (auto* op = std::get_if<wb::delete_c2d_op>(&o)) {
        auto id = c2d_write(c2d_delete, op->seq, std::nullopt, "deleting a cloud-to-device message");
        if (!id) return id.error();
        c2d_delete_missed_ = !*id;
        if (!*id) return {};
        return record_c2d_change(c2d_change::kind::deleted, **id, op->seq);
    }
    if (auto* op = std::get_if<wb::delete_feedback_op>(&o)) {
        if (auto r = by_seq(feedback_delete, op->seq, std::nullopt, "deleting a feedback record"); !r) return r.error();
        return record_c2d_change(c2d_change::kind::feedback_deleted, {}, op->seq);
    }
    if (auto* op = std::get_if<wb::append_feedback_op>(&o)) {
        if (std::exchange(c2d_delete_missed_, false)) return {};  // `assigned` stays 0: not written
        if (op->assigned) *op->assigned = op->f.sequence_number = next_feedback_;
        next_feedback_ = std::max(next_feedback_, op->f.sequence_number + 1);
        pg_params p;
        p.i64(static_cast<std::int64_t>(op->f.sequence_number)).text(doc);
        if (auto r = run_p(feedback_put, p, "appending a feedback record"); !r) return r;
        if (auto r = by_seq(feedback_counter, op->f.sequence_number, std::nullopt, "appending a feedback record"); !r)
            return r.error();
        return record_c2d_change(c2d_change::kind::feedback_appended, {}, op->f.sequence_number);
    }
    return error{errc::internal, "Unknown store operation."};
}

}  // namespace twinhub::store::pg
