// The PostgreSQL backend's change feed reader (several nodes on one database, issue 18 item 2):
// one thread and one connection per store poll the `changes` table for rows other nodes committed,
// hand them to the remote listener in id (= commit) order, and keep this node's heartbeat row in
// `nodes` fresh. Also trims feed rows older than feed_retention, writes this node's presence
// (store/cluster_link.hpp: the `presence` table, with a change row of kind `presence_kind` for
// each change, so that the other nodes learn it in commit order) and clears the sessions of nodes
// whose heartbeat stopped.
#include "common/log.hpp"
#include "store/postgres_internal.hpp"
#include "store/store_codec.hpp"

#include <chrono>
#include <random>

namespace twinhub::store::pg {
namespace {

constexpr auto poll_interval = std::chrono::milliseconds(20);
constexpr auto heartbeat_interval = std::chrono::seconds(1);
constexpr auto trim_interval = std::chrono::seconds(60);
constexpr std::int64_t feed_retention_ns = 600'000'000'000;  // 10 minutes
constexpr int poll_limit = 1000;
constexpr auto sweep_interval = std::chrono::seconds(2);
// Change rows of presence: doc is the node now holding the session, "" for none.
constexpr std::int64_t presence_kind = 6;

std::int64_t wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

result<remote_change> change_of(const pg_rows& rows, int i) {
    remote_change c;
    const auto kind = rows.i64(i, 2);
    if (kind < 0 || kind > static_cast<int>(remote_change::kind::policies))
        return error{errc::corrupt_data, "Change " + std::to_string(rows.i64(i, 0)) + " has an unknown kind."};
    c.k = static_cast<remote_change::kind>(kind);
    c.id = {std::string(rows.bytes(i, 3)), std::string(rows.bytes(i, 4))};
    const auto doc = rows.bytes(i, 5);
    const std::string what = "change " + std::to_string(rows.i64(i, 0));
    switch (c.k) {
    case remote_change::kind::twin: {
        auto v = parse_doc(doc, what);
        if (!v) return v.error();
        auto t = twin::from_storage_json(*v);
        if (!t) return t.error();
        c.twin = std::move(*t);
        c.desired_patch = std::string(rows.bytes(i, 6));
        break;
    }
    case remote_change::kind::device: {
        auto v = parse_doc(doc, what);
        if (!v) return v.error();
        auto d = registry::device_from_storage_json(*v);
        if (!d) return d.error();
        c.device = std::move(*d);
        break;
    }
    case remote_change::kind::module: {
        auto v = parse_doc(doc, what);
        if (!v) return v.error();
        auto m = registry::module_from_storage_json(*v);
        if (!m) return m.error();
        c.module = std::move(*m);
        break;
    }
    default: break;
    }
    return c;
}

}  // namespace

void postgres_store::set_remote_listener(remote_listener l) {
    {
        std::lock_guard call(remote_call_m_);
        std::lock_guard lock(feed_m_);
        remote_ = std::move(l);
    }
    feed_cv_.notify_all();
}

result<void> postgres_store::poll_changes() {
    for (;;) {
        pg_params p;
        p.i64(static_cast<std::int64_t>(last_change_)).i64(poll_limit);
        auto rows = feed_->run(change_read, p, "reading the change feed");
        if (!rows) return rows.error();
        std::vector<remote_change> out;
        std::vector<c2d_change> c2d;
        const std::uint64_t start = last_change_;
        for (int i = 0; i < rows->size(); ++i) {
            const auto id = static_cast<std::uint64_t>(rows->i64(i, 0));
            if (rows->bytes(i, 1) != node_id_ && rows->i64(i, 2) == presence_kind) {
                presence_seen({std::string(rows->bytes(i, 3)), std::string(rows->bytes(i, 4))},
                              std::string(rows->bytes(i, 5)));
            } else if (rows->bytes(i, 1) != node_id_ && rows->i64(i, 2) >= c2d_kind_base) {
                auto c = c2d_change_of(*rows, i);
                if (!c) {
                    if (!feed_->healthy()) {  // read these rows again after the reconnect
                        last_change_ = start;
                        return c.error();
                    }
                    log::error("store.change_unreadable", {{"id", id}, {"message", c.error().message}});
                } else {
                    c2d.push_back(std::move(*c));
                }
            } else if (rows->bytes(i, 1) != node_id_) {
                auto c = change_of(*rows, i);
                if (!c) {
                    // A row this binary cannot read: skip it rather than stall the feed forever.
                    log::error("store.change_unreadable", {{"id", id}, {"message", c.error().message}});
                } else {
                    out.push_back(std::move(*c));
                }
            }
            last_change_ = id;
        }
        if (!out.empty()) {
            std::lock_guard call(remote_call_m_);
            remote_listener l;
            {
                std::lock_guard lock(feed_m_);
                l = remote_;
            }
            if (l) l(out);
        }
        if (!c2d.empty()) {
            std::lock_guard call(remote_call_m_);
            std::function<void(std::vector<c2d_change>&)> h;
            {
                std::lock_guard l(presence_m_);
                h = on_c2d_;
            }
            if (h) h(c2d);
        }
        if (rows->size() < poll_limit) return {};
    }
}

void postgres_store::publish_presence(const identity_key& id, bool connected) {
    if (connected) {
        std::lock_guard l(presence_m_);
        node_of_.erase(id);  // this node holds it now
    }
    {
        std::lock_guard l(feed_m_);
        out_presence_.emplace_back(id, connected);
    }
    feed_cv_.notify_all();
}

void postgres_store::set_presence_handler(presence_handler h) {
    std::lock_guard call(remote_call_m_);
    std::map<identity_key, std::string> now;
    {
        std::lock_guard l(presence_m_);
        presence_h_ = std::move(h);
        now = node_of_;
    }
    if (presence_h_)
        for (auto& [id, node] : now) presence_h_(id, node);
}

std::string postgres_store::node_of(const identity_key& id) const {
    std::lock_guard l(presence_m_);
    auto it = node_of_.find(id);
    return it == node_of_.end() ? std::string() : it->second;
}

// On the feed thread. Callers of the handler hold remote_call_m_ (set_presence_handler waits).
void postgres_store::presence_seen(const identity_key& id, const std::string& node) {
    std::lock_guard call(remote_call_m_);
    presence_handler h;
    {
        std::lock_guard l(presence_m_);
        if (node.empty()) node_of_.erase(id);
        else node_of_[id] = node;
        h = presence_h_;
    }
    if (h) h(id, node);
}

void postgres_store::send_method_call(const std::string& node, method_call c) {
    {
        std::lock_guard l(feed_m_);
        out_calls_.emplace_back(node, std::move(c));
    }
    feed_cv_.notify_all();
}

void postgres_store::send_method_result(const std::string& origin, method_result r) {
    {
        std::lock_guard l(feed_m_);
        out_results_.emplace_back(origin, std::move(r));
    }
    feed_cv_.notify_all();
}

void postgres_store::set_method_handlers(std::function<void(method_call)> on_call,
                                         std::function<void(method_result)> on_result) {
    std::lock_guard call(remote_call_m_);
    std::lock_guard l(presence_m_);
    on_call_ = std::move(on_call);
    on_result_ = std::move(on_result);
}

result<void> postgres_store::exchange_methods(std::vector<std::pair<std::string, method_call>>& calls,
                                              std::vector<std::pair<std::string, method_result>>& results) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    auto row_id = [] { return static_cast<std::int64_t>(rng() >> 1); };
    // What was written leaves the queues at once, so that a failure part way does not send it twice.
    while (!calls.empty()) {
        auto& [node, c] = calls.front();
        pg_params p;
        p.i64(row_id()).text(node).text(c.origin).text(c.target.device_id).text(c.target.module_id).text(c.method);
        p.text(c.rid).text(c.payload).i64(static_cast<std::int64_t>(c.connection));
        if (auto r = feed_->run(method_call_put, p, "forwarding a method call"); !r) return r.error();
        calls.erase(calls.begin());
    }
    while (!results.empty()) {
        auto& [node, m] = results.front();
        pg_params p;
        p.i64(row_id()).text(node).text(m.target.device_id).text(m.target.module_id).text(m.rid);
        p.i64(static_cast<std::int64_t>(m.connection)).i64(m.delivered ? 1 : 0).i64(m.status).text(m.payload);
        if (auto r = feed_->run(method_result_put, p, "returning a method result"); !r) return r.error();
        results.erase(results.begin());
    }
    std::function<void(method_call)> on_call;
    std::function<void(method_result)> on_result;
    {
        std::lock_guard l(presence_m_);
        on_call = on_call_;
        on_result = on_result_;
    }
    if (!on_call) return {};  // not serving yet: the calls wait in the table
    pg_params me;
    me.text(node_id_);
    auto in = feed_->run(method_call_take, me, "taking method calls");
    if (!in) return in.error();
    auto back = feed_->run(method_result_take, me, "taking method results");
    if (!back) return back.error();
    std::lock_guard call(remote_call_m_);
    for (int i = 0; i < in->size(); ++i) {
        method_call c;
        c.origin = std::string(in->bytes(i, 0));
        c.target = {std::string(in->bytes(i, 1)), std::string(in->bytes(i, 2))};
        c.method = std::string(in->bytes(i, 3));
        c.rid = std::string(in->bytes(i, 4));
        c.payload = std::string(in->bytes(i, 5));
        c.connection = static_cast<std::uint64_t>(in->i64(i, 6));
        on_call(std::move(c));
    }
    for (int i = 0; i < back->size(); ++i) {
        method_result m;
        m.target = {std::string(back->bytes(i, 0)), std::string(back->bytes(i, 1))};
        m.rid = std::string(back->bytes(i, 2));
        m.connection = static_cast<std::uint64_t>(back->i64(i, 3));
        m.delivered = back->i64(i, 4) != 0;
        m.status = static_cast<int>(back->i64(i, 5));
        m.payload = std::string(back->bytes(i, 6));
        on_result(std::move(m));
    }
    return {};
}

