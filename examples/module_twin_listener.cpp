// Walkthrough step 2 (module app): connect with the module's connection string, report a property,
// then print every desired-property patch the back end makes.
//   module_twin_listener "<module connection string>" [MAX_PATCHES]
// MAX_PATCHES (default: run until interrupted) makes it exit after that many patches.
// Optional: TWINHUB_CA_FILE, TWINHUB_MQTT_PORT (see example_env.hpp).
#include "example_env.hpp"

#include "twinhub/module_client.hpp"

#include <boost/json/serialize.hpp>

#include <chrono>
#include <ctime>
#include <iostream>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: module_twin_listener \"<module connection string>\" [MAX_PATCHES]\n";
        return 2;
    }
    long max_patches = argc > 2 ? std::stol(argv[2]) : -1;
    auto client = twinhub::module_client::create_from_connection_string(argv[1], client_options_from_env());
    if (!client) {
        std::cerr << "Bad module connection string: " << client.error().message << "\n";
        return 2;
    }
    if (auto r = client->connect(); !r) {
        std::cerr << "Cannot connect: " << r.error().message << "\n";
        return 3;
    }
    std::cout << "Connected as " << client->device_id() << "/" << client->module_id() << std::endl;

    // Report when the app started, like the Azure walkthrough's DateTimeLastAppLaunch.
    std::time_t t = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    auto version = client->patch_twin_reported_properties({{"DateTimeLastAppLaunch", stamp}});
    if (!version) {
        std::cerr << "Cannot update reported properties: " << version.error().message << "\n";
        return 1;
    }
    std::cout << "Reported properties updated (reported $version " << *version << ")" << std::endl;

    auto twin = client->get_twin();
    if (twin) std::cout << "Desired properties now: " << boost::json::serialize(twin->at("desired")) << std::endl;
    std::cout << "Waiting for desired property patches..." << std::endl;

    for (long seen = 0; max_patches < 0 || seen < max_patches;) {
        auto patch = client->receive_twin_desired_properties_patch(std::chrono::seconds(1));
        if (!patch) {
            std::cerr << "Error: " << patch.error().message << "\n";
            return 1;
        }
        if (!*patch) continue;
        ++seen;
        std::cout << "Desired property patch: " << boost::json::serialize(**patch) << std::endl;
    }
    client->disconnect();
    return 0;
}
