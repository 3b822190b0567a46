#include "mqtt/session.hpp"

#include "auth/authenticator.hpp"
#include "auth/sas_token.hpp"
#include "common/encoding.hpp"
#include "common/error_body.hpp"
#include "common/error_mapping.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "proto/iothub/topics.hpp"
#include "proto/mqtt/encoder.hpp"

#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace twinhub::mqtt {

namespace asio = boost::asio;

namespace {

// Empties a write buffer; one that grew past 64 KiB (a large twin, a backlog) is given back.
void reset_buffer(std::string& b) {
    b.clear();
    if (b.capacity() > 64 * 1024) std::string().swap(b);
}

std::string describe(const store::identity_key& id) {
    return id.is_module() ? id.device_id + "/" + id.module_id : id.device_id;
}

// IoT Hub's names for the system properties of the bag (5.5), as the event log stores them.
std::string system_property_name(std::string_view key) {
    if (key == "$.mid") return "message-id";
    if (key == "$.cid") return "correlation-id";
    if (key == "$.uid") return "user-id";
    if (key == "$.to") return "to";
    if (key == "$.ct") return "content-type";
    if (key == "$.ce") return "content-encoding";
    if (key == "$.exp") return "absolute-expiry-time";
    if (key == "$.ctime") return "iothub-creation-time-utc";
    if (key == "$.on") return "iothub-outputname";
    if (key == "$.ifid") return "iothub-interface-id";
    if (key == "$.sub") return "dt-subject";
    return std::string(key);
}

}  // namespace

session::session(std::unique_ptr<net::transport> t, std::shared_ptr<mqtt_server::state> st)
    : transport_(std::move(t)),
      st_(std::move(st)),
      conn_number_(st_->next_connection_id.fetch_add(1)),
      conn_id_("m" + std::to_string(conn_number_)),
      timer_(transport_->executor()),
      decoder_(st_->opts.max_connect_packet_size),
      read_buffer_(new char[st_->opts.read_buffer_size]) {}

session::~session() = default;

template <class F>
void session::post(F&& f) {
    asio::post(transport_->executor(), std::forward<F>(f));
}

void session::post_fn(std::function<void()> f) { post(std::move(f)); }

void session::start() {
    st_->add_open(shared_from_this());
    post([self = shared_from_this()] {
        self->started_ = true;
        self->started_at_ = self->last_rx_ = clock::now();
        if (self->st_->stopped) return self->close_now("server stopping");
        self->arm_timer();
        self->transport_->async_handshake(
            [self](boost::system::error_code ec) { self->on_handshake(ec); });
    });
}

void session::close(std::string reason) {
    post([self = shared_from_this(), reason = std::move(reason)] { self->close_now(reason); });
}

void session::deliver_desired(std::shared_ptr<const std::string> payload, std::int64_t version) {
    post([self = shared_from_this(), payload = std::move(payload), version] {
        if (!self->connected_ || self->closed_ || self->closing_) return;
        if (!self->desired_subscribed_) {
            // Not subscribed yet: keep it only if the device has a baseline it can apply it to.
            if (!self->desired_version_seen_ || version <= *self->desired_version_seen_) return;
            if (self->desired_backlog_.size() >= max_desired_backlog) {
                self->desired_backlog_overflow_ = true;
                return;
            }
            self->desired_backlog_.emplace_back(version, std::move(payload));
            return;
        }
        publish p;
        p.topic = iothub::desired_patch_topic(version);
        p.payload = *payload;
        self->send(p);
    });
}

void session::replay_desired_backlog() {
    // Only a gap-free run starting right after the GET's version can be applied by the device;
    // after an overflow the device must resync by GET (as the SDKs do after reconnects).
    auto backlog = std::move(desired_backlog_);
    desired_backlog_.clear();
    const bool overflow = std::exchange(desired_backlog_overflow_, false);
    if (!desired_subscribed_ || overflow || !desired_version_seen_) return;
    std::int64_t expected = *desired_version_seen_ + 1;
    for (auto& [version, payload] : backlog) {
        if (version < expected) continue;
        if (version != expected) return;
        publish p;
        p.topic = iothub::desired_patch_topic(version);
        p.payload = *payload;
        send(p);
        ++expected;
    }
}

