// method_router against a fake channel (the seam the MQTT head implements): delivery, timeouts,
// ordering, late and duplicate answers, disconnects. End-to-end behaviour with the real heads is in
// tests/compat/methods.test.js.
#include "methods/method_router.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace twinhub::methods {
namespace {

using namespace std::chrono_literals;

// Connections the test opens and closes; deliver() records what the head would publish.
class fake_channel : public method_channel {
public:
    result<std::uint64_t> deliver(const identity_key& id, method_call call) override {
        std::lock_guard lock(mu_);
        auto it = connected_.find(id);
        if (it == connected_.end()) return error{errc::device_not_online, "not online"};
        delivered_.push_back({id, std::move(call)});
        cv_.notify_all();
        return it->second;
    }
    void connect(const identity_key& id, std::uint64_t conn) {
        std::lock_guard lock(mu_);
        connected_[id] = conn;
    }
    void disconnect(const identity_key& id) {
        std::lock_guard lock(mu_);
        connected_.erase(id);
    }
    std::vector<std::pair<identity_key, method_call>> delivered() {
        std::lock_guard lock(mu_);
        return delivered_;
    }
    // Waits until `n` calls were delivered and returns them.
    std::vector<std::pair<identity_key, method_call>> wait_delivered(std::size_t n) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, 5s, [&] { return delivered_.size() >= n; });
        return delivered_;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::map<identity_key, std::uint64_t> connected_;
    std::vector<std::pair<identity_key, method_call>> delivered_;
};

// One call's outcome, settled at most once (a second completion fails the test).
struct outcome {
    std::promise<result<method_response>> p;
    std::future<result<method_response>> f = p.get_future();
    std::atomic<int> completions{0};
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point settled;

    method_router::completion handler() {
        return [this](result<method_response> r) {
            if (completions.fetch_add(1) == 0) {
                settled = std::chrono::steady_clock::now();
                p.set_value(std::move(r));
            }
        };
    }
    result<method_response> get() {
        EXPECT_EQ(f.wait_for(5s), std::future_status::ready);
        return f.get();
    }
    bool ready() const { return f.wait_for(0s) == std::future_status::ready; }
    std::chrono::milliseconds elapsed() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(settled - started);
    }
};

class router_test : public ::testing::Test {
protected:
    router_test() : work_(boost::asio::make_work_guard(ioc_)), thread_([this] { ioc_.run(); }) {
        router_.set_channel(&channel_);
    }
    ~router_test() override {
        router_.stop();
        work_.reset();
        ioc_.stop();
        thread_.join();
    }

    invoke_options timeouts(std::chrono::milliseconds response, std::chrono::milliseconds connect = 0ms) {
        invoke_options o;
        o.response_timeout = response;
        o.connect_timeout = connect;
        return o;
    }

    boost::asio::io_context ioc_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
    std::thread thread_;
    fake_channel channel_;
    method_router router_{ioc_};
    const identity_key dev_{"dev1", ""};
    const identity_key mod_{"dev1", "mod1"};
};

TEST_F(router_test, delivers_to_connected_identity_and_completes_with_its_answer) {
    channel_.connect(dev_, 7);
    outcome o;
    router_.invoke(dev_, "reboot", R"({"delay":5})", timeouts(5s), o.handler());
    auto d = channel_.delivered();
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].first, dev_);
    EXPECT_EQ(d[0].second.method_name, "reboot");
    EXPECT_EQ(d[0].second.payload, R"({"delay":5})");
    EXPECT_FALSE(d[0].second.rid.empty());
    EXPECT_FALSE(o.ready());
    EXPECT_EQ(router_.pending(), 1u);

    router_.on_response(dev_, d[0].second.rid, 201, R"({"ok":true})");
    auto r = o.get();
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, 201);
    EXPECT_EQ(r->payload, R"({"ok":true})");
    EXPECT_EQ(router_.pending(), 0u);
}

TEST_F(router_test, empty_request_payload_is_sent_as_json_null) {
    channel_.connect(mod_, 1);
    outcome o;
    router_.invoke(mod_, "m", "", timeouts(5s), o.handler());
    auto d = channel_.delivered();
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].second.payload, "null");
    router_.on_response(mod_, d[0].second.rid, 200, "");
}

