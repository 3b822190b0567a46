// In-process tests of the MQTT session over real TLS sockets (port 0, memory store).
#include "hub_harness.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::mqtt;
using namespace twinhub::mqtt::test;
using namespace std::chrono_literals;

namespace {

mqtt::subscribe sub(std::uint16_t pid, std::vector<std::pair<std::string, qos>> filters) {
    mqtt::subscribe s;
    s.packet_id = pid;
    for (auto& [f, q] : filters) s.subscriptions.push_back({f, q});
    return s;
}

mqtt::publish pub(std::string topic, std::string payload = " ", qos q = qos::at_most_once, std::uint16_t pid = 0) {
    mqtt::publish p;
    p.topic = std::move(topic);
    p.payload = std::move(payload);
    p.qos = q;
    p.packet_id = pid;
    return p;
}

boost::json::value json_of(const mqtt::publish& p) { return boost::json::parse(p.payload); }

struct session_test : ::testing::Test {
    hub_harness h;
    std::string key = h.add_device("dev1");

    std::unique_ptr<test_client> connected(const mqtt::connect& c) {
        auto cl = std::make_unique<test_client>(h.server->port());
        cl->handshake();
        auto ack = cl->connect_with(c);
        EXPECT_EQ(ack.return_code, connect_return_code::accepted);
        return cl;
    }
};

void expect_refused(test_client& c, const mqtt::connect& p) {
    auto ack = c.connect_with(p);
    EXPECT_EQ(ack.return_code, connect_return_code::not_authorized);
    EXPECT_FALSE(ack.session_present);
    EXPECT_TRUE(c.closed_within(2s));
}

}  // namespace

TEST_F(session_test, connect_with_valid_device_sas_is_accepted_and_marks_device_connected) {
    auto c = connected(connect_packet("dev1", "", key));
    for (int i = 0; i < 50 && h.hub->get_device("dev1")->connection_state != registry::connection_state::connected; ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_EQ(h.hub->get_device("dev1")->connection_state, registry::connection_state::connected);
}

TEST_F(session_test, tls_serves_tls13_and_tls12_aead_and_refuses_cbc) {
    // The MQTT head terminates TLS with the hub's policy (src/server/server_tls).
    test_client cbc(h.server->port());
    SSL_set_max_proto_version(cbc.native(), TLS1_2_VERSION);
    ASSERT_EQ(SSL_set_cipher_list(cbc.native(), "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:AES128-SHA"), 1);
    EXPECT_THROW(cbc.handshake(), boost::system::system_error);

    test_client gcm(h.server->port());
    SSL_set_max_proto_version(gcm.native(), TLS1_2_VERSION);
    ASSERT_EQ(SSL_set_cipher_list(gcm.native(), "ECDHE-ECDSA-AES128-GCM-SHA256"), 1);
    gcm.handshake();
    EXPECT_STREQ(SSL_get_version(gcm.native()), "TLSv1.2");
    EXPECT_EQ(gcm.connect_with(connect_packet("dev1", "", key)).return_code, connect_return_code::accepted);

    test_client modern(h.server->port());
    modern.handshake();
    EXPECT_STREQ(SSL_get_version(modern.native()), "TLSv1.3");
}

TEST_F(session_test, connect_failures_all_get_connack_5_and_close) {
    const std::string wrong_key = generate_key();
    {
        test_client c(h.server->port());
        c.handshake();
        expect_refused(c, connect_packet("dev1", "", wrong_key));
    }
    {  // unknown device
        test_client c(h.server->port());
        c.handshake();
        expect_refused(c, connect_packet("nosuch", "", key));
    }
    {  // client id differs from the user name identity
        test_client c(h.server->port());
        c.handshake();
        auto p = connect_packet("dev1", "", key);
        p.client_id = "dev2";
        expect_refused(c, p);
    }
    {  // unknown host in the user name
        test_client c(h.server->port());
        c.handshake();
        auto p = connect_packet("dev1", "", key);
        p.username = "other.host/dev1/?api-version=2021-04-12";
        expect_refused(c, p);
    }
    {  // expired token
        test_client c(h.server->port());
        c.handshake();
        auto p = connect_packet("dev1", "", key);
        p.password = sas_for("dev1", "", key, -10s);
        expect_refused(c, p);
    }
    {  // no password
        test_client c(h.server->port());
        c.handshake();
        auto p = connect_packet("dev1", "", key);
        p.password.reset();
        expect_refused(c, p);
    }
}

TEST_F(session_test, disabled_device_is_refused_and_disabling_disconnects_it) {
    auto c = connected(connect_packet("dev1", "", key));
    h.set_device_enabled("dev1", false);
    EXPECT_TRUE(c->closed_within(3s));
    test_client again(h.server->port());
    again.handshake();
    expect_refused(again, connect_packet("dev1", "", key));
}

TEST_F(session_test, deleting_a_connected_device_disconnects_it) {
    auto c = connected(connect_packet("dev1", "", key));
    wait_for<void>([&](service::handler<void> d) { h.hub->delete_device("dev1", "*", std::move(d)); });
    EXPECT_TRUE(c->closed_within(3s));
}

TEST_F(session_test, first_packet_other_than_connect_closes_without_connack) {
    test_client c(h.server->port());
    c.handshake();
    c.send(pingreq{});
    EXPECT_TRUE(c.closed_within(2s));
}

TEST_F(session_test, protocol_level_3_gets_connack_1) {
    test_client c(h.server->port());
    c.handshake();
    auto p = connect_packet("dev1", "", key);
    p.protocol_level = 3;
    p.protocol_name = "MQIsdp";
    c.send(p);
    auto ack = c.expect<connack>();
    EXPECT_EQ(ack.return_code, connect_return_code::unacceptable_protocol_version);
    EXPECT_TRUE(c.closed_within(2s));
}

TEST(session_limits, oversize_connect_before_authentication_closes) {
    mqtt_options o;
    o.max_connect_packet_size = 1024;
    hub_harness h(o);
    auto key = h.add_device("dev1");
    test_client c(h.server->port());
    c.handshake();
    auto p = connect_packet("dev1", "", key);
    p.username = *p.username + "&pad=" + std::string(2000, 'x');
    c.send(p);
    EXPECT_TRUE(c.closed_within(2s));
}

TEST(session_limits, no_connect_within_the_time_limit_closes) {
    mqtt_options o;
    o.connect_timeout = 300ms;
    hub_harness h(o);
    test_client c(h.server->port());
    c.handshake();
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(c.closed_within(3s));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST(session_limits, silent_tcp_connection_without_tls_handshake_is_closed) {
    mqtt_options o;
    o.connect_timeout = 300ms;
    hub_harness h(o);
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), h.server->port()});
    char b[16];
    boost::system::error_code ec;
    s.read_some(asio::buffer(b), ec);  // blocks until the hub closes
    EXPECT_TRUE(ec);
}

