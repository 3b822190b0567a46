// Regression test for issue 12 (acknowledged writes lost when another process touched the data
// directory): a real twinhubd takes REST desired writes, MQTT reported patches and MQTT telemetry
// while the CLI (`twinhub hub connection-string show --data-dir`, `twinhub device-twin show`) and a
// plain `sqlite3` reader run beside it; then it is killed with SIGKILL and restarted. After every
// kill each acknowledged twin $version and its content, and every PUBACKed telemetry message, must
// be in the store, and no $version is handed out twice for different content.
//
// Before the fix the store closed a plain descriptor of twinhub.db after SQLite had opened it, which
// dropped SQLite's POSIX locks; the CLI's connection then deleted the hub's WAL on close and the
// next kill lost every write since the last checkpoint.
//
// The same run against twinhubd --store postgresql://... (issue 18): a throwaway PostgreSQL cluster
// (tests/pgtest), the hub killed with SIGKILL, the PUBACKed telemetry read back from the database
// with the hub dead and the twins over REST after the restart.
//
// Iterations: TWINHUB_HUB_CRASH_ITERATIONS (default 6); tests/crash/hub_crash_long.sh runs many.
#include "../integration/hub_process.hpp"
#include "pg_cluster.hpp"
#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"

#include "twinhub/device_client.hpp"
#include "twinhub/registry_manager.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

using namespace twinhub;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

constexpr int rest_writers = 4;
constexpr int reported_writers = 2;
constexpr int telemetry_writers = 2;

int iterations() {
    if (const char* e = std::getenv("TWINHUB_HUB_CRASH_ITERATIONS")) return std::max(1, std::atoi(e));
    return 6;
}

// Runs `argv` to completion with stdout/stderr discarded; returns the exit status (-1: not run).
int run(const std::vector<std::string>& argv) {
    std::fflush(nullptr);  // the child must not flush a copy of this process's buffers
    pid_t pid = ::fork();
    if (pid == 0) {
        int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, STDOUT_FILENO);
        ::dup2(null, STDERR_FILENO);
        std::vector<char*> a;
        for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        ::execvp(a[0], a.data());
        ::_exit(127);
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Descriptors of `pid` that point at an unlinked file of the store (the symptom of the bug).
std::vector<std::string> deleted_store_files(pid_t pid) {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
        auto target = std::filesystem::read_symlink(e.path(), ec).string();
        if (target.find("twinhub.db") != std::string::npos && target.find("(deleted)") != std::string::npos)
            out.push_back(target);
    }
    return out;
}

// What the writers had acknowledged: per twin, the content of each acknowledged $version.
struct ledger {
    std::mutex m;
    std::map<std::string, std::map<std::int64_t, std::int64_t>> versions;  // twin -> version -> n
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> last;      // twin -> (version, n)
    std::set<std::string> messages;                                         // PUBACKed bodies
    std::vector<std::string> reuse;  // "twin v: n1 then n2" for a version handed out twice

    void ack(const std::string& twin, std::int64_t version, std::int64_t n) {
        std::lock_guard l(m);
        auto [it, fresh] = versions[twin].emplace(version, n);
        if (!fresh && it->second != n)
            reuse.push_back(twin + " $version " + std::to_string(version) + ": n=" + std::to_string(it->second) +
                            " then n=" + std::to_string(n));
        last[twin] = {version, n};
    }
};

std::string integrity_check(const std::string& path) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        sqlite3_close(db);
        return "cannot open";
    }
    std::string out;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

class hub_crash : public ::testing::Test {
protected:
    test_support::hub_process hub{TWINHUB_BIN_DIR};
    ledger acked;
    std::string pg_url;  // the hub's --store (through TWINHUB_STORE), empty for SQLite
    std::atomic<std::int64_t> next_n{0};  // write counter across iterations, so contents never repeat

