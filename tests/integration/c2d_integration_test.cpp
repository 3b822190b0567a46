// Cloud-to-device messaging end to end with the C++ SDK against a real twinhubd over loopback TLS:
// service_client (AMQP: CBS, /messages/devicebound, feedback) sends, device_client / module_client
// (MQTT) receive and complete by PUBACK; errors the hub rejects with; purge over HTTPS.
#include "hub_process.hpp"

#include "twinhub/device_client.hpp"
#include "twinhub/module_client.hpp"
#include "twinhub/registry_manager.hpp"
#include "twinhub/service_client.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

using namespace twinhub;
using namespace std::chrono_literals;

namespace {

test_support::hub_process& hub() {
    static test_support::hub_process h(TWINHUB_BIN_DIR);
    static bool started = (h.start(), true);
    (void)started;
    return h;
}

service_options svc_options(const test_support::hub_process& h) {
    service_options o;
    o.tls.ca_file = h.ca_file();
    o.port = h.https_port();
    o.amqp_port = h.amqp_port();
    o.timeout = 15s;
    return o;
}

client_options dev_options(const test_support::hub_process& h) {
    client_options o;
    o.tls.ca_file = h.ca_file();
    o.port = h.mqtt_port();
    o.operation_timeout = 10s;
    o.reconnect_min_backoff = 100ms;
    o.reconnect_max_backoff = 1s;
    return o;
}

registry_manager registry() {
    auto r = registry_manager::from_connection_string(hub().connection_string(), svc_options(hub()));
    EXPECT_TRUE(r) << r.error().message;
    return std::move(*r);
}

service_client sender() {
    auto r = service_client::from_connection_string(hub().connection_string(), svc_options(hub()));
    EXPECT_TRUE(r) << r.error().message;
    return std::move(*r);
}

std::string unique(const std::string& base) {
    static std::atomic<int> n{0};
    return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

// What a handler received, for the test thread to wait on.
struct inbox {
    std::mutex m;
    std::condition_variable cv;
    std::deque<received_c2d_message> got;

    void push(const received_c2d_message& msg) {
        std::lock_guard l(m);
        got.push_back(msg);
        cv.notify_all();
    }
    std::optional<received_c2d_message> pop(std::chrono::milliseconds timeout) {
        std::unique_lock l(m);
        if (!cv.wait_for(l, timeout, [&] { return !got.empty(); })) return std::nullopt;
        auto x = std::move(got.front());
        got.pop_front();
        return x;
    }
    std::size_t size() {
        std::lock_guard l(m);
        return got.size();
    }
};

device_client connected_device(registry_manager& rm, const std::string& id) {
    auto cs = rm.device_connection_string(id);
    EXPECT_TRUE(cs) << cs.error().message;
    auto c = device_client::create_from_connection_string(*cs, dev_options(hub()));
    EXPECT_TRUE(c) << c.error().message;
    return std::move(*c);
}

// Feedback batches until a record for `message_id` arrives (other tests' records are skipped).
std::optional<feedback_record> feedback_for(service_client& sc, const std::string& message_id,
                                            std::chrono::seconds within = 20s) {
    auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
        auto batch = sc.receive_feedback(2s);
        EXPECT_TRUE(batch) << batch.error().message;
        if (!batch) return std::nullopt;
        for (auto& r : *batch)
            if (r.original_message_id == message_id) return r;
    }
    return std::nullopt;
}

}  // namespace

