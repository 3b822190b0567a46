// Walkthrough step 1 (back end): create a device identity and a module identity on it, and print
// their keys and the module's connection string.
//   create_identities [DEVICE_ID [MODULE_ID]]      (defaults: myFirstDevice myFirstModule)
// Reads the hub connection string from TWINHUB_CONNECTION_STRING (see example_env.hpp).
#include "example_env.hpp"

#include "twinhub/registry_manager.hpp"

#include <iostream>

int main(int argc, char** argv) {
    std::string device_id = argc > 1 ? argv[1] : "myFirstDevice";
    std::string module_id = argc > 2 ? argv[2] : "myFirstModule";
    auto hub = twinhub::registry_manager::from_connection_string(env_or("TWINHUB_CONNECTION_STRING"),
                                                                 service_options_from_env());
    if (!hub) {
        std::cerr << "Set TWINHUB_CONNECTION_STRING to the hub's connection string: " << hub.error().message << "\n";
        return 2;
    }

    // Like the Azure sample: create, or use the identity that already exists.
    auto device = hub->create_device(device_id);
    if (!device && device.error().code == twinhub::errc::device_already_exists) device = hub->get_device(device_id);
    if (!device) {
        std::cerr << "Cannot create device '" << device_id << "': " << device.error().message << "\n";
        return 1;
    }
    std::cout << "Device ID: " << device->device_id << "\n"
              << "Device primary key: " << device->keys.primary_key << "\n";

    auto module = hub->create_module(device_id, module_id);
    if (!module && module.error().code == twinhub::errc::module_already_exists) module = hub->get_module(device_id, module_id);
    if (!module) {
        std::cerr << "Cannot create module '" << module_id << "': " << module.error().message << "\n";
        return 1;
    }
    std::cout << "Module ID: " << module->module_id << "\n"
              << "Module primary key: " << module->keys.primary_key << "\n";

    auto cs = hub->module_connection_string(device_id, module_id);
    if (!cs) {
        std::cerr << "Cannot read the module connection string: " << cs.error().message << "\n";
        return 1;
    }
    std::cout << "Module connection string: " << *cs << std::endl;
    return 0;
}
