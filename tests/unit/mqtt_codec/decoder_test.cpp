// The incremental decoder: chunking, limits, and every malformed packet MQTT 3.1.1 lets a single
// packet express, each refused with the error that names the violation.
#include "proto/mqtt/decoder.hpp"
#include "proto/mqtt/encoder.hpp"
#include "tests/unit/mqtt_codec/test_bytes.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace twinhub::mqtt {
namespace {

using test::hex;
using test::packet_bytes;
using test::str16;
using ::testing::HasSubstr;

std::vector<packet> sample_packets() {
    connect c;
    c.clean_session = false;
    c.keep_alive = 180;
    c.client_id = "dev1";
    c.username = "localhost/dev1/?api-version=2021-04-12";
    c.password = "SharedAccessSignature sr=x&sig=y&se=1";
    publish big;
    big.qos = qos::at_least_once;
    big.packet_id = 3;
    big.topic = "devices/dev1/messages/events/";
    big.payload = std::string(300, 'p');
    return {c,
            connack{false, connect_return_code::accepted},
            subscribe{1, {{"$iothub/twin/res/#", qos::at_most_once}}},
            suback{1, {suback_return_code::granted_qos_0}},
            publish{false, qos::at_most_once, false, "$iothub/twin/GET/?$rid=1", 0, " "},
            big,
            puback{3},
            pubrec{4},
            pubrel{4},
            pubcomp{4},
            unsubscribe{5, {"a/#"}},
            unsuback{5},
            pingreq{},
            pingresp{},
            disconnect{}};
}

std::string encode_all(const std::vector<packet>& packets) {
    std::string out;
    for (const auto& p : packets) encode(p, out);
    return out;
}

// Feeds `bytes` in one chunk and returns the error the decoder ends with.
error decode_error_of(const std::string& bytes, std::size_t max = decoder::default_max_packet_size) {
    decoder d(max);
    d.feed(bytes);
    for (;;) {
        auto r = d.next();
        if (!r) {
            EXPECT_TRUE(d.failed());
            return r.error();
        }
        if (!*r) {
            ADD_FAILURE() << "decoder accepted the bytes";
            return {};
        }
    }
}

void expect_malformed(const std::string& bytes, const std::string& needle) {
    const error e = decode_error_of(bytes);
    EXPECT_EQ(e.code, errc::invalid_argument) << e.message;
    EXPECT_THAT(e.message, HasSubstr(needle));
}

// --- chunking -------------------------------------------------------------------------------

TEST(mqtt_decoder, byte_at_a_time_yields_every_packet_in_order) {
    const auto expected = sample_packets();
    const std::string bytes = encode_all(expected);
    decoder d;
    std::vector<packet> got;
    for (char b : bytes) {
        d.feed(&b, 1);
        for (;;) {
            auto r = d.next();
            ASSERT_TRUE(r) << r.error().message;
            if (!*r) break;
            got.push_back(std::move(**r));
        }
    }
    ASSERT_EQ(got.size(), expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(got[i] == expected[i]) << i;
    EXPECT_EQ(d.consumed(), bytes.size());
    EXPECT_EQ(d.buffered(), 0u);
}

TEST(mqtt_decoder, several_packets_in_one_chunk_come_out_one_by_one) {
    const auto expected = sample_packets();
    decoder d;
    d.feed(encode_all(expected));
    for (const auto& want : expected) {
        auto r = d.next();
        ASSERT_TRUE(r) << r.error().message;
        ASSERT_TRUE(*r);
        EXPECT_TRUE(**r == want);
    }
    auto end = d.next();
    ASSERT_TRUE(end);
    EXPECT_FALSE(*end);
}

TEST(mqtt_decoder, chunk_boundaries_inside_the_remaining_length_are_handled) {
    publish p;
    p.topic = "t";
    p.payload = std::string(20000, 'q');  // three-byte remaining length
    const std::string bytes = to_bytes(p);
    ASSERT_EQ(bytes.substr(0, 4), hex("30 a3 9c 01"));
    decoder d;
    d.feed(bytes.substr(0, 2));
    EXPECT_FALSE(*d.next());
    d.feed(bytes.substr(2, 1));
    EXPECT_FALSE(*d.next());
    d.feed(bytes.substr(3, 10000));
    EXPECT_FALSE(*d.next());
    d.feed(bytes.substr(10003));
    auto r = d.next();
    ASSERT_TRUE(r && *r);
    EXPECT_TRUE(**r == packet{p});
}

TEST(mqtt_decoder, partial_packet_survives_after_earlier_packets_are_returned) {
    const std::string bytes = encode_all(sample_packets());
    decoder d;
    std::vector<packet> got;
    // Uneven chunks, so that returned packets are dropped while the next one is half buffered.
    for (std::size_t pos = 0, n = 1; pos < bytes.size(); pos += n, n = n * 3 % 97 + 1) {
        d.feed(std::string_view(bytes).substr(pos, n));
        for (;;) {
            auto r = d.next();
            ASSERT_TRUE(r) << r.error().message;
            if (!*r) break;
            got.push_back(std::move(**r));
        }
        EXPECT_LT(d.buffered(), 400u);  // never more than one partial packet plus one chunk
    }
    EXPECT_TRUE(got == sample_packets());
}

TEST(mqtt_decoder, empty_decoder_needs_more_bytes) {
    decoder d;
    auto r = d.next();
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r);
    EXPECT_FALSE(d.pending_type());
}

TEST(mqtt_decoder, pending_type_is_known_after_the_first_byte) {
    decoder d;
    d.feed(hex("82"));
    EXPECT_EQ(d.pending_type(), packet_type::subscribe);
    EXPECT_FALSE(*d.next());
}

TEST(mqtt_decoder, decode_packet_refuses_truncated_and_trailing_bytes) {
    auto truncated = decode_packet(hex("40 02 00"));
    ASSERT_FALSE(truncated);
    EXPECT_THAT(truncated.error().message, HasSubstr("incomplete"));
    auto trailing = decode_packet(hex("c0 00 c0"));
    ASSERT_FALSE(trailing);
    EXPECT_THAT(trailing.error().message, HasSubstr("after the packet"));
}

// --- size limit -----------------------------------------------------------------------------

TEST(mqtt_decoder, packet_above_max_size_fails_from_its_header_alone) {
    decoder d;
    d.feed(hex("30 ff ff ff 7f"));  // announces 268,435,455 bytes; none of the body is sent
    auto r = d.next();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::message_too_large);
    EXPECT_EQ(d.failure(), decode_failure::too_large);
    EXPECT_THAT(r.error().message, HasSubstr("exceeds the limit of 327680 bytes"));
    EXPECT_EQ(d.buffered(), 0u);
}

