#include "service/event_log.hpp"

#include "common/time.hpp"

#include <algorithm>

namespace twinhub::service {

void event_log::append(std::vector<store::event_record> events, std::function<void(result<void>)> done) {
    const auto stamp = std::chrono::duration_cast<std::chrono::nanoseconds>(now().time_since_epoch()).count();
    for (auto& e : events) {
        if (e.enqueued_time_ns == 0) e.enqueued_time_ns = stamp;  // the hub's enqueue time, unless the head stamped it at arrival
        e.partition = store::partition_of(e.source, partitions_);
    }
    if (router_) events = router_->route_telemetry(std::move(events));
    append_routed(std::move(events), std::move(done));
}

void event_log::append_routed(std::vector<store::event_record> events, std::function<void(result<void>)> done) {
    if (events.empty()) return done(result<void>{});  // no route wanted it: acknowledged, as on IoT Hub
    std::vector<std::uint32_t> touched;
    store::write_batch b;
    for (auto& e : events) {
        if (std::find(touched.begin(), touched.end(), e.partition) == touched.end()) touched.push_back(e.partition);
        b.append_event(std::move(e));
    }
    pipeline_.commit_plain(std::move(b), [this, touched = std::move(touched), done = std::move(done)](result<void> r) {
        const bool ok = static_cast<bool>(r);
        done(std::move(r));
        if (!ok) return;
        for (auto p : touched) notifier_.events_appended(p);
    });
}

void event_log::trim(const std::vector<std::uint32_t>& streams, std::int64_t before_ns, std::uint32_t max_rows,
                     std::function<void(result<void>)> done) {
    store::write_batch b;
    for (auto p : streams) b.trim_events(p, before_ns, max_rows);
    pipeline_.commit_plain(std::move(b), std::move(done));
}

result<std::vector<store::event_record>> event_log::read(std::uint32_t partition, std::uint64_t from,
                                                         std::size_t max_count) const {
    return pipeline_.store().read_events(partition, from, max_count);
}

result<store::store::partition_info> event_log::partition_info(std::uint32_t partition) const {
    return pipeline_.store().event_partition_info(partition);
}

}  // namespace twinhub::service
