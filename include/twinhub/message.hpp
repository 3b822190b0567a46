// A device-to-cloud message (spec 5.4-5.5): the body bytes, system properties, which travel in the
// topic's property bag as $.mid, $.cid, $.ct, $.ce, $.on, and application properties.
// Thread safety: plain value.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace twinhub {

struct message {
    std::string body;              // bytes
    std::string message_id;        // $.mid
    std::string correlation_id;    // $.cid
    std::string content_type;      // $.ct, e.g. "application/json"
    std::string content_encoding;  // $.ce, e.g. "utf-8"
    std::string output_name;       // $.on: a module's output; empty for plain telemetry
    std::vector<std::pair<std::string, std::string>> properties;  // application properties, in order

    message() = default;
    explicit message(std::string b) : body(std::move(b)) {}
};

}  // namespace twinhub
