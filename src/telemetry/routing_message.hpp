// What a routing condition sees of one message (Azure's "IoT Hub message routing query syntax"):
// the source stream, the body bytes with their content type and encoding, the application and
// system properties and, optionally, the sender's twin.
// Thread safety: a plain value; a routing_message may be read from any number of threads.
#pragma once

#include <boost/json/value.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinhub::telemetry {

// The data sources a route can read (ARM "source"). Azure's DeviceJobLifecycleEvents,
// DigitalTwinChangeEvents and MqttBrokerMessages have no producer in twinhub and are rejected by
// parse_routing_config.
enum class route_source {
    telemetry,         // "DeviceMessages"
    twin_change,       // "TwinChangeEvents"
    lifecycle,         // "DeviceLifecycleEvents"
    connection_state,  // "DeviceConnectionStateEvents"
    invalid,
};

// The ARM name of a source ("DeviceMessages"); "Invalid" for route_source::invalid.
const char* to_string(route_source s) noexcept;
// The source named `name` (ARM spelling, ASCII case-insensitive); nullopt when unknown.
std::optional<route_source> source_from_string(std::string_view name) noexcept;

struct routing_message {
    route_source source = route_source::telemetry;
    // The raw body. It is queryable with $body only when content_type is application/json (ASCII
    // case-insensitive, parameters after ';' ignored) and content_encoding is utf-8, utf-16 or
    // utf-32 (ASCII case-insensitive; utf-16/32 without a BOM are little-endian, as .NET's
    // Encoding.Unicode/UTF32 write them) and the decoded text is JSON. Otherwise every $body
    // reference is undefined, which makes a comparison on it false (not an error). Events the hub
    // generates itself (twin change, lifecycle, connection state) carry application/json and utf-8,
    // as on IoT Hub, so that `$body.properties.desired.x` works on twin change events.
    std::string body;
    std::string content_type;      // $contentType
    std::string content_encoding;  // $contentEncoding
    // The application properties as the device sent them (strings on every protocol). Referenced
    // by bare name: `level = 'critical'`.
    std::vector<std::pair<std::string, std::string>> app_properties;
    // System properties other than $contentType/$contentEncoding, keyed by their query name with the
    // '$'. The hub fills those it knows: $connectionDeviceId, $connectionModuleId, $messageId,
    // $correlationId, $userId, $to, $expiryTimeUtc, $enqueuedTime (also answered to
    // $iothub-enqueuedtime), $dt-dataschema, $dt-subject, $iothub-connection-auth-method,
    // $iothub-connection-auth-generation-id. Any other "$name" key is answered too.
    std::map<std::string, std::string> system;
    // The sender's device or module twin in the service shape {"tags":{..},"properties":
    // {"desired":{..},"reported":{..}}}, or null when the caller has none; $twin references are then
    // undefined and $twin enrichments stamp their literal text, as on Azure. Not owned: it must
    // outlive the router::route() call.
    const boost::json::value* twin = nullptr;
};

}  // namespace twinhub::telemetry
