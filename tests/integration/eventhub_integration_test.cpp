// The C++ SDK's event_consumer against a real twinhubd over loopback TLS: telemetry sent by
// device_client / module_client over MQTT is read from the built-in Event Hubs-compatible endpoint
// (AMQP: CBS, $management READ, partition receivers with selector filters) in order, with its
// properties and IoT Hub annotations; start positions; credit replenishment; refusals.
#include "hub_process.hpp"

#include "twinhub/device_client.hpp"
#include "twinhub/event_consumer.hpp"
#include "twinhub/module_client.hpp"
#include "twinhub/registry_manager.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
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

service_options svc_options() {
    service_options o;
    o.tls.ca_file = hub().ca_file();
    o.port = hub().https_port();
    o.amqp_port = hub().amqp_port();
    o.timeout = 15s;
    return o;
}

registry_manager registry() {
    auto r = registry_manager::from_connection_string(hub().connection_string(), svc_options());
    EXPECT_TRUE(r) << r.error().message;
    return std::move(*r);
}

event_consumer consumer(event_consumer_options o, const std::string& cs) {
    o.service = svc_options();
    auto c = event_consumer::from_connection_string(cs, std::move(o));
    EXPECT_TRUE(c) << c.error().message;
    return std::move(*c);
}
event_consumer consumer(event_consumer_options o) {
    return consumer(std::move(o), hub().connection_string());
}
event_consumer consumer() {
    return consumer(event_consumer_options());
}

event_consumer_options starting(event_position p) {
    event_consumer_options o;
    o.start = p;
    return o;
}

std::string unique(const std::string& base) {
    static std::atomic<int> n{0};
    return base + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

client_options dev_options() {
    client_options o;
    o.tls.ca_file = hub().ca_file();
    o.port = hub().mqtt_port();
    o.operation_timeout = 10s;
    return o;
}

device_client device(registry_manager& rm, const std::string& id) {
    EXPECT_TRUE(rm.create_device(id));
    auto cs = rm.device_connection_string(id);
    EXPECT_TRUE(cs) << cs.error().message;
    auto c = device_client::create_from_connection_string(*cs, dev_options());
    EXPECT_TRUE(c) << c.error().message;
    EXPECT_TRUE(c->connect());
    return std::move(*c);
}

void send(hub_client& c, const std::string& body, std::vector<std::pair<std::string, std::string>> props = {}) {
    message m(body);
    m.message_id = unique("mid");
    m.content_type = "application/json";
    m.content_encoding = "utf-8";
    m.properties = std::move(props);
    auto r = c.send_message(m);
    ASSERT_TRUE(r) << r.error().message;
}

// The next `n` events of `device_id` (others' events are skipped), or fewer when `within` ends.
std::vector<event_data> events_of(event_consumer& c, const std::string& device_id, std::size_t n,
                                  std::chrono::seconds within = 20s) {
    std::vector<event_data> out;
    auto deadline = std::chrono::steady_clock::now() + within;
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
        auto e = c.receive(1s);
        EXPECT_TRUE(e) << e.error().message;
        if (!e) break;
        if (*e && (*e)->device_id == device_id) out.push_back(std::move(**e));
    }
    return out;
}

std::string sys_text(const event_data& e, const char* key) {
    auto* v = e.system_properties.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

TEST(event_consumer, reads_device_telemetry_in_order_with_properties_and_annotations) {
    auto rm = registry();
    auto ec = consumer();  // latest: only what is sent from now on
    ASSERT_TRUE(ec.connect());
    EXPECT_TRUE(ec.connected());
    auto ids = ec.partition_ids();
    ASSERT_TRUE(ids) << ids.error().message;
    ASSERT_FALSE(ids->empty());

    const auto id = unique("eh-dev");
    auto dev = device(rm, id);
    const auto before = std::chrono::system_clock::now() - 2s;
    for (int i = 0; i < 5; ++i)
        send(dev, "{\"n\":" + std::to_string(i) + "}", {{"seq", std::to_string(i)}, {"kind", "temp"}});

    auto got = events_of(ec, id, 5);
    ASSERT_EQ(got.size(), 5u);
    for (int i = 0; i < 5; ++i) {
        const auto& e = got[i];
        EXPECT_EQ(e.body, "{\"n\":" + std::to_string(i) + "}");
        // An AMQP map: the names and values are kept, not the order they were sent in.
        auto props = e.properties;
        std::sort(props.begin(), props.end());
        EXPECT_EQ(props,
                  (std::vector<std::pair<std::string, std::string>>{{"kind", "temp"}, {"seq", std::to_string(i)}}));
        EXPECT_TRUE(e.module_id.empty());
        EXPECT_EQ(sys_text(e, "iothub-connection-device-id"), id);
        EXPECT_EQ(sys_text(e, "content-type"), "application/json");
        EXPECT_EQ(sys_text(e, "content-encoding"), "utf-8");
        EXPECT_EQ(sys_text(e, "message-id").rfind("mid-", 0), 0u);
        EXPECT_EQ(sys_text(e, "iothub-message-source"), "Telemetry");
        EXPECT_TRUE(e.system_properties.contains("iothub-enqueuedtime"));
        EXPECT_FALSE(e.system_properties.contains("x-opt-sequence-number"));  // a typed field instead
        EXPECT_TRUE(e.annotations.contains("x-opt-sequence-number"));
        EXPECT_NE(std::find(ids->begin(), ids->end(), e.partition), ids->end()) << e.partition;
        EXPECT_EQ(e.offset, std::to_string(e.sequence_number));
        EXPECT_GE(e.enqueued_time, before);
        EXPECT_LE(e.enqueued_time, std::chrono::system_clock::now() + 2s);
        if (i > 0) {
            EXPECT_EQ(e.partition, got[i - 1].partition);  // one device, one partition, in order
            EXPECT_GT(e.sequence_number, got[i - 1].sequence_number);
        }
    }

    auto info = ec.partition_info(got.back().partition);
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->partition, got.back().partition);
    EXPECT_GE(info->last_enqueued_sequence_number, got.back().sequence_number);
    EXPECT_FALSE(info->is_empty);
    auto missing = ec.partition_info("9999");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, errc::not_found);
}

