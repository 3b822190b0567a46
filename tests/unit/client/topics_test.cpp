#include "client/topics.hpp"

#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::client;

// The SDK's adapters over the shared grammar; the grammar itself is tested in tests/unit/iothub.

TEST(topics, module_username_has_api_version_and_client_type) {
    auto u = mqtt_username("hub.local", "dev1", "mod1", "");
    EXPECT_TRUE(u.starts_with("hub.local/dev1/mod1/?api-version=2021-04-12&DeviceClientType=twinhub-cpp"));
    EXPECT_EQ(mqtt_username("h", "d", "", "dtmi:x;1").find("&model-id=dtmi%3Ax%3B1") != std::string::npos, true);
}

TEST(topics, telemetry_topic_encodes_system_then_application_properties) {
    message m("{}");
    m.message_id = "mid-1";
    m.correlation_id = "cid 1";
    m.content_type = "application/json";
    m.content_encoding = "utf-8";
    m.properties = {{"alert", "high temp"}, {"$weird", "a&b=c"}};
    EXPECT_EQ(telemetry_topic("dev1", "", m),
              "devices/dev1/messages/events/%24.mid=mid-1&%24.cid=cid%201&%24.ct=application%2Fjson&%24.ce=utf-8&"
              "alert=high%20temp&%24weird=a%26b%3Dc");
}

TEST(topics, module_output_event_topic) {
    message m;
    m.output_name = "out1";
    EXPECT_EQ(telemetry_topic("dev1", "mod1", m), "devices/dev1/modules/mod1/messages/events/%24.on=out1");
    EXPECT_EQ(telemetry_topic("dev1", "mod1", message{}), "devices/dev1/modules/mod1/messages/events/");
}

TEST(topics, c2d_topic_decodes_system_and_application_properties) {
    // The hub's own form (src/mqtt/session_c2d.cpp), and the capture all three SDKs parsed (spec 5.5).
    auto m = parse_c2d_topic("devices/dev1/messages/devicebound/%24.mid=abc&%24.cid=c%201&%24.uid=svc&"
                             "%24.to=%2Fdevices%2Fdev1%2Fmessages%2FdeviceBound&%24.ct=application%2Fjson&"
                             "%24.ce=utf-8&%24.exp=2026-12-07T10%3A00%3A00.000Z&iothub-ack=full&prop1=v%201&"
                             "a%26b=c%3Dd&empty=&bare",
                             "dev1", "");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->message_id, "abc");
    EXPECT_EQ(m->correlation_id, "c 1");
    EXPECT_EQ(m->user_id, "svc");
    EXPECT_EQ(m->to, "/devices/dev1/messages/deviceBound");
    EXPECT_EQ(m->content_type, "application/json");
    EXPECT_EQ(m->content_encoding, "utf-8");
    EXPECT_EQ(m->expiry_time_utc, "2026-12-07T10:00:00.000Z");
    EXPECT_EQ(m->ack, "full");
    EXPECT_TRUE(m->input_name.empty());
    using kv = std::pair<std::string, std::string>;
    EXPECT_EQ(m->properties, (std::vector<kv>{{"prop1", "v 1"}, {"a&b", "c=d"}, {"empty", ""}, {"bare", ""}}));
    ASSERT_NE(m->property("prop1"), nullptr);
    EXPECT_EQ(*m->property("prop1"), "v 1");
    EXPECT_EQ(m->property("missing"), nullptr);
}

TEST(topics, c2d_topic_with_empty_bag_or_trailing_slash) {
    auto m = parse_c2d_topic("devices/dev1/messages/devicebound/", "dev1", "");
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->properties.empty());
    auto t = parse_c2d_topic("devices/dev1/messages/devicebound/p=1/", "dev1", "");
    ASSERT_TRUE(t);
    ASSERT_EQ(t->properties.size(), 1u);
    EXPECT_EQ(t->properties[0].second, "1");
}

TEST(topics, c2d_topic_of_another_identity_or_kind_is_not_c2d) {
    EXPECT_FALSE(parse_c2d_topic("devices/dev10/messages/devicebound/p=1", "dev1", ""));
    EXPECT_FALSE(parse_c2d_topic("devices/dev1/messages/deviceboundX/p=1", "dev1", ""));
    EXPECT_FALSE(parse_c2d_topic("$iothub/twin/res/200/?$rid=1", "dev1", ""));
    EXPECT_FALSE(parse_c2d_topic("devices/dev1/modules/mod1/inputs/in1/p=1", "dev1", "mod2"));
    EXPECT_FALSE(parse_c2d_topic("devices/dev1/modules/mod1/inputs//p=1", "dev1", "mod1"));
}

TEST(topics, module_input_topic_names_the_input) {
    auto m = parse_c2d_topic("devices/dev1/modules/mod1/inputs/in%201/%24.mid=m1&k=v", "dev1", "mod1");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->input_name, "in 1");
    EXPECT_EQ(m->message_id, "m1");
    ASSERT_EQ(m->properties.size(), 1u);
    EXPECT_EQ(m->properties[0].first, "k");
    auto bare = parse_c2d_topic("devices/dev1/modules/mod1/inputs/c2d", "dev1", "mod1");
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->input_name, "c2d");
}

TEST(c2d_ack, names_round_trip_case_insensitively) {
    for (auto a : {c2d_ack::none, c2d_ack::positive, c2d_ack::negative, c2d_ack::full})
        EXPECT_EQ(parse_c2d_ack(to_string(a)), a);
    EXPECT_EQ(parse_c2d_ack("FULL"), c2d_ack::full);
    EXPECT_FALSE(parse_c2d_ack("fulll"));
    EXPECT_FALSE(parse_c2d_ack(""));
}
