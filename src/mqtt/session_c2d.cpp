// Cloud-to-device delivery on the MQTT head (spec 5.5, 5.6): a device subscribed to
// devices/{d}/messages/devicebound/# (a module to devices/{d}/modules/{m}/inputs/# or
// devices/{d}/modules/{m}/#) receives its queue's messages as PUBLISH with the QoS it was granted,
// on devices/{d}/messages/devicebound/{bag} (a module: devices/{d}/modules/{m}/inputs/{input}/{bag}).
// QoS 1: the message stays locked until its PUBACK completes it; a session that ends first hands
// its unacknowledged messages back to the queue (delivery count + 1), so they are redelivered on
// the next connection. QoS 0: completed once written. MQTT has no reject or abandon.
#include "mqtt/session.hpp"

#include "common/log.hpp"
#include "proto/iothub/topics.hpp"
#include "service/c2d_service.hpp"

namespace twinhub::mqtt {
namespace {

std::string c2d_filter(const store::identity_key& id, bool module_all) {
    return module_all && id.is_module() ? iothub::identity_topic_prefix(id) + "#" : iothub::c2d_filter(id);
}

// The hub->device property bag: %24.-prefixed system properties first (the C SDK only recognises
// them so), then iothub-ack, then the application properties, all percent-encoded.
std::string c2d_topic(const store::c2d_message& m) {
    iothub::property_bag bag;
    auto system = [&](std::string_view key, const std::string& v) {
        if (!v.empty()) bag.system.emplace_back(key, v);
    };
    const std::string to = "/devices/" + m.target.device_id +
                           (m.target.module_id.empty() ? "" : "/modules/" + m.target.module_id) +
                           "/messages/deviceBound";
    system("$.mid", m.message_id);
    system("$.cid", m.correlation_id);
    system("$.uid", m.user_id);
    system("$.to", to);
    system("$.ct", m.content_type);
    system("$.ce", m.content_encoding);
    system("$.exp", format_time(time_point{std::chrono::nanoseconds{m.expiry_time_ns}}));
    if (m.ack != store::c2d_ack::none) bag.application.emplace_back("iothub-ack", service::to_string(m.ack));
    std::string input = "c2d";
    for (auto& [k, v] : m.application_properties) {
        if (m.target.is_module() && k == "iothub-inputname") {
            input = v;
            continue;
        }
        bag.application.emplace_back(k, v);
    }
    return iothub::c2d_topic(m.target, input, bag);
}

}  // namespace

void session::c2d_update_subscription() {
    auto* c2d = st_->c2d.load();
    if (!c2d || !connected_ || closed_) return;
    std::optional<std::uint8_t> qos;
    for (bool all : {false, true}) {
        auto it = subs_.find(c2d_filter(identity_, all));
        if (it != subs_.end()) qos = std::max(qos.value_or(0), it->second);
    }
    if (qos && c2d_subscription_ == 0) {
        c2d_qos_ = *qos;
        std::weak_ptr<session> weak = shared_from_this();
        c2d_subscription_ = c2d->subscribe(identity_, [weak] {
            if (auto self = weak.lock()) self->post_fn([self] { self->c2d_pump(); });
        });
    } else if (qos) {
        c2d_qos_ = *qos;
    } else if (!qos && c2d_subscription_ != 0) {
        c2d->unsubscribe(c2d_subscription_);
        c2d_subscription_ = 0;
    }
}

void session::c2d_pump() {
    auto* c2d = st_->c2d.load();
    if (!c2d || c2d_subscription_ == 0 || closed_ || closing_ || !connected_) return;
    while (c2d_inflight_.size() < max_c2d_inflight) {
        auto next = c2d->lock_next(identity_, std::nullopt);
        if (!next || !*next) return;
        auto& d = **next;
        publish p;
        p.topic = c2d_topic(d.message);
        p.payload = d.message.body;
        if (c2d_qos_ == 0) {
            send(p);
            c2d->complete(identity_, d.lock_token, [](result<void>) {});
            continue;
        }
        p.qos = qos::at_least_once;
        do {
            next_packet_id_ = static_cast<packet_id>(next_packet_id_ + 1);
        } while (next_packet_id_ == 0 || c2d_inflight_.contains(next_packet_id_));
        p.packet_id = next_packet_id_;
        p.dup = d.message.delivery_count > 0;
        c2d_inflight_.emplace(p.packet_id, d.lock_token);
        send(p);
    }
}

void session::c2d_puback(packet_id pid) {
    auto it = c2d_inflight_.find(pid);
    if (it == c2d_inflight_.end()) return;  // not ours (or already settled): nothing to do
    std::string token = std::move(it->second);
    c2d_inflight_.erase(it);
    touch();
    if (auto* c2d = st_->c2d.load()) {
        c2d->complete(identity_, token, [conn = conn_id_](result<void> r) {
            if (!r) log::debug("mqtt.c2d_complete_failed", {{"conn", conn}, {"code", to_string(r.error().code)}});
        });
    }
    c2d_pump();
}

void session::c2d_end() {
    auto* c2d = st_->c2d.load();
    if (!c2d) return;
    if (c2d_subscription_ != 0) c2d->unsubscribe(c2d_subscription_);
    c2d_subscription_ = 0;
    for (auto& [_, token] : c2d_inflight_) c2d->abandon(identity_, token, [](result<void>) {});
    c2d_inflight_.clear();
}

}  // namespace twinhub::mqtt
