#include "server/config.hpp"

#include <cctype>

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
    if (const char* v = env("TWINHUB_STORE")) c.store = v;
    if (const char* v = env("TWINHUB_BIND")) c.bind_address = v;
    if (const char* v = env("TWINHUB_HTTPS_PORT")) c.https_port = static_cast<unsigned short>(std::atoi(v));
    if (const char* v = env("TWINHUB_MQTT_PORT")) c.mqtt_port = static_cast<unsigned short>(std::atoi(v));
    if (const char* v = env("TWINHUB_AMQP_PORT")) c.amqp_port = static_cast<unsigned short>(std::atoi(v));
    if (const char* v = env("TWINHUB_THREADS")) c.threads = static_cast<unsigned>(std::atoi(v));
    if (const char* v = env("TWINHUB_LOG_LEVEL")) c.log_level = v;
    if (const char* v = env("TWINHUB_PARTITIONS")) c.partitions = static_cast<unsigned>(std::atoi(v));
    std::string retention = "1d";
    if (const char* v = env("TWINHUB_FAULT_INJECTION")) c.fault_injection = std::string(v) == "1" || std::string(v) == "true";
    if (const char* v = env("TWINHUB_RETENTION")) retention = v;
    if (const char* v = env("TWINHUB_METRICS_PORT")) c.metrics_port = static_cast<unsigned short>(std::atoi(v));
    if (const char* v = env("TWINHUB_METRICS_BIND")) c.metrics_bind = v;
    if (const char* v = env("TWINHUB_METRICS_TOKEN")) c.metrics_token = v;
    if (const char* v = env("TWINHUB_CONSOLE_DIR")) c.console_dir = v;
    if (const char* v = env("TWINHUB_CONSOLE")) c.console = !(std::string(v) == "0" || std::string(v) == "false");
    bool no_console = false;
    if (const char* v = env("TWINHUB_STORAGE_CONNECTION_STRING")) c.storage_connection_string = v;
    if (const char* v = env("TWINHUB_STORAGE_CONTAINER")) c.storage_container = v;
    if (const char* v = env("TWINHUB_STORAGE_CA_FILE")) c.storage_ca_file = v;
    std::string sas_ttl = "1h";
    if (const char* v = env("TWINHUB_FILE_UPLOAD_SAS_TTL")) sas_ttl = v;

    CLI::App app{"twinhubd: a self-hosted IoT hub that speaks Azure IoT Hub's protocols"};
    std::string data_dir = c.data_dir.string();
    std::vector<std::string> names;
    app.add_option("--data-dir", data_dir, "Data directory (created on first start) [env TWINHUB_DATA_DIR]");
    app.add_option("--host-name", names,
                   "Host name clients use to reach the hub; repeatable; the first goes into connection strings "
                   "[env TWINHUB_HOST_NAMES, default: the recorded names, else localhost]");
    app.add_option("--store", c.store,
                   "Store: a postgresql://user:password@host:port/database URL (?pool=N reader connections, "
                   "default 4) [env TWINHUB_STORE, default: SQLite in the data directory]");
    app.add_option("--bind", c.bind_address, "Address to listen on [env TWINHUB_BIND]")->capture_default_str();
    app.add_option("--https-port", c.https_port, "HTTPS REST and MQTT-over-WebSocket port [env TWINHUB_HTTPS_PORT]")
        ->capture_default_str();
    app.add_option("--mqtt-port", c.mqtt_port, "MQTT over TLS port [env TWINHUB_MQTT_PORT]")->capture_default_str();
    app.add_option("--amqp-port", c.amqp_port, "AMQP 1.0 over TLS port [env TWINHUB_AMQP_PORT]")->capture_default_str();
    app.add_option("--threads", c.threads, "I/O threads, 0 = one per core [env TWINHUB_THREADS]")
        ->capture_default_str();
    app.add_option("--log-level", c.log_level, "debug, info, warn, error or off [env TWINHUB_LOG_LEVEL]")
        ->capture_default_str();
    app.add_option("--partitions", c.partitions,
                   "Device-to-cloud partitions of the built-in endpoint (2-32), fixed when the hub is created "
                   "[env TWINHUB_PARTITIONS, default 4]");
    app.add_option("--retention", retention,
                   "How long telemetry stays readable: 90s, 30m, 12h or 2d, at most 7d [env TWINHUB_RETENTION]")
        ->capture_default_str();
    app.add_flag("--fault-injection", c.fault_injection,
                 "Let telemetry carrying AzIoTHub_FaultOperationType break its sender's connection, as Azure's "
                 "end-to-end tests ask (test hubs only) [env TWINHUB_FAULT_INJECTION=1]");
    app.add_option("--metrics-port", c.metrics_port,
                   "Serve GET /metrics (Prometheus) over plain HTTP on this port, 0 = off [env TWINHUB_METRICS_PORT]")
        ->capture_default_str();
    app.add_option("--metrics-bind", c.metrics_bind, "Address of the --metrics-port listener [env TWINHUB_METRICS_BIND]")
        ->capture_default_str();
    app.add_option("--metrics-token", c.metrics_token,
                   "Also serve /metrics on the HTTPS port to 'Authorization: Bearer <token>' [env TWINHUB_METRICS_TOKEN]");
    app.add_option("--console-dir", c.console_dir,
                   "The web console's built files [env TWINHUB_CONSOLE_DIR, default: console/ next to twinhubd]");
    app.add_flag("--no-console", no_console, "Do not serve the web console at /console/ [env TWINHUB_CONSOLE=0]");
    app.add_option("--storage-connection-string", c.storage_connection_string,
                   "Azure Storage (or Azurite, https) connection string for file upload; prefer the environment, "
                   "argv is visible to other users [env TWINHUB_STORAGE_CONNECTION_STRING]");
    app.add_option("--storage-container", c.storage_container,
                   "Blob container for file upload, created if missing [env TWINHUB_STORAGE_CONTAINER]")
        ->capture_default_str();
    app.add_option("--storage-ca-file", c.storage_ca_file,
                   "Extra CA certificate (PEM) to trust for the storage endpoint [env TWINHUB_STORAGE_CA_FILE]");
    app.add_option("--file-upload-sas-ttl", sas_ttl,
                   "How long a file upload SAS URI is valid: 90s, 30m, 1h... at most 24h [env TWINHUB_FILE_UPLOAD_SAS_TTL]")
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
    if (!c.store.empty() && c.store.rfind("postgresql://", 0) != 0 && c.store.rfind("postgres://", 0) != 0) {
        std::cerr << "twinhubd: --store must be a postgresql:// URL (the default SQLite store needs no --store)\n";
        exit_code = 2;
        return std::nullopt;
    }
    if (c.partitions != 0 && (c.partitions < 2 || c.partitions > 32)) {
        std::cerr << "twinhubd: --partitions must be between 2 and 32 (got " << c.partitions << ")\n";
        exit_code = 2;
        return std::nullopt;
    }
    if (auto r = parse_retention(retention)) {
        c.retention = *r;
    } else {
        std::cerr << "twinhubd: --retention '" << retention << "' is not a period between 1s and 7d (e.g. 90s, 12h, 1d)\n";
        exit_code = 2;
        return std::nullopt;
    }
    if (auto r = parse_retention(sas_ttl); r && *r <= std::chrono::hours(24)) {
        c.file_upload_sas_ttl = *r;
    } else {
        std::cerr << "twinhubd: --file-upload-sas-ttl '" << sas_ttl << "' is not a period between 1s and 24h\n";
        exit_code = 2;
        return std::nullopt;
    }
    c.data_dir = data_dir;
    if (no_console) c.console = false;
    if (!names.empty()) c.host_names = names;
    if (c.threads == 0) c.threads = std::max(1u, std::thread::hardware_concurrency());
    exit_code = 0;
    return c;
}

std::optional<std::chrono::seconds> parse_retention(const std::string& text) {
    if (text.empty() || text.size() > 12) return std::nullopt;
    std::size_t i = 0;
    std::int64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) n = n * 10 + (text[i++] - '0');
    if (i == 0) return std::nullopt;
    const std::string unit = text.substr(i);
    std::int64_t mul = 0;
    if (unit == "s") mul = 1;
    else if (unit == "m") mul = 60;
    else if (unit == "h") mul = 3600;
    else if (unit == "d" || unit.empty()) mul = 86400;
    else return std::nullopt;
    const std::int64_t secs = n * mul;
    if (secs < 1 || secs > 7 * 86400) return std::nullopt;
    return std::chrono::seconds(secs);
}

}  // namespace twinhub::server
