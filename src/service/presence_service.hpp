// Presence and credentials (spec 5, 6): what an authenticating head needs to know about an
// identity, and its connectionState, lastActivityTime and modelId.
//
// Presence lives in memory only: it changes on every connect and message, nobody needs it across
// a restart (everything is disconnected after one), and committing it would cost a transaction
// per telemetry message. It reaches the store only with the next identity/twin write (the registry
// and twin services keep the in-memory values when such a write completes).
//
// Thread safety: every member may be called from any thread. The record cache must outlive this.
#pragma once

#include "common/errc.hpp"
#include "registry/identity.hpp"
#include "store/store.hpp"

#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>

namespace twinhub::service {

class record_cache;

// What an authenticating head needs to know about an identity.
struct identity_credentials {
    registry::authentication_mechanism authentication;
    bool enabled = true;  // false when the device (or a module's device) is disabled
};

class presence_service {
public:
    explicit presence_service(record_cache& c) : cache_(c) {}

    // device_not_found, module_not_found.
    result<identity_credentials> credentials(const store::identity_key& id) const;
    // Unknown identities are ignored.
    void set_connection_state(const store::identity_key& id, bool connected);
    // lastActivityTime = now, at a resolution of one second (cheap when called per message).
    void touch_activity(const store::identity_key& id);
    void set_model_id(const store::identity_key& id, std::string model_id);
    std::int64_t connected_device_count() const;

    // Several nodes on one store (store/cluster_link.hpp), before serving: this node's connects
    // and disconnects also go to `publish`; `remote_holds` tells whether another node holds a
    // session of an identity (then a local disconnect leaves it Connected).
    void set_cluster(std::function<void(const store::identity_key&, bool)> publish,
                     std::function<bool(const store::identity_key&)> remote_holds);
    // Another node took (connected) or dropped the session of `id`; ignored while this node
    // holds one.
    void apply_remote_presence(const store::identity_key& id, bool connected);

private:
    template <class F>
    bool with_presence(const store::identity_key& id, F&& f);
    void set_state(const store::identity_key& id, bool connected);

    record_cache& cache_;
    std::function<void(const store::identity_key&, bool)> publish_;  // empty: one node
    std::function<bool(const store::identity_key&)> remote_holds_;
    std::mutex local_m_;
    std::set<store::identity_key> local_;  // sessions this node holds (only with publish_)
};

}  // namespace twinhub::service
