// The hub's domain, composed: a thin façade over the services the architecture names, which the
// protocol heads (REST, MQTT, AMQP, query) call. Each service has its own header and tests:
//
//   record_cache      the versioned identity/twin records in memory (committed and head)
//   write_pipeline    how writes reach the store and come back (group completion, failure epochs)
//   registry_service  devices, modules, bulk import, statistics
//   twin_service      twin reads and writes; desired changes through the one change_notifier
//   presence_service  credentials, connectionState, lastActivityTime, modelId
//   session_service   MQTT session records
//   policy_service    shared access policies
//   settings_service  durable hub settings
//   event_log         the telemetry append path (routing: telemetry_service)
//
// New code may depend on a service (hub.registry(), hub.twins(), ...) instead of this façade; the
// façade's members forward to them and keep their contracts, stated below.
//
// Reads are served from memory and reflect every write whose completion has already run
// (read-your-writes: a write is applied to the readable state after it is durable and before its
// handler is called). Writes are validated here, committed through the store (group-committed with
// other writes) and completed through `handler`s that run on the store's thread: heads post the
// result back to their own strand/executor and must not block in them. A write rejected before it
// reaches the store (validation, If-Match, not found) completes on the calling thread, before the
// call returns; so does every write once the store is closed (shutting_down).
//
// Writes to one identity are applied in the order they were accepted; desired changes reach the
// observers in $version order, after commit, on the store's thread, before the write's handler.
//
// Presence (connectionState, lastActivityTime, modelId) lives in memory only: set_connection_state,
// touch_activity and set_model_id are not committed on their own (they reach the store with the
// next identity/twin write); after a restart every identity is Disconnected.
//
// Thread safety: every member function may be called from any thread. The store and the observers
// passed in must outlive the hub_service.
#pragma once

#include "auth/shared_access_policy.hpp"
#include "common/errc.hpp"
#include "registry/identity.hpp"
#include "service/change_notifier.hpp"
#include "service/event_log.hpp"
#include "service/handler.hpp"
#include "service/presence_service.hpp"
#include "service/registry_service.hpp"
#include "store/store.hpp"
#include "twin/twin_document.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace twinhub::service {

class policy_service;
class session_service;
class settings_service;
class twin_service;

// The registry's options (registry_service.hpp), and the built-in endpoint's shape.
struct hub_options : registry_options {
    // Partitions of the built-in Event Hubs-compatible endpoint. Fixed when the hub is created (the
    // first open() of an empty store records it; 0 = store::default_event_partitions), as on Azure;
    // a later open() with another non-zero count fails with invalid_argument.
    std::uint32_t event_partitions = 0;
};

class hub_service {
public:
    // Loads the snapshot into memory. If the store holds no policies (first start), the five default
    // policies are created and committed before this returns. Fails with the store's error.
    static result<std::unique_ptr<hub_service>> open(store::store& s, hub_options opts);
    // Waits until every write handed to the store has completed (its handler has returned). Do not
    // destroy the hub_service from one of its handlers or observers.
    ~hub_service();

    // The one change notifier (change_notifier.hpp): desired changes, revocations, credentials,
    // policies, appended events and (under the lock) twin changes for the query index.
    void add_observer(change_observer* o);
    void remove_observer(change_observer* o);
    void set_event_router(event_router* r);    // before serving; nullptr: all telemetry to the built-in endpoint

    // ---- shared access policies (spec 2.6) ----
    std::vector<auth::shared_access_policy> policies() const;
    // Creates the policy named p.key_name, or replaces it (keys and rights); empty keys are
    // generated. The hub's policies after the change must pass auth::validate_policies, else
    // invalid_argument (naming the field, never a key). Completes with the stored policy.
    // Policy writes are applied one at a time, in the order they were called; after each commit
    // the observers get on_policies_changed, before `done`.
    void put_policy(auth::shared_access_policy p, handler<auth::shared_access_policy> done);
    // Removes the policy: not_found when there is none of that name; invalid_argument for the hub's
    // last policy (a store without policies gets the five defaults again at the next open()).
    void delete_policy(std::string key_name, handler<void> done);

    // ---- devices (spec 3.2 rows 1-5, 3.6) ----
    // Create-only: fails with device_already_exists. Empty sas keys are generated; new generationId,
    // etag, twin.
    void create_device(registry::device_identity req, handler<registry::device_identity> done);
    // Update with If-Match (already known to be present): device_not_found, precondition_failed,
    // invalid_argument (immutable fields). Keeps generationId; an empty sas key is generated anew
    // (send the current keys to keep them), unless hub_options::keep_keys_on_empty_update.
    void update_device(registry::device_identity req, std::string if_match, handler<registry::device_identity> done);
    result<registry::device_identity> get_device(std::string_view device_id) const;
    std::vector<registry::device_identity> list_devices(std::size_t top) const;
    // Deletes the device, its modules and all their twins; if_match empty or "*" = unconditional.
    void delete_device(std::string device_id, std::string if_match, handler<void> done);
    registry_statistics statistics() const;
    std::int64_t connected_device_count() const;

