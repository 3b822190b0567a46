// An AMQP connection's links: attach (authorization, address routing), detach, flow and message dispatch.
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

// ---- connection and links ----

void amqp_server::connection::on_connection_open(proton::connection& c) {
    opened_ = true;
    c.open();
}

void amqp_server::connection::on_connection_close(proton::connection&) {}

void amqp_server::connection::on_transport_close(proton::transport&) {}

void amqp_server::connection::on_transport_error(proton::transport& t) {
    log::debug("amqp.transport_error", {{"conn", log_id_}, {"error", t.error().what()}});
}

void amqp_server::connection::on_session_open(proton::session& s) {
    if (!s.active()) s.open();
}

bool amqp_server::connection::authorized(const link_address& a, std::string& why) const {
    const std::int64_t now = unix_now();
    switch (a.kind) {
    case link_kind::cbs:
        return true;
    case link_kind::service_c2d:
    case link_kind::service_feedback:
    case link_kind::service_file_notifications:
    case link_kind::eventhub_partition:
    case link_kind::eventhub_management:
        if (service_ && service_->expiry > now && (service_->permissions & auth::permission::service_connect)) return true;
        why = "This connection holds no token of a policy with ServiceConnect.";
        return false;
    default: {
        auto it = grants_.find(a.identity);
        if (it != grants_.end() && it->second.expiry > now) return true;
        why = "No valid token for '" + describe(a.identity) + "' was put on $cbs for this connection.";
        return false;
    }
    }
}

void amqp_server::connection::refuse(proton::link l, const char* condition, const std::string& why) {
    log::info("amqp.link_refused", {{"conn", log_id_}, {"link", l.name()}, {"condition", condition}, {"message", why}});
    l.close(proton::error_condition(condition, why));
}

namespace {
// IoT Plug and Play: a device link's attach property com.microsoft:model-id (as the Java and C SDKs
// send it) announces the device's model, as model-id in the MQTT username does.
void note_model_id(const proton::link& l, const link_address& a, service::hub_service& hub) {
    if (a.identity.device_id.empty()) return;
    try {
        auto props = l.properties();
        auto it = props.find(proton::symbol("com.microsoft:model-id"));
        if (it == props.end() || it->second.type() != proton::STRING) return;
        auto id = proton::get<std::string>(it->second);
        if (!id.empty() && id.size() <= 512) hub.set_model_id(a.identity, std::move(id));
    } catch (const std::exception&) {
    }
}
}  // namespace

void amqp_server::connection::on_receiver_open(proton::receiver& r) {
    // The client's sender: its target names what it sends to.
    const std::string addr = r.target().address();
    auto a = parse_link_address(addr);
    proton::receiver_options o;
    proton::target_options t;
    t.address(addr);
    o.target(t);
    o.auto_accept(false);
    o.credit_window(st_->opts.link_credit);
    if (!a) {
        r.open(o);
        return refuse(r, "amqp:not-found", "Unknown link target '" + addr + "'.");
    }
    std::string why;
    if (!grant_x509(*a, why) || !authorized(*a, why)) {
        r.open(o);
        return refuse(r, "amqp:unauthorized-access", why);
    }
    switch (a->kind) {
    case link_kind::cbs:
    case link_kind::telemetry:
    case link_kind::twin:
    case link_kind::methods:
    case link_kind::eventhub_management:
    case link_kind::service_c2d:
        break;
    default:
        r.open(o);
        return refuse(r, "amqp:not-implemented", "Sending to '" + addr + "' is not supported.");
    }
    note_model_id(r, *a, st_->hub);
    receivers_[r.name()] = {*a, r};
    r.open(o);
    if (a->kind == link_kind::eventhub_management && eh_redirect(r, *a)) receivers_.erase(r.name());
}

