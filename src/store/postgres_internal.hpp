// Internals of the PostgreSQL backend, shared by its source files (postgres_schema.cpp: schema,
// statements and opening; postgres_commit.cpp: the writer; postgres_load.cpp: the readers).
// Thread safety: as store.hpp.
#pragma once

#include "store/commit_queue.hpp"
#include "store/pg_conn.hpp"
#include "store/store.hpp"

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace twinhub::store::pg {

// The prepared statements, by index into statements().
enum q : int {
    policy_put, policy_delete, device_get, device_put, device_delete, device_modules_delete, device_twins_delete,
    device_sessions_delete, device_c2d_delete, module_get, module_put, module_delete, twin_delete, module_c2d_delete,
    twin_update, twin_get, twin_insert, session_put, session_delete, event_put, event_trim, setting_put,
    setting_delete, c2d_put, c2d_counter, c2d_update, c2d_delete, feedback_put, feedback_counter, feedback_delete,
    load_policies, load_devices, load_modules, load_sessions, load_settings, load_c2d, load_feedback, load_counters,
    read_events, event_bounds, event_max,
    statement_count
};
const std::vector<pg_statement>& statements();

// A batch with its documents already serialized (on the committing thread), one per op.
struct pending {
    write_batch batch;
    std::vector<std::string> docs;
    commit_handler done;
};

class postgres_store final : public store {
public:
    postgres_store(std::unique_ptr<pg_db> writer, std::vector<std::unique_ptr<pg_db>> readers,
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

    std::unique_ptr<pg_db> w_;  // writer thread only
    pg_pool readers_;
    std::vector<std::uint64_t> next_seq_;  // per partition (stream); writer thread only
    std::vector<std::uint32_t> seq_undo_;  // partitions whose next_seq_ this group advanced
    std::mutex listener_m_;
    change_listener listener_;
    std::mutex close_m_;
    commit_queue<pending> queue_;
    std::thread writer_thread_;  // last: starts once everything it uses exists
};

}  // namespace twinhub::store::pg
