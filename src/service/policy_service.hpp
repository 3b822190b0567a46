// Shared access policies (spec 2.6), in memory and made durable through the write pipeline.
//
// Policy writes are rare (an operator rotating a key), so they are simply serialized: one is in
// the store at a time, computed from the committed set; the others wait in a queue. Thus a failed
// write never leaks into a later one, and policies() is always what is durable. After each
// committed change the observers get on_policies_changed, before the write's handler.
//
// Thread safety: every member may be called from any thread. The pipeline and the notifier must
// outlive the policy_service.
#pragma once

#include "auth/shared_access_policy.hpp"
#include "service/change_notifier.hpp"
#include "service/write_pipeline.hpp"

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace twinhub::service {

class policy_service {
public:
    policy_service(write_pipeline& p, const change_notifier& n) : pipeline_(p), notifier_(n) {}

    void load(std::vector<auth::shared_access_policy> policies);  // before serving
    // The set another node committed (service/remote_changes.hpp) replaces the committed set.
    void replace_all(std::vector<auth::shared_access_policy> policies);

    std::vector<auth::shared_access_policy> policies() const;
    std::size_t size() const;
    // Creates the policy named p.key_name, or replaces it (keys and rights); empty keys are
    // generated. The policies after the change must pass auth::validate_policies, else
    // invalid_argument (naming the field, never a key). Completes with the stored policy.
    void put(auth::shared_access_policy p, std::function<void(result<auth::shared_access_policy>)> done);
    // not_found when there is none of that name; invalid_argument for the hub's last policy.
    void remove(std::string key_name, std::function<void(result<void>)> done);

private:
    using policy_map = std::map<std::string, auth::shared_access_policy>;
    struct policy_write {
        std::function<result<policy_map>(const policy_map&)> change;  // the new set, or why not
        std::function<void(result<void>)> finish;                     // after the lock
    };
    void write(policy_write w);
    void start_write(after_unlock& after);
    void complete_write(policy_map& written, const std::function<void(result<void>)>& finish, result<void> r);

    write_pipeline& pipeline_;
    const change_notifier& notifier_;
    mutable std::mutex mu_;
    policy_map policies_;                 // committed
    std::deque<policy_write> queue_;      // under mu_
    bool writing_ = false;                // under mu_: a policy write is in the store
};

}  // namespace twinhub::service
