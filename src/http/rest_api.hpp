// The service REST API (spec 3.2 rows 1-14, 18-20; 3.6; 3.9; 4.3) without any socket: takes one
// parsed request, validates it at the edge (path, api-version, Authorization per spec 2.6, ids,
// JSON shape), calls service::hub_service and formats the response, errors included (spec 3.11).
// Order of the edge checks: unknown path 404 / wrong method 405, then a missing or empty
// api-version query parameter 400 InvalidProtocolVersion (any non-empty value is accepted), then
// authorisation 401, then the request itself.
//
// Lifetime: the hub_service must outlive the rest_api and every call still in flight.
// Thread safety: handle() may be called from any thread concurrently. `done` is called exactly
// once: inline for reads and for everything rejected at the edge, on the store's thread for
// writes (the caller posts it to its own executor).
#pragma once

#include "http/rest_message.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace twinhub::service {
class hub_service;
class c2d_service;
class telemetry_service;
class file_upload_service;
}
namespace twinhub::jobs {
class job_service;
class configuration_service;
class import_export_service;
}
namespace twinhub::methods {
class method_router;
}
namespace twinhub::query {
class query_engine;
}

namespace twinhub::http {

struct route;

class rest_api {
public:
    using completion = std::function<void(rest_response)>;

    // host_names: the hub's names a token's sr may name; empty means {"localhost"}. `methods` serves
    // POST /twins/{id}[/modules/{mid}]/methods (spec 3.8); it must outlive the rest_api, and without
    // it those routes answer 404.
    // `c2d` serves the C2D routes (purge, the device HTTPS receive API) and the
    // cloudToDeviceMessageCount of identities; without it those routes answer 404 and the count is 0.
    rest_api(service::hub_service& hub, std::vector<std::string> host_names,
             methods::method_router* methods = nullptr, query::query_engine* queries = nullptr,
             service::c2d_service* c2d = nullptr);

    void handle(rest_request req, completion done) const;
    // The consumer group routes (rest_eventhub.cpp); without it they answer 404. Set before serving.
    void set_telemetry(service::telemetry_service* t) noexcept { telemetry_ = t; }
    // The jobs and configuration routes (rest_jobs.cpp); without them they answer 404.
    void set_jobs(jobs::job_service* j, jobs::configuration_service* c) noexcept {
        jobs_ = j;
        configurations_ = c;
    }
    // POST /devices/{id}/files[/notifications] (rest_files.cpp); without it they answer 400
    // DefaultStorageEndpointNotConfigured. Set before serving.
    void set_file_upload(service::file_upload_service* f) noexcept { files_ = f; }
    // POST /jobs/create, GET /jobs[/{id}], DELETE /jobs/{id} (rest_import_export.cpp); without it
    // they answer 404. Set before serving.
    void set_import_export(jobs::import_export_service* s) noexcept { import_export_ = s; }

    // Identities returned by one list call at most (spec 7.3), and the bulk entry limit (spec 3.9).
    static constexpr std::size_t max_top = 1000;
    static constexpr std::size_t max_bulk_entries = 100;
    // How long a message received over the device HTTPS API stays locked (IoT Hub: 1 minute).
    static constexpr std::chrono::seconds c2d_lock_duration{60};

private:
    service::hub_service& hub_;
    std::vector<std::string> host_names_;
    methods::method_router* methods_ = nullptr;
    query::query_engine* queries_ = nullptr;  // POST /devices/query (spec 3.7); 404 without it
    service::c2d_service* c2d_ = nullptr;
    service::telemetry_service* telemetry_ = nullptr;
    jobs::job_service* jobs_ = nullptr;
    jobs::configuration_service* configurations_ = nullptr;
    service::file_upload_service* files_ = nullptr;
    jobs::import_export_service* import_export_ = nullptr;

    void handle_consumer_groups(const route& r, const rest_request& req, completion done) const;
    void handle_jobs(const route& r, const rest_request& req, completion done) const;
    void handle_import_export(const route& r, const rest_request& req, completion done) const;  // rest_import_export.cpp
    void handle_configurations(const route& r, const rest_request& req, completion done) const;
    void handle_device_route(const route& r, const rest_request& req, completion done) const;
    // X.509 CA certificates (rest_certificates.cpp).
    void handle_certificates(const route& r, const rest_request& req, completion done) const;
    void handle_files(const route& r, const rest_request& req, completion done) const;          // rest_files.cpp
    void handle_digital_twin(const route& r, const rest_request& req, completion done) const;   // rest_digitaltwin.cpp
};

}  // namespace twinhub::http
