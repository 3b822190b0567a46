// X.509 device authentication on the AMQP head (spec 5.12). azure-iot-device-amqp with
// `x509=true` sends no SASL layer and no CBS put-token: it opens the TLS (or WebSocket) connection
// with its client certificate and attaches its links straight away. The first link of an identity
// then authenticates the connection for that identity from the certificate; a refusal detaches
// the link with amqp:unauthorized-access (the SDK's UnauthorizedError).
#include "amqp/connection.hpp"

#include "common/log.hpp"
#include "service/certificate_service.hpp"

#include <limits>

namespace twinhub::amqp {

bool amqp_server::connection::grant_x509(const link_address& a, std::string& why) {
    switch (a.kind) {
    case link_kind::cbs:
    case link_kind::service_c2d:
    case link_kind::service_feedback:
    case link_kind::service_file_notifications:
    case link_kind::eventhub_partition:
    case link_kind::eventhub_management:
        return true;
    default:
        break;
    }
    if (grants_.count(a.identity)) return true;
    auto chain = transport_->peer_certificates();
    if (chain.empty()) return true;  // authorized() explains the missing token
    auto ok = service::certificate_service(st_->hub).authenticate(a.identity, chain, now());
    if (!ok) {
        why = ok.error().message;
        log::info("amqp.x509_refused", {{"conn", log_id_}, {"identity", describe(a.identity)}, {"message", why}});
        return false;
    }
    log::info("amqp.x509_authenticated", {{"conn", log_id_}, {"identity", describe(a.identity)}});
    grants_[a.identity] = grant{std::numeric_limits<std::int64_t>::max(), std::string(), true};
    authenticated_ = true;
    return true;
}

bool amqp_server::connection::x509_still_valid(const store::identity_key& id) const {
    return static_cast<bool>(
        service::certificate_service(st_->hub).authenticate(id, transport_->peer_certificates(), now()));
}

}  // namespace twinhub::amqp
