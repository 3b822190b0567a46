#include "telemetry/routing_table.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <atomic>
#include <thread>

namespace twinhub::telemetry {
namespace {

routing_message critical() {
    routing_message m;
    m.app_properties = {{"level", "critical"}};
    return m;
}

std::string first_endpoint(const routing_table& t, const routing_message& m) {
    auto d = t.current()->route(m);
    return d.empty() ? "" : d[0].endpoint;
}

constexpr const char* to_hot = R"({"endpoints": {"eventHubs": [{"name": "hot"}]},
    "routes": [{"name": "alerts", "source": "DeviceMessages", "condition": "level = 'critical'",
                "endpointNames": ["hot"], "isEnabled": true}]})";

TEST(routing_table, starts_with_azure_defaults) {
    routing_table t("hub");
    EXPECT_EQ(first_endpoint(t, critical()), "events");
    EXPECT_EQ(t.current()->hub_name(), "hub");
}

TEST(routing_table, a_new_configuration_applies_to_the_next_message) {
    routing_table t("hub");
    ASSERT_TRUE(t.configure(boost::json::parse(to_hot)).has_value());
    EXPECT_EQ(first_endpoint(t, critical()), "hot");
    ASSERT_TRUE(t.configure(boost::json::parse("{}")).has_value());
    EXPECT_EQ(first_endpoint(t, critical()), "events");
}

TEST(routing_table, an_invalid_configuration_keeps_the_current_one) {
    routing_table t("hub");
    ASSERT_TRUE(t.configure(boost::json::parse(to_hot)).has_value());
    auto r = t.configure(boost::json::parse(R"({"routes": [{"name": "x", "source": "DeviceMessages",
        "condition": "level = ", "endpointNames": ["events"], "isEnabled": true}]})"));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, errc::invalid_argument);
    EXPECT_EQ(r.error().message.rfind("routing.routes[0] ('x').condition: Syntax error at position 8", 0), 0u);
    EXPECT_EQ(first_endpoint(t, critical()), "hot");
}

TEST(routing_table, a_router_in_use_survives_a_reconfiguration) {
    routing_table t("hub");
    ASSERT_TRUE(t.configure(boost::json::parse(to_hot)).has_value());
    auto in_flight = t.current();
    ASSERT_TRUE(t.configure(boost::json::parse("{}")).has_value());
    EXPECT_EQ(in_flight->route(critical()).at(0).endpoint, "hot");
    EXPECT_EQ(first_endpoint(t, critical()), "events");
}

TEST(routing_table, readers_see_one_configuration_or_the_other_while_it_changes) {
    routing_table t("hub");
    const auto hot = boost::json::parse(to_hot);
    const auto none = boost::json::parse("{}");
    std::atomic<bool> stop{false};
    std::atomic<int> odd{0}, reads{0};
    std::vector<std::thread> readers;
    for (int i = 0; i < 3; ++i)
        readers.emplace_back([&] {
            while (!stop) {
                auto e = first_endpoint(t, critical());
                if (e != "hot" && e != "events") ++odd;
                ++reads;
            }
        });
    // At least 200 swaps, and on until the readers have really run beside them (on a loaded machine
    // they may not be scheduled during the first 200).
    bool configured = true;
    for (int i = 0; configured && (i < 200 || (reads.load() < 1000 && i < 2'000'000)); ++i)
        configured = t.configure(i % 2 ? none : hot).has_value();
    stop = true;
    EXPECT_TRUE(configured);
    for (auto& r : readers) r.join();
    EXPECT_EQ(odd.load(), 0);
    EXPECT_GT(reads.load(), 0);
}

}  // namespace
}  // namespace twinhub::telemetry
