#include "server/config.hpp"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <sstream>
#include <thread>

namespace twinhub::server {
namespace {
const char* env(const char* name) {
    const char* v = std::getenv(name);
    return v && *v ? v : nullptr;
}
}  // namespace

std::optional<config> parse_config(int argc, char** argv, int& exit_code) {
    config c;
    if (const char* v = env("TWINHUB_DATA_DIR")) c.data_dir = v;
    if (const char* v = env("TWINHUB_HOST_NAMES")) {
        std::stringstream ss(v);
        for (std::string n; std::getline(ss, n, ',');)
            if (!n.empty()) c.host_names.push_back(n);
    }
    if (const char* v = env("TWINHUB_BIND")) c.bind_address = v;
    if (const char* v = env("TWINHUB_HTTPS_PORT")) c.https_port = static_cast<unsigned short>(std::atoi(v));
    if (const char* v = env("TWINHUB_MQTT_PORT")) c.mqtt_port = static_cast<unsigned short>(std::atoi(v));
    if (const char* v = env("TWINHUB_AMQP_PORT")) c.amqp_port = static_cast<unsigned short>(std::atoi(v));
    if (const char* v = env("TWINHUB_THREADS")) c.threads = static_cast<unsigned>(std::atoi(v));
    if (const char* v = env("TWINHUB_LOG_LEVEL")) c.log_level = v;

    CLI::App app{"twinhubd: a self-hosted IoT hub that speaks Azure IoT Hub's protocols"};
    std::string data_dir = c.data_dir.string();
    std::vector<std::string> names;
    app.add_option("--data-dir", data_dir, "Data directory (created on first start) [env TWINHUB_DATA_DIR]");
    app.add_option("--host-name", names,
                   "Host name clients use to reach the hub; repeatable; the first goes into connection strings "
                   "[env TWINHUB_HOST_NAMES, default: the recorded names, else localhost]");
    app.add_option("--bind", c.bind_address, "Address to listen on [env TWINHUB_BIND]")->capture_default_str();
    app.add_option("--https-port", c.https_port, "HTTPS REST and MQTT-over-WebSocket port [env TWINHUB_HTTPS_PORT]")
        ->capture_default_str();
    app.add_option("--mqtt-port", c.mqtt_port, "MQTT over TLS port [env TWINHUB_MQTT_PORT]")->capture_default_str();
    app.add_option("--amqp-port", c.amqp_port, "AMQP 1.0 over TLS port [env TWINHUB_AMQP_PORT]")->capture_default_str();
    app.add_option("--threads", c.threads, "I/O threads, 0 = one per core [env TWINHUB_THREADS]")
        ->capture_default_str();
    app.add_option("--log-level", c.log_level, "debug, info, warn, error or off [env TWINHUB_LOG_LEVEL]")
        ->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        exit_code = app.exit(e);
        return std::nullopt;
    }
    if (data_dir.empty()) {
        std::cerr << "twinhubd: --data-dir is required (or set TWINHUB_DATA_DIR)\n" << app.help();
        exit_code = 2;
        return std::nullopt;
    }
    c.data_dir = data_dir;
    if (!names.empty()) c.host_names = names;
    if (c.threads == 0) c.threads = std::max(1u, std::thread::hardware_concurrency());
    exit_code = 0;
    return c;
}

}  // namespace twinhub::server
