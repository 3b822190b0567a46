// The pure parts of scheduled jobs (job_service.hpp): the JobRequest body as IoT Hub accepts it,
// the job and per-device state machines, statistics, and the JSON forms (JobResponse, the
// devices.jobs rows, the stored documents). Thread safety: plain values and pure functions.
#pragma once

#include "common/errc.hpp"
#include "common/time.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::jobs {

enum class job_status : std::uint8_t { queued, scheduled, running, completed, failed, cancelled };
enum class job_type : std::uint8_t { update_twin, device_method };
enum class device_status : std::uint8_t { pending, running, completed, failed, cancelled };

std::string_view to_string(job_status s) noexcept;
std::string_view to_string(job_type t) noexcept;
std::string_view to_string(device_status s) noexcept;
std::optional<job_status> parse_job_status(std::string_view s) noexcept;

bool is_terminal(job_status s) noexcept;
// The status a new or reloaded not-yet-started job has at `now`.
job_status waiting_status(time_point start, time_point now) noexcept;

struct job_request {
    std::string job_id;
    job_type type = job_type::update_twin;
    std::string query_condition;
    boost::json::object update_twin;   // the twin patch as given (echoed in JobResponse)
    boost::json::object twin_patch;    // what is written: {tags?, properties:{desired?}}
    boost::json::object cloud_to_device_method;  // as given (echoed)
    std::string method_name;
    std::string payload = "null";      // JSON text
    std::int64_t response_timeout_s = 30;
    std::int64_t connect_timeout_s = 0;
    time_point start_time;
    std::int64_t max_execution_s = 3600;
};

// Validates a PUT /jobs/v2/{id} body (invalid_argument naming the field). An absent or null
// startTime is `now`. The query condition is checked by the caller (it needs the query parser).
result<job_request> parse_job_request(std::string_view path_id, const boost::json::value& body, time_point now);

struct device_outcome {
    std::string device_id;
    device_status status = device_status::pending;
    std::int64_t start_ns = 0;
    std::int64_t end_ns = 0;
    int method_status = 0;   // scheduleDeviceMethod, completed
    std::string payload;     // the device's answer (JSON text), when it answered
    std::string error_code;  // failed: an IoT Hub error code name
    std::string error_description;
};

struct job_stats {
    std::int64_t device_count = 0, failed = 0, succeeded = 0, running = 0, pending = 0;
};
job_stats count(const std::vector<device_outcome>& devices) noexcept;

struct job_record {
    job_request req;
    job_status status = job_status::queued;
    time_point created_time;
    std::optional<time_point> run_time;  // when it started running
    std::optional<time_point> end_time;
    std::string failure_reason;
    std::string status_message;
    bool resolved = false;  // devices resolved (and persisted)
    std::vector<device_outcome> devices;
};

// JobResponse (the service's wire form).
boost::json::object to_json(const job_record& j);
// One devices.jobs row.
boost::json::object device_row(const job_record& j, const device_outcome& d);

// The stored documents: the job (without devices) and a chunk of device outcomes.
boost::json::object to_storage(const job_record& j, std::size_t chunks);
result<job_record> from_storage(const boost::json::value& v, std::size_t& chunks);
boost::json::array chunk_to_storage(const std::vector<device_outcome>& d, std::size_t from, std::size_t to);
result<void> chunk_from_storage(const boost::json::value& v, std::vector<device_outcome>& out);

}  // namespace twinhub::jobs
