// Start-up loads (policies, identities with their twins, sessions, settings, C2D queues) and event reads.
#include "store/sqlite_internal.hpp"

#include "store/store_codec.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace twinhub::store::sqlite_detail {

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

}  // namespace twinhub::store::sqlite_detail
