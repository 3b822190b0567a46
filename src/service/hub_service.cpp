// hub_service: the in-memory domain state, made durable through store::store.
//
// How a write works. Each record keeps `committed` (what readers see: durable and acknowledged)
// and, while writes are in flight, `head` (what the next write builds on). Under the exclusive lock
// a write validates against head-or-committed, computes the new record, sets head and calls
// store.commit() with a condition on the revision it was computed from. Because commit() is called
// under the lock, the store's commit order is the order in which heads were set, and the store
// completes batches in that order on its thread. The completion takes the lock (once for all the
// completions of a store group, see finish_group), copies the written
// values into `committed` (or, on failure, throws away every head of that device: they may build
// on the failed write), releases the lock, then tells the observers and calls the handler.
//
// In-flight accounting is per device entry (the device, its twin, its modules and their twins):
// a module write may depend on its device's in-flight create, and a device delete cascades over
// its modules. `epoch` counts the failures of a device entry; a write that fails with a condition
// error after an earlier write of its entry failed is reported as storage_error, because the
// condition failed only because of that earlier failure.
//
// Presence (connectionState, lastActivityTime, modelId) is kept in memory only: it changes on
// every connect and message, nobody needs it across a restart (everything is disconnected after
// one), and committing it would cost a transaction per telemetry message. It reaches the store
// only as part of the next identity/twin write, and open() resets connectionState to
// Disconnected. A committed write never rolls presence back: the completion keeps the in-memory
// presence values.
#include "service/hub_service.hpp"

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "service/twin_json.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace twinhub::service {
namespace {

using registry::device_identity;
using registry::module_identity;
using twin::twin_document;

// A record as readers see it (`committed`) and as the next write sees it (`head`, set only while
// writes are in flight; an inner nullopt means "deleted by an in-flight write").
// `H` holds one T or none: std::optional<T>, or for twins a shared immutable document, so that
// the head, the store batch and the committed value of a twin write are one document, not copies.
template <class T, class H = std::optional<T>>
struct slot {
    H committed;
    std::optional<H> head;

    const H& view() const { return head ? *head : committed; }
};

using shared_twin = std::shared_ptr<const twin_document>;
using twin_slot = slot<twin_document, shared_twin>;

struct module_entry {
    slot<module_identity> identity;
    twin_slot twin;
};

struct device_entry {
    slot<device_identity> identity;
    twin_slot twin;
    std::map<std::string, module_entry, std::less<>> modules;
    std::uint64_t in_flight = 0;  // writes of this entry committed to the store, not yet completed
    std::uint64_t epoch = 0;      // +1 when a write of this entry fails
};

using device_map = std::map<std::string, device_entry, std::less<>>;

// The devices in id order (listings and queries walk them sorted), with a hash index beside the
// ordered map for lookups by id: a lookup is a hash and one compare instead of a walk down the tree
// (17 string compares at 100,000 devices, each a likely cache miss). The map's nodes never move,
// so the index holds its iterators; erase() keeps the two in step.
class device_table {
public:
    using iterator = device_map::iterator;
    using const_iterator = device_map::const_iterator;

    iterator begin() { return map_.begin(); }
    iterator end() { return map_.end(); }
    const_iterator begin() const { return map_.begin(); }
    const_iterator end() const { return map_.end(); }
    std::size_t size() const { return map_.size(); }

    iterator find(std::string_view id) {
        auto i = index_.find(id);
        return i == index_.end() ? map_.end() : i->second;
    }
    const_iterator find(std::string_view id) const {
        auto i = index_.find(id);
        return i == index_.end() ? map_.end() : const_iterator(i->second);
    }
    device_entry& operator[](const std::string& id) {
        auto [it, added] = map_.try_emplace(id);
        if (added) index_.emplace(std::string_view(it->first), it);
        return it->second;
    }
    void erase(iterator it) {
        index_.erase(std::string_view(it->first));
        map_.erase(it);
    }

private:
    device_map map_;
    std::unordered_map<std::string_view, iterator> index_;
};

// Handlers and notifications collected under the lock and run after it is released (declare it
// before the lock so that it is destroyed after the lock).
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

// Set while this thread is inside store.commit() with the hub lock held: a store that completes a
// batch inline (e.g. with shutting_down after close()) must not run our completion there, because
// the completion takes the lock.
thread_local after_unlock* tl_inline_sink = nullptr;

std::string device_not_found_message(std::string_view id) { return "Device '" + std::string(id) + "' not found."; }
std::string module_not_found_message(std::string_view d, std::string_view m) {
    return "Module '" + std::string(m) + "' not found on device '" + std::string(d) + "'.";
}

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

// Fills empty symmetric keys of a sas identity: new ones (create, and update as on IoT Hub), or from
// `stored` when `keep` (hub_options::keep_keys_on_empty_update).
void fill_keys(registry::authentication_mechanism& a, const registry::authentication_mechanism* stored, bool keep) {
    if (a.type != registry::auth_type::sas) return;
    const bool can_keep = keep && stored && stored->type == registry::auth_type::sas;
    auto& k = a.symmetric_key;
    if (k.primary_key.empty())
        k.primary_key = can_keep && !stored->symmetric_key.primary_key.empty() ? stored->symmetric_key.primary_key
                                                                                : generate_key();
    if (k.secondary_key.empty())
        k.secondary_key = can_keep && !stored->symmetric_key.secondary_key.empty()
                              ? stored->symmetric_key.secondary_key
                              : generate_key();
}

// What a connection authenticated with: a change means its token must be checked again.
bool same_authentication(const registry::authentication_mechanism& a, const registry::authentication_mechanism& b) {
    return a.type == b.type && a.symmetric_key.primary_key == b.symmetric_key.primary_key &&
           a.symmetric_key.secondary_key == b.symmetric_key.secondary_key &&
           a.x509_thumbprint.primary_thumbprint == b.x509_thumbprint.primary_thumbprint &&
           a.x509_thumbprint.secondary_thumbprint == b.x509_thumbprint.secondary_thumbprint;
}

bool same_policy(const auth::shared_access_policy& a, const auth::shared_access_policy& b) {
    return a.key_name == b.key_name && a.primary_key == b.primary_key && a.secondary_key == b.secondary_key &&
           a.rights == b.rights;
}

using policy_map = std::map<std::string, auth::shared_access_policy>;

// Presence lives in memory (see the file comment): a committed write keeps the current values.
void keep_presence(device_identity& into, const device_identity& from) {
    into.connection_state = from.connection_state;
    into.connection_state_updated_time = from.connection_state_updated_time;
    into.last_activity_time = from.last_activity_time;
}
void keep_presence(module_identity& into, const module_identity& from) {
    into.connection_state = from.connection_state;
    into.connection_state_updated_time = from.connection_state_updated_time;
    into.last_activity_time = from.last_activity_time;
}

std::string quote_etag(const std::string& etag) {
    if (etag.empty() || etag.front() == '"' || etag.rfind("W/", 0) == 0 || etag == "*") return etag;
    return "\"" + etag + "\"";
}

std::string describe_key(const store::identity_key& k) {
    return k.is_module() ? k.device_id + "/" + k.module_id : k.device_id;
}

}  // namespace

struct hub_service::impl {
    impl(store::store& s, hub_options o) : store_(s), opts_(o) {}

    store::store& store_;
    hub_options opts_;
    std::vector<change_observer*> observers_;  // fixed before serving; read without a lock
    twin_change_listener* twin_listener_ = nullptr;  // query support; fixed before serving

    // Query support: report the entry's device twin and every module twin (under mu_, exclusive).
    void twin_changed(const device_entry& e, const std::string& device_id) const {
        if (!twin_listener_) return;
        twin_listener_->on_twin_changed(store::identity_key{device_id, {}});
        for (auto& [mid, _] : e.modules) twin_listener_->on_twin_changed(store::identity_key{device_id, mid});
    }

    mutable std::shared_mutex mu_;
    device_table devices_;
    policy_map policies_;  // committed

    mutable std::mutex sessions_mu_;  // taken after mu_ when both are needed
    std::map<std::string, store::session_record, std::less<>> sessions_;

