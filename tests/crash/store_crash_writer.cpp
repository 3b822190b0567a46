// Child of the crash test: opens the SQLite store at DIR/store.db and, from several threads, keeps
// applying reported patches to one twin per thread (device "crash-<n>"), each conditioned on the
// previous version. After each commit has completed successfully it writes "ack <device>
// <version>" to stdout with one write(2), so that every line the parent reads names a write the
// store acknowledged as durable. Runs until killed.
//
// Usage: store_crash_writer DIR [THREADS]
#include "store/sqlite_store.hpp"

#include <boost/json/object.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

using namespace twinhub;

namespace {

void say(const std::string& line) {
    std::string s = line + "\n";
    // One write per line: lines from several threads never interleave in the pipe (< PIPE_BUF).
    if (::write(STDOUT_FILENO, s.data(), s.size()) < 0) std::_Exit(3);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s DIR [THREADS]\n", argv[0]);
        return 2;
    }
    std::string dir = argv[1];
    int threads = argc > 2 ? std::atoi(argv[2]) : 4;
    auto opened = store::open_sqlite_store(dir + "/store.db");
    if (!opened) {
        std::fprintf(stderr, "store_crash_writer: %s\n", opened.error().message.c_str());
        return 1;
    }
    auto& s = **opened;
    auto snap = s.load();
    if (!snap) {
        std::fprintf(stderr, "store_crash_writer: %s\n", snap.error().message.c_str());
        return 1;
    }

    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        std::string id = "crash-" + std::to_string(t);
        std::optional<twin::twin_document> twin;
        for (auto& d : snap->devices)
            if (d.identity.device_id == id) twin = d.twin;
        if (!twin) {
            registry::device_identity d;
            d.device_id = id;
            d.etag = 1;
            twin = twin::new_twin(now());
            store::write_batch b;
            b.put_device(d, store::expect::absent());
            b.put_twin({id, ""}, *twin, store::expect::absent());
            if (auto r = s.commit_sync(std::move(b)); !r) {
                std::fprintf(stderr, "store_crash_writer: %s\n", r.error().message.c_str());
                return 1;
            }
            say("ack " + id + " " + std::to_string(twin->version));
        }
        workers.emplace_back([&s, id, doc = *twin]() mutable {
            for (;;) {
                auto before = static_cast<std::uint64_t>(doc.version);
                auto next = doc;
                boost::json::object patch{{"counter", next.version + 1}, {"writer", id}};
                if (auto r = twin::apply_reported_patch(next, patch, now()); !r) std::_Exit(4);
                store::write_batch b;
                b.put_twin({id, ""}, next, store::expect::revision(before));
                auto r = s.commit_sync(std::move(b));
                if (!r) {
                    std::fprintf(stderr, "store_crash_writer: %s\n", r.error().message.c_str());
                    std::_Exit(5);
                }
                doc = std::move(next);
                say("ack " + id + " " + std::to_string(doc.version));
            }
        });
    }
    for (auto& w : workers) w.join();
}
