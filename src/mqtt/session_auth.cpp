// CONNECT authentication of the MQTT head (spec 5.1, 2.7) and its re-check when the identity's
// credentials or the hub's policies change (spec 6): a SAS token in the password, or, with no
// password, the client certificate of the TLS connection (X.509: selfSigned thumbprints or a
// chain to a verified CA certificate, service/certificate_service.hpp).
#include "mqtt/session.hpp"

#include "auth/authenticator.hpp"
#include "service/certificate_service.hpp"

namespace twinhub::mqtt {

result<auth::device_authorization> session::authenticate(const store::identity_key& id, std::string_view token,
                                                         time_point at) const {
    auto creds = st_->hub.credentials(id);
    if (!creds) return creds.error();
    if (!creds->enabled) return error{errc::unauthorized, "device '" + id.device_id + "' is disabled"};
    const auto policies = st_->hub.policies();
    const auth::identity_keys keys{creds->authentication.symmetric_key.primary_key,
                                   creds->authentication.symmetric_key.secondary_key};
    return auth::authorize_device(token, st_->opts.host_names, id, keys, policies, at);
}

result<auth::device_authorization> session::authenticate_x509(const store::identity_key& id, time_point at) const {
    if (x509_chain_.empty())
        return error{errc::unauthorized,
                     "CONNECT has no password (SAS token) and the TLS connection presented no client certificate"};
    if (auto ok = service::certificate_service(st_->hub).authenticate(id, x509_chain_, at); !ok) return ok.error();
    return auth::device_authorization{};
}

result<auth::device_authorization> session::reauthenticate(time_point at) const {
    return x509_chain_.empty() ? authenticate(identity_, token_, at) : authenticate_x509(identity_, at);
}

void session::recheck_credentials() {
    post_fn([self = shared_from_this()] {
        if (!self->connected_ || self->closed_ || self->closing_) return;
        auto r = self->reauthenticate(self->authenticated_at_);
        if (!r) self->close_now("credentials changed: " + r.error().message);
    });
}

}  // namespace twinhub::mqtt