    service_options svc() {
        service_options o;
        o.tls.ca_file = hub.ca_file();
        o.port = hub.https_port();
        o.timeout = 5s;
        return o;
    }
    client_options dev() {
        client_options o;
        o.tls.ca_file = hub.ca_file();
        o.port = hub.mqtt_port();
        o.operation_timeout = 5s;
        o.auto_reconnect = false;
        return o;
    }
    registry_manager service() {
        auto r = registry_manager::from_connection_string(hub.connection_string(), svc());
        EXPECT_TRUE(r) << r.error().message;
        return std::move(*r);
    }
    std::string store_path() const { return (hub.data_dir() / "twinhub.db").string(); }

    // The readers a user runs beside a live hub: the CLI on the data dir, the CLI over REST, sqlite3.
    void run_readers() {
        const auto dir = hub.data_dir().string();
        EXPECT_EQ(run({hub.bin("twinhub"), "hub", "connection-string", "show", "--data-dir", dir}), 0);
        if (!pg_url.empty()) return;  // no SQLite file to read
        EXPECT_EQ(run({hub.bin("twinhub"), "device-twin", "show", "-d", "rest-0", "--login", hub.connection_string(),
                       "--ca-file", hub.ca_file(), "--port", std::to_string(hub.https_port())}),
                  0);
        EXPECT_EQ(run({"sqlite3", store_path(), "SELECT count(*) FROM twins; SELECT count(*) FROM events;"}), 0);
        EXPECT_EQ(run({"sqlite3", "-readonly", store_path(), "SELECT count(*) FROM devices;"}), 0);
    }