TEST(event_consumer, module_events_carry_the_module_id) {
    auto rm = registry();
    auto ec = consumer();
    ASSERT_TRUE(ec.connect());
    const auto id = unique("eh-edge");
    ASSERT_TRUE(rm.create_device(id));
    ASSERT_TRUE(rm.create_module(id, "filter"));
    auto cs = rm.module_connection_string(id, "filter");
    ASSERT_TRUE(cs) << cs.error().message;
    auto mc = module_client::create_from_connection_string(*cs, dev_options());
    ASSERT_TRUE(mc) << mc.error().message;
    ASSERT_TRUE(mc->connect());
    send(*mc, "{\"from\":\"module\"}");
    auto got = events_of(ec, id, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].module_id, "filter");
    EXPECT_EQ(sys_text(got[0], "iothub-connection-module-id"), "filter");
    EXPECT_EQ(got[0].body, "{\"from\":\"module\"}");
}

TEST(event_consumer, start_positions_earliest_latest_enqueued_time_and_sequence_number) {
    auto rm = registry();
    const auto id = unique("eh-pos");
    auto dev = device(rm, id);
    send(dev, "\"A\"");
    // Wait until A is stored (an earliest reader sees it), and note where it is.
    auto early = consumer(starting(event_position::earliest()));
    auto a = events_of(early, id, 1);
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].body, "\"A\"");

    std::this_thread::sleep_for(20ms);
    const auto between = std::chrono::system_clock::now();
    std::this_thread::sleep_for(20ms);
    auto latest = consumer(starting(event_position::latest()));
    ASSERT_TRUE(latest.connect());
    auto by_time = consumer(starting(event_position::from_enqueued_time(between)));
    ASSERT_TRUE(by_time.connect());
    event_consumer_options from_seq;
    from_seq.partition_start[a[0].partition] = event_position::from_sequence_number(a[0].sequence_number, true);
    from_seq.start = event_position::latest();
    auto by_seq = consumer(from_seq);
    ASSERT_TRUE(by_seq.connect());

    send(dev, "\"B\"");
    auto l = events_of(latest, id, 1);
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].body, "\"B\"");  // attached after A: A is not read
    auto t = events_of(by_time, id, 1);
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].body, "\"B\"");  // A was enqueued before `between`
    auto s = events_of(by_seq, id, 2);
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0].body, "\"A\"");  // inclusive of A's sequence number
    EXPECT_EQ(s[1].body, "\"B\"");
    auto e = events_of(early, id, 1);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].body, "\"B\"");
    EXPECT_GT(e[0].sequence_number, a[0].sequence_number);
}

TEST(event_consumer, credit_is_granted_back_as_events_are_taken) {
    auto rm = registry();
    event_consumer_options o;
    o.prefetch = 2;  // a window of two events per partition
    auto ec = consumer(o);
    ASSERT_TRUE(ec.connect());
    const auto id = unique("eh-credit");
    auto dev = device(rm, id);
    for (int i = 0; i < 12; ++i) send(dev, std::to_string(i));
    auto got = events_of(ec, id, 12);
    ASSERT_EQ(got.size(), 12u);
    for (int i = 0; i < 12; ++i) EXPECT_EQ(got[i].body, std::to_string(i));
    auto none = ec.receive(300ms);
    ASSERT_TRUE(none);
}

