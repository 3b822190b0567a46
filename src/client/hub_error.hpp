// Turns the hub's error answers into twinhub::error: the REST error bodies of spec 3.11
// ({"Message":"ErrorCode:<Name>;<text>"}, including the direct-method form whose Message is itself
// JSON) and the MQTT twin error JSON of spec 5.7 ({"errorCode":400004,"message":"..."}).
// Thread safety: pure functions.
#pragma once

#include "common/errc.hpp"

#include <string_view>

namespace twinhub::client {

// "DeviceNotFound" -> device_not_found; std::nullopt-like errc::ok when the name is unknown.
errc errc_from_code_name(std::string_view name) noexcept;
// 404001 -> device_not_found; unknown numbers fall back to their HTTP status (first three digits).
errc errc_from_code_number(long long number) noexcept;
// 404 -> not_found, 412 -> precondition_failed, ... (used when the body names no known code).
errc errc_from_http_status(int status) noexcept;

// The error for a REST response with `status` >= 300. `errorcode_header` is the iothub-errorcode
// header (may be empty). The message is the hub's text, or the body, or "HTTP <status>".
error parse_rest_error(int status, std::string_view body, std::string_view errorcode_header = {});

// The errc for an AMQP error condition on a rejected delivery, a refused link or a closed
// connection (spec iothub-amqp 3.1, 6.1). amqp:not-found is module_not_found when the target was a
// module and the hub's description names the module, device_not_found otherwise. Unknown
// conditions are errc::internal.
errc errc_from_amqp_condition(std::string_view condition, std::string_view description = {},
                              bool module_target = false) noexcept;

// The error for an MQTT twin response with `status` >= 300 and its body.
error parse_twin_error(int status, std::string_view body);

}  // namespace twinhub::client
