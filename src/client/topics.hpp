// The device side of the IoT Hub MQTT topic grammar (spec 5.1, 5.4, 5.5, 5.7, 5.8): what the SDK
// publishes and how it reads what the hub sends. Sans-I/O.
// Thread safety: pure functions.
#pragma once

#include "twinhub/c2d_message.hpp"
#include "twinhub/message.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace twinhub::client {

inline constexpr std::string_view api_version = "2021-04-12";
inline constexpr std::string_view twin_response_filter = "$iothub/twin/res/#";
inline constexpr std::string_view desired_patch_filter = "$iothub/twin/PATCH/properties/desired/#";
inline constexpr std::string_view method_filter = "$iothub/methods/POST/#";

// "{host}/{d}/?api-version=...&DeviceClientType=..." or "{host}/{d}/{m}/?..." (spec 5.1).
std::string mqtt_username(std::string_view host, std::string_view device_id, std::string_view module_id,
                          std::string_view model_id);

// "devices/{d}/messages/events/{bag}" or "devices/{d}/modules/{m}/messages/events/{bag}" with the
// system properties ($.mid, $.cid, $.ct, $.ce, $.on) first, then the application properties, all
// percent-encoded (spec 5.5).
std::string telemetry_topic(std::string_view device_id, std::string_view module_id, const message& m);

std::string twin_get_topic(std::string_view rid);
std::string twin_patch_topic(std::string_view rid);
std::string method_response_topic(int status, std::string_view rid);

struct twin_response_topic {
    int status = 0;
    std::string rid;
    std::optional<std::int64_t> version;  // &$version= on reported-patch answers
};
// "$iothub/twin/res/{status}/?$rid={rid}[&$version={v}]"; nullopt for any other topic.
std::optional<twin_response_topic> parse_twin_response_topic(std::string_view topic);

// "$iothub/twin/PATCH/properties/desired/?$version={v}": the version (0 when absent); nullopt for
// any other topic.
std::optional<std::int64_t> parse_desired_patch_topic(std::string_view topic);

struct method_topic {
    std::string method_name;  // percent-decoded
    std::string rid;          // exactly as sent
};
// "$iothub/methods/POST/{name}/?$rid={rid}" (also without the '/' before '?').
std::optional<method_topic> parse_method_topic(std::string_view topic);

// The cloud-to-device subscription (spec 5.4): "devices/{d}/messages/devicebound/#" for a device,
// "devices/{d}/modules/{m}/inputs/#" for a module.
std::string c2d_filter(std::string_view device_id, std::string_view module_id);

// A hub->device PUBLISH on "devices/{d}/messages/devicebound/{bag}" (a module:
// "devices/{d}/modules/{m}/inputs/{input}/{bag}") for this identity: the message without its body,
// with the bag's %24.-prefixed system properties (mid, cid, uid, to, ct, ce, exp), iothub-ack and
// the application properties, all percent-decoded (spec 5.5). nullopt for any other topic.
// A bag entry that does not percent-decode is kept as sent rather than dropped.
std::optional<received_c2d_message> parse_c2d_topic(std::string_view topic, std::string_view device_id,
                                                    std::string_view module_id);

}  // namespace twinhub::client
