// REST error responses in the one format every service SDK parses (spec 3.11):
//   {"Message":"ErrorCode:<Name>;<text>","ExceptionMessage":"Tracking ID:<id>-G:0-TimeStamp:<MM/DD/YYYY HH:MM:SS>"}
// with the HTTP status and the `iothub-errorcode: <Name>` header taken from twinhub::to_wire.
// Thread safety: pure functions.
#pragma once

#include "common/errc.hpp"
#include "common/time.hpp"
#include "http/rest_message.hpp"

#include <string>
#include <string_view>

namespace twinhub::http {

// "Tracking ID:<tracking_id>-G:0-TimeStamp:11/27/2026 22:48:21" (UTC, as the hub writes it).
std::string format_exception_message(std::string_view tracking_id, time_point t);

// The JSON body. Node keeps only the text between the first and second ';' of Message, so ';' in
// `message` is replaced by ','.
std::string format_error_body(const error& e, std::string_view tracking_id, time_point t);

// Status, body and iothub-errorcode header for `e`, with a fresh tracking id and the current time.
rest_response error_response(const error& e);

}  // namespace twinhub::http
