// The AMQP link addresses and CBS audiences of IoT Hub (docs: ../shared/spec/iothub-amqp.md 2, 3, 4),
// parsed into what they name. Pure functions, no I/O; network input reaches them, so they are
// fuzzed (fuzz/amqp).
// Thread safety: pure functions.
#pragma once

#include "store/store.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace twinhub::amqp {

enum class link_kind {
    cbs,               // $cbs
    telemetry,         // /devices/{d}[/modules/{m}]/messages/events (device sends; module inputs come back here)
    c2d,               // /devices/{d}[/modules/{m}]/messages/devicebound (device receives)
    twin,              // /devices/{d}[/modules/{m}]/twin
    methods,           // /devices/{d}[/modules/{m}]/methods/devicebound
    service_c2d,       // /messages/devicebound (service sends; each message's `to` routes it)
    service_feedback,  // /messages/serviceBound/feedback
    service_file_notifications,  // /messages/serviceBound/filenotifications
    // The Event Hubs-compatible endpoint (spec: iothub-amqp 5): {entity}/ConsumerGroups/{cg}/Partitions/{p},
    // with {entity} the Event Hub name or IoT Hub's own "messages/events".
    eventhub_partition,
    eventhub_management,  // {entity}/$management, or $management
};

struct link_address {
    link_kind kind;
    store::identity_key identity;  // the device-side kinds only
    // eventhub kinds: the entity as written ("" for a bare $management), consumer group, partition.
    std::string entity;
    std::string consumer_group;
    std::string partition;
};

// Parses a link source/target address. Accepts an optional "amqps://host[:port]" prefix (the C SDK
// sends the full URI), decodes percent-encoded ids, compares path words case-insensitively (the SDKs
// spell "serviceBound"/"servicebound" both ways). Returns nullopt for anything else.
std::optional<link_address> parse_link_address(std::string_view address);

// The `to` of a service C2D message: /devices/{d}/messages/devicebound, or twinhub's module form
// /devices/{d}/modules/{m}/messages/devicebound. nullopt otherwise.
std::optional<store::identity_key> parse_c2d_destination(std::string_view to);

// What a CBS put-token audience (the token's sr) names once its host is stripped: the hub itself
// ("{host}", or "{host}/messages/events..." for the built-in endpoint), or one identity
// ("{host}/devices/{d}[/modules/{m}]"); any other path (an Event Hubs entity, "messages/events")
// is hub-wide too. The host must be one of `host_names` (case-insensitive, a
// ":port" ignored) and a "sb://" or "amqps://" scheme is dropped.
struct audience {
    bool hub = false;              // a hub-wide (service) audience
    store::identity_key identity;  // when !hub
    std::string path;              // what follows the host, without the leading '/' ("" for the hub)
};
std::optional<audience> parse_audience(std::string_view sr, std::span<const std::string> host_names);

}  // namespace twinhub::amqp