TEST(c2d, device_receives_with_properties_and_puback_completes_with_success_feedback) {
    auto rm = registry();
    auto id = unique("c2d-dev");
    auto d = rm.create_device(id);
    ASSERT_TRUE(d) << d.error().message;

    inbox in;
    auto dev = connected_device(rm, id);
    ASSERT_TRUE(dev.on_message([&](const received_c2d_message& m) { in.push(m); }));
    ASSERT_TRUE(dev.connect());

    auto sc = sender();
    ASSERT_TRUE(sc.connect());
    EXPECT_TRUE(sc.connected());
    c2d_message m("{\"cmd\":\"reboot\"}");
    m.message_id = unique("mid");
    m.correlation_id = "corr 1/2";
    m.content_type = "application/json";
    m.content_encoding = "utf-8";
    m.ack = c2d_ack::full;
    m.expiry_time = std::chrono::system_clock::now() + 1h;
    m.properties = {{"alert", "high temp"}, {"a&b", "c=d"}};
    auto sent = sc.send(id, m);
    ASSERT_TRUE(sent) << sent.error().message;

    auto got = in.pop(10s);
    ASSERT_TRUE(got) << "no C2D message reached the device";
    EXPECT_EQ(got->body, m.body);
    EXPECT_EQ(got->message_id, m.message_id);
    EXPECT_EQ(got->correlation_id, "corr 1/2");
    EXPECT_EQ(got->content_type, "application/json");
    EXPECT_EQ(got->content_encoding, "utf-8");
    EXPECT_EQ(got->ack, "full");
    EXPECT_EQ(got->to, "/devices/" + id + "/messages/deviceBound");
    EXPECT_FALSE(got->expiry_time_utc.empty());
    ASSERT_NE(got->property("alert"), nullptr);
    EXPECT_EQ(*got->property("alert"), "high temp");
    ASSERT_NE(got->property("a&b"), nullptr);
    EXPECT_EQ(*got->property("a&b"), "c=d");
    EXPECT_EQ(got->property("iothub-ack"), nullptr);  // a system property, not an application one

    // The PUBACK sent after the handler returned completed it: Success feedback, nothing left queued.
    auto fb = feedback_for(sc, m.message_id);
    ASSERT_TRUE(fb) << "no feedback record for " << m.message_id;
    EXPECT_EQ(fb->status_code, "Success");
    EXPECT_EQ(fb->device_id, id);
    EXPECT_EQ(fb->device_generation_id, d->generation_id);
    EXPECT_FALSE(fb->enqueued_time_utc.empty());

    dev.disconnect();
    ASSERT_TRUE(dev.connect());
    EXPECT_FALSE(in.pop(1500ms)) << "a completed message was delivered again";
    auto after = rm.get_device(id);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->cloud_to_device_message_count, 0);
}

TEST(c2d, message_sent_while_the_device_is_offline_arrives_when_it_connects) {
    auto rm = registry();
    auto id = unique("c2d-off");
    ASSERT_TRUE(rm.create_device(id));
    auto sc = sender();
    c2d_message m("queued");
    m.message_id = unique("mid");
    ASSERT_TRUE(sc.send(id, m));  // send() connects on its own

    inbox in;
    auto dev = connected_device(rm, id);
    ASSERT_TRUE(dev.on_message([&](const received_c2d_message& x) { in.push(x); }));
    ASSERT_TRUE(dev.connect());
    auto got = in.pop(10s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->body, "queued");
    EXPECT_EQ(got->message_id, m.message_id);
}

