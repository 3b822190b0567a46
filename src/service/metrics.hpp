// The hub's operational figures, process-wide: Azure Monitor's IoT Hub metrics (counters the heads
// and services bump with one relaxed atomic add, no lock, no allocation) plus store figures (commit
// latency and group size histograms, commits in flight) and the readiness flags the server sets
// when its listeners are bound. render_prometheus() formats everything in Prometheus' text
// exposition format 0.0.4 (served by the HTTPS head at /metrics and by the --metrics-port listener).
//
// Thread safety: every member may be touched from any thread; counters are monotonic relaxed
// atomics (a scrape may see one counter a few increments ahead of another, never a torn value).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace twinhub::service {

class hub_service;

struct counter {
    std::atomic<std::uint64_t> v{0};
    void inc(std::uint64_t n = 1) noexcept { v.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

// A fixed-bucket histogram (upper bounds in the unit observed; the +Inf bucket is implicit).
template <std::size_t N>
struct histogram {
    std::array<std::uint64_t, N> bounds;
    std::array<std::atomic<std::uint64_t>, N + 1> buckets{};  // not cumulative; rendered cumulative
    std::atomic<std::uint64_t> sum{0};
    explicit constexpr histogram(std::array<std::uint64_t, N> b) : bounds(b) {}
    void observe(std::uint64_t x) noexcept {
        std::size_t i = 0;
        while (i < N && x > bounds[i]) ++i;
        buckets[i].fetch_add(1, std::memory_order_relaxed);
        sum.fetch_add(x, std::memory_order_relaxed);
    }
};

struct hub_metrics {
    // Azure Monitor names (docs: "Monitoring Azure IoT Hub data reference").
    counter d2c_telemetry_ingress_all;      // d2c.telemetry.ingress.allProtocol: telemetry attempted
    counter d2c_telemetry_ingress_success;  // d2c.telemetry.ingress.success: telemetry stored
    counter d2c_twin_read_success;          // d2c.twin.read.success: device/module twin GETs
    counter d2c_twin_update_success;        // d2c.twin.update.success: reported patches
    counter c2d_twin_read_success;          // c2d.twin.read.success: service twin GETs
    counter c2d_twin_update_success;        // c2d.twin.update.success: service twin PATCH/PUT
    counter c2d_methods_success;            // c2d.methods.success: method calls answered
    counter c2d_methods_failure;            // c2d.methods.failure: method calls that failed
    counter c2d_commands_egress_complete;   // c2d.commands.egress.complete.success
    counter c2d_commands_sent;              // (quota only) C2D messages accepted for delivery
    counter twin_queries_success;           // twinQueries.success
    counter quota_messages;                 // dailyMessageQuotaUsed, cumulative (see render)

    // Store figures (the write pipeline): latency from submit to completion, in microseconds, and
    // the number of batches completed together in one store transaction.
    histogram<14> commit_latency_us{{100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
                                     500000, 1000000, 2500000}};
    histogram<11> commit_group_size{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}};
    std::atomic<std::int64_t> commits_in_flight{0};
    counter commit_failures;
    std::atomic<bool> last_commit_ok{true};

    // Readiness (set by the server once each listener is bound, cleared when it stops).
    std::atomic<bool> https_bound{false}, mqtt_bound{false}, amqp_bound{false};
};

// The one instance of the process.
hub_metrics& metrics() noexcept;

// IoT Hub's quota units: D2C and C2D messages count in 4 KB blocks, twin reads/updates and query
// results in 512-byte blocks; at least one.
inline std::uint64_t quota_blocks(std::size_t bytes, std::size_t block) noexcept {
    return bytes == 0 ? 1 : (bytes + block - 1) / block;
}

// What render_prometheus needs besides the counters; any pointer may be null.
struct metrics_sources {
    const hub_service* hub = nullptr;   // totalDeviceCount, connectedDeviceCount
    std::string store_file;             // its -wal file's size; empty: not reported
    std::size_t pending_methods = 0;    // direct-method calls waiting for the device
};

// Prometheus text format 0.0.4 (Content-Type: text/plain; version=0.0.4).
std::string render_prometheus(const metrics_sources& src);

}  // namespace twinhub::service
