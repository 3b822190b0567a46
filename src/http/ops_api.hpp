// The operator's endpoints on the HTTPS port, beside the IoT Hub REST API and before it (no
// api-version needed):
//   /health, /health/live, /health/ready   no auth (rest_health.cpp): liveness = the process answers;
//       readiness = a probe write is durable in the store, the data directory's file system has
//       room, and the HTTPS, MQTT and AMQP listeners are bound. 200 {"status":"Healthy",...} or 503
//       {"status":"Unhealthy",...} naming the failed check.
//   /metrics   Prometheus text (rest_health.cpp): `Authorization: Bearer <--metrics-token>` or a
//       service SAS token whose policy grants ServiceConnect or RegistryRead; 401 otherwise.
//   /console/...   the web console's static files (console_files.cpp), when console_dir is set;
//   /console/api/...   its C2D send and telemetry read (console_api.cpp), service SAS tokens.
//
// Lifetime: the hub_service (and the method router) must outlive the ops_api and every probe in
// flight. Thread safety: handle() may be called from any thread concurrently.
#pragma once

#include "http/rest_message.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace twinhub::service {
class hub_service;
class c2d_service;
}
namespace twinhub::methods {
class method_router;
}

namespace twinhub::http {

struct ops_options {
    std::vector<std::string> host_names;  // the names a SAS token's sr may carry
    std::string metrics_token;            // empty: /metrics takes SAS tokens only
    std::string store_file;               // the SQLite file (its -wal size is a metric); may be empty
    std::string data_dir;                 // whose file system's free space readiness checks; may be empty
    std::string console_dir;              // the console's built files; empty: /console answers 404
    methods::method_router* methods = nullptr;  // pending calls (a metric); may be null
    service::c2d_service* c2d = nullptr;        // the console's C2D send; may be null
};

class ops_api {
public:
    using completion = std::function<void(rest_response)>;

    ops_api(service::hub_service& hub, ops_options opts);
    ~ops_api();

    // True when the request's path is one of the operator's endpoints: `done` is then called once
    // (inline, or on the store's thread for a readiness probe). False: `done` is untouched.
    bool handle(const rest_request& req, completion& done);

    // Free space below which readiness fails (the store could not commit much more).
    static constexpr unsigned long long min_free_bytes = 1024 * 1024;
    // A readiness answer is reused for this long, so probes cost at most one store write a second.
    static constexpr std::chrono::milliseconds probe_reuse{1000};

    struct probe_state;

private:
    service::hub_service& hub_;
    ops_options opts_;
    std::shared_ptr<probe_state> probe_;

    void health(bool ready, completion done);
    void metrics(const rest_request& req, completion done);
    void console(const rest_request& req, completion done) const;  // console_files.cpp
    bool console_api(const rest_request& req, completion& done);   // console_api.cpp
};

}  // namespace twinhub::http