TEST_F(session_test, keep_alive_is_enforced_at_one_and_a_half_times) {
    auto c = connected(connect_packet("dev1", "", key, true, 1));
    // Traffic keeps it open past 1.5 s...
    for (int i = 0; i < 5; ++i) {
        std::this_thread::sleep_for(500ms);
        c->send(pingreq{});
        c->expect<pingresp>();
    }
    // ...silence closes it after 1.5 s, not before 1 s.
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(c->closed_within(4s));
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(took, 1000ms);
    EXPECT_LT(took, 2500ms);
}

TEST_F(session_test, qos2_publish_closes_the_connection) {
    auto c = connected(connect_packet("dev1", "", key));
    c->send(pub("devices/dev1/messages/events/", "x", qos::exactly_once, 1));
    EXPECT_TRUE(c->closed_within(2s));
}

TEST_F(session_test, subscribe_grants_at_most_qos1_with_one_entry_per_filter) {
    auto c = connected(connect_packet("dev1", "", key));
    c->send(sub(7, {{"$iothub/twin/res/#", qos::at_most_once},
                    {"$iothub/methods/POST/#", qos::exactly_once},
                    {"devices/dev1/messages/devicebound/#", qos::at_least_once}}));
    auto ack = c->expect<suback>();
    EXPECT_EQ(ack.packet_id, 7);
    ASSERT_EQ(ack.return_codes.size(), 3u);
    EXPECT_EQ(ack.return_codes[0], suback_return_code::granted_qos_0);
    EXPECT_EQ(ack.return_codes[1], suback_return_code::granted_qos_1);
    EXPECT_EQ(ack.return_codes[2], suback_return_code::granted_qos_1);
}

