// Cloud-to-device messages (spec iothub-amqp 3.1, 3.2, 4.4; iothub-protocol 3.10, 5.5, 5.6):
//   * c2d_message: what the service sends (service_client::send) to a device or a module;
//   * received_c2d_message: what a device or module receives (over MQTT through
//     device_client::on_message / module_client::on_input_message, or over the device HTTPS API
//     through registry_manager::receive_c2d_message);
//   * feedback_record: one entry of a feedback batch (service_client::receive_feedback), sent by
//     the hub when a message that asked for acknowledgement (iothub-ack) was settled.
// Thread safety: plain values.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinhub {

// iothub-ack: which settlements of the message produce a feedback record.
enum class c2d_ack {
    none,      // no feedback (the default)
    positive,  // Success when the device completes it
    negative,  // Expired, DeliveryCountExceeded or Rejected
    full,      // both
};

// "none" | "positive" | "negative" | "full".
const char* to_string(c2d_ack a) noexcept;
// The inverse of to_string (case-insensitive); nullopt for anything else.
std::optional<c2d_ack> parse_c2d_ack(std::string_view s) noexcept;

struct c2d_message {
    std::string body;              // bytes (one AMQP data section)
    std::string message_id;        // AMQP message-id; needed to match feedback to the message
    std::string correlation_id;    // AMQP correlation-id
    std::string content_type;      // e.g. "application/json"
    std::string content_encoding;  // e.g. "utf-8"
    // absolute-expiry-time; the hub drops the message (Expired feedback if asked for) after it.
    // Unset: the hub's default time to live.
    std::optional<std::chrono::system_clock::time_point> expiry_time;
    c2d_ack ack = c2d_ack::none;
    std::vector<std::pair<std::string, std::string>> properties;  // application properties, in order

    c2d_message() = default;
    explicit c2d_message(std::string b) : body(std::move(b)) {}
};

struct received_c2d_message {
    std::string body;
    std::string message_id;        // $.mid / iothub-messageid
    std::string correlation_id;    // $.cid / iothub-correlationid
    std::string user_id;           // $.uid / iothub-userid
    std::string to;                // $.to / iothub-to, e.g. "/devices/d1/messages/deviceBound"
    std::string content_type;      // $.ct / Content-Type
    std::string content_encoding;  // $.ce / Content-Encoding
    std::string expiry_time_utc;   // $.exp / iothub-expiry, ISO-8601 as the hub sent it; empty when none
    std::string ack;               // iothub-ack as sent ("full", ...); empty when none was asked for
    std::string input_name;        // a module's input (the topic's inputs/{name}); empty for a device
    std::vector<std::pair<std::string, std::string>> properties;  // application properties, in order

    // Device HTTPS API only (empty / 0 over MQTT):
    std::string lock_token;         // the ETag, for complete / abandon / reject
    std::int64_t sequence_number = 0;
    std::int64_t delivery_count = 0;
    std::string enqueued_time_utc;  // iothub-enqueuedtime

    // The application property `name`, or nullptr.
    const std::string* property(std::string_view name) const;
};

struct feedback_record {
    std::string original_message_id;  // message_id of the message this record is about
    std::string status_code;          // "Success" | "Expired" | "DeliveryCountExceeded" | "Rejected" | "Purged"
    std::string description;
    std::string device_id;
    std::string module_id;             // twinhub extension: set for messages sent to a module
    std::string device_generation_id;
    std::string enqueued_time_utc;     // when the hub recorded the outcome (ISO-8601)
};

// The answer of registry_manager::purge_c2d_messages.
struct purge_result {
    std::int64_t total_messages_purged = 0;
    std::string device_id;
    std::string module_id;  // empty for a device's queue
};

}  // namespace twinhub
