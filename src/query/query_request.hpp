// The protocol side of POST /devices/query (spec 3.7), free of HTTP types so that the REST head only
// moves bytes and headers: the body {"query":"<sql>"}, the x-ms-max-item-count and
// x-ms-continuation request headers, and the page that becomes the response (JSON array body,
// x-ms-item-type, and x-ms-continuation only when more pages exist: Node's
// hasMoreResults = header !== undefined, so the REST head must omit it on the last page).
// Thread safety: as query_engine.
#pragma once

#include "common/errc.hpp"
#include "query/query_engine.hpp"

#include <optional>
#include <string_view>

namespace twinhub::query {

// Runs one page. Errors (all invalid_argument, for 400 ArgumentInvalid): a body that is not a JSON
// object with a string "query", an x-ms-max-item-count that is not a positive integer, a query
// error, a continuation not issued for this query. A page size above max_page_items is capped.
result<query_page> run_query_request(query_engine& engine, std::string_view body,
                                     std::optional<std::string_view> max_item_count,
                                     std::optional<std::string_view> continuation);

}  // namespace twinhub::query
