// twinhubd's configuration: a JSON configuration file (--config / TWINHUB_CONFIG, schema in
// docs/configuration.md), environment variables and command-line flags, each setting in all three
// (flag > environment > file > default). Start-up code only; parse errors are reported on stderr.
#pragma once

#include <boost/json/value.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string_view>
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
    // A server certificate chain and its private key (PEM) to serve instead of the one issued by the
    // hub's generated CA (--tls-cert-file, --tls-key-file / TWINHUB_TLS_CERT_FILE, TWINHUB_TLS_KEY_FILE;
    // both or neither).
    std::string tls_certificate_file;
    std::string tls_key_file;
    // Consumer groups of the built-in endpoint created at start when missing (file only: never
    // deleted because they are left out; the CLI and REST manage them at run time).
    std::vector<std::string> consumer_groups;
    // Message routing (file only): an inline ARM "routing" object replaces DIR/routing.json (and is
    // not re-read); or routing_file names the routing file to read and watch instead of it.
    std::optional<boost::json::value> routing;
    std::string routing_file;
    // Where each came from, for messages: "FILE:LINE" of telemetry.routing and consumer_groups.
    std::string routing_origin, consumer_groups_origin;
    // The configuration file read (empty: none) and whether to print the configuration and exit.
    std::string config_file;
    bool print_config = false;
};

// The configuration file: applies FILE's settings (JSON text) to c. Throws config_error, whose
// what() is "config error: FILE:LINE: KEY: WHAT" (KEY dotted: "ports.https", "host_names[1]"), for
// text that is not JSON, a key the schema does not know, a value of the wrong type or out of range,
// and a key given twice.
struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};
void apply_config_file(config& c, std::string_view text, const std::string& file);

// The effective configuration in the configuration file's shape (what --print-config prints), with
// secrets redacted: the metrics token, the password of the store URL, keys and signatures in
// connection strings (the storage connection string, routing endpoints) become "<redacted>".
boost::json::object to_json(const config& c);

// "postgresql://user:secret@host/db?password=x" -> "postgresql://user:<redacted>@host/db?password=<redacted>".
std::string redact_url(std::string_view url);
// "AccountName=a;AccountKey=secret" -> "AccountName=a;AccountKey=<redacted>" (any part whose name
// holds key, password, secret, signature or token, case-insensitive).
std::string redact_connection_string(std::string_view cs);

// The environment as parse_config reads it (a function so tests need not touch the process's).
using env_lookup = const char* (*)(const char* name);

// "90s", "30m", "12h", "2d" (a bare number is days); nullopt when malformed or not in 1s-7d.
std::optional<std::chrono::seconds> parse_retention(const std::string& text);

// Parses argv, reads the configuration file it or the environment names and applies the layers
// (default < file < environment < flag). Returns nullopt after printing help or an error (exit_code
// says which: 0 for --help, 2 for a usage or configuration error). --print-config is returned as
// print_config = true; the caller prints to_json(c).
std::optional<config> parse_config(int argc, char** argv, int& exit_code, env_lookup env = nullptr);

}  // namespace twinhub::server
