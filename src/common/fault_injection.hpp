// Fault injection as Azure IoT Hub's own end-to-end tests drive it (issue 16 item 3): a telemetry
// message whose application properties carry AzIoTHub_FaultOperationType (and
// AzIoTHub_FaultOperationCloseReason, AzIoTHub_FaultOperationDelayInSecs,
// AzIoTHub_FaultOperationDurationInSecs) asks the hub to break the sender's connection in a given
// way after a delay, so the SDKs' reconnect tests (twin_, method_, c2d_, d2c_disconnect.js) run
// offline. Off unless twinhubd runs with --fault-injection; the heads apply what this parses.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twinhub::fault {

enum class kind {
    kill_tcp,                // drop the TCP connection (MQTT, AMQP)
    shutdown_mqtt,           // close the MQTT connection
    shutdown_amqp,           // AMQP close without an error
    kill_amqp_connection,    // AMQP close with an error
    kill_amqp_session,       // end the session the message came on
    kill_amqp_cbs_req,       // detach the $cbs link the device sends put-token on
    kill_amqp_cbs_resp,      // detach the $cbs link the hub answers on
    kill_amqp_d2c,           // detach the telemetry link the message came on
    kill_amqp_c2d,           // detach the device's cloud-to-device link
    kill_amqp_twin_req,      // detach the twin link the device sends requests on
    kill_amqp_twin_resp,     // detach the twin link the hub answers on
    kill_amqp_method_req,    // detach the link the hub sends method requests on
    kill_amqp_method_resp,   // detach the link the device answers methods on
    throttling,              // refuse telemetry as throttled for the duration
    max_message_quota,       // refuse telemetry as over the daily quota for the duration
    auth_error,              // refuse telemetry as unauthorized for the duration
};

struct request {
    kind what;
    std::string type;    // the AzIoTHub_FaultOperationType value, as sent
    std::string reason;  // AzIoTHub_FaultOperationCloseReason (may be empty)
    std::chrono::seconds delay{0};
    std::chrono::seconds duration{0};
};

using properties = std::vector<std::pair<std::string, std::string>>;

// nullopt when the message carries no AzIoTHub_FaultOperationType. An unknown type, or a delay or
// duration that is not a whole number of seconds in 0-3600, sets `error` and returns nullopt; an
// empty, "null" or "undefined" delay or duration counts as absent (0).
std::optional<request> parse(const properties& app, std::string* error = nullptr);

// True for the kinds that act on MQTT connections.
bool applies_to_mqtt(kind k) noexcept;

}  // namespace twinhub::fault
