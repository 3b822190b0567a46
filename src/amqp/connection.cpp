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

#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>

namespace twinhub::amqp {

namespace asio = boost::asio;

namespace {

// proton::delivery keeps its pn_delivery_t protected; a rejection with an error condition (which the
// SDKs translate into typed errors) needs the C API.
struct raw_delivery : proton::delivery {
    static pn_delivery_t* of(const proton::delivery& d) { return static_cast<const raw_delivery&>(d).pn_object(); }
};

struct raw_link : proton::sender {
    static pn_link_t* of(const proton::sender& s) { return static_cast<const raw_link&>(s).pn_object(); }
};

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

// The selector filter string of the peer's source (Event Hubs receivers, spec: iothub-amqp 5.3):
// filter map key "apache.org:selector-filter:string" -> described(descriptor, string).
std::optional<std::string> selector_filter(const proton::sender& s) {
    pn_data_t* f = pn_terminus_filter(pn_link_remote_source(raw_link::of(s)));
    if (!f) return std::nullopt;
    pn_data_rewind(f);
    if (!pn_data_next(f) || pn_data_type(f) != PN_MAP) return std::nullopt;
    pn_data_enter(f);
    while (pn_data_next(f)) {
        const bool key_ok = (pn_data_type(f) == PN_SYMBOL || pn_data_type(f) == PN_STRING);
        std::string key;
        if (key_ok) {
            pn_bytes_t b = pn_data_type(f) == PN_SYMBOL ? pn_data_get_symbol(f) : pn_data_get_string(f);
            key.assign(b.start, b.size);
        }
        if (!pn_data_next(f)) break;
        if (key != "apache.org:selector-filter:string") continue;
        if (pn_data_type(f) == PN_STRING) {
            pn_bytes_t b = pn_data_get_string(f);
            return std::string(b.start, b.size);
        }
        if (pn_data_type(f) != PN_DESCRIBED) return std::string();
        pn_data_enter(f);
        pn_data_next(f);  // the descriptor
        if (!pn_data_next(f) || pn_data_type(f) != PN_STRING) return std::string();
        pn_bytes_t b = pn_data_get_string(f);
        return std::string(b.start, b.size);
    }
    return std::nullopt;
}

void reject_with(const proton::delivery& d, const char* condition, const std::string& description) {
    pn_delivery_t* pd = raw_delivery::of(d);
    pn_condition_t* c = pn_disposition_condition(pn_delivery_local(pd));
    pn_condition_set_name(c, condition);
    pn_condition_set_description(c, description.c_str());
    pn_delivery_update(pd, PN_REJECTED);
    pn_delivery_settle(pd);
}

std::string describe(const store::identity_key& id) {
    return id.is_module() ? id.device_id + "/" + id.module_id : id.device_id;
}


amqp_server::connection::connection(std::unique_ptr<net::transport> t, std::shared_ptr<state> st)
    : transport_(std::move(t)),
      st_(std::move(st)),
      number_(st_->next_connection.fetch_add(1)),
      log_id_("a" + std::to_string(number_ - (std::uint64_t{1} << 62))),
      driver_("twinhub"),
      timer_(transport_->executor()),
      read_buf_(16 * 1024) {}

amqp_server::connection::~connection() = default;


void amqp_server::connection::start() {
    st_->add_open(shared_from_this());
    connect_deadline_ = std::chrono::steady_clock::now() + st_->opts.connect_timeout;
    schedule_timer();
    transport_->async_handshake([self = shared_from_this()](boost::system::error_code ec) {
        if (ec) {
            log::debug("amqp.handshake_failed", {{"conn", self->log_id_}, {"error", ec.message()}});
            return self->finish();
        }
        // SASL PLAIN (az iot hub monitor-events): the password is a SAS token, applied as a
        // put-token for its own sr. Runs on this connection's thread, inside read_more.
        self->sasl_.set_plain_validator([raw = self.get()](const std::string&, std::string& password) {
            auto t = auth::parse_sas_token(password);
            if (!t) return false;
            std::string description;
            const int status = raw->apply_token(t->resource, password, description);
            if (status != 200)
                log::info("amqp.sasl_plain_refused", {{"conn", raw->log_id_}, {"status", status}, {"message", description}});
            return status == 200;
        });
        proton::connection_options o;
        o.handler(*self);
        o.container_id("twinhub");
        o.idle_timeout(proton::duration(static_cast<std::uint64_t>(self->st_->opts.idle_timeout.count())));
        o.max_frame_size(64 * 1024);
        // Node's IoT SDKs send no SASL layer; others offer ANONYMOUS (Event Hubs) before CBS.
        o.sasl_allow_insecure_mechs(true);
        self->driver_.accept(o);
        log::debug("amqp.connected", {{"conn", self->log_id_}, {"transport", self->transport_->name()}});
        self->pump();
        self->read_more();
    });
}

void amqp_server::connection::read_more() {
    if (finished_ || reading_) return;
    reading_ = true;
    transport_->async_read_some(asio::buffer(read_buf_), [self = shared_from_this()](boost::system::error_code ec,
                                                                                      std::size_t n) {
        self->reading_ = false;
        if (self->finished_) return;
        if (ec) {
            self->driver_.read_close();
            self->pump();
            return;
        }
        // Frames on a session the client already ended never reach Proton (frame_filter.hpp).
        self->sasl_in_.clear();
        self->sasl_.feed(self->read_buf_.data(), n, self->sasl_in_, self->sasl_out_);
        if (self->sasl_.failed()) {
            log::info("amqp.sasl_refused", {{"conn", self->log_id_}, {"mechanism", self->sasl_.mechanism()}});
            return self->finish();
        }
        self->filtered_.clear();
        self->filter_.feed(self->sasl_in_.data(), self->sasl_in_.size(), self->filtered_);
        const char* p = self->filtered_.data();
        n = self->filtered_.size();
        while (n > 0) {
            auto b = self->driver_.read_buffer();
            if (b.size == 0) break;  // the driver stopped reading (closing)
            std::size_t k = std::min(b.size, n);
            std::memcpy(b.data, p, k);
            self->driver_.read_done(k);
            p += k;
            n -= k;
        }
        self->pump();
        self->read_more();
    });
}

// Runs the driver's events, then starts a write of whatever it produced.
void amqp_server::connection::pump() {
    if (finished_) return;
    bool active = driver_.dispatch();
    flush();
    if (!active && !writing_ && driver_.write_buffer().size == 0) return finish();
    schedule_timer();
}

void amqp_server::connection::flush() {
    if (writing_ || finished_) return;
    if (!sasl_out_.empty()) {  // our SASL frames go out before anything Proton writes
        write_buf_.assign(sasl_out_.begin(), sasl_out_.end());
        sasl_out_.clear();
        writing_ = true;
        transport_->async_write(asio::buffer(write_buf_), [self = shared_from_this()](boost::system::error_code ec,
                                                                                       std::size_t) {
            self->writing_ = false;
            if (self->finished_) return;
            if (ec) {
                self->driver_.write_close();
                self->driver_.read_close();
            }
            self->pump();
        });
        return;
    }
    auto wb = driver_.write_buffer();
    if (wb.size == 0) return;
    write_buf_.assign(wb.data, wb.data + wb.size);
    writing_ = true;
    transport_->async_write(asio::buffer(write_buf_), [self = shared_from_this()](boost::system::error_code ec,
                                                                                   std::size_t) {
        self->writing_ = false;
        if (self->finished_) return;
        if (ec) {
            self->driver_.write_close();
            self->driver_.read_close();
            self->pump();
            return;
        }
        self->driver_.write_done(self->write_buf_.size());
        self->pump();
    });
}

void amqp_server::connection::schedule_timer() {
    if (finished_) return;
    // The driver's own deadline (idle frames, the peer's idle timeout), token expiry, and the
    // pre-authentication limit, whichever comes first; at least every 5 s.
    auto next = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    if (closing_) next = std::min(next, close_deadline_);
    else if (!authenticated_) next = std::min(next, connect_deadline_);
    timer_.expires_at(next);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->on_timer();
    });
}

