// The IoT Hub MQTT topic grammar (spec 5.1, 5.4, 5.5, 5.7-5.9), sans-I/O, for both ends of the
// connection: the hub's MQTT head (src/mqtt) parses what devices publish and subscribe to and
// builds what it sends; the C++ SDK (src/client) builds what a device publishes and parses what the
// hub sends. Each topic is written here once, its builder next to its parser.
// Hub-side checks are made against the connected identity, so that one identity can never name
// another's topics (5.6, 5.9).
// Thread safety: plain values and pure functions.
#pragma once

#include "common/errc.hpp"
#include "common/identity_key.hpp"
#include "proto/iothub/property_bag.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinhub::iothub {

// The api-version the C++ SDK names in its CONNECT user name.
inline constexpr std::string_view api_version = "2021-04-12";

// ---- CONNECT ----

// The identity named by an MQTT client id: "dev1" or "dev1/mod1". invalid_argument otherwise
// (empty, empty segment, more than one '/').
result<identity_key> parse_client_id(std::string_view client_id);

// "{host}/{d}/?{query}" or "{host}/{d}/{m}/?{query}" with each query value percent-encoded (keys
// are written as given).
std::string make_username(std::string_view host, const identity_key& id,
                          const std::vector<std::pair<std::string_view, std::string_view>>& query);

// "{host}/{d}/?{query}" or "{host}/{d}/{m}/?{query}", also without '?' (old documented form
// "{host}/{d}/api-version=2016-11-14") and without the query. The query is parsed leniently: split
// on '&', each pair at its first '=', percent-decoded (undecodable values kept raw), unknown keys kept.
struct parsed_username {
    std::string host;
    identity_key identity;
    std::vector<std::pair<std::string, std::string>> query;

    // The value of the first query parameter named `key`, if any.
    std::optional<std::string> param(std::string_view key) const;
};
result<parsed_username> parse_username(std::string_view username);

// ---- device -> hub PUBLISH ----

// "devices/{d}/" or "devices/{d}/modules/{m}/": the prefix of an identity's own topics.
std::string identity_topic_prefix(const identity_key& id);

// "devices/{d}[/modules/{m}]/messages/events/{bag}" (the bag encoded by encode_property_bag).
std::string telemetry_topic(const identity_key& id, const property_bag& bag);
// "$iothub/twin/GET/?$rid={rid}"
std::string twin_get_topic(std::string_view rid);
// "$iothub/twin/PATCH/properties/reported/?$rid={rid}"
std::string twin_patch_topic(std::string_view rid);
// "$iothub/methods/res/{status}/?$rid={rid}"
std::string method_response_topic(int status, std::string_view rid);

enum class publish_kind {
    telemetry,       // devices/{d}[/modules/{m}]/messages/events[/{bag}][/]
    twin_get,        // $iothub/twin/GET/?$rid=...
    twin_patch,      // $iothub/twin/PATCH/properties/reported/?$rid=...[&$version=...]
    method_response  // $iothub/methods/res/{status}/?$rid=...
};

struct publish_route {
    publish_kind kind = publish_kind::telemetry;
    std::string rid;           // $rid exactly as sent (echoed byte for byte); twin and method topics
    int status = 0;            // method_response
    std::string property_bag;  // telemetry: the raw bag (may be empty)
};

// Hub side: classifies a PUBLISH topic sent by `self`. invalid_argument (the caller closes the
// connection, 5.9) for an unknown topic, for another identity's topic (including a module using its
// device's topics and vice versa) and for twin/method topics without a $rid.
result<publish_route> route_publish(std::string_view topic, const identity_key& self);

// ---- SUBSCRIBE ----

inline constexpr std::string_view twin_response_filter = "$iothub/twin/res/#";
inline constexpr std::string_view desired_patch_filter = "$iothub/twin/PATCH/properties/desired/#";
inline constexpr std::string_view methods_filter = "$iothub/methods/POST/#";

// The cloud-to-device subscription (spec 5.4): "devices/{d}/messages/devicebound/#" for a device,
// "devices/{d}/modules/{m}/inputs/#" for a module.
std::string c2d_filter(const identity_key& id);

enum class subscription_kind { twin_responses, desired_patches, methods, c2d, module_inputs };

// Hub side: the filters of the 5.4 table, matched literally, for `self` (a module may also
// subscribe to "devices/{d}/modules/{m}/#"). invalid_argument for anything else.
result<subscription_kind> classify_filter(std::string_view filter, const identity_key& self);

// ---- hub -> device topics ----

// "$iothub/twin/res/{status}/?$rid={rid}" plus "&$version={v}" when version is set.
std::string twin_response_topic(int status, std::string_view rid, std::optional<std::int64_t> version = {});
struct twin_response {
    int status = 0;
    std::string rid;
    std::optional<std::int64_t> version;  // &$version= on reported-patch answers
};
// Device side: the parts of a twin_response_topic; nullopt for any other topic.
std::optional<twin_response> parse_twin_response_topic(std::string_view topic);

// "$iothub/twin/PATCH/properties/desired/?$version={v}"
std::string desired_patch_topic(std::int64_t version);
// Device side: the version of a desired_patch_topic (0 when absent); nullopt for any other topic.
std::optional<std::int64_t> parse_desired_patch_topic(std::string_view topic);

// "$iothub/methods/POST/{name}/?$rid={rid}"
std::string method_request_topic(std::string_view method_name, std::string_view rid);
struct method_request {
    std::string method_name;  // percent-decoded
    std::string rid;          // exactly as sent
};
// Device side: the parts of a method_request_topic (also without the '/' before '?'); nullopt for
// any other topic.
std::optional<method_request> parse_method_topic(std::string_view topic);

// "devices/{d}/messages/devicebound/{bag}" for a device, for a module
// "devices/{d}/modules/{m}/inputs/{input}/{bag}" (input percent-encoded).
std::string c2d_topic(const identity_key& id, std::string_view input_name, const property_bag& bag);
struct c2d_delivery {
    std::string input_name;   // modules only, percent-decoded
    property_bag properties;  // decoded leniently (decode_property_bag_lenient)
};
// Device side: a c2d_topic for `self` (a trailing '/' after the bag is accepted); nullopt for any
// other topic, including another identity's.
std::optional<c2d_delivery> parse_c2d_topic(std::string_view topic, const identity_key& self);

}  // namespace twinhub::iothub
