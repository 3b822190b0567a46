// Parser for the IoT Hub twin query language (spec 3.7; Azure's "IoT Hub query language" page).
// Keywords and function names are case-insensitive. Untrusted text from POST /devices/query goes
// through here first, so it never throws and never recurses without bound.
// Thread safety: pure function.
#pragma once

#include "common/errc.hpp"
#include "query/query_plan.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace twinhub::query {

// Longest query accepted (Azure: "Query expressions can have a maximum length of 8192 characters").
inline constexpr std::size_t max_query_length = 8192;
// Deepest expression tree accepted (parentheses, NOT chains, operator chains such as 255 ORs).
inline constexpr std::uint32_t max_expression_depth = 256;

// On success the checked plan. On failure errc::invalid_argument with a message that names the
// position and what was expected, e.g. "Syntax error at position 9 (line 1, column 10): expected
// FROM, found 'WHER'", or a type error such as "Type error at position 31 (line 1, column 32):
// IS_DEFINED expects a property path".
result<query_plan> parse(std::string_view sql);

}  // namespace twinhub::query
