// The pure parts of import/export jobs (POST /jobs/create, GET /jobs[/{id}], DELETE /jobs/{id};
// import_export_service.hpp runs them): the JobProperties request and response, the blob
// container SAS URLs, and the blob formats: devices.txt (one ExportImportDevice JSON object per
// line, "\r\n" between lines, as IoT Hub writes it and Microsoft's e2e test splits it) and
// importErrors.log (one DeviceRegistryOperationError per line).
// Thread safety: plain values and pure functions.
#pragma once

#include "common/errc.hpp"
#include "common/time.hpp"
#include "registry/identity.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::jobs {

enum class ie_type : std::uint8_t { import_devices, export_devices };
enum class ie_status : std::uint8_t { enqueued, running, completed, failed, cancelled };

std::string_view to_string(ie_type t) noexcept;     // "import", "export"
std::string_view to_string(ie_status s) noexcept;   // "enqueued", "running", ...
bool is_terminal(ie_status s) noexcept;

// A blob container named by a SAS URL: "https://host[:port]/[account/]container?sv=...&sig=...".
struct container_url {
    std::string base;  // up to the container, no trailing '/'
    std::string sas;   // the query without '?' (may be empty)
};

// invalid_argument (naming `field`) unless `uri` is an https URL with a container path.
result<container_url> parse_container_url(std::string_view uri, std::string_view field);
// The URL of `blob` (percent-encoded, '/' kept) in the container, with the container's SAS.
std::string blob_url(const container_url& c, std::string_view blob);

struct ie_job {
    std::string job_id;
    ie_type type = ie_type::export_devices;
    ie_status status = ie_status::enqueued;
    std::string input_uri;   // import only
    std::string output_uri;
    std::string input_blob = "devices.txt";
    std::string output_blob = "devices.txt";
    bool exclude_keys = false;
    int progress = 0;
    std::optional<time_point> start_time;
    std::optional<time_point> end_time;
    std::string failure_reason;
    std::uint64_t seq = 0;  // creation order
};

// Validates a POST /jobs/create body: type import (inputBlobContainerUri and
// outputBlobContainerUri) or export (outputBlobContainerUri, excludeKeysInExport); optional
// inputBlobName/outputBlobName. invalid_argument naming the field; identity-based storage
// authentication is refused (this hub has no managed identity).
result<ie_job> parse_ie_request(const boost::json::value& body);

// The JobProperties IoT Hub answers (and this hub stores, with "seq").
boost::json::object to_json(const ie_job& j);
boost::json::object to_stored_json(const ie_job& j);
result<ie_job> ie_job_from_json(const boost::json::value& v);

// One devices.txt line for an export: id, eTag, status, statusReason, authentication (keys null
// when exclude_keys), twinETag, tags, properties (desired and reported with $metadata and
// $version), capabilities, deviceScope, parentScopes. `twin` is the service twin JSON.
boost::json::object export_device(const registry::device_identity& d, const boost::json::object& twin,
                                  bool exclude_keys);

// One devices.txt line of an import, checked.
struct import_entry {
    std::string mode;       // lower case: create, createorupdate, createorupdateifmatchetag, update,
                            // updateifmatchetag, updatetwin, updatetwinifmatchetag, delete, deleteifmatchetag
    std::string mode_as_sent;
    std::string etag;       // eTag, for the *IfMatchETag device modes
    std::string twin_etag;  // twinETag
    registry::device_identity device;  // id always; the rest parsed for the modes that write it
    std::optional<boost::json::object> twin;  // {"tags"?, "properties":{"desired"}} when the line has twin data
};

// invalid_argument / format_error with a message naming the line (1-based) and what is wrong. An
// absent importMode is createOrUpdate (IoT Hub's default).
result<import_entry> parse_import_line(std::string_view line, std::size_t line_number);

// Splits a blob into its non-blank lines ("\n" or "\r\n"), with their 1-based numbers.
std::vector<std::pair<std::size_t, std::string_view>> blob_lines(std::string_view text);

// One importErrors.log line: {"deviceId","errorCode","errorStatus","moduleId":null,"operation"}.
std::string import_error_line(std::string_view device_id, std::string_view error_code, std::string_view message,
                              std::string_view operation);

}  // namespace twinhub::jobs
