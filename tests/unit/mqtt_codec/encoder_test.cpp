// Every packet type both ways: the encoder writes exactly the listed bytes, and the decoder turns
// those bytes back into the same value.
#include "proto/mqtt/encoder.hpp"
#include "proto/mqtt/decoder.hpp"
#include "tests/unit/mqtt_codec/test_bytes.hpp"

#include <gtest/gtest.h>

namespace twinhub::mqtt {
namespace {

using test::hex;
using test::str16;

void expect_both_ways(const packet& value, const std::string& bytes) {
    std::string out = "prefix";  // encode appends
    encode(value, out);
    EXPECT_EQ(out, "prefix" + bytes);
    auto decoded = decode_packet(bytes);
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_TRUE(*decoded == value);
    EXPECT_EQ(type_of(*decoded), type_of(value));
}

TEST(mqtt_encoder, remaining_length_uses_minimal_varint) {
    const std::pair<std::uint32_t, const char*> cases[] = {
        {0, "00"},           {127, "7f"},           {128, "80 01"},           {16383, "ff 7f"},
        {16384, "80 80 01"}, {2097151, "ff ff 7f"}, {2097152, "80 80 80 01"}, {268435455, "ff ff ff 7f"},
    };
    for (const auto& [value, expected] : cases) {
        std::string out;
        encode_remaining_length(value, out);
        EXPECT_EQ(out, hex(expected)) << value;
    }
}

TEST(mqtt_encoder, connect_minimal_round_trips) {
    connect c;
    c.client_id = "c1";
    c.keep_alive = 60;
    expect_both_ways(c, hex("10 0e 00 04") + "MQTT" + hex("04 02 00 3c 00 02") + "c1");
}

TEST(mqtt_encoder, connect_with_will_username_and_binary_password_round_trips) {
    connect c;
    c.clean_session = false;
    c.keep_alive = 180;
    c.client_id = "id";
    c.will = will{"w/t", "bye", qos::at_least_once, true};
    c.username = "u";
    c.password = std::string("p\0x", 3);
    // flags: username 0x80 | password 0x40 | will retain 0x20 | will QoS 1 0x08 | will 0x04
    expect_both_ways(c, hex("10 20") + str16("MQTT") + hex("04 ec 00 b4") + str16("id") + str16("w/t") + str16("bye") +
                            str16("u") + str16(std::string("p\0x", 3)));
}

TEST(mqtt_encoder, connect_as_the_node_device_sdk_sends_it_round_trips) {
    connect c;
    c.clean_session = false;
    c.keep_alive = 180;
    c.client_id = "dev1";
    c.username = "localhost/dev1/?api-version=2021-04-12";
    c.password = "SharedAccessSignature sr=localhost%2Fdevices%2Fdev1&sig=abc&se=1";
    // 10 + 6 + 40 + 66 = 122 bytes of remaining length; flags username | password.
    expect_both_ways(
        c, hex("10 7a") + str16("MQTT") + hex("04 c0 00 b4") + str16("dev1") + str16(*c.username) + str16(*c.password));
}

TEST(mqtt_encoder, connect_with_empty_username_and_no_password_round_trips) {
    connect c;
    c.client_id = "";
    c.username = "";
    expect_both_ways(c, hex("10 0e") + str16("MQTT") + hex("04 82 00 00 00 00 00 00"));
}

TEST(mqtt_encoder, connack_round_trips) {
    expect_both_ways(connack{true, connect_return_code::accepted}, hex("20 02 01 00"));
    expect_both_ways(connack{false, connect_return_code::not_authorized}, hex("20 02 00 05"));
}

TEST(mqtt_encoder, publish_qos0_round_trips_without_packet_id) {
    publish p;
    p.topic = "a/b";
    p.payload = "hello";
    expect_both_ways(p, hex("30 0a 00 03") + "a/b" + "hello");
}

TEST(mqtt_encoder, publish_qos1_with_dup_and_retain_round_trips) {
    publish p;
    p.dup = true;
    p.qos = qos::at_least_once;
    p.retain = true;
    p.topic = "a/b";
    p.packet_id = 0x1234;
    p.payload = "x";
    expect_both_ways(p, hex("3b 08 00 03 61 2f 62 12 34 78"));
}

TEST(mqtt_encoder, publish_qos2_round_trips) {
    publish p;
    p.qos = qos::exactly_once;
    p.topic = "t";
    p.packet_id = 7;
    expect_both_ways(p, hex("34 05 00 01 74 00 07"));
}

TEST(mqtt_encoder, publish_with_empty_payload_round_trips) {
    publish p;
    p.topic = "t";
    expect_both_ways(p, hex("30 03 00 01 74"));
}

TEST(mqtt_encoder, publish_above_127_bytes_uses_two_byte_remaining_length) {
    publish p;
    p.topic = "t";
    p.payload = std::string(200, 'z');
    expect_both_ways(p, hex("30 cb 01 00 01 74") + std::string(200, 'z'));
}

TEST(mqtt_encoder, publish_with_utf8_topic_round_trips) {
    publish p;
    p.topic = "caf\xc3\xa9/\xf0\x9f\x98\x80";  // "café/😀"
    expect_both_ways(p, hex("30 0c 00 0a") + p.topic);
}

TEST(mqtt_encoder, acknowledgements_round_trip) {
    expect_both_ways(puback{1}, hex("40 02 00 01"));
    expect_both_ways(pubrec{0xabcd}, hex("50 02 ab cd"));
    expect_both_ways(pubrel{7}, hex("62 02 00 07"));
    expect_both_ways(pubcomp{0xffff}, hex("70 02 ff ff"));
    expect_both_ways(unsuback{11}, hex("b0 02 00 0b"));
}

TEST(mqtt_encoder, subscribe_with_two_filters_round_trips) {
    subscribe s;
    s.packet_id = 10;
    s.subscriptions = {{"$iothub/twin/res/#", qos::at_most_once},
                       {"devices/dev1/messages/devicebound/#", qos::at_least_once}};
    expect_both_ways(s, hex("82 3d 00 0a") + str16("$iothub/twin/res/#") + hex("00") +
                            str16("devices/dev1/messages/devicebound/#") + hex("01"));
}

TEST(mqtt_encoder, suback_round_trips) {
    expect_both_ways(suback{10, {suback_return_code::granted_qos_0}}, hex("90 03 00 0a 00"));
    expect_both_ways(
        suback{10, {suback_return_code::granted_qos_1, suback_return_code::granted_qos_2, suback_return_code::failure}},
        hex("90 05 00 0a 01 02 80"));
}

TEST(mqtt_encoder, unsubscribe_round_trips) {
    expect_both_ways(unsubscribe{11, {"a/+"}}, hex("a2 07 00 0b 00 03 61 2f 2b"));
    expect_both_ways(unsubscribe{12, {"a", "#"}}, hex("a2 08 00 0c 00 01 61 00 01 23"));
}

TEST(mqtt_encoder, empty_packets_round_trip) {
    expect_both_ways(pingreq{}, hex("c0 00"));
    expect_both_ways(pingresp{}, hex("d0 00"));
    expect_both_ways(disconnect{}, hex("e0 00"));
}

TEST(mqtt_encoder, to_bytes_returns_the_encoded_packet) {
    EXPECT_EQ(to_bytes(pingreq{}), hex("c0 00"));
}

TEST(mqtt_packet, type_of_and_to_string_name_every_type) {
    EXPECT_EQ(type_of(packet{connect{}}), packet_type::connect);
    EXPECT_EQ(type_of(packet{disconnect{}}), packet_type::disconnect);
    EXPECT_STREQ(to_string(packet_type::subscribe), "SUBSCRIBE");
    EXPECT_STREQ(to_string(static_cast<packet_type>(15)), "RESERVED");
}

}  // namespace
}  // namespace twinhub::mqtt
