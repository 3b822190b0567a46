// Storage JSON of identities: every field, times as integer nanoseconds since the Unix epoch so the
// round trip is exact. The layout is private to twinhub's stores; "v" versions it.
#include "registry/identity.hpp"

#include <boost/json.hpp>

namespace twinhub::registry {
namespace json = boost::json;
namespace {

constexpr std::int64_t storage_version = 1;

json::value time_value(const std::optional<time_point>& t) {
    if (!t) return nullptr;
    return static_cast<std::int64_t>(t->time_since_epoch().count());
}

json::value opt_value(const std::optional<std::string>& s) { return s ? json::value(*s) : json::value(nullptr); }

json::object auth_storage(const authentication_mechanism& a) {
    json::object o;
    o["type"] = to_string(a.type);
    o["primary_key"] = a.symmetric_key.primary_key;
    o["secondary_key"] = a.symmetric_key.secondary_key;
    o["primary_thumbprint"] = opt_value(a.x509_thumbprint.primary_thumbprint);
    o["secondary_thumbprint"] = opt_value(a.x509_thumbprint.secondary_thumbprint);
    return o;
}

// Typed readers that fail with corrupt_data naming the field.
class reader {
public:
    reader(const json::value& v, const char* what) : what_(what) {
        if (v.is_object()) obj_ = &v.get_object();
        else fail("not an object");
    }
    reader(const json::object* o, const char* what) : obj_(o), what_(what) {}

    bool ok() const { return !err_; }
    const error& err() const { return *err_; }

