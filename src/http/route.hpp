// The service REST routes of spec table 3.2 (rows 1-14, 18-20): which resource a decoded path
// names, whether the method is allowed on it, and the permission (spec 2.6) the call needs.
// Thread safety: plain values and pure functions.
#pragma once

#include "common/errc.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::http {

enum class http_method { get, put, post, patch, delete_, other };

http_method parse_method(std::string_view m) noexcept;

enum class route_kind {
    devices,             // /devices              GET list, POST bulk
    device,              // /devices/{id}         GET, PUT, DELETE
    modules,             // /devices/{id}/modules GET
    module,              // /devices/{id}/modules/{mid}  GET, PUT, DELETE
    twin,                // /twins/{id}           GET, PATCH, PUT
    module_twin,         // /twins/{id}/modules/{mid}    GET, PATCH, PUT
    registry_statistics, // /statistics/devices   GET
    service_statistics,  // /statistics/service   GET
    device_methods,      // /twins/{id}/methods   POST (direct methods, spec 3.8)
    module_methods,      // /twins/{id}/modules/{mid}/methods  POST
    devices_query,       // /devices/query        POST (twin queries, spec 3.7)
    // C2D queue management (spec 3.2 row 21): DELETE purges. Module form is a twinhub extension.
    c2d_purge,           // /devices/{id}[/modules/{mid}]/commands  DELETE
    // The device HTTPS C2D API (device credentials, not a service policy; module form: extension):
    c2d_receive,         // /devices/{id}[/modules/{mid}]/messages/deviceBound  GET
    c2d_settle,          // .../messages/deviceBound/{lockToken}  DELETE (complete; ?reject: reject)
    c2d_abandon,         // .../messages/deviceBound/{lockToken}/abandon  POST
    device_events,       // /devices/{id}[/modules/{mid}]/messages/events  POST (telemetry, single or batch)
    // File upload (device credentials; rest_files.cpp):
    file_upload,         // /devices/{id}/files  POST {blobName} -> SAS URI
    file_notification,   // /devices/{id}/files/notifications[/{correlationId}]  POST
    // IoT Plug and Play digital twins (service; rest_digitaltwin.cpp):
    digital_twin,        // /digitaltwins/{id}  GET, PATCH
    digital_twin_command,  // /digitaltwins/{id}[/components/{c}]/commands/{name}  POST
    // The built-in endpoint's consumer groups (Azure manages them through ARM; twinhub here):
    consumer_groups,     // /eventHubEndpoints/events/consumerGroups         GET
    consumer_group,      // /eventHubEndpoints/events/consumerGroups/{name}  GET, PUT, DELETE
    // X.509 CA certificates (Azure manages them through ARM; twinhub here, RegistryWrite; the
    // name is in lock_token):
    certificates,             // /certificates                               GET
    certificate,              // /certificates/{name}                        GET, PUT, DELETE
    certificate_code,         // /certificates/{name}/generateVerificationCode  POST
    certificate_verify,       // /certificates/{name}/verify                 POST
    // Scheduled jobs and configurations (rest_jobs.cpp); the id is in route::lock_token:
    job,                 // /jobs/v2/{id}         GET, PUT
    job_cancel,          // /jobs/v2/{id}/cancel  POST
    jobs_query,          // /jobs/v2/query        GET
    // Import/export jobs (rest_import_export.cpp); the id is in route::lock_token:
    ie_jobs,             // /jobs                 GET (list)
    ie_job_create,       // /jobs/create          POST
    ie_job,              // /jobs/{id}            GET, DELETE (cancel)
    configurations,      // /configurations       GET
    configuration,       // /configurations/{id}  GET, PUT, DELETE
    configurations_test, // /configurations/testQueries  POST
    apply_configuration, // /devices/{id}/applyConfigurationContent  POST
};

// True for the routes rest_jobs.cpp serves.
bool is_jobs_route(route_kind k) noexcept;

// True for the routes a device calls with its own credentials (spec 2.6 device side).
bool is_device_route(route_kind k) noexcept;

struct route {
    route_kind kind = route_kind::devices;
    http_method method = http_method::get;
    std::string device_id;  // decoded; empty when the route has none
    std::string module_id;
    std::string lock_token;  // c2d_settle, c2d_abandon; consumer_group: the group's name;
                             // file_notification: the correlation id in the path (may be empty)
    std::string component;   // digital_twin_command: the component (empty: the default component)
    std::string command;     // digital_twin_command: the command name
};

// Matches decoded path segments (request_target::segments) and a method. Fails with not_found for a
// path that names no resource (including the query and direct-method routes this head does not
// serve), method_not_allowed for a known path with another method (then `allow`, when given, gets
// the Allow header value for the 405). Ids are not validated here.
result<route> match_route(std::string_view method, const std::vector<std::string>& segments,
                          std::string_view* allow = nullptr);

// The permission bits of auth::permission of which the caller needs at least one (spec 2.6):
// registry reads RegistryRead, registry writes RegistryWrite, twins and service statistics
// ServiceConnect (twin reads also RegistryRead: spec 2.6 [UNVERIFIED], lenient breaks no SDK).
std::uint32_t required_permission(const route& r) noexcept;

// "GET, PUT, DELETE": the Allow header value of a 405 for the route kind.
std::string_view allowed_methods(route_kind k) noexcept;

}  // namespace twinhub::http
