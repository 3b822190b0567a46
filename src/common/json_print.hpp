// Indented JSON output for the CLI and twinhubd --print-config (Boost.JSON 1.81 has no pretty printer).
// Thread safety: pure function.
#pragma once

#include <boost/json/value.hpp>

#include <string>

namespace twinhub {

// `v` with two-space indentation, keys in document order, as az prints it.
std::string pretty_json(const boost::json::value& v);

}  // namespace twinhub
