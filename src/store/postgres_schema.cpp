// The PostgreSQL backend's schema, statements and opening.
#include "common/log.hpp"
#include "store/postgres_internal.hpp"
#include "store/postgres_store.hpp"

#include <charconv>
#include <random>

namespace twinhub::store {
namespace pg {
namespace {

// Forward-only: a released migration is never edited; a schema change is a new entry. Only
// portable SQL (see postgres_store.hpp): no SERIAL/sequences, no triggers, no JSONB, no
// extensions. The layout follows the SQLite backend's tables column for column.
struct migration {
    int version;
    const char* sql;
};

constexpr migration migrations[] = {
    {1, R"sql(
CREATE TABLE policies (key_name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE devices (device_id TEXT PRIMARY KEY, etag BIGINT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE modules (device_id TEXT NOT NULL, module_id TEXT NOT NULL, etag BIGINT NOT NULL, doc TEXT NOT NULL,
                      PRIMARY KEY (device_id, module_id));
CREATE TABLE twins (device_id TEXT NOT NULL, module_id TEXT NOT NULL, version BIGINT NOT NULL, doc TEXT NOT NULL,
                    PRIMARY KEY (device_id, module_id));
CREATE TABLE sessions (client_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX sessions_by_device ON sessions (device_id);
CREATE TABLE events (part BIGINT NOT NULL, seq BIGINT NOT NULL, device_id TEXT NOT NULL, module_id TEXT NOT NULL,
                     enqueued_ns BIGINT NOT NULL, body BYTEA NOT NULL, props BYTEA NOT NULL,
                     PRIMARY KEY (part, seq));
CREATE TABLE c2d (seq BIGINT PRIMARY KEY, device_id TEXT NOT NULL, module_id TEXT NOT NULL,
                  enqueued_ns BIGINT NOT NULL, expiry_ns BIGINT NOT NULL, ack BIGINT NOT NULL,
                  delivery_count BIGINT NOT NULL, body BYTEA NOT NULL, props BYTEA NOT NULL);
CREATE INDEX c2d_by_identity ON c2d (device_id, module_id);
CREATE TABLE feedback (seq BIGINT PRIMARY KEY, doc TEXT NOT NULL);
-- The largest C2D and feedback sequence numbers ever stored (numbers are never reused after deletes).
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters (name, value) VALUES ('c2d', 0), ('feedback', 0);
CREATE TABLE settings (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
)sql"},
    // Several nodes on one database (issue 18 item 2): each partition's next event sequence number
    // lives in a row that the writer locks for the whole commit, instead of in memory.
    {2, R"sql(
CREATE TABLE event_counters (part BIGINT PRIMARY KEY, next BIGINT NOT NULL);
INSERT INTO event_counters (part, next) SELECT part, MAX(seq) + 1 FROM events GROUP BY part;
-- The change feed: every committed record write (twin, identity, policy), numbered in commit order
-- from the 'change' counter row, which each writing transaction locks until its COMMIT. Every node
-- polls it for other nodes' rows and applies them to its memory (docs/architecture.md).
CREATE TABLE changes (id BIGINT PRIMARY KEY, node TEXT NOT NULL, kind BIGINT NOT NULL, device_id TEXT NOT NULL,
                      module_id TEXT NOT NULL, doc TEXT NOT NULL, patch TEXT NOT NULL, at_ns BIGINT NOT NULL);
INSERT INTO counters (name, value) VALUES ('change', 0);
-- The nodes sharing the database, with their last heartbeat.
CREATE TABLE nodes (node TEXT PRIMARY KEY, started_ns BIGINT NOT NULL, heartbeat_ns BIGINT NOT NULL,
                    change_id BIGINT NOT NULL);
-- Which node holds each connected identity's session (store/cluster_link.hpp).
CREATE TABLE presence (device_id TEXT NOT NULL, module_id TEXT NOT NULL, node TEXT NOT NULL,
                       PRIMARY KEY (device_id, module_id));
CREATE INDEX presence_by_node ON presence (node);
-- Direct methods between nodes: calls for the node holding the session, results for the caller.
CREATE TABLE method_calls (id BIGINT PRIMARY KEY, node TEXT NOT NULL, origin TEXT NOT NULL, device_id TEXT NOT NULL,
                           module_id TEXT NOT NULL, method TEXT NOT NULL, rid TEXT NOT NULL, payload TEXT NOT NULL,
                           conn BIGINT NOT NULL);
CREATE INDEX method_calls_by_node ON method_calls (node);
CREATE TABLE method_results (id BIGINT PRIMARY KEY, node TEXT NOT NULL, device_id TEXT NOT NULL, module_id TEXT NOT NULL,
                             rid TEXT NOT NULL, conn BIGINT NOT NULL, delivered BIGINT NOT NULL, status BIGINT NOT NULL,
                             payload TEXT NOT NULL);
CREATE INDEX method_results_by_node ON method_results (node);
)sql"},
};
static_assert(migrations[std::size(migrations) - 1].version == postgres_schema_version);

}  // namespace

const std::vector<pg_statement>& statements() {
    static const std::vector<pg_statement> all = [] {
        std::vector<pg_statement> s(statement_count);
        auto set = [&](q i, const char* sql, const char* types) { s[i] = {sql, types}; };
        set(policy_put, "INSERT INTO policies (key_name, doc) VALUES ($1, $2) "
                        "ON CONFLICT (key_name) DO UPDATE SET doc = excluded.doc", "tt");
        set(policy_delete, "DELETE FROM policies WHERE key_name = $1", "t");
        set(device_get, "SELECT etag FROM devices WHERE device_id = $1", "t");
        set(device_put, "INSERT INTO devices (device_id, etag, doc) VALUES ($1, $2, $3) "
                        "ON CONFLICT (device_id) DO UPDATE SET etag = excluded.etag, doc = excluded.doc", "tit");
        set(device_delete, "DELETE FROM devices WHERE device_id = $1", "t");
        set(device_modules_delete, "DELETE FROM modules WHERE device_id = $1", "t");
        set(device_twins_delete, "DELETE FROM twins WHERE device_id = $1", "t");
        set(device_sessions_delete, "DELETE FROM sessions WHERE device_id = $1", "t");
        set(device_c2d_delete, "DELETE FROM c2d WHERE device_id = $1", "t");
        set(module_get, "SELECT etag FROM modules WHERE device_id = $1 AND module_id = $2", "tt");
        set(module_put, "INSERT INTO modules (device_id, module_id, etag, doc) VALUES ($1, $2, $3, $4) "
                        "ON CONFLICT (device_id, module_id) DO UPDATE SET etag = excluded.etag, doc = excluded.doc",
            "ttit");
        set(module_delete, "DELETE FROM modules WHERE device_id = $1 AND module_id = $2", "tt");
        set(twin_delete, "DELETE FROM twins WHERE device_id = $1 AND module_id = $2", "tt");
        set(module_c2d_delete, "DELETE FROM c2d WHERE device_id = $1 AND module_id = $2", "tt");
        set(twin_update, "UPDATE twins SET version = $3, doc = $4 WHERE device_id = $1 AND module_id = $2 "
                         "AND ($5::BIGINT IS NULL OR version = $5)", "ttiti");
        set(twin_get, "SELECT version FROM twins WHERE device_id = $1 AND module_id = $2", "tt");
        set(twin_insert, "INSERT INTO twins (device_id, module_id, version, doc) VALUES ($1, $2, $3, $4)", "ttit");
        set(session_put, "INSERT INTO sessions (client_id, device_id, doc) VALUES ($1, $2, $3) "
                         "ON CONFLICT (client_id) DO UPDATE SET device_id = excluded.device_id, doc = excluded.doc",
            "ttt");
        set(session_delete, "DELETE FROM sessions WHERE client_id = $1", "t");
        set(event_put, "INSERT INTO events (part, seq, device_id, module_id, enqueued_ns, body, props) "
                       "VALUES ($1, $2, $3, $4, $5, $6, $7)", "iittibb");
        // Retention: the oldest rows before a time, never the partition's last.
        set(event_trim, "DELETE FROM events WHERE part = $1 AND seq IN (SELECT seq FROM events WHERE part = $1 "
                        "AND seq < (SELECT MAX(seq) FROM events WHERE part = $1) AND enqueued_ns < $2 "
                        "ORDER BY seq LIMIT $3)", "iii");
        // Locks a partition's counter row until COMMIT (creating it) and reads the next number.
        set(event_counter_lock, "INSERT INTO event_counters (part, next) VALUES ($1, 0) ON CONFLICT (part) "
                                "DO UPDATE SET next = event_counters.next RETURNING next", "i");
        set(event_counter_set, "UPDATE event_counters SET next = $2 WHERE part = $1", "ii");
        set(counter_lock, "SELECT value FROM counters WHERE name = $1 FOR UPDATE", "t");
        set(counter_set, "UPDATE counters SET value = $2 WHERE name = $1", "ti");
        set(change_put, "INSERT INTO changes (id, node, kind, device_id, module_id, doc, patch, at_ns) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", "ititttti");
        set(change_read, "SELECT id, node, kind, device_id, module_id, doc, patch FROM changes WHERE id > $1 "
                         "ORDER BY id LIMIT $2", "ii");
        set(change_trim, "DELETE FROM changes WHERE id IN (SELECT id FROM changes WHERE at_ns < $1 ORDER BY id LIMIT $2)",
            "ii");
        set(counter_get, "SELECT value FROM counters WHERE name = $1", "t");
        set(node_beat, "INSERT INTO nodes (node, started_ns, heartbeat_ns, change_id) VALUES ($1, $2, $3, $4) "
                       "ON CONFLICT (node) DO UPDATE SET heartbeat_ns = excluded.heartbeat_ns, "
                       "change_id = excluded.change_id", "tiii");
        set(node_delete, "DELETE FROM nodes WHERE node = $1", "t");
        set(presence_put, "INSERT INTO presence (device_id, module_id, node) VALUES ($1, $2, $3) "
                          "ON CONFLICT (device_id, module_id) DO UPDATE SET node = excluded.node", "ttt");
        set(presence_delete, "DELETE FROM presence WHERE device_id = $1 AND module_id = $2 AND node = $3", "ttt");
        set(presence_load, "SELECT device_id, module_id, node FROM presence", "");
        set(presence_clear, "DELETE FROM presence WHERE node = $1 RETURNING device_id, module_id", "t");
        set(nodes_dead, "SELECT node FROM nodes WHERE heartbeat_ns < $1 AND node <> $2", "it");
        set(event_counters_all, "SELECT part, next FROM event_counters", "");
        set(method_call_put, "INSERT INTO method_calls (id, node, origin, device_id, module_id, method, rid, payload, conn) "
                             "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", "ittttttti");
        set(method_call_take, "DELETE FROM method_calls WHERE node = $1 RETURNING origin, device_id, module_id, method, "
                              "rid, payload, conn", "t");
        set(method_result_put, "INSERT INTO method_results (id, node, device_id, module_id, rid, conn, delivered, "
                               "status, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", "ittttiiit");
        set(method_result_take, "DELETE FROM method_results WHERE node = $1 RETURNING device_id, module_id, rid, conn, "
                                "delivered, status, payload", "t");
        set(setting_put, "INSERT INTO settings (key, doc) VALUES ($1, $2) "
                         "ON CONFLICT (key) DO UPDATE SET doc = excluded.doc", "tt");
        set(setting_delete, "DELETE FROM settings WHERE key = $1", "t");
        set(c2d_put, "INSERT INTO c2d (seq, device_id, module_id, enqueued_ns, expiry_ns, ack, delivery_count, body, "
                     "props) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", "ittiiiibb");
        set(c2d_counter, "UPDATE counters SET value = GREATEST(value, $1) WHERE name = 'c2d'", "i");
        set(c2d_update, "UPDATE c2d SET delivery_count = $2 WHERE seq = $1 RETURNING device_id, module_id", "ii");
        set(c2d_delete, "DELETE FROM c2d WHERE seq = $1 RETURNING device_id, module_id", "i");
        set(c2d_get, "SELECT seq, device_id, module_id, enqueued_ns, expiry_ns, ack, delivery_count, body, props "
                     "FROM c2d WHERE seq = $1", "i");
        set(feedback_get, "SELECT seq, doc FROM feedback WHERE seq = $1", "i");
        set(feedback_put, "INSERT INTO feedback (seq, doc) VALUES ($1, $2)", "it");
        set(feedback_counter, "UPDATE counters SET value = GREATEST(value, $1) WHERE name = 'feedback'", "i");
        set(feedback_delete, "DELETE FROM feedback WHERE seq = $1", "i");
        set(load_policies, "SELECT key_name, doc FROM policies ORDER BY key_name", "");
        set(load_devices, "SELECT d.device_id, d.doc, t.doc FROM devices d "
                          "LEFT JOIN twins t ON t.device_id = d.device_id AND t.module_id = '' ORDER BY d.device_id",
            "");
        set(load_modules, "SELECT m.device_id || '/' || m.module_id, m.doc, t.doc FROM modules m LEFT JOIN twins t "
                          "ON t.device_id = m.device_id AND t.module_id = m.module_id ORDER BY m.device_id, m.module_id",
            "");
        set(load_sessions, "SELECT client_id, doc FROM sessions ORDER BY client_id", "");
        set(load_settings, "SELECT key, doc FROM settings ORDER BY key", "");
        set(load_c2d, "SELECT seq, device_id, module_id, enqueued_ns, expiry_ns, ack, delivery_count, body, props "
                      "FROM c2d ORDER BY seq", "");
        set(load_feedback, "SELECT seq, doc FROM feedback ORDER BY seq", "");
        set(load_counters, "SELECT name, value FROM counters", "");
        set(read_events, "SELECT seq, device_id, module_id, enqueued_ns, body, props FROM events "
                         "WHERE part = $1 AND seq >= $2 ORDER BY seq LIMIT $3", "iii");
        set(event_bounds, "SELECT (SELECT MIN(seq) FROM events WHERE part = $1), seq, enqueued_ns FROM events "
                          "WHERE part = $1 ORDER BY seq DESC LIMIT 1", "i");
        return s;
    }();
    return all;
}

namespace {

result<void> migrate(pg_db& db) {
    // The version row exists before any migration runs, so that concurrent openers serialize on it.
    if (auto r = db.exec("CREATE TABLE IF NOT EXISTS schema_version (id BIGINT PRIMARY KEY, version BIGINT NOT NULL);"
                         "INSERT INTO schema_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
                         "creating the schema");
        !r)
        return r;
    if (auto r = db.exec("BEGIN", "starting a migration"); !r) return r;
    auto rollback = [&] { (void)db.exec("ROLLBACK", "rolling back a migration"); };
    auto v = db.query("SELECT version FROM schema_version WHERE id = 1 FOR UPDATE", "reading the schema version");
    if (!v || v->size() != 1) {
        rollback();
        return v ? error{errc::corrupt_data, "The store's schema_version table is empty."} : v.error();
    }
    const auto current = v->i64(0, 0);
    if (current > postgres_schema_version) {
        rollback();
        return error{errc::storage_error, "The store has schema version " + std::to_string(current) +
                                              ", newer than this twinhub supports (" +
                                              std::to_string(postgres_schema_version) + "); run a newer twinhub."};
    }
    for (auto& m : migrations) {
        if (m.version <= current) continue;
        std::string sql = std::string(m.sql) + "UPDATE schema_version SET version = " + std::to_string(m.version) +
                          " WHERE id = 1";
        if (auto r = db.exec(sql.c_str(), "migrating to schema version " + std::to_string(m.version)); !r) {
            rollback();
            return r;
        }
        log::info("store.migrated", {{"backend", "postgresql"}, {"version", m.version}});
    }
    if (auto r = db.commit(); !r) {
        rollback();
        return r;
    }
    return {};
}

// A node's name in the shared database: random, new for each open (a restarted node is a new node).
std::string new_node_id() {
    std::random_device rd;
    static const char hex[] = "0123456789abcdef";
    std::string id = "n-";
    for (int i = 0; i < 12; ++i) id += hex[rd() % 16];
    return id;
}

// Removes twinhub's own query parameter `pool` from `url`; returns its value (0 when absent, -1
// when malformed).
int take_pool(std::string& url) {
    auto qm = url.find('?');
    if (qm == std::string::npos) return 0;
    std::string query = url.substr(qm + 1), rest;
    int pool = 0;
    std::size_t pos = 0;
    while (pos <= query.size()) {
        auto amp = query.find('&', pos);
        if (amp == std::string::npos) amp = query.size();
        std::string kv = query.substr(pos, amp - pos);
        if (kv.rfind("pool=", 0) == 0) {
            auto val = kv.substr(5);
            auto [p, ec] = std::from_chars(val.data(), val.data() + val.size(), pool);
            if (ec != std::errc() || p != val.data() + val.size() || pool < 1 || pool > 64) return -1;
        } else if (!kv.empty()) {
            rest += (rest.empty() ? "" : "&") + kv;
        }
        pos = amp + 1;
    }
    url = url.substr(0, qm) + (rest.empty() ? "" : "?" + rest);
    return pool;
}

}  // namespace
}  // namespace pg

bool is_postgres_url(std::string_view s) noexcept {
    return s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0;
}

result<std::unique_ptr<store>> open_postgres_store(const std::string& url) {
    if (!is_postgres_url(url))
        return error{errc::invalid_argument, "A PostgreSQL store URL starts with postgresql:// or postgres://."};
    std::string conninfo = url;
    int pool = pg::take_pool(conninfo);
    if (pool < 0) return error{errc::invalid_argument, "The store URL's pool must be a number from 1 to 64."};
    if (pool == 0) pool = default_postgres_pool;
    {
        auto m = pg_db::connect(conninfo, {});
        if (!m) return m.error();
        if (auto r = pg::migrate(**m); !r) return r.error();
    }
    auto w = pg_db::connect(conninfo, pg::statements());
    if (!w) return w.error();
    // Filled from event_counters by each commit that appends (the rows are locked while it runs).
    std::vector<std::uint64_t> next_seq(max_event_streams, 0);
    std::vector<std::unique_ptr<pg_db>> readers;
    for (int i = 0; i < pool; ++i) {
        auto r = pg_db::connect(conninfo, pg::statements());
        if (!r) return r.error();
        readers.push_back(std::move(*r));
    }
    // The change feed starts at the newest change committed before this open: load() (which the
    // hub runs next) sees everything up to it, and the feed everything after (some changes may be
    // seen by both; the hub applies a record only when it is newer than what it holds).
    auto feed = pg_db::connect(conninfo, pg::statements());
    if (!feed) return feed.error();
    std::uint64_t last_change = 0;
    {
        pg_params p;
        p.text("change");
        auto rows = (*feed)->run(pg::counter_get, p, "reading the change feed position");
        if (!rows) return rows.error();
        if (rows->size() != 1) return error{errc::corrupt_data, "The store's counter 'change' is missing."};
        last_change = static_cast<std::uint64_t>(rows->i64(0, 0));
    }
    return std::unique_ptr<store>(new pg::postgres_store(std::move(*w), std::move(readers), std::move(*feed),
                                                         pg::new_node_id(), last_change, std::move(next_seq)));
}

}  // namespace twinhub::store
