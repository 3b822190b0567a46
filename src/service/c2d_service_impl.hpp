// c2d_service's state and the machinery its members share (c2d_service.cpp: messages,
// c2d_feedback.cpp: the feedback queue). Private to the service.
//
// Layout: one mutex guards every queue, the lock table and the feedback queue. Store batches are
// built under it and committed after it is released (a store may complete inline), and so are the
// notifications. A message enters its queue in memory only once its enqueue is durable, so it is
// never delivered before that; a feedback record likewise enters the feedback queue after its
// settlement batch is durable.
#pragma once

#include "service/c2d_service.hpp"

#include "common/encoding.hpp"
#include "common/log.hpp"
#include "store/cluster_link.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace twinhub::service {
namespace c2d_detail {

inline std::string new_lock_token() {
    // A random (version 4) UUID in its 8-4-4-4-12 form.
    std::string b = random_bytes(16);
    b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[(static_cast<unsigned char>(b[i]) >> 4) & 0xf];
        out += hex[static_cast<unsigned char>(b[i]) & 0xf];
    }
    return out;
}

inline bool wants_positive(store::c2d_ack a) { return a == store::c2d_ack::positive || a == store::c2d_ack::full; }
inline bool wants_negative(store::c2d_ack a) { return a == store::c2d_ack::negative || a == store::c2d_ack::full; }

inline std::int64_t ns_of(time_point t) { return t.time_since_epoch().count(); }

inline std::size_t size_of(const c2d_outgoing& m) {
    std::size_t n = m.body.size() + m.message_id.size() + m.correlation_id.size() + m.user_id.size() +
                    m.content_type.size() + m.content_encoding.size();
    for (auto& [k, v] : m.application_properties) n += k.size() + v.size();
    return n;
}

}  // namespace c2d_detail

struct c2d_service::impl final : change_observer {
    struct entry {
        store::c2d_message m;
        std::string lock;  // empty: available
        std::optional<time_point> lock_expiry;
        std::string generation;  // generation id of the identity it was sent to (see on_identity_revoked)
    };
    struct queue {
        std::map<std::uint64_t, entry> messages;  // by sequence number
        std::size_t enqueuing = 0;                // sends not yet durable
    };
    struct lock_ref {
        store::identity_key id;
        std::uint64_t seq;
    };
    struct fb_entry {
        store::feedback_record r;
        std::string lock;
    };
    struct fb_batch {
        std::vector<std::uint64_t> seqs;
        time_point expiry;
    };
    struct subscriber {
        std::optional<store::identity_key> id;  // nullopt: feedback
        std::shared_ptr<std::function<void()>> notify;
    };

    // Work to do once the mutex is released: store commits and notifications.
    struct after {
        std::vector<std::pair<store::write_batch, store::commit_handler>> commits;
        std::vector<std::shared_ptr<std::function<void()>>> notifications;
    };

    store::store& st_;
    hub_service& hub_;
    c2d_options opts_;

    mutable std::mutex mu_;
    std::map<store::identity_key, queue> queues_;
    std::map<std::string, lock_ref, std::less<>> locks_;
    std::map<std::uint64_t, fb_entry> feedback_;
    std::map<std::string, fb_batch, std::less<>> fb_batches_;
    std::uint64_t next_seq_ = 1;
    std::uint64_t next_fb_seq_ = 1;
    std::map<subscription, subscriber> subscribers_;
    subscription next_sub_ = 1;
    bool stopping_ = false;

    // Store commits in flight; the destructor waits for them.
    std::mutex out_mu_;
    std::condition_variable out_cv_;
    std::size_t outstanding_ = 0;

    std::thread sweeper_;
    std::condition_variable sweep_cv_;

    impl(store::store& s, hub_service& h, c2d_options o) : st_(s), hub_(h), opts_(std::move(o)) {}

    time_point clock_now() const { return opts_.clock ? opts_.clock() : twinhub::now(); }

