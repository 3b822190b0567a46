// Walkthrough step 3 (back end): set the desired property telemetryInterval on a module twin.
//   update_module_twin [DEVICE_ID [MODULE_ID [INTERVAL]]]   (defaults: myFirstDevice myFirstModule 10)
// Reads the hub connection string from TWINHUB_CONNECTION_STRING (see example_env.hpp).
#include "example_env.hpp"

#include "twinhub/registry_manager.hpp"

#include <boost/json/serialize.hpp>

#include <iostream>

int main(int argc, char** argv) {
    std::string device_id = argc > 1 ? argv[1] : "myFirstDevice";
    std::string module_id = argc > 2 ? argv[2] : "myFirstModule";
    int interval = argc > 3 ? std::stoi(argv[3]) : 10;
    auto hub = twinhub::registry_manager::from_connection_string(env_or("TWINHUB_CONNECTION_STRING"),
                                                                 service_options_from_env());
    if (!hub) {
        std::cerr << "Set TWINHUB_CONNECTION_STRING to the hub's connection string: " << hub.error().message << "\n";
        return 2;
    }
    boost::json::object patch{{"properties", {{"desired", {{"telemetryInterval", interval}}}}}};
    auto twin = hub->update_module_twin(device_id, module_id, patch);
    if (!twin) {
        std::cerr << "Cannot update the module twin: " << twin.error().message << "\n";
        return 1;
    }
    std::cout << "Desired telemetryInterval set to " << twin->desired.at("telemetryInterval").as_int64()
              << " (desired $version " << twin->desired_version() << ")" << std::endl;
    return 0;
}