TEST_F(session_test, twin_get_and_reported_patch_round_trip) {
    auto c = connected(connect_packet("dev1", "", key));
    c->send(sub(1, {{"$iothub/twin/res/#", qos::at_most_once}}));
    c->expect<suback>();
    c->send(pub("$iothub/twin/PATCH/properties/reported/?$rid=p1", R"({"fw":"2.0","nested":{"a":1}})"));
    auto r = c->expect<publish>();
    EXPECT_EQ(r.topic, "$iothub/twin/res/204/?$rid=p1&$version=2");
    EXPECT_TRUE(r.payload.empty());
    // QoS 1 request (Python): PUBACK as well as the response.
    c->send(pub("$iothub/twin/GET/?$rid=g-1", " ", qos::at_least_once, 9));
    EXPECT_EQ(c->expect<puback>().packet_id, 9);
    auto g = c->expect<publish>();
    EXPECT_EQ(g.topic, "$iothub/twin/res/200/?$rid=g-1");
    auto v = json_of(g);
    EXPECT_EQ(v.at("reported").at("fw"), "2.0");
    EXPECT_EQ(v.at("reported").at("$version"), 2);
    EXPECT_EQ(v.at("desired").at("$version"), 1);
    EXPECT_FALSE(v.as_object().contains("properties"));
    EXPECT_FALSE(v.at("reported").as_object().contains("$metadata"));
    // The service sees it with $metadata.
    auto twin = h.hub->get_twin({"dev1", ""});
    ASSERT_TRUE(twin);
    EXPECT_TRUE(twin->at("properties").at("reported").as_object().contains("$metadata"));
}

TEST_F(session_test, bad_reported_patch_gets_an_error_body_with_error_code) {
    auto c = connected(connect_packet("dev1", "", key));
    c->send(sub(1, {{"$iothub/twin/res/#", qos::at_most_once}}));
    c->expect<suback>();
    c->send(pub("$iothub/twin/PATCH/properties/reported/?$rid=bad", "{not json"));
    auto r = c->expect<publish>();
    EXPECT_EQ(r.topic, "$iothub/twin/res/400/?$rid=bad");
    auto v = json_of(r);
    EXPECT_TRUE(v.at("errorCode").is_int64());
    EXPECT_EQ(v.at("errorCode").as_int64() / 1000, 400);
    EXPECT_TRUE(v.as_object().contains("trackingId"));
    EXPECT_TRUE(v.as_object().contains("message"));
    EXPECT_TRUE(v.as_object().contains("timestampUtc"));
    c->send(pub("$iothub/twin/PATCH/properties/reported/?$rid=bad2", R"({"bad.key":1})"));
    auto r2 = c->expect<publish>();
    EXPECT_EQ(r2.topic, "$iothub/twin/res/400/?$rid=bad2");
    EXPECT_EQ(json_of(r2).at("errorCode"), 400004);
}

TEST_F(session_test, desired_patch_reaches_subscribed_session_with_nulls_and_version) {
    auto c = connected(connect_packet("dev1", "", key));
    h.patch_desired({"dev1", ""}, R"({"a":1,"b":2})");  // not subscribed yet: nothing sent
    c->send(sub(1, {{"$iothub/twin/PATCH/properties/desired/#", qos::at_most_once}}));
    c->expect<suback>();
    h.patch_desired({"dev1", ""}, R"({"a":5,"b":null})");
    auto p = c->expect<publish>();
    EXPECT_EQ(p.topic, "$iothub/twin/PATCH/properties/desired/?$version=3");
    EXPECT_EQ(json_of(p), boost::json::parse(R"({"a":5,"b":null,"$version":3})"));
}

// Regression (compat_mqtt_twin flake): an SDK GETs its twin, then subscribes to desired patches
// lazily; a patch committed in between must not be lost.
TEST_F(session_test, desired_patch_between_get_and_subscribe_is_replayed_on_subscribe) {
    auto c = connected(connect_packet("dev1", "", key));
    c->send(sub(1, {{"$iothub/twin/res/#", qos::at_most_once}}));
    c->expect<suback>();
    c->send(pub("$iothub/twin/GET/?$rid=g1"));
    auto got = c->expect<publish>();
    EXPECT_EQ(json_of(got).at("desired").at("$version"), 1);
    h.patch_desired({"dev1", ""}, R"({"a":1})");  // committed before the SUBSCRIBE arrives
    h.patch_desired({"dev1", ""}, R"({"a":null,"b":2})");
    c->send(sub(2, {{"$iothub/twin/PATCH/properties/desired/#", qos::at_most_once}}));
    auto p2 = c->expect<publish>();
    EXPECT_EQ(p2.topic, "$iothub/twin/PATCH/properties/desired/?$version=2");
    EXPECT_EQ(json_of(p2), boost::json::parse(R"({"a":1,"$version":2})"));
    auto p3 = c->expect<publish>();
    EXPECT_EQ(json_of(p3), boost::json::parse(R"({"a":null,"b":2,"$version":3})"));
    c->expect<suback>();
    h.patch_desired({"dev1", ""}, R"({"c":3})");
    EXPECT_EQ(json_of(c->expect<publish>()).at("$version"), 4);
}

