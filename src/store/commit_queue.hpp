// The queue between committers and a backend's writer thread: commit() pushes, the writer takes
// everything queued (up to a cap) as one group. After close() pushes fail and take() drains what
// is left, then reports the end.
// Thread safety: every member function may be called from any thread.
#pragma once

#include "store/store.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <vector>

namespace twinhub::store {

template <class T>
class commit_queue {
public:
    // Queues `item`; returns false (and leaves `item` untouched) after close().
    bool push(T& item) {
        {
            std::lock_guard lock(m_);
            if (closed_) return false;
            q_.push_back(std::move(item));
        }
        cv_.notify_one();
        return true;
    }

    // Blocks until something is queued or the queue is closed; moves up to `cap` items into `out`
    // (which it clears first). Returns false once the queue is closed and empty.
    bool take(std::vector<T>& out, std::size_t cap) {
        out.clear();
        std::unique_lock lock(m_);
        cv_.wait(lock, [this] { return closed_ || !q_.empty(); });
        if (q_.empty()) return false;
        while (!q_.empty() && out.size() < cap) {
            out.push_back(std::move(q_.front()));
            q_.pop_front();
        }
        return true;
    }

    void close() {
        {
            std::lock_guard lock(m_);
            closed_ = true;
        }
        cv_.notify_all();
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<T> q_;
    bool closed_ = false;
};

// What every backend's writer thread does after a group's transaction: for each batch in commit
// order, the change listener (successful batches only), then the batch's completion, all inside
// one completion_group. `Pending` has `batch` and `done`; the listener is read under `listener_m`.
template <class Pending>
void complete_group(std::vector<Pending>& group, std::vector<result<void>>& results, std::mutex& listener_m,
                    const change_listener& listener) {
    change_listener l;
    {
        std::lock_guard lock(listener_m);
        l = listener;
    }
    completion_group cg;  // completions may defer work to the end of the group
    for (std::size_t i = 0; i < group.size(); ++i) {
        if (results[i] && l) l(group[i].batch);
        if (group[i].done) group[i].done(std::move(results[i]));
    }
}

}  // namespace twinhub::store
