// The one builder of the error bodies the hub sends, for every head; codes come from to_wire
// (common/error_mapping.hpp), messages are made well-formed UTF-8 (they quote request bytes).
//   REST (spec 3.11), the form every service SDK parses:
//     {"Message":"ErrorCode:<Name>;<text>","ExceptionMessage":"Tracking ID:<id>-G:0-TimeStamp:<MM/DD/YYYY HH:MM:SS>"}
//   Device-facing (MQTT twin responses, spec 5.7):
//     {"errorCode":404001,"trackingId":"<id>","message":"<text>","timestampUtc":"<ISO-8601>"}
//   The method endpoint's 404103/504101 (spec 3.11): the device-facing object plus
//     "info":{"timeout":"hh:mm:ss"}, serialised into the REST form's Message, ExceptionMessage "".
//   AMQP twin responses: {"errorCode":404001,"message":"<text>"}.
// Thread safety: pure functions (the *_now forms read the clock and the CSPRNG).
#pragma once

#include "common/errc.hpp"
#include "common/time.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace twinhub {

// `in` with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD.
std::string well_formed_utf8(std::string_view in);

// "Tracking ID:<tracking_id>-G:0-TimeStamp:11/27/2026 22:48:21" (UTC, as the hub writes it).
std::string format_exception_message(std::string_view tracking_id, time_point t);

// The REST body. Node keeps only the text between the first and second ';' of Message, so ';' in
// the message is replaced by ','. An empty message is replaced by the code's name.
std::string rest_error_body(const error& e, std::string_view tracking_id, time_point t);

// The MQTT twin response body, with a fresh tracking id and the current time.
std::string twin_error_body(const error& e);

// True for the errors the method endpoint reports in its own form (device_not_online,
// gateway_timeout); every other error uses the REST form.
bool uses_method_error_body(errc code) noexcept;
// The method endpoint's body; `timeout` is the connect timeout for 404103 and the response timeout
// for 504101.
std::string method_error_body(const error& e, std::chrono::seconds timeout);

// The AMQP twin response body.
std::string amqp_twin_error_body(const error& e);

}  // namespace twinhub
