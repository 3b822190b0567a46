// Durable twin patches per second through the SQLite store with 1, 16 and 256 concurrent writers,
// beside the one-fsync-per-write floor measured in the same run on the same file system.
//
// Each writer owns one device twin: it applies a reported patch to its in-memory copy (as the hub
// does), commits it conditioned on the previous version, waits for the durable completion, and
// repeats. The floor is a single writer appending a small record and calling fdatasync per write,
// which is what a store without group commit could at best do.
//
// With --postgres URL, each point runs on SQLite and then on the PostgreSQL store at URL (a
// database of a server on this machine: bench/README or docs/benchmarks.md run it with
// tests/pgtest's pg_cluster_run), and the table has a column for each.
//
// Usage: store_bench [--seconds S] [--writers 1,16,256] [--dir DIR] [--postgres URL]
#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"

#include <boost/json/object.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace twinhub;
using steady = std::chrono::steady_clock;

namespace {

double fsync_floor(const std::filesystem::path& dir, double seconds) {
    auto path = dir / "fsync-floor.bin";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        std::perror("open");
        std::exit(1);
    }
    char record[128];
    std::memset(record, 'r', sizeof record);
    std::uint64_t n = 0;
    auto start = steady::now();
    auto end = start + std::chrono::duration<double>(seconds);
    while (steady::now() < end) {
        std::memcpy(record, &n, sizeof n);
        if (::write(fd, record, sizeof record) != static_cast<ssize_t>(sizeof record) || ::fdatasync(fd) != 0) {
            std::perror("write/fdatasync");
            std::exit(1);
        }
        ++n;
    }
    double elapsed = std::chrono::duration<double>(steady::now() - start).count();
    ::close(fd);
    std::filesystem::remove(path);
    return static_cast<double>(n) / elapsed;
}

struct point {
    int writers;
    double per_second;
    double mean_latency_ms;
};

// `pg_url` empty: SQLite in DIR/wN; else the PostgreSQL store there (devices named per point).
point run_point(const std::filesystem::path& dir, int writers, double seconds, const std::string& pg_url = {}) {
    auto sub = dir / ("w" + std::to_string(writers));
    std::filesystem::create_directories(sub);
    auto opened = pg_url.empty() ? store::open_sqlite_store((sub / "store.db").string()) : store::open_postgres_store(pg_url);
    const std::string prefix = "w" + std::to_string(writers) + "-bench-";
    if (!opened) {
        std::fprintf(stderr, "store_bench: %s\n", opened.error().message.c_str());
        std::exit(1);
    }
    auto& s = **opened;

    std::vector<twin::twin_document> twins;
    {
        store::write_batch b;
        for (int i = 0; i < writers; ++i) {
            registry::device_identity d;
            d.device_id = prefix + std::to_string(i);
            d.etag = 1;
            auto t = twin::new_twin(now());
            t.desired["telemetryInterval"] = 30;
            t.tags["site"] = "bench";
            b.put_device(d, store::expect::absent());
            b.put_twin({d.device_id, ""}, t, store::expect::absent());
            twins.push_back(std::move(t));
        }
        if (auto r = s.commit_sync(std::move(b)); !r) {
            std::fprintf(stderr, "store_bench: seeding: %s\n", r.error().message.c_str());
            std::exit(1);
        }
    }

    std::atomic<bool> go{false}, stop{false};
    std::atomic<std::uint64_t> done{0}, failed{0};
    std::atomic<std::int64_t> latency_ns{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < writers; ++i) {
        ts.emplace_back([&, i] {
            std::string id = prefix + std::to_string(i);
            auto doc = std::move(twins[static_cast<std::size_t>(i)]);
            std::uint64_t mine = 0;
            std::int64_t lat = 0;
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            while (!stop.load(std::memory_order_relaxed)) {
                auto t0 = steady::now();
                auto next = doc;
                boost::json::object patch{{"temperature", 20.5 + static_cast<double>(mine % 10)},
                                          {"firmware", "1.2.3"},
                                          {"sequence", static_cast<std::int64_t>(mine)}};
                if (!twin::apply_reported_patch(next, patch, now())) std::abort();
                store::write_batch b;
                b.put_twin({id, ""}, next, store::expect::revision(static_cast<std::uint64_t>(doc.version)));
                if (auto r = s.commit_sync(std::move(b)); !r) {
                    ++failed;
                    std::fprintf(stderr, "store_bench: %s\n", r.error().message.c_str());
                    break;
                }
                doc = std::move(next);
                ++mine;
                lat += (steady::now() - t0).count();
            }
            done += mine;
            latency_ns += lat;
        });
    }
    auto start = steady::now();
    go.store(true, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& t : ts) t.join();
    double elapsed = std::chrono::duration<double>(steady::now() - start).count();
    s.close();
    if (failed) std::exit(1);
    double n = static_cast<double>(done.load());
    return {writers, n / elapsed, n > 0 ? static_cast<double>(latency_ns.load()) / n / 1e6 : 0};
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = 5;
    std::vector<int> writer_counts{1, 16, 256};
    std::filesystem::path dir;
    std::string pg_url;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--seconds" && i + 1 < argc) {
            seconds = std::atof(argv[++i]);
        } else if (a == "--writers" && i + 1 < argc) {
            writer_counts.clear();
            std::stringstream ss(argv[++i]);
            for (std::string w; std::getline(ss, w, ',');) writer_counts.push_back(std::atoi(w.c_str()));
        } else if (a == "--dir" && i + 1 < argc) {
            dir = argv[++i];
        } else if (a == "--postgres" && i + 1 < argc) {
            pg_url = argv[++i];
        } else {
            std::fprintf(stderr, "usage: %s [--seconds S] [--writers 1,16,256] [--dir DIR] [--postgres URL]\n", argv[0]);
            return 2;
        }
    }
    bool own_dir = dir.empty();
    if (own_dir) {
        std::string tmpl = (std::filesystem::temp_directory_path() / "twinhub-store-bench-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) return 1;
        dir = tmpl;
    }
    std::filesystem::create_directories(dir);

    std::printf("store_bench: %.1f s per point, data in %s, %u hardware threads\n", seconds, dir.c_str(),
                std::thread::hardware_concurrency());
    double floor = fsync_floor(dir, seconds);
    std::printf("fsync floor (one fdatasync per 128-byte append, 1 writer): %.0f writes/s\n\n", floor);
    if (!pg_url.empty()) {
        std::printf("| writers | SQLite patches/s | SQLite latency (ms) | PostgreSQL patches/s | PostgreSQL latency (ms) |\n");
        std::printf("|--------:|-----------------:|--------------------:|---------------------:|------------------------:|\n");
        for (int w : writer_counts) {
            auto sq = run_point(dir, w, seconds);
            auto pg = run_point(dir, w, seconds, pg_url);
            std::printf("| %7d | %16.0f | %19.2f | %20.0f | %23.2f |\n", w, sq.per_second, sq.mean_latency_ms,
                        pg.per_second, pg.mean_latency_ms);
            std::fflush(stdout);
        }
        if (own_dir) std::filesystem::remove_all(dir);
        return 0;
    }
    std::printf("| writers | durable patches/s | mean latency (ms) | x fsync floor |\n");
    std::printf("|--------:|------------------:|------------------:|--------------:|\n");
    for (int w : writer_counts) {
        auto p = run_point(dir, w, seconds);
        std::printf("| %7d | %17.0f | %17.2f | %13.1f |\n", p.writers, p.per_second, p.mean_latency_ms,
                    p.per_second / floor);
        std::fflush(stdout);
    }
    if (own_dir) std::filesystem::remove_all(dir);
}
