// The compiled routing table of a hub: which endpoints one message goes to, and the enrichment
// properties each endpoint stamps on it.
//
// Semantics are Azure's: a message of source S goes to the endpoint of every enabled route of
// source S whose condition is true, each endpoint once (in the order routes are configured). A
// DeviceMessages message that matched no route goes to the fallback route's endpoint when that
// route is enabled and its condition holds; so with no routes at all telemetry reaches the built-in
// endpoint "events", and other sources go nowhere unless a route sends them. Enrichments apply to
// every delivery to their endpoints, in configuration order, whatever the source.
//
// Thread safety: a router is immutable after compile(); share it as shared_ptr<const router> and
// call route() from any number of threads. A configuration change compiles a new router and swaps
// the pointer (std::atomic<std::shared_ptr<const router>> or under a mutex); messages in flight
// finish with the router they started with.
#pragma once

#include "common/errc.hpp"
#include "telemetry/routing_condition.hpp"
#include "telemetry/routing_config.hpp"
#include "telemetry/routing_message.hpp"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace twinhub::telemetry {

class router {
public:
    struct delivery {
        std::string endpoint;
        // Application properties to add to the message for this endpoint, in configuration order.
        std::vector<std::pair<std::string, std::string>> enrichments;
    };

    // `hub_name` answers $iothubname in enrichments. On failure (a configuration that
    // parse_routing_config would reject: unknown endpoint, bad condition, ...) invalid_argument
    // naming the route or enrichment.
    static result<std::shared_ptr<const router>> compile(routing_config config, std::string hub_name);

    // The deliveries of one message, deduplicated by endpoint; empty when the message goes nowhere.
    std::vector<delivery> route(const routing_message& m) const;

    router(const router&) = delete;  // holds pointers into its own config_
    router& operator=(const router&) = delete;

    const routing_config& config() const noexcept { return config_; }
    const std::string& hub_name() const noexcept { return hub_name_; }

private:
    struct compiled_route {
        const telemetry::route* def;
        condition cond;
    };
    struct compiled_enrichment {
        const enrichment* def;
        enum class kind { literal, hub_name, twin } k = kind::literal;
        std::vector<std::string> twin_path;  // kind::twin: "tags", "x", ...
    };

    router() = default;
    std::string enrichment_value(const compiled_enrichment& e, const routing_message& m) const;

    routing_config config_;
    std::string hub_name_;
    std::vector<compiled_route> routes_;
    std::optional<compiled_route> fallback_;
    std::vector<compiled_enrichment> enrichments_;
};

}  // namespace twinhub::telemetry
