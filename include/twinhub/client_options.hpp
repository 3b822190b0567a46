// Options of the device and module clients (MQTT 3.1.1 over TLS or over WebSocket, spec 5).
// Thread safety: plain value.
#pragma once

#include "twinhub/tls_options.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace twinhub {

enum class transport_kind {
    mqtt,     // MQTT over TLS, port 8883
    mqtt_ws,  // MQTT over WebSocket over TLS, port 443, path /$iothub/websocket, subprotocol "mqtt"
};

struct client_options {
    tls_options tls;
    transport_kind transport = transport_kind::mqtt;
    std::uint16_t port = 0;  // 0: 8883 (mqtt) or 443 (mqtt_ws)
    // Host to dial instead of HostName (like GatewayHostName); the certificate must name it.
    std::string gateway_host_name;

    std::chrono::seconds keep_alive{180};
    // SAS tokens live sas_token_ttl; the client reconnects with a fresh one (clean session 0, no
    // re-subscribe, as the Node SDK does) sas_renewal_margin before expiry.
    std::chrono::seconds sas_token_ttl{3600};
    std::chrono::seconds sas_renewal_margin{900};

    // After a lost connection: retry with exponential backoff between these bounds, then re-GET the
    // twin and hand the application the desired changes it missed.
    bool auto_reconnect = true;
    std::chrono::milliseconds reconnect_min_backoff{200};
    std::chrono::milliseconds reconnect_max_backoff{30'000};

    // How long connect(), get_twin(), patches and send_message() wait for the hub.
    std::chrono::milliseconds operation_timeout{30'000};

    std::string model_id;  // IoT Plug and Play model id, sent in the CONNECT username
};

}  // namespace twinhub
