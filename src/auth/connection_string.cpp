#include "auth/connection_string.hpp"

#include "common/text.hpp"

#include <array>
#include <optional>

namespace twinhub::auth {
namespace {

enum field { f_host, f_key_name, f_key, f_sas, f_device, f_module, f_gateway, f_x509, f_count };

constexpr std::array<std::string_view, f_count> field_names = {
    "HostName",        "SharedAccessKeyName",
    "SharedAccessKey", "SharedAccessSignature",
    "DeviceId",        "ModuleId",
    "GatewayHostName", "x509",
};

std::optional<field> field_of(std::string_view name) {
    for (std::size_t i = 0; i < field_names.size(); ++i)
        if (field_names[i] == name) return static_cast<field>(i);
    return std::nullopt;
}

error bad(std::string message) {
    return {errc::invalid_argument, "Invalid connection string: " + std::move(message)};
}

std::string quoted(std::string_view name) {
    return "'" + std::string(name) + "'";
}

}  // namespace

result<connection_string> parse_connection_string(std::string_view s) {
    std::array<std::optional<std::string_view>, f_count> v;
    s = trim(s);
    if (s.empty()) return bad("it is empty.");
    while (!s.empty()) {
        auto semi = s.find(';');
        std::string_view pair = s.substr(0, semi);
        s = semi == std::string_view::npos ? std::string_view{} : s.substr(semi + 1);
        if (trim(pair).empty()) continue;
        auto eq = pair.find('=');
        if (eq == std::string_view::npos) {
            // Do not echo the part: it may be a pasted key.
            return bad("a part has no '=' (expected key=value pairs separated by ';').");
        }
        // Whitespace around names and values (a pasted string, a line break) is not part of them.
        std::string_view name = trim(pair.substr(0, eq));
        auto f = field_of(name);
        if (!f) {
            return bad("unknown key " + quoted(name) +
                       " (allowed: HostName, SharedAccessKeyName, SharedAccessKey, SharedAccessSignature, DeviceId, "
                       "ModuleId, GatewayHostName, x509; keys are case-sensitive).");
        }
        if (v[*f]) return bad("duplicate key " + quoted(name) + ".");
        std::string_view value = trim(pair.substr(eq + 1));
        if (value.empty()) return bad("key " + quoted(name) + " has an empty value.");
        v[*f] = value;
    }

    connection_string cs;
    auto get = [&](field f) { return v[f] ? std::string(*v[f]) : std::string(); };
    if (!v[f_host]) return bad("missing key 'HostName'.");
    cs.host_name = get(f_host);
    cs.key_name = get(f_key_name);
    cs.key = get(f_key);
    cs.device_id = get(f_device);
    cs.module_id = get(f_module);
    cs.gateway_host_name = get(f_gateway);
    cs.shared_access_signature = get(f_sas);
    if (v[f_x509]) {
        if (iequals(*v[f_x509], "true")) {
            cs.x509 = true;
        } else if (!iequals(*v[f_x509], "false")) {
            return bad("key 'x509' must be 'true' or 'false'.");
        }
    }

    if (!v[f_device]) {
        if (v[f_module]) return bad("key 'ModuleId' requires 'DeviceId'.");
        if (v[f_sas] || v[f_x509] || v[f_gateway]) {
            field extra = v[f_sas] ? f_sas : v[f_x509] ? f_x509 : f_gateway;
            return bad("key " + quoted(field_names[extra]) +
                       " is only valid in a device or module connection string (missing key 'DeviceId').");
        }
        if (!v[f_key_name]) return bad("missing key 'SharedAccessKeyName' (or 'DeviceId' for a device).");
        if (!v[f_key]) return bad("missing key 'SharedAccessKey'.");
        cs.kind = connection_string_kind::service;
        return cs;
    }

    cs.kind = v[f_module] ? connection_string_kind::module : connection_string_kind::device;
    int credentials = (v[f_key] ? 1 : 0) + (v[f_sas] ? 1 : 0) + (cs.x509 ? 1 : 0);
    if (credentials == 0) return bad("missing key 'SharedAccessKey' (or 'SharedAccessSignature' or 'x509=true').");
    if (credentials > 1) return bad("use exactly one of 'SharedAccessKey', 'SharedAccessSignature' and 'x509=true'.");
    if (v[f_key_name] && !v[f_key]) return bad("key 'SharedAccessKeyName' requires 'SharedAccessKey'.");
    return cs;
}

std::string event_hub_name(std::string_view host_name) {
    auto colon = host_name.find(':');
    host_name = host_name.substr(0, colon);
    return std::string(host_name.substr(0, host_name.find('.')));
}

std::string format_event_hub_connection_string(std::string_view host_name, std::string_view key_name,
                                               std::string_view key) {
    std::string out;
    out.append("Endpoint=sb://").append(host_name).append("/");
    out.append(";SharedAccessKeyName=").append(key_name);
    out.append(";SharedAccessKey=").append(key);
    out.append(";EntityPath=").append(event_hub_name(host_name));
    return out;
}

std::string format_service_connection_string(std::string_view host_name, std::string_view key_name,
                                             std::string_view key) {
    std::string out;
    out.append("HostName=").append(host_name);
    out.append(";SharedAccessKeyName=").append(key_name);
    out.append(";SharedAccessKey=").append(key);
    return out;
}

std::string format_device_connection_string(std::string_view host_name, std::string_view device_id,
                                            std::string_view key) {
    std::string out;
    out.append("HostName=").append(host_name);
    out.append(";DeviceId=").append(device_id);
    out.append(";SharedAccessKey=").append(key);
    return out;
}

std::string format_module_connection_string(std::string_view host_name, std::string_view device_id,
                                            std::string_view module_id, std::string_view key) {
    std::string out;
    out.append("HostName=").append(host_name);
    out.append(";DeviceId=").append(device_id);
    out.append(";ModuleId=").append(module_id);
    out.append(";SharedAccessKey=").append(key);
    return out;
}

std::string to_string(const connection_string& cs) {
    std::string out = "HostName=" + cs.host_name;
    auto add = [&](std::string_view name, const std::string& value) {
        if (!value.empty()) out.append(";").append(name).append("=").append(value);
    };
    if (cs.kind != connection_string_kind::service) add("DeviceId", cs.device_id);
    if (cs.kind == connection_string_kind::module) add("ModuleId", cs.module_id);
    add("SharedAccessKeyName", cs.key_name);
    add("SharedAccessKey", cs.key);
    add("SharedAccessSignature", cs.shared_access_signature);
    if (cs.x509) out.append(";x509=true");
    add("GatewayHostName", cs.gateway_host_name);
    return out;
}

}  // namespace twinhub::auth
