#include "service/remote_changes.hpp"

#include "common/log.hpp"

#include <boost/json/parse.hpp>

namespace twinhub::service {
namespace {

using kind = store::remote_change::kind;

// What an identity knows only on the node its device is connected to.
template <class I>
void keep_presence(I& incoming, const I& local) {
    incoming.connection_state = local.connection_state;
    incoming.connection_state_updated_time = local.connection_state_updated_time;
    incoming.last_activity_time = local.last_activity_time;
}

struct pending_notes {
    std::vector<std::pair<store::identity_key, twin::desired_change>> desired;
    std::vector<store::identity_key> revoked;
    std::vector<store::identity_key> credentials;
    bool policies = false;
};

void apply_twin(store::remote_change& c, record_cache& cache, const change_notifier& notifier, pending_notes& n) {
    auto it = cache.devices.find(c.id.device_id);
    if (it == cache.devices.end() || !it->second.identity.committed) return;
    device_entry& e = it->second;
    twin_slot* slot = &e.twin;
    if (c.id.is_module()) {
        auto m = e.modules.find(c.id.module_id);
        if (m == e.modules.end() || !m->second.identity.committed) return;
        slot = &m->second.twin;
    }
    if (slot->committed && slot->committed->version >= c.twin->version) return;
    if (slot->committed) c.twin->model_id = slot->committed->model_id;
    slot->committed = std::make_shared<const twin::twin_document>(std::move(*c.twin));
    notifier.twin_changed(c.id);
    if (c.desired_patch.empty()) return;
    boost::system::error_code ec;
    auto v = boost::json::parse(c.desired_patch, ec);
    if (ec || !v.is_object()) {
        log::warn("service.remote_patch_malformed", {{"device", c.id.device_id}});
        return;
    }
    twin::desired_change d;
    d.patch = std::move(v.as_object());
    if (auto* ver = d.patch.if_contains("$version"); ver && ver->is_int64()) d.version = ver->as_int64();
    n.desired.emplace_back(c.id, std::move(d));
}

void apply_device(store::remote_change& c, record_cache& cache, pending_notes& n) {
    auto& d = *c.device;
    device_entry& e = cache.devices[d.device_id];
    if (e.identity.committed) {
        if (e.identity.committed->etag >= d.etag) return;
        keep_presence(d, *e.identity.committed);
        n.credentials.push_back({d.device_id, {}});
        if (d.status == registry::device_status::disabled) {
            n.revoked.push_back({d.device_id, {}});
            for (auto& [mid, _] : e.modules) n.revoked.push_back({d.device_id, mid});
        }
    } else {
        d.connection_state = registry::connection_state::disconnected;
        // The twin change of the same commit follows; until then (same lock) a placeholder.
        if (!e.twin.committed) e.twin.committed = std::make_shared<const twin::twin_document>();
    }
    e.identity.committed = std::move(d);
}

void apply_module(store::remote_change& c, record_cache& cache, pending_notes& n) {
    auto& m = *c.module;
    auto it = cache.devices.find(m.device_id);
    if (it == cache.devices.end() || !it->second.identity.committed) return;
    module_entry& me = it->second.modules[m.module_id];
    if (me.identity.committed) {
        if (me.identity.committed->etag >= m.etag) return;
        keep_presence(m, *me.identity.committed);
        n.credentials.push_back({m.device_id, m.module_id});
    } else {
        m.connection_state = registry::connection_state::disconnected;
        if (!me.twin.committed) me.twin.committed = std::make_shared<const twin::twin_document>();
    }
    me.identity.committed = std::move(m);
}

void apply_delete(store::remote_change& c, record_cache& cache, pending_notes& n) {
    auto it = cache.devices.find(c.id.device_id);
    if (it == cache.devices.end()) return;
    device_entry& e = it->second;
    if (c.k == kind::module_deleted) {
        auto m = e.modules.find(c.id.module_id);
        if (m == e.modules.end() || !m->second.identity.committed) return;
        m->second.identity.committed.reset();
        n.revoked.push_back(c.id);
    } else {
        if (!e.identity.committed) return;
        e.identity.committed.reset();
        n.revoked.push_back({c.id.device_id, {}});
        for (auto& [mid, m] : e.modules) {
            if (m.identity.committed) n.revoked.push_back({c.id.device_id, mid});
            m.identity.committed.reset();
        }
    }
    // Entries with local writes in flight are settled (erased) when their last write completes.
    if (e.in_flight == 0) cache.settle(c.id.device_id, e);
}

}  // namespace

void apply_remote_changes(std::vector<store::remote_change>& changes, record_cache& cache, policy_service& policies,
                          store::store& s, const change_notifier& notifier) {
    pending_notes n;
    {
        std::unique_lock lock(cache.mu);
        for (auto& c : changes) {
            switch (c.k) {
            case kind::twin: apply_twin(c, cache, notifier, n); break;
            case kind::device: apply_device(c, cache, n); break;
            case kind::module: apply_module(c, cache, n); break;
            case kind::device_deleted:
            case kind::module_deleted: apply_delete(c, cache, n); break;
            case kind::policies: n.policies = true; break;
            }
        }
    }
    if (n.policies) {
        // The database holds the whole set: read it rather than replay the writes.
        if (auto p = s.load_policies(); p) {
            policies.replace_all(std::move(*p));
            notifier.policies_changed();
        } else {
            log::warn("service.remote_policies_failed", {{"message", p.error().message}});
        }
    }
    notifier.identities_revoked(n.revoked);
    for (auto& id : n.credentials) notifier.credentials_changed(id);
    for (auto& [id, d] : n.desired) notifier.desired_changed(id, d);
}

}  // namespace twinhub::service