TEST_F(session_test, desired_patches_arrive_in_version_order) {
    auto c = connected(connect_packet("dev1", "", key));
    c->send(sub(1, {{"$iothub/twin/PATCH/properties/desired/#", qos::at_most_once}}));
    c->expect<suback>();
    std::thread writer([&] {
        for (int i = 0; i < 50; ++i) h.patch_desired({"dev1", ""}, "{\"n\":" + std::to_string(i) + "}");
    });
    for (int i = 0; i < 50; ++i) {
        auto p = c->expect<publish>();
        EXPECT_EQ(json_of(p).at("$version"), i + 2);
        EXPECT_EQ(json_of(p).at("n"), i);
    }
    writer.join();
}

TEST_F(session_test, clean_session_0_keeps_subscriptions_across_reconnects) {
    {
        auto c = connected(connect_packet("dev1", "", key, false));
        c->send(sub(1, {{"$iothub/twin/res/#", qos::at_most_once},
                        {"$iothub/twin/PATCH/properties/desired/#", qos::at_most_once}}));
        c->expect<suback>();
        c->send(disconnect{});
    }
    auto c = std::make_unique<test_client>(h.server->port());
    c->handshake();
    auto ack = c->connect_with(connect_packet("dev1", "", key, false));
    EXPECT_EQ(ack.return_code, connect_return_code::accepted);
    EXPECT_TRUE(ack.session_present);
    // No new SUBSCRIBE: responses and desired patches still flow.
    c->send(pub("$iothub/twin/GET/?$rid=after"));
    EXPECT_EQ(c->expect<publish>().topic, "$iothub/twin/res/200/?$rid=after");
    h.patch_desired({"dev1", ""}, R"({"x":1})");
    EXPECT_EQ(c->expect<publish>().topic, "$iothub/twin/PATCH/properties/desired/?$version=2");
    // The record is in the store (survives a hub restart).
    auto rec = h.hub->get_session("dev1");
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->subscriptions.size(), 2u);
}

