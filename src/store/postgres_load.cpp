// The PostgreSQL backend's readers: load, load_policies, read_events, event_partition_info and
// load_c2d, each on a pooled connection.
#include "store/postgres_internal.hpp"
#include "store/store_codec.hpp"

namespace twinhub::store::pg {
namespace {

// A consistent read of several statements: one REPEATABLE READ, READ ONLY transaction.
class read_txn {
public:
    explicit read_txn(pg_db& db) : db_(db) {}
    result<void> begin() {
        auto r = db_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting a read");
        open_ = r.has_value();
        return r;
    }
    ~read_txn() {
        if (open_) (void)db_.exec("COMMIT", "ending a read");
    }

private:
    pg_db& db_;
    bool open_ = false;
};

result<auth::shared_access_policy> policy_of(const pg_rows& rows, int i) {
    auto v = parse_doc(rows.bytes(i, 1), "policy '" + std::string(rows.bytes(i, 0)) + "'");
    if (!v) return v.error();
    return auth::policy_from_storage_json(*v);
}

result<twin::twin_document> twin_of(const pg_rows& rows, int i, std::string_view name) {
    if (rows.null(i, 2)) return twin::twin_document{};
    auto v = parse_doc(rows.bytes(i, 2), "twin of '" + std::string(name) + "'");
    if (!v) return v.error();
    return twin::from_storage_json(*v);
}

// Runs `f` on a pooled connection; when it fails because the connection broke (the server
// restarted, an idle connection was cut), once more on the reconnected connection: reads are safe
// to repeat.
template <class F>
auto with_reader(pg_pool& pool, F&& f) -> decltype(f(std::declval<pg_db&>())) {
    auto c = pool.acquire();
    if (!c) return c.error();
    auto r = f(**c);
    if (!r && !(*c)->healthy()) {
        if (auto x = (*c)->reconnect(); !x) return x.error();
        r = f(**c);
    }
    return r;
}

error no_partition(std::uint32_t partition) {
    return error{errc::invalid_argument, "Partition " + std::to_string(partition) + " does not exist."};
}

}  // namespace

result<std::vector<auth::shared_access_policy>> postgres_store::load_policies() {
    return with_reader(readers_, [&](pg_db& db) -> result<std::vector<auth::shared_access_policy>> {
        auto rows = db.run(q::load_policies, {}, "loading policies");
        if (!rows) return rows.error();
        std::vector<auth::shared_access_policy> out;
        for (int i = 0; i < rows->size(); ++i) {
            auto p = policy_of(*rows, i);
            if (!p) return p.error();
            out.push_back(std::move(*p));
        }
        return out;
    });
}

result<snapshot> postgres_store::load() {
    return with_reader(readers_, [&](pg_db& db) -> result<snapshot> {
        read_txn txn(db);
        if (auto r = txn.begin(); !r) return r.error();
        snapshot snap;
        auto rows = db.run(q::load_policies, {}, "loading policies");
        if (!rows) return rows.error();
        for (int i = 0; i < rows->size(); ++i) {
            auto p = policy_of(*rows, i);
            if (!p) return p.error();
            snap.policies.push_back(std::move(*p));
        }
        rows = db.run(q::load_devices, {}, "loading devices");
        if (!rows) return rows.error();
        for (int i = 0; i < rows->size(); ++i) {
            auto name = rows->bytes(i, 0);
            auto v = parse_doc(rows->bytes(i, 1), "device '" + std::string(name) + "'");
            if (!v) return v.error();
            auto d = registry::device_from_storage_json(*v);
            if (!d) return d.error();
            auto t = twin_of(*rows, i, name);
            if (!t) return t.error();
            snap.devices.push_back({std::move(*d), std::move(*t)});
        }
        rows = db.run(q::load_modules, {}, "loading modules");
        if (!rows) return rows.error();
        for (int i = 0; i < rows->size(); ++i) {
            auto name = rows->bytes(i, 0);
            auto v = parse_doc(rows->bytes(i, 1), "module '" + std::string(name) + "'");
            if (!v) return v.error();
            auto m = registry::module_from_storage_json(*v);
            if (!m) return m.error();
            auto t = twin_of(*rows, i, name);
            if (!t) return t.error();
            snap.modules.push_back({std::move(*m), std::move(*t)});
        }
        rows = db.run(q::load_sessions, {}, "loading sessions");
        if (!rows) return rows.error();
        for (int i = 0; i < rows->size(); ++i) {
            auto s = parse_session(rows->bytes(i, 0), rows->bytes(i, 1));
            if (!s) return s.error();
            snap.sessions.push_back(std::move(*s));
        }
        rows = db.run(q::load_settings, {}, "loading settings");
        if (!rows) return rows.error();
        for (int i = 0; i < rows->size(); ++i)
            snap.settings.emplace_back(std::string(rows->bytes(i, 0)), std::string(rows->bytes(i, 1)));
        return snap;
    });
}

result<std::vector<event_record>> postgres_store::read_events(std::uint32_t partition, std::uint64_t from,
                                                              std::size_t max_count) {
    if (partition >= max_event_streams) return no_partition(partition);
    return with_reader(readers_, [&](pg_db& db) -> result<std::vector<event_record>> {
        pg_params p;
        p.i64(partition).i64(static_cast<std::int64_t>(std::min<std::uint64_t>(from, INT64_MAX)));
        p.i64(static_cast<std::int64_t>(std::min<std::size_t>(max_count, INT64_MAX)));
        auto rows = db.run(q::read_events, p, "reading events");
        if (!rows) return rows.error();
        std::vector<event_record> out;
        out.reserve(static_cast<std::size_t>(rows->size()));
        for (int i = 0; i < rows->size(); ++i) {
            event_record e;
            e.partition = partition;
            e.sequence_number = static_cast<std::uint64_t>(rows->i64(i, 0));
            e.source.device_id = std::string(rows->bytes(i, 1));
            e.source.module_id = std::string(rows->bytes(i, 2));
            e.enqueued_time_ns = rows->i64(i, 3);
            e.body = std::string(rows->bytes(i, 4));
            if (!parse_event_props(rows->bytes(i, 5), e))
                return error{errc::corrupt_data, "Stored event " + std::to_string(e.sequence_number) + " of partition " +
                                                     std::to_string(partition) + " has malformed properties."};
            out.push_back(std::move(e));
        }
        return out;
    });
}

result<store::partition_info> postgres_store::event_partition_info(std::uint32_t partition) {
    if (partition >= max_event_streams) return no_partition(partition);
    return with_reader(readers_, [&](pg_db& db) -> result<partition_info> {
        pg_params p;
        p.i64(partition);
        auto rows = db.run(q::event_bounds, p, "reading partition bounds");
        if (!rows) return rows.error();
        partition_info info;
        if (rows->size() > 0) {
            info.begin_sequence_number = static_cast<std::uint64_t>(rows->i64(0, 0));
            info.last_sequence_number = rows->i64(0, 1);
            info.last_enqueued_time_ns = rows->i64(0, 2);
        }
        return info;
    });
}

result<c2d_state> postgres_store::load_c2d() {
    return with_reader(readers_, [&](pg_db& db) -> result<c2d_state> {
        read_txn txn(db);
        if (auto r = txn.begin(); !r) return r.error();
        c2d_state out;
        auto rows = db.run(q::load_c2d, {}, "loading cloud-to-device messages");
        if (!rows) return rows.error();
        for (int i = 0; i < rows->size(); ++i) {
            c2d_message m;
            m.sequence_number = static_cast<std::uint64_t>(rows->i64(i, 0));
            m.target.device_id = std::string(rows->bytes(i, 1));
            m.target.module_id = std::string(rows->bytes(i, 2));
            m.enqueued_time_ns = rows->i64(i, 3);
            m.expiry_time_ns = rows->i64(i, 4);
            auto ack = rows->i64(i, 5);
            m.delivery_count = static_cast<std::uint32_t>(rows->i64(i, 6));
            m.body = std::string(rows->bytes(i, 7));
            if (ack < 0 || ack > 3 || !parse_c2d_props(rows->bytes(i, 8), m))
                return error{errc::corrupt_data,
                             "Stored cloud-to-device message " + std::to_string(m.sequence_number) + " is malformed."};
            m.ack = static_cast<c2d_ack>(ack);
            out.messages.push_back(std::move(m));
        }
        rows = db.run(q::load_feedback, {}, "loading feedback");
        if (!rows) return rows.error();
        for (int i = 0; i < rows->size(); ++i) {
            feedback_record f;
            f.sequence_number = static_cast<std::uint64_t>(rows->i64(i, 0));
            if (auto r = parse_feedback(rows->bytes(i, 1), f); !r) return r.error();
            out.feedback.push_back(std::move(f));
        }
        rows = db.run(q::load_counters, {}, "reading sequence numbers");
        if (!rows) return rows.error();
        for (int i = 0; i < rows->size(); ++i) {
            auto next = static_cast<std::uint64_t>(rows->i64(i, 1)) + 1;
            if (rows->bytes(i, 0) == "c2d") out.next_message_sequence = next;
            else if (rows->bytes(i, 0) == "feedback") out.next_feedback_sequence = next;
        }
        return out;
    });
}

}  // namespace twinhub::store::pg
