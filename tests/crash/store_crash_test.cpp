// Kills a writer process (store_crash_writer) with SIGKILL at random moments, many times over, and
// checks after each kill that the SQLite store opens cleanly and holds every write that the writer
// had acknowledged.
#include "store/sqlite_store.hpp"
#include "../unit/store/test_dir.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <sstream>
#include <thread>

namespace twinhub::store {
namespace {

struct child {
    pid_t pid = -1;
    int out = -1;  // read end of the child's stdout
};

child spawn_writer(const std::string& dir, int threads) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return {};
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], STDOUT_FILENO);
        std::string t = std::to_string(threads);
        ::execl(TWINHUB_CRASH_WRITER, TWINHUB_CRASH_WRITER, dir.c_str(), t.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(fds[1]);
    return {pid, fds[0]};
}

// Reads from the child until it has acknowledged a first write (or `timeout` passes), so that the
// kill lands while writes are in flight even on a loaded machine.
std::string wait_for_first_ack(int fd, std::chrono::milliseconds timeout) {
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (got.find('\n') == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

// Reads everything the child wrote until EOF (it has been killed).
std::string drain(int fd, std::string all = {}) {
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) all.append(buf, static_cast<std::size_t>(n));
        else if (n == 0 || errno != EINTR) break;
    }
    ::close(fd);
    return all;
}

std::string integrity_check(const std::string& path) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) return "cannot open";
    std::string out;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

TEST(store_crash, acknowledged_twin_writes_survive_sigkill_at_random_moments) {
    testing::test_dir dir;
    const std::string db = (dir.path() / "store.db").string();
    constexpr int rounds = 30, threads = 4;
    std::mt19937 rng(std::random_device{}());
    std::uniform_int_distribution<int> delay_ms(0, 250);

    std::map<std::string, std::int64_t> acked;  // device -> highest acknowledged version, over all rounds
    std::size_t total_acks = 0;
    for (int round = 0; round < rounds; ++round) {
        auto c = spawn_writer(dir.path().string(), threads);
        ASSERT_GT(c.pid, 0);
        // Every fifth round kills early, anywhere in start-up (open, recovery, load); the others
        // wait for the first acknowledgement and then kill at a random moment of steady writing.
        const bool early = round % 5 == 4;
        std::string head;
        if (early) {
            std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng) / 10));
        } else {
            head = wait_for_first_ack(c.out, std::chrono::seconds(20));
            std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
        }
        ASSERT_EQ(::kill(c.pid, SIGKILL), 0);
        int status = 0;
        ASSERT_EQ(::waitpid(c.pid, &status, 0), c.pid);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            << "round " << round << ": the writer exited by itself (status " << status << ") before it was killed";

        std::istringstream lines(drain(c.out, std::move(head)));
        std::string word, device;
        std::int64_t version = 0;
        std::size_t acks = 0;
        while (lines >> word >> device >> version) {
            ASSERT_EQ(word, "ack");
            auto& v = acked[device];
            EXPECT_GT(version, v) << "versions of " << device << " go forward";
            v = std::max(v, version);
            ++acks;
        }
        total_acks += acks;
        if (!early) {
            EXPECT_GT(acks, 0u) << "round " << round << ": the writer acknowledged nothing in 20 s";
        }

        // The store opens cleanly and holds every acknowledged write.
        auto s = open_sqlite_store(db);
        ASSERT_TRUE(s) << "round " << round << ": " << s.error().message;
        auto snap = (*s)->load();
        ASSERT_TRUE(snap) << "round " << round << ": " << snap.error().message;
        for (auto& [id, v] : acked) {
            auto it = std::find_if(snap->devices.begin(), snap->devices.end(),
                                   [&](auto& d) { return d.identity.device_id == id; });
            ASSERT_NE(it, snap->devices.end()) << "round " << round << ": device " << id << " lost";
            EXPECT_GE(it->twin.version, v) << "round " << round << ": acknowledged version of " << id << " lost";
            // The stored document is whole: the counter the last patch wrote matches the version.
            if (it->twin.version > 2) {
                EXPECT_EQ(it->twin.reported.at("counter").as_int64(), it->twin.version) << id;
            }
        }
        s->reset();
        ASSERT_EQ(integrity_check(db), "ok") << "round " << round;
    }
    EXPECT_EQ(acked.size(), static_cast<std::size_t>(threads));
    RecordProperty("acknowledged_writes", static_cast<int>(total_acks));
    std::printf("%zu acknowledged writes over %d kills\n", total_acks, rounds);
}

}  // namespace
}  // namespace twinhub::store