TEST_F(session_test, clean_session_1_discards_stored_subscriptions) {
    {
        auto c = connected(connect_packet("dev1", "", key, false));
        c->send(sub(1, {{"$iothub/twin/res/#", qos::at_most_once}}));
        c->expect<suback>();
        c->send(disconnect{});
    }
    auto c = std::make_unique<test_client>(h.server->port(), 500ms);
    c->handshake();
    auto ack = c->connect_with(connect_packet("dev1", "", key, true));
    EXPECT_FALSE(ack.session_present);
    c->send(pub("$iothub/twin/GET/?$rid=x"));
    EXPECT_FALSE(c->next());  // not subscribed: no response
    EXPECT_FALSE(c->closed());
    for (int i = 0; i < 50 && h.hub->get_session("dev1"); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_FALSE(h.hub->get_session("dev1"));
}

TEST_F(session_test, new_connection_for_same_identity_closes_the_old_one) {
    auto first = connected(connect_packet("dev1", "", key));
    auto second = connected(connect_packet("dev1", "", key));
    EXPECT_TRUE(first->closed_within(2s));
    second->send(pingreq{});
    second->expect<pingresp>();
    // The old connection's close does not mark the device disconnected.
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(h.hub->get_device("dev1")->connection_state, registry::connection_state::connected);
}

TEST_F(session_test, telemetry_is_acknowledged_after_it_is_in_the_log) {
    auto c = connected(connect_packet("dev1", "", key));
    c->send(pub("devices/dev1/messages/events/%24.mid=m1&%24.ct=application%2Fjson&alert=high%20temp", R"({"t":1})",
                qos::at_least_once, 5));
    EXPECT_EQ(c->expect<puback>().packet_id, 5);
    auto events = h.store->read_events(store::partition_of({"dev1", ""}, store::default_event_partitions), 0, 10);
    ASSERT_TRUE(events);
    ASSERT_EQ(events->size(), 1u);
    auto& e = events->front();
    EXPECT_EQ(e.body, R"({"t":1})");
    EXPECT_EQ(e.source, (store::identity_key{"dev1", ""}));
    auto has = [](auto& v, const std::string& k, const std::string& val) {
        for (auto& [a, b] : v)
            if (a == k && b == val) return true;
        return false;
    };
    EXPECT_TRUE(has(e.system_properties, "message-id", "m1"));
    EXPECT_TRUE(has(e.system_properties, "content-type", "application/json"));
    EXPECT_TRUE(has(e.application_properties, "alert", "high temp"));
}

TEST_F(session_test, unknown_topic_closes_the_connection) {
    auto c = connected(connect_packet("dev1", "", key));
    c->send(pub("some/random/topic"));
    EXPECT_TRUE(c->closed_within(2s));
}

TEST_F(session_test, unsupported_subscription_closes_the_connection) {
    auto c = connected(connect_packet("dev1", "", key));
    c->send(sub(1, {{"#", qos::at_most_once}}));
    EXPECT_TRUE(c->closed_within(2s));
}

TEST_F(session_test, model_id_in_user_name_reaches_the_twin) {
    auto p = connect_packet("dev1", "", key);
    p.username = hub_host + "/dev1/?api-version=2021-04-12&model-id=dtmi:com:example:Thermostat;1";
    auto c = connected(p);
    auto twin = h.hub->get_twin({"dev1", ""});
    ASSERT_TRUE(twin);
    EXPECT_EQ(twin->at("modelId"), "dtmi:com:example:Thermostat;1");
}

TEST_F(session_test, method_seam_delivers_requests_and_routes_responses) {
    struct sink : method_response_handler {
        std::promise<std::tuple<std::string, int, std::string>> got;
        void on_method_response(const store::identity_key&, const std::string& rid, int status,
                                const std::string& payload) override {
            got.set_value({rid, status, payload});
        }
    } s;
    h.server->set_method_response_handler(&s);
    auto c = connected(connect_packet("dev1", "", key));
    EXPECT_FALSE(h.server->send_method_request({"dev1", ""}, {"reboot", "1f", "{}"}));  // not subscribed
    c->send(sub(1, {{"$iothub/methods/POST/#", qos::at_most_once}}));
    c->expect<suback>();
    ASSERT_TRUE(h.server->send_method_request({"dev1", ""}, {"reboot", "1f", R"({"delay":5})"}));
    auto req = c->expect<publish>();
    EXPECT_EQ(req.topic, "$iothub/methods/POST/reboot/?$rid=1f");
    EXPECT_EQ(req.payload, R"({"delay":5})");
    c->send(pub("$iothub/methods/res/200/?$rid=1f", R"({"ok":true})"));
    auto f = s.got.get_future();
    ASSERT_EQ(f.wait_for(2s), std::future_status::ready);
    EXPECT_EQ(f.get(), std::make_tuple(std::string("1f"), 200, std::string(R"({"ok":true})")));
    h.server->set_method_response_handler(nullptr);
}

TEST(mqtt_server, start_on_a_busy_port_names_it_and_the_option) {
    hub_harness h;
    mqtt_options o;
    o.host_names = {hub_host};
    o.bind_address = "127.0.0.1";
    o.port = h.server->port();
    mqtt_server second(h.ioc, h.tls, *h.hub, o);
    auto r = second.start();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find(std::to_string(o.port)), std::string::npos);
    EXPECT_NE(r.error().message.find("--mqtt-port"), std::string::npos);
}

// Regression: the hub died of SIGPIPE when OpenSSL wrote to a socket whose peer had already gone.
TEST_F(session_test, peer_vanishing_while_responses_are_queued_does_not_kill_the_hub) {
    for (int round = 0; round < 20; ++round) {
        auto c = connected(connect_packet("dev1", "", key));
        c->send(sub(1, {{"$iothub/twin/res/#", qos::at_most_once}}));
        c->expect<suback>();
        for (int i = 0; i < 50; ++i) c->send(pub("$iothub/twin/GET/?$rid=" + std::to_string(i)));
        c.reset();  // close with responses in flight
    }
    auto c = connected(connect_packet("dev1", "", key));
    c->send(pingreq{});
    c->expect<pingresp>();
}
