// The request target of a REST call (spec 3.1): the path split on raw '/' and then percent-decoded
// segment by segment (so "dev%201%2Fx" is the one id "dev 1/x"), and the query parameters.
// A trailing '/' is ignored ("/devices/" == "/devices"); an empty segment inside the path is not.
// Thread safety: plain values and pure functions.
#pragma once

#include "common/errc.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinhub::http {

struct request_target {
    std::vector<std::string> segments;                         // decoded, without the leading ""
    std::vector<std::pair<std::string, std::string>> query;   // decoded names and values, in order

    // The value of the first query parameter named `name` (case-sensitive), if any.
    std::optional<std::string_view> query_value(std::string_view name) const;
};

// Parses an origin-form target ("/devices/d1?api-version=2021-04-12"). Fails with invalid_argument
// when the target does not start with '/', contains an empty segment ("//") or a malformed
// percent-escape.
result<request_target> parse_request_target(std::string_view target);

// The path alone, without the query: "/devices/d1?x" -> "/devices/d1".
std::string_view target_path(std::string_view target) noexcept;

}  // namespace twinhub::http
