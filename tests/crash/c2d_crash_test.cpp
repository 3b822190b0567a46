// Crash test for the durable C2D queue (issue 14 item 5): a real twinhubd takes C2D sends over AMQP
// (the C++ SDK's service_client, acknowledged when the hub settles the delivery) while devices
// receive and complete over the device HTTPS API; then it is killed with SIGKILL at a random moment
// and restarted. After each restart the queues are drained and checked:
//   * every acknowledged send whose message was never the subject of a complete call is delivered
//     (a complete cut off by the kill may or may not have happened, so those are not counted);
//   * no message whose complete was acknowledged is delivered again;
//   * no message is delivered twice in one drain.
// Iterations: TWINHUB_C2D_CRASH_ITERATIONS (default 4).
#include "../integration/hub_process.hpp"

#include "twinhub/registry_manager.hpp"
#include "twinhub/service_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace twinhub;
using namespace std::chrono_literals;

namespace {

constexpr int devices = 4;
constexpr int senders = 2;

int iterations() {
    if (const char* e = std::getenv("TWINHUB_C2D_CRASH_ITERATIONS")) return std::max(1, std::atoi(e));
    return 4;
}

struct ledger {
    std::mutex mu;
    std::set<std::string> acked;              // send acknowledged
    std::set<std::string> complete_tried;     // a complete call was made (outcome maybe unknown)
    std::set<std::string> completed;          // complete acknowledged
};

class c2d_crash : public ::testing::Test {
protected:
    test_support::hub_process hub{TWINHUB_BIN_DIR};

    service_options svc() {
        service_options o;
        o.tls.ca_file = hub.ca_file();
        o.port = hub.https_port();
        o.amqp_port = hub.amqp_port();
        o.timeout = 3s;
        return o;
    }
    registry_manager registry() {
        auto r = registry_manager::from_connection_string(hub.connection_string(), svc());
        EXPECT_TRUE(r) << r.error().message;
        return std::move(*r);
    }
    static std::string device(int i) { return "c2d-crash-" + std::to_string(i); }
};

TEST_F(c2d_crash, acknowledged_sends_and_completes_survive_kill9) {
    hub.start();
    {
        auto rm = registry();
        for (int d = 0; d < devices; ++d) ASSERT_TRUE(rm.create_device(device(d)));
    }
    std::mt19937 rng(std::random_device{}());
    std::atomic<long> next_id{0};
    std::size_t total_acked = 0, total_completed = 0, total_redelivered_checked = 0;

    for (int it = 0; it < iterations(); ++it) {
        ledger l;
        std::atomic<bool> stop{false};
        std::vector<std::thread> threads;
        for (int s = 0; s < senders; ++s) {
            threads.emplace_back([&, s] {
                auto sc = service_client::from_connection_string(hub.connection_string(), svc());
                if (!sc) return;
                int d = s;
                while (!stop) {
                    const std::string id = "m" + std::to_string(next_id.fetch_add(1));
                    c2d_message m("body of " + id);
                    m.message_id = id;
                    m.properties = {{"n", id}};
                    auto r = sc->send(device(d), m);
                    d = (d + 1) % devices;
                    if (r) {
                        std::lock_guard lock(l.mu);
                        l.acked.insert(id);
                    } else if (r.error().code != errc::device_queue_full) {
                        if (!stop) std::this_thread::sleep_for(50ms);
                    }
                }
            });
        }
        // One consumer over HTTPS: receive, then complete, abandon or leave the lock to expire.
        threads.emplace_back([&] {
            auto rm = registry_manager::from_connection_string(hub.connection_string(), svc());
            if (!rm) return;
            std::mt19937 r2(static_cast<unsigned>(it) * 7919u + 1);
            int d = 0;
            while (!stop) {
                const std::string dev = device(d);
                d = (d + 1) % devices;
                auto got = rm->receive_c2d_message(dev);
                if (!got || !*got) continue;
                const auto& msg = **got;
                const int choice = static_cast<int>(r2() % 10);
                if (choice < 8) {
                    {
                        std::lock_guard lock(l.mu);
                        l.complete_tried.insert(msg.message_id);
                    }
                    if (rm->complete_c2d_message(dev, msg.lock_token)) {
                        std::lock_guard lock(l.mu);
                        l.completed.insert(msg.message_id);
                    }
                } else if (choice == 8) {
                    (void)rm->abandon_c2d_message(dev, msg.lock_token);
                }  // else: the lock is left held; the message must come back after the restart
            }
        });

        std::this_thread::sleep_for(std::chrono::milliseconds(400 + rng() % 800));
        hub.kill();
        stop = true;
        for (auto& t : threads) t.join();
        hub.start();

        // Drain every queue (complete each message once) and check it against the ledger.
        auto rm = registry();
        std::multiset<std::string> drained;
        for (int d = 0; d < devices; ++d) {
            for (int guard = 0; guard < 200; ++guard) {
                auto got = rm.receive_c2d_message(device(d));
                ASSERT_TRUE(got) << "receive after restart " << it << ": " << got.error().message;
                if (!*got) break;
                EXPECT_EQ((*got)->body, "body of " + (*got)->message_id);
                drained.insert((*got)->message_id);
                ASSERT_TRUE(rm.complete_c2d_message(device(d), (*got)->lock_token));
            }
        }
        std::size_t missing = 0, resurrected = 0, twice = 0;
        for (const auto& id : l.acked) {
            if (!l.complete_tried.contains(id) && !drained.contains(id)) ++missing;
        }
        for (const auto& id : l.completed) {
            if (drained.contains(id)) ++resurrected;
        }
        for (const auto& id : drained) {
            if (drained.count(id) > 1) ++twice;
        }
        EXPECT_EQ(missing, 0u) << "acknowledged sends lost after kill " << it << " (of " << l.acked.size() << ")";
        EXPECT_EQ(resurrected, 0u) << "completed messages delivered again after kill " << it;
        EXPECT_EQ(twice, 0u) << "messages delivered twice in one drain after kill " << it;
        EXPECT_GT(l.acked.size(), 0u) << "no send was acknowledged in iteration " << it;
        total_acked += l.acked.size();
        total_completed += l.completed.size();
        total_redelivered_checked += drained.size();
        if (::testing::Test::HasFailure()) break;
    }
    if (::testing::Test::HasFailure()) return;
    std::printf("c2d_crash: %d kill -9 iterations, %zu acknowledged sends, %zu acknowledged completes, %zu drained "
                "after restarts, 0 lost, 0 completed delivered again\n",
                iterations(), total_acked, total_completed, total_redelivered_checked);
}

}  // namespace
