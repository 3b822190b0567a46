// query_bench: twin query latency over a large fleet (issue 7). Loads N device twins into a
// hub_service over the memory store (bulk create, 100 per request, then one tags patch and one
// reported patch per device), attaches a query_engine, and measures p50/p99 latency of the first
// page (100 items) of: an equality on a tag, a range on a reported property, IS_DEFINED, and a
// GROUP BY over the whole fleet; then queries/s of the tag equality from 2 threads.
//
//   query_bench [--devices 1000000] [--runs 50] [--seconds 10]
#include "query/query_engine.hpp"
#include "service/hub_service.hpp"
#include "store/memory_store.hpp"
#include "common/log.hpp"

#include <boost/json/parse.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace twinhub;
using clock_type = std::chrono::steady_clock;

namespace {

double ms_since(clock_type::time_point t) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

long rss_mib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6) / 1024;
    return -1;
}

// Keeps at most `window` asynchronous writes in flight.
class window {
public:
    explicit window(std::size_t n) : max_(n) {}
    template <class T>
    service::handler<T> slot() {
        std::unique_lock l(m_);
        cv_.wait(l, [&] { return in_flight_ < max_; });
        ++in_flight_;
        return [this](result<T> r) {
            if (!r) failures_.fetch_add(1);
            std::lock_guard g(m_);
            --in_flight_;
            cv_.notify_all();
        };
    }
    void drain() {
        std::unique_lock l(m_);
        cv_.wait(l, [&] { return in_flight_ == 0; });
    }
    std::size_t failures() const { return failures_.load(); }

private:
    std::mutex m_;
    std::condition_variable cv_;
    std::size_t in_flight_ = 0;
    std::size_t max_;
    std::atomic<std::size_t> failures_{0};
};

struct stats {
    double first_ms = 0, p50 = 0, p99 = 0, max = 0;
    std::size_t items = 0;
};

