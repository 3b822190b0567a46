// The device HTTPS API on the REST head (the Node Http transport, the C SDK's HTTP transport):
// telemetry (single and batch), C2D receive/complete/abandon/reject, file upload, authorised by
// the identity's own credentials (SAS or X.509 client certificate).
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

std::string lower(std::string_view s) { return ascii_lower(s); }

rest_response no_content() {
    rest_response r;
    r.status = 204;
    return r;
}

// A C2D message over the device HTTPS API (what azure-iot-http-base's toMessage and the C#
// HttpTransportHandler read): the body as is, the lock token as a quoted ETag, system properties
// as iothub-* headers and application properties as iothub-app-{name}.
rest_response c2d_message_response(const service::c2d_delivery& d, const std::string& to) {
    const auto& m = d.message;
    rest_response r;
    r.status = 200;
    r.body = m.body;
    r.headers.emplace_back("ETag", quoted(d.lock_token));
    r.headers.emplace_back("Content-Type", m.content_type.empty() ? "application/octet-stream" : m.content_type);
    if (!m.content_encoding.empty()) r.headers.emplace_back("Content-Encoding", m.content_encoding);
    if (!m.message_id.empty()) r.headers.emplace_back("iothub-messageid", m.message_id);
    if (!m.correlation_id.empty()) r.headers.emplace_back("iothub-correlationid", m.correlation_id);
    if (!m.user_id.empty()) r.headers.emplace_back("iothub-userid", m.user_id);
    r.headers.emplace_back("iothub-to", to);
    r.headers.emplace_back("iothub-sequencenumber", std::to_string(m.sequence_number));
    r.headers.emplace_back("iothub-deliverycount", std::to_string(m.delivery_count));
    r.headers.emplace_back("iothub-enqueuedtime", format_time(time_point{std::chrono::nanoseconds(m.enqueued_time_ns)}));
    if (m.expiry_time_ns > 0) {
        r.headers.emplace_back("iothub-expiry", format_time(time_point{std::chrono::nanoseconds(m.expiry_time_ns)}));
    }
    r.headers.emplace_back("iothub-ack", service::to_string(m.ack));
    for (const auto& [k, v] : m.application_properties) r.headers.emplace_back("iothub-app-" + k, v);
    return r;
}

// Device telemetry over HTTPS (spec 5.x for MQTT; the Node Http transport and the C SDK's HTTP
// transport send these headers): iothub-* system properties, iothub-app-{name} application ones.
// Names are lower-cased by the server.
void add_http_property(store::event_record& e, std::string_view name, std::string value) {
    static constexpr std::string_view app = "iothub-app-";
    if (name.size() > app.size() && name.substr(0, app.size()) == app) {
        e.application_properties.emplace_back(std::string(name.substr(app.size())), std::move(value));
        return;
    }
    static constexpr std::pair<std::string_view, std::string_view> system[] = {
        {"iothub-messageid", "message-id"},
        {"iothub-correlationid", "correlation-id"},
        {"iothub-userid", "user-id"},
        {"iothub-contenttype", "content-type"},
        {"iothub-contentencoding", "content-encoding"},
        {"iothub-expiry", "absolute-expiry-time"},
        {"iothub-creation-time-utc", "iothub-creation-time-utc"},
        {"iothub-interface-id", "iothub-interface-id"},
    };
    for (const auto& [h, p] : system) {
        if (name == h) {
            e.system_properties.emplace_back(std::string(p), std::move(value));
            return;
        }
    }
    // iothub-to (the request path) and anything else are not message properties.
}

store::event_record http_event(const store::identity_key& source, std::string body) {
    store::event_record e;
    e.source = source;
    e.body = std::move(body);
    e.enqueued_time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now().time_since_epoch()).count();
    return e;
}

void finish_http_event(store::event_record& e) {
    e.system_properties.emplace_back("iothub-connection-device-id", e.source.device_id);
    if (!e.source.module_id.empty()) e.system_properties.emplace_back("iothub-connection-module-id", e.source.module_id);
    e.system_properties.emplace_back("iothub-message-source", "Telemetry");
}

