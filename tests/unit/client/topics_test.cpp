#include "client/topics.hpp"

#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::client;

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

TEST(topics, twin_response_with_status_rid_and_version) {
    auto r = parse_twin_response_topic("$iothub/twin/res/204/?$rid=17&$version=6");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 204);
    EXPECT_EQ(r->rid, "17");
    EXPECT_EQ(r->version, 6);
    auto g = parse_twin_response_topic("$iothub/twin/res/200/?$rid=abc-def");
    ASSERT_TRUE(g);
    EXPECT_FALSE(g->version);
    EXPECT_FALSE(parse_twin_response_topic("$iothub/twin/res/200/"));
    EXPECT_FALSE(parse_twin_response_topic("$iothub/twin/PATCH/properties/desired/?$version=3"));
}

TEST(topics, desired_patch_version) {
    EXPECT_EQ(parse_desired_patch_topic("$iothub/twin/PATCH/properties/desired/?$version=3"), 3);
    EXPECT_EQ(parse_desired_patch_topic("$iothub/twin/PATCH/properties/desired/"), 0);
    EXPECT_FALSE(parse_desired_patch_topic("$iothub/twin/res/200/?$rid=1"));
}

TEST(topics, method_request_with_and_without_slash_before_query) {
    auto m = parse_method_topic("$iothub/methods/POST/reboot/?$rid=1f");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->method_name, "reboot");
    EXPECT_EQ(m->rid, "1f");
    auto n = parse_method_topic("$iothub/methods/POST/get%20state?$rid=2");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->method_name, "get state");
    EXPECT_FALSE(parse_method_topic("$iothub/methods/POST/?$rid=2"));
    EXPECT_FALSE(parse_method_topic("$iothub/methods/POST/x/"));
}

TEST(topics, request_topics) {
    EXPECT_EQ(twin_get_topic("5"), "$iothub/twin/GET/?$rid=5");
    EXPECT_EQ(twin_patch_topic("6"), "$iothub/twin/PATCH/properties/reported/?$rid=6");
    EXPECT_EQ(method_response_topic(200, "1f"), "$iothub/methods/res/200/?$rid=1f");
}