void session::deliver_method(method_request req) {
    post([self = shared_from_this(), req = std::move(req)] {
        if (!self->connected_ || self->closed_ || self->closing_ || !self->methods_subscribed()) return;
        publish p;
        p.topic = iothub::method_request_topic(req.method_name, req.rid);
        p.payload = req.payload.empty() ? std::string("null") : req.payload;
        self->send(p);
    });
}

// ---- reading ----

void session::on_handshake(boost::system::error_code ec) {
    if (closed_) return;
    if (ec) {
        log::debug("mqtt.handshake_failed", {{"conn", conn_id_}, {"transport", transport_->name()}, {"error", ec.message()}});
        return close_now("handshake failed");
    }
    do_read();
}

void session::do_read() {
    if (reading_ || closed_ || closing_) return;
    if (inflight_ >= st_->opts.max_inflight_operations) return;  // resumed by operation_finished
    reading_ = true;
    transport_->async_read_some(asio::buffer(read_buffer_.get(), st_->opts.read_buffer_size),
                                [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                                    self->on_read(ec, n);
                                });
}

void session::on_read(boost::system::error_code ec, std::size_t n) {
    reading_ = false;
    if (closed_) return;
    if (ec) return close_now(connected_ ? "connection closed by peer" : "connection closed before CONNECT");
    last_rx_ = clock::now();
    decoder_.feed(read_buffer_.get(), n);
    if (!connected_) {
        // Before authentication only a CONNECT is acceptable, and its size is capped by the decoder.
        if (auto t = decoder_.pending_type(); t && *t != packet_type::connect)
            return close_now("first packet is not CONNECT");
    }
    process_input();
    do_read();
}

void session::process_input() {
    while (!closed_ && !closing_) {
        auto next = decoder_.next();
        if (!next) {
            if (decoder_.failure() == decode_failure::unacceptable_protocol_version && !connected_)
                return refuse_connect(error{errc::invalid_protocol_version, next.error().message});
            return close_now("protocol error: " + next.error().message);
        }
        if (!*next) return;
        handle(std::move(**next));
    }
}

void session::handle(packet&& p) {
    if (!connected_ && !std::holds_alternative<connect>(p)) return close_now("first packet is not CONNECT");
    switch (type_of(p)) {
    case packet_type::connect:
        if (connected_) return close_now("second CONNECT");
        return handle_connect(std::get<connect>(std::move(p)));
    case packet_type::publish:
        return handle_publish(std::get<publish>(std::move(p)));
    case packet_type::subscribe:
        return handle_subscribe(std::get<subscribe>(std::move(p)));
    case packet_type::unsubscribe:
        return handle_unsubscribe(std::get<unsubscribe>(std::move(p)));
    case packet_type::pingreq:
        touch();
        return send(pingresp{});
    case packet_type::puback:
        return c2d_puback(std::get<puback>(p).packet_id);  // a QoS 1 C2D delivery: complete
    case packet_type::disconnect:
        return close_now("client disconnected");
    default:
        return close_now(std::string("unexpected ") + to_string(type_of(p)) + " from client");
    }
}

// ---- CONNECT (spec 5.1, 5.2) and credential changes (spec 6) ----

void session::refuse_connect(const error& e) {
    const auto code = static_cast<connect_return_code>(to_connack(e.code));
    log::info("mqtt.connect_refused", {{"conn", conn_id_}, {"transport", transport_->name()},
                                       {"client_id", client_id_}, {"code", static_cast<int>(code)}, {"reason", e.message}});
    send(connack{false, code});
    closing_ = true;
    if (!writing_) close_now("CONNECT refused");
}

