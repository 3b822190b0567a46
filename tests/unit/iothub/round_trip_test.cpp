// One grammar, two users: what one side of the connection builds, the other side parses back. The
// hub's builders feed the SDK's parsers and the SDK's builders feed the hub's router.
#include "proto/iothub/topics.hpp"

#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::iothub;
using kv = std::pair<std::string, std::string>;

namespace {
const identity_key dev1{"dev1", ""};
const identity_key mod1{"dev1", "mod1"};
}  // namespace

TEST(round_trip, sdk_username_is_parsed_by_the_hub) {
    for (const auto& id : {dev1, mod1}) {
        auto u = make_username("hub.local", id, {{"api-version", api_version}, {"model-id", "dtmi:x;1"}});
        auto p = parse_username(u);
        ASSERT_TRUE(p) << u;
        EXPECT_EQ(p->host, "hub.local");
        EXPECT_EQ(p->identity, id);
        EXPECT_EQ(p->param("api-version"), std::string(api_version));
        EXPECT_EQ(p->param("model-id"), "dtmi:x;1");
    }
}

TEST(round_trip, sdk_telemetry_is_routed_and_decoded_by_the_hub) {
    property_bag bag;
    bag.system = {{"$.mid", "m 1"}, {"$.on", "out/1"}};
    bag.application = {{"a&b", "c=d"}, {"$weird", "x"}};
    for (const auto& id : {dev1, mod1}) {
        auto r = route_publish(telemetry_topic(id, bag), id);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->kind, publish_kind::telemetry);
        auto back = decode_property_bag(r->property_bag);
        ASSERT_TRUE(back);
        EXPECT_EQ(back->system, bag.system);
        EXPECT_EQ(back->application, bag.application);
    }
    // An identity's telemetry topic is never another's.
    EXPECT_FALSE(route_publish(telemetry_topic(dev1, bag), mod1));
    EXPECT_FALSE(route_publish(telemetry_topic(mod1, bag), dev1));
    EXPECT_TRUE(route_publish(telemetry_topic(dev1, {}), dev1));
}

TEST(round_trip, sdk_twin_and_method_requests_are_routed_by_the_hub) {
    auto g = route_publish(twin_get_topic("r-1"), dev1);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->kind, publish_kind::twin_get);
    EXPECT_EQ(g->rid, "r-1");
    auto p = route_publish(twin_patch_topic("r-2"), mod1);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->kind, publish_kind::twin_patch);
    EXPECT_EQ(p->rid, "r-2");
    auto m = route_publish(method_response_topic(404, "r-3"), dev1);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->kind, publish_kind::method_response);
    EXPECT_EQ(m->status, 404);
    EXPECT_EQ(m->rid, "r-3");
}

TEST(round_trip, sdk_subscriptions_are_accepted_by_the_hub) {
    EXPECT_EQ(*classify_filter(twin_response_filter, dev1), subscription_kind::twin_responses);
    EXPECT_EQ(*classify_filter(desired_patch_filter, dev1), subscription_kind::desired_patches);
    EXPECT_EQ(*classify_filter(methods_filter, mod1), subscription_kind::methods);
    EXPECT_EQ(*classify_filter(c2d_filter(dev1), dev1), subscription_kind::c2d);
    EXPECT_EQ(*classify_filter(c2d_filter(mod1), mod1), subscription_kind::module_inputs);
    EXPECT_FALSE(classify_filter(c2d_filter(dev1), mod1));
    EXPECT_FALSE(classify_filter(c2d_filter(mod1), dev1));
}

TEST(round_trip, hub_twin_responses_and_desired_patches_are_parsed_by_the_sdk) {
    auto r = parse_twin_response_topic(twin_response_topic(204, "a-1", 7));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 204);
    EXPECT_EQ(r->rid, "a-1");
    EXPECT_EQ(r->version, 7);
    auto g = parse_twin_response_topic(twin_response_topic(200, "a-2"));
    ASSERT_TRUE(g);
    EXPECT_EQ(g->rid, "a-2");
    EXPECT_FALSE(g->version);
    EXPECT_EQ(parse_desired_patch_topic(desired_patch_topic(42)), 42);
    auto m = parse_method_topic(method_request_topic("reboot", "9"));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->method_name, "reboot");
    EXPECT_EQ(m->rid, "9");
}

TEST(round_trip, hub_c2d_topics_are_parsed_by_the_sdk_of_that_identity_only) {
    property_bag bag;
    bag.system = {{"$.mid", "abc"}, {"$.to", "/devices/dev1/messages/deviceBound"}};
    bag.application = {{"iothub-ack", "full"}, {"k 1", "v&1"}};
    auto d = parse_c2d_topic(c2d_topic(dev1, "", bag), dev1);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->input_name.empty());
    EXPECT_EQ(d->properties.system, bag.system);
    EXPECT_EQ(d->properties.application, bag.application);
    auto m = parse_c2d_topic(c2d_topic(mod1, "in 1", bag), mod1);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->input_name, "in 1");
    EXPECT_EQ(m->properties.application, bag.application);
    EXPECT_FALSE(parse_c2d_topic(c2d_topic(dev1, "", bag), mod1));
    EXPECT_FALSE(parse_c2d_topic(c2d_topic(mod1, "in", bag), dev1));
    EXPECT_FALSE(parse_c2d_topic(c2d_topic(identity_key{"dev10", ""}, "", bag), dev1));
}