TEST(mqtt_decoder, max_packet_size_counts_the_whole_packet) {
    publish p;
    p.topic = "t";
    p.payload = std::string(95, 'x');  // 2 + 3 + 95 = 100 bytes
    const std::string bytes = to_bytes(p);
    ASSERT_EQ(bytes.size(), 100u);
    EXPECT_TRUE(decode_packet(bytes, 100));
    auto r = decode_packet(bytes, 99);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::message_too_large);
}

TEST(mqtt_decoder, iot_hub_sized_message_fits_the_default_limit) {
    publish p;
    p.qos = qos::at_least_once;
    p.packet_id = 1;
    p.topic = "devices/dev1/messages/events/" + std::string(4000, 'a');
    p.payload = std::string(256 * 1024, 'x');
    EXPECT_TRUE(decode_packet(to_bytes(p)));
}

TEST(mqtt_decoder, set_max_packet_size_applies_to_the_next_packet) {
    decoder d;
    d.set_max_packet_size(10);
    EXPECT_EQ(d.max_packet_size(), 10u);
    d.feed(to_bytes(publish{false, qos::at_most_once, false, "topic", 0, "payload"}));
    auto r = d.next();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::message_too_large);
}

TEST(mqtt_decoder, stays_failed_after_an_error) {
    decoder d;
    d.feed(hex("00 00"));
    auto first = d.next();
    ASSERT_FALSE(first);
    d.feed(hex("c0 00"));
    auto again = d.next();
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().message, first.error().message);
    EXPECT_EQ(d.failure(), decode_failure::malformed);
    EXPECT_EQ(d.buffered(), 0u);
    EXPECT_FALSE(d.pending_type());
}

