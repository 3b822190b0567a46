#include "service/settings_service.hpp"

namespace twinhub::service {

void settings_service::load(std::vector<std::pair<std::string, std::string>> settings) {
    std::lock_guard lock(mu_);
    for (auto& [k, v] : settings) settings_[k] = std::move(v);
}

std::optional<std::string> settings_service::get(std::string_view key) const {
    std::lock_guard lock(mu_);
    auto it = settings_.find(key);
    if (it == settings_.end()) return std::nullopt;
    return it->second;
}

std::vector<std::pair<std::string, std::string>> settings_service::with_prefix(std::string_view prefix) const {
    std::lock_guard lock(mu_);
    std::vector<std::pair<std::string, std::string>> out;
    for (auto it = settings_.lower_bound(prefix); it != settings_.end() && it->first.starts_with(prefix); ++it)
        out.emplace_back(it->first, it->second);
    return out;
}

void settings_service::put(std::string key, std::string doc, std::function<void(result<void>)> done) {
    store::write_batch b;
    if (doc.empty())
        b.delete_setting(key);
    else
        b.put_setting(key, doc);
    pipeline_.commit_plain(std::move(b), [this, key = std::move(key), doc = std::move(doc),
                                          done = std::move(done)](result<void> r) mutable {
        if (r) {
            std::lock_guard lock(mu_);
            if (doc.empty())
                settings_.erase(key);
            else
                settings_.insert_or_assign(std::move(key), std::move(doc));
        }
        done(std::move(r));
    });
}

}  // namespace twinhub::service
