// client/event_decode: what the Event Hubs-compatible endpoint sends, decoded without a hub.
#include "client/event_decode.hpp"

#include <proton/annotation_key.hpp>
#include <proton/codec/map.hpp>
#include <proton/codec/vector.hpp>
#include <proton/message_id.hpp>
#include <proton/symbol.hpp>
#include <proton/timestamp.hpp>

#include <gtest/gtest.h>

#include <map>

using namespace twinhub;

namespace {

proton::message hub_event() {
    proton::message m;
    std::string body = "{\"t\":21}";
    m.body(proton::binary(body.begin(), body.end()));
    m.inferred(true);
    m.id(proton::message_id(std::string("mid-1")));
    m.content_type("application/json");
    m.content_encoding("utf-8");
    auto& ma = m.message_annotations();
    ma.put(proton::annotation_key(proton::symbol("x-opt-sequence-number")), proton::value(std::int64_t{42}));
    ma.put(proton::annotation_key(proton::symbol("x-opt-offset")), proton::value(std::string("42")));
    ma.put(proton::annotation_key(proton::symbol("x-opt-enqueued-time")),
           proton::value(proton::timestamp(1'700'000'000'123)));
    ma.put(proton::annotation_key(proton::symbol("iothub-connection-device-id")), proton::value(std::string("dev1")));
    ma.put(proton::annotation_key(proton::symbol("iothub-connection-module-id")), proton::value(std::string("mod1")));
    ma.put(proton::annotation_key(proton::symbol("iothub-enqueuedtime")),
           proton::value(proton::timestamp(1'700'000'000'123)));
    m.properties().put("alert", std::string("high"));
    m.properties().put("count", std::int32_t{3});
    return m;
}

}  // namespace

TEST(event_decode, typed_fields_system_properties_and_annotations) {
    auto e = client::decode_event(hub_event(), "2");
    EXPECT_EQ(e.partition, "2");
    EXPECT_EQ(e.body, "{\"t\":21}");
    EXPECT_EQ(e.sequence_number, 42);
    EXPECT_EQ(e.offset, "42");
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(e.enqueued_time.time_since_epoch()).count(),
              1'700'000'000'123);
    EXPECT_EQ(e.device_id, "dev1");
    EXPECT_EQ(e.module_id, "mod1");
    EXPECT_EQ(e.system_properties.at("message-id").as_string(), "mid-1");
    EXPECT_EQ(e.system_properties.at("content-type").as_string(), "application/json");
    EXPECT_EQ(e.system_properties.at("iothub-enqueuedtime").as_int64(), 1'700'000'000'123);
    EXPECT_FALSE(e.system_properties.contains("x-opt-offset"));
    EXPECT_EQ(e.annotations.at("x-opt-sequence-number").as_int64(), 42);
    auto props = std::map<std::string, std::string>(e.properties.begin(), e.properties.end());
    EXPECT_EQ(props, (std::map<std::string, std::string>{{"alert", "high"}, {"count", "3"}}));
}

TEST(event_decode, hub_properties_need_name_and_partition_ids) {
    std::map<std::string, proton::value> b;
    b["name"] = std::string("hub1");
    b["partition_ids"] = std::vector<std::string>{"0", "1", "2"};
    auto p = client::decode_hub_properties(proton::value(b));
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->name, "hub1");
    EXPECT_EQ(p->partition_ids, (std::vector<std::string>{"0", "1", "2"}));

    b.erase("partition_ids");
    auto missing = client::decode_hub_properties(proton::value(b));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, errc::format_error);
    auto not_map = client::decode_hub_properties(proton::value(std::string("x")));
    ASSERT_FALSE(not_map);
    EXPECT_EQ(not_map.error().code, errc::format_error);
}

TEST(event_decode, partition_properties) {
    std::map<std::string, proton::value> b;
    b["partition"] = std::string("3");
    b["begin_sequence_number"] = std::int64_t{5};
    b["last_enqueued_sequence_number"] = std::int64_t{9};
    b["last_enqueued_offset"] = std::string("9");
    b["last_enqueued_time_utc"] = proton::timestamp(1000);
    b["is_partition_empty"] = false;
    auto p = client::decode_partition_properties(proton::value(b));
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->partition, "3");
    EXPECT_EQ(p->begin_sequence_number, 5);
    EXPECT_EQ(p->last_enqueued_sequence_number, 9);
    EXPECT_EQ(p->last_enqueued_offset, "9");
    EXPECT_EQ(p->last_enqueued_time.time_since_epoch(), std::chrono::milliseconds(1000));
    EXPECT_FALSE(p->is_empty);
}
