// Import/export jobs (POST /jobs/create, GET /jobs[/{id}], DELETE /jobs/{id}; the pure parts are
// in import_export.hpp): an export writes every device identity and its twin to
// {outputBlobContainerUri}/{outputBlobName} (devices.txt); an import reads
// {inputBlobContainerUri}/{inputBlobName}, applies each line's importMode through the registry and
// twin services, and writes importErrors.log (one line per device that failed) to the output
// container. The user's containers are reached through the SAS URIs they give, over the hub's
// storage client; the hub's own storage account (file upload) is not needed.
//
// One job is active at a time (IoT Hub allows one active import/export job per hub; another
// create is refused until it finishes): enqueued -> running -> completed, failed (failureReason: storage refused or could not be
// reached, the blob is missing, a line of devices.txt is malformed) or cancelled (DELETE).
// An import is checked whole before anything is applied: one malformed line fails the job with
// that line in failureReason and importErrors.log, and the registry is untouched. Per-device
// failures (the device exists for create, is missing for update, an eTag does not match) do not
// fail the job: they go to importErrors.log and the job completes. An export is one Put Blob:
// devices.txt appears whole or not at all.
//
// Durability: each job is the hub setting "iejob/<jobId>" (JobProperties), written when it is
// created (before the create is answered) and at every status change. After a restart an
// enqueued job runs; an export that was running runs again; an import that was running is failed
// (its lines may have been partly applied, and rerunning create lines would fail them), with a
// failureReason saying so. The newest max_jobs jobs are kept.
//
// Thread safety: every member may be called from any thread. The hub and the storage client must
// outlive the service; stop() (or the destructor) joins the worker.
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
class storage_client;
}  // namespace twinhub::service

namespace twinhub::jobs {

struct import_export_options {
    std::size_t window = 256;     // registry writes in flight during an import
    std::size_t max_jobs = 100;   // jobs kept (terminal ones beyond it are forgotten, oldest first)
};

class import_export_service {
public:
    import_export_service(service::hub_service& hub, service::storage_client& storage, import_export_options opts = {});
    ~import_export_service();
    import_export_service(const import_export_service&) = delete;
    import_export_service& operator=(const import_export_service&) = delete;

    // Loads the persisted jobs and starts the worker. Call once, before serving.
    void start();
    void stop();

    using completion = std::function<void(result<boost::json::object>)>;
    // Validates (invalid_argument, format_error), checks the containers' SAS URIs with storage
    // (connection_failed: IoT Hub's BlobContainerValidationError, with the reason), refuses a second
    // active job (throttled: IoT Hub's JobQuotaExceeded), persists the job as enqueued and completes
    // with its JobProperties.
    void create(const boost::json::value& body, completion done);
    // not_found when there is no such job.
    result<boost::json::object> get(std::string_view job_id) const;
    // JobProperties, newest first.
    std::vector<boost::json::object> list() const;
    // Cancels an enqueued or running job (a finished one stays as it is); not_found when unknown.
    void cancel(std::string job_id, completion done);

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace twinhub::jobs
