// The SDK's side of the IoT Hub MQTT topics: the shared grammar (proto/iothub/topics.hpp) applied
// to the SDK's public types (message, received_c2d_message) and its client identification.
// Thread safety: pure functions.
#pragma once

#include "proto/iothub/topics.hpp"
#include "twinhub/c2d_message.hpp"
#include "twinhub/message.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace twinhub::client {

// "{host}/{d}/?api-version=...&DeviceClientType=..." or "{host}/{d}/{m}/?..." (spec 5.1), with
// "&model-id=..." when model_id is not empty.
std::string mqtt_username(std::string_view host, std::string_view device_id, std::string_view module_id,
                          std::string_view model_id);

// "devices/{d}/messages/events/{bag}" or "devices/{d}/modules/{m}/messages/events/{bag}" with the
// system properties ($.mid, $.cid, $.ct, $.ce, $.on) first, then the application properties, all
// percent-encoded (spec 5.5).
std::string telemetry_topic(std::string_view device_id, std::string_view module_id, const message& m);

// A hub->device PUBLISH on "devices/{d}/messages/devicebound/{bag}" (a module:
// "devices/{d}/modules/{m}/inputs/{input}/{bag}") for this identity: the message without its body,
// with the bag's %24.-prefixed system properties (mid, cid, uid, to, ct, ce, exp), iothub-ack and
// the application properties, all percent-decoded (spec 5.5). nullopt for any other topic.
// A bag entry that does not percent-decode is kept as sent rather than dropped.
std::optional<received_c2d_message> parse_c2d_topic(std::string_view topic, std::string_view device_id,
                                                    std::string_view module_id);

}  // namespace twinhub::client
