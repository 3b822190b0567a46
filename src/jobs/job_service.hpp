// Scheduled jobs (PUT/GET /jobs/v2/{id}, POST /jobs/v2/{id}/cancel, GET /jobs/v2/query): a twin
// update (scheduleUpdateTwin) or a direct method (scheduleDeviceMethod) run on every device twin
// that matches a query condition, at a start time, within maxExecutionTimeInSeconds.
//
// State machine (job_state.hpp has the pure parts):
//   PUT -> queued (start time reached) or scheduled (start time ahead); the PUT answers "queued"
//   like IoT Hub. The worker takes due jobs in creation order: running -> completed (every device
//   processed; devices that failed count in failedCount, the job still completes), cancelled
//   (POST cancel: before start, or while running: devices not yet started stay cancelled) or
//   failed (maxExecutionTimeInSeconds elapsed: the devices not yet processed are failed with
//   JobExecutionTimedOut).
// Devices are resolved once, when the job starts, through the query engine
// (SELECT deviceId FROM devices WHERE <queryCondition>); twin updates go through the twin
// service (versions, desired notifications), methods through the method router (an offline
// device fails with DeviceNotOnline).
//
// Durability: the job document is a hub setting "job/<id>", its device list and outcomes the
// settings "jobdev/<id>/<chunk>" (chunks of 1000 devices), written when the job starts and as each
// chunk finishes. After a restart scheduled and queued jobs run at their time; a job that was
// running resumes with the devices whose outcome was not yet recorded.
//
// Thread safety: every member may be called from any thread. The hub, the query engine and the
// method router must outlive the job_service; stop() (or the destructor) before they go.
#pragma once

#include "common/errc.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::service {
class hub_service;
}
namespace twinhub::query {
class query_engine;
}
namespace twinhub::methods {
class method_router;
}

namespace twinhub::jobs {

struct job_options {
    std::size_t twin_window = 512;    // twin writes in flight per job
    std::size_t method_window = 128;  // method invocations in flight per job
    std::size_t chunk_size = 1000;    // devices per persisted chunk
};

class job_service {
public:
    job_service(service::hub_service& hub, query::query_engine& queries, methods::method_router* methods,
                job_options opts = {});
    ~job_service();
    job_service(const job_service&) = delete;
    job_service& operator=(const job_service&) = delete;

    // Loads the persisted jobs and starts the worker. Call once, before serving.
    void start();
    // Stops the worker: devices in flight finish, the rest stay pending for the next start.
    void stop();

    using completion = std::function<void(result<boost::json::object>)>;
    // Validates and persists a new job; completes with its JobResponse (status "queued").
    // invalid_argument for a bad body; already_exists -> the caller answers 409.
    void create(std::string job_id, const boost::json::value& body, completion done);
    // not_found when there is no such job.
    result<boost::json::object> get(std::string_view job_id) const;
    void cancel(std::string job_id, completion done);
    // JobResponses, newest first; empty filters match all.
    std::vector<boost::json::object> list(std::string_view type, std::string_view status) const;
    // The rows of `SELECT * FROM devices.jobs`: one per (job, device).
    std::vector<boost::json::object> device_job_rows() const;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace twinhub::jobs
