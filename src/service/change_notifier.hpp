// The one way the domain tells the rest of the hub what changed: a desired patch to push, an
// identity or policy to re-check, a twin to re-index, telemetry to read. Heads (MQTT, AMQP), the
// C2D service and the query index implement change_observer and register with the change_notifier
// (through hub_service::add_observer); the services call the notifier.
//
// Order: a desired change reaches the observers after it is committed, in $version order per twin,
// on the store's thread, before the write's handler runs. on_twin_changed is the exception: it is
// called under the hub's exclusive lock, right after the change became readable.
//
// Thread safety: add_observer and remove_observer may be called from any thread; after
// remove_observer returns, the observer is no longer called by notifications that start later
// (one already running may still be calling it: remove only once the hub is quiet, as the query
// engine does on destruction). Observers must outlive their registration.
#pragma once

#include "store/store.hpp"
#include "twin/twin_document.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace twinhub::service {

class change_observer {
public:
    virtual ~change_observer() = default;
    // A committed desired change of one twin (the device-facing patch with "$version").
    virtual void on_desired_change(const store::identity_key& id, const twin::desired_change& change) {}
    // The identity was deleted or disabled (a device's modules are reported too): drop its connections.
    virtual void on_identity_revoked(const store::identity_key& id) {}
    // Telemetry was committed to `partition` of the built-in endpoint log (readers may wake up).
    virtual void on_events_appended(std::uint32_t partition) {}
    // The identity's authentication (symmetric keys, type or thumbprints) was changed by a committed
    // update: re-check the credentials its connections authenticated with against credentials() and
    // drop those that no longer verify. Only that identity is reported: a device's keys never
    // authorise its modules, nor a module's keys its device.
    virtual void on_credentials_changed(const store::identity_key& id) {}
    // A shared access policy was created, changed or removed (committed): re-check the connections
    // that authenticated with a policy token (skn) against policies().
    virtual void on_policies_changed() {}
    // A CA certificate was removed or replaced (committed): re-check the connections that
    // authenticated with a certificate chain against the verified CA certificates.
    virtual void on_certificates_changed() {}
    // The readable state of the twin of `id` changed (a write completed, presence or model id; a
    // device's change reports its modules too). Called under the hub's exclusive lock, before the
    // write's handler runs (so a query that starts after the handler sees it). Must be cheap and
    // must not call back into the hub.
    virtual void on_twin_changed(const store::identity_key& id) {}
};

class change_notifier {
public:
    void add_observer(change_observer* o) {
        std::lock_guard l(m_);
        auto next = std::make_shared<list>(*observers_.load());
        next->push_back(o);
        observers_.store(std::move(next));
    }
    void remove_observer(change_observer* o) {
        std::lock_guard l(m_);
        auto next = std::make_shared<list>(*observers_.load());
        next->erase(std::remove(next->begin(), next->end(), o), next->end());
        observers_.store(std::move(next));
    }

    void desired_changed(const store::identity_key& id, const twin::desired_change& c) const {
        for (auto* o : *observers_.load()) o->on_desired_change(id, c);
    }
    void identities_revoked(const std::vector<store::identity_key>& ids) const {
        auto l = observers_.load();
        for (auto& id : ids)
            for (auto* o : *l) o->on_identity_revoked(id);
    }
    void credentials_changed(const store::identity_key& id) const {
        for (auto* o : *observers_.load()) o->on_credentials_changed(id);
    }
    void policies_changed() const {
        for (auto* o : *observers_.load()) o->on_policies_changed();
    }
    void certificates_changed() const {
        for (auto* o : *observers_.load()) o->on_certificates_changed();
    }
    void events_appended(std::uint32_t partition) const {
        for (auto* o : *observers_.load()) o->on_events_appended(partition);
    }
    void twin_changed(const store::identity_key& id) const {
        for (auto* o : *observers_.load()) o->on_twin_changed(id);
    }
    // The twin of the device and those of `modules` (a map keyed by module id) changed.
    template <class ModuleMap>
    void device_twins_changed(const std::string& device_id, const ModuleMap& modules) const {
        auto l = observers_.load();
        if (l->empty()) return;
        for (auto* o : *l) {
            o->on_twin_changed(store::identity_key{device_id, {}});
            for (auto& [mid, _] : modules) o->on_twin_changed(store::identity_key{device_id, mid});
        }
    }

private:
    using list = std::vector<change_observer*>;
    std::mutex m_;  // serializes add/remove
    std::atomic<std::shared_ptr<const list>> observers_{std::make_shared<const list>()};
};

}  // namespace twinhub::service