void session::handle_connect(connect&& c) {
    client_id_ = c.client_id;
    auto id = iothub::parse_client_id(c.client_id);
    if (!id) return refuse_connect(id.error());
    if (!c.username) return refuse_connect(error{errc::unauthorized, "CONNECT has no user name"});
    auto user = iothub::parse_username(*c.username);
    if (!user) return refuse_connect(user.error());
    if (!auth::is_hub_host(user->host, st_->opts.host_names))
        return refuse_connect(error{errc::unauthorized, "user name names host '" + user->host + "', which is not this hub"});
    if (user->identity != *id)
        return refuse_connect(error{errc::unauthorized, "user name identity '" + describe(user->identity) +
                                                            "' differs from client id '" + c.client_id + "'"});
    const std::uint64_t epoch = st_->credentials_epoch.load();
    const time_point now_t = now();
    // A SAS token in the password, else the TLS client certificate (X.509, spec 5.12).
    if (!c.password) x509_chain_ = transport_->peer_certificates();
    auto authz = c.password ? authenticate(*id, *c.password, now_t) : authenticate_x509(*id, now_t);
    if (!authz) return refuse_connect(authz.error());

    // Accepted.
    identity_ = std::move(*id);
    if (c.password) token_ = std::move(*c.password);
    authenticated_at_ = now_t;
    policy_token_.store(!authz->policy_name.empty());
    certificate_auth_.store(!c.password);
    connected_ = true;
    persistent_ = !c.clean_session;
    decoder_.set_max_packet_size(st_->opts.max_packet_size);

    const auto cap = std::chrono::duration_cast<clock::duration>(st_->opts.max_keep_alive_timeout);
    const auto ka = std::chrono::duration_cast<clock::duration>(std::chrono::milliseconds(c.keep_alive) * 1500);
    keep_alive_limit_ = c.keep_alive == 0 ? cap : std::min(ka, cap);
    if (st_->opts.disconnect_on_token_expiry && x509_chain_.empty()) {
        const auto left = std::chrono::seconds(authz->expiry - auth::to_unix_seconds(now_t));
        token_deadline_ = clock::now() + left;
    }

    auto self = shared_from_this();
    if (auto old = st_->claim(identity_, self)) {
        log::info("mqtt.connection_replaced", {{"conn", conn_id_}, {"identity", describe(identity_)}, {"code", 400027}});
        old->close("ConnectionForcefullyClosedOnNewConnection (400027)");
    }
    registered_ = true;
    // A change committed after the check above was told while this session could not be found
    // yet (see credentials_epoch): check once more, now that later changes will find it.
    if (st_->credentials_epoch.load() != epoch) {
        if (auto again = reauthenticate(now_t); !again) {
            connected_ = false;
            return refuse_connect(again.error());
        }
    }

    bool session_present = false;
    auto stored = st_->hub.get_session(client_id_);
    if (persistent_) {
        if (stored) {
            session_present = true;
            for (auto& [filter, q] : stored->subscriptions)
                if (iothub::classify_filter(filter, identity_)) subs_[filter] = std::min<std::uint8_t>(q, 1);
            apply_subscription_flags();
        }
    } else if (stored) {
        st_->hub.delete_session(client_id_, [](result<void>) {});
    }

    st_->hub.set_connection_state(identity_, true);
    last_touch_ = clock::now();
    if (auto model = user->param("model-id"); model && !model->empty()) st_->hub.set_model_id(identity_, *model);

    log::info("mqtt.connect", {{"conn", conn_id_}, {"transport", transport_->name()}, {"identity", describe(identity_)},
                               {"clean_session", c.clean_session}, {"session_present", session_present},
                               {"keep_alive", static_cast<int>(c.keep_alive)}});
    send(connack{session_present, connect_return_code::accepted});
    arm_timer();
    notify_methods(false);
}

// ---- PUBLISH (spec 5.4-5.7, 5.9) ----