    // ---- modules (spec 3.2 rows 6-10) ----
    void create_module(registry::module_identity req, handler<registry::module_identity> done);
    void update_module(registry::module_identity req, std::string if_match, handler<registry::module_identity> done);
    result<registry::module_identity> get_module(std::string_view device_id, std::string_view module_id) const;
    result<std::vector<registry::module_identity>> list_modules(std::string_view device_id) const;
    void delete_module(std::string device_id, std::string module_id, std::string if_match, handler<void> done);

    // ---- bulk (spec 3.9) ----
    // Each entry is applied on its own (partial failure is reported in bulk_result, per entry).
    // The whole request fails with device_defined_multiple_times when an id appears twice, and with
    // invalid_argument when it holds more than max_bulk_entries; then nothing is applied. Modes:
    // create, createorupdate, update, updateifmatchetag, delete, deleteifmatchetag (others fail
    // their entry with invalid_argument).
    void bulk(std::vector<bulk_entry> entries, handler<bulk_result> done);

    // ---- twins (spec 4) ----
    // The service twin JSON of 4.1 (identity mirrors, etag, version, tags, properties with $metadata).
    result<boost::json::object> get_twin(const store::identity_key& id) const;
    // PATCH: if_match empty or wildcard = unconditional; else must match the twin etag.
    void patch_twin(store::identity_key id, boost::json::value body, std::string if_match,
                    handler<boost::json::object> done);
    void replace_twin(store::identity_key id, boost::json::value body, std::string if_match,
                      handler<boost::json::object> done);
    // Device side: flat {"desired":{..,"$version"},"reported":{..,"$version"}}.
    result<boost::json::object> get_device_twin_view(const store::identity_key& id) const;
    // Reported patch from the device; completes with the new reported $version.
    void patch_reported(store::identity_key id, boost::json::value patch, handler<std::int64_t> done);
    // Visits every twin (devices, or modules) under a consistent read view, as service twin JSON.
    // The visitor returns false to stop. Used by the query engine. It runs under the shared lock:
    // it must not call a writing member of this hub_service.
    void for_each_twin(bool modules, const std::function<bool(const boost::json::object&)>& visit) const;

    // ---- presence and credentials (spec 5, 6) ----
    result<identity_credentials> credentials(const store::identity_key& id) const;
    void set_connection_state(const store::identity_key& id, bool connected);
    // lastActivityTime = now, at a resolution of one second (cheap when called per message).
    void touch_activity(const store::identity_key& id);
    void set_model_id(const store::identity_key& id, std::string model_id);

    // ---- MQTT sessions (spec 5.3) ----
    std::optional<store::session_record> get_session(std::string_view client_id) const;
    void put_session(store::session_record s, handler<void> done);
    void delete_session(std::string client_id, handler<void> done);

    // ---- hub settings (durable key -> JSON document; consumer groups, the endpoint's shape) ----
    std::optional<std::string> setting(std::string_view key) const;
    std::vector<std::pair<std::string, std::string>> settings_with_prefix(std::string_view prefix) const;
    // Committed, then readable, then `done`. `doc` empty deletes the key (no error when absent).
    void put_setting(std::string key, std::string doc, handler<void> done);
    // Tells the observers that a CA certificate (a "certificates/" setting) was removed or replaced,
    // after its commit (certificate_service).
    void certificates_changed() const;

    // ---- telemetry ----
    // The built-in endpoint's partition count and creation time (fixed when the hub was created).
    std::uint32_t event_partition_count() const noexcept;
    std::int64_t event_hub_created_ns() const noexcept;
    // Appends to the built-in endpoint log, group-committed; observers hear of it after the commit.
    // The partition is partition_of(e.source, event_partition_count()).
    void append_event(store::event_record e, handler<void> done);
    // Appends a batch of events (routed by the event_router, else each to its identity's partition
    // of the built-in endpoint) in one commit.
    void append_events(std::vector<store::event_record> events, handler<void> done);
    // Appends records whose partition (stream) is already set, in one commit (generated events).
    void append_routed_events(std::vector<store::event_record> events, handler<void> done);
    // Retention: one trim op per stream, for events enqueued before `before_ns`; at most max_rows
    // each. Completes with the store's result.
    void trim_events(const std::vector<std::uint32_t>& streams, std::int64_t before_ns, std::uint32_t max_rows,
                     handler<void> done);
    // Reads the log (the store's read connection; callable from any thread, blocks on I/O).
    result<std::vector<store::event_record>> read_events(std::uint32_t partition, std::uint64_t from,
                                                         std::size_t max_count) const;
    result<store::store::partition_info> event_partition_info(std::uint32_t partition) const;

    // The services this façade composes; they live as long as the hub_service.
    registry_service& registry() noexcept;
    twin_service& twins() noexcept;
    presence_service& presence() noexcept;
    session_service& sessions() noexcept;
    policy_service& access_policies() noexcept;
    settings_service& hub_settings() noexcept;
    event_log& events() noexcept;

    struct impl;

private:
    explicit hub_service(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

}  // namespace twinhub::service