void amqp_server::connection::on_sender_open(proton::sender& s) {
    // The client's receiver: its source names what it receives from.
    const std::string addr = s.source().address();
    auto a = parse_link_address(addr);
    proton::sender_options o;
    proton::source_options src;
    src.address(addr);
    o.source(src);
    if (!a) {
        s.open(o);
        return refuse(s, "amqp:not-found", "Unknown link source '" + addr + "'.");
    }
    std::string why;
    if (!grant_x509(*a, why) || !authorized(*a, why)) {
        s.open(o);
        return refuse(s, "amqp:unauthorized-access", why);
    }
    note_model_id(s, *a, st_->hub);
    switch (a->kind) {
    case link_kind::cbs:
        s.open(o);
        cbs_sender_ = s;
        break;
    case link_kind::twin:
        s.open(o);
        twin_senders_[a->identity] = s;
        // Desired patches flow as soon as the twin links are up, not only after the PUT on
        // /notifications/twin/properties/desired that the real hub waits for: a service update that
        // overtakes the PUT on loopback would otherwise be lost to the device. DELETE stops them.
        desired_subscribed_.insert(a->identity);
        break;
    case link_kind::methods:
        s.open(o);
        method_senders_[a->identity] = s;
        methods_ready(a->identity);
        break;
    case link_kind::eventhub_partition:
        return eh_open(s, *a);
    case link_kind::eventhub_management:
        s.open(o);
        if (eh_redirect(s, *a)) return;
        mgmt_senders_[s.name()] = s;
        senders_[s.name()] = *a;
        return;
    case link_kind::service_feedback:
    case link_kind::service_file_notifications:
        return c2d_open(s, *a);
    case link_kind::c2d:
        c2d_open(s, *a);
        break;
    case link_kind::telemetry:
        // A module's receive link (its inputs; twinhub's module C2D) has the telemetry address.
        if (!a->identity.is_module()) {
            s.open(o);
            return refuse(s, "amqp:not-implemented", "Receiving from '" + addr + "' is not supported.");
        }
        c2d_open(s, *a);
        break;
    default:
        s.open(o);
        return refuse(s, "amqp:not-implemented", "Receiving from '" + addr + "' is not supported yet.");
    }
    senders_[s.name()] = *a;
    if (a->kind != link_kind::cbs && !claimed_.count(a->identity)) {
        claimed_.insert(a->identity);
        st_->claim(a->identity, shared_from_this());
        st_->hub.set_connection_state(a->identity, true);
    }
}

void amqp_server::connection::link_gone(const std::string& name, bool sender) {
    if (!sender) {
        receivers_.erase(name);
        return;
    }
    auto it = senders_.find(name);
    if (it == senders_.end()) return;
    const link_address a = it->second;
    senders_.erase(it);
    outbox_.erase(name);
    switch (a.kind) {
    case link_kind::cbs:
        cbs_sender_.reset();
        break;
    case link_kind::twin:
        twin_senders_.erase(a.identity);
        desired_subscribed_.erase(a.identity);
        break;
    case link_kind::methods:
        method_senders_.erase(a.identity);
        methods_gone(a.identity);
        break;
    case link_kind::eventhub_partition:
        eh_forget(name);
        break;
    case link_kind::eventhub_management:
        mgmt_senders_.erase(name);
        break;
    case link_kind::c2d:
    case link_kind::telemetry:
    case link_kind::service_feedback:
    case link_kind::service_file_notifications:
        c2d_link_gone(name);
        break;
    default:
        break;
    }
}

void amqp_server::connection::on_receiver_close(proton::receiver& r) { link_gone(r.name(), false); }
void amqp_server::connection::on_sender_close(proton::sender& s) { link_gone(s.name(), true); }
void amqp_server::connection::on_receiver_detach(proton::receiver& r) { link_gone(r.name(), false); }
void amqp_server::connection::on_sender_detach(proton::sender& s) { link_gone(s.name(), true); }

void amqp_server::connection::send(proton::sender s, proton::message m) {
    outbox_[s.name()].push_back(std::move(m));
    drain(s);
}

void amqp_server::connection::drain(proton::sender& s) {
    auto it = outbox_.find(s.name());
    if (it == outbox_.end()) return;
    while (!it->second.empty() && s.active() && s.credit() > 0) {
        s.send(it->second.front());
        it->second.pop_front();
    }
}

void amqp_server::connection::on_sendable(proton::sender& s) {
    drain(s);
    auto it = eh_readers_.find(s.name());
    if (it != eh_readers_.end()) eh_send(it->second);
    if (c2d_links_.count(s.name())) c2d_pump(s.name());
}

void amqp_server::connection::settle(proton::delivery d, const error* e) {
    if (!e) {
        d.accept();
        return;
    }
    reject_with(d, to_amqp_condition(e->code), e->message);
}

void amqp_server::connection::on_message(proton::delivery& d, proton::message& m) {
    auto it = receivers_.find(d.receiver().name());
    if (it == receivers_.end()) return reject_with(d, "amqp:not-found", "The link is not open.");
    const link_address a = it->second.address;
    switch (a.kind) {
    case link_kind::cbs:
        return put_token(d, m);
    case link_kind::telemetry:
        return telemetry(a.identity, d, m);
    case link_kind::twin:
        return twin_request(a.identity, d, m);
    case link_kind::methods:
        d.accept();
        return method_response(a.identity, m);
    case link_kind::eventhub_management:
        d.accept();
        return management_request(d, m);
    case link_kind::service_c2d:
        return service_send(d, m);
    default:
        return reject_with(d, "amqp:not-implemented", "Not supported.");
    }
}

}  // namespace twinhub::amqp
