// Internals of the PostgreSQL backend, shared by its source files (postgres_schema.cpp: schema,
// statements and opening; postgres_commit.cpp: the writer; postgres_load.cpp: the readers).
// Thread safety: as store.hpp.
#pragma once

#include "store/cluster_link.hpp"
#include "store/commit_queue.hpp"
#include "store/pg_conn.hpp"
#include "store/store.hpp"

#include <cstdint>
#include <map>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace twinhub::store::pg {

// Change rows of C2D queue writes (cluster_link::c2d_change): kind c2d_kind_base + c2d_change::kind;
// doc is the sequence number, patch the delivery count (kind delivery_count).
inline constexpr std::int64_t c2d_kind_base = 7;

// The prepared statements, by index into statements().
enum q : int {
    policy_put, policy_delete, device_get, device_put, device_delete, device_modules_delete, device_twins_delete,
    device_sessions_delete, device_c2d_delete, module_get, module_put, module_delete, twin_delete, module_c2d_delete,
    twin_update, twin_get, twin_insert, session_put, session_delete, event_put, event_trim, setting_put,
    setting_delete, c2d_put, c2d_counter, c2d_update, c2d_delete, feedback_put, feedback_counter, feedback_delete,
    c2d_get, feedback_get,
    load_policies, load_devices, load_modules, load_sessions, load_settings, load_c2d, load_feedback, load_counters,
    read_events, event_bounds, event_counter_lock, event_counter_set, counter_lock,
    counter_set, change_put, change_read, change_trim, counter_get, node_beat, node_delete,
    presence_put, presence_delete, presence_load, presence_clear, nodes_dead,
    method_call_put, method_call_take, method_result_put, method_result_take, event_counters_all,
    statement_count
};
const std::vector<pg_statement>& statements();

// A batch with its documents already serialized (on the committing thread), one per op.
struct pending {
    write_batch batch;
    std::vector<std::string> docs;
    commit_handler done;
};

class postgres_store final : public store, public cluster_link {
public:
    postgres_store(std::unique_ptr<pg_db> writer, std::vector<std::unique_ptr<pg_db>> readers,
                   std::unique_ptr<pg_db> feed, std::string node_id, std::uint64_t last_change,
                   std::vector<std::uint64_t> next_seq);
    ~postgres_store() override { close(); }

    result<snapshot> load() override;
    result<std::vector<auth::shared_access_policy>> load_policies() override;
    void commit(write_batch batch, commit_handler done) override;
    result<std::vector<event_record>> read_events(std::uint32_t partition, std::uint64_t from,
                                                  std::size_t max_count) override;
    result<partition_info> event_partition_info(std::uint32_t partition) override;
    result<c2d_state> load_c2d() override;
    void set_change_listener(change_listener l) override;
    bool allocates_sequence_numbers() const noexcept override { return true; }
    bool is_shared() const noexcept override { return true; }
    void set_remote_listener(remote_listener l) override;
    std::string node_id() const override { return node_id_; }
    // cluster_link (postgres_feed.cpp)
    void publish_presence(const identity_key& id, bool connected) override;
    void set_presence_handler(presence_handler h) override;
    std::string node_of(const identity_key& id) const override;
    void send_method_call(const std::string& node, method_call c) override;
    void send_method_result(const std::string& origin, method_result r) override;
    void set_method_handlers(std::function<void(method_call)> on_call,
                             std::function<void(method_result)> on_result) override;
    std::string self() const override { return node_id_; }
    void set_events_handler(std::function<void(std::uint32_t)> h) override;
    void close() override;

private:
    void run();
    // `pipelined`: runs of one-twin-write batches go to the server in one round trip; if that
    // fails, the group is rolled back and run again without.
    void commit_group(std::vector<pending>& group, std::vector<result<void>>& results, bool pipelined = true);
    result<void> apply(pending& p);
    result<void> apply_op(write_batch::op& o, const std::string& doc);
    result<void> apply_twin(write_batch::put_twin_op& op, const std::string& doc);
    // The int8 in the first column of the first row of statement `s` (text parameters), if any row.
    result<std::optional<std::int64_t>> get_int(q s, std::string_view a, std::optional<std::string_view> b,
                                                std::string_view what);
    result<void> run_text(q s, std::string_view what, std::initializer_list<std::string_view> args);
    result<void> identity_exists(const identity_key& id);
    // Right after BEGIN, before any batch: locks (FOR UPDATE, in one fixed order, so that nodes do
    // not deadlock on them) the counter rows the group needs, and reads next_seq_, next_c2d_ and
    // next_feedback_ from them. Another node's commit that needs a row waits for this one's COMMIT,
    // so numbers are allocated in commit order and never twice.
    result<void> lock_counters(const std::vector<pending>& group);
    // Before COMMIT: writes the advanced event and change counters back.
    result<void> store_counters();
    // A change feed row for a record write of this transaction (kind: remote_change::kind).
    result<void> record_change(remote_change::kind k, std::string_view device_id, std::string_view module_id,
                               std::string_view doc, std::string_view patch);
    result<void> record_change(std::int64_t k, std::string_view device_id, std::string_view module_id,
                               std::string_view doc, std::string_view patch);
    // A C2D write's change row (c2d_kind_base).
    result<void> record_c2d_change(cluster_link::c2d_change::kind k, const identity_key& id, std::uint64_t seq,
                                   std::uint32_t delivery_count = 0);
    void set_c2d_handler(std::function<void(std::vector<c2d_change>&)> h) override;
    // postgres_feed.cpp: the feed thread polls other nodes' changes and beats this node's heartbeat.
    void feed_loop();
    result<void> poll_changes();
    result<c2d_change> c2d_change_of(const pg_rows& rows, int i);
    // The feed thread's transactions of presence: this node's queued connects/disconnects, and
    // the sessions of a node (dead, or this one at close) cleared.
    result<void> write_presence(std::vector<std::pair<identity_key, bool>>& batch);
    result<void> clear_node(const std::string& node);
    result<void> sweep_dead_nodes();
    result<void> load_presence();
    // Compares event_counters with the last poll; tells the events handler what advanced.
    result<void> poll_event_counters();
    // Writes the queued method calls and results; takes this node's.
    result<void> exchange_methods(std::vector<std::pair<std::string, method_call>>& calls,
                                  std::vector<std::pair<std::string, method_result>>& results);
    // Another node's presence change: records it, tells the handler.
    void presence_seen(const identity_key& id, const std::string& node);

