// The identity registry (spec 3): devices and modules (create, update with If-Match, get, list,
// delete), bulk import (spec 3.9) and registry statistics.
//
// Writes are validated against the head-or-committed records of the record cache, committed
// through the write pipeline conditioned on the record's etag, and become readable before their
// handler runs. A committed disable or delete revokes the identity (and a device's modules), a
// committed change of authentication re-checks its credentials (change_notifier); deletes drop the
// identity's MQTT session records; routes that want lifecycle events get them (event_log's router).
//
// Thread safety: every member may be called from any thread. Everything passed to the constructor
// must outlive the registry_service.
#pragma once

#include "common/errc.hpp"
#include "registry/identity.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::service {

class change_notifier;
class event_log;
class record_cache;
class session_service;
class write_pipeline;

struct registry_options {
    std::size_t max_modules_per_device = 50;
    std::size_t max_list = 1000;  // identities returned by one list call
    // On update, an empty symmetric key is generated anew (false, IoT Hub's behaviour) or keeps the
    // stored key (true). Spec 3.5 left it unverified; IoT Hub regenerates: az iot's live-hub tests
    // reset a device's and a module's keys by updating them with primaryKey/secondaryKey "", and the
    // Node SDK documents that Registry.update without the current authentication resets it.
    bool keep_keys_on_empty_update = false;
    std::size_t max_bulk_entries = 100;  // entries of one bulk request (spec 3.9)
};

struct registry_statistics {
    std::int64_t total_device_count = 0;
    std::int64_t enabled_device_count = 0;
    std::int64_t disabled_device_count = 0;
};

// One entry of POST /devices (spec 3.9), parsed by the REST head.
struct bulk_entry {
    std::string import_mode;  // lower-cased: create, update, updateifmatchetag, delete, deleteifmatchetag, ...
    std::string etag;         // for *IfMatchETag modes
    registry::device_identity device;
};

struct bulk_error {
    std::string device_id;
    errc code;
    std::string message;
    std::string operation;  // the entry's importMode as sent
};

struct bulk_result {
    bool is_successful = true;
    std::vector<bulk_error> errors;
};

class registry_service {
public:
    template <class T>
    using handler = std::function<void(result<T>)>;

    registry_service(record_cache& c, write_pipeline& p, const change_notifier& n, session_service& sessions,
                     const event_log& events, registry_options o)
        : cache_(c), pipeline_(p), notifier_(n), sessions_(sessions), events_(events), opts_(o) {}

    // ---- devices (spec 3.2 rows 1-5, 3.6) ----
    // Create-only: fails with device_already_exists. Empty sas keys are generated; new generationId,
    // etag, twin.
    void create_device(registry::device_identity req, handler<registry::device_identity> done);
    // Update with If-Match (already known to be present): device_not_found, precondition_failed,
    // invalid_argument (immutable fields). Keeps generationId; an empty sas key is generated anew
    // (send the current keys to keep them), unless registry_options::keep_keys_on_empty_update.
    void update_device(registry::device_identity req, std::string if_match, handler<registry::device_identity> done);
    result<registry::device_identity> get_device(std::string_view device_id) const;
    std::vector<registry::device_identity> list_devices(std::size_t top) const;
    // Deletes the device, its modules and all their twins; if_match empty or "*" = unconditional.
    void delete_device(std::string device_id, std::string if_match, handler<void> done);
    registry_statistics statistics() const;

    // ---- modules (spec 3.2 rows 6-10) ----
    void create_module(registry::module_identity req, handler<registry::module_identity> done);
    void update_module(registry::module_identity req, std::string if_match, handler<registry::module_identity> done);
    result<registry::module_identity> get_module(std::string_view device_id, std::string_view module_id) const;
    result<std::vector<registry::module_identity>> list_modules(std::string_view device_id) const;
    void delete_module(std::string device_id, std::string module_id, std::string if_match, handler<void> done);

    // ---- bulk (spec 3.9, registry_bulk.cpp) ----
    // Each entry is applied on its own (partial failure is reported in bulk_result, per entry).
    // The whole request fails with device_defined_multiple_times when an id appears twice, and with
    // invalid_argument when it holds more than max_bulk_entries; then nothing is applied. Modes:
    // create, createorupdate, update, updateifmatchetag, delete, deleteifmatchetag (others fail
    // their entry with invalid_argument).
    void bulk(std::vector<bulk_entry> entries, handler<bulk_result> done);

private:
    void do_create_device(registry::device_identity req, handler<registry::device_identity> done);
    void do_delete_device(std::string device_id, std::string if_match, handler<void> done);
    void do_create_module(registry::module_identity req, handler<registry::module_identity> done);
    void do_delete_module(std::string device_id, std::string module_id, std::string if_match, handler<void> done);

    record_cache& cache_;
    write_pipeline& pipeline_;
    const change_notifier& notifier_;
    session_service& sessions_;
    const event_log& events_;
    registry_options opts_;
};

}  // namespace twinhub::service