TEST(mqtt_decoder, packets_before_a_malformed_one_are_still_delivered) {
    decoder d;
    d.feed(hex("c0 00 00 00"));
    auto ok = d.next();
    ASSERT_TRUE(ok && *ok);
    EXPECT_EQ(type_of(**ok), packet_type::pingreq);
    EXPECT_FALSE(d.next());
}

// --- fixed header ---------------------------------------------------------------------------

TEST(mqtt_decoder, reserved_packet_types_are_malformed) {
    expect_malformed(hex("00 00"), "reserved packet type 0");
    expect_malformed(hex("f0 00"), "reserved packet type 15");
}

TEST(mqtt_decoder, subscribe_unsubscribe_and_pubrel_need_flags_0010) {
    expect_malformed(hex("80 06 00 01 00 01 61 00"), "SUBSCRIBE: reserved fixed-header flags must be 0b0010");
    expect_malformed(hex("a0 05 00 01 00 01 61"), "UNSUBSCRIBE: reserved fixed-header flags must be 0b0010");
    expect_malformed(hex("60 02 00 01"), "PUBREL: reserved fixed-header flags must be 0b0010");
    expect_malformed(hex("63 02 00 01"), "PUBREL: reserved fixed-header flags");
}

TEST(mqtt_decoder, other_types_need_flags_0000) {
    expect_malformed(hex("11 00"), "CONNECT: reserved fixed-header flags must be 0b0000");
    expect_malformed(hex("28 02 00 00"), "CONNACK: reserved fixed-header flags");
    expect_malformed(hex("41 02 00 01"), "PUBACK: reserved fixed-header flags");
    expect_malformed(hex("52 02 00 01"), "PUBREC: reserved fixed-header flags");
    expect_malformed(hex("74 02 00 01"), "PUBCOMP: reserved fixed-header flags");
    expect_malformed(hex("92 03 00 01 00"), "SUBACK: reserved fixed-header flags");
    expect_malformed(hex("b2 02 00 01"), "UNSUBACK: reserved fixed-header flags");
    expect_malformed(hex("c1 00"), "PINGREQ: reserved fixed-header flags");
    expect_malformed(hex("d8 00"), "PINGRESP: reserved fixed-header flags");
    expect_malformed(hex("e2 00"), "DISCONNECT: reserved fixed-header flags");
}

TEST(mqtt_decoder, remaining_length_longer_than_four_bytes_is_malformed) {
    expect_malformed(hex("30 80 80 80 80 01"), "remaining length longer than 4 bytes");
}

TEST(mqtt_decoder, remaining_length_not_minimally_encoded_is_malformed) {
    expect_malformed(hex("c0 80 00"), "not minimally encoded");
    expect_malformed(hex("30 83 80 00") + std::string(3, 'x'), "not minimally encoded");
}

TEST(mqtt_decoder, fixed_size_packets_with_another_length_are_malformed) {
    expect_malformed(hex("40 03 00 01 00"), "PUBACK: remaining length must be 2 (got 3)");
    expect_malformed(hex("62 00"), "PUBREL: remaining length must be 2 (got 0)");
    expect_malformed(hex("20 03 00 00 00"), "CONNACK: remaining length must be 2");
    expect_malformed(hex("b0 01 00"), "UNSUBACK: remaining length must be 2");
    expect_malformed(hex("c0 01 00"), "PINGREQ: remaining length must be 0 (got 1)");
    expect_malformed(hex("e0 01 00"), "DISCONNECT: remaining length must be 0");
}

// --- strings --------------------------------------------------------------------------------