TEST_F(router_test, empty_or_null_answer_gives_null_payload) {
    channel_.connect(dev_, 1);
    outcome a, b;
    router_.invoke(dev_, "m", "null", timeouts(5s), a.handler());
    router_.invoke(dev_, "m", "null", timeouts(5s), b.handler());
    auto d = channel_.delivered();
    ASSERT_EQ(d.size(), 2u);
    router_.on_response(dev_, d[0].second.rid, 200, "");
    router_.on_response(dev_, d[1].second.rid, 500, "null");
    auto ra = a.get();
    auto rb = b.get();
    ASSERT_TRUE(ra && rb);
    EXPECT_EQ(ra->payload, "null");
    EXPECT_EQ(rb->payload, "null");
    EXPECT_EQ(rb->status, 500);
}

TEST_F(router_test, answer_that_is_not_json_is_kept_as_a_json_string) {
    channel_.connect(dev_, 1);
    outcome o;
    router_.invoke(dev_, "m", "null", timeouts(5s), o.handler());
    router_.on_response(dev_, channel_.delivered()[0].second.rid, 200, "hello \"world\"");
    auto r = o.get();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->payload, R"("hello \"world\"")");
}

TEST_F(router_test, answer_over_128_kb_fails_the_call_with_message_too_large) {
    channel_.connect(dev_, 1);
    outcome big, edge;
    router_.invoke(dev_, "m", "null", timeouts(5s), big.handler());
    router_.invoke(dev_, "m", "null", timeouts(5s), edge.handler());
    auto d = channel_.delivered();
    const std::string at_limit = "\"" + std::string(128 * 1024 - 2, 'x') + "\"";
    router_.on_response(dev_, d[0].second.rid, 200, at_limit + " ");
    router_.on_response(dev_, d[1].second.rid, 200, at_limit);
    auto rb = big.get();
    ASSERT_FALSE(rb);
    EXPECT_EQ(rb.error().code, errc::message_too_large);
    EXPECT_NE(rb.error().message.find("131072"), std::string::npos) << rb.error().message;
    auto re = edge.get();
    ASSERT_TRUE(re);
    EXPECT_EQ(re->payload.size(), 128u * 1024);
}

TEST_F(router_test, not_connected_with_zero_connect_timeout_fails_at_once_with_device_not_online) {
    outcome o;
    router_.invoke(dev_, "m", "null", timeouts(30s), o.handler());
    ASSERT_TRUE(o.ready());
    auto r = o.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::device_not_online);
    EXPECT_NE(r.error().message.find("404103"), std::string::npos);
    EXPECT_EQ(router_.pending(), 0u);
}

TEST_F(router_test, no_channel_means_not_online) {
    router_.set_channel(nullptr);
    outcome o;
    router_.invoke(dev_, "m", "null", timeouts(30s), o.handler());
    auto r = o.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::device_not_online);
}

TEST_F(router_test, waits_up_to_the_connect_timeout_and_delivers_when_the_identity_subscribes) {
    outcome o;
    router_.invoke(mod_, "m", R"([1,2])", timeouts(5s, 5s), o.handler());
    EXPECT_FALSE(o.ready());
    EXPECT_TRUE(channel_.delivered().empty());
    router_.on_methods_ready(identity_key{"dev1", "other"});  // someone else: nothing happens
    EXPECT_TRUE(channel_.delivered().empty());

    channel_.connect(mod_, 3);
    router_.on_methods_ready(mod_);
    auto d = channel_.delivered();
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].second.payload, "[1,2]");
    router_.on_response(mod_, d[0].second.rid, 200, "1");
    auto r = o.get();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->payload, "1");
}

TEST_F(router_test, connect_timeout_expiring_gives_device_not_online) {
    outcome o;
    router_.invoke(dev_, "m", "null", timeouts(5s, 150ms), o.handler());
    auto r = o.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::device_not_online);
    EXPECT_GE(o.elapsed(), 140ms);
    EXPECT_LT(o.elapsed(), 2s);
}

TEST_F(router_test, response_timer_starts_at_delivery_not_at_invoke) {
    outcome o;
    router_.invoke(dev_, "m", "null", timeouts(300ms, 5s), o.handler());
    std::this_thread::sleep_for(200ms);
    channel_.connect(dev_, 1);
    router_.on_methods_ready(dev_);
    std::this_thread::sleep_for(200ms);  // 400 ms after invoke, 200 ms after delivery
    EXPECT_FALSE(o.ready());
    auto r = o.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::gateway_timeout);
    EXPECT_GE(o.elapsed(), 480ms);
}

