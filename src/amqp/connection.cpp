// One AMQP connection: the transport pump, timers, close and credential re-checks.
// Links are opened and routed in connection_links.cpp; CBS, telemetry, twin and method handlers are in
// connection_handlers.cpp.
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

}  // namespace

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

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


}  // namespace twinhub::amqp
