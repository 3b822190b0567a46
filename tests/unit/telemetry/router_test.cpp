#include "telemetry/router.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <string>
#include <thread>

namespace twinhub::telemetry {
namespace {

std::shared_ptr<const router> compile(std::string_view json, std::string hub = "hub1") {
    auto c = parse_routing_config(boost::json::parse(json));
    EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
    if (!c) return nullptr;
    auto r = router::compile(std::move(*c), std::move(hub));
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
    return r ? *r : nullptr;
}

std::vector<std::string> endpoints(const router& r, const routing_message& m) {
    std::vector<std::string> out;
    for (const auto& d : r.route(m)) out.push_back(d.endpoint);
    return out;
}

routing_message telemetry(std::vector<std::pair<std::string, std::string>> props = {}) {
    routing_message m;
    m.source = route_source::telemetry;
    m.body = R"({"temp": 70})";
    m.content_type = "application/json";
    m.content_encoding = "utf-8";
    m.app_properties = std::move(props);
    m.system["$connectionDeviceId"] = "d1";
    return m;
}

using names = std::vector<std::string>;

TEST(router, no_routes_sends_telemetry_to_events_and_nothing_else) {
    auto r = compile("{}");
    EXPECT_EQ(endpoints(*r, telemetry()), names{"events"});
    for (auto src : {route_source::twin_change, route_source::lifecycle, route_source::connection_state}) {
        routing_message m = telemetry();
        m.source = src;
        EXPECT_TRUE(endpoints(*r, m).empty()) << to_string(src);
    }
}

TEST(router, disabled_fallback_with_no_routes_drops_telemetry) {
    auto r =
        compile(R"({"fallbackRoute": {"source": "DeviceMessages", "endpointNames": ["events"], "isEnabled": false}})");
    EXPECT_TRUE(endpoints(*r, telemetry()).empty());
}

constexpr const char* two_hubs = R"({
  "endpoints": {"eventHubs": [{"name": "hot"}, {"name": "cold"}]},
  "routes": [
    {"name": "alerts", "source": "DeviceMessages", "condition": "level = 'critical'", "endpointNames": ["hot"], "isEnabled": true},
    {"name": "warm", "source": "DeviceMessages", "condition": "$body.temp > 60", "endpointNames": ["hot"], "isEnabled": true},
    {"name": "archive", "source": "DeviceMessages", "condition": "processingPath = 'cold'", "endpointNames": ["cold"], "isEnabled": true},
    {"name": "off", "source": "DeviceMessages", "condition": "true", "endpointNames": ["cold"], "isEnabled": false},
    {"name": "twins", "source": "TwinChangeEvents", "endpointNames": ["cold"], "isEnabled": true},
    {"name": "life", "source": "DeviceLifecycleEvents", "condition": "opType = 'createDeviceIdentity'", "endpointNames": ["events"], "isEnabled": true}
  ]})";

TEST(router, matching_routes_only_once_routes_exist) {
    auto r = compile(two_hubs);
    // Matches alerts and warm, both to hot: delivered once.
    EXPECT_EQ(endpoints(*r, telemetry({{"level", "critical"}})), names{"hot"});
    EXPECT_EQ(endpoints(*r, telemetry({{"level", "critical"}, {"processingPath", "cold"}})), (names{"hot", "cold"}));
    auto cool = telemetry({{"processingPath", "cold"}});
    cool.body = R"({"temp": 10})";
    EXPECT_EQ(endpoints(*r, cool), names{"cold"});  // a matching route: no fallback, not events
}

TEST(router, fallback_catches_telemetry_that_matched_no_route) {
    auto r = compile(two_hubs);
    auto m = telemetry({{"level", "info"}});
    m.body = R"({"temp": 10})";
    EXPECT_EQ(endpoints(*r, m), names{"events"});  // the disabled route "off" does not count
    m.body = "not json";
    EXPECT_EQ(endpoints(*r, m), names{"events"});
}

TEST(router, fallback_condition_is_evaluated) {
    auto r = compile(R"({"fallbackRoute": {"source": "DeviceMessages", "condition": "$connectionDeviceId = 'd2'",
                                          "endpointNames": ["events"], "isEnabled": true}})");
    EXPECT_TRUE(endpoints(*r, telemetry()).empty());
    auto m = telemetry();
    m.system["$connectionDeviceId"] = "d2";
    EXPECT_EQ(endpoints(*r, m), names{"events"});
}

TEST(router, other_sources_follow_their_own_routes_only) {
    auto r = compile(two_hubs);
    routing_message twin_change;
    twin_change.source = route_source::twin_change;
    EXPECT_EQ(endpoints(*r, twin_change), names{"cold"});
    routing_message created;
    created.source = route_source::lifecycle;
    created.app_properties = {{"opType", "createDeviceIdentity"}};
    EXPECT_EQ(endpoints(*r, created), names{"events"});
    created.app_properties = {{"opType", "deleteDeviceIdentity"}};
    EXPECT_TRUE(endpoints(*r, created).empty());  // no fallback for lifecycle events
    routing_message conn;
    conn.source = route_source::connection_state;
    EXPECT_TRUE(endpoints(*r, conn).empty());
}

TEST(router, a_route_to_events_keeps_the_built_in_endpoint) {
    auto r = compile(R"({"endpoints": {"eventHubs": [{"name": "hot"}]},
      "routes": [{"name": "all", "source": "DeviceMessages", "endpointNames": ["events"], "isEnabled": true},
                 {"name": "hot", "source": "DeviceMessages", "condition": "level = 'critical'", "endpointNames": ["hot"], "isEnabled": true}]})");
    EXPECT_EQ(endpoints(*r, telemetry({{"level", "critical"}})), (names{"events", "hot"}));
    EXPECT_EQ(endpoints(*r, telemetry()), names{"events"});
}

