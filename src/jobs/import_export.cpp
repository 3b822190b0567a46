#include "jobs/import_export.hpp"

#include "common/text.hpp"
#include "service/file_upload_service.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace twinhub::jobs {

namespace json = boost::json;

std::string_view to_string(ie_type t) noexcept { return t == ie_type::import_devices ? "import" : "export"; }

std::string_view to_string(ie_status s) noexcept {
    switch (s) {
    case ie_status::enqueued: return "enqueued";
    case ie_status::running: return "running";
    case ie_status::completed: return "completed";
    case ie_status::failed: return "failed";
    case ie_status::cancelled: return "cancelled";
    }
    return "unknown";
}

bool is_terminal(ie_status s) noexcept {
    return s == ie_status::completed || s == ie_status::failed || s == ie_status::cancelled;
}

namespace {

std::optional<ie_status> parse_status(std::string_view s) {
    for (auto st : {ie_status::enqueued, ie_status::running, ie_status::completed, ie_status::failed, ie_status::cancelled})
        if (to_string(st) == s) return st;
    return std::nullopt;
}

const json::value* field(const json::object& o, std::string_view name) {
    auto* v = o.if_contains(name);
    return v && !v->is_null() ? v : nullptr;
}

result<std::string> string_field(const json::object& o, std::string_view name, bool required) {
    auto* v = field(o, name);
    if (!v) {
        if (required) return error{errc::invalid_argument, std::string(name) + " is required."};
        return std::string();
    }
    if (!v->is_string()) return error{errc::invalid_argument, std::string(name) + " must be a string."};
    return std::string(v->get_string());
}

result<std::string> blob_name_field(const json::object& o, std::string_view name) {
    auto s = string_field(o, name, false);
    if (!s) return s;
    if (s->empty()) return std::string("devices.txt");
    if (s->size() > 1024 || s->find_first_of("\\?#") != std::string::npos || s->front() == '/')
        return error{errc::invalid_argument, std::string(name) + " is not a valid blob name."};
    return s;
}

std::string quoted_or_empty(const json::object& o, std::string_view name) {
    auto* v = field(o, name);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// Desired properties as a write takes them: without $metadata and $version.
json::object writable(const json::object& props) {
    json::object out;
    for (const auto& [k, v] : props)
        if (k.empty() || k[0] != '$') out[k] = v;
    return out;
}

bool known_mode(std::string_view m) {
    for (std::string_view k : {"create", "createorupdate", "createorupdateifmatchetag", "update", "updateifmatchetag",
                               "updatetwin", "updatetwinifmatchetag", "delete", "deleteifmatchetag"})
        if (m == k) return true;
    return false;
}

}  // namespace

result<container_url> parse_container_url(std::string_view uri, std::string_view field_name) {
    auto bad = [&](std::string why) {
        return error{errc::invalid_argument, std::string(field_name) + " is not a blob container SAS URI: " + why};
    };
    if (uri.substr(0, 8) != "https://") return bad("it must start with https://.");
    auto q = uri.find('?');
    std::string_view path_part = uri.substr(0, q);
    auto slash = path_part.find('/', 8);
    if (slash == std::string_view::npos || slash == 8) return bad("it names no container.");
    while (!path_part.empty() && path_part.back() == '/') path_part.remove_suffix(1);
    if (path_part.size() <= slash + 1) return bad("it names no container.");
    for (char c : uri)
        if (static_cast<unsigned char>(c) <= ' ' || c == '#' || c == '\\') return bad("it contains a space or '#'.");
    container_url out;
    out.base = std::string(path_part);
    if (q != std::string_view::npos) out.sas = std::string(uri.substr(q + 1));
    return out;
}

std::string blob_url(const container_url& c, std::string_view blob) {
    std::string u = c.base + "/" + service::blob_path_encode(blob);
    if (!c.sas.empty()) u += "?" + c.sas;
    return u;
}

result<ie_job> parse_ie_request(const json::value& body) {
    if (!body.is_object()) return error{errc::invalid_argument, "The job request must be a JSON object."};
    const auto& o = body.get_object();
    ie_job j;
    auto type = string_field(o, "type", true);
    if (!type) return type.error();
    const std::string t = ascii_lower(*type);
    if (t == "import") {
        j.type = ie_type::import_devices;
    } else if (t == "export") {
        j.type = ie_type::export_devices;
    } else {
        return error{errc::invalid_argument, "type '" + *type + "' is not supported; use import or export."};
    }
    if (auto a = string_field(o, "storageAuthenticationType", false); !a) {
        return a.error();
    } else if (!a->empty() && ascii_lower(*a) != "keybased") {
        return error{errc::invalid_argument, "storageAuthenticationType '" + *a +
                                                 "' is not supported by this hub; give SAS URIs (keyBased)."};
    }
    auto out = string_field(o, "outputBlobContainerUri", true);
    if (!out) return out.error();
    if (auto c = parse_container_url(*out, "outputBlobContainerUri"); !c) return c.error();
    j.output_uri = std::move(*out);
    auto ob = blob_name_field(o, "outputBlobName");
    if (!ob) return ob.error();
    j.output_blob = std::move(*ob);
    if (j.type == ie_type::import_devices) {
        auto in = string_field(o, "inputBlobContainerUri", true);
        if (!in) return in.error();
        if (auto c = parse_container_url(*in, "inputBlobContainerUri"); !c) return c.error();
        j.input_uri = std::move(*in);
        auto ib = blob_name_field(o, "inputBlobName");
        if (!ib) return ib.error();
        j.input_blob = std::move(*ib);
    } else if (auto* x = field(o, "excludeKeysInExport")) {
        // Node sends the boolean it was given; a string "true"/"false" is what older clients sent.
        if (x->is_bool()) {
            j.exclude_keys = x->get_bool();
        } else if (x->is_string() && (x->get_string() == "true" || x->get_string() == "false")) {
            j.exclude_keys = x->get_string() == "true";
        } else {
            return error{errc::invalid_argument, "excludeKeysInExport must be a boolean."};
        }
    }
    return j;
}

json::object to_json(const ie_job& j) {
    json::object o;
    o["jobId"] = j.job_id;
    o["startTimeUtc"] = j.start_time ? json::value(format_time(*j.start_time)) : json::value(nullptr);
    o["endTimeUtc"] = j.end_time ? json::value(format_time(*j.end_time)) : json::value(nullptr);
    o["type"] = to_string(j.type);
    o["status"] = to_string(j.status);
    o["progress"] = j.progress;
    if (j.type == ie_type::import_devices) {
        o["inputBlobContainerUri"] = j.input_uri;
        o["inputBlobName"] = j.input_blob;
    }
    o["outputBlobContainerUri"] = j.output_uri;
    o["outputBlobName"] = j.output_blob;
    o["excludeKeysInExport"] = j.exclude_keys;
    o["storageAuthenticationType"] = "keyBased";
    o["failureReason"] = j.failure_reason.empty() ? json::value(nullptr) : json::value(j.failure_reason);
    return o;
}

json::object to_stored_json(const ie_job& j) {
    auto o = to_json(j);
    o["seq"] = j.seq;
    return o;
}

result<ie_job> ie_job_from_json(const json::value& v) {
    auto bad = error{errc::corrupt_data, "a stored import/export job could not be read"};
    if (!v.is_object()) return bad;
    const auto& o = v.get_object();
    ie_job j;
    auto s = [&](std::string_view k) { return quoted_or_empty(o, k); };
    j.job_id = s("jobId");
    if (j.job_id.empty()) return bad;
    j.type = s("type") == "import" ? ie_type::import_devices : ie_type::export_devices;
    auto st = parse_status(s("status"));
    if (!st) return bad;
    j.status = *st;
    j.input_uri = s("inputBlobContainerUri");
    j.output_uri = s("outputBlobContainerUri");
    if (auto b = s("inputBlobName"); !b.empty()) j.input_blob = b;
    if (auto b = s("outputBlobName"); !b.empty()) j.output_blob = b;
    if (auto* x = o.if_contains("excludeKeysInExport"); x && x->is_bool()) j.exclude_keys = x->get_bool();
    if (auto* p = o.if_contains("progress"); p && p->is_int64()) j.progress = static_cast<int>(p->get_int64());
    j.start_time = parse_time(s("startTimeUtc"));
    j.end_time = parse_time(s("endTimeUtc"));
    j.failure_reason = s("failureReason");
    if (auto* q = o.if_contains("seq"); q && q->is_number()) j.seq = q->to_number<std::uint64_t>();
    return j;
}

json::object export_device(const registry::device_identity& d, const json::object& twin, bool exclude_keys) {
    auto id = registry::to_json(d);
    json::object o;
    o["id"] = d.device_id;
    o["eTag"] = id["etag"];
    o["status"] = id["status"];
    if (d.status_reason) o["statusReason"] = *d.status_reason;
    json::object auth = id["authentication"].as_object();
    if (exclude_keys) {
        json::object keys;
        keys["primaryKey"] = nullptr;
        keys["secondaryKey"] = nullptr;
        auth["symmetricKey"] = std::move(keys);
    }
    o["authentication"] = std::move(auth);
    if (auto* e = twin.if_contains("etag")) o["twinETag"] = *e;
    if (auto* t = twin.if_contains("tags")) o["tags"] = *t;
    if (auto* p = twin.if_contains("properties")) o["properties"] = *p;
    o["capabilities"] = id["capabilities"];
    if (auto* s = id.if_contains("deviceScope")) o["deviceScope"] = *s;
    if (auto* s = id.if_contains("parentScopes")) o["parentScopes"] = *s;
    return o;
}

std::vector<std::pair<std::size_t, std::string_view>> blob_lines(std::string_view text) {
    std::vector<std::pair<std::size_t, std::string_view>> out;
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 byte order mark
    std::size_t number = 0;
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        ++number;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
        out.emplace_back(number, line);
    }
    return out;
}