    void run(after& a) {
        for (auto& [b, h] : a.commits) {
            {
                std::lock_guard l(out_mu_);
                ++outstanding_;
            }
            st_.commit(std::move(b), [this, h = std::move(h)](result<void> r) {
                if (h) h(r);
                std::lock_guard l(out_mu_);
                if (--outstanding_ == 0) out_cv_.notify_all();
            });
        }
        for (auto& n : a.notifications) (*n)();
    }

    // Under mu_.
    void notify_identity(const store::identity_key& id, after& a) {
        for (auto& [_, s] : subscribers_)
            if (s.id && *s.id == id) a.notifications.push_back(s.notify);
    }
    void notify_feedback(after& a) {
        for (auto& [_, s] : subscribers_)
            if (!s.id) a.notifications.push_back(s.notify);
    }

    store::feedback_record make_feedback(const store::c2d_message& m, std::string status, std::string description) {
        store::feedback_record f;
        f.sequence_number = st_.allocates_sequence_numbers() ? 0 : next_fb_seq_++;
        f.original_message_id = m.message_id;
        f.description = std::move(description);
        f.device_id = m.target.device_id;
        f.module_id = m.target.module_id;
        if (auto d = hub_.get_device(m.target.device_id)) f.device_generation_id = d->generation_id;
        f.enqueued_time_ns = c2d_detail::ns_of(clock_now());
        f.status_code = std::move(status);
        return f;
    }

    // Under mu_: removes `seq` of `id` from memory (and its lock), queues its delete, and the
    // feedback record (status) when the message asked for it. `finish` runs after the commit.
    void remove(const store::identity_key& id, std::uint64_t seq, const char* status, const char* description,
                bool feedback_wanted, after& a, handler<void> finish) {
        auto qit = queues_.find(id);
        store::write_batch b;
        std::optional<store::feedback_record> fb;
        if (qit != queues_.end()) {
            auto it = qit->second.messages.find(seq);
            if (it != qit->second.messages.end()) {
                if (!it->second.lock.empty()) locks_.erase(it->second.lock);
                if (feedback_wanted) fb = make_feedback(it->second.m, status, description);
                qit->second.messages.erase(it);
            }
            if (qit->second.messages.empty() && qit->second.enqueuing == 0) queues_.erase(qit);
        }
        b.delete_c2d(seq);
        // A store shared by several nodes numbers the record inside its commit (store.hpp).
        auto assigned = fb && st_.allocates_sequence_numbers() ? std::make_shared<std::uint64_t>(0) : nullptr;
        if (fb) b.append_feedback(*fb, assigned);
        a.commits.emplace_back(std::move(b), [this, fb, assigned, finish = std::move(finish)](result<void> r) mutable {
            if (fb && assigned) fb->sequence_number = *assigned;
            // 0: a shared store did not write it, another node removed the message first.
            if (fb && assigned && *assigned == 0) fb.reset();
            if (r && fb) {
                after a2;
                {
                    std::lock_guard l(mu_);
                    feedback_.emplace(fb->sequence_number, fb_entry{*fb, {}});
                    notify_feedback(a2);
                }
                run(a2);
            }
            if (!r) log::warn("c2d.commit_failed", {{"what", "settlement"}, {"code", to_string(r.error().code)}});
            if (finish) finish(r);
        });
    }

    // Under mu_: a delivery of `e` ended without completion (abandon, lock expiry).
    void end_delivery(const store::identity_key& id, entry& e, time_point t, after& a, handler<void> finish) {
        const std::uint64_t seq = e.m.sequence_number;
        if (!e.lock.empty()) locks_.erase(e.lock);
        e.lock.clear();
        e.lock_expiry.reset();
        const std::uint32_t count = e.m.delivery_count + 1;
        if (count >= opts_.max_delivery_count)
            return remove(id, seq, "DeliveryCountExceeded", "Message delivery count exceeded",
                          c2d_detail::wants_negative(e.m.ack), a, std::move(finish));
        if (e.m.expiry_time_ns <= c2d_detail::ns_of(t))
            return remove(id, seq, "Expired", "Message expired", c2d_detail::wants_negative(e.m.ack), a, std::move(finish));
        e.m.delivery_count = count;
        store::write_batch b;
        b.update_c2d_delivery_count(seq, count);
        a.commits.emplace_back(std::move(b), [finish = std::move(finish)](result<void> r) {
            if (finish) finish(r);
        });
        notify_identity(id, a);
    }

