#include "service/twin_json.hpp"

#include "common/time.hpp"

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

namespace twinhub::service {
namespace {

boost::json::value optional_string(const std::optional<std::string>& s) {
    if (s) return boost::json::value(*s);
    return nullptr;
}

boost::json::object thumbprint_json(const registry::x509_thumbprint& t) {
    boost::json::object o;
    o["primaryThumbprint"] = optional_string(t.primary_thumbprint);
    o["secondaryThumbprint"] = optional_string(t.secondary_thumbprint);
    return o;
}

}  // namespace

boost::json::object service_twin_json(const registry::device_identity& d, const twin::twin_document& t) {
    boost::json::object o;
    o["deviceId"] = d.device_id;
    o["etag"] = twin::etag_to_string(t.etag);
    o["deviceEtag"] = registry::etag_to_string(d.etag);
    o["status"] = registry::to_string(d.status);
    o["statusReason"] = optional_string(d.status_reason);
    o["statusUpdateTime"] = format_time_or_never(d.status_updated_time);
    o["connectionState"] = registry::to_string(d.connection_state);
    o["lastActivityTime"] = format_time_or_never(d.last_activity_time);
    o["cloudToDeviceMessageCount"] = d.cloud_to_device_message_count;
    o["authenticationType"] = registry::to_string(d.authentication.type);
    o["x509Thumbprint"] = thumbprint_json(d.authentication.x509_thumbprint);
    o["modelId"] = t.model_id;
    o["version"] = t.version;
    o["tags"] = t.tags;
    o["properties"] = twin::properties_json(t);
    if (!t.configurations.empty()) o["configurations"] = t.configurations;
    o["capabilities"] = boost::json::object{{"iotEdge", d.iot_edge}};
    if (d.device_scope) o["deviceScope"] = *d.device_scope;
    if (!d.parent_scopes.empty()) {
        boost::json::array a;
        for (auto& s : d.parent_scopes) a.emplace_back(s);
        o["parentScopes"] = std::move(a);
    }
    return o;
}

boost::json::object service_twin_json(const registry::module_identity& m, const twin::twin_document& t) {
    boost::json::object o;
    o["deviceId"] = m.device_id;
    o["moduleId"] = m.module_id;
    o["etag"] = twin::etag_to_string(t.etag);
    o["deviceEtag"] = registry::etag_to_string(m.etag);
    o["status"] = "enabled";
    o["statusUpdateTime"] = never_time;
    o["connectionState"] = registry::to_string(m.connection_state);
    o["lastActivityTime"] = format_time_or_never(m.last_activity_time);
    o["cloudToDeviceMessageCount"] = m.cloud_to_device_message_count;
    o["authenticationType"] = registry::to_string(m.authentication.type);
    o["x509Thumbprint"] = thumbprint_json(m.authentication.x509_thumbprint);
    o["modelId"] = t.model_id;
    o["version"] = t.version;
    o["tags"] = t.tags;
    o["properties"] = twin::properties_json(t);
    if (!t.configurations.empty()) o["configurations"] = t.configurations;
    return o;
}

}  // namespace twinhub::service
