// Fault injection on the AMQP head (issue 16 item 3; common/fault_injection.hpp), on when the
// server runs with amqp_options::fault_injection. The request itself is accepted and not stored;
// after its delay the hub drops the socket (KillTcp), closes the connection (KillAmqpConnection,
// ShutDownAmqp), ends the session the request came on (KillAmqpSession), or detaches one link:
// "Req" and "Resp" name the direction of the exchange (CBS and twin requests go device -> hub, so
// their Req link is the hub's receiver; method requests go hub -> device, so MethodReqLink is the
// hub's sender). InvokeThrottling / InvokeMaxMessageQuota / InvokeAuthError reject telemetry for
// the duration with the condition the SDK maps to ThrottlingError / IotHubQuotaExceededError /
// UnauthorizedError.
#include "amqp/connection.hpp"

#include "common/log.hpp"

#include <boost/asio/steady_timer.hpp>
#include <proton/error_condition.hpp>
#include <proton/session.hpp>

#include <algorithm>
#include <memory>

namespace twinhub::amqp {

bool amqp_server::connection::fault_requested(const store::identity_key& id, proton::delivery& d,
                                              const std::vector<std::pair<std::string, std::string>>& app) {
    if (std::chrono::steady_clock::now() < refuse_telemetry_until_) {
        reject_with(d, refuse_condition_.c_str(), refuse_why_);
        return true;
    }
    std::string why;
    auto f = fault::parse(app, &why);
    if (!f) {
        if (!why.empty()) log::info("amqp.fault_ignored", {{"conn", log_id_}, {"message", why}});
        return false;
    }
    const std::string link = d.receiver().name();
    d.accept();
    log::info("amqp.fault_requested", {{"conn", log_id_}, {"type", f->type}, {"delay_s", static_cast<std::int64_t>(f->delay.count())}});
    auto timer = std::make_shared<boost::asio::steady_timer>(transport_->executor(), f->delay);
    timer->async_wait([self = shared_from_this(), timer, id, link, f = *f](boost::system::error_code ec) {
        if (ec) return;
        self->post([self, id, link, f] { self->inject_fault(id, link, f); });
    });
    return true;
}

void amqp_server::connection::inject_fault(const store::identity_key& id, const std::string& link, const fault::request& f) {
    if (closing_) return;
    const std::string why = "Fault injection: " + f.type + (f.reason.empty() ? "" : " (" + f.reason + ")");
    const proton::error_condition detach("amqp:link:detach-forced", why);
    auto close_receiver = [&](auto pred) {
        for (auto& [name, info] : receivers_)
            if (pred(info.address) && info.link.active()) return info.link.close(detach);
    };
    auto close_sender = [&](const proton::sender* s) {
        if (s && s->active()) const_cast<proton::sender*>(s)->close(detach);
    };
    auto sender_of = [](auto& map, const store::identity_key& key) -> const proton::sender* {
        auto it = map.find(key);
        return it == map.end() ? nullptr : &it->second;
    };
    log::info("amqp.fault_injected", {{"conn", log_id_}, {"type", f.type}});
    using fault::kind;
    switch (f.what) {
    case kind::kill_tcp:
        return finish();
    case kind::shutdown_mqtt:
        return;  // not an AMQP fault
    case kind::shutdown_amqp:
    case kind::kill_amqp_connection:
        // amqp:internal-error: the SDKs map it to InternalServerError, which their default retry
        // policy retries (the e2e tests expect the reconnect not to be seen by the application);
        // amqp:connection:forced would surface as a plain, final error.
        return close_now("amqp:internal-error", why);
    case kind::kill_amqp_session: {
        auto it = receivers_.find(link);
        if (it != receivers_.end() && it->second.link.active())
            it->second.link.session().close(proton::error_condition("amqp:internal-error", why));
        return;
    }
    case kind::kill_amqp_d2c: {
        auto it = receivers_.find(link);
        if (it != receivers_.end() && it->second.link.active()) it->second.link.close(detach);
        return;
    }
    case kind::kill_amqp_cbs_req:
        return close_receiver([](const link_address& a) { return a.kind == link_kind::cbs; });
    case kind::kill_amqp_cbs_resp:
        return close_sender(cbs_sender_ ? &*cbs_sender_ : nullptr);
    case kind::kill_amqp_twin_req:
        return close_receiver([&](const link_address& a) { return a.kind == link_kind::twin && a.identity == id; });
    case kind::kill_amqp_twin_resp:
        return close_sender(sender_of(twin_senders_, id));
    case kind::kill_amqp_method_req:
        return close_sender(sender_of(method_senders_, id));
    case kind::kill_amqp_method_resp:
        return close_receiver([&](const link_address& a) { return a.kind == link_kind::methods && a.identity == id; });
    case kind::kill_amqp_c2d:
        for (auto& [name, c] : c2d_links_)
            if (!c.feedback && c.id == id && c.link.active()) return c.link.close(detach);
        return;
    case kind::throttling:
    case kind::max_message_quota:
    case kind::auth_error:
        refuse_telemetry_until_ = std::chrono::steady_clock::now() + std::max(f.duration, std::chrono::seconds(1));
        refuse_condition_ = f.what == kind::throttling          ? "com.microsoft:device-container-throttled"
                            : f.what == kind::max_message_quota ? "com.microsoft:quota-exceeded"
                                                                : "amqp:unauthorized-access";
        refuse_why_ = why;
        return;
    }
}

}  // namespace twinhub::amqp
