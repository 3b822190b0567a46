#include "proto/iothub/topics.hpp"

#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::iothub;

namespace {
const identity_key dev1{"dev1", ""};
const identity_key mod1{"dev1", "mod1"};
}  // namespace

TEST(username, parses_node_device_form_with_model_id) {
    auto u = parse_username(
        "localhost/dev1/"
        "?api-version=2021-04-12&model-id=dtmi:com:example:Thermostat;1&DeviceClientType=azure-iot-device%2F1.18.4%20("
        "node)");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "localhost");
    EXPECT_EQ(u->identity, dev1);
    EXPECT_EQ(u->param("model-id"), "dtmi:com:example:Thermostat;1");
    EXPECT_EQ(u->param("DeviceClientType"), "azure-iot-device/1.18.4 (node)");
}

TEST(username, parses_module_form_and_old_form_without_question_mark) {
    auto m = parse_username("h.local/dev1/mod1/?api-version=2019-10-01");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->identity, mod1);
    auto old = parse_username("h.local/dev1/api-version=2016-11-14");
    ASSERT_TRUE(old);
    EXPECT_EQ(old->identity, dev1);
    EXPECT_EQ(old->param("api-version"), "2016-11-14");
    auto bare = parse_username("h.local/dev1");
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->identity, dev1);
}

TEST(username, tolerates_bad_escapes_and_rejects_missing_identity) {
    auto u = parse_username("h/dev1/?x=%zz&flag");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->param("x"), "%zz");
    EXPECT_EQ(u->param("flag"), "");
    EXPECT_FALSE(parse_username("h/?api-version=1"));
    EXPECT_FALSE(parse_username("h//mod/?a=b"));
}

TEST(client_id, device_and_module_forms) {
    EXPECT_EQ(*parse_client_id("dev1"), dev1);
    EXPECT_EQ(*parse_client_id("dev1/mod1"), mod1);
    EXPECT_FALSE(parse_client_id(""));
    EXPECT_FALSE(parse_client_id("dev1/"));
    EXPECT_FALSE(parse_client_id("a/b/c"));
}

TEST(route_publish, telemetry_forms_of_5_4) {
    for (auto t : {"devices/dev1/messages/events", "devices/dev1/messages/events/", "devices/dev1/messages/events/a=b",
                   "devices/dev1/messages/events/a=b/"}) {
        auto r = route_publish(t, dev1);
        ASSERT_TRUE(r) << t;
        EXPECT_EQ(r->kind, publish_kind::telemetry);
    }
    EXPECT_EQ(route_publish("devices/dev1/messages/events/%24.mid=1&x=2/", dev1)->property_bag, "%24.mid=1&x=2");
    EXPECT_TRUE(route_publish("devices/dev1/modules/mod1/messages/events/%24.on=out1", mod1));
}

TEST(route_publish, other_identities_topics_are_refused) {
    EXPECT_FALSE(route_publish("devices/dev2/messages/events/", dev1));
    EXPECT_FALSE(route_publish("devices/dev1/messages/events/", mod1));  // a module on its device's topic
    EXPECT_FALSE(route_publish("devices/dev1/modules/mod2/messages/events/", mod1));
    EXPECT_FALSE(route_publish("devices/dev1/modules/mod1/messages/events/", dev1));
    EXPECT_FALSE(route_publish("devices/dev1/messages/eventsX", dev1));
    EXPECT_FALSE(route_publish("devices/dev1/messages/devicebound/x", dev1));
    EXPECT_FALSE(route_publish("random/topic", dev1));
}

TEST(route_publish, twin_and_method_topics_keep_rid_verbatim) {
    auto g = route_publish("$iothub/twin/GET/?$rid=363201b0-bf58", dev1);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->kind, publish_kind::twin_get);
    EXPECT_EQ(g->rid, "363201b0-bf58");
    auto p = route_publish("$iothub/twin/PATCH/properties/reported/?$rid=7&$version=3", mod1);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->kind, publish_kind::twin_patch);
    EXPECT_EQ(p->rid, "7");
    auto m = route_publish("$iothub/methods/res/200/?$rid=1f", dev1);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->kind, publish_kind::method_response);
    EXPECT_EQ(m->status, 200);
    EXPECT_FALSE(route_publish("$iothub/twin/GET/", dev1));
    EXPECT_FALSE(route_publish("$iothub/twin/PATCH/properties/desired/?$rid=1", dev1));
    EXPECT_FALSE(route_publish("$iothub/methods/res/abc/?$rid=1", dev1));
}

