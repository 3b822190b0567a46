// A module's connection to the hub (client id "{device}/{module}"): see hub_client.hpp for
// behaviour, errors and thread safety.
#pragma once

#include "twinhub/hub_client.hpp"

#include <string_view>

namespace twinhub {

class module_client : public hub_client {
public:
    // From "HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=k". Fails with invalid_argument for any
    // other kind of connection string. Does not connect.
    static result<module_client> create_from_connection_string(std::string_view connection_string,
                                                               client_options options = {});

    // Messages routed to the module's inputs (devices/{d}/modules/{m}/inputs/#, QoS 1; in twinhub
    // also the C2D messages sent to the module, on input "c2d" unless the sender set the
    // application property iothub-inputname): see hub_client.hpp. message.input_name names the
    // input. An empty handler unsubscribes.
    result<void> on_input_message(c2d_handler handler);

private:
    using hub_client::hub_client;
};

}  // namespace twinhub
