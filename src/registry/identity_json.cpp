// Wire JSON of identities (spec 3.3/3.4) and parsing of client PUT bodies (spec 3.5).
#include "registry/identity.hpp"

#include "common/encoding.hpp"
#include "common/text.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>

namespace twinhub::registry {
namespace json = boost::json;
namespace {

const char* to_wire(auth_type t) {
    switch (t) {
    case auth_type::sas: return "sas";
    case auth_type::self_signed: return "selfSigned";
    case auth_type::certificate_authority: return "certificateAuthority";
    case auth_type::none: return "none";
    }
    return "sas";
}

const char* to_wire(connection_state s) { return s == connection_state::connected ? "Connected" : "Disconnected"; }
const char* to_wire(device_status s) { return s == device_status::enabled ? "enabled" : "disabled"; }

json::value nullable(const std::optional<std::string>& s) { return s ? json::value(*s) : json::value(nullptr); }
json::value key_or_null(const std::string& s) { return s.empty() ? json::value(nullptr) : json::value(s); }

json::object auth_json(const authentication_mechanism& a) {
    json::object sk;
    sk["primaryKey"] = key_or_null(a.symmetric_key.primary_key);
    sk["secondaryKey"] = key_or_null(a.symmetric_key.secondary_key);
    json::object tp;
    tp["primaryThumbprint"] = nullable(a.x509_thumbprint.primary_thumbprint);
    tp["secondaryThumbprint"] = nullable(a.x509_thumbprint.secondary_thumbprint);
    json::object o;
    o["symmetricKey"] = std::move(sk);
    o["x509Thumbprint"] = std::move(tp);
    o["type"] = to_wire(a.type);
    return o;
}

error invalid(std::string_view field, std::string_view expectation) {
    return error{errc::invalid_argument,
                 "Invalid value for '" + std::string(field) + "': " + std::string(expectation) + "."};
}

// A member that may be absent or null (-> nullopt) or a string.
result<std::optional<std::string>> opt_string(const json::object& o, std::string_view key, std::string_view field) {
    auto it = o.find(key);
    if (it == o.end() || it->value().is_null()) return std::optional<std::string>{};
    if (!it->value().is_string()) return invalid(field, "expected a string or null");
    return std::optional<std::string>{std::string(it->value().get_string())};
}

// A member that may be absent or null (-> nullptr) or an object.
result<const json::object*> opt_object(const json::object& o, std::string_view key, std::string_view field) {
    auto it = o.find(key);
    if (it == o.end() || it->value().is_null()) return static_cast<const json::object*>(nullptr);
    if (!it->value().is_object()) return invalid(field, "expected a JSON object or null");
    return &it->value().get_object();
}

result<std::string> parse_key(const json::object& o, std::string_view key, std::string_view field) {
    auto s = opt_string(o, key, field);
    if (!s) return s.error();
    if (!*s || (*s)->empty()) return std::string();
    if (!base64_decode(**s)) return invalid(field, "the key must be valid base64");
    return std::move(**s);
}

result<std::optional<std::string>> parse_thumbprint(const json::object& o, std::string_view key,
                                                    std::string_view field) {
    auto s = opt_string(o, key, field);
    if (!s) return s.error();
    if (!*s || (*s)->empty()) return std::optional<std::string>{};
    const std::string& v = **s;
    bool hex = std::all_of(v.begin(), v.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
    if (!hex || (v.size() != 40 && v.size() != 64)) {
        return invalid(field, "expected 40 (SHA-1) or 64 (SHA-256) hexadecimal characters");
    }
    return s;
}

result<authentication_mechanism> parse_authentication(const json::object& body) {
    authentication_mechanism a;
    auto auth = opt_object(body, "authentication", "authentication");
    if (!auth) return auth.error();
    if (!*auth) return a;  // no authentication: sas with empty keys, generated on create
    const json::object& o = **auth;

    auto sk = opt_object(o, "symmetricKey", "authentication.symmetricKey");
    if (!sk) return sk.error();
    if (*sk) {
        auto p = parse_key(**sk, "primaryKey", "authentication.symmetricKey.primaryKey");
        if (!p) return p.error();
        auto s = parse_key(**sk, "secondaryKey", "authentication.symmetricKey.secondaryKey");
        if (!s) return s.error();
        a.symmetric_key = {std::move(*p), std::move(*s)};
    }
    auto tp = opt_object(o, "x509Thumbprint", "authentication.x509Thumbprint");
    if (!tp) return tp.error();
    if (*tp) {
        auto p = parse_thumbprint(**tp, "primaryThumbprint", "authentication.x509Thumbprint.primaryThumbprint");
        if (!p) return p.error();
        auto s = parse_thumbprint(**tp, "secondaryThumbprint", "authentication.x509Thumbprint.secondaryThumbprint");
        if (!s) return s.error();
        a.x509_thumbprint = {std::move(*p), std::move(*s)};
    }
    bool has_thumbprint = a.x509_thumbprint.primary_thumbprint || a.x509_thumbprint.secondary_thumbprint;

    auto type = opt_string(o, "type", "authentication.type");
    if (!type) return type.error();
    if (!*type) {
        // Same normalisation as the Node SDK (spec 3.5).
        a.type = has_thumbprint ? auth_type::self_signed : auth_type::sas;
    } else if (auto t = parse_auth_type(**type)) {
        a.type = *t;
    } else {
        return invalid("authentication.type", "expected 'sas', 'selfSigned', 'certificateAuthority' or 'none'");
    }
    if (a.type == auth_type::self_signed && !has_thumbprint) {
        return error{errc::invalid_argument,
                     "Authentication type 'selfSigned' requires authentication.x509Thumbprint.primaryThumbprint "
                     "or secondaryThumbprint."};
    }
    if (a.type != auth_type::sas) {
        // Keys mean nothing for X.509 or keyless identities; the hub shows them as null.
        a.symmetric_key = {};
    }
    return a;
}

result<void> require_object(const json::value& body, std::string_view what) {
    if (!body.is_object()) {
        return error{errc::invalid_argument, "The " + std::string(what) + " body must be a JSON object."};
    }
    return {};
}

}  // namespace

std::optional<auth_type> parse_auth_type(std::string_view s) {
    if (iequals(s, "sas")) return auth_type::sas;
    if (iequals(s, "selfSigned")) return auth_type::self_signed;
    if (iequals(s, "certificateAuthority")) return auth_type::certificate_authority;
    if (iequals(s, "none")) return auth_type::none;
    return std::nullopt;
}

const char* to_string(auth_type t) noexcept { return to_wire(t); }
const char* to_string(device_status s) noexcept { return to_wire(s); }
const char* to_string(connection_state s) noexcept { return to_wire(s); }

json::object to_json(const device_identity& d) {
    json::object o;
    o["deviceId"] = d.device_id;
    o["generationId"] = d.generation_id;
    o["etag"] = etag_to_string(d.etag);
    o["connectionState"] = to_wire(d.connection_state);
    o["status"] = to_wire(d.status);
    o["statusReason"] = nullable(d.status_reason);
    o["connectionStateUpdatedTime"] = format_time_or_never(d.connection_state_updated_time);
    o["statusUpdatedTime"] = format_time_or_never(d.status_updated_time);
    o["lastActivityTime"] = format_time_or_never(d.last_activity_time);
    o["cloudToDeviceMessageCount"] = d.cloud_to_device_message_count;
    o["authentication"] = auth_json(d.authentication);
    json::object caps;
    caps["iotEdge"] = d.iot_edge;
    o["capabilities"] = std::move(caps);
    if (d.device_scope) o["deviceScope"] = *d.device_scope;
    if (d.device_scope || !d.parent_scopes.empty()) {
        json::array ps;
        for (const auto& s : d.parent_scopes) ps.emplace_back(s);
        o["parentScopes"] = std::move(ps);
    }
    return o;
}

json::object to_json(const module_identity& m) {
    json::object o;
    o["moduleId"] = m.module_id;
    o["managedBy"] = m.managed_by;
    o["deviceId"] = m.device_id;
    o["generationId"] = m.generation_id;
    o["etag"] = etag_to_string(m.etag);
    o["connectionState"] = to_wire(m.connection_state);
    o["connectionStateUpdatedTime"] = format_time_or_never(m.connection_state_updated_time);
    o["lastActivityTime"] = format_time_or_never(m.last_activity_time);
    o["cloudToDeviceMessageCount"] = m.cloud_to_device_message_count;
    o["authentication"] = auth_json(m.authentication);
    return o;
}

result<device_identity> parse_device_request(const json::value& body) {
    if (auto r = require_object(body, "device"); !r) return r.error();
    const json::object& o = body.get_object();
    device_identity d;

    auto id = o.find("deviceId");
    if (id == o.end() || id->value().is_null()) return error{errc::invalid_argument, "deviceId is required."};
    if (!id->value().is_string()) return invalid("deviceId", "expected a string");
    d.device_id = std::string(id->value().get_string());
    if (auto r = validate_id(d.device_id, "deviceId"); !r) return r.error();

    auto status = opt_string(o, "status", "status");
    if (!status) return status.error();
    if (*status) {
        if (iequals(**status, "enabled")) d.status = device_status::enabled;
        else if (iequals(**status, "disabled")) d.status = device_status::disabled;
        else return invalid("status", "expected 'enabled' or 'disabled'");
    }
    auto reason = opt_string(o, "statusReason", "statusReason");
    if (!reason) return reason.error();
    if (*reason && (*reason)->size() > 128) return invalid("statusReason", "at most 128 characters are allowed");
    d.status_reason = std::move(*reason);

    auto auth = parse_authentication(o);
    if (!auth) return auth.error();
    d.authentication = std::move(*auth);

    auto caps = opt_object(o, "capabilities", "capabilities");
    if (!caps) return caps.error();
    if (*caps) {
        auto edge = (*caps)->find("iotEdge");
        if (edge != (*caps)->end() && !edge->value().is_null()) {
            if (!edge->value().is_bool()) return invalid("capabilities.iotEdge", "expected true or false");
            d.iot_edge = edge->value().get_bool();
        }
    }

    auto scope = opt_string(o, "deviceScope", "deviceScope");
    if (!scope) return scope.error();
    if (*scope && !(*scope)->empty()) d.device_scope = std::move(*scope);

    auto ps = o.find("parentScopes");
    if (ps != o.end() && !ps->value().is_null()) {
        if (!ps->value().is_array()) return invalid("parentScopes", "expected an array of strings");
        for (const auto& e : ps->value().get_array()) {
            if (!e.is_string()) return invalid("parentScopes", "expected an array of strings");
            d.parent_scopes.emplace_back(e.get_string());
        }
    }
    return d;
}

result<module_identity> parse_module_request(const json::value& body) {
    if (auto r = require_object(body, "module"); !r) return r.error();
    const json::object& o = body.get_object();
    module_identity m;

    auto id = o.find("moduleId");
    if (id == o.end() || id->value().is_null()) return error{errc::invalid_argument, "moduleId is required."};
    if (!id->value().is_string()) return invalid("moduleId", "expected a string");
    m.module_id = std::string(id->value().get_string());
    if (auto r = validate_id(m.module_id, "moduleId"); !r) return r.error();

    // deviceId is optional here: the URL names the device and the service layer checks they agree.
    auto dev = opt_string(o, "deviceId", "deviceId");
    if (!dev) return dev.error();
    if (*dev) {
        m.device_id = std::move(**dev);
        if (auto r = validate_id(m.device_id, "deviceId"); !r) return r.error();
    }

    auto managed = opt_string(o, "managedBy", "managedBy");
    if (!managed) return managed.error();
    if (*managed) m.managed_by = std::move(**managed);

    auto auth = parse_authentication(o);
    if (!auth) return auth.error();
    m.authentication = std::move(*auth);
    return m;
}

}  // namespace twinhub::registry