    mutable std::mutex settings_mu_;
    std::map<std::string, std::string, std::less<>> settings_;
    std::uint32_t event_partitions_ = store::default_event_partitions;  // fixed at open()
    event_router* event_router_ = nullptr;  // fixed before serving
    std::int64_t event_hub_created_ns_ = 0;

    // Batches handed to the store whose completion has not finished yet; ~hub_service waits for 0
    // because the completions use this object.
    std::mutex outstanding_mu_;
    std::condition_variable outstanding_cv_;
    std::atomic<std::size_t> outstanding_{0};

    // Counted without the lock, except the drop to zero: that happens under it, so the waiter
    // cannot see zero (and destroy us) before the last end_outstanding() is done with the lock.
    void begin_outstanding() { outstanding_.fetch_add(1, std::memory_order_relaxed); }
    void end_outstanding() {
        std::size_t n = outstanding_.load(std::memory_order_relaxed);
        while (n > 1)
            if (outstanding_.compare_exchange_weak(n, n - 1, std::memory_order_acq_rel)) return;
        std::lock_guard l(outstanding_mu_);
        outstanding_.fetch_sub(1, std::memory_order_acq_rel);
        outstanding_cv_.notify_all();
    }
    void wait_outstanding() {
        std::unique_lock l(outstanding_mu_);
        outstanding_cv_.wait(l, [this] { return outstanding_.load(std::memory_order_acquire) == 0; });
    }

    // store.commit() for writes outside the device entries (sessions, events).
    void commit_plain(store::write_batch b, std::function<void(result<void>)> on_done) {
        begin_outstanding();
        store_.commit(std::move(b), [this, on_done = std::move(on_done)](result<void> r) mutable {
            if (defer_to_group(nullptr, on_done, r)) return;
            on_done(r);
            end_outstanding();
        });
    }

    // ---- write machinery ----

    struct pending_write {
        std::string device_id;
        std::uint64_t epoch = 0;
        std::function<void(device_entry&)> apply;      // on success, under the exclusive lock
        std::function<void(result<void>)> finish;      // after the lock: notify, call the handler
    };

    // Call with mu_ held exclusively and `e` = devices_[w.device_id]. Any completion the store runs
    // inline is deferred to `after` (run once the caller has released the lock).
    void submit(device_entry& e, store::write_batch batch, std::shared_ptr<pending_write> w, after_unlock& after) {
        ++e.in_flight;
        w->epoch = e.epoch;
        begin_outstanding();
        after_unlock* prev = tl_inline_sink;
        tl_inline_sink = &after;
        store_.commit(std::move(batch), [this, w](result<void> r) {
            if (tl_inline_sink) {
                tl_inline_sink->add([this, w, r] { complete(w, r); });
                return;
            }
            if (defer_to_group(w, {}, r)) return;
            complete(w, r);
        });
        tl_inline_sink = prev;
    }

    // Completions that the store runs inside a completion_group (its writer thread, back to back in
    // commit order) are collected and handled at the group's end: applied in commit order under ONE
    // exclusive lock acquisition, then, after the lock, finished (observers, handlers) in the same
    // order. Plain commits' handlers are queued too, so that every handler still runs in commit
    // order. Touched only on the store's thread, inside or at the end of a group.
    struct completed {
        std::shared_ptr<pending_write> w;             // a device-entry write, or
        std::function<void(result<void>)> plain;      // a commit_plain handler
        result<void> r;
    };
    std::vector<completed> group_done_;
    store::completion_group* group_owner_ = nullptr;

    bool defer_to_group(std::shared_ptr<pending_write> w, std::function<void(result<void>)>& plain, result<void>& r) {
        auto* g = store::completion_group::current();
        if (!g) return false;
        if (group_owner_ != g) {
            group_owner_ = g;
            g->defer([this] { finish_group(); });
        }
        group_done_.push_back(completed{std::move(w), std::move(plain), std::move(r)});
        return true;
    }
    bool defer_to_group(std::shared_ptr<pending_write> w, std::function<void(result<void>)>&& plain, result<void>& r) {
        return defer_to_group(std::move(w), plain, r);
    }

