// The engine behind hub_client (see include/twinhub/hub_client.hpp): one I/O thread running an
// io_context with all connection state, coroutines for connect, read, keep-alive, SAS renewal and
// reconnect, and a second thread that runs application handlers.
// Thread safety: public entry points post to the I/O thread; only it touches connection state.
// Handler slots and the patch queue are guarded by mutex_.
#pragma once

#include "twinhub/hub_client.hpp"

#include <memory>
#include <string>

namespace twinhub::client {

struct identity_settings {
    std::string host_name;     // HostName: MQTT username and SAS resource
    std::string dial_host;     // host the socket connects to (GatewayHostName or HostName)
    std::string device_id;
    std::string module_id;     // empty for a device
    std::string key;           // identity or policy key (base64); empty when sas_token is given
    std::string key_name;      // skn for a policy key
    std::string sas_token;     // a fixed token (no renewal possible)
};

// Fails with invalid_argument when the TLS options are unusable (unreadable CA file, bad PEM).
result<std::unique_ptr<hub_client::impl>> make_hub_client_impl(identity_settings id, client_options options);

}  // namespace twinhub::client
