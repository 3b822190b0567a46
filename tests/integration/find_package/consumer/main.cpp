// Uses the installed SDK headers and library; prints the error for a connection string that is not
// a module's, which needs no hub.
#include <twinhub/twinhub.hpp>

#include <iostream>

int main() {
    auto c = twinhub::module_client::create_from_connection_string("HostName=h;SharedAccessKeyName=n;SharedAccessKey=AAAA");
    if (c || c.error().code != twinhub::errc::invalid_argument) return 1;
    auto rm = twinhub::registry_manager::from_connection_string("HostName=h;SharedAccessKeyName=n;SharedAccessKey=AAAA");
    if (!rm) return 1;
    auto sc = twinhub::service_client::from_connection_string("HostName=h;DeviceId=d;SharedAccessKey=AAAA");
    if (sc || sc.error().code != twinhub::errc::invalid_argument) return 1;
    std::cout << "ok " << rm->host_name() << "\n";
    return 0;
}
