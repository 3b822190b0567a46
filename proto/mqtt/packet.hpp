// MQTT 3.1.1 control packets as plain values (OASIS standard, section 3), and `packet`, the variant
// the codec produces and consumes. These types know nothing about sockets, sessions or IoT Hub
// topics: the server, the C++ SDK and the load generator share them.
// Thread safety: plain values; distinct objects may be used from different threads freely.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace twinhub::mqtt {

// The fixed-header packet type (first byte, bits 7-4). 0 and 15 are reserved in MQTT 3.1.1.
enum class packet_type : std::uint8_t {
    connect = 1,
    connack = 2,
    publish = 3,
    puback = 4,
    pubrec = 5,
    pubrel = 6,
    pubcomp = 7,
    subscribe = 8,
    suback = 9,
    unsubscribe = 10,
    unsuback = 11,
    pingreq = 12,
    pingresp = 13,
    disconnect = 14,
};

// The upper-case name used by the standard, e.g. "SUBSCRIBE"; "RESERVED" for anything else.
const char* to_string(packet_type t) noexcept;

enum class qos : std::uint8_t {
    at_most_once = 0,
    at_least_once = 1,
    exactly_once = 2,
};

// CONNACK return codes (3.2.2.3). Values 6-255 are reserved and never decoded.
enum class connect_return_code : std::uint8_t {
    accepted = 0,
    unacceptable_protocol_version = 1,
    identifier_rejected = 2,
    server_unavailable = 3,
    bad_username_or_password = 4,
    not_authorized = 5,
};

// SUBACK return codes (3.9.3): the granted QoS, or failure.
enum class suback_return_code : std::uint8_t {
    granted_qos_0 = 0x00,
    granted_qos_1 = 0x01,
    granted_qos_2 = 0x02,
    failure = 0x80,
};

using packet_id = std::uint16_t;

struct will {
    std::string topic;
    std::string payload;  // bytes
    mqtt::qos qos = mqtt::qos::at_most_once;
    bool retain = false;
    bool operator==(const will&) const = default;
};

// CONNECT. The decoder only produces protocol "MQTT" level 4 (see decoder.hpp); the fields are
// here so that an encoder user can still write another level, e.g. to test a server's refusal.
struct connect {
    std::string protocol_name = "MQTT";
    std::uint8_t protocol_level = 4;
    bool clean_session = true;
    std::uint16_t keep_alive = 0;  // seconds; 0 disables keep-alive
    std::string client_id;         // may be empty (then the server decides, see MQTT-3.1.3-6..8)
    std::optional<mqtt::will> will;
    std::optional<std::string> username;
    std::optional<std::string> password;  // bytes; MQTT 3.1.1 requires a username with it
    bool operator==(const connect&) const = default;
};

struct connack {
    bool session_present = false;
    connect_return_code return_code = connect_return_code::accepted;
    bool operator==(const connack&) const = default;
};

struct publish {
    bool dup = false;
    mqtt::qos qos = mqtt::qos::at_most_once;
    bool retain = false;
    std::string topic;
    mqtt::packet_id packet_id = 0;  // present on the wire only when qos > 0, then non-zero
    std::string payload;            // bytes
    bool operator==(const publish&) const = default;
};

struct puback {
    mqtt::packet_id packet_id = 0;
    bool operator==(const puback&) const = default;
};
struct pubrec {
    mqtt::packet_id packet_id = 0;
    bool operator==(const pubrec&) const = default;
};
struct pubrel {
    mqtt::packet_id packet_id = 0;
    bool operator==(const pubrel&) const = default;
};
struct pubcomp {
    mqtt::packet_id packet_id = 0;
    bool operator==(const pubcomp&) const = default;
};

struct subscription {
    std::string filter;
    mqtt::qos qos = mqtt::qos::at_most_once;
    bool operator==(const subscription&) const = default;
};

struct subscribe {
    mqtt::packet_id packet_id = 0;
    std::vector<subscription> subscriptions;  // at least one
    bool operator==(const subscribe&) const = default;
};

struct suback {
    mqtt::packet_id packet_id = 0;
    std::vector<suback_return_code> return_codes;  // one per filter of the SUBSCRIBE
    bool operator==(const suback&) const = default;
};

struct unsubscribe {
    mqtt::packet_id packet_id = 0;
    std::vector<std::string> filters;  // at least one
    bool operator==(const unsubscribe&) const = default;
};

struct unsuback {
    mqtt::packet_id packet_id = 0;
    bool operator==(const unsuback&) const = default;
};

struct pingreq {
    bool operator==(const pingreq&) const = default;
};
struct pingresp {
    bool operator==(const pingresp&) const = default;
};
struct disconnect {
    bool operator==(const disconnect&) const = default;
};

// The alternatives are in packet_type order, so type_of() is the index plus one.
using packet = std::variant<connect, connack, publish, puback, pubrec, pubrel, pubcomp, subscribe, suback, unsubscribe,
                            unsuback, pingreq, pingresp, disconnect>;

inline packet_type type_of(const packet& p) noexcept {
    return static_cast<packet_type>(p.index() + 1);
}

}  // namespace twinhub::mqtt