TEST(c2d, handler_that_throws_leaves_the_message_for_redelivery) {
    auto rm = registry();
    auto id = unique("c2d-throw");
    ASSERT_TRUE(rm.create_device(id));
    auto sc = sender();
    c2d_message m("again");
    m.message_id = unique("mid");
    ASSERT_TRUE(sc.send(id, m));

    std::atomic<int> calls{0};
    inbox in;
    auto dev = connected_device(rm, id);
    ASSERT_TRUE(dev.on_message([&](const received_c2d_message& x) {
        if (calls++ == 0) throw std::runtime_error("not now");
        in.push(x);
    }));
    ASSERT_TRUE(dev.connect());
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (calls == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    ASSERT_EQ(calls, 1);
    EXPECT_FALSE(in.pop(500ms));
    // No PUBACK went out: the hub hands the message back to the queue when the session ends.
    dev.disconnect();
    ASSERT_TRUE(dev.connect());
    auto got = in.pop(10s);
    ASSERT_TRUE(got) << "the unacknowledged message was not redelivered";
    EXPECT_EQ(got->message_id, m.message_id);
}

TEST(c2d, module_target_arrives_as_input_message) {
    auto rm = registry();
    auto id = unique("c2d-mdev");
    ASSERT_TRUE(rm.create_device(id));
    ASSERT_TRUE(rm.create_module(id, "mod1"));
    auto cs = rm.module_connection_string(id, "mod1");
    ASSERT_TRUE(cs);
    inbox in;
    auto mod = module_client::create_from_connection_string(*cs, dev_options(hub()));
    ASSERT_TRUE(mod);
    ASSERT_TRUE(mod->on_input_message([&](const received_c2d_message& x) { in.push(x); }));
    ASSERT_TRUE(mod->connect());

    auto sc = sender();
    c2d_message m("to the module");
    m.message_id = unique("mid");
    m.properties = {{"k", "v"}};
    auto r = sc.send(id, "mod1", m);
    ASSERT_TRUE(r) << r.error().message;
    auto got = in.pop(10s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->body, "to the module");
    EXPECT_EQ(got->message_id, m.message_id);
    EXPECT_EQ(got->input_name, "c2d");
    ASSERT_NE(got->property("k"), nullptr);
    EXPECT_EQ(*got->property("k"), "v");

    // Named input, as IoT Edge routes use.
    c2d_message n("named");
    n.properties = {{"iothub-inputname", "input7"}};
    ASSERT_TRUE(sc.send(id, "mod1", n));
    auto named = in.pop(10s);
    ASSERT_TRUE(named);
    EXPECT_EQ(named->input_name, "input7");
}

TEST(c2d, unknown_device_and_module_are_not_found) {
    auto rm = registry();
    auto sc = sender();
    auto r = sc.send(unique("nobody"), c2d_message("x"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::device_not_found) << r.error().message;
    EXPECT_FALSE(r.error().message.empty());

    auto id = unique("c2d-nomod");
    ASSERT_TRUE(rm.create_device(id));
    auto m = sc.send(id, "ghost", c2d_message("x"));
    ASSERT_FALSE(m);
    EXPECT_TRUE(m.error().code == errc::module_not_found || m.error().code == errc::device_not_found)
        << static_cast<int>(m.error().code) << ": " << m.error().message;
    // A rejected message does not spoil the connection.
    EXPECT_TRUE(sc.send(id, c2d_message("fine")));
}

TEST(c2d, fifty_first_message_is_queue_full_until_the_device_completes_some) {
    auto rm = registry();
    auto id = unique("c2d-full");
    ASSERT_TRUE(rm.create_device(id));
    auto sc = sender();
    for (int i = 0; i < 50; ++i) {
        auto r = sc.send(id, c2d_message("m" + std::to_string(i)));
        ASSERT_TRUE(r) << i << ": " << r.error().message;
    }
    auto full = sc.send(id, c2d_message("one too many"));
    ASSERT_FALSE(full);
    EXPECT_EQ(full.error().code, errc::device_queue_full) << full.error().message;

    // Receiving (PUBACK = complete) frees the queue.
    inbox in;
    auto dev = connected_device(rm, id);
    ASSERT_TRUE(dev.on_message([&](const received_c2d_message& x) { in.push(x); }));
    ASSERT_TRUE(dev.connect());
    for (int i = 0; i < 50; ++i) {
        auto got = in.pop(10s);
        ASSERT_TRUE(got) << "message " << i << " did not arrive";
        EXPECT_EQ(got->body, "m" + std::to_string(i));
    }
    // The last PUBACK may still be on its way: the queue has room again within a moment.
    result<void> again = error{errc::internal, "not tried"};
    for (int i = 0; i < 50 && !again; ++i) {
        again = sc.send(id, c2d_message("after"));
        if (!again && again.error().code != errc::device_queue_full) break;
        if (!again) std::this_thread::sleep_for(50ms);
    }
    EXPECT_TRUE(again) << again.error().message;
}

TEST(c2d, too_large_message_is_refused) {
    auto rm = registry();
    auto id = unique("c2d-big");
    ASSERT_TRUE(rm.create_device(id));
    auto sc = sender();
    auto r = sc.send(id, c2d_message(std::string(70 * 1024, 'x')));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::message_too_large) << r.error().message;
}

TEST(c2d, wrong_key_is_unauthorized) {
    auto cs = hub().connection_string();
    auto k = cs.find("SharedAccessKey=");
    ASSERT_NE(k, std::string::npos);
    cs = cs.substr(0, k) + "SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    auto sc = service_client::from_connection_string(cs, svc_options(hub()));
    ASSERT_TRUE(sc);
    auto r = sc->connect();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::unauthorized) << r.error().message;
    EXPECT_EQ(r.error().message.find("AAAAAAAA"), std::string::npos);  // no secret in the message
}

