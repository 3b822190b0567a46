#include "service/metrics.hpp"

#include "service/hub_service.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>

namespace twinhub::service {

namespace {

const auto process_start_steady = std::chrono::steady_clock::now();
const auto process_start_system = std::chrono::system_clock::now();

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void sample(std::string& out, std::string_view name, double v) {
    char buf[64];
    // Integers print as integers (counters stay exact), other values with enough digits.
    if (v == static_cast<double>(static_cast<std::int64_t>(v)) && v < 9e15 && v > -9e15)
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    else
        std::snprintf(buf, sizeof buf, "%.9g", v);
    out += name;
    out += ' ';
    out += buf;
    out += '\n';
}

void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help, double v) {
    header(out, name, type, help);
    sample(out, name, v);
}

// An Azure Monitor counter: twinhub_<name with . as _>_total, its HELP naming the Azure metric.
void azure_counter(std::string& out, std::string_view azure, std::string_view what, const counter& c) {
    std::string name = "twinhub_";
    for (char ch : azure) name += ch == '.' ? '_' : ch;
    name += "_total";
    std::string help = "Azure Monitor IoT Hub metric ";
    help += azure;
    help += ": ";
    help += what;
    metric(out, name, "counter", help, static_cast<double>(c.get()));
}

template <std::size_t N>
void render_histogram(std::string& out, std::string_view name, std::string_view help, const histogram<N>& h,
                      double scale) {
    header(out, name, "histogram", help);
    std::uint64_t cum = 0;
    char buf[96];
    for (std::size_t i = 0; i <= N; ++i) {
        cum += h.buckets[i].load(std::memory_order_relaxed);
        if (i < N)
            std::snprintf(buf, sizeof buf, "_bucket{le=\"%.9g\"} %llu\n", static_cast<double>(h.bounds[i]) * scale,
                          static_cast<unsigned long long>(cum));
        else
            std::snprintf(buf, sizeof buf, "_bucket{le=\"+Inf\"} %llu\n", static_cast<unsigned long long>(cum));
        out += name;
        out += buf;
    }
    std::string s(name);
    sample(out, s + "_sum", static_cast<double>(h.sum.load(std::memory_order_relaxed)) * scale);
    sample(out, s + "_count", static_cast<double>(cum));
}

// dailyMessageQuotaUsed: the cumulative count minus its value when the UTC day began (taken at the
// first scrape of the day; messages between midnight and that scrape count to the day before).
std::uint64_t quota_today() {
    static std::mutex mu;
    static std::int64_t day = -1;
    static std::uint64_t base = 0;
    const std::uint64_t total = metrics().quota_messages.get();
    const auto d = std::chrono::duration_cast<std::chrono::hours>(std::chrono::system_clock::now().time_since_epoch())
                       .count() / 24;
    std::lock_guard lock(mu);
    if (day < 0) {
        day = d;  // the process's first day counts from its start
    } else if (d != day) {
        day = d;
        base = total;
    }
    return total - base;
}

double rss_bytes() {
    std::ifstream f("/proc/self/statm");
    long long pages = 0, resident = 0;
    if (!(f >> pages >> resident)) return 0;
    return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

double open_fds() {
    std::error_code ec;
    std::size_t n = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++n;
    return n > 0 ? static_cast<double>(n - 1) : 0;  // minus the iterator's own descriptor
}

}  // namespace

hub_metrics& metrics() noexcept {
    static hub_metrics m;
    return m;
}

std::string render_prometheus(const metrics_sources& src) {
    auto& m = metrics();
    std::string out;
    out.reserve(8192);
    azure_counter(out, "d2c.telemetry.ingress.allProtocol", "telemetry messages devices attempted to send",
                  m.d2c_telemetry_ingress_all);
    azure_counter(out, "d2c.telemetry.ingress.success", "telemetry messages stored in the built-in endpoint",
                  m.d2c_telemetry_ingress_success);
    azure_counter(out, "d2c.twin.read.success", "twin reads by devices and modules", m.d2c_twin_read_success);
    azure_counter(out, "d2c.twin.update.success", "reported-property updates by devices and modules",
                  m.d2c_twin_update_success);
    azure_counter(out, "c2d.twin.read.success", "twin reads by the service API", m.c2d_twin_read_success);
    azure_counter(out, "c2d.twin.update.success", "twin updates (tags, desired) by the service API",
                  m.c2d_twin_update_success);
    azure_counter(out, "c2d.methods.success", "direct method calls the device answered", m.c2d_methods_success);
    azure_counter(out, "c2d.methods.failure", "direct method calls that failed (offline, timeout, invalid)",
                  m.c2d_methods_failure);
    azure_counter(out, "c2d.commands.egress.complete.success", "cloud-to-device messages completed by the device",
                  m.c2d_commands_egress_complete);
    azure_counter(out, "twinQueries.success", "twin queries answered", m.twin_queries_success);
    if (src.hub) {
        const auto stats = src.hub->statistics();
        const auto connected = static_cast<double>(src.hub->connected_device_count());
        metric(out, "twinhub_connectedDeviceCount", "gauge",
               "Azure Monitor IoT Hub metric connectedDeviceCount: devices connected now", connected);
        metric(out, "twinhub_devices_connectedDevices_allProtocol", "gauge",
               "Azure Monitor IoT Hub metric devices.connectedDevices.allProtocol: devices connected now", connected);
        metric(out, "twinhub_totalDeviceCount", "gauge",
               "Azure Monitor IoT Hub metric totalDeviceCount: devices in the registry",
               static_cast<double>(stats.total_device_count));
    }
    metric(out, "twinhub_dailyMessageQuotaUsed", "gauge",
           "Azure Monitor IoT Hub metric dailyMessageQuotaUsed: messages counted against the quota since 00:00 UTC "
           "(D2C and C2D in 4 KB blocks, twin reads/updates and query results in 512-byte blocks, methods as "
           "request plus response)",
           static_cast<double>(quota_today()));

    render_histogram(out, "twinhub_store_commit_latency_seconds",
                     "Time from a write's submission to its durable completion by the store", m.commit_latency_us,
                     1e-6);
    render_histogram(out, "twinhub_store_commit_group_size", "Writes completed together by one store transaction",
                     m.commit_group_size, 1.0);
    metric(out, "twinhub_store_commits_in_flight", "gauge", "Writes handed to the store and not completed yet (the "
           "commit queue depth)", static_cast<double>(m.commits_in_flight.load(std::memory_order_relaxed)));
    metric(out, "twinhub_store_commit_failures_total", "counter", "Store commits that failed",
           static_cast<double>(m.commit_failures.get()));
    if (!src.store_file.empty()) {
        std::error_code ec;
        auto wal = std::filesystem::file_size(src.store_file + "-wal", ec);
        metric(out, "twinhub_store_wal_bytes", "gauge", "Size of the store's write-ahead log file",
               ec ? 0.0 : static_cast<double>(wal));
        auto db = std::filesystem::file_size(src.store_file, ec);
        metric(out, "twinhub_store_file_bytes", "gauge", "Size of the store's database file",
               ec ? 0.0 : static_cast<double>(db));
    }
    metric(out, "twinhub_methods_pending", "gauge", "Direct method calls waiting for the device's answer",
           static_cast<double>(src.pending_methods));

    metric(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes", rss_bytes());
    metric(out, "process_open_fds", "gauge", "Open file descriptors", open_fds());
    {
        rusage ru{};
        ::getrusage(RUSAGE_SELF, &ru);
        const double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
        metric(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent", cpu);
    }
    metric(out, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch",
           static_cast<double>(
               std::chrono::duration_cast<std::chrono::seconds>(process_start_system.time_since_epoch()).count()));
    metric(out, "twinhub_uptime_seconds", "gauge", "Seconds since the process started",
           std::chrono::duration<double>(std::chrono::steady_clock::now() - process_start_steady).count());
    return out;
}

}  // namespace twinhub::service