    const json::value* get(const char* key) {
        if (err_) return nullptr;
        auto* v = obj_->if_contains(key);
        if (!v) fail(std::string("missing field '") + key + "'");
        return v;
    }
    std::string str(const char* key) {
        auto* v = get(key);
        if (!v) return {};
        if (!v->is_string()) { fail(std::string("field '") + key + "' is not a string"); return {}; }
        return std::string(v->get_string());
    }
    std::optional<std::string> opt_str(const char* key) {
        auto* v = get(key);
        if (!v || v->is_null()) return std::nullopt;
        if (!v->is_string()) { fail(std::string("field '") + key + "' is not a string"); return std::nullopt; }
        return std::string(v->get_string());
    }
    std::int64_t i64(const char* key) {
        auto* v = get(key);
        if (!v) return 0;
        if (v->is_int64()) return v->get_int64();
        if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
            return static_cast<std::int64_t>(v->get_uint64());
        fail(std::string("field '") + key + "' is not an integer");
        return 0;
    }
    std::uint64_t u64(const char* key) {
        auto* v = get(key);
        if (!v) return 0;
        if (v->is_uint64()) return v->get_uint64();
        if (v->is_int64() && v->get_int64() >= 0) return static_cast<std::uint64_t>(v->get_int64());
        fail(std::string("field '") + key + "' is not an unsigned integer");
        return 0;
    }
    bool boolean(const char* key) {
        auto* v = get(key);
        if (!v) return false;
        if (!v->is_bool()) { fail(std::string("field '") + key + "' is not a boolean"); return false; }
        return v->get_bool();
    }
    std::optional<time_point> time(const char* key) {
        auto* v = get(key);
        if (!v || v->is_null()) return std::nullopt;
        if (!v->is_int64()) { fail(std::string("field '") + key + "' is not a time"); return std::nullopt; }
        return time_point(std::chrono::nanoseconds(v->get_int64()));
    }
    const json::object* object(const char* key) {
        auto* v = get(key);
        if (!v) return nullptr;
        if (!v->is_object()) { fail(std::string("field '") + key + "' is not an object"); return nullptr; }
        return &v->get_object();
    }
    void fail(std::string why) {
        if (!err_) err_ = error{errc::corrupt_data, std::string("Stored ") + what_ + " record is corrupt: " + why + "."};
    }

private:
    const json::object* obj_ = nullptr;
    const char* what_;
    std::optional<error> err_;
};

authentication_mechanism read_auth(reader& r) {
    authentication_mechanism a;
    const json::object* o = r.object("authentication");
    if (!o) return a;
    reader ar(o, "identity authentication");
    auto type = ar.str("type");
    a.symmetric_key.primary_key = ar.str("primary_key");
    a.symmetric_key.secondary_key = ar.str("secondary_key");
    a.x509_thumbprint.primary_thumbprint = ar.opt_str("primary_thumbprint");
    a.x509_thumbprint.secondary_thumbprint = ar.opt_str("secondary_thumbprint");
    if (!ar.ok()) { r.fail(ar.err().message); return a; }
    if (auto t = parse_auth_type(type)) a.type = *t;
    else r.fail("unknown authentication type '" + type + "'");
    return a;
}

connection_state read_connection_state(reader& r) {
    auto s = r.str("connection_state");
    if (s == "Connected") return connection_state::connected;
    if (s != "Disconnected" && r.ok()) r.fail("unknown connection state '" + s + "'");
    return connection_state::disconnected;
}

void check_version(reader& r) {
    auto v = r.i64("v");
    if (r.ok() && v != storage_version) r.fail("unsupported storage version " + std::to_string(v));
}

}  // namespace

json::object to_storage_json(const device_identity& d) {
    json::object o;
    o["v"] = storage_version;
    o["device_id"] = d.device_id;
    o["generation_id"] = d.generation_id;
    o["etag"] = d.etag;
    o["status"] = to_string(d.status);
    o["status_reason"] = opt_value(d.status_reason);
    o["status_updated_time"] = time_value(d.status_updated_time);
    o["connection_state"] = to_string(d.connection_state);
    o["connection_state_updated_time"] = time_value(d.connection_state_updated_time);
    o["last_activity_time"] = time_value(d.last_activity_time);
    o["cloud_to_device_message_count"] = d.cloud_to_device_message_count;
    o["authentication"] = auth_storage(d.authentication);
    o["iot_edge"] = d.iot_edge;
    o["device_scope"] = opt_value(d.device_scope);
    json::array ps;
    for (const auto& s : d.parent_scopes) ps.emplace_back(s);
    o["parent_scopes"] = std::move(ps);
    return o;
}

json::object to_storage_json(const module_identity& m) {
    json::object o;
    o["v"] = storage_version;
    o["device_id"] = m.device_id;
    o["module_id"] = m.module_id;
    o["managed_by"] = m.managed_by;
    o["generation_id"] = m.generation_id;
    o["etag"] = m.etag;
    o["connection_state"] = to_string(m.connection_state);
    o["connection_state_updated_time"] = time_value(m.connection_state_updated_time);
    o["last_activity_time"] = time_value(m.last_activity_time);
    o["cloud_to_device_message_count"] = m.cloud_to_device_message_count;
    o["authentication"] = auth_storage(m.authentication);
    return o;
}

result<device_identity> device_from_storage_json(const json::value& v) {
    reader r(v, "device");
    check_version(r);
    device_identity d;
    d.device_id = r.str("device_id");
    d.generation_id = r.str("generation_id");
    d.etag = r.u64("etag");
    auto status = r.str("status");
    if (status == "disabled") d.status = device_status::disabled;
    else if (status != "enabled" && r.ok()) r.fail("unknown status '" + status + "'");
    d.status_reason = r.opt_str("status_reason");
    d.status_updated_time = r.time("status_updated_time");
    d.connection_state = read_connection_state(r);
    d.connection_state_updated_time = r.time("connection_state_updated_time");
    d.last_activity_time = r.time("last_activity_time");
    d.cloud_to_device_message_count = r.i64("cloud_to_device_message_count");
    d.authentication = read_auth(r);
    d.iot_edge = r.boolean("iot_edge");
    d.device_scope = r.opt_str("device_scope");
    if (auto* ps = r.get("parent_scopes")) {
        if (!ps->is_array()) r.fail("field 'parent_scopes' is not an array");
        else
            for (const auto& e : ps->get_array()) {
                if (!e.is_string()) { r.fail("field 'parent_scopes' holds a non-string"); break; }
                d.parent_scopes.emplace_back(e.get_string());
            }
    }
    if (!r.ok()) return r.err();
    return d;
}

result<module_identity> module_from_storage_json(const json::value& v) {
    reader r(v, "module");
    check_version(r);
    module_identity m;
    m.device_id = r.str("device_id");
    m.module_id = r.str("module_id");
    m.managed_by = r.str("managed_by");
    m.generation_id = r.str("generation_id");
    m.etag = r.u64("etag");
    m.connection_state = read_connection_state(r);
    m.connection_state_updated_time = r.time("connection_state_updated_time");
    m.last_activity_time = r.time("last_activity_time");
    m.cloud_to_device_message_count = r.i64("cloud_to_device_message_count");
    m.authentication = read_auth(r);
    if (!r.ok()) return r.err();
    return m;
}

}  // namespace twinhub::registry