TEST(c2d, unreachable_hub_and_untrusted_ca_are_connection_failures) {
    auto o = svc_options(hub());
    o.amqp_port = test_support::free_port();
    auto sc = service_client::from_connection_string(hub().connection_string(), o);
    ASSERT_TRUE(sc);
    auto r = sc->send("d", c2d_message("x"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::connection_failed) << r.error().message;

    auto o2 = svc_options(hub());
    o2.tls.ca_file.clear();  // the system store does not know the hub's CA
    auto untrusted = service_client::from_connection_string(hub().connection_string(), o2);
    ASSERT_TRUE(untrusted);
    auto t = untrusted->connect();
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().code, errc::connection_failed);
    EXPECT_NE(t.error().message.find("certificate"), std::string::npos) << t.error().message;
}

TEST(c2d, receive_feedback_times_out_empty_and_close_reconnects) {
    auto sc = sender();
    // Drain whatever other tests left, then expect nothing within the timeout.
    for (int i = 0; i < 20; ++i) {
        auto b = sc.receive_feedback(300ms);
        ASSERT_TRUE(b) << b.error().message;
        if (b->empty()) break;
    }
    auto t0 = std::chrono::steady_clock::now();
    auto none = sc.receive_feedback(500ms);
    ASSERT_TRUE(none) << none.error().message;
    EXPECT_TRUE(none->empty());
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 450ms);
    sc.close();
    EXPECT_FALSE(sc.connected());
    EXPECT_TRUE(sc.connect());
    EXPECT_TRUE(sc.connected());
}

TEST(c2d, negative_ack_gives_no_feedback_for_success) {
    auto rm = registry();
    auto id = unique("c2d-neg");
    ASSERT_TRUE(rm.create_device(id));
    auto sc = sender();
    c2d_message pos("p");
    pos.message_id = unique("pos");
    pos.ack = c2d_ack::positive;
    c2d_message neg("n");
    neg.message_id = unique("neg");
    neg.ack = c2d_ack::negative;
    ASSERT_TRUE(sc.send(id, neg));
    ASSERT_TRUE(sc.send(id, pos));
    inbox in;
    auto dev = connected_device(rm, id);
    ASSERT_TRUE(dev.on_message([&](const received_c2d_message& x) { in.push(x); }));
    ASSERT_TRUE(dev.connect());
    ASSERT_TRUE(in.pop(10s));
    ASSERT_TRUE(in.pop(10s));
    // The positive one's Success record arrives; the negative one's completion produced none before it.
    auto deadline = std::chrono::steady_clock::now() + 20s;
    bool saw_pos = false, saw_neg = false;
    while (!saw_pos && std::chrono::steady_clock::now() < deadline) {
        auto b = sc.receive_feedback(2s);
        ASSERT_TRUE(b);
        for (auto& r : *b) {
            saw_pos = saw_pos || r.original_message_id == pos.message_id;
            saw_neg = saw_neg || r.original_message_id == neg.message_id;
        }
    }
    EXPECT_TRUE(saw_pos);
    EXPECT_FALSE(saw_neg);
}