constexpr const char* enriched = R"({
  "endpoints": {"eventHubs": [{"name": "hot"}]},
  "routes": [{"name": "all", "source": "DeviceMessages", "endpointNames": ["events"], "isEnabled": true},
             {"name": "hot", "source": "DeviceMessages", "endpointNames": ["hot"], "isEnabled": true},
             {"name": "twins", "source": "TwinChangeEvents", "endpointNames": ["hot"], "isEnabled": true}],
  "enrichments": [
    {"key": "customer", "value": "contoso", "endpointNames": ["events", "hot"]},
    {"key": "hub", "value": "$iothubname", "endpointNames": ["hot"]},
    {"key": "site", "value": "$twin.tags.site", "endpointNames": ["hot"]},
    {"key": "floor", "value": "$twin.tags.location.floor", "endpointNames": ["hot"]},
    {"key": "fw", "value": "$twin.properties.reported.fw.version", "endpointNames": ["hot"]},
    {"key": "mode", "value": "$twin.properties.desired.mode", "endpointNames": ["hot"]},
    {"key": "loc", "value": "$twin.tags.location", "endpointNames": ["hot"]},
    {"key": "missing", "value": "$twin.tags.nothing", "endpointNames": ["hot"]},
    {"key": "dev", "value": "$deviceId", "endpointNames": ["hot"]}
  ]})";

TEST(router, enrichments_per_endpoint) {
    auto r = compile(enriched, "myhub");
    const auto twin = boost::json::parse(R"({"tags": {"site": "oslo", "location": {"floor": 3}},
        "properties": {"desired": {"mode": true}, "reported": {"fw": {"version": "1.2"}}}})");
    auto m = telemetry();
    m.twin = &twin;
    auto d = r->route(m);
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0].endpoint, "events");
    using props = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ(d[0].enrichments, (props{{"customer", "contoso"}}));  // only the enrichments of "events"
    EXPECT_EQ(d[1].endpoint, "hot");
    EXPECT_EQ(d[1].enrichments, (props{{"customer", "contoso"},
                                       {"hub", "myhub"},
                                       {"site", "oslo"},
                                       {"floor", "3"},
                                       {"fw", "1.2"},
                                       {"mode", "true"},
                                       // Azure stamps the literal text for objects and missing paths, and
                                       // supports no variables besides $iothubname and $twin sections.
                                       {"loc", "$twin.tags.location"},
                                       {"missing", "$twin.tags.nothing"},
                                       {"dev", "$deviceId"}}));
}

TEST(router, enrichments_without_a_twin_stamp_the_literal) {
    auto r = compile(enriched, "myhub");
    auto d = r->route(telemetry());
    ASSERT_EQ(d.size(), 2u);
    ASSERT_GE(d[1].enrichments.size(), 3u);
    EXPECT_EQ(d[1].enrichments[2], (std::pair<std::string, std::string>{"site", "$twin.tags.site"}));
}

TEST(router, enrichments_apply_to_other_sources_too) {
    auto r = compile(enriched, "myhub");
    routing_message m;
    m.source = route_source::twin_change;
    auto d = r->route(m);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].endpoint, "hot");
    EXPECT_EQ(d[0].enrichments.at(1).second, "myhub");
}

TEST(router, twin_conditions) {
    auto r = compile(R"({"endpoints": {"eventHubs": [{"name": "floor1"}]},
      "routes": [{"name": "f1", "source": "DeviceMessages", "condition": "$twin.tags.deploymentLocation.floor = 1 AND $twin.properties.reported.batteryLevel < 20",
                  "endpointNames": ["floor1"], "isEnabled": true}]})");
    const auto low = boost::json::parse(
        R"({"tags": {"deploymentLocation": {"floor": 1}}, "properties": {"reported": {"batteryLevel": 5}}})");
    const auto full = boost::json::parse(
        R"({"tags": {"deploymentLocation": {"floor": 1}}, "properties": {"reported": {"batteryLevel": 90}}})");
    auto m = telemetry();
    m.twin = &low;
    EXPECT_EQ(endpoints(*r, m), names{"floor1"});
    m.twin = &full;
    EXPECT_EQ(endpoints(*r, m), names{"events"});
}

TEST(router, compile_rejects_an_invalid_hand_built_config) {
    routing_config c;
    c.routes.push_back(route{"r", route_source::telemetry, "level = ", {"events"}, true});
    auto bad = router::compile(c, "h");
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().message.rfind("route 'r': condition: Syntax error at position 8", 0), 0u);
    c.routes[0].condition = "true";
    c.routes[0].endpoint_names = {"nowhere"};
    ASSERT_FALSE(router::compile(c, "h").has_value());
    EXPECT_EQ(router::compile(c, "h").error().message, "route 'r': unknown endpoint 'nowhere'");
    c.routes[0].endpoint_names = {"events"};
    c.enrichments.push_back(enrichment{"k", "v", {"nowhere"}});
    EXPECT_EQ(router::compile(c, "h").error().message, "enrichment 'k': unknown endpoint 'nowhere'");
}

TEST(router, shared_across_threads) {
    auto r = compile(two_hubs);
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 2000; ++i) {
                auto m = telemetry({{"level", i % 2 ? "critical" : "info"}});
                m.body = R"({"temp": 10})";
                auto e = endpoints(*r, m);
                if (e != (i % 2 ? names{"hot"} : names{"events"})) ++wrong;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace twinhub::telemetry