TEST(event_consumer, unknown_consumer_group_is_not_found) {
    event_consumer_options o;
    o.consumer_group = "no-such-group";
    auto ec = consumer(o);
    auto r = ec.connect();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::not_found) << r.error().message;
    EXPECT_NE(r.error().message.find("no-such-group"), std::string::npos) << r.error().message;
    EXPECT_FALSE(ec.connected());
    auto rr = ec.receive(1s);
    ASSERT_FALSE(rr);
    EXPECT_EQ(rr.error().code, errc::not_found);
}

TEST(event_consumer, reads_only_the_partitions_asked_for) {
    auto probe = consumer();
    auto ids = probe.partition_ids();
    ASSERT_TRUE(ids) << ids.error().message;
    event_consumer_options bad;
    bad.partitions = {"no-such-partition"};
    auto ec = consumer(bad);
    auto r = ec.connect();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::not_found) << r.error().message;

    // One device's events land on one partition: a reader of only that one sees them.
    auto rm = registry();
    const auto id = unique("eh-part");
    auto dev = device(rm, id);
    send(dev, "\"x\"");
    auto all = consumer(starting(event_position::earliest()));
    auto x = events_of(all, id, 1);
    ASSERT_EQ(x.size(), 1u);
    event_consumer_options one = starting(event_position::earliest());
    one.partitions = {x[0].partition};
    auto only = consumer(one);
    auto got = events_of(only, id, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].partition, x[0].partition);
    if (ids->size() > 1) {
        event_consumer_options other = starting(event_position::earliest());
        for (auto& p : *ids)
            if (p != x[0].partition) other.partitions.push_back(p);
        auto rest = consumer(other);
        EXPECT_TRUE(events_of(rest, id, 1, 2s).empty());
    }
}

TEST(event_consumer, policy_without_service_connect_is_unauthorized) {
    // registryRead's connection string, as a user would print it.
    std::string cmd = "'" + hub().bin("twinhub") +
                      "' hub connection-string show --policy-name registryRead --data-dir '" +
                      hub().data_dir().string() + "'";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string cs;
    char buf[1024];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) cs.append(buf, n);
    ASSERT_EQ(::pclose(p), 0);
    while (!cs.empty() && (cs.back() == '\n' || cs.back() == '\r')) cs.pop_back();
    ASSERT_NE(cs.find("SharedAccessKeyName=registryRead"), std::string::npos) << cs;

    auto ec = consumer(event_consumer_options(), cs);
    auto r = ec.connect();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::unauthorized) << r.error().message;
    auto ids = ec.partition_ids();
    ASSERT_FALSE(ids);
    EXPECT_EQ(ids.error().code, errc::unauthorized);
}

TEST(event_consumer, bad_arguments_are_invalid_argument) {
    auto dev_cs = "HostName=h;DeviceId=d;SharedAccessKey=" + std::string("AAAA");
    auto a = event_consumer::from_connection_string(dev_cs);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().code, errc::invalid_argument);
    event_consumer_options o;
    o.consumer_group = "";
    auto b = event_consumer::from_connection_string(hub().connection_string(), o);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().code, errc::invalid_argument);
    event_consumer_options z;
    z.prefetch = 0;
    auto c = event_consumer::from_connection_string(hub().connection_string(), z);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, errc::invalid_argument);
}

// Last in this file: it restarts the shared hub.
TEST(event_consumer, reconnects_after_a_hub_restart_and_resumes_after_the_last_event_returned) {
    auto rm = registry();
    const auto id = unique("eh-restart");
    auto ec = consumer(starting(event_position::earliest()));
    {
        auto dev = device(rm, id);
        send(dev, "\"one\"");
        send(dev, "\"two\"");
    }
    auto first = events_of(ec, id, 1);
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].body, "\"one\"");

    hub().stop();
    hub().start();
    // The lost connection is reported once (or not at all if the next call already reconnects).
    std::vector<event_data> got;
    bool sent_three = false;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (got.size() < 2 && std::chrono::steady_clock::now() < deadline) {
        auto e = ec.receive(1s);
        if (!e) {
            EXPECT_EQ(e.error().code, errc::connection_failed) << e.error().message;
            continue;
        }
        if (*e && (*e)->device_id == id) got.push_back(std::move(**e));
        if (got.size() == 1 && !sent_three) {
            sent_three = true;
            auto dev =
                device_client::create_from_connection_string(*registry().device_connection_string(id), dev_options());
            ASSERT_TRUE(dev && dev->connect());
            send(*dev, "\"three\"");
        }
    }
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].body, "\"two\"");  // not "one" again: resumed after the last event returned
    EXPECT_EQ(got[1].body, "\"three\"");
    EXPECT_TRUE(ec.connected());
}