TEST(c2d, purge_empties_the_queue_and_counts) {
    auto rm = registry();
    auto id = unique("c2d-purge");
    ASSERT_TRUE(rm.create_device(id));
    auto sc = sender();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(sc.send(id, c2d_message("p")));
    auto p = rm.purge_c2d_messages(id);
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->total_messages_purged, 3);
    EXPECT_EQ(p->device_id, id);
    EXPECT_TRUE(p->module_id.empty());
    auto again = rm.purge_c2d_messages(id);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->total_messages_purged, 0);

    // The device finds nothing.
    inbox in;
    auto dev = connected_device(rm, id);
    ASSERT_TRUE(dev.on_message([&](const received_c2d_message& x) { in.push(x); }));
    ASSERT_TRUE(dev.connect());
    EXPECT_FALSE(in.pop(1s));

    auto gone = rm.purge_c2d_messages(unique("nobody"));
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().code, errc::device_not_found);
}

TEST(c2d, purge_a_module_queue) {
    auto rm = registry();
    auto id = unique("c2d-mpurge");
    ASSERT_TRUE(rm.create_device(id));
    ASSERT_TRUE(rm.create_module(id, "m"));
    auto sc = sender();
    ASSERT_TRUE(sc.send(id, "m", c2d_message("1")));
    ASSERT_TRUE(sc.send(id, "m", c2d_message("2")));
    ASSERT_TRUE(sc.send(id, c2d_message("device's own")));
    auto p = rm.purge_c2d_messages(id, "m");
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->total_messages_purged, 2);
    EXPECT_EQ(p->module_id, "m");
    auto dp = rm.purge_c2d_messages(id);
    ASSERT_TRUE(dp);
    EXPECT_EQ(dp->total_messages_purged, 1);
}

TEST(c2d, sas_token_is_renewed_on_the_same_connection) {
    auto o = svc_options(hub());
    o.sas_token_ttl = 3s;  // renewed at 80%; the hub closes a connection whose token expired
    auto sc = service_client::from_connection_string(hub().connection_string(), o);
    ASSERT_TRUE(sc);
    auto rm = registry();
    auto id = unique("c2d-renew");
    ASSERT_TRUE(rm.create_device(id));
    ASSERT_TRUE(sc->send(id, c2d_message("before")));
    std::this_thread::sleep_for(5s);
    EXPECT_TRUE(sc->connected()) << "the hub dropped the connection: the token was not renewed";
    auto r = sc->send(id, c2d_message("after"));
    EXPECT_TRUE(r) << r.error().message;
}

TEST(c2d, next_call_reconnects_after_a_hub_restart) {
    auto rm = registry();
    auto id = unique("c2d-restart");
    ASSERT_TRUE(rm.create_device(id));
    auto sc = sender();
    ASSERT_TRUE(sc.send(id, c2d_message("one")));
    hub().stop();
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (sc.connected() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    EXPECT_FALSE(sc.connected());
    auto down = sc.send(id, c2d_message("nobody listens"));
    ASSERT_FALSE(down);
    EXPECT_EQ(down.error().code, errc::connection_failed) << down.error().message;
    hub().start();
    auto r = sc.send(id, c2d_message("two"));
    ASSERT_TRUE(r) << r.error().message;

    // Both durable messages reach the device, in order.
    inbox in;
    auto dev = connected_device(rm, id);
    ASSERT_TRUE(dev.on_message([&](const received_c2d_message& x) { in.push(x); }));
    ASSERT_TRUE(dev.connect());
    auto a = in.pop(10s);
    auto b = in.pop(10s);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->body, "one");
    EXPECT_EQ(b->body, "two");
}

TEST(c2d, concurrent_senders_share_one_client) {
    auto rm = registry();
    auto id = unique("c2d-conc");
    ASSERT_TRUE(rm.create_device(id));
    auto sc = sender();
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 10; ++i)
                if (sc.send(id, c2d_message(std::to_string(t) + "-" + std::to_string(i)))) ++ok;
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok, 40);
}

TEST(device_client, on_message_with_an_empty_handler_unsubscribes) {
    auto rm = registry();
    auto id = unique("c2d-unsub");
    ASSERT_TRUE(rm.create_device(id));
    inbox in;
    auto dev = connected_device(rm, id);
    ASSERT_TRUE(dev.on_message([&](const received_c2d_message& x) { in.push(x); }));
    ASSERT_TRUE(dev.connect());
    ASSERT_TRUE(dev.on_message(nullptr));
    auto sc = sender();
    ASSERT_TRUE(sc.send(id, c2d_message("kept")));
    EXPECT_FALSE(in.pop(1s));
    // Subscribing again gets the message the hub kept.
    ASSERT_TRUE(dev.on_message([&](const received_c2d_message& x) { in.push(x); }));
    auto got = in.pop(10s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->body, "kept");
}