void session::handle_publish(publish&& p) {
    if (p.qos == qos::exactly_once) return close_now("QoS 2 PUBLISH is not supported");
    if (p.payload.size() > st_->opts.max_message_size)
        return close_now("message of " + std::to_string(p.payload.size()) + " bytes exceeds the 256 KiB limit");
    auto route = iothub::route_publish(p.topic, identity_);
    if (!route) return close_now(route.error().message);
    if (log::get_level() == log::level::debug)
        log::debug("mqtt.publish", {{"conn", conn_id_}, {"topic", p.topic}, {"qos", static_cast<int>(p.qos)},
                                    {"bytes", p.payload.size()}});
    touch();
    switch (route->kind) {
    case iothub::publish_kind::telemetry:
        return telemetry(route->property_bag, std::move(p));
    case iothub::publish_kind::twin_get:
        if (p.qos == qos::at_least_once) send(puback{p.packet_id});
        return twin_get(route->rid);
    case iothub::publish_kind::twin_patch:
        return twin_patch(route->rid, p);
    case iothub::publish_kind::method_response:
        if (p.qos == qos::at_least_once) send(puback{p.packet_id});
        if (auto* h = st_->methods.load()) h->on_method_response(identity_, route->rid, route->status, p.payload);
        return;
    }
}

void session::send_twin_error(const std::string& rid, const error& e) {
    if (!twin_responses_subscribed_) return;  // MQTT delivers only to subscribers
    publish out;
    out.topic = iothub::twin_response_topic(to_wire(e.code).http_status, rid);
    out.payload = twin_error_body(e);
    send(out);
}

void session::twin_get(const std::string& rid) {
    auto view = st_->hub.get_device_twin_view(identity_);
    if (!view) return send_twin_error(rid, view.error());
    if (!twin_responses_subscribed_) return;
    if (!desired_subscribed_) {
        desired_version_seen_.reset();
        if (auto* d = view->if_contains("desired"); d && d->is_object())
            if (auto* v = d->as_object().if_contains("$version"); v && v->is_int64()) desired_version_seen_ = v->as_int64();
        desired_backlog_.clear();
        desired_backlog_overflow_ = false;
    }
    publish out;
    out.topic = iothub::twin_response_topic(200, rid);
    out.payload = boost::json::serialize(*view);
    send(out);
}

void session::twin_patch(const std::string& rid, const publish& p) {
    boost::system::error_code ec;
    boost::json::value patch = boost::json::parse(p.payload, ec);
    if (ec) {
        if (p.qos == qos::at_least_once) send(puback{p.packet_id});
        return send_twin_error(rid, error{errc::format_error, "Reported properties patch is not valid JSON: " + ec.message()});
    }
    if (!patch.is_object()) {
        if (p.qos == qos::at_least_once) send(puback{p.packet_id});
        return send_twin_error(rid, error{errc::invalid_argument, "Reported properties patch must be a JSON object."});
    }
    operation_started();
    const bool ack = p.qos == qos::at_least_once;
    const packet_id pid = p.packet_id;
    st_->hub.patch_reported(identity_, std::move(patch),
                            [self = shared_from_this(), rid, ack, pid](result<std::int64_t> r) mutable {
                                self->post([self, rid = std::move(rid), ack, pid, r = std::move(r)] {
                                    self->operation_finished();
                                    if (self->closed_) return;
                                    if (ack) self->send(puback{pid});
                                    if (!r) return self->send_twin_error(rid, r.error());
                                    if (!self->twin_responses_subscribed_) return;
                                    publish out;
                                    out.topic = iothub::twin_response_topic(204, rid, *r);
                                    self->send(out);
                                });
                            });
}

