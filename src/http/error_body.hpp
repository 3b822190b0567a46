// REST error responses (spec 3.11): the status and `iothub-errorcode: <Name>` header from
// twinhub::to_wire, the body from the hub's one error-body builder (common/error_body.hpp).
// Thread safety: pure functions (they read the clock and the CSPRNG).
#pragma once

#include "common/errc.hpp"
#include "http/rest_message.hpp"

#include <chrono>

namespace twinhub::http {

// Status, REST error body and iothub-errorcode header for `e`, with a fresh tracking id and the
// current time.
rest_response error_response(const error& e);

// The answer of the direct-method endpoint to a failed invocation: device_not_online and
// gateway_timeout in the method endpoint's body form (with `timeout`), any other error as
// error_response.
rest_response method_error_response(const error& e, std::chrono::seconds timeout);

}  // namespace twinhub::http
