// cli/monitor_events: az's event JSON shape and the -d/-m wildcards.
#include "cli/monitor_events.hpp"

#include <gtest/gtest.h>

using namespace twinhub;
namespace json = boost::json;

TEST(monitor_events, wildcard_match_star_and_question_mark) {
    EXPECT_TRUE(cli::wildcard_match("dev1", "dev1"));
    EXPECT_FALSE(cli::wildcard_match("dev1", "dev10"));
    EXPECT_TRUE(cli::wildcard_match("dev*", "dev"));
    EXPECT_TRUE(cli::wildcard_match("dev*", "dev-42"));
    EXPECT_TRUE(cli::wildcard_match("*-42", "dev-42"));
    EXPECT_TRUE(cli::wildcard_match("d?v*2", "dev-42"));
    EXPECT_FALSE(cli::wildcard_match("d?v", "dv"));
    EXPECT_TRUE(cli::wildcard_match("*a*b*", "xxaxxbxx"));
    EXPECT_FALSE(cli::wildcard_match("*a*b", "xxbxxa"));
    EXPECT_TRUE(cli::wildcard_match("*", ""));
    EXPECT_FALSE(cli::wildcard_match("?", ""));
}

namespace {
event_data sample(std::string content_type, std::string body) {
    event_data e;
    e.device_id = "dev1";
    e.body = std::move(body);
    e.properties = {{"alert", "high"}};
    if (!content_type.empty()) e.system_properties["content-type"] = content_type;
    e.system_properties["message-id"] = "m1";
    e.system_properties["iothub-connection-device-id"] = "dev1";
    e.annotations["iothub-connection-device-id"] = "dev1";
    e.annotations["dt-subject"] = "thermostat1";
    e.annotations["x-opt-sequence-number"] = 7;
    return e;
}
}  // namespace

TEST(monitor_events, event_json_has_az_shape) {
    auto j = cli::event_json(sample("application/json; charset=utf-8", "{\"t\": 1}"), true, true, true);
    const auto& ev = j.at("event").as_object();
    EXPECT_EQ(ev.at("origin").as_string(), "dev1");
    EXPECT_EQ(ev.at("module").as_string(), "");
    EXPECT_EQ(ev.at("interface").as_string(), "");
    EXPECT_EQ(ev.at("component").as_string(), "thermostat1");
    EXPECT_EQ(ev.at("payload"), (json::object{{"t", 1}}));
    EXPECT_EQ(ev.at("properties").at("system"),
              (json::object{{"message_id", "m1"}, {"content_type", "application/json; charset=utf-8"}}));
    EXPECT_EQ(ev.at("properties").at("application"), (json::object{{"alert", "high"}}));
    EXPECT_EQ(ev.at("annotations").at("x-opt-sequence-number").as_int64(), 7);
}

TEST(monitor_events, payload_is_text_unless_json_content_type_and_parts_only_when_asked) {
    auto text = cli::event_json(sample("", "{\"t\": 1}"), false, false, false).at("event").as_object();
    EXPECT_EQ(text.at("payload").as_string(), "{\"t\": 1}");
    EXPECT_FALSE(text.contains("properties"));
    EXPECT_FALSE(text.contains("annotations"));
    auto bad = cli::event_json(sample("application/json", "not json"), false, true, false).at("event").as_object();
    EXPECT_EQ(bad.at("payload").as_string(), "not json");
    EXPECT_FALSE(bad.at("properties").as_object().contains("system"));
}