void postgres_store::set_c2d_handler(std::function<void(std::vector<c2d_change>&)> h) {
    std::lock_guard call(remote_call_m_);
    std::lock_guard l(presence_m_);
    on_c2d_ = std::move(h);
}

// A C2D change row; for an enqueue or a feedback record, what the row names as stored now (nullopt
// when it is gone already: its delete follows in the feed).
result<cluster_link::c2d_change> postgres_store::c2d_change_of(const pg_rows& rows, int i) {
    c2d_change c;
    const auto kind = rows.i64(i, 2) - c2d_kind_base;
    if (kind < 0 || kind > static_cast<int>(c2d_change::kind::feedback_deleted))
        return error{errc::corrupt_data, "Change " + std::to_string(rows.i64(i, 0)) + " has an unknown kind."};
    c.k = static_cast<c2d_change::kind>(kind);
    c.id = {std::string(rows.bytes(i, 3)), std::string(rows.bytes(i, 4))};
    try {
        c.seq = std::stoull(std::string(rows.bytes(i, 5)));
        c.delivery_count = static_cast<std::uint32_t>(std::stoul(std::string(rows.bytes(i, 6))));
    } catch (const std::exception&) {
        return error{errc::corrupt_data, "Change " + std::to_string(rows.i64(i, 0)) + " is malformed."};
    }
    pg_params p;
    p.i64(static_cast<std::int64_t>(c.seq));
    if (c.k == c2d_change::kind::enqueued) {
        auto r = feed_->run(c2d_get, p, "reading a cloud-to-device message");
        if (!r) return r.error();
        if (r->size() == 1) {
            c2d_message m;
            m.sequence_number = c.seq;
            m.target = c.id;
            m.enqueued_time_ns = r->i64(0, 3);
            m.expiry_time_ns = r->i64(0, 4);
            const auto ack = r->i64(0, 5);
            m.delivery_count = static_cast<std::uint32_t>(r->i64(0, 6));
            m.body = std::string(r->bytes(0, 7));
            if (ack < 0 || ack > 3 || !parse_c2d_props(r->bytes(0, 8), m))
                return error{errc::corrupt_data,
                             "Stored cloud-to-device message " + std::to_string(c.seq) + " is malformed."};
            m.ack = static_cast<c2d_ack>(ack);
            c.message = std::move(m);
        }
    } else if (c.k == c2d_change::kind::feedback_appended) {
        auto r = feed_->run(feedback_get, p, "reading a feedback record");
        if (!r) return r.error();
        if (r->size() == 1) {
            feedback_record f;
            f.sequence_number = c.seq;
            if (auto x = parse_feedback(r->bytes(0, 1), f); !x) return x.error();
            c.feedback = std::move(f);
        }
    }
    return c;
}

