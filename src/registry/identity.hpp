// Device and module identities (spec 3.3-3.4, 3.5, 6): the data model, id rules, etags and
// generation ids, and their JSON, exactly as the IoT Hub service SDKs send and expect it.
// Thread safety: plain values and pure functions; no shared state.
#pragma once

#include "common/errc.hpp"
#include "common/time.hpp"

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::registry {

enum class auth_type { sas, self_signed, certificate_authority, none };
enum class device_status { enabled, disabled };
enum class connection_state { disconnected, connected };

struct symmetric_key {
    std::string primary_key;    // base64; empty only transiently in a create request
    std::string secondary_key;
};

struct x509_thumbprint {
    std::optional<std::string> primary_thumbprint;
    std::optional<std::string> secondary_thumbprint;
};

struct authentication_mechanism {
    auth_type type = auth_type::sas;
    registry::symmetric_key symmetric_key;
    registry::x509_thumbprint x509_thumbprint;
};

struct device_identity {
    std::string device_id;
    std::string generation_id;
    std::uint64_t etag = 0;  // counter; wire form is etag_to_string(etag), +1 on every identity write
    device_status status = device_status::enabled;
    std::optional<std::string> status_reason;
    std::optional<time_point> status_updated_time;
    registry::connection_state connection_state = registry::connection_state::disconnected;
    std::optional<time_point> connection_state_updated_time;
    std::optional<time_point> last_activity_time;
    std::int64_t cloud_to_device_message_count = 0;
    authentication_mechanism authentication;
    bool iot_edge = false;
    std::optional<std::string> device_scope;
    std::vector<std::string> parent_scopes;
};

struct module_identity {
    std::string device_id;
    std::string module_id;
    std::string managed_by;  // "" unless owned by an edge runtime ("IotEdge")
    std::string generation_id;
    std::uint64_t etag = 0;
    registry::connection_state connection_state = registry::connection_state::disconnected;
    std::optional<time_point> connection_state_updated_time;
    std::optional<time_point> last_activity_time;
    std::int64_t cloud_to_device_message_count = 0;
    authentication_mechanism authentication;
};

// Id rules of spec 3.3: 1-128 characters from ASCII alphanumerics and - . + % _ # * ? ! ( ) , = @ $ ' : ;
// `what` names the field in the message ("deviceId", "moduleId"). Fails with invalid_argument.
result<void> validate_id(std::string_view id, std::string_view what);

// Wire etag of an identity: base64 of the decimal counter ("MA==" for 0).
std::string etag_to_string(std::uint64_t etag);
// New generation id: a decimal string in the shape of .NET ticks, unique per (re)creation.
std::string new_generation_id();

// If-Match header value matching (spec 3.6 rule 4): accepts *, "*", "<etag>", W/"<etag>".
// Returns true when `if_match` names `current` or is a wildcard.
bool if_match_matches(std::string_view if_match, std::string_view current);
bool if_match_is_wildcard(std::string_view if_match);

// Wire spellings: "sas"/"selfSigned"/"certificateAuthority"/"none", "enabled"/"disabled",
// "Connected"/"Disconnected". parse_auth_type is case-insensitive (as the hub's enum binding is).
const char* to_string(auth_type t) noexcept;
const char* to_string(device_status s) noexcept;
const char* to_string(connection_state s) noexcept;
std::optional<auth_type> parse_auth_type(std::string_view s);

// Wire JSON (spec 3.3/3.4), every field, exact names and casing.
boost::json::object to_json(const device_identity& d);
boost::json::object to_json(const module_identity& m);

// Parses a client's PUT body (or bulk entry mapped to this shape). Read-only fields are ignored;
// keys are validated (non-empty values must be base64); the id must be present and valid.
// Fails with invalid_argument (wrong types, bad ids, bad keys, unknown enum values), e.g.
// "Invalid value for 'status': expected 'enabled' or 'disabled'."
// - Missing/null authentication -> sas with empty keys (the service generates them, on create and
//   on update alike).
// - authentication without type -> selfSigned if a thumbprint is set, else sas (Node's rule, 3.5).
// - Thumbprints must be 40 or 64 hex characters; selfSigned needs at least one. Keys of a non-sas
//   identity are dropped (shown as null on the wire).
// - Enum values (status, authentication.type) are matched case-insensitively.
// - parse_module_request: moduleId is required; deviceId is optional (empty when absent) but
//   validated when present — the caller compares it with the URL.
result<device_identity> parse_device_request(const boost::json::value& body);
result<module_identity> parse_module_request(const boost::json::value& body);

// Storage round trip: every field, read-only ones included. from_storage fails with corrupt_data.
boost::json::object to_storage_json(const device_identity& d);
boost::json::object to_storage_json(const module_identity& m);
result<device_identity> device_from_storage_json(const boost::json::value& v);
result<module_identity> module_from_storage_json(const boost::json::value& v);

}  // namespace twinhub::registry
