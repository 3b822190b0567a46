// Cloud-to-device messaging on the AMQP head (spec: iothub-amqp 3.1, 3.2, 4.4):
// - the service's sender on /messages/devicebound: each message's `to` names the device (or, as a
//   twinhub extension, the module); `accepted` once the message is durable in its queue, `rejected`
//   with the condition the SDK maps (amqp:not-found, amqp:resource-limit-exceeded, ...) otherwise;
// - the devices' receivers on /devices/{d}/messages/devicebound (a module's on
//   /devices/{d}/modules/{m}/messages/events): as much as the link's credit allows is locked and sent
//   unsettled; accepted = complete, rejected = reject, released or modified = abandon; a link or
//   connection that ends with deliveries unsettled abandons them;
// - the service's receiver on /messages/serviceBound/feedback: batches of feedback records as JSON,
//   removed when accepted, available again when released;
// - the service's receiver on /messages/serviceBound/filenotifications: one file upload
//   notification per message (file_upload_service), removed when accepted, available again when
//   released (rejected ones are dropped, as feedback).
// All of it runs on the connection's strand; c2d_service notifications are posted to it.
#include "amqp/connection.hpp"

#include "amqp/message_codec.hpp"
#include "common/log.hpp"
#include "service/c2d_service.hpp"
#include "service/file_upload_service.hpp"

#include <proton/annotation_key.hpp>
#include <proton/link.hpp>
#include <proton/scalar.hpp>
#include <proton/sender_options.hpp>
#include <proton/source_options.hpp>
#include <proton/timestamp.hpp>

#include <chrono>

