// The IoT Hub MQTT topic grammar (spec 5.1, 5.4, 5.5, 5.7-5.9), sans-I/O: which PUBLISH topics and
// SUBSCRIBE filters a connected identity may use, the CONNECT username, the property-bag encoding
// and the hub-to-device topics. Everything is checked against the connected identity, so that one
// identity can never name another's topics (5.6, 5.9).
// Thread safety: plain values and pure functions.
#pragma once

#include "common/errc.hpp"
#include "store/store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinhub::mqtt {

// ---- CONNECT ----

// The identity named by an MQTT client id: "dev1" or "dev1/mod1". invalid_argument otherwise
// (empty, empty segment, more than one '/').
result<store::identity_key> parse_client_id(std::string_view client_id);

// "{host}/{d}/?{query}" or "{host}/{d}/{m}/?{query}", also without '?' (old documented form
// "{host}/{d}/api-version=2016-11-14") and without the query. The query is parsed leniently: split
// on '&', each pair at its first '=', percent-decoded (undecodable values kept raw), unknown keys kept.
struct parsed_username {
    std::string host;
    store::identity_key identity;
    std::vector<std::pair<std::string, std::string>> query;

    // The value of the first query parameter named `key`, if any.
    std::optional<std::string> param(std::string_view key) const;
};
result<parsed_username> parse_username(std::string_view username);

// ---- device -> hub PUBLISH ----

enum class publish_kind {
    telemetry,       // devices/{d}[/modules/{m}]/messages/events[/{bag}][/]
    twin_get,        // $iothub/twin/GET/?$rid=...
    twin_patch,      // $iothub/twin/PATCH/properties/reported/?$rid=...[&$version=...]
    method_response  // $iothub/methods/res/{status}/?$rid=...
};

struct publish_route {
    publish_kind kind = publish_kind::telemetry;
    std::string rid;          // $rid exactly as sent (echoed byte for byte); twin and method topics
    int status = 0;           // method_response
    std::string property_bag; // telemetry: the raw bag (may be empty)
};

// Classifies a PUBLISH topic sent by `self`. invalid_argument (the caller closes the connection,
// 5.9) for an unknown topic, for another identity's topic (including a module using its device's
// topics and vice versa) and for twin/method topics without a $rid.
result<publish_route> route_publish(std::string_view topic, const store::identity_key& self);

// ---- SUBSCRIBE ----

enum class subscription_kind { twin_responses, desired_patches, methods, c2d, module_inputs };

// The filters of the 5.4 table, matched literally, for `self`. invalid_argument for anything else.
result<subscription_kind> classify_filter(std::string_view filter, const store::identity_key& self);

inline constexpr std::string_view twin_response_filter = "$iothub/twin/res/#";
inline constexpr std::string_view desired_patch_filter = "$iothub/twin/PATCH/properties/desired/#";
inline constexpr std::string_view methods_filter = "$iothub/methods/POST/#";

// ---- hub -> device topics ----

// "$iothub/twin/res/{status}/?$rid={rid}" plus "&$version={v}" when version is set.
std::string twin_response_topic(int status, std::string_view rid, std::optional<std::int64_t> version = {});
// "$iothub/twin/PATCH/properties/desired/?$version={v}"
std::string desired_patch_topic(std::int64_t version);
// "$iothub/methods/POST/{name}/?$rid={rid}"
std::string method_request_topic(std::string_view method_name, std::string_view rid);

// ---- property bags (5.5) ----

struct property_bag {
    // System properties as "$.mid", "$.ct", ... (decoded keys, '$.' kept).
    std::vector<std::pair<std::string, std::string>> system;
    std::vector<std::pair<std::string, std::string>> application;
};

// Splits on '&', each pair at its first '=', percent-decodes both; "key" without '=' gives an empty
// value. Keys starting with "$." are system properties. invalid_argument on a bad escape.
result<property_bag> decode_property_bag(std::string_view bag);

}  // namespace twinhub::mqtt
