#include "telemetry/routing_config.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <string>

namespace twinhub::telemetry {
namespace {

routing_config ok(std::string_view json) {
    auto r = parse_routing_config(boost::json::parse(json));
    EXPECT_TRUE(r.has_value()) << json << " -> " << (r ? "" : r.error().message);
    return r ? std::move(*r) : routing_config{};
}

std::string fail(std::string_view json) {
    auto r = parse_routing_config(boost::json::parse(json));
    EXPECT_FALSE(r.has_value()) << json;
    if (r) return {};
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    return r.error().message;
}

// As `az iot hub show --query properties.routing` prints a hub with one custom Event Hub.
constexpr const char* azure_export = R"({
  "endpoints": {
    "cosmosDBSqlContainers": [], "eventHubs": [{"authenticationType": "keyBased", "connectionString":
      "Endpoint=sb://x.servicebus.windows.net:5671/;SharedAccessKeyName=k;SharedAccessKey=****;EntityPath=hot",
      "endpointUri": null, "entityPath": null, "id": "6d3c", "identity": null, "name": "hot",
      "resourceGroup": "rg", "subscriptionId": "s"}],
    "serviceBusQueues": [], "serviceBusTopics": [], "storageContainers": []},
  "enrichments": [{"endpointNames": ["hot", "events"], "key": "site", "value": "$twin.tags.site"}],
  "fallbackRoute": {"condition": "true", "endpointNames": ["events"], "isEnabled": true, "name": "$fallback",
                    "source": "DeviceMessages"},
  "routes": [{"condition": "level = 'critical'", "endpointNames": ["hot"], "isEnabled": true, "name": "alerts",
              "source": "DeviceMessages"},
             {"condition": "true", "endpointNames": ["events"], "isEnabled": false, "name": "twins",
              "source": "TwinChangeEvents"}]})";

TEST(routing_config, reads_the_azure_export) {
    auto c = ok(azure_export);
    ASSERT_EQ(c.event_hub_endpoints.size(), 1u);
    EXPECT_EQ(c.event_hub_endpoints[0], "hot");
    ASSERT_EQ(c.routes.size(), 2u);
    EXPECT_EQ(c.routes[0].name, "alerts");
    EXPECT_EQ(c.routes[0].source, route_source::telemetry);
    EXPECT_EQ(c.routes[0].condition, "level = 'critical'");
    EXPECT_EQ(c.routes[0].endpoint_names, std::vector<std::string>{"hot"});
    EXPECT_TRUE(c.routes[0].enabled);
    EXPECT_EQ(c.routes[1].source, route_source::twin_change);
    EXPECT_FALSE(c.routes[1].enabled);
    EXPECT_TRUE(c.fallback.enabled);
    EXPECT_EQ(c.fallback.endpoint_names, std::vector<std::string>{"events"});
    ASSERT_EQ(c.enrichments.size(), 1u);
    EXPECT_EQ(c.enrichments[0].key, "site");
    EXPECT_EQ(c.enrichments[0].value, "$twin.tags.site");
    EXPECT_EQ(c.enrichments[0].endpoint_names, (std::vector<std::string>{"hot", "events"}));
}

TEST(routing_config, round_trips_through_to_json) {
    auto c = ok(azure_export);
    auto again = parse_routing_config(to_json(c));
    ASSERT_TRUE(again.has_value()) << again.error().message;
    EXPECT_EQ(boost::json::serialize(to_json(*again)), boost::json::serialize(to_json(c)));
}

TEST(routing_config, empty_config_has_azure_defaults) {
    auto c = ok("{}");
    EXPECT_TRUE(c.routes.empty());
    EXPECT_TRUE(c.event_hub_endpoints.empty());
    EXPECT_TRUE(c.fallback.enabled);
    EXPECT_EQ(c.fallback.source, route_source::telemetry);
    EXPECT_EQ(c.fallback.endpoint_names, std::vector<std::string>{"events"});
    EXPECT_TRUE(ok(R"({"fallbackRoute": null, "routes": null})").fallback.enabled);
}

TEST(routing_config, missing_or_empty_condition_is_true) {
    auto c =
        ok(R"({"routes": [{"name": "a", "source": "DeviceMessages", "endpointNames": ["events"], "isEnabled": true},
                               {"name": "b", "source": "deviceMessages", "condition": "", "endpointNames": ["events"],
                                "isEnabled": true}]})");
    EXPECT_EQ(c.routes[0].condition, "true");
    EXPECT_EQ(c.routes[1].condition, "true");
}

TEST(routing_config, all_supported_sources) {
    for (auto [name, src] : {std::pair{"DeviceMessages", route_source::telemetry},
                             std::pair{"TwinChangeEvents", route_source::twin_change},
                             std::pair{"DeviceLifecycleEvents", route_source::lifecycle},
                             std::pair{"DeviceConnectionStateEvents", route_source::connection_state}}) {
        auto c = ok(std::string(R"({"routes": [{"name": "r", "source": ")") + name +
                    R"(", "endpointNames": ["events"], "isEnabled": true}]})");
        EXPECT_EQ(c.routes.at(0).source, src);
        EXPECT_STREQ(to_string(src), name);
    }
}

