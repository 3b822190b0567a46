// Twin documents: service and device writes, the views, the twin etag and the storage round trip.
#include "twin/twin_document.hpp"

#include "common/encoding.hpp"
#include "twin/merge_patch.hpp"
#include "twin/twin_limits.hpp"

#include <boost/json.hpp>

namespace twinhub::twin {
namespace json = boost::json;
namespace {

constexpr std::int64_t storage_version = 1;

error invalid(std::string m) { return error{errc::invalid_argument, std::move(m)}; }

// One section write requested by a service body: absent, clear (null) or a patch.
struct section_write {
    bool present = false;
    json::object patch;  // empty for a clear; read-only root keys removed
    bool clear = false;
};

result<section_write> read_section(const json::value* v, std::string_view path) {
    section_write w;
    if (!v) return w;
    w.present = true;
    if (v->is_null()) {
        w.clear = true;
        return w;
    }
    if (!v->is_object()) {
        return invalid("Invalid value for '" + std::string(path) + "': expected a JSON object or null.");
    }
    w.patch = without_read_only_keys(v->get_object());
    if (auto r = validate_patch(w.patch, path); !r) return r.error();
    return w;
}

struct service_body {
    section_write tags;
    section_write desired;
};

// Reads {"tags":..., "properties":{"desired":...,"reported":...}}; other top-level keys (deviceId,
// etag, status, ... of a twin read back by a client) are ignored, as the hub does.
result<service_body> read_service_body(const json::value& body, bool reject_reported) {
    if (!body.is_object()) return invalid("The twin body must be a JSON object.");
    const auto& o = body.get_object();
    service_body b;
    auto tags = read_section(o.if_contains("tags"), "tags");
    if (!tags) return tags.error();
    b.tags = std::move(*tags);
    if (const auto* props = o.if_contains("properties"); props && !props->is_null()) {
        if (!props->is_object()) return invalid("Invalid value for 'properties': expected a JSON object.");
        const auto& p = props->get_object();
        if (reject_reported && p.contains("reported")) {
            return invalid("Reported properties cannot be written by the service ('properties.reported'); "
                           "only devices and modules update them.");
        }
        auto desired = read_section(p.if_contains("desired"), "properties.desired");
        if (!desired) return desired.error();
        b.desired = std::move(*desired);
    }
    return b;
}

json::object root_metadata(const metadata_stamp& s) {
    json::object m;
    stamp_node(m, s);
    return m;
}

// Applies the service body to doc; `replace` = PUT semantics (sections replaced wholesale).
result<service_write_result> apply_service(twin_document& doc, const json::value& body, time_point t, bool replace) {
    auto b = read_service_body(body, !replace);
    if (!b) return b.error();
    if (!b->tags.present && !b->desired.present) return service_write_result{};

    std::string when = format_time(t);
    json::object tags = doc.tags;
    if (b->tags.present) {
        if (b->tags.clear || replace) tags = json::object();
        merge_patch(tags, nullptr, b->tags.patch, {when, std::nullopt});
        if (auto r = check_section_size(tags, "tags", max_tags_bytes); !r) return r.error();
    }

    service_write_result out;
    json::object desired;
    json::object desired_meta;
    std::int64_t desired_version = doc.desired_version;
    if (b->desired.present) {
        desired_version = doc.desired_version + 1;
        metadata_stamp stamp{when, desired_version};
        if (b->desired.clear || replace) {
            // Every old key is removed; the root node records the write.
            desired_meta = root_metadata(stamp);
        } else {
            desired = doc.desired;
            desired_meta = doc.desired_metadata;
        }
        merge_patch(desired, &desired_meta, b->desired.patch, stamp);
        if (auto r = check_section_size(desired, "properties.desired", max_properties_bytes); !r) return r.error();
        desired_change change;
        change.patch = diff(doc.desired, desired);
        change.patch["$version"] = desired_version;
        change.version = desired_version;
        out.desired = std::move(change);
    }

    // Commit: nothing above touched doc.
    if (b->tags.present) doc.tags = std::move(tags);
    if (b->desired.present) {
        doc.desired = std::move(desired);
        doc.desired_metadata = std::move(desired_meta);
        doc.desired_version = desired_version;
    }
    ++doc.etag;
    ++doc.version;
    return out;
}

json::object section_json(const json::object& data, const json::object* meta, std::int64_t version) {
    json::object o = data;
    if (meta) o["$metadata"] = *meta;
    o["$version"] = version;
    return o;
}

}  // namespace

twin_document new_twin(time_point t) {
    twin_document d;
    std::string when = format_time(t);
    d.desired_metadata["$lastUpdated"] = when;
    d.reported_metadata["$lastUpdated"] = when;
    return d;
}

std::string etag_to_string(std::uint64_t etag) {
    std::string bytes(8, '\0');
    for (int i = 7; i >= 0; --i) {
        bytes[i] = static_cast<char>(etag & 0xFF);
        etag >>= 8;
    }
    return base64_encode(bytes);
}

result<service_write_result> apply_service_patch(twin_document& doc, const json::value& body, time_point t) {
    return apply_service(doc, body, t, false);
}

result<service_write_result> apply_service_replace(twin_document& doc, const json::value& body, time_point t) {
    return apply_service(doc, body, t, true);
}

result<void> apply_reported_patch(twin_document& doc, const json::value& patch, time_point t) {
    if (!patch.is_object()) return invalid("The reported properties patch must be a JSON object.");
    json::object clean = without_read_only_keys(patch.get_object());
    if (auto r = validate_patch(clean, "properties.reported"); !r) return r;
    json::object reported = doc.reported;
    json::object meta = doc.reported_metadata;
    merge_patch(reported, &meta, clean, {format_time(t), std::nullopt});
    if (auto r = check_section_size(reported, "properties.reported", max_properties_bytes); !r) return r;
    doc.reported = std::move(reported);
    doc.reported_metadata = std::move(meta);
    ++doc.reported_version;
    ++doc.version;
    return {};
}

result<void> apply_reported_patch_in_place(twin_document& doc, const json::value& patch, time_point t) {
    if (!patch.is_object()) return invalid("The reported properties patch must be a JSON object.");
    const json::object& given = patch.get_object();
    json::object cleaned;
    const json::object* clean = &given;
    if (given.contains("$metadata") || given.contains("$version")) {
        cleaned = without_read_only_keys(given);
        clean = &cleaned;
    }
    if (auto r = validate_patch(*clean, "properties.reported"); !r) return r;
    merge_patch(doc.reported, &doc.reported_metadata, *clean, {format_time(t), std::nullopt});
    if (auto r = check_section_size(doc.reported, "properties.reported", max_properties_bytes); !r) return r;
    ++doc.reported_version;
    ++doc.version;
    return {};
}

json::object properties_json(const twin_document& doc) {
    json::object o;
    o["desired"] = section_json(doc.desired, &doc.desired_metadata, doc.desired_version);
    o["reported"] = section_json(doc.reported, &doc.reported_metadata, doc.reported_version);
    return o;
}

json::object device_view(const twin_document& doc) {
    json::object o;
    o["desired"] = section_json(doc.desired, nullptr, doc.desired_version);
    o["reported"] = section_json(doc.reported, nullptr, doc.reported_version);
    return o;
}

json::object to_storage_json(const twin_document& doc) {
    json::object o;
    o["v"] = storage_version;
    o["tags"] = doc.tags;
    o["desired"] = doc.desired;
    o["reported"] = doc.reported;
    o["desired_metadata"] = doc.desired_metadata;
    o["reported_metadata"] = doc.reported_metadata;
    o["desired_version"] = doc.desired_version;
    o["reported_version"] = doc.reported_version;
    o["etag"] = doc.etag;
    o["version"] = doc.version;
    o["model_id"] = doc.model_id;
    if (!doc.configurations.empty()) o["configurations"] = doc.configurations;
    return o;
}

std::string to_storage_text(const twin_document& doc) {
    // Same members in the same order as to_storage_json; boost::json's serializer writes each
    // section exactly as it does when the section is nested in that object.
    std::string out;
    out.reserve(1024);  // most twins fit: one allocation
    json::serializer sr;
    char buf[4096];
    auto put = [&](const auto& v) {
        sr.reset(&v);
        while (!sr.done()) out.append(sr.read(buf));
    };
    auto put_int = [&](std::int64_t v) { out.append(std::to_string(v)); };
    out.append("{\"v\":");
    put_int(storage_version);
    out.append(",\"tags\":");
    put(doc.tags);
    out.append(",\"desired\":");
    put(doc.desired);
    out.append(",\"reported\":");
    put(doc.reported);
    out.append(",\"desired_metadata\":");
    put(doc.desired_metadata);
    out.append(",\"reported_metadata\":");
    put(doc.reported_metadata);
    out.append(",\"desired_version\":");
    put_int(doc.desired_version);
    out.append(",\"reported_version\":");
    put_int(doc.reported_version);
    out.append(",\"etag\":");
    out.append(std::to_string(doc.etag));
    out.append(",\"version\":");
    put_int(doc.version);
    out.append(",\"model_id\":");
    sr.reset(json::string_view(doc.model_id));
    while (!sr.done()) out.append(sr.read(buf));
    if (!doc.configurations.empty()) {
        out.append(",\"configurations\":");
        put(doc.configurations);
    }
    out.push_back('}');
    return out;
}

result<twin_document> from_storage_json(const json::value& v) {
    auto corrupt = [](std::string why) { return error{errc::corrupt_data, "Stored twin record is corrupt: " + why + "."}; };
    if (!v.is_object()) return corrupt("not an object");
    const auto& o = v.get_object();
    auto object_field = [&](const char* key, json::object& out) -> result<void> {
        const auto* f = o.if_contains(key);
        if (!f || !f->is_object()) return corrupt(std::string("field '") + key + "' is missing or not an object");
        out = f->get_object();
        return {};
    };
    auto int_field = [&](const char* key, std::int64_t& out) -> result<void> {
        const auto* f = o.if_contains(key);
        if (!f || !f->is_int64()) {
            if (f && f->is_uint64() && f->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
                out = static_cast<std::int64_t>(f->get_uint64());
                return {};
            }
            return corrupt(std::string("field '") + key + "' is missing or not an integer");
        }
        out = f->get_int64();
        return {};
    };
    std::int64_t ver = 0;
    if (auto r = int_field("v", ver); !r) return r.error();
    if (ver != storage_version) return corrupt("unsupported storage version " + std::to_string(ver));

    twin_document d;
    for (auto [key, field] : {std::pair{"tags", &d.tags}, {"desired", &d.desired}, {"reported", &d.reported},
                              {"desired_metadata", &d.desired_metadata}, {"reported_metadata", &d.reported_metadata}}) {
        if (auto r = object_field(key, *field); !r) return r.error();
    }
    if (auto r = int_field("desired_version", d.desired_version); !r) return r.error();
    if (auto r = int_field("reported_version", d.reported_version); !r) return r.error();
    if (auto r = int_field("version", d.version); !r) return r.error();
    const auto* etag = o.if_contains("etag");
    if (etag && etag->is_uint64()) d.etag = etag->get_uint64();
    else if (etag && etag->is_int64() && etag->get_int64() >= 0) d.etag = static_cast<std::uint64_t>(etag->get_int64());
    else return corrupt("field 'etag' is missing or not an unsigned integer");
    const auto* model = o.if_contains("model_id");
    if (!model || !model->is_string()) return corrupt("field 'model_id' is missing or not a string");
    d.model_id = std::string(model->get_string());
    if (const auto* c = o.if_contains("configurations")) {
        if (!c->is_object()) return corrupt("field 'configurations' is not an object");
        d.configurations = c->get_object();
    }
    return d;
}

}  // namespace twinhub::twin