TEST(mqtt_decoder, string_with_u0000_is_malformed) {
    expect_malformed(hex("30 05 00 03 61 00 62"), "MQTT PUBLISH: topic name: contains U+0000 at byte 1");
}

TEST(mqtt_decoder, string_with_surrogate_is_malformed) {
    expect_malformed(hex("30 05 00 03 ed a0 80"), "contains a UTF-16 surrogate at byte 0");
}

TEST(mqtt_decoder, ill_formed_utf8_is_malformed) {
    expect_malformed(hex("30 04 00 02 c0 80"), "is not well-formed UTF-8");  // overlong NUL
    expect_malformed(hex("30 05 00 03 e0 80 80"), "overlong UTF-8 encoding");
    expect_malformed(hex("30 03 00 01 80"), "is not well-formed UTF-8");  // lone continuation
    expect_malformed(hex("30 04 00 02 61 e2"), "ends inside a UTF-8 sequence");
    expect_malformed(hex("30 06 00 04 f4 90 80 80"), "above U+10FFFF");
    expect_malformed(hex("30 03 00 01 ff"), "is not well-formed UTF-8");
}

TEST(mqtt_decoder, field_running_past_the_packet_is_malformed) {
    expect_malformed(hex("30 03 00 05 61"), "PUBLISH: packet ends inside the topic name");
    expect_malformed(hex("30 01 00"), "PUBLISH: packet ends inside the topic name");
}

// --- PUBLISH --------------------------------------------------------------------------------

TEST(mqtt_decoder, publish_qos3_is_malformed) {
    expect_malformed(hex("36 05 00 01 74 00 01"), "PUBLISH: QoS 3 is invalid");
}

TEST(mqtt_decoder, publish_dup_with_qos0_is_malformed) {
    expect_malformed(hex("38 03 00 01 74"), "DUP flag must be 0 for QoS 0");
}

TEST(mqtt_decoder, publish_topic_with_wildcards_is_malformed) {
    expect_malformed(hex("30 05 00 03") + "a/#", "must not contain wildcards");
    expect_malformed(hex("30 05 00 03") + "a/+", "must not contain wildcards");
}

TEST(mqtt_decoder, publish_empty_topic_is_malformed) {
    expect_malformed(hex("30 02 00 00"), "topic name must not be empty");
}

TEST(mqtt_decoder, publish_qos1_and_qos2_need_a_non_zero_packet_id) {
    expect_malformed(hex("32 05 00 01 74 00 00"), "PUBLISH: packet identifier must not be 0");
    expect_malformed(hex("34 05 00 01 74 00 00"), "packet identifier must not be 0");
    expect_malformed(hex("32 04 00 01 74 00"), "packet ends inside the packet identifier");
}

// --- acknowledgements -----------------------------------------------------------------------

TEST(mqtt_decoder, acknowledgement_with_packet_id_0_is_malformed) {
    expect_malformed(hex("40 02 00 00"), "PUBACK: packet identifier must not be 0");
    expect_malformed(hex("62 02 00 00"), "PUBREL: packet identifier must not be 0");
    expect_malformed(hex("b0 02 00 00"), "UNSUBACK: packet identifier must not be 0");
}

TEST(mqtt_decoder, connack_with_reserved_bits_or_codes_is_malformed) {
    expect_malformed(hex("20 02 02 00"), "reserved acknowledge flags must be 0");
    expect_malformed(hex("20 02 00 06"), "reserved return code 6");
    expect_malformed(hex("20 02 01 05"), "session present must be 0 when the connection is refused");
}

// --- SUBSCRIBE / SUBACK / UNSUBSCRIBE --------------------------------------------------------

TEST(mqtt_decoder, subscribe_with_packet_id_0_is_malformed) {
    expect_malformed(hex("82 06 00 00 00 01 61 00"), "SUBSCRIBE: packet identifier must not be 0");
}

TEST(mqtt_decoder, subscribe_without_filters_is_malformed) {
    expect_malformed(hex("82 02 00 01"), "at least one topic filter");
}

