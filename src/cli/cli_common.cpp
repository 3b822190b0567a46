#include "cli/cli_common.hpp"

#include "common/error_mapping.hpp"
#include "common/json_print.hpp"

#include <boost/json/parse.hpp>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

namespace twinhub::cli {

const char* const exit_codes_text =
    "Exit codes: 0 success; 1 the operation failed (the hub refused it, e.g. DeviceNotFound, "
    "PreconditionFailed for a stale --etag, IotHubUnauthorizedAccess); 2 usage error (bad arguments, JSON or "
    "connection string); 3 the hub could not be reached (DNS, TCP, TLS/certificate, timeout).\n"
    "Errors are printed on stderr as 'twinhub: <ErrorCode>: <message>'.";

int fail(const twinhub::error& e) {
    if (e.code == twinhub::errc::connection_failed) {
        std::cerr << "twinhub: connection failed: " << e.message << "\n";
        return exit_connection;
    }
    if (e.code == twinhub::errc::gateway_timeout && e.message.find("did not answer") != std::string::npos) {
        std::cerr << "twinhub: timeout: " << e.message << "\n";
        return exit_connection;
    }
    const char* name = twinhub::to_wire(e.code).code_name;
    std::cerr << "twinhub: " << (name && *name ? name : twinhub::to_string(e.code)) << ": " << e.message << "\n";
    return exit_failed;
}

void print(const boost::json::value& v) { std::cout << twinhub::pretty_json(v) << "\n"; }

// JSON from an argument: inline text, or @path to read a file.
boost::json::value parse_json_arg(const std::string& what, const std::string& text) {
    std::string body = text;
    if (!text.empty() && text.front() == '@') {
        std::ifstream in(text.substr(1), std::ios::binary);
        if (!in) throw usage_error{"cannot read " + what + " file '" + text.substr(1) + "'"};
        std::ostringstream ss;
        ss << in.rdbuf();
        body = ss.str();
    }
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec) throw usage_error{what + " is not valid JSON (" + ec.message() + "): " + text};
    return v;
}

boost::json::object parse_json_object_arg(const std::string& what, const std::string& text) {
    auto v = parse_json_arg(what, text);
    if (!v.is_object()) throw usage_error{what + " must be a JSON object, e.g. '{\"telemetryInterval\": 10}'"};
    return std::move(v.as_object());
}

std::string login_of(const hub_args& a) {
    std::string cs = a.login;
    if (cs.empty())
        if (const char* env = std::getenv("TWINHUB_CONNECTION_STRING")) cs = env;
    if (cs.empty())
        throw usage_error{"no hub connection string: pass --login \"HostName=...;SharedAccessKeyName=...;SharedAccessKey=...\" "
                          "or set TWINHUB_CONNECTION_STRING (show it with: twinhub hub connection-string show --data-dir DIR)"};
    return cs;
}

twinhub::service_options options_of(const hub_args& a) {
    twinhub::service_options o;
    o.tls.ca_file = a.ca_file;
    if (o.tls.ca_file.empty())
        if (const char* env = std::getenv("TWINHUB_CA_FILE")) o.tls.ca_file = env;
    int port = a.port;
    if (port == 0)
        if (const char* env = std::getenv("TWINHUB_PORT")) port = std::atoi(env);
    if (port < 0 || port > 65535) throw usage_error{"--port must be 1-65535"};
    o.port = static_cast<std::uint16_t>(port);
    int amqp = a.amqp_port;
    if (amqp == 0)
        if (const char* env = std::getenv("TWINHUB_AMQP_PORT")) amqp = std::atoi(env);
    if (amqp < 0 || amqp > 65535) throw usage_error{"--amqp-port must be 1-65535"};
    o.amqp_port = static_cast<std::uint16_t>(amqp);
    o.timeout = std::chrono::seconds(a.timeout);
    return o;
}

twinhub::registry_manager open_hub(const hub_args& a) {
    auto rm = twinhub::registry_manager::from_connection_string(login_of(a), options_of(a));
    if (!rm) throw usage_error{rm.error().message};
    return std::move(*rm);
}

twinhub::service_client open_amqp(const hub_args& a) {
    auto sc = twinhub::service_client::from_connection_string(login_of(a), options_of(a));
    if (!sc) throw usage_error{sc.error().message};
    return std::move(*sc);
}

CLI::App* leaf(CLI::App* parent, const std::string& name, const std::string& description, hub_args& a) {
    auto* c = parent->add_subcommand(name, description);
    c->add_option("--login,-l", a.login,
                  "The hub's service connection string (default: env TWINHUB_CONNECTION_STRING)");
    c->add_option("--ca-file", a.ca_file, "PEM file of the CA to trust, e.g. DATA_DIR/tls/ca.pem (default: env TWINHUB_CA_FILE)");
    c->add_option("--port", a.port,
                  "REST port when it is not 443 and not in HostName (default: env TWINHUB_PORT)");
    c->add_option("--request-timeout", a.timeout, "Seconds to wait for each answer")->capture_default_str();
    c->footer(exit_codes_text);
    return c;
}

}  // namespace twinhub::cli
