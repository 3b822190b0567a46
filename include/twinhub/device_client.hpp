// A device's connection to the hub: see hub_client.hpp for behaviour, errors and thread safety.
#pragma once

#include "twinhub/hub_client.hpp"

#include <string_view>

namespace twinhub {

class device_client : public hub_client {
public:
    // From "HostName=h;DeviceId=d;SharedAccessKey=k" (optionally SharedAccessKeyName=policy with a
    // policy key that has DeviceConnect, or GatewayHostName=g). Fails with invalid_argument for any
    // other kind of connection string. Does not connect.
    static result<device_client> create_from_connection_string(std::string_view connection_string,
                                                               client_options options = {});

    // Cloud-to-device messages (devices/{id}/messages/devicebound/#, QoS 1): see hub_client.hpp.
    // An empty handler unsubscribes. Fails only when connected and the hub refused the SUBSCRIBE.
    result<void> on_message(c2d_handler handler);

private:
    using hub_client::hub_client;
};

}  // namespace twinhub