TEST(mqtt_decoder, subscribe_with_qos3_or_reserved_bits_is_malformed) {
    expect_malformed(hex("82 06 00 01 00 01 61 03"), "requested QoS 3 is invalid");
    expect_malformed(hex("82 06 00 01 00 01 61 04"), "reserved bits of the requested QoS byte");
    expect_malformed(hex("82 06 00 01 00 01 61 41"), "reserved bits of the requested QoS byte");
}

TEST(mqtt_decoder, subscribe_missing_requested_qos_is_malformed) {
    expect_malformed(hex("82 05 00 01 00 01 61"), "packet ends inside the requested QoS");
}

TEST(mqtt_decoder, subscribe_with_invalid_filters_is_malformed) {
    auto sub = [](std::string_view filter) { return packet_bytes(0x82, hex("00 01") + str16(filter) + hex("01")); };
    expect_malformed(sub("a/#/b"), "'#' must be the whole last level");
    expect_malformed(sub("a#"), "'#' must be the whole last level");
    expect_malformed(sub("#/"), "'#' must be the whole last level");
    expect_malformed(sub("a+/b"), "'+' must occupy a whole level");
    expect_malformed(sub("a/+b"), "'+' must occupy a whole level");
    expect_malformed(sub(""), "topic filter must not be empty");
    expect_malformed(sub(std::string("a\0", 2)), "contains U+0000");
    // The second filter is the bad one.
    expect_malformed(packet_bytes(0x82, hex("00 01") + str16("a/#") + hex("00") + str16("b+") + hex("00")),
                     "'+' must occupy a whole level");
}

TEST(mqtt_decoder, suback_with_invalid_return_code_is_malformed) {
    expect_malformed(hex("90 03 00 01 03"), "SUBACK: invalid return code 3");
    expect_malformed(hex("90 04 00 01 00 81"), "invalid return code 129");
}

TEST(mqtt_decoder, suback_without_return_codes_or_with_id_0_is_malformed) {
    expect_malformed(hex("90 02 00 01"), "at least one return code");
    expect_malformed(hex("90 03 00 00 00"), "packet identifier must not be 0");
}

TEST(mqtt_decoder, unsubscribe_rules_are_enforced) {
    expect_malformed(hex("a2 05 00 00 00 01 61"), "UNSUBSCRIBE: packet identifier must not be 0");
    expect_malformed(hex("a2 02 00 01"), "at least one topic filter");
    expect_malformed(packet_bytes(0xa2, hex("00 01") + str16("a/#/b")), "'#' must be the whole last level");
    expect_malformed(packet_bytes(0xa2, hex("00 01") + str16("")), "topic filter must not be empty");
    expect_malformed(hex("a2 05 00 01 00 03 61"), "packet ends inside the topic filter");
}

// --- CONNECT --------------------------------------------------------------------------------

std::string connect_bytes(std::string_view name, std::uint8_t level, std::uint8_t flags, const std::string& payload) {
    std::string body = str16(name);
    body.push_back(static_cast<char>(level));
    body.push_back(static_cast<char>(flags));
    body += hex("00 3c");
    body += payload;
    return packet_bytes(0x10, body);
}

TEST(mqtt_decoder, connect_helper_builds_a_valid_connect) {
    auto r = decode_packet(connect_bytes("MQTT", 4, 0x02, str16("c")));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(std::get<connect>(*r).client_id, "c");
}

TEST(mqtt_decoder, connect_mqtt_3_1_is_refused_as_unacceptable_protocol_version) {
    decoder d;
    d.feed(connect_bytes("MQIsdp", 3, 0x02, str16("c")));
    auto r = d.next();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_EQ(d.failure(), decode_failure::unacceptable_protocol_version);
    EXPECT_THAT(r.error().message, HasSubstr("unsupported protocol 'MQIsdp' level 3"));
}

