// The read side of the built-in Event Hubs-compatible endpoint that is not the log itself:
// consumer groups (durable, as hub settings) and retention (a background trimmer). The log lives
// in the store (store::event_record, per-partition sequence numbers); writes go through
// hub_service::append_event(s), which picks the partition.
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
// Thread safety: every member may be called from any thread. The hub_service must outlive this.
#pragma once

#include "common/errc.hpp"
#include "service/hub_service.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace twinhub::service {

struct telemetry_options {
    std::chrono::seconds retention{std::chrono::hours(24)};
    std::chrono::milliseconds trim_interval{0};  // 0: retention / 100, between 1 s and 60 s
    std::uint32_t trim_batch_rows = 2000;        // rows per partition per commit
};

inline constexpr std::size_t max_consumer_groups = 20;
inline constexpr std::chrono::seconds max_retention{std::chrono::hours(24 * 7)};

// A consumer group name as Event Hubs accepts it; an error message naming the rule otherwise.
result<void> validate_consumer_group_name(std::string_view name);

class telemetry_service {
public:
    telemetry_service(hub_service& hub, telemetry_options opts);
    ~telemetry_service();  // stops the trimmer and waits for its commit
    telemetry_service(const telemetry_service&) = delete;
    telemetry_service& operator=(const telemetry_service&) = delete;

    std::uint32_t partition_count() const noexcept { return hub_.event_partition_count(); }
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

private:
    void run_trimmer();

    hub_service& hub_;
    telemetry_options opts_;
    std::mutex m_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread trimmer_;
};

}  // namespace twinhub::service