TEST(routing_config, errors_name_the_member) {
    EXPECT_EQ(fail("[]"), "routing: must be an object, found an array");
    EXPECT_EQ(fail(R"({"route": []})"),
              "routing: unknown member 'route' (expected endpoints, routes, fallbackRoute, enrichments)");
    EXPECT_EQ(fail(R"({"routes": {}})"), "routing.routes: must be an array, found an object");
    EXPECT_EQ(fail(R"({"routes": [{"source": "DeviceMessages", "endpointNames": ["events"], "isEnabled": true}]})"),
              "routing.routes[0]: 'name' is required");
    EXPECT_EQ(
        fail(
            R"({"routes": [{"name": "a b", "source": "DeviceMessages", "endpointNames": ["events"], "isEnabled": true}]})"),
        "routing.routes[0].name: 'a b' may contain only letters, digits, '-', '.' and '_'");
    EXPECT_EQ(
        fail(
            R"({"routes": [{"name": "", "source": "DeviceMessages", "endpointNames": ["events"], "isEnabled": true}]})"),
        "routing.routes[0].name: must be 1 to 64 characters, found 0");
    EXPECT_EQ(
        fail(R"({"routes": [{"name": "r", "source": "Telemetry", "endpointNames": ["events"], "isEnabled": true}]})"),
        "routing.routes[0] ('r').source: 'Telemetry' is not a supported source (DeviceMessages, TwinChangeEvents, "
        "DeviceLifecycleEvents, DeviceConnectionStateEvents)");
    EXPECT_NE(
        fail(
            R"({"routes": [{"name": "r", "source": "DigitalTwinChangeEvents", "endpointNames": ["events"], "isEnabled": true}]})")
            .find("('r').source: 'DigitalTwinChangeEvents' is not a supported source"),
        std::string::npos);
    EXPECT_EQ(
        fail(
            R"({"routes": [{"name": "r", "source": "DeviceMessages", "endpointNames": ["warm"], "isEnabled": true}]})"),
        "routing.routes[0] ('r').endpointNames[0]: unknown endpoint 'warm' (defined: events)");
    EXPECT_EQ(
        fail(R"({"routes": [{"name": "r", "source": "DeviceMessages", "endpointNames": [], "isEnabled": true}]})"),
        "routing.routes[0] ('r').endpointNames: must name an endpoint");
    EXPECT_EQ(
        fail(R"({"endpoints": {"eventHubs": [{"name": "hot"}]}, "routes": [{"name": "r", "source": "DeviceMessages",
                      "endpointNames": ["events", "hot"], "isEnabled": true}]})"),
        "routing.routes[0] ('r').endpointNames: a route sends to exactly one endpoint, found 2");
    EXPECT_EQ(fail(R"({"routes": [{"name": "r", "source": "DeviceMessages", "endpointNames": ["events"]}]})"),
              "routing.routes[0] ('r'): 'isEnabled' is required");
    EXPECT_EQ(
        fail(
            R"({"routes": [{"name": "r", "source": "DeviceMessages", "endpointNames": ["events"], "isEnabled": "yes"}]})"),
        "routing.routes[0] ('r').isEnabled: must be true or false, found a string");
    EXPECT_EQ(
        fail(R"({"routes": [{"name": "r", "source": "DeviceMessages", "endpointNames": ["events"], "isEnabled": true,
                                   "priority": 1}]})"),
        "routing.routes[0]: unknown member 'priority' (expected name, source, condition, endpointNames, isEnabled)");
    EXPECT_EQ(
        fail(
            R"({"routes": [{"name": "r", "source": "DeviceMessages", "condition": 5, "endpointNames": ["events"], "isEnabled": true}]})"),
        "routing.routes[0] ('r').condition: must be a string, found a number");
}

TEST(routing_config, condition_errors_name_the_route_and_position) {
    EXPECT_EQ(
        fail(R"({"routes": [{"name": "ok", "source": "DeviceMessages", "endpointNames": ["events"], "isEnabled": true},
                                  {"name": "alerts", "source": "DeviceMessages", "condition": "level = = 'x'",
                                   "endpointNames": ["events"], "isEnabled": true}]})"),
        "routing.routes[1] ('alerts').condition: Syntax error at position 8 (line 1, column 9): expected an operand, "
        "found '='");
}

TEST(routing_config, route_names_are_unique) {
    EXPECT_EQ(
        fail(R"({"routes": [{"name": "r", "source": "DeviceMessages", "endpointNames": ["events"], "isEnabled": true},
                                  {"name": "R", "source": "TwinChangeEvents", "endpointNames": ["events"], "isEnabled": true}]})"),
        "routing.routes[1].name: duplicate route name 'R'");
}