TEST(mqtt_decoder, connect_other_level_is_refused_as_unacceptable_protocol_version) {
    for (std::uint8_t level : {3, 5, 0}) {
        decoder d;
        d.feed(connect_bytes("MQTT", level, 0x02, str16("c")));
        auto r = d.next();
        ASSERT_FALSE(r);
        EXPECT_EQ(d.failure(), decode_failure::unacceptable_protocol_version);
        EXPECT_THAT(r.error().message, HasSubstr("level " + std::to_string(level)));
    }
}

TEST(mqtt_decoder, connect_unknown_protocol_name_is_malformed) {
    decoder d;
    d.feed(connect_bytes("MQTX", 4, 0x02, str16("c")));
    auto r = d.next();
    ASSERT_FALSE(r);
    EXPECT_EQ(d.failure(), decode_failure::malformed);
    EXPECT_THAT(r.error().message, HasSubstr("unknown protocol name"));
}

TEST(mqtt_decoder, connect_reserved_flag_is_malformed) {
    expect_malformed(connect_bytes("MQTT", 4, 0x03, str16("c")), "reserved connect flag must be 0");
}

TEST(mqtt_decoder, connect_will_qos_or_retain_without_will_flag_is_malformed) {
    expect_malformed(connect_bytes("MQTT", 4, 0x0a, str16("c")), "Will QoS and Will Retain must be 0");
    expect_malformed(connect_bytes("MQTT", 4, 0x22, str16("c")), "Will QoS and Will Retain must be 0");
}

TEST(mqtt_decoder, connect_will_qos3_is_malformed) {
    expect_malformed(connect_bytes("MQTT", 4, 0x1e, str16("c") + str16("t") + str16("m")), "Will QoS 3 is invalid");
}

TEST(mqtt_decoder, connect_password_without_username_is_malformed) {
    expect_malformed(connect_bytes("MQTT", 4, 0x42, str16("c") + str16("pw")),
                     "password flag set without the user name flag");
}

TEST(mqtt_decoder, connect_flags_announcing_missing_fields_are_malformed) {
    expect_malformed(connect_bytes("MQTT", 4, 0x82, str16("c")), "packet ends inside the user name");
    expect_malformed(connect_bytes("MQTT", 4, 0xc2, str16("c") + str16("u")), "packet ends inside the password");
    expect_malformed(connect_bytes("MQTT", 4, 0x06, str16("c") + str16("t")), "packet ends inside the Will message");
    expect_malformed(packet_bytes(0x10, str16("MQTT") + hex("04 02 00")), "packet ends inside the keep alive");
    expect_malformed(connect_bytes("MQTT", 4, 0x02, ""), "packet ends inside the client identifier");
}

TEST(mqtt_decoder, connect_will_topic_must_be_a_topic_name) {
    expect_malformed(connect_bytes("MQTT", 4, 0x06, str16("c") + str16("a/#") + str16("m")),
                     "Will topic: topic name must not contain wildcards");
    expect_malformed(connect_bytes("MQTT", 4, 0x06, str16("c") + str16("") + str16("m")),
                     "Will topic: topic name must not be empty");
}

TEST(mqtt_decoder, connect_leftover_bytes_are_malformed) {
    expect_malformed(connect_bytes("MQTT", 4, 0x02, str16("c") + "zz"), "2 unexpected bytes after the last field");
    // A username present on the wire but not announced by the flags is leftover too.
    expect_malformed(connect_bytes("MQTT", 4, 0x02, str16("c") + str16("u")), "unexpected bytes");
}

TEST(mqtt_decoder, connect_client_id_must_be_utf8) {
    expect_malformed(connect_bytes("MQTT", 4, 0x02, str16("\xed\xbf\xbf")),
                     "MQTT CONNECT: client identifier: contains a UTF-16 surrogate");
}

TEST(mqtt_decoder, connect_password_may_hold_any_bytes) {
    auto r = decode_packet(connect_bytes("MQTT", 4, 0xc2, str16("c") + str16("u") + str16(hex("00 ff ed a0 80"))));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(std::get<connect>(*r).password, hex("00 ff ed a0 80"));
}

}  // namespace
}  // namespace twinhub::mqtt
