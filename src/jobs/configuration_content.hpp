// The pure parts of configurations (configuration_service.hpp): the Configuration body as IoT Hub
// accepts it, its wire document and etag, and the per-twin decision (which configuration wins,
// what to write into desired, the twin's "configurations" section).
// Thread safety: plain values and pure functions.
#pragma once

#include "common/errc.hpp"
#include "common/time.hpp"
#include "query/query_plan.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinhub::jobs {

enum class content_kind : std::uint8_t { device, module, modules };

struct configuration {
    std::string id;
    content_kind kind = content_kind::device;
    boost::json::object content;  // as given
    std::string target_condition;
    std::optional<query::query_plan> plan;  // set when target_condition is not empty
    // deviceContent/moduleContent: (path below properties.desired, value)
    std::vector<std::pair<std::vector<std::string>, boost::json::value>> entries;
    std::int64_t priority = 0;
    time_point created;
    time_point updated;
    std::uint64_t etag_counter = 0;
    boost::json::object labels;
    boost::json::object metric_queries;
    std::string schema_version = "1.0";
    boost::json::object doc;  // the wire form, without computed metrics (finish_document)
};

// Validates a PUT /configurations/{id} body (invalid_argument naming the field). created and
// updated are `t`; etag_counter is left 0 for the caller.
result<configuration> parse_configuration(std::string_view path_id, const boost::json::value& body, time_point t);
// Fills c.doc from the fields.
void finish_document(configuration& c);
std::string configuration_etag(const configuration& c);
// A stored document (configuration::doc) back to a configuration.
result<configuration> configuration_from_storage(const boost::json::object& doc);

struct twin_decision {
    boost::json::value patch;       // a twin PATCH body for the desired properties, or null
    boost::json::object section;    // the new "configurations" section
};
// What the configurations `all` mean for one twin (service twin JSON); nullopt when the twin is
// already as they want it.
std::optional<twin_decision> decide(const boost::json::object& twin, bool module,
                                    const std::vector<std::shared_ptr<const configuration>>& all);

struct apply_plan {
    std::optional<boost::json::object> device_patch;                    // deviceContent
    std::vector<std::pair<std::string, boost::json::object>> modules;  // modulesContent: id -> desired
};
// The body of POST /devices/{id}/applyConfigurationContent (a ConfigurationContent).
result<apply_plan> parse_apply_request(const boost::json::value& body);

}  // namespace twinhub::jobs
