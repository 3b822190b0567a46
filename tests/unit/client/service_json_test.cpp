#include "client/service_json.hpp"

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

using namespace twinhub;
using namespace twinhub::client;

TEST(service_json, device_identity_fields) {
    auto d = device_from_json(boost::json::parse(R"({"deviceId":"dev1","generationId":"637","etag":"MA==",
        "status":"enabled","statusReason":null,"connectionState":"Disconnected","cloudToDeviceMessageCount":0,
        "authentication":{"symmetricKey":{"primaryKey":"cA==","secondaryKey":"cw=="},"type":"sas"},
        "capabilities":{"iotEdge":false}})"));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->device_id, "dev1");
    EXPECT_EQ(d->etag, "MA==");
    EXPECT_EQ(d->keys.primary_key, "cA==");
    EXPECT_EQ(d->keys.secondary_key, "cw==");
    EXPECT_EQ(d->authentication_type, "sas");
    EXPECT_EQ(d->json.at("generationId"), "637");
}

TEST(service_json, answer_without_id_is_a_format_error) {
    EXPECT_EQ(device_from_json(boost::json::parse("{}")).error().code, errc::format_error);
    EXPECT_EQ(module_from_json(boost::json::parse(R"({"deviceId":"d"})")).error().code, errc::format_error);
    EXPECT_EQ(twin_from_json(boost::json::parse("[]")).error().code, errc::format_error);
}

TEST(service_json, twin_sections_and_versions) {
    auto t = twin_from_json(boost::json::parse(R"({"deviceId":"d","moduleId":"m","etag":"AAAAAAAAAAE=","version":2,
        "tags":{"a":1},"properties":{"desired":{"x":1,"$version":4},"reported":{"$version":7}}})"));
    ASSERT_TRUE(t);
    EXPECT_EQ(t->module_id, "m");
    EXPECT_EQ(t->desired_version(), 4);
    EXPECT_EQ(t->reported_version(), 7);
    EXPECT_EQ(t->tags.at("a"), 1);
}

TEST(service_json, create_request_has_empty_keys_for_hub_generation) {
    device_identity d;
    d.device_id = "dev1";
    auto o = device_to_json(d);
    EXPECT_EQ(o.at("authentication").at("type"), "sas");
    EXPECT_EQ(o.at("authentication").at("symmetricKey").at("primaryKey"), "");
    EXPECT_EQ(o.at("status"), "enabled");
    module_identity m;
    m.device_id = "dev1";
    m.module_id = "mod1";
    auto mo = module_to_json(m);
    EXPECT_EQ(mo.at("moduleId"), "mod1");
    EXPECT_FALSE(mo.contains("managedBy"));
}

TEST(service_json, feedback_batch_as_the_hub_sends_it) {
    auto r = feedback_from_json(
        R"([{"originalMessageId":"m1","description":"Success","deviceGenerationId":"g1","deviceId":"d1",)"
        R"("enqueuedTimeUtc":"2026-12-07T10:00:00.0000000Z","statusCode":"Success"},)"
        R"({"originalMessageId":"m2","statusCode":"Rejected","deviceId":"d1","moduleId":"m"}])");
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->size(), 2u);
    EXPECT_EQ((*r)[0].original_message_id, "m1");
    EXPECT_EQ((*r)[0].status_code, "Success");
    EXPECT_EQ((*r)[0].description, "Success");
    EXPECT_EQ((*r)[0].device_generation_id, "g1");
    EXPECT_EQ((*r)[0].enqueued_time_utc, "2026-12-07T10:00:00.0000000Z");
    EXPECT_EQ((*r)[1].module_id, "m");
    EXPECT_TRUE((*r)[1].description.empty());
}

TEST(service_json, feedback_that_is_not_an_array_of_objects_is_a_format_error) {
    EXPECT_EQ(feedback_from_json("{}").error().code, errc::format_error);
    EXPECT_EQ(feedback_from_json("[1]").error().code, errc::format_error);
    EXPECT_EQ(feedback_from_json("not json").error().code, errc::format_error);
    auto empty = feedback_from_json("[]");
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->empty());
}

TEST(service_json, purge_answer) {
    auto r = purge_from_json(boost::json::parse(R"({"totalMessagesPurged":3,"deviceId":"d1","moduleId":null})"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->total_messages_purged, 3);
    EXPECT_EQ(r->device_id, "d1");
    EXPECT_TRUE(r->module_id.empty());
    EXPECT_FALSE(purge_from_json(boost::json::parse(R"({"deviceId":"d1"})")));
}
