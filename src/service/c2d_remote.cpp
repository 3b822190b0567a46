// Several nodes on one store (issue 18 item 2): another node's C2D writes, from the store's change
// feed in commit order (store/cluster_link.hpp: c2d_change), applied to this node's queues so that
// every node's memory converges on the database's. Each change is applied idempotently: an
// enqueue this node already holds, or a delete or delivery count for a message it does not hold,
// changes nothing. Locks stay node-local (docs/architecture.md, "Several nodes on one PostgreSQL").
#include "service/c2d_service_impl.hpp"

namespace twinhub::service {

void c2d_service::impl::apply_remote(std::vector<store::cluster_link::c2d_change>& changes) {
    using kind = store::cluster_link::c2d_change::kind;
    after a;
    {
        std::lock_guard l(mu_);
        for (auto& c : changes) {
            switch (c.k) {
            case kind::enqueued: {
                if (!c.message) break;  // removed since: its delete follows
                const std::string gen = generation_of(c.id);
                if (gen.empty()) break;  // the identity is gone (or not known here yet)
                auto& q = queues_[c.id];
                if (q.messages.emplace(c.seq, entry{std::move(*c.message), {}, {}, gen}).second)
                    notify_identity(c.id, a);
                break;
            }
            case kind::delivery_count: {
                auto qit = queues_.find(c.id);
                if (qit == queues_.end()) break;
                if (auto it = qit->second.messages.find(c.seq); it != qit->second.messages.end())
                    it->second.m.delivery_count = c.delivery_count;
                break;
            }
            case kind::deleted: {
                auto qit = queues_.find(c.id);
                if (qit == queues_.end()) break;
                if (auto it = qit->second.messages.find(c.seq); it != qit->second.messages.end()) {
                    // A lock of this node on it is lost: settling it fails with message_lock_lost.
                    if (!it->second.lock.empty()) locks_.erase(it->second.lock);
                    qit->second.messages.erase(it);
                }
                if (qit->second.messages.empty() && qit->second.enqueuing == 0) queues_.erase(qit);
                break;
            }
            case kind::feedback_appended:
                if (c.feedback && feedback_.emplace(c.seq, fb_entry{std::move(*c.feedback), {}}).second)
                    notify_feedback(a);
                break;
            case kind::feedback_deleted: feedback_.erase(c.seq); break;
            }
        }
    }
    run(a);
}

}  // namespace twinhub::service
