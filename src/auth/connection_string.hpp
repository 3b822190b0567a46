// IoT Hub connection strings (spec 1.1-1.2): `key=value` pairs separated by ';', in the service,
// device and module forms the Azure SDKs accept. Parsing is strict (unknown or duplicate keys are
// errors, as in the Python SDK) so that a string twinhub accepts works with every SDK.
// Thread safety: plain values and pure functions.
#pragma once

#include "common/errc.hpp"

#include <string>
#include <string_view>

namespace twinhub::auth {

enum class connection_string_kind { service, device, module };

struct connection_string {
    connection_string_kind kind = connection_string_kind::service;
    std::string host_name;                // HostName (required)
    std::string key_name;                 // SharedAccessKeyName; required for service, optional (skn) for devices
    std::string key;                      // SharedAccessKey (base64), empty when absent
    std::string device_id;                // DeviceId; device and module forms
    std::string module_id;                // ModuleId; module form
    std::string gateway_host_name;        // GatewayHostName; empty when absent
    std::string shared_access_signature;  // SharedAccessSignature (a whole token), empty when absent
    bool x509 = false;                    // x509=true
};

// Parses a connection string. Pairs are split on ';' (empty pairs, e.g. a trailing ';', are skipped)
// and each pair at its first '=' so values may contain '='. Keys are case-sensitive.
// - With DeviceId: a device (or, with ModuleId, a module) string; exactly one of SharedAccessKey,
//   SharedAccessSignature, x509=true is required. SharedAccessKeyName may accompany SharedAccessKey.
// - Without DeviceId: a service string; SharedAccessKeyName and SharedAccessKey are required.
// Fails with invalid_argument naming the missing, duplicate, empty or unknown key. Never puts key or
// signature values into the message.
result<connection_string> parse_connection_string(std::string_view s);

// Exact canonical forms handed out by the hub and the CLI.
// "HostName=h;SharedAccessKeyName=n;SharedAccessKey=k"
std::string format_service_connection_string(std::string_view host_name, std::string_view key_name,
                                             std::string_view key);
// The built-in endpoint's Event Hub name for a hub host name: its first label ("hub" for
// "hub.local"), as IoT Hub names it after the hub.
std::string event_hub_name(std::string_view host_name);
// The Event Hubs-compatible connection string of the built-in endpoint:
// "Endpoint=sb://h/;SharedAccessKeyName=n;SharedAccessKey=k;EntityPath=e"
std::string format_event_hub_connection_string(std::string_view host_name, std::string_view key_name,
                                               std::string_view key);
// "HostName=h;DeviceId=d;SharedAccessKey=k"
std::string format_device_connection_string(std::string_view host_name, std::string_view device_id,
                                            std::string_view key);
// "HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=k"
std::string format_module_connection_string(std::string_view host_name, std::string_view device_id,
                                            std::string_view module_id, std::string_view key);

// Formats any parsed value back; the three forms above come out exactly as those functions produce
// them. Other fields follow in the order HostName, DeviceId, ModuleId, SharedAccessKeyName,
// SharedAccessKey | SharedAccessSignature | x509=true, GatewayHostName.
std::string to_string(const connection_string& cs);

}  // namespace twinhub::auth
