#include "proto/mqtt/validation.hpp"

#include <gtest/gtest.h>

#include <string>

namespace twinhub::mqtt {
namespace {

TEST(mqtt_validation, well_formed_utf8_is_accepted) {
    EXPECT_TRUE(validate_utf8_string("", "s"));
    EXPECT_TRUE(validate_utf8_string("plain ascii", "s"));
    EXPECT_TRUE(validate_utf8_string("\xc2\x80\xdf\xbf", "s"));               // U+0080, U+07FF
    EXPECT_TRUE(validate_utf8_string("\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80", "s"));  // U+0800, U+D7FF, U+E000
    EXPECT_TRUE(validate_utf8_string("\xef\xbb\xbf", "s"));                   // BOM is kept, not an error
    EXPECT_TRUE(validate_utf8_string("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", "s"));  // U+10000, U+10FFFF
}

TEST(mqtt_validation, ill_formed_utf8_is_refused_with_its_offset) {
    auto r = validate_utf8_string("ab\xed\xa0\x80", "MQTT PUBLISH topic name");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_EQ(r.error().message, "MQTT PUBLISH topic name: contains a UTF-16 surrogate at byte 2");
    EXPECT_FALSE(validate_utf8_string("\xf8\x88\x80\x80\x80", "s"));  // five-byte form
    EXPECT_FALSE(validate_utf8_string("\xf0\x8f\xbf\xbf", "s"));      // overlong four-byte
    EXPECT_FALSE(validate_utf8_string("\xc1\xbf", "s"));              // overlong two-byte
    EXPECT_FALSE(validate_utf8_string("\xc3\x28", "s"));              // bad continuation
    EXPECT_FALSE(validate_utf8_string(std::string(1, '\0'), "s"));
}

TEST(mqtt_validation, string_longer_than_65535_bytes_is_refused) {
    EXPECT_TRUE(validate_utf8_string(std::string(65535, 'a'), "s"));
    EXPECT_FALSE(validate_utf8_string(std::string(65536, 'a'), "s"));
}

TEST(mqtt_validation, topic_names_refuse_wildcards_and_empty) {
    EXPECT_TRUE(validate_topic_name("devices/dev1/messages/events/", "t"));
    EXPECT_TRUE(validate_topic_name("$iothub/twin/GET/?$rid=1", "t"));
    EXPECT_TRUE(validate_topic_name("/", "t"));
    EXPECT_FALSE(validate_topic_name("", "t"));
    EXPECT_FALSE(validate_topic_name("a/+/b", "t"));
    EXPECT_FALSE(validate_topic_name("#", "t"));
}

TEST(mqtt_validation, topic_filters_allow_whole_level_wildcards_only) {
    for (const char* ok : {"#", "+", "+/+", "a/+/b", "/#", "a/#", "+/#", "/+", "+/", "a//#",
                           "$iothub/methods/POST/#"}) {
        EXPECT_TRUE(validate_topic_filter(ok, "f")) << ok;
    }
    for (const char* bad : {"", "a#", "#/a", "a/#/", "a/b#", "a+", "+a", "a/+b/c", "++", "##"}) {
        EXPECT_FALSE(validate_topic_filter(bad, "f")) << bad;
    }
}

}  // namespace
}  // namespace twinhub::mqtt
