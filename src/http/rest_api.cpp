#include "http/rest_api.hpp"

#include "auth/authenticator.hpp"
#include "common/encoding.hpp"
#include "common/error_mapping.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "http/error_body.hpp"
#include "http/request_target.hpp"
#include "http/rest_bulk.hpp"
#include "http/route.hpp"
#include "methods/method_invocation.hpp"
#include "methods/method_router.hpp"
#include "query/query_request.hpp"
#include "registry/identity.hpp"
#include "service/certificate_service.hpp"
#include "service/c2d_service.hpp"
#include "service/hub_service.hpp"
#include "service/metrics.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/stream_parser.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

namespace twinhub::http {

namespace json = boost::json;

namespace {

std::string quoted(std::string_view etag) {
    std::string out = "\"";
    out.append(etag);
    out += '"';
    return out;
}

rest_response json_response(int status, const json::value& v) {
    rest_response r;
    r.status = status;
    r.body = json::serialize(v);
    return r;
}

rest_response device_response(const registry::device_identity& d) {
    rest_response r = json_response(200, registry::to_json(d));
    r.headers.emplace_back("ETag", quoted(registry::etag_to_string(d.etag)));
    return r;
}

rest_response module_response(const registry::module_identity& m) {
    rest_response r = json_response(200, registry::to_json(m));
    r.headers.emplace_back("ETag", quoted(registry::etag_to_string(m.etag)));
    return r;
}

rest_response twin_response(const json::object& twin) {
    rest_response r = json_response(200, twin);
    if (auto* e = twin.if_contains("etag"); e && e->is_string()) {
        r.headers.emplace_back("ETag", quoted(std::string_view(e->get_string())));
    }
    return r;
}

rest_response no_content() {
    rest_response r;
    r.status = 204;
    return r;
}


result<json::object> parse_object_body(std::string_view body, std::string_view what) {
    auto v = parse_body(body);
    if (!v) return v.error();
    if (!v->is_object()) {
        return error{errc::invalid_argument, "The request body must be a JSON object (" + std::string(what) + ")."};
    }
    return std::move(v->get_object());
}

// An id field of a PUT body must be absent (the path's id is used) or a string equal to the path's.
result<void> reconcile_id(json::object& body, std::string_view field, const std::string& path_id) {
    auto* v = body.if_contains(field);
    if (!v || v->is_null()) {
        body[field] = path_id;
        return {};
    }
    if (!v->is_string()) {
        return error{errc::invalid_argument, std::string(field) + " must be a string."};
    }
    if (v->get_string() != path_id) {
        return error{errc::invalid_argument, std::string(field) + " '" + std::string(v->get_string()) +
                                                 "' in the body does not match '" + path_id + "' in the path."};
    }
    return {};
}

// A twin PATCH/PUT body: {"tags": object|null, "properties": {"desired": object|null}}. The twin
// module checks the limits; the shape is checked here so wrong types fail the same way everywhere.
result<void> check_twin_body(const json::object& body) {
    if (auto* t = body.if_contains("tags"); t && !t->is_object() && !t->is_null()) {
        return error{errc::invalid_argument, "tags must be a JSON object or null."};
    }
    if (auto* p = body.if_contains("properties"); p && !p->is_null()) {
        if (!p->is_object()) return error{errc::invalid_argument, "properties must be a JSON object."};
        if (auto* d = p->get_object().if_contains("desired"); d && !d->is_object() && !d->is_null()) {
            return error{errc::invalid_argument, "properties.desired must be a JSON object or null."};
        }
        if (p->get_object().contains("reported")) {
            return error{errc::invalid_argument,
                         "properties.reported cannot be written by the service; only the device reports them."};
        }
    }
    return {};
}

result<std::size_t> parse_top(const request_target& t, std::size_t max) {
    auto v = t.query_value("top");
    if (!v || v->empty()) return max;
    long long n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc{} || p != v->data() + v->size() || n <= 0) {
        return error{errc::invalid_argument, "top must be a positive integer (at most 1000)."};
    }
    return std::min<std::size_t>(static_cast<std::size_t>(n), max);
}



// Adapts a rest_api::completion to a hub_service handler<T> with a formatter for the value.
template <class T, class F>
service::handler<T> complete_with(rest_api::completion done, F format) {
    return [done = std::move(done), format = std::move(format)](result<T> r) {
        if (!r) {
            done(error_response(r.error()));
            return;
        }
        done(format(*r));
    };
}

service::handler<void> complete_void(rest_api::completion done) {
    return [done = std::move(done)](result<void> r) {
        if (!r) {
            done(error_response(r.error()));
            return;
        }
        done(no_content());
    };
}

std::string module_id_of(const registry::device_identity&) { return {}; }
std::string module_id_of(const registry::module_identity& m) { return m.module_id; }

std::string if_match_or_empty(const rest_request& req) { return req.if_match.value_or(std::string()); }

// PUT without If-Match (or with an empty one) is create-only (spec 3.6 rule 1).
bool is_create(const rest_request& req) { return !req.if_match || req.if_match->empty(); }

}  // namespace

