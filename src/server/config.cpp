#include "server/config.hpp"

#include "common/log.hpp"

#include <cctype>

#include <CLI/CLI.hpp>

#include <boost/json/serialize.hpp>

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

namespace twinhub::server {
namespace {

std::nullopt_t usage(int& exit_code, const std::string& message) {
    std::cerr << "twinhubd: " << message << "\n";
    exit_code = 2;
    return std::nullopt;
}

// A port from the environment: the whole value a number in [lo, 65535].
bool env_port(const char* name, const char* v, unsigned short& out, int& exit_code, long lo = 1) {
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (*end || n < lo || n > 65535) {
        usage(exit_code, std::string(name) + " '" + v + "' is not a port (" + std::to_string(lo) + "-65535)");
        return false;
    }
    out = static_cast<unsigned short>(n);
    return true;
}

bool env_unsigned(const char* name, const char* v, unsigned& out, int& exit_code) {
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (*end || n < 0 || n > 1024) {
        usage(exit_code, std::string(name) + " '" + v + "' is not a number (0-1024)");
        return false;
    }
    out = static_cast<unsigned>(n);
    return true;
}

std::vector<std::string> split_names(const char* v) {
    std::vector<std::string> out;
    std::stringstream ss(v);
    for (std::string n; std::getline(ss, n, ',');)
        if (!n.empty()) out.push_back(n);
    return out;
}

}  // namespace

std::optional<config> parse_config(int argc, char** argv, int& exit_code, env_lookup env_fn) {
    auto env = [env_fn](const char* name) -> const char* {
        const char* v = env_fn ? env_fn(name) : std::getenv(name);
        return v && *v ? v : nullptr;
    };
    const config defaults;

    // 1. The flags, kept apart: they are applied last, and only those given.
    CLI::App app{"twinhubd: a self-hosted IoT hub that speaks Azure IoT Hub's protocols.\n"
                 "Each setting comes from its flag, else its environment variable, else the configuration file "
                 "(--config), else its default (docs/configuration.md)."};
    config f = defaults;  // flag values
    std::string data_dir, config_file, retention = "1d", sas_ttl = "1h";
    std::vector<std::string> names;
    bool no_console = false;
    auto* o_config = app.add_option("--config", config_file,
                                    "JSON configuration file (schema: docs/configuration.md) [env TWINHUB_CONFIG]");
    app.add_flag("--print-config", f.print_config,
                 "Print the effective configuration as JSON (secrets redacted) and exit");
    auto* o_data_dir = app.add_option("--data-dir", data_dir, "Data directory (created on first start) [env TWINHUB_DATA_DIR]");
    auto* o_names = app.add_option("--host-name", names,
                   "Host name clients use to reach the hub; repeatable; the first goes into connection strings "
                   "[env TWINHUB_HOST_NAMES, default: the recorded names, else localhost]");
    auto* o_store = app.add_option("--store", f.store,
                   "Store: a postgresql://user:password@host:port/database URL (?pool=N reader connections, "
                   "default 4) [env TWINHUB_STORE, default: SQLite in the data directory]");
    auto* o_bind = app.add_option("--bind", f.bind_address, "Address to listen on [env TWINHUB_BIND]")->capture_default_str();
    auto* o_https = app.add_option("--https-port", f.https_port, "HTTPS REST and MQTT-over-WebSocket port [env TWINHUB_HTTPS_PORT]")
        ->capture_default_str();
    auto* o_mqtt = app.add_option("--mqtt-port", f.mqtt_port, "MQTT over TLS port [env TWINHUB_MQTT_PORT]")->capture_default_str();
    auto* o_amqp = app.add_option("--amqp-port", f.amqp_port, "AMQP 1.0 over TLS port [env TWINHUB_AMQP_PORT]")->capture_default_str();
    auto* o_threads = app.add_option("--threads", f.threads, "I/O threads, 0 = one per core [env TWINHUB_THREADS]")
        ->capture_default_str();
    auto* o_log = app.add_option("--log-level", f.log_level, "debug, info, warn, error or off [env TWINHUB_LOG_LEVEL]")
        ->capture_default_str();
    auto* o_partitions = app.add_option("--partitions", f.partitions,
                   "Device-to-cloud partitions of the built-in endpoint (2-32), fixed when the hub is created "
                   "[env TWINHUB_PARTITIONS, default 4]");
    auto* o_retention = app.add_option("--retention", retention,
                   "How long telemetry stays readable: 90s, 30m, 12h or 2d, at most 7d [env TWINHUB_RETENTION]")
        ->capture_default_str();
    auto* o_fault = app.add_flag("--fault-injection", f.fault_injection,
                 "Let telemetry carrying AzIoTHub_FaultOperationType break its sender's connection, as Azure's "
                 "end-to-end tests ask (test hubs only) [env TWINHUB_FAULT_INJECTION=1]");
    auto* o_metrics_port = app.add_option("--metrics-port", f.metrics_port,
                   "Serve GET /metrics (Prometheus) over plain HTTP on this port, 0 = off [env TWINHUB_METRICS_PORT]")
        ->capture_default_str();
    auto* o_metrics_bind = app.add_option("--metrics-bind", f.metrics_bind, "Address of the --metrics-port listener [env TWINHUB_METRICS_BIND]")
        ->capture_default_str();
    auto* o_metrics_token = app.add_option("--metrics-token", f.metrics_token,
                   "Also serve /metrics on the HTTPS port to 'Authorization: Bearer <token>' [env TWINHUB_METRICS_TOKEN]");
    auto* o_console_dir = app.add_option("--console-dir", f.console_dir,
                   "The web console's built files [env TWINHUB_CONSOLE_DIR, default: console/ next to twinhubd]");
    app.add_flag("--no-console", no_console, "Do not serve the web console at /console/ [env TWINHUB_CONSOLE=0]");
    auto* o_scs = app.add_option("--storage-connection-string", f.storage_connection_string,
                   "Azure Storage (or Azurite, https) connection string for file upload; prefer the environment, "
                   "argv is visible to other users [env TWINHUB_STORAGE_CONNECTION_STRING]");
    auto* o_container = app.add_option("--storage-container", f.storage_container,
                   "Blob container for file upload, created if missing [env TWINHUB_STORAGE_CONTAINER]")
        ->capture_default_str();
    auto* o_storage_ca = app.add_option("--storage-ca-file", f.storage_ca_file,
                   "Extra CA certificate (PEM) to trust for the storage endpoint [env TWINHUB_STORAGE_CA_FILE]");
    auto* o_sas_ttl = app.add_option("--file-upload-sas-ttl", sas_ttl,
                   "How long a file upload SAS URI is valid: 90s, 30m, 1h... at most 24h [env TWINHUB_FILE_UPLOAD_SAS_TTL]")
        ->capture_default_str();
    auto* o_tls_cert = app.add_option("--tls-cert-file", f.tls_certificate_file,
                   "Server certificate chain (PEM) to serve instead of the one from the hub's generated CA; needs "
                   "--tls-key-file [env TWINHUB_TLS_CERT_FILE]");
    auto* o_tls_key = app.add_option("--tls-key-file", f.tls_key_file,
                   "Private key (PEM) of --tls-cert-file [env TWINHUB_TLS_KEY_FILE]");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        exit_code = app.exit(e);
        return std::nullopt;
    }

