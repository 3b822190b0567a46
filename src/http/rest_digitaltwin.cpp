// IoT Plug and Play digital twins on the REST head (what azure-iothub's DigitalTwinClient sends),
// a view of the device twin in the PnP convention:
//   GET   /digitaltwins/{id}  {"$dtId", "$metadata": {"$model", <prop>: {lastUpdateTime, desiredValue,
//         desiredVersion, ackVersion, ackCode, ackDescription}}, <root properties>, <component>:
//         {"$metadata": {...}, <properties>}} with ETag. A component is a reported or desired object
//         marked "__t": "c"; a reported {"value", "ac", "av", "ad"} object is a writable property's ack.
//   PATCH /digitaltwins/{id}  JSON Patch [{"op": "add"|"replace"|"remove", "path": "/p" | "/comp/p" |
//         "/comp", "value"}] -> one desired properties patch (If-Match honoured); 202 with ETag.
//   POST  /digitaltwins/{id}[/components/{c}]/commands/{name}?connectTimeoutInSeconds&responseTimeoutInSeconds
//         -> direct method `name` (`c*name` for a component); 200 with the device's payload, headers
//         x-ms-command-statuscode and x-ms-request-id.
#include "http/rest_api.hpp"

#include "common/encoding.hpp"
#include "http/error_body.hpp"
#include "http/request_target.hpp"
#include "http/route.hpp"
#include "methods/method_invocation.hpp"
#include "methods/method_router.hpp"
#include "registry/identity.hpp"
#include "service/hub_service.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>