TEST(classify_filter, accepts_only_the_documented_filters_for_self) {
    EXPECT_EQ(*classify_filter("$iothub/twin/res/#", dev1), subscription_kind::twin_responses);
    EXPECT_EQ(*classify_filter("$iothub/twin/PATCH/properties/desired/#", mod1), subscription_kind::desired_patches);
    EXPECT_EQ(*classify_filter("$iothub/methods/POST/#", mod1), subscription_kind::methods);
    EXPECT_EQ(*classify_filter("devices/dev1/messages/devicebound/#", dev1), subscription_kind::c2d);
    EXPECT_EQ(*classify_filter("devices/dev1/modules/mod1/inputs/#", mod1), subscription_kind::module_inputs);
    EXPECT_FALSE(classify_filter("devices/dev1/messages/devicebound/#", mod1));
    EXPECT_FALSE(classify_filter("devices/dev1/modules/mod2/inputs/#", mod1));
    EXPECT_FALSE(classify_filter("devices/dev2/messages/devicebound/#", dev1));
    EXPECT_FALSE(classify_filter("#", dev1));
    EXPECT_FALSE(classify_filter("$iothub/twin/#", dev1));
}

TEST(hub_topics, exact_formats_the_c_sdk_tokenises) {
    EXPECT_EQ(twin_response_topic(200, "abc"), "$iothub/twin/res/200/?$rid=abc");
    EXPECT_EQ(twin_response_topic(204, "d3", 6), "$iothub/twin/res/204/?$rid=d3&$version=6");
    EXPECT_EQ(desired_patch_topic(3), "$iothub/twin/PATCH/properties/desired/?$version=3");
    EXPECT_EQ(method_request_topic("reboot", "1f"), "$iothub/methods/POST/reboot/?$rid=1f");
}

// ---- the device side (moved from tests/unit/client/topics_test.cpp) ----

TEST(device_topics, twin_response_with_status_rid_and_version) {
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

TEST(device_topics, desired_patch_version) {
    EXPECT_EQ(parse_desired_patch_topic("$iothub/twin/PATCH/properties/desired/?$version=3"), 3);
    EXPECT_EQ(parse_desired_patch_topic("$iothub/twin/PATCH/properties/desired/"), 0);
    EXPECT_FALSE(parse_desired_patch_topic("$iothub/twin/res/200/?$rid=1"));
}

TEST(device_topics, method_request_with_and_without_slash_before_query) {
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

TEST(device_topics, request_topics) {
    EXPECT_EQ(twin_get_topic("5"), "$iothub/twin/GET/?$rid=5");
    EXPECT_EQ(twin_patch_topic("6"), "$iothub/twin/PATCH/properties/reported/?$rid=6");
    EXPECT_EQ(method_response_topic(200, "1f"), "$iothub/methods/res/200/?$rid=1f");
}

TEST(device_topics, c2d_filters_for_device_and_module) {
    EXPECT_EQ(c2d_filter(dev1), "devices/dev1/messages/devicebound/#");
    EXPECT_EQ(c2d_filter(mod1), "devices/dev1/modules/mod1/inputs/#");
}

TEST(device_topics, c2d_topic_of_another_identity_or_kind_is_not_c2d) {
    EXPECT_FALSE(parse_c2d_topic("devices/dev10/messages/devicebound/p=1", dev1));
    EXPECT_FALSE(parse_c2d_topic("devices/dev1/messages/deviceboundX/p=1", dev1));
    EXPECT_FALSE(parse_c2d_topic("$iothub/twin/res/200/?$rid=1", dev1));
    EXPECT_FALSE(parse_c2d_topic("devices/dev1/modules/mod1/inputs/in1/p=1", identity_key{"dev1", "mod2"}));
    EXPECT_FALSE(parse_c2d_topic("devices/dev1/modules/mod1/inputs//p=1", mod1));
}

TEST(device_topics, c2d_topic_with_empty_bag_or_trailing_slash) {
    auto m = parse_c2d_topic("devices/dev1/messages/devicebound/", dev1);
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->properties.application.empty());
    EXPECT_TRUE(m->properties.system.empty());
    auto bare = parse_c2d_topic("devices/dev1/messages/devicebound", dev1);
    ASSERT_TRUE(bare);
    auto t = parse_c2d_topic("devices/dev1/messages/devicebound/p=1/", dev1);
    ASSERT_TRUE(t);
    ASSERT_EQ(t->properties.application.size(), 1u);
    EXPECT_EQ(t->properties.application[0].second, "1");
}

TEST(device_topics, module_input_topic_names_the_input) {
    auto m = parse_c2d_topic("devices/dev1/modules/mod1/inputs/in%201/%24.mid=m1&k=v", mod1);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->input_name, "in 1");
    ASSERT_EQ(m->properties.system.size(), 1u);
    EXPECT_EQ(m->properties.system[0].second, "m1");
    auto bare = parse_c2d_topic("devices/dev1/modules/mod1/inputs/c2d", mod1);
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->input_name, "c2d");
}