void postgres_store::set_events_handler(std::function<void(std::uint32_t)> h) {
    std::lock_guard call(remote_call_m_);
    std::lock_guard l(presence_m_);
    on_events_ = std::move(h);
}

result<void> postgres_store::poll_event_counters() {
    auto rows = feed_->run(event_counters_all, {}, "reading event counters");
    if (!rows) return rows.error();
    std::vector<std::uint32_t> advanced;
    for (int i = 0; i < rows->size(); ++i) {
        const auto part = rows->i64(i, 0), next = rows->i64(i, 1);
        auto [it, added] = seen_counters_.try_emplace(part, next);
        if (!added && it->second < next) {
            it->second = next;
            advanced.push_back(static_cast<std::uint32_t>(part));
        } else if (added && counters_seen_ && next > 0) {
            advanced.push_back(static_cast<std::uint32_t>(part));
        }
    }
    counters_seen_ = true;
    if (advanced.empty()) return {};
    std::lock_guard call(remote_call_m_);
    std::function<void(std::uint32_t)> h;
    {
        std::lock_guard l(presence_m_);
        h = on_events_;
    }
    if (h)
        for (auto p : advanced) h(p);
    return {};
}

result<void> postgres_store::load_presence() {
    auto rows = feed_->run(presence_load, {}, "reading presence");
    if (!rows) return rows.error();
    std::lock_guard l(presence_m_);
    for (int i = 0; i < rows->size(); ++i)
        if (rows->bytes(i, 2) != node_id_)
            node_of_[{std::string(rows->bytes(i, 0)), std::string(rows->bytes(i, 1))}] = std::string(rows->bytes(i, 2));
    return {};
}