    std::unique_ptr<pg_db> w_;  // writer thread only
    pg_pool readers_;
    std::vector<std::uint64_t> next_seq_;  // per partition (stream); writer thread only
    std::vector<std::uint32_t> seq_undo_;  // partitions whose next_seq_ this group advanced
    // The event partitions whose counter rows this group locked, with the value read.
    std::vector<std::pair<std::uint32_t, std::uint64_t>> locked_parts_;
    std::uint64_t next_c2d_ = 0, next_feedback_ = 0;  // valid while this group holds the rows
    bool change_locked_ = false;
    // This batch's last delete_c2d found no row (another node settled or expired it first): the
    // feedback record that follows it in the batch is not written (one node reports each message).
    bool c2d_delete_missed_ = false;
    std::uint64_t change_at_lock_ = 0, next_change_ = 0;  // the 'change' counter + 1, while locked
    std::int64_t group_ns_ = 0;                           // this group's wall clock (change rows)

    const std::string node_id_;
    std::unique_ptr<pg_db> feed_;  // feed thread only
    std::uint64_t last_change_;    // feed thread only: the last change id applied
    std::mutex feed_m_;
    std::condition_variable feed_cv_;
    bool feed_stop_ = false;
    remote_listener remote_;  // under feed_m_
    std::mutex remote_call_m_;  // held while remote_ runs, so that replacing it waits for that
    std::vector<std::pair<identity_key, bool>> out_presence_;  // under feed_m_
    mutable std::mutex presence_m_;                            // guards the two below
    std::map<identity_key, std::string> node_of_;              // other nodes' sessions
    presence_handler presence_h_;                              // called under remote_call_m_
    std::vector<std::pair<std::string, method_call>> out_calls_;      // under feed_m_
    std::vector<std::pair<std::string, method_result>> out_results_;  // under feed_m_
    std::function<void(method_call)> on_call_;                        // under presence_m_
    std::function<void(method_result)> on_result_;                    // under presence_m_
    std::function<void(std::uint32_t)> on_events_;                    // under presence_m_
    std::function<void(std::vector<c2d_change>&)> on_c2d_;            // under presence_m_
    std::map<std::int64_t, std::int64_t> seen_counters_;              // feed thread only
    bool counters_seen_ = false;                                      // feed thread only
    std::thread feed_thread_;
    std::mutex listener_m_;
    change_listener listener_;
    std::mutex close_m_;
    commit_queue<pending> queue_;
    std::thread writer_thread_;  // last: starts once everything it uses exists
};

}  // namespace twinhub::store::pg
