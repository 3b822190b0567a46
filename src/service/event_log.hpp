// The telemetry append path: device-to-cloud messages into the built-in Event Hubs-compatible
// endpoint log (and custom endpoints), group-committed through the write pipeline. Routing is
// decided by the event_router (telemetry_service); the registry and twin services hand it
// IoT Hub's generated events (lifecycle, twin changes) through router().
//
// Thread safety: every member may be called from any thread; set_router before serving. Append
// handlers run on the store's thread. The pipeline and the notifier must outlive the event_log.
#pragma once

#include "service/change_notifier.hpp"
#include "service/write_pipeline.hpp"
#include "store/store.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace twinhub::service {

// Message routing (telemetry_service): decides where device-to-cloud messages go and produces
// IoT Hub's generated events. Set before serving.
class event_router {
public:
    virtual ~event_router() = default;
    // Telemetry as the heads hand it in -> the records to append, each with its stream (a partition
    // of the built-in endpoint or of a custom endpoint, store::stream_base) and its enrichments;
    // may return none (a message no route wants). Called on the caller's thread; must not block.
    virtual std::vector<store::event_record> route_telemetry(std::vector<store::event_record> events) = 0;
    // Whether a route wants twin change (twinChangeEvents) or lifecycle (deviceLifecycleEvents)
    // events: the hub builds them only then.
    virtual bool wants_twin_changes() const = 0;
    virtual bool wants_lifecycle() const = 0;
    // A committed twin change: body is IoT Hub's {"version", "tags"?, "properties": {...}};
    // op_type updateTwin or replaceTwin. Called after commit, on the store's thread.
    virtual void on_twin_change(const store::identity_key& id, std::string op_type, boost::json::object body) = 0;
    // A committed identity creation or deletion: op_type createDeviceIdentity, deleteDeviceIdentity,
    // createModuleIdentity, deleteModuleIdentity; body is the identity's twin (service shape).
    virtual void on_lifecycle(const store::identity_key& id, std::string op_type, boost::json::object body) = 0;
};

class event_log {
public:
    // partitions and created_ns: the built-in endpoint's shape, fixed when the hub was created.
    event_log(write_pipeline& p, const change_notifier& n, std::uint32_t partitions, std::int64_t created_ns)
        : pipeline_(p), notifier_(n), partitions_(partitions), created_ns_(created_ns) {}

    void set_router(event_router* r) { router_ = r; }  // before serving; nullptr: all to the built-in endpoint
    event_router* router() const noexcept { return router_; }

    std::uint32_t partition_count() const noexcept { return partitions_; }
    std::int64_t created_ns() const noexcept { return created_ns_; }

    // Appends a batch of events (routed by the event_router, else each to its identity's partition
    // of the built-in endpoint) in one commit; observers hear of each partition after the commit,
    // after `done`. Events not stamped by the head get the hub's enqueue time.
    void append(std::vector<store::event_record> events, std::function<void(result<void>)> done);
    // Appends records whose partition (stream) is already set, in one commit (generated events).
    // No records: `done` at once, successfully (as IoT Hub acknowledges a message no route wants).
    void append_routed(std::vector<store::event_record> events, std::function<void(result<void>)> done);
    // Retention: one trim op per stream, for events enqueued before `before_ns`; at most max_rows each.
    void trim(const std::vector<std::uint32_t>& streams, std::int64_t before_ns, std::uint32_t max_rows,
              std::function<void(result<void>)> done);
    // Reads the log (the store's read connection; callable from any thread, blocks on I/O).
    result<std::vector<store::event_record>> read(std::uint32_t partition, std::uint64_t from,
                                                  std::size_t max_count) const;
    result<store::store::partition_info> partition_info(std::uint32_t partition) const;

private:
    write_pipeline& pipeline_;
    const change_notifier& notifier_;
    const std::uint32_t partitions_;
    const std::int64_t created_ns_;
    event_router* router_ = nullptr;
};

}  // namespace twinhub::service
