// The IoT Hub MQTT property bag (spec 5.5): the last topic segment of telemetry and cloud-to-device
// PUBLISH packets, "key=value&key=value" with both sides percent-encoded and system properties
// named "$.mid", "$.ct", ... (sent as "%24.mid"). The hub decodes what devices send and encodes
// what it sends; the C++ SDK does the opposite, with the same code.
// Thread safety: plain values and pure functions.
#pragma once

#include "common/errc.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinhub::iothub {

struct property_bag {
    // System properties as "$.mid", "$.ct", ... (decoded keys, '$.' kept).
    std::vector<std::pair<std::string, std::string>> system;
    std::vector<std::pair<std::string, std::string>> application;
};

// The bag text: the system properties first, then the application properties, keys and values
// percent-encoded ("$.mid" becomes "%24.mid"). Empty for an empty bag.
std::string encode_property_bag(const property_bag& bag);

// Hub side, for bytes a device sent: splits on '&', each pair at its first '=', percent-decodes
// both; "key" without '=' gives an empty value; pairs with an empty key are skipped. Keys starting
// with "$." are system properties. invalid_argument on a malformed percent escape.
result<property_bag> decode_property_bag(std::string_view bag);

// Device side, for what the hub sent: like decode_property_bag, but a key or value that does not
// percent-decode is kept as sent, and an empty key is kept; never fails.
property_bag decode_property_bag_lenient(std::string_view bag);

}  // namespace twinhub::iothub
