// --print-config: the effective configuration in the configuration file's shape, without secrets.
#include "server/config.hpp"

#include <algorithm>
#include <cctype>

namespace twinhub::server {
namespace json = boost::json;

namespace {

constexpr const char* redacted = "<redacted>";

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool secret_name(std::string_view name) {
    const std::string n = lower(name);
    if (n.size() >= 4 && n.compare(n.size() - 4, 4, "name") == 0) return false;  // SharedAccessKeyName
    for (const char* w : {"key", "password", "secret", "signature", "token", "sig"})
        if (n.find(w) != std::string::npos) return true;
    return false;
}

std::string period(std::chrono::seconds s) {
    const auto n = s.count();
    if (n % 86400 == 0) return std::to_string(n / 86400) + "d";
    if (n % 3600 == 0) return std::to_string(n / 3600) + "h";
    if (n % 60 == 0) return std::to_string(n / 60) + "m";
    return std::to_string(n) + "s";
}

// Routing endpoints carry connection strings: redact every member that names a secret or holds one.
void redact_tree(json::value& v) {
    if (auto* o = v.if_object()) {
        for (auto& [k, m] : *o) {
            if (m.is_string() && lower(k).find("connectionstring") != std::string::npos)
                m = redact_connection_string(m.as_string());
            else if (m.is_string() && secret_name(k)) m = redacted;
            else redact_tree(m);
        }
    } else if (auto* a = v.if_array()) {
        for (auto& m : *a) redact_tree(m);
    }
}

}  // namespace

std::string redact_url(std::string_view url) {
    std::string out(url);
    const auto scheme = out.find("://");
    if (scheme != std::string::npos) {
        const auto start = scheme + 3;
        const auto end = std::min(out.find_first_of("/?", start), out.size());
        const auto at = out.rfind('@', end == std::string::npos ? out.size() : end);
        if (at != std::string::npos && at > start) {
            const auto colon = out.find(':', start);
            if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, redacted);
        }
    }
    // Query parameters naming a secret (libpq's ?password=...).
    auto q = out.find('?');
    while (q != std::string::npos) {
        const auto name_start = q + 1;
        const auto eq = out.find('=', name_start);
        auto amp = out.find('&', name_start);
        if (eq == std::string::npos || (amp != std::string::npos && amp < eq)) {
            q = amp;
            continue;
        }
        const auto value_end = amp == std::string::npos ? out.size() : amp;
        if (secret_name(std::string_view(out).substr(name_start, eq - name_start))) {
            out.replace(eq + 1, value_end - eq - 1, redacted);
            amp = out.find('&', eq + 1);
        }
        q = amp;
    }
    return out;
}

std::string redact_connection_string(std::string_view cs) {
    std::string out;
    std::size_t i = 0;
    while (i <= cs.size()) {
        auto semi = cs.find(';', i);
        if (semi == std::string_view::npos) semi = cs.size();
        std::string_view part = cs.substr(i, semi - i);
        auto eq = part.find('=');
        if (eq != std::string_view::npos && secret_name(part.substr(0, eq))) {
            out.append(part.substr(0, eq + 1));
            out += redacted;
        } else {
            out.append(part);
        }
        if (semi < cs.size()) out += ';';
        i = semi + 1;
    }
    return out;
}

json::object to_json(const config& c) {
    json::array names;
    for (const auto& n : c.host_names) names.emplace_back(n);
    json::array groups;
    for (const auto& g : c.consumer_groups) groups.emplace_back(g);
    json::object telemetry{{"partitions", c.partitions},
                           {"retention", period(c.retention)},
                           {"consumer_groups", std::move(groups)}};
    if (c.routing) {
        json::value r = *c.routing;
        redact_tree(r);
        telemetry["routing"] = std::move(r);
    } else {
        telemetry["routing_file"] = c.routing_file.empty() ? (c.data_dir / "routing.json").string() : c.routing_file;
    }
    return json::object{
        {"data_dir", c.data_dir.string()},
        {"host_names", std::move(names)},
        {"bind", c.bind_address},
        {"ports", {{"https", c.https_port}, {"mqtt", c.mqtt_port}, {"amqp", c.amqp_port}}},
        {"threads", c.threads},
        {"log_level", c.log_level},
        {"store", c.store.empty() ? std::string("sqlite") : redact_url(c.store)},
        {"telemetry", std::move(telemetry)},
        {"fault_injection", c.fault_injection},
        {"metrics", {{"port", c.metrics_port}, {"bind", c.metrics_bind}, {"token", c.metrics_token.empty() ? "" : redacted}}},
        {"console", {{"enabled", c.console}, {"dir", c.console_dir}}},
        {"tls", {{"certificate_file", c.tls_certificate_file}, {"key_file", c.tls_key_file}}},
        {"file_upload", {{"storage_connection_string", redact_connection_string(c.storage_connection_string)},
                         {"container", c.storage_container},
                         {"ca_file", c.storage_ca_file},
                         {"sas_ttl", period(c.file_upload_sas_ttl)}}},
    };
}

}  // namespace twinhub::server
