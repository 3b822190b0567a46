// Errors of the twinhub C++ SDK: every call that can fail returns twinhub::result<T>, which holds
// either a value or a twinhub::error {errc code, message}. The message is the hub's own text when
// the hub refused the operation (parsed from the REST body {"Message":"ErrorCode:X;text"} or the
// MQTT twin error {"errorCode":...,"message":...}), or a description of what failed locally.
// errc::connection_failed means the hub could not be reached (DNS, TCP, TLS, lost connection).
// This header stands alone: it needs only Boost.System.
// Thread safety: plain values; the category and to_string are stateless, safe from any thread.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <system_error>
#include <utility>

namespace twinhub {

// The one error enum of twinhub, shared by the SDK and the hub: the SDK reports failures with it,
// the hub's modules use it internally and the hub maps it to HTTP status + IoT Hub error code, MQTT
// CONNACK and twin-response status in one place (src/common/error_mapping.cpp); the SDK maps the
// hub's answers back to it (src/client/hub_error.cpp).
enum class errc {
    ok = 0,
    invalid_argument,       // bad input from a client: 400 ArgumentInvalid
    format_error,           // body is not parseable (malformed JSON): 400 IotHubFormatError
    unauthorized,           // missing, forged, expired or under-privileged credentials: 401
    device_not_found,       // 404 DeviceNotFound
    module_not_found,       // 404 ModuleNotFound
    device_not_online,      // 404 DeviceNotOnline (404103)
    not_found,              // unknown route or resource: 404
    method_not_allowed,     // known route, wrong HTTP method: 405
    device_already_exists,  // 409 DeviceAlreadyExists
    module_already_exists,  // 409 ModuleAlreadyExistsOnDevice
    precondition_failed,    // stale etag / version: 412 PreconditionFailed
    message_too_large,      // 413 MessageTooLarge
    too_many_modules,       // 413 TooManyModulesOnDevice
    too_many_devices,       // 403 IotHubQuotaExceeded
    throttled,              // 429 ThrottlingException
    gateway_timeout,        // 504 GatewayTimeout (504101)
    storage_error,          // the store failed; nothing was acknowledged: 500 ServerError
    corrupt_data,           // stored data could not be decoded: 500 ServerError
    shutting_down,          // the hub is stopping: 503 ServiceUnavailable
    internal,               // an invariant broke: 500 ServerError
    device_defined_multiple_times,  // a bulk request names one id twice: 400 DeviceDefinedMultipleTimes
    connection_failed,      // client side (SDK, CLI): the hub could not be reached, TLS failed or the
                            // connection dropped; never sent by the hub (maps to 503 if it ever is)
    invalid_protocol_version,  // a REST request without api-version: 400 InvalidProtocolVersion (400001)
    device_queue_full,      // the identity's C2D queue holds its maximum: 403 DeviceMaximumQueueDepthExceeded
    message_lock_lost,      // a C2D lock token that is unknown, expired or settled: 412 DeviceMessageLockLost
};

const boost::system::error_category& twinhub_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), twinhub_category()};
}

// The stable name of a code, e.g. "device_not_found"; used in logs and tests.
const char* to_string(errc e) noexcept;

// An error code with the message a user should see ("Device 'dev9' not found."). Messages never
// contain keys, tokens or passwords.
struct error {
    errc code = errc::internal;
    std::string message;

    error() = default;
    error(errc c, std::string m) : code(c), message(std::move(m)) {}

    boost::system::error_code ec() const noexcept { return make_error_code(code); }
};

// Synchronous calls return result<T>: a value, or an error with its message.
template <class T>
using result = boost::system::result<T, error>;

// Used by boost::system::result<T, error>::value() when it holds an error (start-up code only).
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

}  // namespace twinhub

namespace boost::system {
template <>
struct is_error_code_enum<twinhub::errc> : std::true_type {};
}  // namespace boost::system
