// An AMQP connection's handlers: CBS put-token, telemetry, twin requests and direct methods.
#include "amqp/connection.hpp"

#include "amqp/event_position.hpp"
#include "amqp/message_codec.hpp"
#include "auth/authenticator.hpp"
#include "auth/sas_token.hpp"
#include "common/error_body.hpp"
#include "common/error_mapping.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "service/hub_service.hpp"

#include <proton/connection.hpp>
#include <proton/connection_options.hpp>
#include <proton/error_condition.hpp>
#include <proton/link.hpp>
#include <proton/receiver_options.hpp>
#include <proton/sender_options.hpp>
#include <proton/session.hpp>
#include <proton/source.hpp>
#include <proton/source_options.hpp>
#include <proton/target.hpp>
#include <proton/target_options.hpp>
#include <proton/timestamp.hpp>
#include <proton/tracker.hpp>
#include <proton/transport.hpp>

#include <proton/annotation_key.hpp>
#include <proton/codec/map.hpp>
#include <proton/codec/vector.hpp>
#include <proton/codec.h>
#include <proton/delivery.h>
#include <proton/link.h>
#include <proton/terminus.h>
#include <proton/disposition.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>

namespace twinhub::amqp {

// ---- CBS (spec: iothub-amqp 2) ----

void amqp_server::connection::put_token(proton::delivery& d, proton::message& m) {
    d.accept();
    const std::string operation = app_property(m, "operation");
    const std::string audience_text = app_property(m, "name");
    std::string token = body_text(m);
    int status = 400;
    std::string description;
    if (operation != "put-token") {
        description = "Unsupported CBS operation '" + operation + "'.";
    } else {
        status = apply_token(audience_text, token, description);
    }
    std::fill(token.begin(), token.end(), '\0');
    if (status != 200)
        log::info("amqp.put_token_refused", {{"conn", log_id_}, {"status", status}, {"message", description}});
    if (!cbs_sender_) return;
    proton::message reply;
    reply.correlation_id(m.id());
    if (!m.reply_to().empty()) reply.to(m.reply_to());
    reply.properties().put("status-code", proton::scalar(static_cast<std::int32_t>(status)));
    reply.properties().put("status-description", proton::scalar(description));
    send(*cbs_sender_, std::move(reply));
}

int amqp_server::connection::apply_token(const std::string& audience_text, const std::string& token,
                                         std::string& description) {
    int status = 200;
    description = "OK";
    auto fail = [&](int s, std::string why) {
        status = s;
        description = std::move(why);
    };
    if (auto aud = parse_audience(audience_text, st_->opts.host_names); !aud) {
        fail(401, "The audience '" + audience_text + "' does not name this hub.");
    } else if (aud->hub) {
        const auto policies = st_->hub.policies();
        auto r = auth::authorize_service(token, st_->opts.host_names, policies,
                                         auth::permission::service_connect | auth::permission::registry_read |
                                             auth::permission::registry_write | auth::permission::device_connect,
                                         now(), aud->path);
        if (!r) fail(401, r.error().message);
        else if (!((*r)->rights & (auth::permission::service_connect | auth::permission::device_connect)))
            // Everything a hub-scoped token opens over AMQP (C2D, feedback, the Event Hubs
            // endpoint) needs ServiceConnect; refusing here gives the SDK a typed 401 at once.
            fail(401, "Unauthorized: policy '" + (*r)->key_name +
                          "' lacks ServiceConnect, which AMQP service links need.");
        else {
            auto t = auth::parse_sas_token(token);
            service_ = service_grant{(*r)->key_name, (*r)->rights, t ? t->expiry : 0, token, aud->path};
            authenticated_ = true;
        }
    } else {
        auto creds = st_->hub.credentials(aud->identity);
        if (!creds) fail(401, creds.error().message);
        else if (!creds->enabled) fail(401, "Device '" + aud->identity.device_id + "' is disabled.");
        else {
            const auto policies = st_->hub.policies();
            const auth::identity_keys keys{creds->authentication.symmetric_key.primary_key,
                                           creds->authentication.symmetric_key.secondary_key};
            auto r = auth::authorize_device(token, st_->opts.host_names,
                                            aud->identity, keys,
                                            policies, now());
            if (!r) fail(401, r.error().message);
            else {
                grants_[aud->identity] = grant{r->expiry, token};
                authenticated_ = true;
            }
        }
    }
    return status;
}

// ---- telemetry ----

void amqp_server::connection::telemetry(const store::identity_key& id, proton::delivery& d, proton::message& m) {
    store::event_record e;
    e.source = id;
    e.body = body_bytes(m);
    if (e.body.size() > st_->opts.max_telemetry_size)
        return reject_with(d, "amqp:link:message-size-exceeded",
                           "Message of " + std::to_string(e.body.size()) + " bytes is over the limit of " +
                               std::to_string(st_->opts.max_telemetry_size) + ".");
    telemetry_properties(m, e);
    if (st_->opts.fault_injection && fault_requested(id, d, e.application_properties)) return;
    e.system_properties.emplace_back("iothub-connection-device-id", id.device_id);
    if (id.is_module()) e.system_properties.emplace_back("iothub-connection-module-id", id.module_id);
    e.system_properties.emplace_back("iothub-message-source", "Telemetry");
    st_->hub.touch_activity(id);
    // Proton objects are not thread-safe, not even their reference counts: the store thread's
    // completion carries a number, and the delivery stays on this connection's strand.
    const std::uint64_t token = ++next_pending_;
    pending_.emplace(token, d);
    st_->hub.append_event(std::move(e), [self = shared_from_this(), token](result<void> r) {
        self->post([self, token, r = std::move(r)] {
            auto it = self->pending_.find(token);
            if (it == self->pending_.end()) return;
            proton::delivery pd = it->second;
            self->pending_.erase(it);
            if (r) return self->settle(pd, nullptr);
            const error e = r.error();
            self->settle(pd, &e);
        });
    });
}

// ---- twin (spec: iothub-amqp 4.5) ----

void amqp_server::connection::twin_reply(const store::identity_key& id, const proton::message& request, int status,
                                         std::string body, std::optional<std::int64_t> version) {
    auto it = twin_senders_.find(id);
    if (it == twin_senders_.end()) return;
    proton::message reply;
    reply.correlation_id(request.correlation_id());
    reply.message_annotations().put(proton::symbol("status"), proton::value(static_cast<std::int32_t>(status)));
    if (version) reply.message_annotations().put(proton::symbol("version"), proton::value(*version));
    set_body_bytes(reply, body);
    send(it->second, std::move(reply));
}

void amqp_server::connection::twin_request(const store::identity_key& id, proton::delivery& d, proton::message& m) {
    d.accept();
    const std::string operation = annotation_text(m, "operation");
    const std::string resource = annotation_text(m, "resource");
    auto error_reply = [&](const error& e) {
        twin_reply(id, m, to_wire(e.code).http_status, amqp_twin_error_body(e));
    };
    if (operation == "GET") {
        auto view = st_->hub.get_device_twin_view(id);
        if (!view) return error_reply(view.error());
        return twin_reply(id, m, 200, boost::json::serialize(*view));
    }
    if (operation == "PUT" && resource == "/notifications/twin/properties/desired") {
        desired_subscribed_.insert(id);
        return twin_reply(id, m, 200, "");
    }
    if (operation == "DELETE" && resource == "/notifications/twin/properties/desired") {
        desired_subscribed_.erase(id);
        return twin_reply(id, m, 200, "");
    }
    if (operation == "PATCH" && resource == "/properties/reported") {
        boost::system::error_code ec;
        auto patch = boost::json::parse(body_bytes(m), ec);
        if (ec) return error_reply(error{errc::format_error, "Reported properties patch is not valid JSON: " + ec.message()});
        if (!patch.is_object())
            return error_reply(error{errc::invalid_argument, "Reported properties patch must be a JSON object."});
        // Only plain values cross to the store thread (see telemetry()).
        proton::message_id correlation = m.correlation_id();  // a value type, no Proton object
        st_->hub.patch_reported(id, std::move(patch), [self = shared_from_this(), id, correlation](result<std::int64_t> r) {
            self->post([self, id, correlation, r = std::move(r)] {
                proton::message request;
                request.correlation_id(correlation);
                if (!r) {
                    return self->twin_reply(id, request, to_wire(r.error().code).http_status,
                                            amqp_twin_error_body(r.error()));
                }
                self->twin_reply(id, request, 204, "", *r);
            });
        });
        return;
    }
    error_reply(error{errc::invalid_argument,
                      "Unsupported twin operation '" + operation + "' on resource '" + resource + "'."});
}

void amqp_server::connection::deliver_desired(const store::identity_key& id, std::shared_ptr<const std::string> patch) {
    post([this, id, patch = std::move(patch)] {
        if (!desired_subscribed_.count(id)) return;
        auto it = twin_senders_.find(id);
        if (it == twin_senders_.end()) return;
        proton::message m;
        set_body_bytes(m, *patch);
        send(it->second, std::move(m));
    });
}

// ---- direct methods (spec: iothub-amqp 4.6) ----

void amqp_server::connection::methods_ready(const store::identity_key& id) {
    {
        std::lock_guard l(methods_mu_);
        methods_ready_.insert(id);
    }
    if (auto* r = st_->router.load()) r->on_methods_ready(id);
}

void amqp_server::connection::methods_gone(const store::identity_key& id) {
    {
        std::lock_guard l(methods_mu_);
        if (!methods_ready_.erase(id)) return;
    }
    if (auto* r = st_->router.load()) r->on_connection_gone(id, number_);
}

bool amqp_server::connection::deliver_method(const store::identity_key& id, methods::method_call call) {
    {
        std::lock_guard l(methods_mu_);
        if (!methods_ready_.count(id)) return false;
    }
    post([this, id, call = std::move(call)] {
        auto it = method_senders_.find(id);
        if (it == method_senders_.end()) return;
        proton::message m;
        m.correlation_id(proton::message_id(call.rid));
        m.properties().put("IoThub-methodname", proton::scalar(call.method_name));
        set_body_bytes(m, call.payload);
        send(it->second, std::move(m));
    });
    return true;
}

void amqp_server::connection::method_response(const store::identity_key& id, proton::message& m) {
    auto* r = st_->router.load();
    if (!r) return;
    const std::string rid = message_id_text(m.correlation_id());
    int status = 0;
    if (!int_app_property(m, "IoThub-status", status)) status = 200;
    r->on_response(id, rid, status, body_bytes(m));
}

}  // namespace twinhub::amqp
