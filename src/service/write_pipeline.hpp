// The write pipeline: how the hub's domain writes reach the store and come back.
//
// A domain write is computed under the domain's exclusive lock (the `mu` given at construction),
// then submit()ted with its entry's in-flight accounting. Because commit() is called under that
// lock, the store's commit order is the order in which the writes were accepted, and the store
// completes them in that order on its thread. A completion takes the lock (once for all the
// completions of one store completion_group), applies the write (`apply`) or, on failure, tells the
// target to throw away the entry's heads (later writes built on the failed one), releases the lock,
// then runs `finish` (observers, the caller's handler) in commit order.
//
// In-flight accounting is per entry (write_pipeline::entry_state): `epoch` counts the entry's
// failures; a write that fails with a condition error after an earlier write of its entry failed
// completes with storage_error, because its condition failed only because of that earlier failure.
// When an entry's in-flight count drops to zero the target settles it (drops what no longer exists).
//
// Thread safety: every member may be called from any thread, submit() and commit_plain(.., &after)
// with `mu` held exclusively. The store and the target must outlive the pipeline; the destructor
// waits until every completion handed to the store has finished.
#pragma once

#include "common/errc.hpp"
#include "store/store.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::service {

// Functions collected under a lock and run after it is released, in the order they were added
// (declare it before the lock so that it is destroyed after the lock).
struct after_unlock {
    std::vector<std::function<void()>> fns;
    after_unlock() = default;
    after_unlock(const after_unlock&) = delete;
    after_unlock& operator=(const after_unlock&) = delete;
    ~after_unlock() {
        for (auto& f : fns) f();
    }
    void add(std::function<void()> f) { fns.push_back(std::move(f)); }
};

class write_pipeline {
public:
    // The accounting of one entry (for the hub: a device, its twin, its modules and their twins).
    struct entry_state {
        std::uint64_t in_flight = 0;  // writes committed to the store, not yet completed
        std::uint64_t epoch = 0;      // +1 when a write of the entry fails
    };

    // The domain state the completions apply to. Every call is made with `mu` held exclusively.
    class target {
    public:
        virtual ~target() = default;
        // The accounting of entry `key`, or nullptr when the entry is gone (an invariant violation:
        // an entry with writes in flight is never removed).
        virtual entry_state* entry(std::string_view key) = 0;
        // A write of `key` failed first in its epoch: every head of the entry is now unreliable.
        virtual void reset_heads(std::string_view key, entry_state& e) = 0;
        // No write of `key` is in flight any more: heads equal committed.
        // May remove the entry.
        virtual void settle(std::string_view key, entry_state& e) = 0;
    };

    write_pipeline(store::store& s, std::shared_mutex& mu, target& t) : store_(s), mu_(mu), target_(t) {}
    ~write_pipeline() { wait_idle(); }
    write_pipeline(const write_pipeline&) = delete;
    write_pipeline& operator=(const write_pipeline&) = delete;

    // With `mu` held exclusively and `e` = target.entry(key): commits `batch`. On success `apply`
    // runs under `mu` (exclusive), then `finish` after it with the outcome; on failure only
    // `finish`, with the store's error or storage_error (see the file comment). A completion that
    // the store runs inline (a closed store) is deferred to `after`.
    void submit(entry_state& e, std::string key, store::write_batch batch, std::function<void()> apply,
                std::function<void(result<void>)> finish, after_unlock& after);

    // A write outside the entries (sessions, settings, events, policies): `done` runs after the
    // commit, in commit order with the entry writes of its group, without `mu`. With `after` (and
    // `mu` held exclusively) a completion the store runs inline is deferred to `after`.
    void commit_plain(store::write_batch batch, std::function<void(result<void>)> done,
                      after_unlock* after = nullptr);

    // Waits until every completion handed to the store has finished (its handler has returned).
    void wait_idle();

    store::store& store() noexcept { return store_; }

private:
    struct pending {
        std::string key;
        std::uint64_t epoch = 0;
        std::int64_t submitted_ns = 0;  // steady clock, for the commit latency histogram
        std::function<void()> apply;
        std::function<void(result<void>)> finish;
    };
    struct completed {
        std::shared_ptr<pending> w;                // an entry write, or
        std::function<void(result<void>)> plain;   // a commit_plain handler
        result<void> r;
    };

    bool defer_to_group(std::shared_ptr<pending> w, std::function<void(result<void>)>& plain, result<void>& r);
    void finish_group();
    void complete(const std::shared_ptr<pending>& w, result<void> r);
    result<void> apply_completion(pending& w, const result<void>& r);
    void begin_outstanding();
    void end_outstanding();

    store::store& store_;
    std::shared_mutex& mu_;
    target& target_;

    // Touched only on the store's thread, inside or at the end of a completion group.
    std::vector<completed> group_done_;
    store::completion_group* group_owner_ = nullptr;

    // Batches handed to the store whose completion has not finished yet.
    std::mutex outstanding_mu_;
    std::condition_variable outstanding_cv_;
    std::atomic<std::size_t> outstanding_{0};
};

// True for the store errors that mean "the batch's condition did not hold".
bool is_condition_failure(errc c);

}  // namespace twinhub::service