// POST .../messages/events: one message (the body as is), or a batch when the Content-Type is
// application/vnd.microsoft.iothub.json: [{"body":"<base64>","base64Encoded":true,
// "properties":{"iothub-app-k":"v", "iothub-messageid":"..."}}, ...]. A batch is checked whole
// before any message of it is stored.
result<std::vector<store::event_record>> parse_http_events(const store::identity_key& source, const rest_request& req) {
    static constexpr std::size_t max_size = 256 * 1024;  // IoT Hub's D2C limit, per message and per batch
    if (req.body.size() > max_size) {
        return error{errc::message_too_large, "The message is " + std::to_string(req.body.size()) +
                                                  " bytes; IoT Hub's limit is 262144 bytes."};
    }
    std::vector<store::event_record> out;
    const bool batch = req.content_type && lower(*req.content_type).starts_with("application/vnd.microsoft.iothub.json");
    if (!batch) {
        auto e = http_event(source, req.body);
        for (const auto& [k, v] : req.iothub_headers) add_http_property(e, k, v);
        finish_http_event(e);
        out.push_back(std::move(e));
        return out;
    }
    auto v = parse_body(req.body);
    if (!v) return v.error();
    if (!v->is_array() || v->get_array().empty()) {
        return error{errc::invalid_argument, "A telemetry batch must be a non-empty JSON array of messages."};
    }
    for (std::size_t i = 0; i < v->get_array().size(); ++i) {
        const auto& item = v->get_array()[i];
        const std::string where = "batch message " + std::to_string(i) + ": ";
        if (!item.is_object()) return error{errc::invalid_argument, where + "must be a JSON object."};
        const auto& o = item.get_object();
        auto* b = o.if_contains("body");
        if (!b || !b->is_string()) return error{errc::invalid_argument, where + "body must be a string."};
        bool b64 = true;  // the Node SDK sends base64 without the flag; the C SDK sends the flag
        if (auto* f = o.if_contains("base64Encoded"); f && !f->is_null()) {
            if (!f->is_bool()) return error{errc::invalid_argument, where + "base64Encoded must be true or false."};
            b64 = f->get_bool();
        }
        std::string data(b->get_string());
        if (b64) {
            auto d = base64_decode(data);
            if (!d) return error{errc::invalid_argument, where + "body is not valid base64."};
            data = std::move(*d);
        }
        auto e = http_event(source, std::move(data));
        if (auto* p = o.if_contains("properties"); p && !p->is_null()) {
            if (!p->is_object()) return error{errc::invalid_argument, where + "properties must be a JSON object."};
            for (const auto& [k, val] : p->get_object()) {
                if (!val.is_string()) return error{errc::invalid_argument, where + "property values must be strings."};
                add_http_property(e, lower(std::string_view(k)), std::string(val.get_string()));
            }
        }
        finish_http_event(e);
        out.push_back(std::move(e));
    }
    return out;
}

}  // namespace

// The device HTTPS C2D API: the caller is the identity itself (its SAS key, or a policy token
// with DeviceConnect whose sr covers it), as on MQTT CONNECT.
void rest_api::handle_device_route(const route& r, const rest_request& req, completion done) const {
    auto fail = [&done](error e) { done(error_response(e)); };
    if (c2d_ == nullptr && r.kind != route_kind::device_events && r.kind != route_kind::file_upload &&
        r.kind != route_kind::file_notification) {
        return fail(error{errc::not_found, "Cloud-to-device messages are not served by this hub."});
    }
    if (auto ok = registry::validate_id(r.device_id, "deviceId"); !ok) return fail(ok.error());
    if (!r.module_id.empty()) {
        if (auto ok = registry::validate_id(r.module_id, "moduleId"); !ok) return fail(ok.error());
    }
    store::identity_key key{r.device_id, r.module_id};
    {
        // Unknown, disabled and wrongly signed are all 401: a device learns nothing about others.
        auto creds = hub_.credentials(key);
        if (!creds) return fail(error{errc::unauthorized, "The token does not authorise this identity."});
        if (!creds->enabled) return fail(error{errc::unauthorized, "The device '" + r.device_id + "' is disabled."});
        if (!req.authorization) {
            auto ok = service::certificate_service(hub_).authenticate(key, req.client_certificates, now());
            if (!ok) return fail(ok.error());
        } else {
            const auto policies = hub_.policies();
            const auth::identity_keys keys{creds->authentication.symmetric_key.primary_key,
                                           creds->authentication.symmetric_key.secondary_key};
            auto granted = auth::authorize_device(*req.authorization, host_names_, key, keys, policies, now());
            if (!granted) return fail(granted.error());
        }
    }
    auto settled = [done](result<void> res) {
        if (!res) return done(error_response(res.error()));
        done(no_content());
    };
    if (r.kind == route_kind::file_upload || r.kind == route_kind::file_notification)
        return handle_files(r, req, std::move(done));
    switch (r.kind) {
    case route_kind::c2d_receive: {
        auto next = c2d_->lock_next(key, std::chrono::milliseconds(c2d_lock_duration));
        if (!next) return fail(next.error());
        if (!*next) return done(no_content());  // 204: the queue is empty
        std::string to = "/devices/" + key.device_id +
                         (key.module_id.empty() ? std::string() : "/modules/" + key.module_id) + "/messages/devicebound";
        return done(c2d_message_response(**next, to));
    }
    case route_kind::c2d_settle: {
        auto target = parse_request_target(req.target);
        const bool reject = target && target->query_value("reject").has_value();
        if (reject) {
            c2d_->reject(key, r.lock_token, std::move(settled));
        } else {
            c2d_->complete(key, r.lock_token, std::move(settled));
        }
        return;
    }
    case route_kind::c2d_abandon:
        c2d_->abandon(key, r.lock_token, std::move(settled));
        return;
    case route_kind::device_events: {
        auto events = parse_http_events(key, req);
        if (!events) return fail(events.error());
        // 204 once every message of the request is durable; the first failure answers instead.
        struct pending {
            std::mutex mu;
            std::size_t left;
            std::optional<error> failed;
            completion done;
        };
        auto p = std::make_shared<pending>();
        p->left = events->size();
        p->done = std::move(done);
        for (auto& e : *events) {
            hub_.append_event(std::move(e), [p](result<void> res) {
                bool last = false;
                {
                    std::lock_guard lock(p->mu);
                    if (!res && !p->failed) p->failed = res.error();
                    last = --p->left == 0;
                }
                if (!last) return;
                if (p->failed) return p->done(error_response(*p->failed));
                p->done(no_content());
            });
        }
        return;
    }
    default: break;
    }
    fail(error{errc::internal, "unhandled device route"});
}

}  // namespace twinhub::http