    // One life of the hub: writers run, readers run beside them, then SIGKILL at a random moment.
    void one_life(std::mt19937& rng, int iteration) {
        std::atomic<bool> stop{false};
        std::atomic<int> acks{0};
        std::vector<std::thread> writers;
        for (int i = 0; i < rest_writers; ++i)
            writers.emplace_back([&, i] {
                auto rm = registry_manager::from_connection_string(hub.connection_string(), svc());
                if (!rm) return;
                const std::string dev = "rest-" + std::to_string(i);
                while (!stop) {
                    std::int64_t n = ++next_n;
                    auto t = rm->update_twin(dev, {{"properties", {{"desired", {{"n", n}}}}}});
                    if (!t) return;
                    acked.ack(dev + "/desired", t->desired_version(), n);
                    ++acks;
                }
            });
        for (int i = 0; i < reported_writers; ++i)
            writers.emplace_back([&, i] {
                const std::string dev = "mqtt-" + std::to_string(i);
                auto rm = registry_manager::from_connection_string(hub.connection_string(), svc());
                if (!rm) return;
                auto cs = rm->device_connection_string(dev);
                if (!cs) return;
                auto c = device_client::create_from_connection_string(*cs, this->dev());
                if (!c || !c->connect()) return;
                while (!stop) {
                    std::int64_t n = ++next_n;
                    auto v = c->patch_twin_reported_properties({{"n", n}});
                    if (!v) return;
                    acked.ack(dev + "/reported", *v, n);
                    ++acks;
                }
            });
        for (int i = 0; i < telemetry_writers; ++i)
            writers.emplace_back([&, i] {
                const std::string dev = "tel-" + std::to_string(i);
                auto rm = registry_manager::from_connection_string(hub.connection_string(), svc());
                if (!rm) return;
                auto cs = rm->device_connection_string(dev);
                if (!cs) return;
                auto c = device_client::create_from_connection_string(*cs, this->dev());
                if (!c || !c->connect()) return;
                for (int k = 0; !stop; ++k) {
                    std::string body = "it" + std::to_string(iteration) + "-" + dev + "-" + std::to_string(k);
                    if (!c->send_message(message(body))) return;
                    std::lock_guard l(acked.m);
                    acked.messages.insert(body);
                    ++acks;
                }
            });

        auto deadline = std::chrono::steady_clock::now() + 20s;
        while (acks < 20 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
        ASSERT_GE(acks.load(), 20) << "writers made no progress:\n" << hub.log();
        run_readers();
        // The hub must still hold its own WAL: an unlinked one is what lost the writes.
        if (pg_url.empty())
            EXPECT_EQ(deleted_store_files(hub.pid()), std::vector<std::string>{}) << "iteration " << iteration;
        const int before = acks;
        deadline = std::chrono::steady_clock::now() + 20s;
        while (acks < before + 20 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
        std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 400)(rng)));
        hub.kill();
        stop = true;
        for (auto& t : writers) t.join();
    }

    // With the hub dead: every PUBACKed message is in the store, which is intact.
    void check_store_after_kill(int iteration) {
        if (pg_url.empty()) ASSERT_EQ(integrity_check(store_path()), "ok");
        auto st = pg_url.empty() ? store::open_sqlite_store(store_path(), {.read_only = true})
                                 : store::open_postgres_store(pg_url);
        ASSERT_TRUE(st) << st.error().message;
        std::set<std::string> stored;
        for (std::uint32_t p = 0; p < store::default_event_partitions; ++p) {
            auto ev = (*st)->read_events(p, 0, SIZE_MAX);
            ASSERT_TRUE(ev) << ev.error().message;
            for (auto& e : *ev) stored.insert(e.body);
        }
        (*st)->close();
        std::size_t missing = 0;
        for (auto& m : acked.messages) missing += !stored.count(m);
        EXPECT_EQ(missing, 0u) << "of " << acked.messages.size() << " PUBACKed telemetry messages, after kill "
                               << iteration;
    }

    // With the hub restarted: every twin holds at least its last acknowledged $version, with the
    // acknowledged content when it is that version.
    void check_twins_after_restart(int iteration) {
        auto rm = service();
        int lost = 0;
        for (auto& [twin, vn] : acked.last) {
            auto slash = twin.find('/');
            auto t = rm.get_twin(twin.substr(0, slash));
            ASSERT_TRUE(t) << t.error().message;
            const bool desired = twin.substr(slash + 1) == "desired";
            const auto& section = desired ? t->desired : t->reported;
            const std::int64_t v = desired ? t->desired_version() : t->reported_version();
            const std::int64_t n = section.contains("n") ? section.at("n").as_int64() : 0;
            if (v < vn.first || n < vn.second || (v == vn.first && n != vn.second)) {
                ++lost;
                ADD_FAILURE() << twin << " after kill " << iteration << ": acknowledged $version " << vn.first
                              << " (n=" << vn.second << "), stored $version " << v << " (n=" << n << ")";
            }
        }
        EXPECT_EQ(lost, 0);
        std::lock_guard l(acked.m);
        EXPECT_EQ(acked.reuse, std::vector<std::string>{});
    }

    void run_lives() {
        hub.start();
        {
            auto rm = service();
            for (int i = 0; i < rest_writers; ++i) ASSERT_TRUE(rm.create_device("rest-" + std::to_string(i)));
            for (int i = 0; i < reported_writers; ++i) ASSERT_TRUE(rm.create_device("mqtt-" + std::to_string(i)));
            for (int i = 0; i < telemetry_writers; ++i) ASSERT_TRUE(rm.create_device("tel-" + std::to_string(i)));
        }
        std::mt19937 rng(static_cast<unsigned>(::getpid()));
        const int n = iterations();
        for (int it = 1; it <= n; ++it) {
            one_life(rng, it);
            if (HasFatalFailure()) return;
            check_store_after_kill(it);
            hub.start();
            check_twins_after_restart(it);
            if (HasFailure()) return;
        }
        std::size_t versions = 0;
        for (auto& [_, m] : acked.versions) versions += m.size();
        std::printf("hub_crash (%s): %d kill -9 iterations, %zu acknowledged twin versions, %zu PUBACKed messages, 0 lost\n",
                    pg_url.empty() ? "sqlite" : "postgresql", n, versions, acked.messages.size());
    }
};

TEST_F(hub_crash, acknowledged_writes_survive_kill9_with_cli_and_sqlite3_beside_the_hub) { run_lives(); }

TEST_F(hub_crash, acknowledged_writes_survive_kill9_on_postgresql) {
    auto cluster = twinhub::testing::pg_cluster::start();
    cluster->create_database("hub");
    pg_url = cluster->url("hub");
    ::setenv("TWINHUB_STORE", pg_url.c_str(), 1);  // twinhubd and the CLI take the store from it
    run_lives();
    hub.kill();
    ::unsetenv("TWINHUB_STORE");
}

}  // namespace