namespace {

// One feed-thread transaction that writes change rows numbered from the locked 'change' counter.
class change_txn {
public:
    change_txn(pg_db& db, const std::string& node) : db_(db), node_(node) {}
    ~change_txn() {
        if (open_) (void)db_.exec("ROLLBACK", "rolling back");
    }
    result<void> begin() {
        if (auto r = db_.exec("BEGIN", "starting a presence write"); !r) return r;
        open_ = true;
        pg_params p;
        p.text("change");
        auto r = db_.run(counter_lock, p, "numbering changes");
        if (!r) return r.error();
        if (r->size() != 1) return error{errc::corrupt_data, "The store's counter 'change' is missing."};
        next_ = static_cast<std::uint64_t>(r->i64(0, 0)) + 1;
        first_ = next_;
        return {};
    }
    result<void> presence_row(const identity_key& id, std::string_view holder) {
        pg_params p;
        p.i64(static_cast<std::int64_t>(next_++)).text(node_).i64(presence_kind).text(id.device_id).text(id.module_id);
        p.text(holder).text("").i64(wall_ns());
        auto r = db_.run(change_put, p, "recording presence");
        if (!r) return r.error();
        return {};
    }
    result<void> commit() {
        if (next_ != first_) {
            pg_params p;
            p.text("change").i64(static_cast<std::int64_t>(next_ - 1));
            if (auto r = db_.run(counter_set, p, "numbering changes"); !r) return r.error();
        }
        open_ = false;
        return db_.commit();
    }

private:
    pg_db& db_;
    const std::string& node_;
    bool open_ = false;
    std::uint64_t next_ = 0, first_ = 0;
};

}  // namespace

result<void> postgres_store::write_presence(std::vector<std::pair<identity_key, bool>>& batch) {
    change_txn t(*feed_, node_id_);
    if (auto r = t.begin(); !r) return r;
    for (auto& [id, connected] : batch) {
        pg_params p;
        p.text(id.device_id).text(id.module_id).text(node_id_);
        auto r = feed_->run(connected ? presence_put : presence_delete, p, "writing presence");
        if (!r) return r.error();
        // A disconnect tells the others only when this node still held the session (another node
        // may have taken it over since).
        if (connected || r->changed() == 1)
            if (auto x = t.presence_row(id, connected ? std::string_view(node_id_) : std::string_view()); !x) return x;
    }
    return t.commit();
}

result<void> postgres_store::clear_node(const std::string& node) {
    std::vector<identity_key> cleared;
    {
        change_txn t(*feed_, node_id_);
        if (auto r = t.begin(); !r) return r;
        pg_params p;
        p.text(node);
        auto rows = feed_->run(presence_clear, p, "clearing a node's sessions");
        if (!rows) return rows.error();
        for (int i = 0; i < rows->size(); ++i) {
            cleared.push_back({std::string(rows->bytes(i, 0)), std::string(rows->bytes(i, 1))});
            if (auto x = t.presence_row(cleared.back(), ""); !x) return x;
        }
        if (auto r = feed_->run(node_delete, p, "clearing a node"); !r) return r.error();
        if (auto r = t.commit(); !r) return r;
    }
    if (node != node_id_) {
        // This node's own change rows never come back through its feed: apply them here.
        log::warn("store.node_expired", {{"node", node}, {"sessions", cleared.size()}});
        for (auto& id : cleared)
            if (this->node_of(id) == node) presence_seen(id, "");
    }
    return {};
}

