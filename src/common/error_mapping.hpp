// The one place where twinhub errors become wire codes: HTTP status plus IoT Hub error code (REST and
// MQTT twin responses), AMQP error conditions (spec iothub-amqp 6.1) and MQTT CONNACK return codes.
#pragma once

#include "common/errc.hpp"

#include <cstdint>

namespace twinhub {

struct wire_error {
    int http_status;          // e.g. 404
    const char* code_name;    // IoT Hub error code name, e.g. "DeviceNotFound"
    int code_number;          // six-digit IoT Hub code, e.g. 404001
};

// Exhaustive over errc; errc::ok maps to {200, "", 0}.
wire_error to_wire(errc e) noexcept;

// The AMQP 1.0 error condition (a symbol) for a rejected delivery or a detached link, chosen so that
// the Node SDKs raise the matching error class (spec iothub-amqp 3.1, 6.1): e.g. device_queue_full
// -> "amqp:resource-limit-exceeded" (DeviceMaximumQueueDepthExceededError on a service send),
// message_too_large -> "amqp:link:message-size-exceeded". Exhaustive over errc; ok -> "".
const char* to_amqp_condition(errc e) noexcept;

// MQTT 3.1.1 CONNACK return code for a CONNECT refused with `e`: 1 (unacceptable protocol version)
// for invalid_protocol_version; 5 (not authorised) for every other failure, as IoT Hub answers,
// because the C SDK stops retrying for good on 2 and 4. Exhaustive over errc; ok -> 0 (accepted).
std::uint8_t to_connack(errc e) noexcept;

}  // namespace twinhub
