// Twins (spec 4): the service's twin reads and writes (PATCH, PUT), the device's view and its
// reported patches, and the walk the query index is built from.
//
// A twin write is validated against the head-or-committed document, committed through the write
// pipeline conditioned on the twin's version, then becomes readable; a desired change reaches the
// change_notifier's observers after the commit, in $version order, before the write's handler.
// Routes that want twin change events get them through the event_log's router.
//
// Thread safety: every member may be called from any thread. The cache, pipeline, notifier and
// event_log must outlive the twin_service.
#pragma once

#include "common/errc.hpp"
#include "store/store.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace twinhub::twin {
struct twin_document;
struct desired_change;
}  // namespace twinhub::twin

namespace twinhub::service {

class change_notifier;
class change_observer;
class event_log;
class record_cache;
class write_pipeline;
struct device_entry;

class twin_service {
public:
    twin_service(record_cache& c, write_pipeline& p, change_notifier& n, event_log& events)
        : cache_(c), pipeline_(p), notifier_(n), events_(events) {}

    // The service twin JSON of 4.1 (identity mirrors, etag, version, tags, properties with $metadata).
    result<boost::json::object> get_twin(const store::identity_key& id) const;
    // PATCH: if_match empty or wildcard = unconditional; else must match the twin etag.
    void patch_twin(store::identity_key id, boost::json::value body, std::string if_match,
                    std::function<void(result<boost::json::object>)> done);
    void replace_twin(store::identity_key id, boost::json::value body, std::string if_match,
                      std::function<void(result<boost::json::object>)> done);
    // Automatic device management (jobs/configuration_service.hpp): in one write, merges
    // `desired_patch` (a PATCH body as above; null: none) and replaces the twin's "configurations"
    // section. Unconditional; a twin twin version +1 even when only the section changed.
    void apply_configurations(store::identity_key id, boost::json::value desired_patch,
                              boost::json::object configurations,
                              std::function<void(result<boost::json::object>)> done);
    // Device side: flat {"desired":{..,"$version"},"reported":{..,"$version"}}.
    result<boost::json::object> get_device_twin_view(const store::identity_key& id) const;
    // Reported patch from the device; completes with the new reported $version.
    void patch_reported(store::identity_key id, boost::json::value patch, std::function<void(result<std::int64_t>)> done);
    // Visits every twin (devices, or modules) under a consistent read view, as service twin JSON.
    // The visitor returns false to stop. It runs under the cache's shared lock: it must not write.
    void for_each_twin(bool modules, const std::function<bool(const boost::json::object&)>& visit) const;

    // The one desired-change notifier (see change_notifier.hpp); observers must outlive their
    // registration.
    void add_observer(change_observer* o);
    void remove_observer(change_observer* o);

private:
    using mutation = std::function<result<std::optional<twin::desired_change>>(twin::twin_document&)>;
    template <class T>
    void write_twin(store::identity_key id, std::string if_match, const mutation& mutate,
                    std::function<T(const twin::twin_document&, const device_entry&)> make_result,
                    std::function<void(result<T>)> done);

    record_cache& cache_;
    write_pipeline& pipeline_;
    change_notifier& notifier_;
    event_log& events_;
};

}  // namespace twinhub::service