TEST_F(router_test, no_answer_within_the_response_timeout_gives_gateway_timeout) {
    channel_.connect(dev_, 1);
    outcome o;
    router_.invoke(dev_, "m", "null", timeouts(150ms), o.handler());
    auto r = o.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::gateway_timeout);
    EXPECT_NE(r.error().message.find("504101"), std::string::npos);
    EXPECT_GE(o.elapsed(), 140ms);
    EXPECT_EQ(router_.pending(), 0u);
}

TEST_F(router_test, late_answer_after_the_timeout_is_dropped) {
    channel_.connect(dev_, 1);
    outcome o;
    router_.invoke(dev_, "m", "null", timeouts(100ms), o.handler());
    auto r = o.get();
    ASSERT_FALSE(r);
    router_.on_response(dev_, channel_.delivered()[0].second.rid, 200, "{}");
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(o.completions.load(), 1);
}

TEST_F(router_test, duplicate_answer_is_dropped) {
    channel_.connect(dev_, 1);
    outcome o;
    router_.invoke(dev_, "m", "null", timeouts(5s), o.handler());
    const auto rid = channel_.delivered()[0].second.rid;
    router_.on_response(dev_, rid, 200, "1");
    router_.on_response(dev_, rid, 500, "2");
    auto r = o.get();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->payload, "1");
    EXPECT_EQ(o.completions.load(), 1);
}

TEST_F(router_test, answer_from_another_identity_or_with_an_unknown_rid_is_dropped) {
    channel_.connect(dev_, 1);
    outcome o;
    router_.invoke(dev_, "m", "null", timeouts(5s), o.handler());
    const auto rid = channel_.delivered()[0].second.rid;
    router_.on_response(identity_key{"dev2", ""}, rid, 200, "1");
    router_.on_response(mod_, rid, 200, "1");
    router_.on_response(dev_, "zz", 200, "1");
    router_.on_response(dev_, "", 200, "1");
    router_.on_response(dev_, rid + "0", 200, "1");
    router_.on_response(dev_, "ffffffffffffffffff", 200, "1");
    EXPECT_FALSE(o.ready());
    router_.on_response(dev_, rid, 202, "2");
    auto r = o.get();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 202);
}

TEST_F(router_test, disconnect_fails_the_calls_pending_on_that_connection_at_once) {
    channel_.connect(dev_, 5);
    outcome a, b;
    router_.invoke(dev_, "m", "null", timeouts(30s), a.handler());
    router_.invoke(dev_, "n", "null", timeouts(30s), b.handler());
    EXPECT_EQ(router_.pending(), 2u);
    channel_.disconnect(dev_);
    router_.on_connection_gone(dev_, 5);
    ASSERT_TRUE(a.ready());
    ASSERT_TRUE(b.ready());
    auto ra = a.get();
    ASSERT_FALSE(ra);
    EXPECT_EQ(ra.error().code, errc::gateway_timeout);
    EXPECT_NE(ra.error().message.find("disconnected"), std::string::npos);
    EXPECT_FALSE(b.get());
    EXPECT_EQ(router_.pending(), 0u);
}

TEST_F(router_test, closing_a_replaced_connection_spares_calls_on_the_new_one) {
    channel_.connect(dev_, 1);
    outcome old_call, new_call;
    router_.invoke(dev_, "m", "null", timeouts(30s), old_call.handler());
    channel_.connect(dev_, 2);  // a new CONNECT replaced connection 1
    router_.invoke(dev_, "m", "null", timeouts(30s), new_call.handler());
    router_.on_connection_gone(dev_, 1);
    EXPECT_TRUE(old_call.ready());
    EXPECT_FALSE(new_call.ready());
    router_.on_response(dev_, channel_.delivered()[1].second.rid, 200, "{}");
    EXPECT_TRUE(new_call.get());
}

TEST_F(router_test, waiting_calls_survive_an_unrelated_disconnect) {
    outcome o;
    router_.invoke(dev_, "m", "null", timeouts(5s, 5s), o.handler());
    router_.on_connection_gone(dev_, 9);
    EXPECT_FALSE(o.ready());
    channel_.connect(dev_, 10);
    router_.on_methods_ready(dev_);
    router_.on_response(dev_, channel_.delivered().at(0).second.rid, 200, "{}");
    EXPECT_TRUE(o.get());
}