TEST(routing_config, at_most_100_routes) {
    auto routes = [](int n) {
        std::string s = R"({"routes": [)";
        for (int i = 0; i < n; ++i)
            s += std::string(i ? "," : "") + R"({"name": "r)" + std::to_string(i) +
                 R"(", "source": "DeviceMessages", "endpointNames": ["events"], "isEnabled": true})";
        return s + "]}";
    };
    EXPECT_EQ(ok(routes(100)).routes.size(), 100u);
    EXPECT_EQ(fail(routes(101)), "routing.routes: 101 routes; at most 100 are allowed");
}

TEST(routing_config, endpoint_validation) {
    EXPECT_EQ(fail(R"({"endpoints": {"eventHubs": [{"name": "events"}]}})"),
              "routing.endpoints.eventHubs[0].name: 'events' is reserved for a built-in endpoint");
    EXPECT_EQ(fail(R"({"endpoints": {"eventHubs": [{"name": "$default"}]}})"),
              "routing.endpoints.eventHubs[0].name: '$default' is reserved for a built-in endpoint");
    EXPECT_EQ(fail(R"({"endpoints": {"eventHubs": [{"name": "hot"}, {"name": "HOT"}]}})"),
              "routing.endpoints.eventHubs[1].name: duplicate endpoint name 'HOT'");
    EXPECT_EQ(fail(R"({"endpoints": {"eventHubs": [{"connectionString": "x"}]}})"),
              "routing.endpoints.eventHubs[0]: 'name' is required");
    EXPECT_EQ(fail(R"({"endpoints": {"serviceBusQueues": [{"name": "q"}]}})"),
              "routing.endpoints.serviceBusQueues: only Event Hubs-compatible endpoints (endpoints.eventHubs) are "
              "supported by twinhub");
    EXPECT_EQ(fail(R"({"endpoints": {"kafka": []}})").find("routing.endpoints: unknown member 'kafka'"), 0u);
    std::string eleven = R"({"endpoints": {"eventHubs": [)";
    for (int i = 0; i < 11; ++i) eleven += std::string(i ? "," : "") + R"({"name": "e)" + std::to_string(i) + R"("})";
    EXPECT_EQ(fail(eleven + "]}}"), "routing.endpoints: 11 custom endpoints; at most 10 are allowed");
}

TEST(routing_config, fallback_route_validation) {
    auto c = ok(R"({"fallbackRoute": {"name": "$fallback", "source": "DeviceMessages", "condition": "true",
                                      "endpointNames": ["events"], "isEnabled": false}})");
    EXPECT_FALSE(c.fallback.enabled);
    EXPECT_EQ(
        fail(R"({"fallbackRoute": {"source": "TwinChangeEvents", "endpointNames": ["events"], "isEnabled": true}})"),
        "routing.fallbackRoute.source: the fallback route reads DeviceMessages only");
    EXPECT_EQ(
        fail(R"({"endpoints": {"eventHubs": [{"name": "hot"}]},
                      "fallbackRoute": {"source": "DeviceMessages", "endpointNames": ["hot"], "isEnabled": true}})"),
        "routing.fallbackRoute.endpointNames[0]: the fallback route sends to the built-in endpoint 'events' only");
}

TEST(routing_config, enrichment_validation) {
    EXPECT_EQ(fail(R"({"enrichments": [{"key": "a b", "value": "x", "endpointNames": ["events"]}]})"),
              "routing.enrichments[0].key: 'a b' may contain only letters, digits, '-', '.' and '_'");
    EXPECT_EQ(fail(R"({"enrichments": [{"key": "k", "value": "", "endpointNames": ["events"]}]})"),
              "routing.enrichments[0] ('k').value: must not be empty");
    EXPECT_EQ(fail(R"({"enrichments": [{"key": "k", "value": "v", "endpointNames": ["cold"]}]})"),
              "routing.enrichments[0] ('k').endpointNames[0]: unknown endpoint 'cold' (defined: events)");
    EXPECT_EQ(fail(R"({"enrichments": [{"key": "k", "value": "v", "endpointNames": ["events"]},
                                       {"key": "K", "value": "w", "endpointNames": ["events"]}]})"),
              "routing.enrichments[1].key: duplicate enrichment key 'K'");
    EXPECT_EQ(fail(R"({"enrichments": [{"key": "k", "value": "v"}]})"),
              "routing.enrichments[0] ('k'): 'endpointNames' is required");
    std::string eleven = R"({"enrichments": [)";
    for (int i = 0; i < 11; ++i)
        eleven += std::string(i ? "," : "") + R"({"key": "k)" + std::to_string(i) +
                  R"(", "value": "v", "endpointNames": ["events"]})";
    EXPECT_EQ(fail(eleven + "]}"), "routing.enrichments: 11 enrichments; at most 10 are allowed");
}

}  // namespace
}  // namespace twinhub::telemetry
