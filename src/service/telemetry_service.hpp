// The read side of the built-in Event Hubs-compatible endpoint that is not the log itself:
// consumer groups (durable, as hub settings) and retention (a background trimmer). The log lives
// in the store (store::event_record, per-partition sequence numbers); writes go through
// event_log::append (hub_service::append_event(s)), which picks the partition.
//
// Consumer groups: "$Default" always exists and cannot be deleted; others are created and deleted
// at run time (REST, CLI) and survive restarts. Names follow Event Hubs: 1-50 characters, letters,
// digits, '.', '-', '_', starting and ending with a letter or digit; at most max_consumer_groups
// including $Default (Azure's standard tier allows 20).
//
// Retention: events older than the retention period (default 1 day, at most 7 days as on Azure;
// shorter periods are a twinhub extension for tests) are deleted in small batches by a background
// thread, each batch one ordinary store commit, so writers are never blocked for long. A
// partition's last event is kept so that sequence numbers are never reused.
//
// Thread safety: every member may be called from any thread. The event_log, settings and twin
// services (the hub_service) must outlive this.
#pragma once

#include "common/errc.hpp"
#include "service/event_log.hpp"
#include "service/hub_service.hpp"
#include "service/settings_service.hpp"
#include "service/twin_service.hpp"

#include <boost/json/value.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace twinhub::telemetry {
class routing_table;
class router;
}

namespace twinhub::service {

struct telemetry_options {
    std::chrono::seconds retention{std::chrono::hours(24)};
    std::chrono::milliseconds trim_interval{0};  // 0: retention / 100, between 1 s and 60 s
    std::uint32_t trim_batch_rows = 2000;        // rows per partition per commit
    std::string hub_name = "twinhub";            // $iothubname, hubName of generated events
    // The routing configuration (ARM "routing" JSON: endpoints.eventHubs, routes, fallbackRoute,
    // enrichments), read at start and re-read when it changes (polled each second). Empty: none.
    std::filesystem::path routing_file;
};

inline constexpr std::size_t max_consumer_groups = 20;
inline constexpr std::chrono::seconds max_retention{std::chrono::hours(24 * 7)};

// A consumer group name as Event Hubs accepts it; an error message naming the rule otherwise.
result<void> validate_consumer_group_name(std::string_view name);

class telemetry_service final : public event_router {
public:
    // Registers itself as the hub's event_router. Throws std::runtime_error when the routing file
    // exists and is invalid (the message names the member).
    telemetry_service(event_log& log, settings_service& settings, twin_service& twins, telemetry_options opts);
    // The same over the hub's services.
    telemetry_service(hub_service& hub, telemetry_options opts)
        : telemetry_service(hub.events(), hub.hub_settings(), hub.twins(), std::move(opts)) {}
    ~telemetry_service();  // stops the trimmer and waits for its commit
    telemetry_service(const telemetry_service&) = delete;
    telemetry_service& operator=(const telemetry_service&) = delete;

    std::uint32_t partition_count() const noexcept { return log_.partition_count(); }
    std::chrono::seconds retention() const noexcept { return opts_.retention; }

    struct consumer_group {
        std::string name;
        std::int64_t created_ns = 0;
    };
    // $Default first, then the others by name.
    std::vector<consumer_group> consumer_groups() const;
    bool has_consumer_group(std::string_view name) const;  // case-insensitive, as Event Hubs
    // Create or keep (idempotent, as ARM's PUT): invalid_argument for a bad name or when the hub
    // already has max_consumer_groups. Delete: not_found; invalid_argument for $Default.
    void create_consumer_group(std::string name, handler<consumer_group> done);
    void delete_consumer_group(std::string name, handler<void> done);

    // One trim pass now (tests; the background thread calls the same). Completes when done.
    result<void> trim_now();

    // ---- routing (telemetry_routing.cpp) ----
    // Replaces the routing (ARM "routing" JSON); on failure the current one stays. New custom
    // endpoints get a stable index (kept in the hub settings).
    result<void> configure_routing(const boost::json::value& routing);
    // The endpoint a reader names: 0 for the built-in one (the Event Hub name or "messages/events",
    // which the caller checks), 1.. for custom endpoints by name (case-insensitive); nullopt when unknown.
    std::optional<std::uint32_t> custom_endpoint_index(std::string_view name) const;
    // Re-reads the routing file when its modification time changed (the trimmer thread calls it).
    void reload_routing_if_changed();

    // event_router
    std::vector<store::event_record> route_telemetry(std::vector<store::event_record> events) override;
    bool wants_twin_changes() const override;
    bool wants_lifecycle() const override;
    void on_twin_change(const store::identity_key& id, std::string op_type, boost::json::object body) override;
    void on_lifecycle(const store::identity_key& id, std::string op_type, boost::json::object body) override;

private:
    void run_trimmer();
    void generated_event(const store::identity_key& id, int source, const char* schema, std::string op_type,
                         boost::json::object body);
    std::uint32_t stream_of(const std::string& endpoint, const store::identity_key& id) const;

    std::unique_ptr<telemetry::routing_table> routing_;
    mutable std::mutex endpoints_m_;
    std::map<std::string, std::uint32_t> endpoint_index_;  // lower-case custom endpoint name -> index
    std::atomic<bool> wants_twin_{false}, wants_lifecycle_{false}, needs_twin_{false};
    std::filesystem::file_time_type routing_mtime_{};

    event_log& log_;
    settings_service& settings_;
    twin_service& twins_;
    telemetry_options opts_;
    std::mutex m_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread trimmer_;
};

}  // namespace twinhub::service
