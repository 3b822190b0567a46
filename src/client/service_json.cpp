#include "client/service_json.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace twinhub::client {
namespace {

std::string str(const boost::json::object& o, std::string_view k) {
    if (const auto* v = o.if_contains(k))
        if (const auto* s = v->if_string()) return std::string(*s);
    return {};
}

std::int64_t num(const boost::json::object& o, std::string_view k) {
    if (const auto* v = o.if_contains(k)) {
        if (v->is_int64()) return v->as_int64();
        if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
        if (v->is_double()) return static_cast<std::int64_t>(v->as_double());
    }
    return 0;
}

const boost::json::object* obj(const boost::json::object& o, std::string_view k) {
    if (const auto* v = o.if_contains(k)) return v->if_object();
    return nullptr;
}

void read_auth(const boost::json::object& o, std::string& type, symmetric_keys& keys) {
    if (const auto* a = obj(o, "authentication")) {
        type = str(*a, "type");
        if (const auto* k = obj(*a, "symmetricKey")) {
            keys.primary_key = str(*k, "primaryKey");
            keys.secondary_key = str(*k, "secondaryKey");
        }
    }
}

boost::json::object auth_json(const symmetric_keys& keys, std::string_view type) {
    return {{"type", type.empty() ? "sas" : type},
            {"symmetricKey", {{"primaryKey", keys.primary_key}, {"secondaryKey", keys.secondary_key}}}};
}

}  // namespace

result<device_identity> device_from_json(const boost::json::value& v) {
    const auto* o = v.if_object();
    if (!o || str(*o, "deviceId").empty())
        return error{errc::format_error, "the hub's answer is not a device identity (no deviceId)"};
    device_identity d;
    d.device_id = str(*o, "deviceId");
    d.generation_id = str(*o, "generationId");
    d.etag = str(*o, "etag");
    d.status = str(*o, "status");
    d.status_reason = str(*o, "statusReason");
    d.connection_state = str(*o, "connectionState");
    d.cloud_to_device_message_count = num(*o, "cloudToDeviceMessageCount");
    read_auth(*o, d.authentication_type, d.keys);
    if (const auto* c = obj(*o, "capabilities"))
        if (const auto* e = c->if_contains("iotEdge")) d.iot_edge = e->is_bool() && e->as_bool();
    d.json = *o;
    return d;
}

result<module_identity> module_from_json(const boost::json::value& v) {
    const auto* o = v.if_object();
    if (!o || str(*o, "moduleId").empty())
        return error{errc::format_error, "the hub's answer is not a module identity (no moduleId)"};
    module_identity m;
    m.device_id = str(*o, "deviceId");
    m.module_id = str(*o, "moduleId");
    m.managed_by = str(*o, "managedBy");
    m.generation_id = str(*o, "generationId");
    m.etag = str(*o, "etag");
    m.connection_state = str(*o, "connectionState");
    read_auth(*o, m.authentication_type, m.keys);
    m.json = *o;
    return m;
}

result<device_twin> twin_from_json(const boost::json::value& v) {
    const auto* o = v.if_object();
    if (!o || str(*o, "deviceId").empty()) return error{errc::format_error, "the hub's answer is not a twin (no deviceId)"};
    device_twin t;
    t.device_id = str(*o, "deviceId");
    t.module_id = str(*o, "moduleId");
    t.etag = str(*o, "etag");
    t.version = num(*o, "version");
    if (const auto* tags = obj(*o, "tags")) t.tags = *tags;
    if (const auto* p = obj(*o, "properties")) {
        if (const auto* d = obj(*p, "desired")) t.desired = *d;
        if (const auto* r = obj(*p, "reported")) t.reported = *r;
    }
    t.json = *o;
    return t;
}

boost::json::object device_to_json(const device_identity& d) {
    boost::json::object o{{"deviceId", d.device_id},
                          {"status", d.status.empty() ? "enabled" : d.status},
                          {"authentication", auth_json(d.keys, d.authentication_type)},
                          {"capabilities", {{"iotEdge", d.iot_edge}}}};
    if (!d.status_reason.empty()) o["statusReason"] = d.status_reason;
    if (!d.etag.empty()) o["etag"] = d.etag;
    return o;
}

boost::json::object module_to_json(const module_identity& m) {
    boost::json::object o{{"deviceId", m.device_id},
                          {"moduleId", m.module_id},
                          {"authentication", auth_json(m.keys, m.authentication_type)}};
    if (!m.managed_by.empty()) o["managedBy"] = m.managed_by;
    if (!m.etag.empty()) o["etag"] = m.etag;
    return o;
}

result<std::vector<feedback_record>> feedback_from_json(std::string_view body) {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec) return error{errc::format_error, "the feedback message is not JSON: " + ec.message()};
    const auto* a = v.if_array();
    if (!a) return error{errc::format_error, "the feedback message is not a JSON array"};
    std::vector<feedback_record> out;
    out.reserve(a->size());
    for (const auto& e : *a) {
        const auto* o = e.if_object();
        if (!o) return error{errc::format_error, "a feedback record is not a JSON object"};
        feedback_record r;
        r.original_message_id = str(*o, "originalMessageId");
        r.status_code = str(*o, "statusCode");
        r.description = str(*o, "description");
        r.device_id = str(*o, "deviceId");
        r.module_id = str(*o, "moduleId");
        r.device_generation_id = str(*o, "deviceGenerationId");
        r.enqueued_time_utc = str(*o, "enqueuedTimeUtc");
        out.push_back(std::move(r));
    }
    return out;
}

result<purge_result> purge_from_json(const boost::json::value& v) {
    const auto* o = v.if_object();
    if (!o || !o->contains("totalMessagesPurged"))
        return error{errc::format_error, "the hub's purge answer has no totalMessagesPurged"};
    purge_result r;
    r.total_messages_purged = num(*o, "totalMessagesPurged");
    r.device_id = str(*o, "deviceId");
    r.module_id = str(*o, "moduleId");
    return r;
}

}  // namespace twinhub::client

namespace twinhub {

std::int64_t device_twin::desired_version() const {
    if (const auto* v = desired.if_contains("$version"))
        if (v->is_int64()) return v->as_int64();
    return 0;
}

std::int64_t device_twin::reported_version() const {
    if (const auto* v = reported.if_contains("$version"))
        if (v->is_int64()) return v->as_int64();
    return 0;
}

}  // namespace twinhub
