// A store decorator that makes chosen commits fail as a broken disk would (like leveldb's
// FaultInjectionTestEnv): tests arm it instead of changing the database behind the hub's back.
//
// A failing batch is not applied. So that its completion still runs on the inner store's thread
// and in commit order (as the store contract promises), the decorator commits an empty batch in
// its place and reports the armed error from that batch's completion.
//
// Thread safety: every member may be called from any thread.
#pragma once

#include "store/store.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace twinhub::testing {

class fault_injecting_store final : public ::twinhub::store::store {
public:
    explicit fault_injecting_store(std::unique_ptr<::twinhub::store::store> inner) : inner_(std::move(inner)) {}

    // The next `count` batches fail with `why` (default: an I/O error, storage_error).
    void fail_next_commits(int count, error why = {errc::storage_error, "disk I/O error (injected)"}) {
        std::lock_guard l(m_);
        fail_count_ = count;
        why_ = std::move(why);
    }
    // Batches for which `pred` returns true fail with `why`, until cleared with a null function.
    void fail_commits_where(std::function<bool(const ::twinhub::store::write_batch&)> pred,
                            error why = {errc::storage_error, "disk I/O error (injected)"}) {
        std::lock_guard l(m_);
        pred_ = std::move(pred);
        why_ = std::move(why);
    }
    // Commits that were failed on purpose so far.
    int injected_failures() const { return injected_.load(); }

    result<::twinhub::store::snapshot> load() override { return inner_->load(); }
    result<std::vector<auth::shared_access_policy>> load_policies() override { return inner_->load_policies(); }

    void commit(::twinhub::store::write_batch batch, ::twinhub::store::commit_handler done) override {
        std::optional<error> fail;
        {
            std::lock_guard l(m_);
            if (fail_count_ > 0) {
                --fail_count_;
                fail = why_;
            } else if (pred_ && pred_(batch)) {
                fail = why_;
            }
        }
        if (!fail) return inner_->commit(std::move(batch), std::move(done));
        ++injected_;
        inner_->commit(::twinhub::store::write_batch{}, [done = std::move(done), why = std::move(*fail)](result<void> r) {
            done(r ? result<void>{why} : r);
        });
    }

    result<std::vector<::twinhub::store::event_record>> read_events(std::uint32_t partition, std::uint64_t from,
                                                         std::size_t max_count) override {
        return inner_->read_events(partition, from, max_count);
    }
    result<partition_info> event_partition_info(std::uint32_t partition) override {
        return inner_->event_partition_info(partition);
    }
    result<::twinhub::store::c2d_state> load_c2d() override { return inner_->load_c2d(); }
    void set_change_listener(::twinhub::store::change_listener l) override { inner_->set_change_listener(std::move(l)); }
    void close() override { inner_->close(); }

private:
    std::unique_ptr<::twinhub::store::store> inner_;
    mutable std::mutex m_;
    int fail_count_ = 0;
    std::function<bool(const ::twinhub::store::write_batch&)> pred_;
    error why_{errc::storage_error, "disk I/O error (injected)"};
    std::atomic<int> injected_{0};
};

}  // namespace twinhub::testing
