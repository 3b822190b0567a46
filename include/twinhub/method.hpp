// Direct methods (spec 3.8, 5.8): what the service sends, what the device receives and answers.
// Thread safety: plain values.
#pragma once

#include <boost/json/value.hpp>

#include <string>

namespace twinhub {

// Service side: POST /twins/{d}[/modules/{m}]/methods.
struct method_invocation {
    std::string method_name;
    boost::json::value payload;         // null when the method takes none
    int response_timeout_seconds = 30;  // 5..300
    int connect_timeout_seconds = 0;    // 0: the device must be connected now
};

// Service side: the device's answer, relayed by the hub.
struct method_result {
    int status = 0;              // the status the device chose
    boost::json::value payload;  // the device's JSON body, null when it sent none
};

// Device side: a call received on $iothub/methods/POST/{name}/?$rid=...
struct method_request {
    std::string method_name;
    boost::json::value payload;
    std::string request_id;  // $rid; the SDK echoes it
};

// Device side: what the application's handler answers.
struct method_response {
    int status = 200;
    boost::json::value payload;  // sent as JSON; null when empty
};

}  // namespace twinhub