// The answer to a direct-method call (spec 3.8): 200 {"status","payload"}, or the error; 404103 and
// 504101 in the body form of the hub's method endpoint (spec 3.11).
static rest_response method_result_response(const result<methods::method_response>& r, const methods::invocation_request& call) {
    if (r) {
        rest_response out;
        out.body = methods::format_invocation_result(r->status, r->payload);
        return out;
    }
    return method_error_response(r.error(),
                                 r.error().code == errc::device_not_online ? call.connect_timeout : call.response_timeout);
}

rest_api::rest_api(service::hub_service& hub, std::vector<std::string> host_names, methods::method_router* methods,
                   query::query_engine* queries, service::c2d_service* c2d)
    : hub_(hub), host_names_(std::move(host_names)), methods_(methods), queries_(queries), c2d_(c2d) {
    if (host_names_.empty()) host_names_.push_back("localhost");
}

void rest_api::handle(rest_request req, completion done) const {
    auto fail = [&done](error e) { done(error_response(e)); };

    auto target = parse_request_target(req.target);
    if (!target) return fail(target.error());
    std::string_view allow;
    auto matched = match_route(req.method, target->segments, &allow);
    if (!matched) {
        rest_response out = error_response(matched.error());
        if (!allow.empty()) out.headers.emplace_back("Allow", std::string(allow));  // RFC 9110 15.5.6
        return done(std::move(out));
    }
    route r = std::move(*matched);

    // Every SDK puts api-version in the query (spec 3.1); IoT Hub answers a request without one with
    // 400 InvalidProtocolVersion. Any non-empty value is accepted: the SDKs send versions from
    // 2016-11-14 to 2021-04-12 and this hub serves one behaviour for all of them.
    if (auto v = target->query_value("api-version"); !v || v->empty()) {
        return fail(error{errc::invalid_protocol_version,
                          "The request has no api-version query parameter; add one, e.g. ?api-version=2021-04-12."});
    }

    // Authorisation (spec 2.6) before the ids and the body are looked at. A device route without a
    // token may be authorised by the TLS client certificate (X.509, spec 5.12).
    if (is_device_route(r.kind) && !req.authorization && !req.client_certificates.empty())
        return handle_device_route(r, req, std::move(done));
    if (!req.authorization || req.authorization->empty()) {
        return fail(error{errc::unauthorized, "The request has no Authorization header; send a service SAS token "
                                              "(SharedAccessSignature sr=...&sig=...&se=...&skn=...)."});
    }
    if (is_device_route(r.kind)) return handle_device_route(r, req, std::move(done));
    {
        auto policies = hub_.policies();
        // A call on one device's resources also accepts a token scoped to that device
        // (sr={host}/devices/{d}, as the C service SDK signs for device-scoped use, spec 2.3).
        std::string resource;
        if (!r.device_id.empty()) {
            resource = "devices/" + r.device_id;
            if (!r.module_id.empty()) resource += "/modules/" + r.module_id;
        }
        auto granted = auth::authorize_service(*req.authorization, host_names_, policies, required_permission(r), now(),
                                               resource);
        if (!granted) return fail(granted.error());
    }

    if (r.kind == route_kind::consumer_groups || r.kind == route_kind::consumer_group)
        return handle_consumer_groups(r, req, std::move(done));
    if (r.kind == route_kind::certificates || r.kind == route_kind::certificate ||
        r.kind == route_kind::certificate_code || r.kind == route_kind::certificate_verify)
        return handle_certificates(r, req, std::move(done));
    if (r.kind == route_kind::job || r.kind == route_kind::job_cancel || r.kind == route_kind::jobs_query)
        return handle_jobs(r, req, std::move(done));
    if (r.kind == route_kind::ie_jobs || r.kind == route_kind::ie_job || r.kind == route_kind::ie_job_create)
        return handle_import_export(r, req, std::move(done));
    if (is_jobs_route(r.kind)) return handle_configurations(r, req, std::move(done));
    if (r.kind == route_kind::digital_twin || r.kind == route_kind::digital_twin_command)
        return handle_digital_twin(r, req, std::move(done));

    if (!r.device_id.empty() || r.kind == route_kind::device || r.kind == route_kind::module) {
        if (auto ok = registry::validate_id(r.device_id, "deviceId"); !ok) return fail(ok.error());
    }
    if (r.kind == route_kind::module || r.kind == route_kind::module_twin || r.kind == route_kind::module_methods ||
        !r.module_id.empty()) {
        if (auto ok = registry::validate_id(r.module_id, "moduleId"); !ok) return fail(ok.error());
    }
    auto with_c2d_count = [this](auto identity) {
        if (c2d_) identity.cloud_to_device_message_count = static_cast<std::int64_t>(
                      c2d_->pending_count(store::identity_key{identity.device_id, module_id_of(identity)}));
        return identity;
    };

    switch (r.kind) {
    case route_kind::devices: {
        if (r.method == http_method::get) {
            auto top = parse_top(*target, max_top);
            if (!top) return fail(top.error());
            json::array arr;
            for (const auto& d : hub_.list_devices(*top)) arr.push_back(registry::to_json(with_c2d_count(d)));
            return done(json_response(200, arr));
        }
        auto entries = parse_bulk(req.body, max_bulk_entries);
        if (!entries) return fail(entries.error());
        hub_.bulk(std::move(*entries), complete_with<service::bulk_result>(std::move(done), [](const service::bulk_result& b) {
                      return json_response(b.is_successful ? 200 : 400, bulk_json(b));
                  }));
        return;
    }
    case route_kind::device: {
        if (r.method == http_method::get) {
            auto d = hub_.get_device(r.device_id);
            if (!d) return fail(d.error());
            return done(device_response(with_c2d_count(*d)));
        }
        if (r.method == http_method::delete_) {
            hub_.delete_device(r.device_id, if_match_or_empty(req), complete_void(std::move(done)));
            return;
        }
        auto body = parse_object_body(req.body, "a device identity");
        if (!body) return fail(body.error());
        if (auto ok = reconcile_id(*body, "deviceId", r.device_id); !ok) return fail(ok.error());
        auto dev = registry::parse_device_request(*body);
        if (!dev) return fail(dev.error());
        auto h = complete_with<registry::device_identity>(std::move(done), device_response);
        if (is_create(req)) {
            hub_.create_device(std::move(*dev), std::move(h));
        } else {
            hub_.update_device(std::move(*dev), *req.if_match, std::move(h));
        }
        return;
    }
    case route_kind::modules: {
        auto mods = hub_.list_modules(r.device_id);
        if (!mods) return fail(mods.error());
        json::array arr;
        for (const auto& m : *mods) arr.push_back(registry::to_json(with_c2d_count(m)));
        return done(json_response(200, arr));
    }
    case route_kind::module: {
        if (r.method == http_method::get) {
            auto m = hub_.get_module(r.device_id, r.module_id);
            if (!m) return fail(m.error());
            return done(module_response(with_c2d_count(*m)));
        }
        if (r.method == http_method::delete_) {
            hub_.delete_module(r.device_id, r.module_id, if_match_or_empty(req), complete_void(std::move(done)));
            return;
        }
        auto body = parse_object_body(req.body, "a module identity");
        if (!body) return fail(body.error());
        if (auto ok = reconcile_id(*body, "deviceId", r.device_id); !ok) return fail(ok.error());
        if (auto ok = reconcile_id(*body, "moduleId", r.module_id); !ok) return fail(ok.error());
        auto mod = registry::parse_module_request(*body);
        if (!mod) return fail(mod.error());
        auto h = complete_with<registry::module_identity>(std::move(done), module_response);
        if (is_create(req)) {
            hub_.create_module(std::move(*mod), std::move(h));
        } else {
            hub_.update_module(std::move(*mod), *req.if_match, std::move(h));
        }
        return;
    }
    case route_kind::twin:
    case route_kind::module_twin: {
        store::identity_key key{r.device_id, r.module_id};
        if (r.method == http_method::get) {
            auto t = hub_.get_twin(key);
            if (!t) return fail(t.error());
            service::metrics().c2d_twin_read_success.inc(), service::metrics().quota_messages.inc();
            if (c2d_ && t->contains("cloudToDeviceMessageCount")) {
                (*t)["cloudToDeviceMessageCount"] = static_cast<std::int64_t>(c2d_->pending_count(key));
            }
            return done(twin_response(*t));
        }
        auto body = parse_object_body(req.body, "a twin patch");
        if (!body) return fail(body.error());
        if (auto ok = check_twin_body(*body); !ok) return fail(ok.error());
        auto h = complete_with<json::object>(std::move(done), twin_response);
        if (r.method == http_method::patch) {
            hub_.patch_twin(std::move(key), json::value(std::move(*body)), if_match_or_empty(req), std::move(h));
        } else {
            hub_.replace_twin(std::move(key), json::value(std::move(*body)), if_match_or_empty(req), std::move(h));
        }
        return;
    }
    case route_kind::registry_statistics: {
        auto s = hub_.statistics();
        json::object o;
        o["totalDeviceCount"] = s.total_device_count;
        o["enabledDeviceCount"] = s.enabled_device_count;
        o["disabledDeviceCount"] = s.disabled_device_count;
        return done(json_response(200, o));
    }
    case route_kind::service_statistics: {
        json::object o;
        o["connectedDeviceCount"] = hub_.connected_device_count();
        return done(json_response(200, o));
    }
    case route_kind::device_methods:
    case route_kind::module_methods: {
        if (methods_ == nullptr) return fail(error{errc::not_found, "Direct methods are not served by this hub."});
        auto call = methods::parse_invocation_request(req.body);
        if (!call) return fail(call.error());
        store::identity_key key{r.device_id, r.module_id};
        if (auto known = hub_.credentials(key); !known) return fail(known.error());
        methods::invoke_options o;
        o.response_timeout = call->response_timeout;
        o.connect_timeout = call->connect_timeout;
        std::string name = call->method_name;
        std::string payload = std::move(call->payload);
        const std::uint64_t request_blocks = service::quota_blocks(payload.size(), 4096);
        methods_->invoke(std::move(key), std::move(name), std::move(payload), o,
                         [done = std::move(done), c = std::move(*call), request_blocks](result<methods::method_response> res) {
                             auto& m = service::metrics();
                             if (res) m.c2d_methods_success.inc(), m.quota_messages.inc(request_blocks + service::quota_blocks(res->payload.size(), 4096));
                             else m.c2d_methods_failure.inc();
                             done(method_result_response(res, c));
                         });
        return;
    }
    case route_kind::c2d_purge: {
        if (c2d_ == nullptr) return fail(error{errc::not_found, "Cloud-to-device messages are not served by this hub."});
        store::identity_key key{r.device_id, r.module_id};
        c2d_->purge(key, [done = std::move(done), key](result<std::size_t> n) {
            if (!n) return done(error_response(n.error()));
            json::object o;
            o["totalMessagesPurged"] = static_cast<std::int64_t>(*n);
            o["deviceId"] = key.device_id;
            if (key.module_id.empty()) {
                o["moduleId"] = nullptr;
            } else {
                o["moduleId"] = key.module_id;
            }
            done(json_response(200, o));
        });
        return;
    }
    case route_kind::c2d_receive:
    case route_kind::c2d_settle:
    case route_kind::c2d_abandon:
    case route_kind::device_events:
    case route_kind::consumer_groups:
    case route_kind::consumer_group:
    case route_kind::job:
    case route_kind::job_cancel:
    case route_kind::jobs_query:
    case route_kind::configurations:
    case route_kind::configuration:
    case route_kind::configurations_test:
    case route_kind::apply_configuration: break;  // handled above
    case route_kind::file_upload:
    case route_kind::file_notification:
    case route_kind::digital_twin:
    case route_kind::digital_twin_command: break;  // handled above
    case route_kind::devices_query: {
        if (queries_ == nullptr) return fail(error{errc::not_found, "Twin queries are not served by this hub."});
        auto page = query::run_query_request(*queries_, req.body, req.max_item_count, req.continuation);
        if (!page) return fail(page.error());
        rest_response res = json_response(200, page->items);
        service::metrics().twin_queries_success.inc(), service::metrics().quota_messages.inc(service::quota_blocks(res.body.size(), 512));
        res.headers.emplace_back("x-ms-item-type", page->item_type);
        // Only when more pages exist: Node keeps paging while the header is present (spec 3.7).
        if (page->continuation) res.headers.emplace_back("x-ms-continuation", *page->continuation);
        return done(std::move(res));
    }
    }
    fail(error{errc::internal, "unhandled route"});
}

}  // namespace twinhub::http
