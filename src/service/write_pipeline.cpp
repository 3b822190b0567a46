#include "service/write_pipeline.hpp"

#include "common/log.hpp"
#include "service/metrics.hpp"

#include <chrono>

#include <utility>

namespace twinhub::service {
namespace {

// Set while this thread is inside store.commit() with the domain lock held: a store that completes
// a batch inline (e.g. with shutting_down after close()) must not run our completion there,
// because the completion takes the lock.
thread_local after_unlock* tl_inline_sink = nullptr;

std::int64_t steady_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// The store's answer to one batch: latency and outcome into the metrics (relaxed atomics).
void observe_commit(std::int64_t submitted_ns, const result<void>& r) noexcept {
    auto& m = metrics();
    const std::int64_t us = (steady_ns() - submitted_ns) / 1000;
    m.commit_latency_us.observe(us > 0 ? static_cast<std::uint64_t>(us) : 0);
    const bool ok = r || is_condition_failure(r.error().code);  // a failed condition is not a store failure
    if (!ok) m.commit_failures.inc();
    if (m.last_commit_ok.load(std::memory_order_relaxed) != ok) m.last_commit_ok.store(ok, std::memory_order_relaxed);
}

struct inline_sink_scope {
    after_unlock* prev;
    explicit inline_sink_scope(after_unlock* a) : prev(tl_inline_sink) { tl_inline_sink = a; }
    ~inline_sink_scope() { tl_inline_sink = prev; }
};

}  // namespace

bool is_condition_failure(errc c) {
    switch (c) {
    case errc::device_not_found:
    case errc::module_not_found:
    case errc::device_already_exists:
    case errc::module_already_exists:
    case errc::precondition_failed:
    case errc::not_found: return true;
    default: return false;
    }
}

void write_pipeline::submit(entry_state& e, std::string key, store::write_batch batch, std::function<void()> apply,
                            std::function<void(result<void>)> finish, after_unlock& after) {
    auto w = std::make_shared<pending>();
    w->key = std::move(key);
    w->epoch = e.epoch;
    w->submitted_ns = steady_ns();
    w->apply = std::move(apply);
    w->finish = std::move(finish);
    ++e.in_flight;
    begin_outstanding();
    inline_sink_scope scope(&after);
    store_.commit(std::move(batch), [this, w](result<void> r) {
        observe_commit(w->submitted_ns, r);
        if (tl_inline_sink) {
            tl_inline_sink->add([this, w, r] { complete(w, r); });
            return;
        }
        std::function<void(result<void>)> none;
        if (defer_to_group(w, none, r)) return;
        complete(w, r);
    });
}

void write_pipeline::commit_plain(store::write_batch batch, std::function<void(result<void>)> done,
                                  after_unlock* after) {
    begin_outstanding();
    inline_sink_scope scope(after ? after : tl_inline_sink);
    store_.commit(std::move(batch), [this, done = std::move(done), t0 = steady_ns()](result<void> r) mutable {
        observe_commit(t0, r);
        if (tl_inline_sink) {
            tl_inline_sink->add([this, done = std::move(done), r] {
                done(r);
                end_outstanding();
            });
            return;
        }
        if (defer_to_group(nullptr, done, r)) return;
        done(r);
        end_outstanding();
    });
}

// Completions that the store runs inside a completion_group (its writer thread, back to back in
// commit order) are collected and handled at the group's end: applied in commit order under ONE
// exclusive lock acquisition, then, after the lock, finished in the same order. Plain commits'
// handlers are queued too, so that every handler still runs in commit order.
bool write_pipeline::defer_to_group(std::shared_ptr<pending> w, std::function<void(result<void>)>& plain,
                                    result<void>& r) {
    auto* g = store::completion_group::current();
    if (!g) return false;
    if (group_owner_ != g) {
        group_owner_ = g;
        g->defer([this] { finish_group(); });
    }
    group_done_.push_back(completed{std::move(w), std::move(plain), std::move(r)});
    return true;
}

void write_pipeline::finish_group() {
    group_owner_ = nullptr;
    std::vector<completed> items;
    items.swap(group_done_);
    const std::size_t n = items.size();
    metrics().commit_group_size.observe(n);
    std::vector<result<void>> outcomes(n);
    {
        std::unique_lock lock(mu_);
        for (std::size_t i = 0; i < n; ++i)
            if (items[i].w) outcomes[i] = apply_completion(*items[i].w, items[i].r);
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (items[i].w)
            items[i].w->finish(outcomes[i]);
        else
            items[i].plain(items[i].r);
        items[i] = completed{};  // release what the handler captured before `this` may go away
        end_outstanding();
    }
}

void write_pipeline::complete(const std::shared_ptr<pending>& w, result<void> r) {
    result<void> outcome;
    {
        std::unique_lock lock(mu_);
        outcome = apply_completion(*w, r);
    }
    w->finish(outcome);
    end_outstanding();
}

// Under mu_ (exclusive): applies a completed write to its entry; returns what its handler gets.
result<void> write_pipeline::apply_completion(pending& w, const result<void>& r) {
    result<void> outcome = r;
    entry_state* e = target_.entry(w.key);
    if (!e) {
        log::error("service.invariant", {{"what", "completion without entry"}, {"device", w.key}});
        return error{errc::internal, "The hub lost track of a write to '" + w.key + "'."};
    }
    --e->in_flight;
    if (r) {
        w.apply();
    } else {
        log::warn("service.commit_failed", {{"device", w.key}, {"code", to_string(r.error().code)}});
        if (w.epoch == e->epoch) {
            ++e->epoch;
            target_.reset_heads(w.key, *e);
        } else if (is_condition_failure(r.error().code)) {
            outcome = error{errc::storage_error, "The write to '" + w.key +
                                                     "' was not applied because an earlier write to it failed; retry."};
        }
    }
    if (e->in_flight == 0) target_.settle(w.key, *e);  // may remove the entry: `e` is not used after
    return outcome;
}

// Counted without the lock, except the drop to zero: that happens under it, so the waiter cannot
// see zero (and destroy us) before the last end_outstanding() is done with the lock.
void write_pipeline::begin_outstanding() {
    outstanding_.fetch_add(1, std::memory_order_relaxed);
    metrics().commits_in_flight.fetch_add(1, std::memory_order_relaxed);
}

void write_pipeline::end_outstanding() {
    metrics().commits_in_flight.fetch_sub(1, std::memory_order_relaxed);
    std::size_t n = outstanding_.load(std::memory_order_relaxed);
    while (n > 1)
        if (outstanding_.compare_exchange_weak(n, n - 1, std::memory_order_acq_rel)) return;
    std::lock_guard l(outstanding_mu_);
    outstanding_.fetch_sub(1, std::memory_order_acq_rel);
    outstanding_cv_.notify_all();
}

void write_pipeline::wait_idle() {
    std::unique_lock l(outstanding_mu_);
    outstanding_cv_.wait(l, [this] { return outstanding_.load(std::memory_order_acquire) == 0; });
}

}  // namespace twinhub::service