result<import_entry> parse_import_line(std::string_view line, std::size_t line_number) {
    const std::string where = "line " + std::to_string(line_number) + ": ";
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    if (ec) return error{errc::format_error, where + "not a JSON object (" + ec.message() + ")."};
    if (!v.is_object()) return error{errc::format_error, where + "not a JSON object."};
    json::object o = std::move(v.get_object());
    import_entry e;
    auto id = string_field(o, "id", true);
    if (!id) return error{errc::invalid_argument, where + id.error().message};
    if (auto ok = registry::validate_id(*id, "id"); !ok) return error{errc::invalid_argument, where + ok.error().message};
    if (auto m = string_field(o, "moduleId", false); !m || !m->empty())
        return error{errc::invalid_argument, where + "module identities are not imported by this hub."};
    auto mode = string_field(o, "importMode", false);
    if (!mode) return error{errc::invalid_argument, where + mode.error().message};
    e.mode_as_sent = mode->empty() ? "createOrUpdate" : *mode;
    e.mode = ascii_lower(e.mode_as_sent);
    if (!known_mode(e.mode))
        return error{errc::invalid_argument, where + "importMode '" + e.mode_as_sent + "' is not supported."};
    auto etag = string_field(o, "eTag", false);
    auto twin_etag = string_field(o, "twinETag", false);
    if (!etag || !twin_etag) return error{errc::invalid_argument, where + "eTag and twinETag must be strings."};
    e.etag = std::move(*etag);
    e.twin_etag = std::move(*twin_etag);
    if ((e.mode == "updateifmatchetag" || e.mode == "deleteifmatchetag" || e.mode == "createorupdateifmatchetag") &&
        e.etag.empty())
        return error{errc::invalid_argument, where + "importMode " + e.mode_as_sent + " needs an eTag."};
    if (e.mode == "updatetwinifmatchetag" && e.twin_etag.empty())
        return error{errc::invalid_argument, where + "importMode " + e.mode_as_sent + " needs a twinETag."};

    // Twin data: tags and desired properties (reported properties belong to the device).
    auto* tags = field(o, "tags");
    auto* props = field(o, "properties");
    if (tags && !tags->is_object()) return error{errc::invalid_argument, where + "tags must be an object."};
    if (props && !props->is_object()) return error{errc::invalid_argument, where + "properties must be an object."};
    const json::value* desired = props ? field(props->get_object(), "desired") : nullptr;
    if (desired && !desired->is_object())
        return error{errc::invalid_argument, where + "properties.desired must be an object."};
    if (tags || desired) {
        json::object t;
        if (tags) t["tags"] = *tags;
        json::object p;
        p["desired"] = desired ? writable(desired->get_object()) : json::object();
        t["properties"] = std::move(p);
        e.twin = std::move(t);
    }
    if (e.mode.rfind("updatetwin", 0) == 0 && !e.twin)
        return error{errc::invalid_argument, where + "importMode " + e.mode_as_sent + " needs tags or properties."};

    const bool writes_identity = e.mode.rfind("create", 0) == 0 || e.mode == "update" || e.mode == "updateifmatchetag";
    if (writes_identity) {
        json::object req;
        req["deviceId"] = *id;
        for (std::string_view k : {"status", "statusReason", "authentication", "capabilities", "deviceScope", "parentScopes"})
            if (auto* f = o.if_contains(k)) req[k] = *f;
        // An exported line with excludeKeysInExport has null keys: new keys, as for empty ones.
        if (auto* a = req.if_contains("authentication"); a && a->is_object()) {
            auto& ao = a->get_object();
            if (!ao.contains("type")) ao["type"] = "sas";
            if (auto* sk = ao.if_contains("symmetricKey"); sk && sk->is_object()) {
                for (std::string_view k : {"primaryKey", "secondaryKey"}) {
                    auto* key = sk->get_object().if_contains(k);
                    if (key && key->is_null()) *key = "";
                }
            }
        }
        auto d = registry::parse_device_request(req);
        if (!d) return error{d.error().code, where + d.error().message};
        e.device = std::move(*d);
    } else {
        e.device.device_id = *id;
    }
    return e;
}

std::string import_error_line(std::string_view device_id, std::string_view error_code, std::string_view message,
                              std::string_view operation) {
    json::object o;
    o["deviceId"] = device_id;
    o["errorCode"] = error_code;
    o["errorStatus"] = message;
    o["moduleId"] = nullptr;
    o["operation"] = operation;
    return json::serialize(o);
}

}  // namespace twinhub::jobs