result<void> postgres_store::sweep_dead_nodes() {
    pg_params p;
    const auto before = wall_ns() - std::chrono::duration_cast<std::chrono::nanoseconds>(dead_node_after).count();
    p.i64(before).text(node_id_);
    auto rows = feed_->run(nodes_dead, p, "finding dead nodes");
    if (!rows) return rows.error();
    std::vector<std::string> dead;
    for (int i = 0; i < rows->size(); ++i) dead.emplace_back(rows->bytes(i, 0));
    for (auto& n : dead)
        if (auto r = clear_node(n); !r) return r;
    return {};
}

void postgres_store::feed_loop() {
    using clock = std::chrono::steady_clock;
    const auto started_ns = wall_ns();
    auto next_beat = clock::now(), next_trim = clock::now() + trim_interval, next_sweep = clock::now() + sweep_interval;
    if (auto r = load_presence(); !r) log::warn("store.presence_failed", {{"message", r.error().message}});
    std::vector<std::pair<identity_key, bool>> presence;
    std::vector<std::pair<std::string, method_call>> calls;
    std::vector<std::pair<std::string, method_result>> results;
    std::unique_lock lock(feed_m_);
    while (!feed_stop_) {
        feed_cv_.wait_for(lock, poll_interval, [&] {
            return feed_stop_ || !out_presence_.empty() || !out_calls_.empty() || !out_results_.empty();
        });
        if (feed_stop_) break;
        const bool listening = static_cast<bool>(remote_);
        presence.insert(presence.end(), out_presence_.begin(), out_presence_.end());
        out_presence_.clear();
        for (auto& c : out_calls_) calls.push_back(std::move(c));
        out_calls_.clear();
        for (auto& r : out_results_) results.push_back(std::move(r));
        out_results_.clear();
        lock.unlock();
        if (!presence.empty() && feed_->healthy()) {
            if (auto r = write_presence(presence); !r)
                log::warn("store.presence_failed", {{"message", r.error().message}});  // kept, tried again
            else
                presence.clear();
        }
        if (!feed_->healthy()) {
            if (auto r = feed_->reconnect(); !r) {
                lock.lock();
                feed_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return feed_stop_; });
                continue;
            }
        }
        if (feed_->healthy())
            if (auto r = exchange_methods(calls, results); !r)
                log::warn("store.methods_failed", {{"message", r.error().message}});
        if (listening && feed_->healthy())
            if (auto r = poll_event_counters(); !r) log::warn("store.feed_failed", {{"message", r.error().message}});
        // Until the hub listens, the feed stays where it was at open: nothing is skipped.
        if (listening)
            if (auto r = poll_changes(); !r) log::warn("store.feed_failed", {{"message", r.error().message}});
        const auto now = clock::now();
        if (now >= next_beat) {
            next_beat = now + heartbeat_interval;
            pg_params p;
            p.text(node_id_).i64(started_ns).i64(wall_ns()).i64(static_cast<std::int64_t>(last_change_));
            if (auto r = feed_->run(node_beat, p, "beating the node's heartbeat"); !r)
                log::warn("store.heartbeat_failed", {{"message", r.error().message}});
        }
        if (now >= next_sweep) {
            next_sweep = now + sweep_interval;
            if (auto r = sweep_dead_nodes(); !r) log::warn("store.sweep_failed", {{"message", r.error().message}});
        }
        if (now >= next_trim) {
            next_trim = now + trim_interval;
            pg_params p;
            p.i64(wall_ns() - feed_retention_ns).i64(10000);
            if (auto r = feed_->run(change_trim, p, "trimming the change feed"); !r)
                log::warn("store.feed_trim_failed", {{"message", r.error().message}});
        }
        lock.lock();
    }
    lock.unlock();
    // A clean stop: this node's sessions end with it (the others learn it at once, not after
    // dead_node_after), and it leaves the node table.
    if (feed_->healthy())
        if (auto r = clear_node(node_id_); !r) log::warn("store.presence_failed", {{"message", r.error().message}});
}

}  // namespace twinhub::store::pg
