// Name lookups shared by conditions and enrichments. IoT Hub says routing names are not
// case-sensitive; twinhub prefers an exact match and falls back to the first ASCII
// case-insensitive one. Internal to twinhub_telemetry_routing.
#pragma once

#include "common/text.hpp"
#include "telemetry/routing_message.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace twinhub::telemetry::detail {

using twinhub::iequals;  // ASCII case-insensitive (common/text.hpp)

// Appends code point cp (at most U+10FFFF, no surrogate) to out as UTF-8.
void append_utf8(std::string& out, std::uint32_t cp);

// The member `key` of object v (nullptr when v is no object or has no such member).
const boost::json::value* find_member(const boost::json::value& v, std::string_view key);

const std::string* find_app_property(const routing_message& m, std::string_view name);

// `name` keeps its '$'. $contentType and $contentEncoding come from their fields (undefined when
// empty); $iothub-enqueuedtime, $iothub-connection-device-id and $iothub-connection-module-id are
// aliases of $enqueuedTime, $connectionDeviceId and $connectionModuleId.
const std::string* find_system_property(const routing_message& m, std::string_view name);

}  // namespace twinhub::telemetry::detail