    void finish_group() {
        group_owner_ = nullptr;
        std::vector<completed> items;
        items.swap(group_done_);
        const std::size_t n = items.size();
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

    void complete(const std::shared_ptr<pending_write>& w, result<void> r) {
        result<void> outcome;
        {
            std::unique_lock lock(mu_);
            outcome = apply_completion(*w, r);
        }
        w->finish(outcome);
        end_outstanding();
    }

    // Under mu_ (exclusive): applies a completed write to its entry; returns what its handler gets.
    result<void> apply_completion(pending_write& wr, const result<void>& r) {
        result<void> outcome = r;
        pending_write* w = &wr;
        {
            auto it = devices_.find(w->device_id);
            if (it == devices_.end()) {
                log::error("service.invariant", {{"what", "completion without entry"}, {"device", w->device_id}});
                outcome = error{errc::internal, "The hub lost track of a write to '" + w->device_id + "'."};
            } else {
                device_entry& e = it->second;
                --e.in_flight;
                if (r) {
                    w->apply(e);
                    twin_changed(e, w->device_id);
                } else {
                    log::warn("service.commit_failed",
                              {{"device", w->device_id}, {"code", to_string(r.error().code)}});
                    if (w->epoch == e.epoch) {
                        ++e.epoch;
                        reset_heads(e);
                    } else if (is_condition_failure(r.error().code)) {
                        outcome = error{errc::storage_error,
                                        "The write to '" + w->device_id +
                                            "' was not applied because an earlier write to it failed; retry."};
                    }
                }
                if (e.in_flight == 0) settle(it);
            }
        }
        return outcome;
    }

    static void reset_heads(device_entry& e) {
        e.identity.head.reset();
        e.twin.head.reset();
        for (auto& [_, m] : e.modules) {
            m.identity.head.reset();
            m.twin.head.reset();
        }
    }

    // No write of the entry is in flight: heads equal committed; drop what no longer exists.
    void settle(device_table::iterator it) {
        device_entry& e = it->second;
        reset_heads(e);
        std::erase_if(e.modules, [](const auto& kv) { return !kv.second.identity.committed; });
        if (!e.identity.committed) devices_.erase(it);
    }

    template <class T>
    static void fail(after_unlock& after, const handler<T>& done, error err) {
        after.add([done, err = std::move(err)] { done(err); });
    }

    // ---- lookups ----

    // Readers: committed state only.
    const device_entry* committed_device(std::string_view id) const {
        auto it = devices_.find(id);
        if (it == devices_.end() || !it->second.identity.committed) return nullptr;
        return &it->second;
    }
    const module_entry* committed_module(const device_entry& d, std::string_view mid) const {
        auto it = d.modules.find(mid);
        if (it == d.modules.end() || !it->second.identity.committed) return nullptr;
        return &it->second;
    }

    // Writers: head-or-committed.
    device_entry* head_device(std::string_view id) {
        auto it = devices_.find(id);
        if (it == devices_.end() || !it->second.identity.view()) return nullptr;
        return &it->second;
    }
    static module_entry* head_module(device_entry& d, std::string_view mid) {
        auto it = d.modules.find(mid);
        if (it == d.modules.end() || !it->second.identity.view()) return nullptr;
        return &it->second;
    }
    static std::size_t head_module_count(const device_entry& d) {
        std::size_t n = 0;
        for (auto& [_, m] : d.modules)
            if (m.identity.view()) ++n;
        return n;
    }

    // ---- notifications ----

    void notify_desired(const store::identity_key& id, const twin::desired_change& c) const {
        for (auto* o : observers_) o->on_desired_change(id, c);
    }
    void notify_events(std::uint32_t partition) const {
        for (auto* o : observers_) o->on_events_appended(partition);
    }

    void notify_revoked(const std::vector<store::identity_key>& ids) const {
        for (auto& id : ids)
            for (auto* o : observers_) o->on_identity_revoked(id);
    }
    void notify_credentials_changed(const store::identity_key& id) const {
        for (auto* o : observers_) o->on_credentials_changed(id);
    }
    void notify_policies_changed() const {
        for (auto* o : observers_) o->on_policies_changed();
    }

    // ---- shared access policies ----
    //
    // Policy writes are rare (an operator rotating a key), so they are simply serialized: one is in
    // the store at a time, computed from the committed set; the others wait in policy_queue_.
    // Thus a failed write never leaks into a later one, and policies_ is always what is durable.

    struct policy_write {
        std::function<result<policy_map>(const policy_map&)> change;  // the new set, or why not
        std::function<void(result<void>)> finish;                     // after the lock
    };
    std::deque<policy_write> policy_queue_;  // under mu_
    bool policy_writing_ = false;            // under mu_: a policy write is in the store

    void write_policies(policy_write w) {
        after_unlock after;
        std::unique_lock lock(mu_);
        policy_queue_.push_back(std::move(w));
        if (!policy_writing_) start_policy_write(after);
    }

    // Under mu_ (exclusive), no policy write in the store: commits the next queued write that
    // passes its checks (the others fail through `after`).
    void start_policy_write(after_unlock& after) {
        while (!policy_queue_.empty()) {
            policy_write w = std::move(policy_queue_.front());
            policy_queue_.pop_front();
            auto next = w.change(policies_);
            if (!next) {
                after.add([finish = std::move(w.finish), err = next.error()] { finish(err); });
                continue;
            }
            store::write_batch b;
            for (auto& [name, _] : policies_)
                if (!next->contains(name)) b.delete_policy(name);
            for (auto& [name, p] : *next)
                if (auto it = policies_.find(name); it == policies_.end() || !same_policy(it->second, p))
                    b.put_policy(p);
            policy_writing_ = true;
            begin_outstanding();
            auto written = std::make_shared<policy_map>(std::move(*next));
            auto finish = std::make_shared<std::function<void(result<void>)>>(std::move(w.finish));
            after_unlock* prev = tl_inline_sink;
            tl_inline_sink = &after;
            store_.commit(std::move(b), [this, written, finish](result<void> r) {
                if (tl_inline_sink) {
                    tl_inline_sink->add([this, written, finish, r] {
                        complete_policy_write(*written, *finish, r);
                        end_outstanding();
                    });
                    return;
                }
                // In a completion group, the group calls end_outstanding() after the handler.
                auto in_group = [this, written, finish](result<void> r) {
                    complete_policy_write(*written, *finish, r);
                };
                if (defer_to_group(nullptr, std::move(in_group), r)) return;
                complete_policy_write(*written, *finish, r);
                end_outstanding();
            });
            tl_inline_sink = prev;
            return;
        }
    }

    void complete_policy_write(policy_map& written, const std::function<void(result<void>)>& finish, result<void> r) {
        after_unlock after;
        std::unique_lock lock(mu_);
        if (r)
            policies_ = std::move(written);
        else
            log::warn("service.commit_failed", {{"what", "policies"}, {"code", to_string(r.error().code)}});
        policy_writing_ = false;
        after.add([finish, r] { finish(r); });  // before the queued writes that fail at once
        start_policy_write(after);
    }

    // ---- devices ----

    void create_device(device_identity req, handler<device_identity> done) {
        after_unlock after;
        std::unique_lock lock(mu_);
        if (auto v = registry::validate_id(req.device_id, "deviceId"); !v) return fail(after, done, v.error());
        if (head_device(req.device_id))
            return fail(after, done,
                        error{errc::device_already_exists, "Device '" + req.device_id + "' already exists."});

        const time_point t = now();
        device_identity d = std::move(req);
        d.generation_id = registry::new_generation_id();
        d.etag = 0;
        d.connection_state = registry::connection_state::disconnected;
        d.connection_state_updated_time.reset();
        d.last_activity_time.reset();
        d.status_updated_time.reset();
        d.cloud_to_device_message_count = 0;
        fill_keys(d.authentication, nullptr, false);
        if (d.iot_edge) d.device_scope = "ms-azure-iot-edge://" + d.device_id + "-" + d.generation_id;
        auto tw = std::make_shared<const twin_document>(twin::new_twin(t));

        device_entry& e = devices_[d.device_id];
        e.identity.head = d;
        e.twin.head = tw;

        store::write_batch b;
        b.put_device(d, store::expect::absent());
        b.put_twin({d.device_id, {}}, tw, store::expect::any());

        auto w = std::make_shared<pending_write>();
        w->device_id = d.device_id;
        w->apply = [d, tw](device_entry& e) {
            e.identity.committed = d;
            e.twin.committed = tw;
        };
        w->finish = [d, done](result<void> r) {
            if (!r) return done(r.error());
            done(d);
        };
        submit(e, std::move(b), std::move(w), after);
    }

    void update_device(device_identity req, std::string if_match, handler<device_identity> done) {
        after_unlock after;
        std::unique_lock lock(mu_);
        device_entry* e = head_device(req.device_id);
        if (!e) return fail(after, done, error{errc::device_not_found, device_not_found_message(req.device_id)});
        const device_identity& cur = *e->identity.view();
        const std::string cur_etag = registry::etag_to_string(cur.etag);
        if (!if_match.empty() && !registry::if_match_matches(if_match, cur_etag))
            return fail(after, done,
                        error{errc::precondition_failed, "Precondition failed: the etag of device '" + cur.device_id +
                                                             "' is \"" + cur_etag + "\", If-Match was " +
                                                             if_match + "."});
        if (!req.generation_id.empty() && req.generation_id != cur.generation_id)
            return fail(after, done, error{errc::invalid_argument, "generationId of device '" + cur.device_id +
                                                                       "' cannot be changed."});
        if (req.device_scope && !req.device_scope->empty() && cur.device_scope && !cur.device_scope->empty() &&
            *req.device_scope != *cur.device_scope)
            return fail(after, done, error{errc::invalid_argument, "deviceScope of device '" + cur.device_id +
                                                                       "' cannot be changed."});

        device_identity d = std::move(req);
        d.device_id = cur.device_id;
        d.generation_id = cur.generation_id;
        d.etag = cur.etag + 1;
        keep_presence(d, cur);
        d.cloud_to_device_message_count = cur.cloud_to_device_message_count;
        d.status_updated_time = d.status != cur.status ? std::optional<time_point>(now()) : cur.status_updated_time;
        if (!d.device_scope || d.device_scope->empty()) d.device_scope = cur.device_scope;
        if (d.parent_scopes.empty()) d.parent_scopes = cur.parent_scopes;
        fill_keys(d.authentication, &cur.authentication, opts_.keep_keys_on_empty_update);

        std::vector<store::identity_key> revoked;
        if (cur.status == registry::device_status::enabled && d.status == registry::device_status::disabled) {
            revoked.push_back({d.device_id, {}});
            for (auto& [mid, m] : e->modules)
                if (m.identity.view()) revoked.push_back({d.device_id, mid});
        }
        const bool credentials_changed = !same_authentication(cur.authentication, d.authentication);
        const std::uint64_t base = cur.etag;
        e->identity.head = d;

        store::write_batch b;
        b.put_device(d, store::expect::revision(base));
        auto w = std::make_shared<pending_write>();
        w->device_id = d.device_id;
        w->apply = [d](device_entry& e) {
            device_identity v = d;
            if (e.identity.committed) keep_presence(v, *e.identity.committed);
            e.identity.committed = std::move(v);
        };
        w->finish = [this, d, done, revoked = std::move(revoked), credentials_changed](result<void> r) {
            if (!r) return done(r.error());
            notify_revoked(revoked);
            if (credentials_changed) notify_credentials_changed({d.device_id, {}});
            done(d);
        };
        submit(*e, std::move(b), std::move(w), after);
    }

    void delete_device(std::string device_id, std::string if_match, handler<void> done) {
        after_unlock after;
        std::unique_lock lock(mu_);
        device_entry* e = head_device(device_id);
        if (!e) return fail(after, done, error{errc::device_not_found, device_not_found_message(device_id)});
        const device_identity& cur = *e->identity.view();
        const std::string cur_etag = registry::etag_to_string(cur.etag);
        if (!if_match.empty() && !registry::if_match_matches(if_match, cur_etag))
            return fail(after, done,
                        error{errc::precondition_failed, "Precondition failed: the etag of device '" + device_id +
                                                             "' is \"" + cur_etag + "\", If-Match was " +
                                                             if_match + "."});
        std::vector<store::identity_key> revoked{{device_id, {}}};
        for (auto& [mid, m] : e->modules) {
            if (m.identity.view()) revoked.push_back({device_id, mid});
            m.identity.head = std::optional<module_identity>();
            m.twin.head = shared_twin();
        }
        const std::uint64_t base = cur.etag;
        e->identity.head = std::optional<device_identity>();
        e->twin.head = shared_twin();

        store::write_batch b;
        b.delete_device(device_id, store::expect::revision(base));
        auto w = std::make_shared<pending_write>();
        w->device_id = device_id;
        w->apply = [this, device_id](device_entry& e) {
            e.identity.committed.reset();
            e.twin.committed.reset();
            for (auto& [_, m] : e.modules) {
                m.identity.committed.reset();
                m.twin.committed.reset();
            }
            std::lock_guard sl(sessions_mu_);
            drop_sessions_of(device_id, {});
        };
        w->finish = [this, done, revoked = std::move(revoked)](result<void> r) {
            if (!r) return done(r.error());
            notify_revoked(revoked);
            done({});
        };
        submit(*e, std::move(b), std::move(w), after);
    }

    // The store cascades sessions with identities; mirror it. Call with sessions_mu_ held.
    void drop_sessions_of(const std::string& device_id, const std::string& module_id) {
        if (!module_id.empty()) {
            sessions_.erase(device_id + "/" + module_id);
            return;
        }
        sessions_.erase(device_id);
        const std::string prefix = device_id + "/";
        for (auto it = sessions_.lower_bound(prefix); it != sessions_.end() && it->first.rfind(prefix, 0) == 0;)
            it = sessions_.erase(it);
    }

    // ---- modules ----

    void create_module(module_identity req, handler<module_identity> done) {
        after_unlock after;
        std::unique_lock lock(mu_);
        if (auto v = registry::validate_id(req.device_id, "deviceId"); !v) return fail(after, done, v.error());
        if (auto v = registry::validate_id(req.module_id, "moduleId"); !v) return fail(after, done, v.error());
        device_entry* e = head_device(req.device_id);
        if (!e) return fail(after, done, error{errc::device_not_found, device_not_found_message(req.device_id)});
        if (head_module(*e, req.module_id))
            return fail(after, done, error{errc::module_already_exists, "Module '" + req.module_id +
                                                                            "' already exists on device '" +
                                                                            req.device_id + "'."});
        if (head_module_count(*e) >= opts_.max_modules_per_device)
            return fail(after, done, error{errc::too_many_modules,
                                           "Device '" + req.device_id + "' already has the maximum of " +
                                               std::to_string(opts_.max_modules_per_device) + " modules."});

        module_identity m = std::move(req);
        m.generation_id = registry::new_generation_id();
        m.etag = 0;
        m.connection_state = registry::connection_state::disconnected;
        m.connection_state_updated_time.reset();
        m.last_activity_time.reset();
        m.cloud_to_device_message_count = 0;
        fill_keys(m.authentication, nullptr, false);
        auto tw = std::make_shared<const twin_document>(twin::new_twin(now()));

        module_entry& me = e->modules[m.module_id];
        me.identity.head = m;
        me.twin.head = tw;

        store::write_batch b;
        b.put_module(m, store::expect::absent());
        b.put_twin({m.device_id, m.module_id}, tw, store::expect::any());
        auto w = std::make_shared<pending_write>();
        w->device_id = m.device_id;
        w->apply = [m, tw](device_entry& e) {
            module_entry& me = e.modules[m.module_id];
            me.identity.committed = m;
            me.twin.committed = tw;
        };
        w->finish = [m, done](result<void> r) {
            if (!r) return done(r.error());
            done(m);
        };
        submit(*e, std::move(b), std::move(w), after);
    }

    void update_module(module_identity req, std::string if_match, handler<module_identity> done) {
        after_unlock after;
        std::unique_lock lock(mu_);
        device_entry* e = head_device(req.device_id);
        if (!e) return fail(after, done, error{errc::device_not_found, device_not_found_message(req.device_id)});
        module_entry* me = head_module(*e, req.module_id);
        if (!me)
            return fail(after, done,
                        error{errc::module_not_found, module_not_found_message(req.device_id, req.module_id)});
        const module_identity& cur = *me->identity.view();
        const std::string cur_etag = registry::etag_to_string(cur.etag);
        if (!if_match.empty() && !registry::if_match_matches(if_match, cur_etag))
            return fail(after, done,
                        error{errc::precondition_failed, "Precondition failed: the etag of module '" + cur.module_id +
                                                             "' is \"" + cur_etag + "\", If-Match was " +
                                                             if_match + "."});
        if (!req.generation_id.empty() && req.generation_id != cur.generation_id)
            return fail(after, done, error{errc::invalid_argument, "generationId of module '" + cur.module_id +
                                                                       "' cannot be changed."});

        module_identity m = std::move(req);
        m.device_id = cur.device_id;
        m.module_id = cur.module_id;
        m.generation_id = cur.generation_id;
        m.etag = cur.etag + 1;
        keep_presence(m, cur);
        m.cloud_to_device_message_count = cur.cloud_to_device_message_count;
        fill_keys(m.authentication, &cur.authentication, opts_.keep_keys_on_empty_update);
        const bool credentials_changed = !same_authentication(cur.authentication, m.authentication);
        const std::uint64_t base = cur.etag;
        me->identity.head = m;

        store::write_batch b;
        b.put_module(m, store::expect::revision(base));
        auto w = std::make_shared<pending_write>();
        w->device_id = m.device_id;
        w->apply = [m](device_entry& e) {
            module_entry& me = e.modules[m.module_id];
            module_identity v = m;
            if (me.identity.committed) keep_presence(v, *me.identity.committed);
            me.identity.committed = std::move(v);
        };
        w->finish = [this, m, done, credentials_changed](result<void> r) {
            if (!r) return done(r.error());
            if (credentials_changed) notify_credentials_changed({m.device_id, m.module_id});
            done(m);
        };
        submit(*e, std::move(b), std::move(w), after);
    }

    void delete_module(std::string device_id, std::string module_id, std::string if_match, handler<void> done) {
        after_unlock after;
        std::unique_lock lock(mu_);
        device_entry* e = head_device(device_id);
        if (!e) return fail(after, done, error{errc::device_not_found, device_not_found_message(device_id)});
        module_entry* me = head_module(*e, module_id);
        if (!me) return fail(after, done, error{errc::module_not_found, module_not_found_message(device_id, module_id)});
        const module_identity& cur = *me->identity.view();
        const std::string cur_etag = registry::etag_to_string(cur.etag);
        if (!if_match.empty() && !registry::if_match_matches(if_match, cur_etag))
            return fail(after, done,
                        error{errc::precondition_failed, "Precondition failed: the etag of module '" + module_id +
                                                             "' is \"" + cur_etag + "\", If-Match was " +
                                                             if_match + "."});
        const std::uint64_t base = cur.etag;
        me->identity.head = std::optional<module_identity>();
        me->twin.head = shared_twin();

        store::write_batch b;
        b.delete_module(device_id, module_id, store::expect::revision(base));
        auto w = std::make_shared<pending_write>();
        w->device_id = device_id;
        w->apply = [this, device_id, module_id](device_entry& e) {
            module_entry& me = e.modules[module_id];
            me.identity.committed.reset();
            me.twin.committed.reset();
            std::lock_guard sl(sessions_mu_);
            drop_sessions_of(device_id, module_id);
        };
        w->finish = [this, done, key = store::identity_key{device_id, module_id}](result<void> r) {
            if (!r) return done(r.error());
            notify_revoked({key});
            done({});
        };
        submit(*e, std::move(b), std::move(w), after);
    }

    // ---- twins ----

    // The twin slot a write to `id` builds on, or the error for a missing identity.
    result<twin_slot*> head_twin(const store::identity_key& id, device_entry*& dev) {
        dev = head_device(id.device_id);
        if (!dev) return error{errc::device_not_found, device_not_found_message(id.device_id)};
        if (!id.is_module()) return &dev->twin;
        module_entry* m = head_module(*dev, id.module_id);
        if (!m) return error{errc::module_not_found, module_not_found_message(id.device_id, id.module_id)};
        return &m->twin;
    }

    static twin_slot& twin_slot_of(device_entry& e, const store::identity_key& id) {
        return id.is_module() ? e.modules[id.module_id].twin : e.twin;
    }

    // One twin write: `mutate` changes a copy of the head document (or fails, leaving nothing
    // changed); on success the committed document is published, the desired change (if any)
    // notified, and `done` gets `make_result(new_doc)`.
    template <class T>
    void write_twin(store::identity_key id, std::string if_match,
                    const std::function<result<std::optional<twin::desired_change>>(twin_document&)>& mutate,
                    std::function<T(const twin_document&, const device_entry&)> make_result, handler<T> done) {
        after_unlock after;
        std::unique_lock lock(mu_);
        device_entry* e = nullptr;
        auto ts = head_twin(id, e);
        if (!ts) return fail(after, done, ts.error());
        const twin_document& cur = *(*ts)->view();
        if (!if_match.empty() && !registry::if_match_matches(if_match, twin::etag_to_string(cur.etag)))
            return fail(after, done,
                        error{errc::precondition_failed, "Precondition failed: the etag of the twin of '" +
                                                             describe_key(id) + "' is \"" +
                                                             twin::etag_to_string(cur.etag) + "\", If-Match was " +
                                                             if_match + "."});
        // The write's one copy: `mutate` changes it, then the head, the store batch and (once
        // durable) `committed` share it.
        auto written = std::make_shared<twin_document>(cur);
        auto changed = mutate(*written);
        if (!changed) return fail(after, done, changed.error());
        const auto base = static_cast<std::uint64_t>(cur.version);
        (*ts)->head = written;

        store::write_batch b;
        b.put_twin(id, written, store::expect::revision(base));
        auto w = std::make_shared<pending_write>();
        w->device_id = id.device_id;
        auto result_value = std::make_shared<std::optional<T>>();
        w->apply = [id, written, make_result = std::move(make_result), result_value](device_entry& e) {
            auto& s = twin_slot_of(e, id);
            // modelId is presence (set at connect, kept in memory): the committed value wins. The
            // store has serialized `written` by now, and readers never saw it.
            if (s.committed) written->model_id = s.committed->model_id;
            s.committed = written;
            *result_value = make_result(*s.committed, e);  // the identity mirrors as of commit
        };
        w->finish = [this, id, done = std::move(done), result_value, change = std::move(*changed)](result<void> r) {
            if (!r) return done(r.error());
            if (change) notify_desired(id, *change);
            done(std::move(**result_value));
        };
        submit(*e, std::move(b), std::move(w), after);
    }

    boost::json::object twin_json_of(const device_entry& e, const store::identity_key& id) const {
        if (!id.is_module()) return service_twin_json(*e.identity.committed, *e.twin.committed);
        const module_entry& m = e.modules.find(id.module_id)->second;
        return service_twin_json(*m.identity.committed, *m.twin.committed);
    }

    // Readers: the committed twin of `id`.
    result<const twin_document*> committed_twin(const store::identity_key& id, const device_entry*& dev) const {
        dev = committed_device(id.device_id);
        if (!dev) return error{errc::device_not_found, device_not_found_message(id.device_id)};
        if (!id.is_module()) return &*dev->twin.committed;
        const module_entry* m = committed_module(*dev, id.module_id);
        if (!m) return error{errc::module_not_found, module_not_found_message(id.device_id, id.module_id)};
        return &*m->twin.committed;
    }

    // ---- presence ----

    // Applies `f` to the identity of `id` (committed and head copies); false when it is unknown.
    template <class F>
    bool with_presence(const store::identity_key& id, F&& f) {
        std::unique_lock lock(mu_);
        auto it = devices_.find(id.device_id);
        if (it == devices_.end()) return false;
        device_entry& e = it->second;
        if (!id.is_module()) {
            if (e.identity.committed) f(*e.identity.committed);
            if (e.identity.head && *e.identity.head) f(**e.identity.head);
            if (twin_listener_) twin_listener_->on_twin_changed(id);
            return true;
        }
        auto mit = e.modules.find(id.module_id);
        if (mit == e.modules.end()) return false;
        if (mit->second.identity.committed) f(*mit->second.identity.committed);
        if (mit->second.identity.head && *mit->second.identity.head) f(**mit->second.identity.head);
        if (twin_listener_) twin_listener_->on_twin_changed(id);
        return true;
    }

    void load(store::snapshot s) {
        for (auto& p : s.policies) policies_[p.key_name] = std::move(p);
        for (auto& d : s.devices) {
            d.identity.connection_state = registry::connection_state::disconnected;
            device_entry& e = devices_[d.identity.device_id];
            e.identity.committed = std::move(d.identity);
            e.twin.committed = std::make_shared<const twin_document>(std::move(d.twin));
        }
        for (auto& m : s.modules) {
            auto it = devices_.find(m.identity.device_id);
            if (it == devices_.end()) {
                log::warn("service.load_orphan_module",
                          {{"device", m.identity.device_id}, {"module", m.identity.module_id}});
                continue;
            }
            m.identity.connection_state = registry::connection_state::disconnected;
            module_entry& me = it->second.modules[m.identity.module_id];
            me.identity.committed = std::move(m.identity);
            me.twin.committed = std::make_shared<const twin_document>(std::move(m.twin));
        }
        for (auto& x : s.sessions) sessions_[x.client_id] = std::move(x);
    }
};

// ---------------------------------------------------------------------------------------------

hub_service::hub_service(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
hub_service::~hub_service() { impl_->wait_outstanding(); }

result<std::unique_ptr<hub_service>> hub_service::open(store::store& s, hub_options opts) {
    auto snap = s.load();
    if (!snap) return snap.error();
    if (snap->policies.empty()) {
        auto defaults = auth::default_policies();
        store::write_batch b;
        for (auto& p : defaults) b.put_policy(p);
        if (auto r = s.commit_sync(std::move(b)); !r) return r.error();
        snap->policies = std::move(defaults);
        log::info("service.default_policies_created", {{"count", snap->policies.size()}});
    }
    // The built-in endpoint's shape, recorded when the hub is created.
    std::uint32_t partitions = opts.event_partitions ? opts.event_partitions : store::default_event_partitions;
    std::int64_t created_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now().time_since_epoch()).count();
    if (partitions < store::min_event_partitions || partitions > store::max_event_partitions)
        return error{errc::invalid_argument, "The number of device-to-cloud partitions must be between " +
                                                 std::to_string(store::min_event_partitions) + " and " +
                                                 std::to_string(store::max_event_partitions) + " (got " + std::to_string(partitions) + ")."};
    auto stored = std::find_if(snap->settings.begin(), snap->settings.end(), [](auto& kv) { return kv.first == "eventHub"; });
    if (stored != snap->settings.end()) {
        boost::system::error_code ec;
        auto v = boost::json::parse(stored->second, ec);
        const auto* o = ec ? nullptr : v.if_object();
        const auto* n = o ? o->if_contains("partitions") : nullptr;
        const auto* c = o ? o->if_contains("createdTimeNs") : nullptr;
        if (!n || !n->is_int64() || n->as_int64() < store::min_event_partitions || n->as_int64() > store::max_event_partitions)
            return error{errc::corrupt_data, "The stored setting 'eventHub' is malformed."};
        const auto recorded = static_cast<std::uint32_t>(n->as_int64());
        if (opts.event_partitions && opts.event_partitions != recorded)
            return error{errc::invalid_argument, "This hub was created with " + std::to_string(recorded) +
                                                     " device-to-cloud partitions; the count is fixed at creation (asked for " +
                                                     std::to_string(opts.event_partitions) + ")."};
        partitions = recorded;
        if (c && c->is_int64()) created_ns = c->as_int64();
    } else {
        boost::json::object o{{"partitions", partitions}, {"createdTimeNs", created_ns}};
        store::write_batch b;
        b.put_setting("eventHub", boost::json::serialize(o));
        if (auto r = s.commit_sync(std::move(b)); !r) return r.error();
        snap->settings.emplace_back("eventHub", boost::json::serialize(o));
    }
    auto p = std::make_unique<impl>(s, opts);
    p->event_partitions_ = partitions;
    p->event_hub_created_ns_ = created_ns;
    for (auto& [k, v] : snap->settings) p->settings_[k] = v;
    p->load(std::move(*snap));
    log::info("service.opened", {{"devices", p->devices_.size()}, {"policies", p->policies_.size()}});
    return std::unique_ptr<hub_service>(new hub_service(std::move(p)));
}

void hub_service::add_observer(change_observer* o) { impl_->observers_.push_back(o); }
void hub_service::set_event_router(event_router* r) { impl_->event_router_ = r; }
void hub_service::set_twin_change_listener(twin_change_listener* l) { impl_->twin_listener_ = l; }

std::vector<auth::shared_access_policy> hub_service::policies() const {
    std::shared_lock lock(impl_->mu_);
    std::vector<auth::shared_access_policy> out;
    for (auto& [_, p] : impl_->policies_) out.push_back(p);
    return out;
}

void hub_service::put_policy(auth::shared_access_policy p, handler<auth::shared_access_policy> done) {
    if (p.primary_key.empty()) p.primary_key = generate_key();
    if (p.secondary_key.empty()) p.secondary_key = generate_key();
    auto change = [p](const policy_map& cur) -> result<policy_map> {
        policy_map next = cur;
        next[p.key_name] = p;
        std::vector<auth::shared_access_policy> all;
        for (auto& [_, q] : next) all.push_back(q);
        if (auto v = auth::validate_policies(all); !v) return v.error();
        return next;
    };
    impl_->write_policies({std::move(change), [this, p, done = std::move(done)](result<void> r) {
                               if (!r) return done(r.error());
                               impl_->notify_policies_changed();
                               done(p);
                           }});
}

void hub_service::delete_policy(std::string key_name, handler<void> done) {
    auto change = [key_name](const policy_map& cur) -> result<policy_map> {
        if (!cur.contains(key_name))
            return error{errc::not_found, "Shared access policy '" + key_name + "' not found."};
        if (cur.size() == 1)
            return error{errc::invalid_argument,
                         "Shared access policy '" + key_name + "' is the hub's last policy; it cannot be removed."};
        policy_map next = cur;
        next.erase(key_name);
        return next;
    };
    impl_->write_policies({std::move(change), [this, done = std::move(done)](result<void> r) {
                               if (!r) return done(r.error());
                               impl_->notify_policies_changed();
                               done({});
                           }});
}

// ---- devices ----

namespace {

// IoT Hub's twin change event body: {"version", "tags"?, "properties": {"desired"|"reported": {.., "$version"}}}.
boost::json::object twin_change_body(const boost::json::object& twin, const boost::json::value& patch, bool reported) {
    boost::json::object body;
    if (auto* v = twin.if_contains("version")) body["version"] = *v;
    const auto* p = patch.if_object();
    if (!p) return body;
    if (reported) {
        boost::json::object rep = *p;
        if (auto* props = twin.if_contains("properties"); props && props->is_object())
            if (auto* r = props->as_object().if_contains("reported"); r && r->is_object())
                if (auto* v = r->as_object().if_contains("$version")) rep["$version"] = *v;
        body["properties"] = boost::json::object{{"reported", std::move(rep)}};
        return body;
    }
    if (auto* tags = p->if_contains("tags")) body["tags"] = *tags;
    if (auto* props = p->if_contains("properties"); props && props->is_object())
        if (auto* d = props->as_object().if_contains("desired"); d && d->is_object()) {
            boost::json::object des = d->as_object();
            if (auto* tp = twin.if_contains("properties"); tp && tp->is_object())
                if (auto* td = tp->as_object().if_contains("desired"); td && td->is_object())
                    if (auto* v = td->as_object().if_contains("$version")) des["$version"] = *v;
            body["properties"] = boost::json::object{{"desired", std::move(des)}};
        }
    return body;
}

}  // namespace

void hub_service::create_device(registry::device_identity req, handler<registry::device_identity> done) {
    if (auto* r = impl_->event_router_; r && r->wants_lifecycle()) {
        done = [this, r, done = std::move(done)](result<registry::device_identity> d) {
            if (d) {
                store::identity_key id{d->device_id, {}};
                if (auto t = get_twin(id)) r->on_lifecycle(id, "createDeviceIdentity", std::move(*t));
            }
            done(std::move(d));
        };
    }
    impl_->create_device(std::move(req), std::move(done));
}

void hub_service::update_device(registry::device_identity req, std::string if_match,
                                handler<registry::device_identity> done) {
    impl_->update_device(std::move(req), std::move(if_match), std::move(done));
}

result<registry::device_identity> hub_service::get_device(std::string_view device_id) const {
    std::shared_lock lock(impl_->mu_);
    const device_entry* e = impl_->committed_device(device_id);
    if (!e) return error{errc::device_not_found, device_not_found_message(device_id)};
    return *e->identity.committed;
}

std::vector<registry::device_identity> hub_service::list_devices(std::size_t top) const {
    const std::size_t limit = top == 0 ? impl_->opts_.max_list : std::min(top, impl_->opts_.max_list);
    std::shared_lock lock(impl_->mu_);
    std::vector<registry::device_identity> out;
    for (auto& [_, e] : impl_->devices_) {
        if (out.size() >= limit) break;
        if (e.identity.committed) out.push_back(*e.identity.committed);
    }
    return out;
}

void hub_service::delete_device(std::string device_id, std::string if_match, handler<void> done) {
    if (auto* r = impl_->event_router_; r && r->wants_lifecycle()) {
        store::identity_key id{device_id, {}};
        if (auto t = get_twin(id)) {
            done = [r, id, twin = std::move(*t), done = std::move(done)](result<void> res) mutable {
                if (res) r->on_lifecycle(id, "deleteDeviceIdentity", std::move(twin));
                done(std::move(res));
            };
        }
    }
    impl_->delete_device(std::move(device_id), std::move(if_match), std::move(done));
}

registry_statistics hub_service::statistics() const {
    std::shared_lock lock(impl_->mu_);
    registry_statistics s;
    for (auto& [_, e] : impl_->devices_) {
        if (!e.identity.committed) continue;
        ++s.total_device_count;
        if (e.identity.committed->status == registry::device_status::enabled)
            ++s.enabled_device_count;
        else
            ++s.disabled_device_count;
    }
    return s;
}

std::int64_t hub_service::connected_device_count() const {
    std::shared_lock lock(impl_->mu_);
    std::int64_t n = 0;
    for (auto& [_, e] : impl_->devices_)
        if (e.identity.committed && e.identity.committed->connection_state == registry::connection_state::connected)
            ++n;
    return n;
}

// ---- modules ----

void hub_service::create_module(registry::module_identity req, handler<registry::module_identity> done) {
    if (auto* r = impl_->event_router_; r && r->wants_lifecycle()) {
        done = [this, r, done = std::move(done)](result<registry::module_identity> m) {
            if (m) {
                store::identity_key id{m->device_id, m->module_id};
                if (auto t = get_twin(id)) r->on_lifecycle(id, "createModuleIdentity", std::move(*t));
            }
            done(std::move(m));
        };
    }
    impl_->create_module(std::move(req), std::move(done));
}

void hub_service::update_module(registry::module_identity req, std::string if_match,
                                handler<registry::module_identity> done) {
    impl_->update_module(std::move(req), std::move(if_match), std::move(done));
}

result<registry::module_identity> hub_service::get_module(std::string_view device_id,
                                                          std::string_view module_id) const {
    std::shared_lock lock(impl_->mu_);
    const device_entry* e = impl_->committed_device(device_id);
    if (!e) return error{errc::device_not_found, device_not_found_message(device_id)};
    const module_entry* m = impl_->committed_module(*e, module_id);
    if (!m) return error{errc::module_not_found, module_not_found_message(device_id, module_id)};
    return *m->identity.committed;
}

result<std::vector<registry::module_identity>> hub_service::list_modules(std::string_view device_id) const {
    std::shared_lock lock(impl_->mu_);
    const device_entry* e = impl_->committed_device(device_id);
    if (!e) return error{errc::device_not_found, device_not_found_message(device_id)};
    std::vector<registry::module_identity> out;
    for (auto& [_, m] : e->modules)
        if (m.identity.committed) out.push_back(*m.identity.committed);
    return out;
}

void hub_service::delete_module(std::string device_id, std::string module_id, std::string if_match,
                                handler<void> done) {
    if (auto* r = impl_->event_router_; r && r->wants_lifecycle()) {
        store::identity_key id{device_id, module_id};
        if (auto t = get_twin(id)) {
            done = [r, id, twin = std::move(*t), done = std::move(done)](result<void> res) mutable {
                if (res) r->on_lifecycle(id, "deleteModuleIdentity", std::move(twin));
                done(std::move(res));
            };
        }
    }
    impl_->delete_module(std::move(device_id), std::move(module_id), std::move(if_match), std::move(done));
}

// ---- bulk ----

void hub_service::bulk(std::vector<bulk_entry> entries, handler<bulk_result> done) {
    if (entries.size() > impl_->opts_.max_bulk_entries)
        return done(error{errc::invalid_argument, "A bulk request may hold at most " +
                                                      std::to_string(impl_->opts_.max_bulk_entries) +
                                                      " devices; it held " + std::to_string(entries.size()) + "."});
    {
        std::set<std::string_view> seen;
        for (auto& en : entries)
            if (!seen.insert(en.device.device_id).second)
                return done(error{errc::device_defined_multiple_times,
                                  "Device '" + en.device.device_id + "' is defined multiple times in the request."});
    }
    if (entries.empty()) return done(bulk_result{});

    struct state {
        std::vector<std::optional<bulk_error>> errors;
        std::atomic<std::size_t> remaining;
        handler<bulk_result> done;
    };
    auto st = std::make_shared<state>();
    st->errors.resize(entries.size());
    st->remaining = entries.size();
    st->done = std::move(done);

    auto finish_one = [st](std::size_t i, const bulk_entry& en, const std::optional<error>& err) {
        if (err) st->errors[i] = bulk_error{en.device.device_id, err->code, err->message, en.import_mode};
        if (st->remaining.fetch_sub(1) != 1) return;
        bulk_result r;
        for (auto& e : st->errors)
            if (e) r.errors.push_back(std::move(*e));
        r.is_successful = r.errors.empty();
        st->done(std::move(r));
    };

    for (std::size_t i = 0; i < entries.size(); ++i) {
        // Each entry is its own write; the handlers only record the outcome.
        auto en = std::make_shared<bulk_entry>(std::move(entries[i]));
        auto on_identity = [finish_one, i, en](result<registry::device_identity> r) {
            finish_one(i, *en, r ? std::nullopt : std::optional<error>(r.error()));
        };
        auto on_void = [finish_one, i, en](result<void> r) {
            finish_one(i, *en, r ? std::nullopt : std::optional<error>(r.error()));
        };
        const std::string& mode = en->import_mode;
        const bool needs_etag = mode == "updateifmatchetag" || mode == "deleteifmatchetag";
        if (needs_etag && en->etag.empty()) {
            finish_one(i, *en, error{errc::invalid_argument, "importMode '" + mode + "' of device '" +
                                                                 en->device.device_id + "' requires an eTag."});
            continue;
        }
        if (mode == "create") {
            create_device(en->device, on_identity);
        } else if (mode == "createorupdate") {
            if (get_device(en->device.device_id))
                update_device(en->device, "*", on_identity);
            else
                create_device(en->device, on_identity);
        } else if (mode == "update") {
            update_device(en->device, "*", on_identity);
        } else if (mode == "updateifmatchetag") {
            update_device(en->device, quote_etag(en->etag), on_identity);
        } else if (mode == "delete") {
            delete_device(en->device.device_id, "*", on_void);
        } else if (mode == "deleteifmatchetag") {
            delete_device(en->device.device_id, quote_etag(en->etag), on_void);
        } else {
            finish_one(i, *en, error{errc::invalid_argument, "importMode '" + mode + "' of device '" +
                                                                 en->device.device_id + "' is not supported."});
        }
    }
}

// ---- twins ----

result<boost::json::object> hub_service::get_twin(const store::identity_key& id) const {
    std::shared_lock lock(impl_->mu_);
    const device_entry* e = nullptr;
    auto t = impl_->committed_twin(id, e);
    if (!t) return t.error();
    return impl_->twin_json_of(*e, id);
}

void hub_service::patch_twin(store::identity_key id, boost::json::value body, std::string if_match,
                             handler<boost::json::object> done) {
    if (auto* r = impl_->event_router_; r && r->wants_twin_changes()) {
        done = [r, id, patch = body, done = std::move(done)](result<boost::json::object> t) {
            if (t) r->on_twin_change(id, "updateTwin", twin_change_body(*t, patch, false));
            done(std::move(t));
        };
    }
    auto now_t = now();
    impl_->write_twin<boost::json::object>(
        id, std::move(if_match),
        [&body, now_t](twin::twin_document& doc) -> result<std::optional<twin::desired_change>> {
            auto r = twin::apply_service_patch(doc, body, now_t);
            if (!r) return r.error();
            return std::move(r->desired);
        },
        [this, id](const twin::twin_document&, const device_entry& e) { return impl_->twin_json_of(e, id); },
        std::move(done));
}

void hub_service::replace_twin(store::identity_key id, boost::json::value body, std::string if_match,
                               handler<boost::json::object> done) {
    if (auto* r = impl_->event_router_; r && r->wants_twin_changes()) {
        done = [r, id, patch = body, done = std::move(done)](result<boost::json::object> t) {
            if (t) r->on_twin_change(id, "replaceTwin", twin_change_body(*t, patch, false));
            done(std::move(t));
        };
    }
    auto now_t = now();
    impl_->write_twin<boost::json::object>(
        id, std::move(if_match),
        [&body, now_t](twin::twin_document& doc) -> result<std::optional<twin::desired_change>> {
            auto r = twin::apply_service_replace(doc, body, now_t);
            if (!r) return r.error();
            return std::move(r->desired);
        },
        [this, id](const twin::twin_document&, const device_entry& e) { return impl_->twin_json_of(e, id); },
        std::move(done));
}

result<boost::json::object> hub_service::get_device_twin_view(const store::identity_key& id) const {
    std::shared_lock lock(impl_->mu_);
    const device_entry* e = nullptr;
    auto t = impl_->committed_twin(id, e);
    if (!t) return t.error();
    return twin::device_view(**t);
}

void hub_service::patch_reported(store::identity_key id, boost::json::value patch, handler<std::int64_t> done) {
    if (auto* r = impl_->event_router_; r && r->wants_twin_changes()) {
        done = [this, r, id, patch, done = std::move(done)](result<std::int64_t> v) {
            if (v)
                if (auto t = get_twin(id)) r->on_twin_change(id, "updateTwin", twin_change_body(*t, patch, true));
            done(std::move(v));
        };
    }
    auto now_t = now();
    impl_->write_twin<std::int64_t>(
        std::move(id), {},
        [&patch, now_t](twin::twin_document& doc) -> result<std::optional<twin::desired_change>> {
            // `doc` is write_twin's scratch copy, thrown away on failure: merge in place.
            auto r = twin::apply_reported_patch_in_place(doc, patch, now_t);
            if (!r) return r.error();
            return std::optional<twin::desired_change>();
        },
        [](const twin::twin_document& doc, const device_entry&) { return doc.reported_version; }, std::move(done));
}

void hub_service::for_each_twin(bool modules, const std::function<bool(const boost::json::object&)>& visit) const {
    std::shared_lock lock(impl_->mu_);
    for (auto& [_, e] : impl_->devices_) {
        if (!e.identity.committed) continue;
        if (!modules) {
            if (!visit(service_twin_json(*e.identity.committed, *e.twin.committed))) return;
            continue;
        }
        for (auto& [__, m] : e.modules) {
            if (!m.identity.committed) continue;
            if (!visit(service_twin_json(*m.identity.committed, *m.twin.committed))) return;
        }
    }
}

// ---- presence and credentials ----

result<identity_credentials> hub_service::credentials(const store::identity_key& id) const {
    std::shared_lock lock(impl_->mu_);
    const device_entry* e = impl_->committed_device(id.device_id);
    if (!e) return error{errc::device_not_found, device_not_found_message(id.device_id)};
    const bool enabled = e->identity.committed->status == registry::device_status::enabled;
    if (!id.is_module()) return identity_credentials{e->identity.committed->authentication, enabled};
    const module_entry* m = impl_->committed_module(*e, id.module_id);
    if (!m) return error{errc::module_not_found, module_not_found_message(id.device_id, id.module_id)};
    return identity_credentials{m->identity.committed->authentication, enabled};
}

void hub_service::set_connection_state(const store::identity_key& id, bool connected) {
    const time_point t = now();
    const auto state = connected ? registry::connection_state::connected : registry::connection_state::disconnected;
    impl_->with_presence(id, [&](auto& identity) {
        identity.connection_state = state;
        identity.connection_state_updated_time = t;
        if (connected) identity.last_activity_time = t;
    });
}

void hub_service::touch_activity(const store::identity_key& id) {
    // Called for every message: skip the exclusive lock when the recorded time is recent enough
    // (the real hub's lastActivityTime lags by minutes).
    constexpr auto resolution = std::chrono::seconds(1);
    const time_point t = now();
    {
        std::shared_lock lock(impl_->mu_);
        const device_entry* e = impl_->committed_device(id.device_id);
        if (!e) return;
        std::optional<time_point> last = e->identity.committed->last_activity_time;
        if (id.is_module()) {
            const module_entry* m = impl_->committed_module(*e, id.module_id);
            if (!m) return;
            last = m->identity.committed->last_activity_time;
        }
        if (last && t - *last < resolution) return;
    }
    impl_->with_presence(id, [&](auto& identity) { identity.last_activity_time = t; });
}

void hub_service::set_model_id(const store::identity_key& id, std::string model_id) {
    std::unique_lock lock(impl_->mu_);
    auto it = impl_->devices_.find(id.device_id);
    if (it == impl_->devices_.end()) return;
    twin_slot* s = &it->second.twin;
    if (id.is_module()) {
        auto mit = it->second.modules.find(id.module_id);
        if (mit == it->second.modules.end()) return;
        s = &mit->second.twin;
    }
    // The documents are shared with store batches in flight: replace them, never change them.
    auto with_model = [&](const shared_twin& d) {
        auto copy = std::make_shared<twin::twin_document>(*d);
        copy->model_id = model_id;
        return shared_twin(std::move(copy));
    };
    if (s->committed && s->committed->model_id != model_id) s->committed = with_model(s->committed);
    if (s->head && *s->head && (*s->head)->model_id != model_id) *s->head = with_model(*s->head);
    if (impl_->twin_listener_) impl_->twin_listener_->on_twin_changed(id);
}

// ---- MQTT sessions ----

std::optional<store::session_record> hub_service::get_session(std::string_view client_id) const {
    std::lock_guard lock(impl_->sessions_mu_);
    auto it = impl_->sessions_.find(client_id);
    if (it == impl_->sessions_.end()) return std::nullopt;
    return it->second;
}

void hub_service::put_session(store::session_record s, handler<void> done) {
    store::write_batch b;
    b.put_session(s);
    impl_->commit_plain(std::move(b), [this, s = std::move(s), done = std::move(done)](result<void> r) mutable {
        if (r) {
            std::lock_guard lock(impl_->sessions_mu_);
            impl_->sessions_[s.client_id] = std::move(s);
        }
        done(r);
    });
}

void hub_service::delete_session(std::string client_id, handler<void> done) {
    store::write_batch b;
    b.delete_session(client_id);
    impl_->commit_plain(std::move(b), [this, client_id, done = std::move(done)](result<void> r) {
        if (r) {
            std::lock_guard lock(impl_->sessions_mu_);
            impl_->sessions_.erase(client_id);
        }
        done(r);
    });
}

// ---- telemetry ----

std::optional<std::string> hub_service::setting(std::string_view key) const {
    std::lock_guard lock(impl_->settings_mu_);
    auto it = impl_->settings_.find(key);
    if (it == impl_->settings_.end()) return std::nullopt;
    return it->second;
}

std::vector<std::pair<std::string, std::string>> hub_service::settings_with_prefix(std::string_view prefix) const {
    std::lock_guard lock(impl_->settings_mu_);
    std::vector<std::pair<std::string, std::string>> out;
    for (auto it = impl_->settings_.lower_bound(prefix); it != impl_->settings_.end() && it->first.starts_with(prefix); ++it)
        out.emplace_back(it->first, it->second);
    return out;
}

void hub_service::put_setting(std::string key, std::string doc, handler<void> done) {
    store::write_batch b;
    if (doc.empty()) b.delete_setting(key);
    else b.put_setting(key, doc);
    impl_->commit_plain(std::move(b), [this, key = std::move(key), doc = std::move(doc), done = std::move(done)](result<void> r) mutable {
        if (r) {
            std::lock_guard lock(impl_->settings_mu_);
            if (doc.empty()) impl_->settings_.erase(key);
            else impl_->settings_.insert_or_assign(std::move(key), std::move(doc));
        }
        done(std::move(r));
    });
}

std::uint32_t hub_service::event_partition_count() const noexcept { return impl_->event_partitions_; }
std::int64_t hub_service::event_hub_created_ns() const noexcept { return impl_->event_hub_created_ns_; }

void hub_service::append_event(store::event_record e, handler<void> done) {
    std::vector<store::event_record> one;
    one.push_back(std::move(e));
    append_events(std::move(one), std::move(done));
}

void hub_service::append_events(std::vector<store::event_record> events, handler<void> done) {
    const auto stamp = std::chrono::duration_cast<std::chrono::nanoseconds>(now().time_since_epoch()).count();
    for (auto& e : events) {
        if (e.enqueued_time_ns == 0) e.enqueued_time_ns = stamp;  // the hub's enqueue time, unless the head stamped it at arrival
        e.partition = store::partition_of(e.source, impl_->event_partitions_);
    }
    if (impl_->event_router_) events = impl_->event_router_->route_telemetry(std::move(events));
    append_routed_events(std::move(events), std::move(done));
}

void hub_service::append_routed_events(std::vector<store::event_record> events, handler<void> done) {
    if (events.empty()) return done(result<void>{});  // no route wanted it: acknowledged, as on IoT Hub
    std::vector<std::uint32_t> touched;
    store::write_batch b;
    for (auto& e : events) {
        if (std::find(touched.begin(), touched.end(), e.partition) == touched.end()) touched.push_back(e.partition);
        b.append_event(std::move(e));
    }
    impl_->commit_plain(std::move(b), [this, touched = std::move(touched), done = std::move(done)](result<void> r) {
        const bool ok = static_cast<bool>(r);
        done(std::move(r));
        if (!ok) return;
        for (auto p : touched) impl_->notify_events(p);
    });
}

void hub_service::trim_events(const std::vector<std::uint32_t>& streams, std::int64_t before_ns, std::uint32_t max_rows,
                              handler<void> done) {
    store::write_batch b;
    for (auto p : streams) b.trim_events(p, before_ns, max_rows);
    impl_->commit_plain(std::move(b), std::move(done));
}

result<std::vector<store::event_record>> hub_service::read_events(std::uint32_t partition, std::uint64_t from,
                                                                  std::size_t max_count) const {
    return impl_->store_.read_events(partition, from, max_count);
}

result<store::store::partition_info> hub_service::event_partition_info(std::uint32_t partition) const {
    return impl_->store_.event_partition_info(partition);
}

}  // namespace twinhub::service
