#include "service/presence_service.hpp"

#include "common/time.hpp"
#include "service/record_cache.hpp"

#include <mutex>

namespace twinhub::service {

result<identity_credentials> presence_service::credentials(const store::identity_key& id) const {
    std::shared_lock lock(cache_.mu);
    const device_entry* e = cache_.committed_device(id.device_id);
    if (!e) return error{errc::device_not_found, device_not_found_message(id.device_id)};
    const bool enabled = e->identity.committed->status == registry::device_status::enabled;
    if (!id.is_module()) return identity_credentials{e->identity.committed->authentication, enabled};
    const module_entry* m = record_cache::committed_module(*e, id.module_id);
    if (!m) return error{errc::module_not_found, module_not_found_message(id.device_id, id.module_id)};
    return identity_credentials{m->identity.committed->authentication, enabled};
}

// Applies `f` to the identity of `id` (committed and head copies); false when it is unknown.
template <class F>
bool presence_service::with_presence(const store::identity_key& id, F&& f) {
    std::unique_lock lock(cache_.mu);
    auto it = cache_.devices.find(id.device_id);
    if (it == cache_.devices.end()) return false;
    device_entry& e = it->second;
    if (!id.is_module()) {
        if (e.identity.committed) f(*e.identity.committed);
        if (e.identity.head && *e.identity.head) f(**e.identity.head);
        cache_.twin_changed(id);
        return true;
    }
    auto mit = e.modules.find(id.module_id);
    if (mit == e.modules.end()) return false;
    if (mit->second.identity.committed) f(*mit->second.identity.committed);
    if (mit->second.identity.head && *mit->second.identity.head) f(**mit->second.identity.head);
    cache_.twin_changed(id);
    return true;
}

void presence_service::set_cluster(std::function<void(const store::identity_key&, bool)> publish,
                                   std::function<bool(const store::identity_key&)> remote_holds) {
    publish_ = std::move(publish);
    remote_holds_ = std::move(remote_holds);
}

void presence_service::set_connection_state(const store::identity_key& id, bool connected) {
    if (!publish_) return set_state(id, connected);
    {
        std::lock_guard l(local_m_);
        if (connected) local_.insert(id);
        else local_.erase(id);
    }
    publish_(id, connected);
    set_state(id, connected || remote_holds_(id));
}

void presence_service::apply_remote_presence(const store::identity_key& id, bool connected) {
    {
        std::lock_guard l(local_m_);
        if (local_.contains(id)) return;
    }
    set_state(id, connected);
}

void presence_service::set_state(const store::identity_key& id, bool connected) {
    const time_point t = now();
    const auto state = connected ? registry::connection_state::connected : registry::connection_state::disconnected;
    with_presence(id, [&](auto& identity) {
        identity.connection_state = state;
        identity.connection_state_updated_time = t;
        if (connected) identity.last_activity_time = t;
    });
}

void presence_service::touch_activity(const store::identity_key& id) {
    // Called for every message: skip the exclusive lock when the recorded time is recent enough
    // (the real hub's lastActivityTime lags by minutes).
    constexpr auto resolution = std::chrono::seconds(1);
    const time_point t = now();
    {
        std::shared_lock lock(cache_.mu);
        const device_entry* e = cache_.committed_device(id.device_id);
        if (!e) return;
        std::optional<time_point> last = e->identity.committed->last_activity_time;
        if (id.is_module()) {
            const module_entry* m = record_cache::committed_module(*e, id.module_id);
            if (!m) return;
            last = m->identity.committed->last_activity_time;
        }
        if (last && t - *last < resolution) return;
    }
    with_presence(id, [&](auto& identity) { identity.last_activity_time = t; });
}

void presence_service::set_model_id(const store::identity_key& id, std::string model_id) {
    std::unique_lock lock(cache_.mu);
    auto it = cache_.devices.find(id.device_id);
    if (it == cache_.devices.end()) return;
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
    cache_.twin_changed(id);
}

std::int64_t presence_service::connected_device_count() const {
    std::shared_lock lock(cache_.mu);
    std::int64_t n = 0;
    for (auto& [_, e] : cache_.devices)
        if (e.identity.committed && e.identity.committed->connection_state == registry::connection_state::connected)
            ++n;
    return n;
}

}  // namespace twinhub::service
