// The PostgreSQL backend's change feed reader (several nodes on one database, issue 18 item 2):
// one thread and one connection per store poll the `changes` table for rows other nodes committed,
// hand them to the remote listener in id (= commit) order, and keep this node's heartbeat row in
// `nodes` fresh. Also trims feed rows older than feed_retention.
#include "common/log.hpp"
#include "store/postgres_internal.hpp"
#include "store/store_codec.hpp"

#include <chrono>

namespace twinhub::store::pg {
namespace {

constexpr auto poll_interval = std::chrono::milliseconds(20);
constexpr auto heartbeat_interval = std::chrono::seconds(1);
constexpr auto trim_interval = std::chrono::seconds(60);
constexpr std::int64_t feed_retention_ns = 600'000'000'000;  // 10 minutes
constexpr int poll_limit = 1000;

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
        for (int i = 0; i < rows->size(); ++i) {
            const auto id = static_cast<std::uint64_t>(rows->i64(i, 0));
            if (rows->bytes(i, 1) != node_id_) {
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
        if (rows->size() < poll_limit) return {};
    }
}

void postgres_store::feed_loop() {
    using clock = std::chrono::steady_clock;
    const auto started_ns = wall_ns();
    auto next_beat = clock::now(), next_trim = clock::now() + trim_interval;
    std::unique_lock lock(feed_m_);
    while (!feed_stop_) {
        feed_cv_.wait_for(lock, poll_interval, [&] { return feed_stop_; });
        if (feed_stop_) break;
        const bool listening = static_cast<bool>(remote_);
        lock.unlock();
        if (!feed_->healthy()) {
            if (auto r = feed_->reconnect(); !r) {
                lock.lock();
                feed_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return feed_stop_; });
                continue;
            }
        }
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
    if (feed_->healthy()) {
        pg_params p;
        p.text(node_id_);
        (void)feed_->run(node_delete, p, "leaving the node table");
    }
}

}  // namespace twinhub::store::pg