    // 2. The configuration file over the defaults.
    config c = defaults;
    c.print_config = f.print_config;
    if (o_config->count() == 0)
        if (const char* v = env("TWINHUB_CONFIG")) config_file = v;
    if (!config_file.empty()) {
        std::ifstream in(config_file, std::ios::binary);
        if (!in) {
            std::cerr << "config error: " << config_file << ": cannot read it: " << std::strerror(errno) << "\n";
            exit_code = 2;
            return std::nullopt;
        }
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        try {
            apply_config_file(c, text, config_file);
        } catch (const config_error& e) {
            std::cerr << e.what() << "\n";
            exit_code = 2;
            return std::nullopt;
        }
        c.config_file = config_file;
        // A file holding secrets (they would be redacted) should be readable by its owner only.
        struct stat st {};
        if (::stat(config_file.c_str(), &st) == 0 && (st.st_mode & 077) != 0 &&
            boost::json::serialize(to_json(c)).find("<redacted>") != std::string::npos)
            log::warn("config.secrets_readable", {{"file", config_file},
                                                  {"hint", "the file holds secrets and others can read it: chmod 600"}});
    }
    std::string retention_text, sas_ttl_text;  // from the environment or a flag: checked below

    // 3. The environment over the file.
    if (const char* v = env("TWINHUB_DATA_DIR")) c.data_dir = v;
    if (const char* v = env("TWINHUB_HOST_NAMES")) c.host_names = split_names(v);
    if (const char* v = env("TWINHUB_STORE")) c.store = v;
    if (const char* v = env("TWINHUB_BIND")) c.bind_address = v;
    if (const char* v = env("TWINHUB_HTTPS_PORT"); v && !env_port("TWINHUB_HTTPS_PORT", v, c.https_port, exit_code)) return std::nullopt;
    if (const char* v = env("TWINHUB_MQTT_PORT"); v && !env_port("TWINHUB_MQTT_PORT", v, c.mqtt_port, exit_code)) return std::nullopt;
    if (const char* v = env("TWINHUB_AMQP_PORT"); v && !env_port("TWINHUB_AMQP_PORT", v, c.amqp_port, exit_code)) return std::nullopt;
    if (const char* v = env("TWINHUB_THREADS"); v && !env_unsigned("TWINHUB_THREADS", v, c.threads, exit_code)) return std::nullopt;
    if (const char* v = env("TWINHUB_LOG_LEVEL")) c.log_level = v;
    if (const char* v = env("TWINHUB_PARTITIONS"); v && !env_unsigned("TWINHUB_PARTITIONS", v, c.partitions, exit_code)) return std::nullopt;
    if (const char* v = env("TWINHUB_RETENTION")) retention_text = v;
    if (const char* v = env("TWINHUB_FAULT_INJECTION")) c.fault_injection = std::string(v) == "1" || std::string(v) == "true";
    if (const char* v = env("TWINHUB_METRICS_PORT"); v && !env_port("TWINHUB_METRICS_PORT", v, c.metrics_port, exit_code, 0)) return std::nullopt;
    if (const char* v = env("TWINHUB_METRICS_BIND")) c.metrics_bind = v;
    if (const char* v = env("TWINHUB_METRICS_TOKEN")) c.metrics_token = v;
    if (const char* v = env("TWINHUB_CONSOLE_DIR")) c.console_dir = v;
    if (const char* v = env("TWINHUB_CONSOLE")) c.console = !(std::string(v) == "0" || std::string(v) == "false");
    if (const char* v = env("TWINHUB_STORAGE_CONNECTION_STRING")) c.storage_connection_string = v;
    if (const char* v = env("TWINHUB_STORAGE_CONTAINER")) c.storage_container = v;
    if (const char* v = env("TWINHUB_STORAGE_CA_FILE")) c.storage_ca_file = v;
    if (const char* v = env("TWINHUB_FILE_UPLOAD_SAS_TTL")) sas_ttl_text = v;
    if (const char* v = env("TWINHUB_TLS_CERT_FILE")) c.tls_certificate_file = v;
    if (const char* v = env("TWINHUB_TLS_KEY_FILE")) c.tls_key_file = v;

