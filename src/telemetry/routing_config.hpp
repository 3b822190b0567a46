// A hub's message routing configuration in the shape of the Azure Resource Manager "routing"
// property of Microsoft.Devices/IotHubs (what `az iot hub show --query properties.routing`
// prints): custom endpoints, routes, the fallback route and message enrichments.
// Thread safety: plain values and a pure function.
#pragma once

#include "common/errc.hpp"
#include "telemetry/routing_message.hpp"

#include <boost/json/value.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace twinhub::telemetry {

// The built-in endpoint (messages/events, read through the Event Hubs-compatible endpoint).
inline constexpr const char* builtin_endpoint = "events";

inline constexpr std::size_t max_routes = 100;           // Azure: 100 routes per hub
inline constexpr std::size_t max_custom_endpoints = 10;  // Azure: 10 custom endpoints per hub
inline constexpr std::size_t max_enrichments = 10;       // Azure: 10 enrichments (standard/basic tier)
inline constexpr std::size_t max_name_length = 64;       // route and endpoint names

struct route {
    std::string name;
    route_source source = route_source::telemetry;
    std::string condition = "true";
    std::vector<std::string> endpoint_names;  // exactly one, as on Azure
    bool enabled = true;
};

// Azure's default fallback route: enabled, DeviceMessages, "true", to the built-in endpoint.
route default_fallback_route();

struct enrichment {
    std::string key;    // becomes an application property of the enriched message
    std::string value;  // a literal, $iothubname, or $twin.tags.x / $twin.properties.desired.x /
                        // $twin.properties.reported.x
    std::vector<std::string> endpoint_names;
};

struct routing_config {
    std::vector<std::string> event_hub_endpoints;  // custom Event Hubs-compatible endpoint names
    std::vector<route> routes;
    route fallback = default_fallback_route();
    std::vector<enrichment> enrichments;
};

// Reads and validates the ARM shape:
//   {"endpoints": {"eventHubs": [{"name": "hot", ...}], "serviceBusQueues": [], ...},
//    "routes": [{"name", "source", "condition", "endpointNames": ["hot"], "isEnabled"}],
//    "fallbackRoute": {"name", "source": "DeviceMessages", "condition", "endpointNames": ["events"],
//                      "isEnabled"},
//    "enrichments": [{"key", "value", "endpointNames": [..]}]}
// Every member is optional; a missing or null fallbackRoute is default_fallback_route(). Other
// members of an Event Hubs endpoint (connectionString, entityPath, ...) are ignored: twinhub hosts
// its custom endpoints itself.
//
// Validated as Azure does: names of routes and endpoints are 1-64 of [A-Za-z0-9._-] and unique
// (ASCII case-insensitive); custom endpoints may not be called events, $default,
// operationsMonitoringEvents or fileNotifications; at most 100 routes, 10 custom endpoints and 10
// enrichments; a route names exactly one endpoint, which exists; sources are DeviceMessages,
// TwinChangeEvents, DeviceLifecycleEvents or DeviceConnectionStateEvents; conditions compile; the
// fallback route reads DeviceMessages and goes to events; enrichment keys are unique and of
// [A-Za-z0-9._-], values non-empty, endpoints existing. Endpoint kinds other than eventHubs must be
// empty. Unknown members are rejected.
//
// On failure errc::invalid_argument with a message naming the member, e.g.
// "routing.routes[1] ('hot').endpointNames[0]: unknown endpoint 'warm' (defined: events, hot)" or
// "routing.routes[0] ('alerts').condition: Syntax error at position 6 (line 1, column 7): ...".
result<routing_config> parse_routing_config(const boost::json::value& routing);

// The ARM shape of `config` (parse_routing_config(to_json(c)) gives back c).
boost::json::value to_json(const routing_config& config);

}  // namespace twinhub::telemetry
