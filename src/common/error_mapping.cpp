#include "common/error_mapping.hpp"

namespace twinhub {

wire_error to_wire(errc e) noexcept {
    switch (e) {
    case errc::ok: return {200, "", 0};
    case errc::invalid_argument: return {400, "ArgumentInvalid", 400004};
    case errc::format_error: return {400, "IotHubFormatError", 400006};
    case errc::unauthorized: return {401, "IotHubUnauthorizedAccess", 401002};
    case errc::device_not_found: return {404, "DeviceNotFound", 404001};
    case errc::module_not_found: return {404, "ModuleNotFound", 404010};
    case errc::device_not_online: return {404, "DeviceNotOnline", 404103};
    case errc::not_found: return {404, "NotFound", 404000};
    case errc::method_not_allowed: return {405, "InvalidOperation", 405000};
    case errc::device_already_exists: return {409, "DeviceAlreadyExists", 409001};
    case errc::module_already_exists: return {409, "ModuleAlreadyExistsOnDevice", 409301};
    case errc::precondition_failed: return {412, "PreconditionFailed", 412001};
    case errc::message_too_large: return {413, "MessageTooLarge", 413001};
    case errc::too_many_modules: return {413, "TooManyModulesOnDevice", 413003};
    case errc::too_many_devices: return {403, "IotHubQuotaExceeded", 403002};
    case errc::throttled: return {429, "ThrottlingException", 429001};
    case errc::gateway_timeout: return {504, "GatewayTimeout", 504101};
    case errc::storage_error: return {500, "ServerError", 500001};
    case errc::corrupt_data: return {500, "ServerError", 500001};
    case errc::shutting_down: return {503, "ServiceUnavailable", 503001};
    case errc::internal: return {500, "ServerError", 500001};
    case errc::device_defined_multiple_times: return {400, "DeviceDefinedMultipleTimes", 400011};
    case errc::connection_failed: return {503, "ServiceUnavailable", 503001};
    case errc::invalid_protocol_version: return {400, "InvalidProtocolVersion", 400001};
    case errc::device_queue_full: return {403, "DeviceMaximumQueueDepthExceeded", 403004};
    case errc::message_lock_lost: return {412, "DeviceMessageLockLost", 412002};
    }
    return {500, "ServerError", 500001};
}

const char* to_amqp_condition(errc e) noexcept {
    switch (e) {
    case errc::ok: return "";
    case errc::invalid_protocol_version: return "com.microsoft:argument-error";
    case errc::invalid_argument: return "com.microsoft:argument-error";
    case errc::format_error: return "com.microsoft:argument-error";
    case errc::unauthorized: return "amqp:unauthorized-access";
    case errc::device_not_found: return "amqp:not-found";
    case errc::module_not_found: return "amqp:not-found";
    case errc::device_not_online: return "amqp:not-found";
    case errc::not_found: return "amqp:not-found";
    case errc::method_not_allowed: return "amqp:not-allowed";
    case errc::device_already_exists: return "com.microsoft:device-already-exists";
    case errc::module_already_exists: return "com.microsoft:device-already-exists";
    case errc::precondition_failed: return "com.microsoft:precondition-failed";
    case errc::message_too_large: return "amqp:link:message-size-exceeded";
    case errc::too_many_modules: return "amqp:resource-limit-exceeded";
    case errc::too_many_devices: return "com.microsoft:quota-exceeded";
    case errc::throttled: return "com.microsoft:device-container-throttled";
    case errc::gateway_timeout: return "com.microsoft:timeout";
    case errc::storage_error: return "amqp:internal-error";
    case errc::corrupt_data: return "amqp:internal-error";
    case errc::shutting_down: return "amqp:link:detach-forced";
    case errc::internal: return "amqp:internal-error";
    case errc::device_defined_multiple_times: return "com.microsoft:argument-error";
    case errc::connection_failed: return "amqp:internal-error";
    case errc::device_queue_full: return "amqp:resource-limit-exceeded";
    case errc::message_lock_lost: return "com.microsoft:message-lock-lost";
    }
    return "amqp:internal-error";
}

std::uint8_t to_connack(errc e) noexcept {
    switch (e) {
    case errc::ok: return 0;
    case errc::invalid_protocol_version: return 1;
    case errc::invalid_argument:
    case errc::format_error:
    case errc::unauthorized:
    case errc::device_not_found:
    case errc::module_not_found:
    case errc::device_not_online:
    case errc::not_found:
    case errc::method_not_allowed:
    case errc::device_already_exists:
    case errc::module_already_exists:
    case errc::precondition_failed:
    case errc::message_too_large:
    case errc::too_many_modules:
    case errc::too_many_devices:
    case errc::throttled:
    case errc::gateway_timeout:
    case errc::storage_error:
    case errc::corrupt_data:
    case errc::shutting_down:
    case errc::internal:
    case errc::device_defined_multiple_times:
    case errc::connection_failed:
    case errc::device_queue_full:
    case errc::message_lock_lost: return 5;
    }
    return 5;
}

}  // namespace twinhub