void amqp_server::connection::on_timer() {
    if (finished_) return;
    const auto now_ms = proton::timestamp(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    driver_.tick(now_ms);
    if (!authenticated_ && !closing_ && std::chrono::steady_clock::now() >= connect_deadline_) {
        log::info("amqp.unauthenticated_timeout", {{"conn", log_id_}});
        close_now("amqp:unauthorized-access", "No CBS put-token within the connect timeout.");
    }
    if (closing_ && std::chrono::steady_clock::now() >= close_deadline_) {
        if (!connection_closed_) {
            finish_close();
            return pump();
        }
        driver_.read_close();
        driver_.write_close();
        return pump();
    }
    // A grant ends at its token's expiry: the SDKs renew before that on the same $cbs link.
    const std::int64_t now = unix_now();
    for (auto it = grants_.begin(); it != grants_.end();) {
        if (it->second.expiry > now) {
            ++it;
            continue;
        }
        log::info("amqp.token_expired", {{"conn", log_id_}, {"identity", describe(it->first)}});
        close_now("amqp:unauthorized-access", "The SAS token of '" + describe(it->first) + "' expired.");
        return pump();
    }
    if (service_ && service_->expiry <= now)
        close_now("amqp:unauthorized-access", "The SAS token of policy '" + service_->policy + "' expired.");
    pump();
}

void amqp_server::connection::finish() {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    transport_->close();
    pending_.clear();
    c2d_release_all();
    for (auto& id : claimed_) st_->release(id, this);
    std::set<store::identity_key> had;
    {
        std::lock_guard l(methods_mu_);
        had.swap(methods_ready_);
    }
    if (auto* r = st_->router.load())
        for (auto& id : had) r->on_connection_gone(id, number_);
    for (auto& id : claimed_) st_->hub.set_connection_state(id, false);
    claimed_.clear();
    eh_forget_all();
    st_->remove_open(this);
    log::debug("amqp.closed", {{"conn", log_id_}});
}

void amqp_server::connection::close(std::string condition, std::string reason) {
    post([this, condition = std::move(condition), reason = std::move(reason)] { close_now(condition, reason); });
}

// Sends the AMQP close with `condition` and waits (a few seconds at most) for the peer's close, so
// that the SDK sees the condition rather than a dropped socket: rhea would report a framing error,
// and azure-iot-amqp-base would then wait forever for its links to detach.
void amqp_server::connection::close_now(const std::string& condition, const std::string& reason) {
    if (closing_) return;
    closing_ = true;
    close_condition_ = proton::error_condition(condition, reason);
    // Links first: azure-iot-amqp-base detaches its links when the connection closes and waits for
    // the hub's detach, which never comes on a closed connection; detached links it handles.
    bool any = false;
    for (auto s : driver_.connection().senders())
        if (s.active()) s.close(close_condition_), any = true;
    for (auto r : driver_.connection().receivers())
        if (r.active()) r.close(close_condition_), any = true;
    close_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(any ? 1 : 0);
    if (!any) finish_close();
}

// The connection's own close, after the links had their detach (or a second to see it).
void amqp_server::connection::finish_close() {
    auto c = driver_.connection();
    if (!c.closed()) c.close(close_condition_);
    connection_closed_ = true;
    close_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(5);
}

void amqp_server::connection::revoke(const store::identity_key& id, std::string reason) {
    post([this, id, reason = std::move(reason)] {
        bool serves = grants_.count(id) > 0;
        // A device's revocation covers its modules.
        if (!id.is_module())
            for (auto& [g, _] : grants_) serves = serves || g.device_id == id.device_id;
        if (!serves) return;
        log::info("amqp.revoked", {{"conn", log_id_}, {"identity", describe(id)}, {"reason", reason}});
        close_now("amqp:unauthorized-access", reason);
    });
}

void amqp_server::connection::recheck_credentials(std::optional<store::identity_key> only) {
    post([this, only = std::move(only)] {
        if (service_ && !only) {
            // The policy must still verify the token and still grant what the links were opened with.
            const auto policies = st_->hub.policies();  // r points into it
            auto r = auth::authorize_service(service_->token, st_->opts.host_names, policies,
                                             auth::permission::service_connect | auth::permission::registry_read |
                                                 auth::permission::registry_write |
                                                 auth::permission::device_connect,
                                             now(), service_->resource);
            if (!r || ((*r)->rights & service_->permissions) != service_->permissions) {
                log::info("amqp.credentials_changed", {{"conn", log_id_}, {"policy", service_->policy}});
                close_now("amqp:unauthorized-access", "Shared access policy '" + service_->policy +
                                                          "' changed; the SAS token no longer grants these links.");
                return;
            }
        }
        for (auto& [id, g] : grants_) {
            if (only && !(id == *only)) continue;
            auto creds = st_->hub.credentials(id);
            bool ok = creds && creds->enabled;
            if (ok && g.x509) {
                ok = x509_still_valid(id);
            } else if (ok) {
                const auth::identity_keys keys{creds->authentication.symmetric_key.primary_key,
                                               creds->authentication.symmetric_key.secondary_key};
                ok = static_cast<bool>(auth::authorize_device(g.token, st_->opts.host_names,
                                                              id, keys,
                                                              st_->hub.policies(), now()));
            }
            if (ok) continue;
            log::info("amqp.credentials_changed", {{"conn", log_id_}, {"identity", describe(id)}});
            close_now("amqp:unauthorized-access",
                      "The credentials of '" + describe(id) + "' changed; its SAS token no longer verifies.");
            return;
        }
    });
}

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