void session::telemetry(const std::string& bag, publish&& p) {
    auto props = iothub::decode_property_bag(bag);
    if (!props) return close_now(props.error().message);
    if (st_->opts.fault_injection && fault_requested(props->application, p)) return;
    store::event_record e;
    e.source = identity_;
    e.body = std::move(p.payload);
    e.enqueued_time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now().time_since_epoch()).count();
    for (auto& [k, v] : props->system) e.system_properties.emplace_back(system_property_name(k), std::move(v));
    e.system_properties.emplace_back("iothub-connection-device-id", identity_.device_id);
    if (identity_.is_module()) e.system_properties.emplace_back("iothub-connection-module-id", identity_.module_id);
    e.system_properties.emplace_back("iothub-message-source", "Telemetry");
    e.application_properties = std::move(props->application);
    if (p.retain) e.application_properties.emplace_back("mqtt-retain", "true");
    operation_started();
    const bool ack = p.qos == qos::at_least_once;
    const packet_id pid = p.packet_id;
    st_->hub.append_event(std::move(e), [self = shared_from_this(), ack, pid](result<void> r) {
        self->post([self, ack, pid, r = std::move(r)] {
            self->operation_finished();
            if (self->closed_) return;
            if (!r) return self->close_now("telemetry not stored: " + r.error().message);
            if (ack) self->send(puback{pid});
        });
    });
}

// ---- SUBSCRIBE / UNSUBSCRIBE (spec 5.3, 5.4, 5.9) ----

void session::apply_subscription_flags() {
    twin_responses_subscribed_ = subs_.contains(std::string(iothub::twin_response_filter));
    desired_subscribed_ = subs_.contains(std::string(iothub::desired_patch_filter));
    methods_subscribed_.store(subs_.contains(std::string(iothub::methods_filter)), std::memory_order_relaxed);
    c2d_update_subscription();
}

void session::persist_subscriptions(std::function<void()> then) {
    if (!persistent_) return then();
    store::session_record rec;
    rec.client_id = client_id_;
    for (auto& [f, q] : subs_) rec.subscriptions.emplace_back(f, q);
    operation_started();
    st_->hub.put_session(std::move(rec), [self = shared_from_this(), then = std::move(then)](result<void> r) mutable {
        self->post([self, then = std::move(then), r = std::move(r)] {
            self->operation_finished();
            if (self->closed_) return;
            if (!r) return self->close_now("session not stored: " + r.error().message);
            then();
        });
    });
}

void session::handle_subscribe(subscribe&& s) {
    suback ack;
    ack.packet_id = s.packet_id;
    for (auto& sub : s.subscriptions) {
        if (auto k = iothub::classify_filter(sub.filter, identity_); !k) return close_now(k.error().message);
        const std::uint8_t granted = sub.qos == qos::at_most_once ? 0 : 1;  // QoS 2 is granted 1
        subs_[sub.filter] = granted;
        ack.return_codes.push_back(static_cast<suback_return_code>(granted));
    }
    if (subs_.size() > st_->opts.max_subscriptions) return close_now("too many subscriptions");
    const bool had_methods = methods_subscribed();
    apply_subscription_flags();
    // Before any patch that arrives from now on, so the device sees $versions in order.
    replay_desired_backlog();
    persist_subscriptions([this, ack = std::move(ack), had_methods] {
        send(ack);
        notify_methods(had_methods);
    });
}

void session::handle_unsubscribe(unsubscribe&& u) {
    for (auto& f : u.filters) subs_.erase(f);
    const bool had_methods = methods_subscribed();
    apply_subscription_flags();
    notify_methods(had_methods);
    persist_subscriptions([this, pid = u.packet_id] { send(unsuback{pid}); });
}

// Tells the direct-method handler when this connection starts or stops taking method requests.
void session::notify_methods(bool was_subscribed) {
    auto* h = st_->methods.load();
    if (h == nullptr || closed_) return;
    const bool now_subscribed = methods_subscribed();
    if (now_subscribed && !was_subscribed) h->on_methods_ready(identity_);
    if (!now_subscribed && was_subscribed) h->on_methods_gone(identity_, conn_number_);
}