TEST_F(router_test, many_calls_to_one_identity_are_answered_in_any_order) {
    channel_.connect(dev_, 1);
    constexpr int n = 200;
    std::vector<std::unique_ptr<outcome>> outs;
    for (int i = 0; i < n; ++i) {
        outs.push_back(std::make_unique<outcome>());
        router_.invoke(dev_, "m", std::to_string(i), timeouts(10s), outs.back()->handler());
    }
    auto d = channel_.delivered();
    ASSERT_EQ(d.size(), static_cast<std::size_t>(n));
    for (int i = n - 1; i >= 0; --i) router_.on_response(dev_, d[i].second.rid, 200 + i, d[i].second.payload);
    for (int i = 0; i < n; ++i) {
        auto r = outs[i]->get();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200 + i);
        EXPECT_EQ(r->payload, std::to_string(i));
    }
}

TEST_F(router_test, concurrent_calls_to_many_identities_from_many_threads_all_settle_once) {
    constexpr int identities = 50;
    constexpr int per_thread = 200;
    for (int i = 0; i < identities; ++i) channel_.connect(identity_key{"d" + std::to_string(i), "m"}, 100 + i);
    std::atomic<int> ok{0}, failed{0};
    auto count = [&](result<method_response> r) { (r ? ok : failed).fetch_add(1); };

    // Answerer: a thread that answers every delivery as it appears (like devices would).
    std::atomic<bool> done{false};
    std::thread answerer([&] {
        std::size_t seen = 0;
        while (!done) {
            auto d = channel_.delivered();
            for (; seen < d.size(); ++seen) router_.on_response(d[seen].first, d[seen].second.rid, 200, d[seen].second.payload);
            std::this_thread::yield();
        }
    });
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t) {
        callers.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i)
                router_.invoke(identity_key{"d" + std::to_string((t * per_thread + i) % identities), "m"}, "m",
                               std::to_string(i), timeouts(10s), count);
        });
    }
    for (auto& c : callers) c.join();
    for (int i = 0; i < 500 && ok + failed < 4 * per_thread; ++i) std::this_thread::sleep_for(10ms);
    done = true;
    answerer.join();
    EXPECT_EQ(ok.load(), 4 * per_thread);
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(router_.pending(), 0u);
}

TEST_F(router_test, a_shorter_deadline_added_later_fires_first) {
    channel_.connect(dev_, 1);
    outcome long_call, short_call;
    router_.invoke(dev_, "m", "null", timeouts(3s), long_call.handler());
    router_.invoke(dev_, "m", "null", timeouts(100ms), short_call.handler());
    auto r = short_call.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::gateway_timeout);
    EXPECT_LT(short_call.elapsed(), 1s);
    EXPECT_FALSE(long_call.ready());
    router_.on_response(dev_, channel_.delivered()[0].second.rid, 200, "{}");
    EXPECT_TRUE(long_call.get());
}

TEST_F(router_test, stop_fails_pending_calls_and_later_invokes) {
    channel_.connect(dev_, 1);
    outcome a, b, c;
    router_.invoke(dev_, "m", "null", timeouts(30s), a.handler());
    router_.invoke(mod_, "m", "null", timeouts(30s, 30s), b.handler());
    router_.stop();
    EXPECT_EQ(a.get().error().code, errc::shutting_down);
    EXPECT_EQ(b.get().error().code, errc::shutting_down);
    router_.invoke(dev_, "m", "null", timeouts(30s), c.handler());
    EXPECT_EQ(c.get().error().code, errc::shutting_down);
    EXPECT_EQ(router_.pending(), 0u);
}

TEST_F(router_test, rids_are_unique_across_calls) {
    channel_.connect(dev_, 1);
    std::vector<std::unique_ptr<outcome>> outs;
    for (int i = 0; i < 20; ++i) {
        outs.push_back(std::make_unique<outcome>());
        router_.invoke(dev_, "m", "null", timeouts(5s), outs.back()->handler());
    }
    std::set<std::string> rids;
    for (auto& [id, call] : channel_.delivered()) rids.insert(call.rid);
    EXPECT_EQ(rids.size(), 20u);
    for (auto& [id, call] : channel_.delivered()) router_.on_response(id, call.rid, 200, "{}");
}

}  // namespace
}  // namespace twinhub::methods
