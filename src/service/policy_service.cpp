#include "service/policy_service.hpp"

#include "common/encoding.hpp"
#include "common/log.hpp"

#include <memory>

namespace twinhub::service {
namespace {

bool same_policy(const auth::shared_access_policy& a, const auth::shared_access_policy& b) {
    return a.key_name == b.key_name && a.primary_key == b.primary_key && a.secondary_key == b.secondary_key &&
           a.rights == b.rights;
}

}  // namespace

void policy_service::load(std::vector<auth::shared_access_policy> policies) {
    std::lock_guard lock(mu_);
    for (auto& p : policies) policies_[p.key_name] = std::move(p);
}

void policy_service::replace_all(std::vector<auth::shared_access_policy> policies) {
    std::lock_guard lock(mu_);
    policies_.clear();
    for (auto& p : policies) policies_[p.key_name] = std::move(p);
}

std::vector<auth::shared_access_policy> policy_service::policies() const {
    std::lock_guard lock(mu_);
    std::vector<auth::shared_access_policy> out;
    for (auto& [_, p] : policies_) out.push_back(p);
    return out;
}

std::size_t policy_service::size() const {
    std::lock_guard lock(mu_);
    return policies_.size();
}

void policy_service::put(auth::shared_access_policy p, std::function<void(result<auth::shared_access_policy>)> done) {
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
    write({std::move(change), [this, p, done = std::move(done)](result<void> r) {
               if (!r) return done(r.error());
               notifier_.policies_changed();
               done(p);
           }});
}

void policy_service::remove(std::string key_name, std::function<void(result<void>)> done) {
    auto change = [key_name](const policy_map& cur) -> result<policy_map> {
        if (!cur.contains(key_name)) return error{errc::not_found, "Shared access policy '" + key_name + "' not found."};
        if (cur.size() == 1)
            return error{errc::invalid_argument,
                         "Shared access policy '" + key_name + "' is the hub's last policy; it cannot be removed."};
        policy_map next = cur;
        next.erase(key_name);
        return next;
    };
    write({std::move(change), [this, done = std::move(done)](result<void> r) {
               if (!r) return done(r.error());
               notifier_.policies_changed();
               done({});
           }});
}

void policy_service::write(policy_write w) {
    after_unlock after;
    std::unique_lock lock(mu_);
    queue_.push_back(std::move(w));
    if (!writing_) start_write(after);
}

// Under mu_, no policy write in the store: commits the next queued write that passes its checks
// (the others fail through `after`).
void policy_service::start_write(after_unlock& after) {
    while (!queue_.empty()) {
        policy_write w = std::move(queue_.front());
        queue_.pop_front();
        auto next = w.change(policies_);
        if (!next) {
            after.add([finish = std::move(w.finish), err = next.error()] { finish(err); });
            continue;
        }
        store::write_batch b;
        for (auto& [name, _] : policies_)
            if (!next->contains(name)) b.delete_policy(name);
        for (auto& [name, p] : *next)
            if (auto it = policies_.find(name); it == policies_.end() || !same_policy(it->second, p)) b.put_policy(p);
        writing_ = true;
        auto written = std::make_shared<policy_map>(std::move(*next));
        auto finish = std::make_shared<std::function<void(result<void>)>>(std::move(w.finish));
        pipeline_.commit_plain(
            std::move(b), [this, written, finish](result<void> r) { complete_write(*written, *finish, r); }, &after);
        return;
    }
}

void policy_service::complete_write(policy_map& written, const std::function<void(result<void>)>& finish,
                                    result<void> r) {
    after_unlock after;
    std::unique_lock lock(mu_);
    if (r)
        policies_ = std::move(written);
    else
        log::warn("service.commit_failed", {{"what", "policies"}, {"code", to_string(r.error().code)}});
    writing_ = false;
    after.add([finish, r] { finish(r); });  // before the queued writes that fail at once
    start_write(after);
}

}  // namespace twinhub::service
