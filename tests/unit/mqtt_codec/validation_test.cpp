#include "proto/mqtt/validation.hpp"

#include <gtest/gtest.h>

#include <string>

namespace twinhub::mqtt {
namespace {

TEST(mqtt_validation, well_formed_utf8_is_accepted) {
    EXPECT_TRUE(validate_utf8_string("", "s"));
    EXPECT_TRUE(validate_utf8_string("plain ascii", "s"));
    EXPECT_TRUE(validate_utf8_string("\xc2\x80\xdf\xbf", "s"));                      // U+0080, U+07FF
    EXPECT_TRUE(validate_utf8_string("\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80", "s"));  // U+0800, U+D7FF, U+E000
    EXPECT_TRUE(validate_utf8_string("\xef\xbb\xbf", "s"));                          // BOM is kept, not an error
    EXPECT_TRUE(validate_utf8_string("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", "s"));      // U+10000, U+10FFFF
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

TEST(mqtt_validation, every_offset_is_checked_past_the_ascii_fast_path) {
    // The validator skips plain ASCII eight bytes at a time: a NUL or a bad byte anywhere in a
    // long string, inside or after a word, is still found at its own offset.
    for (std::size_t at = 0; at < 40; ++at) {
        std::string s(40, 'a');
        s[at] = '\0';
        auto r = validate_utf8_string(s, "s");
        ASSERT_FALSE(r) << at;
        EXPECT_EQ(r.error().message, "s: contains U+0000 at byte " + std::to_string(at));
        s[at] = '\xff';
        r = validate_utf8_string(s, "s");
        ASSERT_FALSE(r) << at;
        EXPECT_EQ(r.error().message, "s: is not well-formed UTF-8 at byte " + std::to_string(at));
        s.replace(at, 1, "\xc3\xa9");  // U+00E9 anywhere is fine
        EXPECT_TRUE(validate_utf8_string(s, "s")) << at;
    }
    // Bytes 0x7f and 0x01 are ASCII but not NUL.
    EXPECT_TRUE(validate_utf8_string(std::string(17, '\x7f') + std::string(9, '\x01'), "s"));
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
    auto r = validate_topic_name("devices/d1/messages/events/a#", "t");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "t: topic name must not contain wildcards '+' or '#' at byte 28");
    EXPECT_FALSE(validate_topic_name("a/+/b", "t"));
    EXPECT_FALSE(validate_topic_name("#", "t"));
}

TEST(mqtt_validation, topic_filters_allow_whole_level_wildcards_only) {
    for (const char* ok :
         {"#", "+", "+/+", "a/+/b", "/#", "a/#", "+/#", "/+", "+/", "a//#", "$iothub/methods/POST/#"}) {
        EXPECT_TRUE(validate_topic_filter(ok, "f")) << ok;
    }
    for (const char* bad : {"", "a#", "#/a", "a/#/", "a/b#", "a+", "+a", "a/+b/c", "++", "##"}) {
        EXPECT_FALSE(validate_topic_filter(bad, "f")) << bad;
    }
}

TEST(mqtt_validation, validate_packet_accepts_what_the_decoder_accepts) {
    EXPECT_TRUE(validate_packet(publish{false, qos::at_least_once, false, "devices/d/messages/events/", 1, "x"}));
    EXPECT_TRUE(validate_packet(subscribe{1, {{"$iothub/twin/res/#", qos::at_most_once}}}));
    connect c;
    c.client_id = "dev1";
    c.username = "hub/dev1/?api-version=2021-04-12";
    c.password = "SharedAccessSignature sr=x&sig=y&se=1";
    EXPECT_TRUE(validate_packet(c));
}

TEST(mqtt_validation, validate_packet_refuses_what_a_peer_would_refuse) {
    auto wildcard = validate_packet(publish{false, qos::at_most_once, false, "a/#", 0, ""});
    ASSERT_FALSE(wildcard);
    EXPECT_NE(wildcard.error().message.find("must not contain wildcards"), std::string::npos);
    auto id0 = validate_packet(publish{false, qos::at_least_once, false, "t", 0, ""});
    ASSERT_FALSE(id0);
    EXPECT_NE(id0.error().message.find("packet identifier must not be 0"), std::string::npos);
    EXPECT_FALSE(validate_packet(publish{false, qos::at_most_once, false, "t", 5, ""}));
    EXPECT_FALSE(validate_packet(subscribe{1, {}}));
    EXPECT_FALSE(validate_packet(unsubscribe{1, {"a+"}}));
    connect password_only;
    password_only.password = "p";
    EXPECT_FALSE(validate_packet(password_only));
    connect level5;
    level5.protocol_level = 5;
    EXPECT_FALSE(validate_packet(level5));
}

TEST(mqtt_validation, validate_packet_refuses_fields_longer_than_65535_bytes_before_encoding) {
    auto r = validate_packet(publish{false, qos::at_most_once, false, std::string(70000, 't'), 0, ""});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_EQ(r.error().message, "MQTT PUBLISH: topic name longer than 65535 bytes");
}

}  // namespace
}  // namespace twinhub::mqtt
