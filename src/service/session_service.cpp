#include "service/session_service.hpp"

namespace twinhub::service {

void session_service::load(std::vector<store::session_record> sessions) {
    std::lock_guard lock(mu_);
    for (auto& x : sessions) sessions_[x.client_id] = std::move(x);
}

std::optional<store::session_record> session_service::get(std::string_view client_id) const {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(client_id);
    if (it == sessions_.end()) return std::nullopt;
    return it->second;
}

void session_service::put(store::session_record s, std::function<void(result<void>)> done) {
    store::write_batch b;
    b.put_session(s);
    pipeline_.commit_plain(std::move(b), [this, s = std::move(s), done = std::move(done)](result<void> r) mutable {
        if (r) {
            std::lock_guard lock(mu_);
            sessions_[s.client_id] = std::move(s);
        }
        done(r);
    });
}

void session_service::remove(std::string client_id, std::function<void(result<void>)> done) {
    store::write_batch b;
    b.delete_session(client_id);
    pipeline_.commit_plain(std::move(b), [this, client_id, done = std::move(done)](result<void> r) {
        if (r) {
            std::lock_guard lock(mu_);
            sessions_.erase(client_id);
        }
        done(r);
    });
}

void session_service::drop_sessions_of(const std::string& device_id, const std::string& module_id) {
    std::lock_guard lock(mu_);
    if (!module_id.empty()) {
        sessions_.erase(device_id + "/" + module_id);
        return;
    }
    sessions_.erase(device_id);
    const std::string prefix = device_id + "/";
    for (auto it = sessions_.lower_bound(prefix); it != sessions_.end() && it->first.rfind(prefix, 0) == 0;)
        it = sessions_.erase(it);
}

}  // namespace twinhub::service
