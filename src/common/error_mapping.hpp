// The one place where twinhub errors become wire codes: HTTP status plus IoT Hub error code (REST and
// MQTT twin responses) and MQTT CONNACK return codes.
#pragma once

#include "common/errc.hpp"

namespace twinhub {

struct wire_error {
    int http_status;          // e.g. 404
    const char* code_name;    // IoT Hub error code name, e.g. "DeviceNotFound"
    int code_number;          // six-digit IoT Hub code, e.g. 404001
};

// Exhaustive over errc; errc::ok maps to {200, "", 0}.
wire_error to_wire(errc e) noexcept;

// The AMQP error condition for a rejected delivery or a closed link: the names the SDKs translate
// into typed errors (docs: ../shared/spec/iothub-amqp.md 6.1). Exhaustive over errc.
const char* to_amqp_condition(errc e) noexcept;

// MQTT 3.1.1 CONNACK return code for a failed CONNECT: IoT Hub answers 5 (not authorised) for every
// failure, because the C SDK stops retrying for good on 2 and 4.
inline constexpr int connack_refused = 5;

}  // namespace twinhub
