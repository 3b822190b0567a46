// Automatic device management: configurations (PUT/GET/DELETE /configurations/{id}, GET
// /configurations, POST /configurations/testQueries) and POST /devices/{id}/applyConfigurationContent.
//
// A configuration with deviceContent (moduleContent) targets the device (module) twins its
// targetCondition matches (an empty condition targets none). Per twin the configuration with the
// highest priority wins, ties going to the most recently created (then the greater id); the
// winner's content ("properties.desired" or "properties.desired.<path>" keys) is merged into the
// twin's desired properties through the twin service (so connected devices get the desired
// notification), and the twin's "configurations" section says {"<id>":{"status":"Applied"}} for
// the winner and "Targeted" for the others. IoT Hub applies configurations within minutes; twinhub
// applies them right after a configuration is created, updated or removed, and after a twin
// changes (tags, reported properties) — a worker thread, so a write's answer does not wait.
// Content already present is not written again. Removing a configuration leaves the desired
// properties it wrote, as IoT Hub does.
// systemMetrics (targetedCount, appliedCount) and custom metrics (each query's row count; the
// queries may name the configuration as [[id]]) are computed when a configuration is read.
// modulesContent (IoT Edge deployments) is applied only through applyConfigurationContent: it
// replaces the desired properties of each named module twin, creating missing module identities
// ($edgeAgent, $edgeHub, ...) on the edge device.
//
// Durability: each configuration is the hub setting "config/<id>".
// Thread safety: every member may be called from any thread. The hub and the query engine must
// outlive the service; stop() before they go.
#pragma once

#include "common/errc.hpp"
#include "service/change_notifier.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::service {
class hub_service;
}
namespace twinhub::query {
class query_engine;
}

namespace twinhub::jobs {

// The IoT Hub limit on configurations per hub (standard tier).
inline constexpr std::size_t max_configurations = 100;

class configuration_service final : public service::change_observer {
public:
    configuration_service(service::hub_service& hub, query::query_engine& queries);
    ~configuration_service() override;
    configuration_service(const configuration_service&) = delete;
    configuration_service& operator=(const configuration_service&) = delete;

    void start();  // loads the configurations, registers for twin changes, starts the worker
    void stop();

    using completion = std::function<void(result<boost::json::object>)>;
    // Create (if_match absent: device_already_exists when present, the REST head answers 409) or
    // update (If-Match "*" or the current etag, else precondition_failed; content is immutable).
    void put(std::string id, const boost::json::value& body, std::optional<std::string> if_match, completion done);
    result<boost::json::object> get(std::string_view id) const;
    std::vector<boost::json::object> list(std::size_t top) const;
    void remove(std::string id, std::optional<std::string> if_match, std::function<void(result<void>)> done);
    // {"targetConditionError":"...","customMetricQueryErrors":{"name":"..."}}
    result<boost::json::object> test_queries(const boost::json::value& body) const;
    void apply_content(std::string device_id, const boost::json::value& body, std::function<void(result<void>)> done);

    // Blocks until every twin change seen so far has been evaluated (tests, benchmarks).
    void wait_idle();

    void on_twin_changed(const identity_key& id) override;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

// Replaces [[id]] (with or without a dot before it) by ['id'], as IoT Hub reads metric queries.
std::string expand_configuration_refs(std::string_view query);

}  // namespace twinhub::jobs
