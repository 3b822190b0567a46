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

private:
    using hub_client::hub_client;
};

}  // namespace twinhub
