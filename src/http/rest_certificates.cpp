// X.509 CA certificates over REST (spec 5.12). Azure manages them through ARM
// (`az iot hub certificate create|list|show|delete|generate-verification-code|verify`); twinhub
// serves the same resource on the hub, in ARM's shape, for a policy with RegistryWrite:
//   GET    /certificates                                   {"value": [description...]}
//   GET    /certificates/{name}                            description
//   PUT    /certificates/{name}   {"properties": {"certificate": PEM or base64 DER, "isVerified": b}}
//          (If-Match: none to create, the etag or * to replace)
//   DELETE /certificates/{name}   (If-Match required)
//   POST   /certificates/{name}/generateVerificationCode   (If-Match) description + verificationCode
//   POST   /certificates/{name}/verify  {"certificate": PEM}  (If-Match) proof of possession
#include "http/error_body.hpp"
#include "http/rest_api.hpp"
#include "http/route.hpp"
#include "registry/identity.hpp"
#include "service/certificate_service.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <ctime>

namespace twinhub::http {

namespace {

namespace json = boost::json;

// RFC 1123, as ARM shows certificate times: "Tue, 06 Jan 2027 20:03:18 GMT".
std::string rfc1123(std::int64_t unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return buf;
}

std::int64_t seconds_of(time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

json::object description(const service::ca_certificate& c, bool with_code) {
    json::object props{{"subject", c.info.subject},
                       {"expiry", rfc1123(c.info.not_after)},
                       {"thumbprint", c.info.sha1},
                       {"thumbprintSha256", c.info.sha256},
                       {"isVerified", c.verified},
                       {"created", rfc1123(seconds_of(c.created))},
                       {"updated", rfc1123(seconds_of(c.updated))},
                       {"certificate", c.pem}};
    if (with_code) props["verificationCode"] = c.verification_code;
    return json::object{{"properties", std::move(props)},
                        {"id", "/certificates/" + c.name},
                        {"name", c.name},
                        {"etag", registry::etag_to_string(c.etag)},
                        {"type", "Microsoft.Devices/IotHubs/Certificates"}};
}

rest_response ok_json(const json::value& v, const std::string* etag = nullptr) {
    rest_response r;
    r.status = 200;
    r.body = json::serialize(v);
    if (etag) r.headers.emplace_back("ETag", "\"" + *etag + "\"");
    return r;
}

// A JSON object body, or invalid_argument.
result<json::object> body_object(const std::string& body) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) return error{errc::invalid_argument, "The request body must be a JSON object."};
    return std::move(v.as_object());
}

const json::value* member(const json::object& o, std::string_view k) {
    if (const auto* p = o.if_contains("properties"); p && p->is_object())
        if (const auto* x = p->as_object().if_contains(k)) return x;
    return o.if_contains(k);
}

}  // namespace

void rest_api::handle_certificates(const route& r, const rest_request& req, completion done) const {
    service::certificate_service certs(hub_);
    auto fail = [&done](const error& e) { done(error_response(e)); };
    if (r.kind == route_kind::certificates) {
        json::array a;
        for (auto& c : certs.list()) a.push_back(description(c, false));
        return done(ok_json(json::object{{"value", std::move(a)}}));
    }
    const std::string& name = r.lock_token;
    if (auto ok = service::certificate_service::validate_name(name); !ok) return fail(ok.error());
    const std::string if_match = req.if_match.value_or("");
    auto answer = [done](bool with_code) {
        return [done, with_code](result<service::ca_certificate> c) {
            if (!c) return done(error_response(c.error()));
            const std::string etag = registry::etag_to_string(c->etag);
            done(ok_json(description(*c, with_code), &etag));
        };
    };
    if (r.kind == route_kind::certificate_code) return certs.generate_verification_code(name, if_match, answer(true));
    if (r.kind == route_kind::certificate_verify) {
        auto body = body_object(req.body);
        if (!body) return fail(body.error());
        const auto* cert = member(*body, "certificate");
        if (!cert || !cert->is_string())
            return fail(error{errc::invalid_argument, "The body must be {\"certificate\": \"<PEM>\"}."});
        return certs.verify(name, std::string(cert->as_string()), if_match, answer(false));
    }
    switch (r.method) {
    case http_method::get: {
        auto c = certs.get(name);
        if (!c) return fail(c.error());
        const std::string etag = registry::etag_to_string(c->etag);
        return done(ok_json(description(*c, false), &etag));
    }
    case http_method::put: {
        auto body = body_object(req.body);
        if (!body) return fail(body.error());
        const auto* cert = member(*body, "certificate");
        if (!cert || !cert->is_string() || cert->as_string().empty())
            return fail(error{errc::invalid_argument,
                              "The body must be {\"properties\": {\"certificate\": \"<PEM or base64 DER>\"}}."});
        bool verified = false;
        if (const auto* v = member(*body, "isVerified")) {
            if (!v->is_bool()) return fail(error{errc::invalid_argument, "'isVerified' must be true or false."});
            verified = v->as_bool();
        }
        return certs.put(name, std::string(cert->as_string()), verified, if_match, answer(false));
    }
    case http_method::delete_:
        return certs.remove(name, if_match, [done](result<void> res) {
            if (!res) return done(error_response(res.error()));
            rest_response out;
            out.status = 200;
            done(out);
        });
    default:
        return fail(error{errc::method_not_allowed, "Use GET, PUT or DELETE on a certificate."});
    }
}

}  // namespace twinhub::http