namespace twinhub::amqp {
namespace {

constexpr auto feedback_lock = std::chrono::seconds(60);

std::string tag_key(const std::string& link, const proton::binary& tag) {
    return link + '/' + std::string(tag.begin(), tag.end());
}

proton::message device_message(const store::c2d_message& m) {
    proton::message out;
    set_body_bytes(out, m.body);
    out.to("/devices/" + m.target.device_id +
           (m.target.module_id.empty() ? "" : "/modules/" + m.target.module_id) + "/messages/devicebound");
    if (!m.message_id.empty()) out.id(proton::message_id(m.message_id));
    if (!m.correlation_id.empty()) out.correlation_id(proton::message_id(m.correlation_id));
    if (!m.user_id.empty()) out.user(m.user_id);
    if (!m.content_type.empty()) out.content_type(m.content_type);
    if (!m.content_encoding.empty()) out.content_encoding(m.content_encoding);
    out.expiry_time(proton::timestamp(m.expiry_time_ns / 1'000'000));
    out.creation_time(proton::timestamp(m.enqueued_time_ns / 1'000'000));
    out.delivery_count(m.delivery_count);
    auto& props = out.properties();
    std::string input = "c2d";  // a module's messages arrive as input messages (spec: iothub-amqp 4.4)
    for (auto& [k, v] : m.application_properties) {
        if (m.target.is_module() && k == "iothub-inputname") input = v;
        else props.put(k, v);
    }
    if (m.target.is_module())
        out.message_annotations().put(proton::annotation_key(proton::symbol("x-opt-input-name")), proton::value(input));
    if (m.ack != store::c2d_ack::none) props.put("iothub-ack", std::string(service::to_string(m.ack)));
    out.message_annotations().put(proton::annotation_key(proton::symbol("iothub-enqueuedtime")),
                                  proton::value(proton::timestamp(m.enqueued_time_ns / 1'000'000)));
    return out;
}

}  // namespace

void amqp_server::connection::c2d_open(proton::sender& s, const link_address& a) {
    proton::sender_options o;
    proton::source_options src;
    src.address(s.source().address());
    o.source(src);
    if (a.kind == link_kind::service_file_notifications) return files_open(s, o);
    auto* c2d = st_->c2d.load();
    if (!c2d) {
        s.open(o);
        return refuse(s, "amqp:not-implemented", "Cloud-to-device messaging is not enabled on this hub.");
    }
    s.open(o);
    const bool feedback = a.kind == link_kind::service_feedback;
    const std::string name = s.name();
    std::weak_ptr<connection> weak = shared_from_this();
    auto notify = [weak, name] {
        if (auto self = weak.lock()) self->post([self, name] { self->c2d_pump(name); });
    };
    c2d_link l{s, a.identity, feedback, 0};
    c2d_links_[name] = l;
    senders_[name] = a;
    // subscribe() may notify at once (on this thread): the pump then runs through post().
    c2d_links_[name].subscription = feedback ? c2d->subscribe_feedback(notify) : c2d->subscribe(a.identity, notify);
    log::debug("amqp.c2d_link", {{"conn", log_id_}, {"link", name}, {"feedback", feedback}});
}

void amqp_server::connection::files_open(proton::sender& s, const proton::sender_options& o) {
    auto* files = st_->files.load();
    s.open(o);
    if (!files) return refuse(s, "amqp:not-implemented", "File upload notifications are not served by this hub.");
    const std::string name = s.name();
    std::weak_ptr<connection> weak = shared_from_this();
    auto notify = [weak, name] {
        if (auto self = weak.lock()) self->post([self, name] { self->c2d_pump(name); });
    };
    c2d_link l{s, {}, false, 0, true};
    c2d_links_[name] = l;
    senders_[name] = link_address{link_kind::service_file_notifications, {}};
    c2d_links_[name].subscription = files->subscribe(notify);
    log::debug("amqp.files_link", {{"conn", log_id_}, {"link", name}});
}

void amqp_server::connection::c2d_pump(const std::string& name) {
    auto it = c2d_links_.find(name);
    auto* c2d = st_->c2d.load();
    if (it != c2d_links_.end() && it->second.files && !closing_) {
        auto* files = st_->files.load();
        proton::sender& s = it->second.link;
        while (files && s.active() && s.credit() > 0) {
            auto n = files->lock_next(feedback_lock);
            if (!n) return;
            proton::message m;
            m.id(proton::message_id(n->lock_token));
            m.content_type("application/json");
            m.content_encoding("utf-8");
            set_body_bytes(m, service::file_notification_json(n->notification));
            proton::tracker t = s.send(m);
            c2d_unsettled u{name, {}, n->lock_token, false};
            u.files = true;
            c2d_unsettled_[tag_key(name, t.tag())] = std::move(u);
        }
        return;
    }
    if (it == c2d_links_.end() || !c2d || closing_) return;
    proton::sender& s = it->second.link;
    while (s.active() && s.credit() > 0) {
        if (it->second.feedback) {
            auto batch = c2d->receive_feedback_batch(feedback_lock);
            if (!batch) return;
            proton::message m;
            m.id(proton::message_id(batch->lock_token));
            m.content_type("application/vnd.microsoft.iothub.feedback.json");
            m.content_encoding("utf-8");
            set_body_bytes(m, service::feedback_batch_json(batch->records));
            proton::tracker t = s.send(m);
            c2d_unsettled_[tag_key(name, t.tag())] = {name, {}, batch->lock_token, true};
            continue;
        }
        auto next = c2d->lock_next(it->second.id, std::nullopt);
        if (!next || !*next) return;
        proton::tracker t = s.send(device_message((*next)->message));
        c2d_unsettled_[tag_key(name, t.tag())] = {name, it->second.id, (*next)->lock_token, false};
    }
}

void amqp_server::connection::c2d_outcome(proton::tracker& t, int outcome) {
    const std::string key = tag_key(t.sender().name(), t.tag());
    auto it = c2d_unsettled_.find(key);
    if (it == c2d_unsettled_.end()) return;
    c2d_unsettled u = std::move(it->second);
    c2d_unsettled_.erase(it);
    auto logged = [log_id = log_id_](result<void> r) {
        if (!r) log::debug("amqp.c2d_settle_failed", {{"conn", log_id}, {"code", to_string(r.error().code)}});
    };
    if (u.files) {
        if (auto* files = st_->files.load()) {
            if (outcome == 2) (void)files->abandon(u.lock);
            else files->complete(u.lock, logged);
        }
        return;
    }
    auto* c2d = st_->c2d.load();
    if (!c2d) return;
    if (u.feedback) {
        if (outcome == 2) (void)c2d->abandon_feedback(u.lock);
        else c2d->complete_feedback(u.lock, logged);  // rejected feedback is dropped, as accepted
        return;
    }
    if (outcome == 0) c2d->complete(u.id, u.lock, logged);
    else if (outcome == 1) c2d->reject(u.id, u.lock, logged);
    else c2d->abandon(u.id, u.lock, logged);
}

void amqp_server::connection::on_tracker_accept(proton::tracker& t) { c2d_outcome(t, 0); }
void amqp_server::connection::on_tracker_reject(proton::tracker& t) { c2d_outcome(t, 1); }
void amqp_server::connection::on_tracker_release(proton::tracker& t) { c2d_outcome(t, 2); }
// Settled without an outcome we know (e.g. modified): the message goes back to the queue.
void amqp_server::connection::on_tracker_settle(proton::tracker& t) { c2d_outcome(t, 2); }

void amqp_server::connection::c2d_link_gone(const std::string& name) {
    auto it = c2d_links_.find(name);
    if (it == c2d_links_.end()) return;
    auto* c2d = st_->c2d.load();
    auto* files = st_->files.load();
    if (it->second.files) {
        if (files) files->unsubscribe(it->second.subscription);
    } else if (c2d) {
        c2d->unsubscribe(it->second.subscription);
    }
    c2d_links_.erase(it);
    // Deliveries still unsettled on the link end without completion.
    for (auto u = c2d_unsettled_.begin(); u != c2d_unsettled_.end();) {
        if (u->second.link != name) {
            ++u;
            continue;
        }
        if (u->second.files) {
            if (files) (void)files->abandon(u->second.lock);
        } else if (c2d) {
            if (u->second.feedback) (void)c2d->abandon_feedback(u->second.lock);
            else c2d->abandon(u->second.id, u->second.lock, [](result<void>) {});
        }
        u = c2d_unsettled_.erase(u);
    }
}

void amqp_server::connection::c2d_release_all() {
    std::vector<std::string> names;
    for (auto& [n, _] : c2d_links_) names.push_back(n);
    for (auto& n : names) c2d_link_gone(n);
}

void amqp_server::connection::service_send(proton::delivery& d, proton::message& m) {
    auto* c2d = st_->c2d.load();
    if (!c2d) return reject_with(d, "amqp:not-implemented", "Cloud-to-device messaging is not enabled on this hub.");
    const std::string to = m.to();
    auto target = parse_c2d_destination(to);
    if (!target)
        return reject_with(d, "com.microsoft:argument-error",
                           "The message's 'to' must be /devices/{deviceId}/messages/devicebound; got '" + to + "'.");
    service::c2d_outgoing out;
    out.body = body_bytes(m);
    out.message_id = message_id_text(m.id());
    out.correlation_id = message_id_text(m.correlation_id());
    out.user_id = m.user();
    out.content_type = m.content_type();
    out.content_encoding = m.content_encoding();
    if (m.expiry_time().milliseconds() > 0)
        out.expiry = time_point{std::chrono::milliseconds(m.expiry_time().milliseconds())};
    for (auto& [k, text] : application_properties_text(m)) {
        if (k == "iothub-ack") {
            auto ack = service::parse_c2d_ack(text);
            if (!ack) return reject_with(d, "com.microsoft:argument-error", ack.error().message);
            out.ack = *ack;
            continue;
        }
        out.application_properties.emplace_back(k, std::move(text));
    }
    const std::uint64_t token = ++next_pending_;
    pending_.emplace(token, d);
    c2d->send(std::move(*target), std::move(out), [self = shared_from_this(), token](result<std::uint64_t> r) {
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

}  // namespace twinhub::amqp