TEST(registry_manager, device_https_c2d_receive_abandon_reject_complete_and_queue_count) {
    auto rm = registry();
    auto id = unique("c2d-http");
    ASSERT_TRUE(rm.create_device(id));
    auto empty = rm.receive_c2d_message(id);
    ASSERT_TRUE(empty) << empty.error().message;
    EXPECT_FALSE(*empty);

    auto sc = sender();
    c2d_message m("over https");
    m.message_id = "h1";
    m.correlation_id = "hc1";
    m.content_type = "text/plain";
    m.ack = c2d_ack::full;
    m.properties = {{"k", "v"}};
    ASSERT_TRUE(sc.send(id, m));
    ASSERT_TRUE(sc.send(id, c2d_message("second")));
    auto dev = rm.get_device(id);
    ASSERT_TRUE(dev);
    EXPECT_EQ(dev->cloud_to_device_message_count, 2);

    auto r = rm.receive_c2d_message(id);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_TRUE(*r);
    const auto first = **r;
    EXPECT_EQ(first.body, "over https");
    EXPECT_EQ(first.message_id, "h1");
    EXPECT_EQ(first.correlation_id, "hc1");
    EXPECT_EQ(first.content_type, "text/plain");
    EXPECT_EQ(first.ack, "full");
    EXPECT_FALSE(first.lock_token.empty());
    EXPECT_GT(first.sequence_number, 0);
    EXPECT_FALSE(first.enqueued_time_utc.empty());
    ASSERT_NE(first.property("k"), nullptr);
    EXPECT_EQ(*first.property("k"), "v");

    ASSERT_TRUE(rm.abandon_c2d_message(id, first.lock_token));
    auto stale = rm.complete_c2d_message(id, first.lock_token);
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().code, errc::message_lock_lost) << stale.error().message;

    auto again = rm.receive_c2d_message(id);
    ASSERT_TRUE(again && *again);
    EXPECT_EQ((*again)->message_id, "h1");
    EXPECT_EQ((*again)->delivery_count, first.delivery_count + 1);
    ASSERT_TRUE(rm.reject_c2d_message(id, (*again)->lock_token));
    auto fb = feedback_for(sc, "h1");
    ASSERT_TRUE(fb);
    EXPECT_EQ(fb->status_code, "Rejected");

    auto second = rm.receive_c2d_message(id);
    ASSERT_TRUE(second && *second);
    EXPECT_EQ((*second)->body, "second");
    ASSERT_TRUE(rm.complete_c2d_message(id, (*second)->lock_token));
    auto after = rm.get_device(id);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->cloud_to_device_message_count, 0);
    auto none = rm.receive_c2d_message(id);
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);
    EXPECT_EQ(rm.complete_c2d_message(id, "").error().code, errc::invalid_argument);
}

TEST(c2d, policy_without_service_connect_is_unauthorized) {
    auto& h = hub();
    std::string cmd = h.bin("twinhub") + " hub connection-string show --data-dir '" + h.data_dir().string() +
                      "' --policy-name registryRead";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    char buf[1024] = {};
    std::string cs = std::fgets(buf, sizeof buf, p) ? buf : "";
    ASSERT_EQ(::pclose(p), 0);
    while (!cs.empty() && (cs.back() == '\n' || cs.back() == '\r')) cs.pop_back();
    ASSERT_NE(cs.find("SharedAccessKeyName=registryRead"), std::string::npos) << cs;
    auto sc = service_client::from_connection_string(cs, svc_options(h));
    ASSERT_TRUE(sc);
    auto r = sc->send("anyone", c2d_message("x"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::unauthorized) << r.error().message;
    EXPECT_NE(r.error().message.find("ServiceConnect"), std::string::npos) << r.error().message;
}