    // Several nodes on one store (c2d_remote.cpp): applies another node's C2D writes to memory.
    store::cluster_link* cluster_ = nullptr;
    void apply_remote(std::vector<store::cluster_link::c2d_change>& changes);

    // ---- change_observer: a deleted identity's messages are gone from the store (cascade) ----
    void on_desired_change(const store::identity_key&, const twin::desired_change&) override {}
    void on_credentials_changed(const store::identity_key&) override {}
    void on_policies_changed() override {}
    // Revoked means deleted or disabled. A deleted identity's messages are gone from the store, but
    // the identity may exist again by now (deleted and re-created in one commit group: the hub reports
    // both after the group), with a new generation id. So drop each message whose identity is gone or
    // has another generation than the one it was sent to; a disabled identity keeps its messages.
    // A queue with sends still being enqueued stays (as in purge): their completions decrement
    // `enqueuing`.
    void on_identity_revoked(const store::identity_key& id) override {
        std::lock_guard l(mu_);
        for (auto it = queues_.begin(); it != queues_.end();) {
            auto& [key, q] = *it;
            if (key.device_id != id.device_id || (!id.module_id.empty() && key.module_id != id.module_id)) {
                ++it;
                continue;
            }
            const std::string gen = generation_of(key);
            std::erase_if(q.messages, [&](auto& kv) {
                if (!gen.empty() && kv.second.generation == gen) return false;
                if (!kv.second.lock.empty()) locks_.erase(kv.second.lock);
                return true;
            });
            if (q.messages.empty() && q.enqueuing == 0)
                it = queues_.erase(it);
            else
                ++it;
        }
    }

    // The generation id of the identity as the hub has it committed; empty when it does not exist.
    std::string generation_of(const store::identity_key& id) const {
        if (id.is_module()) {
            auto m = hub_.get_module(id.device_id, id.module_id);
            return m ? m->generation_id : std::string();
        }
        auto d = hub_.get_device(id.device_id);
        return d ? d->generation_id : std::string();
    }

    void sweep_loop() {
        std::unique_lock l(mu_);
        while (!stopping_) {
            sweep_cv_.wait_for(l, opts_.sweep_interval, [&] { return stopping_; });
            if (stopping_) break;
            l.unlock();
            sweep();
            l.lock();
        }
    }

    void sweep() {
        after a;
        {
            std::lock_guard l(mu_);
            if (stopping_) return;
            const time_point t = clock_now();
            const std::int64_t tn = c2d_detail::ns_of(t);
            std::vector<std::pair<store::identity_key, std::uint64_t>> expired, lock_ended;
            for (auto& [id, q] : queues_)
                for (auto& [seq, e] : q.messages) {
                    if (!e.lock.empty()) {
                        if (e.lock_expiry && *e.lock_expiry <= t) lock_ended.emplace_back(id, seq);
                    } else if (e.m.expiry_time_ns <= tn) {
                        expired.emplace_back(id, seq);
                    }
                }
            for (auto& [id, seq] : lock_ended) {
                auto qit = queues_.find(id);
                if (qit == queues_.end()) continue;
                auto it = qit->second.messages.find(seq);
                if (it == qit->second.messages.end()) continue;
                end_delivery(id, it->second, t, a, {});
            }
            for (auto& [id, seq] : expired) {
                auto qit = queues_.find(id);
                if (qit == queues_.end()) continue;
                auto it = qit->second.messages.find(seq);
                if (it == qit->second.messages.end()) continue;
                remove(id, seq, "Expired", "Message expired", c2d_detail::wants_negative(it->second.m.ack), a, {});
            }
            for (auto& [token, batch] : fb_batches_)
                if (batch.expiry <= t) {
                    for (auto s : batch.seqs)
                        if (auto it = feedback_.find(s); it != feedback_.end()) it->second.lock.clear();
                    notify_feedback(a);
                }
            std::erase_if(fb_batches_, [&](auto& kv) { return kv.second.expiry <= t; });
        }
        run(a);
    }
};

}  // namespace twinhub::service
