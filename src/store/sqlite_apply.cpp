// One write_batch op as SQL on the writer connection, with its etag/version condition checked.
#include "store/sqlite_internal.hpp"

#include "store/conditions.hpp"
#include "store/store_codec.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace twinhub::store::sqlite_detail {

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

}  // namespace twinhub::store::sqlite_detail