void session::operation_started() { ++inflight_; }

void session::operation_finished() {
    --inflight_;
    do_read();  // resumes reading if the in-flight limit had paused it
}

void session::touch() {
    auto t = clock::now();
    if (t - last_touch_ < std::chrono::seconds(1)) return;
    last_touch_ = t;
    st_->hub.touch_activity(identity_);
}

// ---- writing ----

void session::log_send(const packet& p) const {
    log::debug("mqtt.send", {{"conn", conn_id_}, {"packet", to_string(type_of(p))},
                             {"topic", std::holds_alternative<publish>(p) ? std::get<publish>(p).topic : std::string()}});
}

template <class P>
void session::send(const P& p) {
    if (closed_) return;
    if (log::get_level() == log::level::debug) {
        if constexpr (std::is_same_v<P, packet>) log_send(p);
        else log_send(packet(p));  // a copy, for debug logging only
    }
    encode(p, pending_);
    if (pending_.size() > st_->opts.max_write_queue_bytes) return close_now("write queue full: the client is not reading");
    flush();
}

void session::flush() {
    if (writing_ || pending_.empty() || closed_) return;
    // Most writes complete at once (the socket has room): no handler round trip for those.
    boost::system::error_code ec;
    const std::size_t n = transport_->try_write(asio::buffer(pending_), ec);
    if (ec) return close_now("write failed: " + ec.message());
    if (n == pending_.size()) return reset_buffer(pending_);
    pending_.erase(0, n);
    std::swap(in_write_, pending_);
    pending_.clear();
    writing_ = true;
    transport_->async_write(asio::buffer(in_write_), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
        self->on_write(ec);
    });
}

void session::on_write(boost::system::error_code ec) {
    writing_ = false;
    if (closed_) return;
    if (ec) return close_now("write failed: " + ec.message());
    reset_buffer(in_write_);
    if (!pending_.empty()) return flush();
    if (closing_) close_now("CONNECT refused");
}

// ---- deadlines ----

session::clock::time_point session::deadline() const {
    if (!connected_) return started_at_ + std::chrono::duration_cast<clock::duration>(st_->opts.connect_timeout);
    auto d = last_rx_ + keep_alive_limit_;
    if (token_deadline_) d = std::min(d, *token_deadline_);
    return d;
}

void session::arm_timer() {
    const std::uint64_t gen = ++timer_generation_;
    timer_.expires_at(deadline());
    timer_.async_wait([self = shared_from_this(), gen](boost::system::error_code ec) { self->on_timer(ec, gen); });
}

void session::on_timer(boost::system::error_code ec, std::uint64_t generation) {
    if (closed_ || generation != timer_generation_) return;
    const auto now_t = clock::now();
    if (now_t >= deadline()) {
        if (!connected_) return close_now("no CONNECT within the time limit");
        if (token_deadline_ && now_t >= *token_deadline_) return close_now("SAS token expired");
        return close_now("keep-alive timeout");
    }
    arm_timer();  // traffic moved the deadline; sleep until the new one
}

void session::close_now(std::string_view reason) {
    if (closed_) return;
    closed_ = true;
    ++timer_generation_;
    timer_.cancel();
    transport_->close();
    if (registered_) {
        registered_ = false;
        if (st_->release(identity_, this)) st_->hub.set_connection_state(identity_, false);
    }
    st_->remove_open(this);
    c2d_end();
    if (connected_ && methods_subscribed()) {
        if (auto* h = st_->methods.load()) h->on_methods_gone(identity_, conn_number_);
    }
    if (connected_)
        log::info("mqtt.disconnect", {{"conn", conn_id_}, {"identity", describe(identity_)}, {"reason", reason}});
    else
        log::debug("mqtt.close", {{"conn", conn_id_}, {"reason", reason}});
}

template void session::send<publish>(const publish&);
template void session::send<puback>(const puback&);

}  // namespace twinhub::mqtt
