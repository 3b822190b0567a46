// twinhubd's configuration: command-line flags, each with an environment fallback
// (flag > environment > default). Start-up code only.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace twinhub::server {

struct config {
    std::filesystem::path data_dir;            // --data-dir / TWINHUB_DATA_DIR (required)
    // Where the durable state lives (--store / TWINHUB_STORE): empty for the SQLite store in the data
    // directory, or a postgresql:// URL (store/postgres_store.hpp; ?pool=N sizes the reader pool).
    // TLS material, hub.json and routing.json stay in the data directory either way.
    std::string store;
    std::vector<std::string> host_names;       // --host-name (repeatable) / TWINHUB_HOST_NAMES (comma-separated)
    std::string bind_address = "0.0.0.0";      // --bind / TWINHUB_BIND
    unsigned short https_port = 443;           // --https-port / TWINHUB_HTTPS_PORT
    unsigned short mqtt_port = 8883;           // --mqtt-port / TWINHUB_MQTT_PORT
    unsigned short amqp_port = 5671;           // --amqp-port / TWINHUB_AMQP_PORT
    unsigned threads = 0;                      // --threads / TWINHUB_THREADS; 0 = one per core
    std::string log_level = "info";            // --log-level / TWINHUB_LOG_LEVEL
    // Device-to-cloud partitions of the built-in endpoint, fixed when the hub is created
    // (--partitions / TWINHUB_PARTITIONS; 0 = 4 for a new hub, the recorded count otherwise).
    unsigned partitions = 0;
    // How long telemetry stays readable (--retention / TWINHUB_RETENTION: 1d by default, at most 7d;
    // forms 90s, 30m, 12h, 2d).
    std::chrono::seconds retention{std::chrono::hours(24)};
    // Telemetry with AzIoTHub_FaultOperationType breaks the sender's connection as Azure's e2e tests
    // ask (--fault-injection / TWINHUB_FAULT_INJECTION=1); off, so devices cannot disturb a hub.
    bool fault_injection = false;
    // Prometheus metrics: a plain-HTTP listener on --metrics-bind:--metrics-port (0 = none, the
    // default), and on the HTTPS port /metrics for "Bearer <--metrics-token>" or a service SAS token.
    unsigned short metrics_port = 0;           // --metrics-port / TWINHUB_METRICS_PORT
    std::string metrics_bind = "127.0.0.1";    // --metrics-bind / TWINHUB_METRICS_BIND
    std::string metrics_token;                 // --metrics-token / TWINHUB_METRICS_TOKEN (never logged)
    // The web console's files (--console-dir / TWINHUB_CONSOLE_DIR; default: "console" next to
    // twinhubd when it holds index.html); --no-console / TWINHUB_CONSOLE=0 turns it off.
    std::string console_dir;
    bool console = true;
    // File upload (README "File upload"): the Azure Storage account (or Azurite) devices upload to
    // (--storage-connection-string / TWINHUB_STORAGE_CONNECTION_STRING; empty: file upload off), the
    // container (--storage-container / TWINHUB_STORAGE_CONTAINER), an extra CA to trust for the storage
    // endpoint (--storage-ca-file / TWINHUB_STORAGE_CA_FILE; the system CAs and the hub's own CA are
    // trusted anyway) and how long a blob SAS lasts (--file-upload-sas-ttl / TWINHUB_FILE_UPLOAD_SAS_TTL).
    std::string storage_connection_string;
    std::string storage_container = "fileupload";
    std::string storage_ca_file;
    std::chrono::seconds file_upload_sas_ttl{3600};
};

// "90s", "30m", "12h", "2d" (a bare number is days); nullopt when malformed or not in 1s-7d.
std::optional<std::chrono::seconds> parse_retention(const std::string& text);

// Parses argv. Returns nullopt after printing help or an error (exit_code says which).
std::optional<config> parse_config(int argc, char** argv, int& exit_code);

}  // namespace twinhub::server