    // 4. The flags given, over everything.
    auto given = [](const CLI::Option* o) { return o->count() > 0; };
    if (given(o_data_dir)) c.data_dir = data_dir;
    if (given(o_names)) c.host_names = names;
    if (given(o_store)) c.store = f.store;
    if (given(o_bind)) c.bind_address = f.bind_address;
    if (given(o_https)) c.https_port = f.https_port;
    if (given(o_mqtt)) c.mqtt_port = f.mqtt_port;
    if (given(o_amqp)) c.amqp_port = f.amqp_port;
    if (given(o_threads)) c.threads = f.threads;
    if (given(o_log)) c.log_level = f.log_level;
    if (given(o_partitions)) c.partitions = f.partitions;
    if (given(o_retention)) retention_text = retention;
    if (given(o_fault)) c.fault_injection = true;
    if (given(o_metrics_port)) c.metrics_port = f.metrics_port;
    if (given(o_metrics_bind)) c.metrics_bind = f.metrics_bind;
    if (given(o_metrics_token)) c.metrics_token = f.metrics_token;
    if (given(o_console_dir)) c.console_dir = f.console_dir;
    if (no_console) c.console = false;
    if (given(o_scs)) c.storage_connection_string = f.storage_connection_string;
    if (given(o_container)) c.storage_container = f.storage_container;
    if (given(o_storage_ca)) c.storage_ca_file = f.storage_ca_file;
    if (given(o_sas_ttl)) sas_ttl_text = sas_ttl;
    if (given(o_tls_cert)) c.tls_certificate_file = f.tls_certificate_file;
    if (given(o_tls_key)) c.tls_key_file = f.tls_key_file;

    // 5. What the file already checked with its line, checked again for the environment and flags.
    if (c.data_dir.empty()) {
        std::cerr << "twinhubd: --data-dir is required (or set TWINHUB_DATA_DIR, or data_dir in --config)\n" << app.help();
        exit_code = 2;
        return std::nullopt;
    }
    if (c.store == "sqlite") c.store.clear();
    if (!c.store.empty() && c.store.rfind("postgresql://", 0) != 0 && c.store.rfind("postgres://", 0) != 0)
        return usage(exit_code, "--store must be a postgresql:// URL (the default SQLite store needs no --store)");
    if (c.partitions != 0 && (c.partitions < 2 || c.partitions > 32))
        return usage(exit_code, "--partitions must be between 2 and 32 (got " + std::to_string(c.partitions) + ")");
    if (!retention_text.empty()) {
        auto r = parse_retention(retention_text);
        if (!r)
            return usage(exit_code, "--retention '" + retention_text + "' is not a period between 1s and 7d (e.g. 90s, 12h, 1d)");
        c.retention = *r;
    }
    if (!sas_ttl_text.empty()) {
        auto r = parse_retention(sas_ttl_text);
        if (!r || *r > std::chrono::hours(24))
            return usage(exit_code, "--file-upload-sas-ttl '" + sas_ttl_text + "' is not a period between 1s and 24h");
        c.file_upload_sas_ttl = *r;
    }
    if (c.tls_certificate_file.empty() != c.tls_key_file.empty())
        return usage(exit_code, "--tls-cert-file and --tls-key-file go together (or tls.certificate_file and tls.key_file)");
    if (log::level l; !log::parse_level(c.log_level, l))
        return usage(exit_code, "unknown --log-level '" + c.log_level + "' (debug, info, warn, error, off)");
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