stats measure(query::query_engine& e, const std::string& sql, int runs) {
    stats s;
    auto t0 = clock_type::now();
    auto first = e.run(sql, 100, "");
    s.first_ms = ms_since(t0);
    if (!first) {
        std::fprintf(stderr, "query failed: %s\n", first.error().message.c_str());
        std::exit(1);
    }
    s.items = first->items.size();
    std::vector<double> lat;
    for (int i = 0; i < runs; ++i) {
        auto t = clock_type::now();
        auto r = e.run(sql, 100, "");
        lat.push_back(ms_since(t));
    }
    std::sort(lat.begin(), lat.end());
    auto pct = [&](double p) { return lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * lat.size()))]; };
    s.p50 = pct(0.50);
    s.p99 = pct(0.99);
    s.max = lat.back();
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t devices = 1000000;
    int runs = 50;
    int seconds = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--devices") devices = std::stoul(argv[i + 1]);
        else if (a == "--runs") runs = std::stoi(argv[i + 1]);
        else if (a == "--seconds") seconds = std::stoi(argv[i + 1]);
    }
    log::set_level(log::level::warn);
    auto st = store::make_memory_store();
    auto hub_r = service::hub_service::open(*st, {});
    if (!hub_r) {
        std::fprintf(stderr, "open: %s\n", hub_r.error().message.c_str());
        return 1;
    }
    auto& hub = **hub_r;

    // ---- load ----
    auto t_load = clock_type::now();
    window w(64);
    for (std::size_t base = 0; base < devices; base += 100) {
        std::vector<service::bulk_entry> batch;
        for (std::size_t i = base; i < std::min(devices, base + 100); ++i) {
            service::bulk_entry e;
            e.import_mode = "create";
            e.device.device_id = "dev-" + std::to_string(i);
            batch.push_back(std::move(e));
        }
        hub.bulk(std::move(batch), w.slot<service::bulk_result>());
    }
    w.drain();
    const double create_s = ms_since(t_load) / 1000;
    window pw(1024);
    static const char* regions[] = {"US", "EU", "AS", "SA", "AF", "OC", "NA", "ME", "IN", "CN"};
    for (std::size_t i = 0; i < devices; ++i) {
        store::identity_key k{"dev-" + std::to_string(i), {}};
        boost::json::object tags{{"region", regions[i % 10]}, {"site", "site-" + std::to_string(i % 10000)}};
        hub.patch_twin(k, boost::json::object{{"tags", tags}}, "*", pw.slot<boost::json::object>());
        boost::json::object rep{{"counter", i}, {"temp", static_cast<double>(i % 1000) / 10},
                                {"fw", i % 3 == 0 ? "1.0" : "2.0"}};
        if (i % 10000 == 7) rep["alarm"] = "overheat";
        hub.patch_reported(k, rep, pw.slot<std::int64_t>());
    }
    pw.drain();
    const double load_s = ms_since(t_load) / 1000;
    std::printf("loaded %zu devices through hub_service (bulk create 100/request + tags patch + reported patch): "
                "create %.1f s, total %.1f s, failures %zu, rss %ld MiB\n",
                devices, create_s, load_s, w.failures() + pw.failures(), rss_mib());

    auto t_ix = clock_type::now();
    query::query_engine engine(hub.twins());
    std::printf("query index attached (loads every twin): %.1f s, rss %ld MiB\n", ms_since(t_ix) / 1000, rss_mib());

    struct q {
        const char* name;
        std::string sql;
        int runs;
    };
    const std::vector<q> queries = {
        {"equality on a tag (100 matches)", "SELECT * FROM devices WHERE tags.site = 'site-4242'", runs},
        {"range on a reported property (100 matches)", "SELECT * FROM devices WHERE properties.reported.counter >= " + std::to_string(devices - 100), runs},
        {"IS_DEFINED (1 in 10,000)", "SELECT * FROM devices WHERE IS_DEFINED(properties.reported.alarm)", runs},
        {"tag equality + range, COUNT()", "SELECT COUNT() AS n FROM devices WHERE tags.region = 'EU' AND properties.reported.temp >= 50", runs},
        {"GROUP BY over the fleet", "SELECT tags.region AS region, COUNT() AS n FROM devices GROUP BY tags.region", std::max(5, runs / 5)},
        {"GROUP BY + AVG over the fleet", "SELECT properties.reported.fw AS fw, COUNT() AS n, AVG(properties.reported.temp) AS t FROM devices GROUP BY properties.reported.fw", std::max(5, runs / 5)},
    };
    std::printf("\n| query | first run (builds columns) ms | p50 ms | p99 ms | max ms | items |\n|---|---:|---:|---:|---:|---:|\n");
    for (auto& x : queries) {
        auto s = measure(engine, x.sql, x.runs);
        std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %zu |\n", x.name, s.first_ms, s.p50, s.p99, s.max, s.items);
    }
    std::printf("rss after columns: %ld MiB\n", rss_mib());

    // ---- throughput: 2 threads, tag equality ----
    std::atomic<std::size_t> done{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    auto t_q = clock_type::now();
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            std::size_t i = static_cast<std::size_t>(t);
            while (!stop.load()) {
                auto r = engine.run("SELECT * FROM devices WHERE tags.site = 'site-" + std::to_string(i++ % 10000) + "'", 100, "");
                if (r) done.fetch_add(1);
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    stop = true;
    for (auto& th : threads) th.join();
    const double qps = static_cast<double>(done.load()) / (ms_since(t_q) / 1000);
    std::printf("\nthroughput (2 threads, tag equality over %zu twins): %.0f queries/s\n", devices, qps);

    // ---- read-your-writes under load: a patch acknowledged, then a query that must see it ----
    std::vector<double> ryw;
    for (int i = 0; i < 20; ++i) {
        std::mutex m;
        std::condition_variable cv;
        bool ok = false;
        store::identity_key k{"dev-" + std::to_string(i * 1000), {}};
        hub.patch_twin(k, boost::json::parse(R"({"tags":{"marker":)" + std::to_string(i) + "}}"), "*",
                       [&](result<boost::json::object>) {
                           std::lock_guard g(m);
                           ok = true;
                           cv.notify_all();
                       });
        {
            std::unique_lock l(m);
            cv.wait(l, [&] { return ok; });
        }
        auto t = clock_type::now();
        auto r = engine.run("SELECT deviceId FROM devices WHERE tags.marker = " + std::to_string(i), 100, "");
        ryw.push_back(ms_since(t));
        if (!r || r->items.size() != 1) {
            std::fprintf(stderr, "read-your-writes violated at %d\n", i);
            return 1;
        }
    }
    std::sort(ryw.begin(), ryw.end());
    std::printf("read-your-writes: 20/20 acknowledged patches visible to the next query (p50 %.1f ms)\n", ryw[10]);
    st->close();
    return 0;
}
