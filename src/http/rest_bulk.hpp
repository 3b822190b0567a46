// POST /devices (spec 3.9, bulk registry operations) on the REST head: the body as
// service::bulk_entry values, and the BulkRegistryOperationResult; the JSON body parser the REST
// files share.
// Thread safety: pure functions.
#pragma once

#include "common/errc.hpp"
#include "service/registry_service.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <string_view>
#include <vector>

namespace twinhub::http {

// An array of at most max_entries ExportImportDevice objects; invalid_argument / format_error naming
// the entry, device_defined_multiple_times for an id given twice.
// A request body that must be JSON; empty or malformed text is a format_error with the parser's
// reason and position.
result<boost::json::value> parse_body(std::string_view body);

result<std::vector<service::bulk_entry>> parse_bulk(std::string_view body, std::size_t max_entries);
boost::json::object bulk_json(const service::bulk_result& r);

}  // namespace twinhub::http