namespace twinhub::http {

namespace json = boost::json;

namespace {

bool is_component(const json::value& v) {
    if (!v.is_object()) return false;
    auto* t = v.get_object().if_contains("__t");
    return t && t->is_string() && t->get_string() == "c";
}

std::string last_updated(const json::object* metadata, std::string_view name) {
    if (!metadata) return {};
    auto* m = metadata->if_contains(name);
    if (!m || !m->is_object()) return {};
    auto* t = m->get_object().if_contains("$lastUpdated");
    return t && t->is_string() ? std::string(t->get_string()) : std::string();
}

const json::object* object_at(const json::object* o, std::string_view k) {
    if (!o) return nullptr;
    auto* v = o->if_contains(k);
    return v && v->is_object() ? &v->get_object() : nullptr;
}

// One level (the root or a component) of the digital twin from the twin's reported and desired
// objects at that level and their $metadata trees.
json::object dt_level(const json::object* reported, const json::object* reported_md, const json::object* desired,
                      const json::object* desired_md, std::int64_t desired_version, bool root,
                      json::object& root_out) {
    json::object out, metadata;
    auto skip = [&](std::string_view k) { return k.starts_with("$") || k == "__t"; };
    if (reported)
        for (auto& [k, v] : *reported) {
            if (skip(k) || (root && is_component(v))) continue;
            json::object md;
            if (auto t = last_updated(reported_md, k); !t.empty()) md["lastUpdateTime"] = t;
            if (v.is_object() && v.get_object().contains("value") && v.get_object().contains("ac")) {
                auto& a = v.get_object();
                out[k] = a.at("value");
                md["ackCode"] = a.at("ac");
                if (auto* av = a.if_contains("av")) md["ackVersion"] = *av;
                if (auto* ad = a.if_contains("ad")) md["ackDescription"] = *ad;
            } else {
                out[k] = v;
            }
            metadata[k] = std::move(md);
        }
    if (desired)
        for (auto& [k, v] : *desired) {
            if (skip(k) || (root && is_component(v))) continue;
            json::object& md = metadata[k].is_object() ? metadata[k].get_object() : (metadata[k] = json::object()).get_object();
            md["desiredValue"] = v;
            md["desiredVersion"] = desired_version;
            if (!md.contains("lastUpdateTime"))
                if (auto t = last_updated(desired_md, k); !t.empty()) md["lastUpdateTime"] = t;
        }
    if (root) {
        root_out = std::move(out);
        return metadata;
    }
    out["$metadata"] = std::move(metadata);
    return out;
}

json::object digital_twin_of(const std::string& id, const json::object& twin) {
    const json::object* props = object_at(&twin, "properties");
    const json::object* reported = object_at(props, "reported");
    const json::object* desired = object_at(props, "desired");
    const json::object* rmd = object_at(reported, "$metadata");
    const json::object* dmd = object_at(desired, "$metadata");
    std::int64_t dver = 0;
    if (desired)
        if (auto* v = desired->if_contains("$version"); v && v->is_int64()) dver = v->get_int64();
    json::object out;
    json::object root_values;
    json::object metadata = dt_level(reported, rmd, desired, dmd, dver, true, root_values);
    std::string model;
    if (auto* m = twin.if_contains("modelId"); m && m->is_string()) model = std::string(m->get_string());
    json::object head;
    head["$dtId"] = id;
    json::object md;
    md["$model"] = model;
    for (auto& [k, v] : metadata) md[k] = v;
    // Components: reported or desired objects marked "__t": "c".
    json::object components;
    for (const json::object* side : {reported, desired}) {
        if (!side) continue;
        for (auto& [k, v] : *side) {
            if (k.starts_with("$") || !is_component(v) || components.contains(k)) continue;
            json::object unused;
            components[k] = dt_level(object_at(reported, k), object_at(rmd, k), object_at(desired, k), object_at(dmd, k),
                                     dver, false, unused);
        }
    }
    out["$dtId"] = id;
    out["$metadata"] = std::move(md);
    for (auto& [k, v] : root_values) out[k] = v;
    for (auto& [k, v] : components) out[k] = v;
    return out;
}

// "/a/b" -> {"a", "b"}; "~1" and "~0" unescaped (RFC 6901).
std::optional<std::vector<std::string>> pointer(std::string_view p) {
    if (p.empty() || p.front() != '/') return std::nullopt;
    std::vector<std::string> out;
    std::size_t i = 1;
    while (true) {
        auto j = p.find('/', i);
        std::string seg(p.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
        std::string un;
        for (std::size_t k = 0; k < seg.size(); ++k) {
            if (seg[k] == '~' && k + 1 < seg.size() && (seg[k + 1] == '0' || seg[k + 1] == '1')) {
                un += seg[k + 1] == '0' ? '~' : '/';
                ++k;
            } else {
                un += seg[k];
            }
        }
        if (un.empty()) return std::nullopt;
        out.push_back(std::move(un));
        if (j == std::string_view::npos) break;
        i = j + 1;
    }
    return out;
}

// The desired properties patch of a JSON Patch document.
result<json::object> desired_patch_of(const json::value& doc) {
    if (!doc.is_array() || doc.get_array().empty())
        return error{errc::invalid_argument, "The digital twin patch must be a non-empty JSON Patch array."};
    json::object desired;
    for (auto& op : doc.get_array()) {
        if (!op.is_object()) return error{errc::invalid_argument, "Each patch operation must be a JSON object."};
        auto& o = op.get_object();
        auto* kind = o.if_contains("op");
        auto* path = o.if_contains("path");
        if (!kind || !kind->is_string() || !path || !path->is_string())
            return error{errc::invalid_argument, "Each patch operation needs op and path strings."};
        const std::string k(kind->get_string());
        if (k != "add" && k != "replace" && k != "remove")
            return error{errc::invalid_argument, "Patch operation '" + k + "' is not supported; use add, replace or remove."};
        auto segs = pointer(std::string_view(path->get_string()));
        if (!segs) return error{errc::invalid_argument, "The patch path '" + std::string(path->get_string()) + "' is not a JSON pointer."};
        for (auto& s : *segs)
            if (s.starts_with("$"))
                return error{errc::invalid_argument, "The patch path '" + std::string(path->get_string()) + "' names metadata."};
        json::value value = nullptr;
        if (k != "remove") {
            auto* v = o.if_contains("value");
            if (!v) return error{errc::invalid_argument, "Patch operation '" + k + "' needs a value."};
            value = *v;
        }
        // A whole component added: its properties, marked as a component.
        if (segs->size() == 1 && k == "add" && value.is_object() && !desired.contains((*segs)[0])) {
            json::object comp = value.get_object();
            comp.erase("$metadata");
            comp["__t"] = "c";
            value = std::move(comp);
        }
        json::object* at = &desired;
        for (std::size_t i = 0; i + 1 < segs->size(); ++i) {
            json::value& next = (*at)[(*segs)[i]];
            if (!next.is_object()) {
                next = json::object();
                if (i == 0 && segs->size() == 2) next.get_object()["__t"] = "c";
            }
            at = &next.get_object();
        }
        (*at)[segs->back()] = std::move(value);
    }
    return desired;
}

std::chrono::seconds timeout_param(const request_target& t, std::string_view name, std::chrono::seconds dflt,
                                   std::chrono::seconds lo, std::chrono::seconds hi, std::optional<error>& bad) {
    auto v = t.query_value(name);
    if (!v || v->empty()) return dflt;
    long n = -1;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || p != v->data() + v->size() || n < lo.count() || n > hi.count()) {
        bad = error{errc::invalid_argument, std::string(name) + " must be an integer from " + std::to_string(lo.count()) +
                                                " to " + std::to_string(hi.count()) + "."};
        return dflt;
    }
    return std::chrono::seconds(n);
}

}  // namespace

void rest_api::handle_digital_twin(const route& r, const rest_request& req, completion done) const {
    auto fail = [&done](error e) { done(error_response(e)); };
    if (auto ok = registry::validate_id(r.device_id, "deviceId"); !ok) return fail(ok.error());
    store::identity_key key{r.device_id, {}};
    if (r.kind == route_kind::digital_twin && r.method == http_method::get) {
        auto t = hub_.get_twin(key);
        if (!t) return fail(t.error());
        rest_response out;
        out.body = json::serialize(digital_twin_of(r.device_id, *t));
        if (auto* e = t->if_contains("etag"); e && e->is_string())
            out.headers.emplace_back("ETag", "\"" + std::string(e->get_string()) + "\"");
        return done(std::move(out));
    }
    if (r.kind == route_kind::digital_twin) {
        boost::system::error_code ec;
        auto doc = json::parse(req.body, ec);
        if (ec) return fail(error{errc::format_error, "The request body is not valid JSON (" + ec.message() + ")."});
        auto desired = desired_patch_of(doc);
        if (!desired) return fail(desired.error());
        json::object body;
        json::object props;
        props["desired"] = std::move(*desired);
        body["properties"] = std::move(props);
        std::string if_match = req.if_match.value_or(std::string());
        hub_.patch_twin(std::move(key), json::value(std::move(body)), std::move(if_match),
                        [done](result<json::object> t) {
                            if (!t) return done(error_response(t.error()));
                            rest_response out;
                            out.status = 202;
                            if (auto* e = t->if_contains("etag"); e && e->is_string())
                                out.headers.emplace_back("ETag", "\"" + std::string(e->get_string()) + "\"");
                            done(std::move(out));
                        });
        return;
    }
    // A command: a direct method.
    if (methods_ == nullptr) return fail(error{errc::not_found, "Direct methods are not served by this hub."});
    auto target = parse_request_target(req.target);
    if (!target) return fail(target.error());
    std::optional<error> bad;
    const auto response_timeout = timeout_param(*target, "responseTimeoutInSeconds", methods::default_response_timeout,
                                                methods::min_response_timeout, methods::max_response_timeout, bad);
    const auto connect_timeout = timeout_param(*target, "connectTimeoutInSeconds", methods::default_connect_timeout,
                                               std::chrono::seconds(0), methods::max_connect_timeout, bad);
    if (bad) return fail(*bad);
    std::string name = r.component.empty() ? r.command : r.component + "*" + r.command;
    if (auto ok = methods::validate_method_name(r.command); !ok) return fail(ok.error());
    std::string payload = "null";
    if (req.body.find_first_not_of(" \t\r\n") != std::string::npos) {
        boost::system::error_code ec;
        auto v = json::parse(req.body, ec);
        if (ec) return fail(error{errc::format_error, "The command payload is not valid JSON (" + ec.message() + ")."});
        payload = json::serialize(v);
    }
    if (payload.size() > methods::max_payload_size)
        return fail(error{errc::message_too_large, "The command payload is over 128 KB."});
    if (auto known = hub_.credentials(key); !known) return fail(known.error());
    methods::invoke_options o;
    o.response_timeout = response_timeout;
    o.connect_timeout = connect_timeout;
    methods_->invoke(std::move(key), std::move(name), std::move(payload), o,
                     [done, response_timeout, connect_timeout](result<methods::method_response> res) {
                         if (!res)
                             return done(method_error_response(
                                 res.error(), res.error().code == errc::device_not_online ? connect_timeout : response_timeout));
                         rest_response out;
                         out.body = res->payload.empty() ? "null" : res->payload;
                         out.headers.emplace_back("x-ms-command-statuscode", std::to_string(res->status));
                         out.headers.emplace_back("x-ms-request-id", random_hex(16));
                         done(std::move(out));
                     });
}

}  // namespace twinhub::http
