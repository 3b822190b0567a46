// Fault injection on the MQTT head (issue 16 item 3; common/fault_injection.hpp), on when the
// server runs with mqtt_options::fault_injection.
#include "mqtt/session.hpp"

#include "common/fault_injection.hpp"
#include "common/log.hpp"

#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <memory>

namespace twinhub::mqtt {

namespace asio = boost::asio;

// Fault injection (common/fault_injection.hpp): the request is acknowledged and not stored; after
// its delay the connection is dropped (KillTcp, ShutDownMqtt; MQTT 3.1.1 has no server DISCONNECT),
// or, for InvokeThrottling / InvokeMaxMessageQuota / InvokeAuthError, telemetry during the
// duration closes the connection, as IoT Hub does with an MQTT client it throttles.
bool session::fault_requested(const std::vector<std::pair<std::string, std::string>>& app, const publish& p) {
    if (clock::now() < refuse_telemetry_until_) {
        close_now("fault injection: telemetry refused (" + refuse_telemetry_why_ + ")");
        return true;
    }
    std::string why;
    auto f = fault::parse(app, &why);
    if (!f) {
        if (!why.empty()) log::info("mqtt.fault_ignored", {{"conn", conn_id_}, {"message", why}});
        return false;
    }
    if (p.qos == qos::at_least_once) send(puback{p.packet_id});
    log::info("mqtt.fault_requested", {{"conn", conn_id_}, {"identity", (identity_.is_module() ? identity_.device_id + "/" + identity_.module_id : identity_.device_id)}, {"type", f->type},
                                       {"delay_s", static_cast<std::int64_t>(f->delay.count())}});
    if (!fault::applies_to_mqtt(f->what)) return true;
    auto timer = std::make_shared<asio::steady_timer>(transport_->executor(), f->delay);
    timer->async_wait([self = shared_from_this(), timer, f = *f](boost::system::error_code ec) {
        if (ec || self->closed_) return;
        switch (f.what) {
        case fault::kind::throttling:
        case fault::kind::max_message_quota:
        case fault::kind::auth_error:
            self->refuse_telemetry_until_ = clock::now() + std::max(f.duration, std::chrono::seconds(1));
            self->refuse_telemetry_why_ = f.type;
            return;
        default:
            return self->close_now("fault injection: " + f.type + (f.reason.empty() ? "" : " (" + f.reason + ")"));
        }
    });
    return true;
}

}  // namespace twinhub::mqtt
