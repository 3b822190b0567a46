// Settings shared by the examples, from the environment (the same variables as the twinhub CLI):
//   TWINHUB_CONNECTION_STRING  the hub's service connection string (service-side examples)
//   TWINHUB_CA_FILE            PEM file of the hub's CA (DATA_DIR/tls/ca.pem)
//   TWINHUB_PORT               REST port when not 443;  TWINHUB_MQTT_PORT  MQTT port when not 8883
#pragma once

#include "twinhub/client_options.hpp"
#include "twinhub/registry_manager.hpp"

#include <cstdlib>
#include <string>

inline std::string env_or(const char* name, std::string fallback = {}) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : fallback;
}

inline twinhub::service_options service_options_from_env() {
    twinhub::service_options o;
    o.tls.ca_file = env_or("TWINHUB_CA_FILE");
    o.port = static_cast<std::uint16_t>(std::stoi(env_or("TWINHUB_PORT", "0")));
    return o;
}

inline twinhub::client_options client_options_from_env() {
    twinhub::client_options o;
    o.tls.ca_file = env_or("TWINHUB_CA_FILE");
    o.port = static_cast<std::uint16_t>(std::stoi(env_or("TWINHUB_MQTT_PORT", "0")));
    return o;
}
