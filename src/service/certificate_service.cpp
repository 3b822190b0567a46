#include "service/certificate_service.hpp"

#include "common/encoding.hpp"
#include "registry/identity.hpp"
#include "service/hub_service.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <semaphore>

namespace twinhub::service {
namespace {

constexpr std::string_view key_prefix = "certificates/";

// Check-and-commit of certificate writes, one at a time (the settings store has no conditions):
// a writer takes the slot before reading the current certificate and gives it back when its commit
// has completed (on the store's thread), so the next writer reads what the last one wrote.
std::binary_semaphore& write_slot() {
    static std::binary_semaphore s{1};
    return s;
}
struct slot_guard {
    bool held = true;
    slot_guard() { write_slot().acquire(); }
    ~slot_guard() {
        if (held) write_slot().release();
    }
    // The completion releases it from now on.
    void hand_over() { held = false; }
};

std::int64_t ns_of(time_point t) { return t.time_since_epoch().count(); }
time_point time_of(std::int64_t ns) { return time_point(std::chrono::nanoseconds(ns)); }

std::string to_pem(std::string_view der) {
    const std::string b64 = base64_encode(der);
    std::string out = "-----BEGIN CERTIFICATE-----\n";
    for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
    out += "-----END CERTIFICATE-----\n";
    return out;
}

// PEM text, or base64 of DER or of PEM text (Azure accepts a .cer's content base64-encoded).
result<auth::certificate_info> parse_upload(std::string_view text) {
    if (text.find("-----BEGIN") != std::string_view::npos) return auth::parse_certificate(text);
    std::string compact;
    for (char c : text)
        if (c != '\n' && c != '\r' && c != ' ' && c != '\t') compact += c;
    auto bytes = base64_decode(compact);
    if (!bytes) return error{errc::invalid_argument, "The certificate is neither PEM nor base64-encoded DER."};
    return auth::parse_certificate(*bytes);
}

std::string to_storage(const ca_certificate& c) {
    boost::json::object o{{"name", c.name},
                          {"pem", c.pem},
                          {"isVerified", c.verified},
                          {"etag", c.etag},
                          {"verificationCode", c.verification_code},
                          {"createdNs", ns_of(c.created)},
                          {"updatedNs", ns_of(c.updated)}};
    return boost::json::serialize(o);
}

std::optional<ca_certificate> from_storage(const std::string& doc) {
    boost::system::error_code ec;
    auto v = boost::json::parse(doc, ec);
    const auto* o = ec ? nullptr : v.if_object();
    if (!o) return std::nullopt;
    ca_certificate c;
    auto str = [&](const char* k) -> std::string {
        const auto* x = o->if_contains(k);
        return x && x->is_string() ? std::string(x->as_string()) : std::string();
    };
    auto num = [&](const char* k) -> std::int64_t {
        const auto* x = o->if_contains(k);
        return x && x->is_int64() ? x->as_int64() : x && x->is_uint64() ? static_cast<std::int64_t>(x->as_uint64()) : 0;
    };
    c.name = str("name");
    c.pem = str("pem");
    const auto* verified = o->if_contains("isVerified");
    c.verified = verified && verified->is_bool() && verified->as_bool();
    c.etag = static_cast<std::uint64_t>(num("etag"));
    c.verification_code = str("verificationCode");
    c.created = time_of(num("createdNs"));
    c.updated = time_of(num("updatedNs"));
    auto info = auth::parse_certificate(c.pem);
    if (!info) return std::nullopt;
    c.info = std::move(*info);
    return c;
}

error not_found(std::string_view name) {
    return error{errc::not_found, "The certificate '" + std::string(name) + "' does not exist."};
}

// Azure's rule for an existing certificate: If-Match is required and must name the current etag.
result<void> check_etag(const ca_certificate& c, std::string_view if_match) {
    if (if_match.empty())
        return error{errc::precondition_failed, "The certificate '" + c.name + "' exists; send its etag in If-Match."};
    const std::string cur = registry::etag_to_string(c.etag);
    if (!registry::if_match_matches(if_match, cur))
        return error{errc::precondition_failed, "Precondition failed: the etag of certificate '" + c.name + "' is \"" +
                                                    cur + "\", If-Match was " + std::string(if_match) + "."};
    return {};
}

}  // namespace

result<void> certificate_service::validate_name(std::string_view name) {
    bool ok = !name.empty() && name.size() <= 64;
    for (char c : name)
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '_');
    if (!ok)
        return error{errc::invalid_argument, "The certificate name '" + std::string(name) +
                                                 "' is invalid: use 1-64 characters of A-Z, a-z, 0-9, '-', '.', '_'."};
    return {};
}

std::vector<ca_certificate> certificate_service::list() const {
    std::vector<ca_certificate> out;
    for (auto& [k, doc] : hub_.settings_with_prefix(key_prefix))
        if (auto c = from_storage(doc)) out.push_back(std::move(*c));
    return out;
}

result<ca_certificate> certificate_service::get(std::string_view name) const {
    auto doc = hub_.setting(std::string(key_prefix) + std::string(name));
    if (!doc) return not_found(name);
    auto c = from_storage(*doc);
    if (!c) return error{errc::corrupt_data, "The stored certificate '" + std::string(name) + "' is malformed."};
    return std::move(*c);
}

std::vector<std::string> certificate_service::verified_pems() const {
    std::vector<std::string> out;
    for (auto& c : list())
        if (c.verified) out.push_back(c.pem);
    return out;
}

void certificate_service::commit(ca_certificate c, handler<ca_certificate> done) {
    std::string key = std::string(key_prefix) + c.name;
    std::string doc = to_storage(c);
    hub_.put_setting(std::move(key), std::move(doc),
                     [&hub = hub_, c = std::move(c), done = std::move(done)](result<void> r) mutable {
                         write_slot().release();
                         if (!r) return done(r.error());
                         // A replaced PEM or a lost verification no longer anchors the chains it did.
                         hub.certificates_changed();
                         done(std::move(c));
                     });
}

void certificate_service::put(std::string name, std::string pem_or_base64, bool verified, std::string if_match,
                              handler<ca_certificate> done) {
    if (auto ok = validate_name(name); !ok) return done(ok.error());
    auto info = parse_upload(pem_or_base64);
    if (!info) return done(info.error());
    slot_guard lock;
    auto cur = get(name);
    ca_certificate c;
    const time_point t = now();
    if (cur) {
        if (auto ok = check_etag(*cur, if_match); !ok) return done(ok.error());
        c = *cur;
        c.etag = cur->etag + 1;
        if (cur->info.der != info->der) c.verification_code.clear();
    } else if (cur.error().code != errc::not_found) {
        return done(cur.error());
    } else if (!if_match.empty() && !registry::if_match_is_wildcard(if_match)) {
        return done(not_found(name));
    } else {
        c.name = name;
        c.etag = 1;
        c.created = t;
    }
    c.updated = t;
    c.pem = to_pem(info->der);
    c.verified = verified;
    c.info = std::move(*info);
    lock.hand_over();
    commit(std::move(c), std::move(done));
}

void certificate_service::remove(std::string name, std::string if_match, handler<void> done) {
    slot_guard lock;
    auto cur = get(name);
    if (!cur) return done(cur.error());
    if (auto ok = check_etag(*cur, if_match); !ok) return done(ok.error());
    lock.hand_over();
    hub_.put_setting(std::string(key_prefix) + name, std::string(), [&hub = hub_, done = std::move(done)](result<void> r) {
        write_slot().release();
        // Sessions authenticated through this CA are cut (as a thumbprint change cuts selfSigned ones).
        if (r) hub.certificates_changed();
        done(std::move(r));
    });
}

void certificate_service::generate_verification_code(std::string name, std::string if_match,
                                                     handler<ca_certificate> done) {
    slot_guard lock;
    auto cur = get(name);
    if (!cur) return done(cur.error());
    if (auto ok = check_etag(*cur, if_match); !ok) return done(ok.error());
    ca_certificate c = std::move(*cur);
    c.verification_code = random_hex(24);
    c.etag += 1;
    c.updated = now();
    lock.hand_over();
    commit(std::move(c), std::move(done));
}

void certificate_service::verify(std::string name, std::string verification_pem, std::string if_match,
                                 handler<ca_certificate> done) {
    slot_guard lock;
    auto cur = get(name);
    if (!cur) return done(cur.error());
    if (auto ok = check_etag(*cur, if_match); !ok) return done(ok.error());
    if (cur->verification_code.empty())
        return done(error{errc::invalid_argument, "The certificate '" + name +
                                                      "' has no verification code; generate one first."});
    std::string pem = verification_pem;
    if (pem.find("-----BEGIN") == std::string::npos) {
        auto parsed = parse_upload(pem);
        if (!parsed) return done(parsed.error());
        pem = to_pem(parsed->der);
    }
    if (auto ok = auth::check_verification_certificate(pem, cur->pem, cur->verification_code, now()); !ok)
        return done(ok.error());
    ca_certificate c = std::move(*cur);
    c.verified = true;
    c.verification_code.clear();
    c.etag += 1;
    c.updated = now();
    lock.hand_over();
    commit(std::move(c), std::move(done));
}

result<void> certificate_service::authenticate(const store::identity_key& id, const auth::certificate_chain& chain,
                                               time_point at) const {
    const std::string who = id.is_module() ? id.device_id + "/" + id.module_id : id.device_id;
    auto creds = hub_.credentials(id);
    if (!creds) return error{errc::unauthorized, "The identity '" + who + "' does not exist."};
    if (!creds->enabled) return error{errc::unauthorized, "The device '" + id.device_id + "' is disabled."};
    const auto& a = creds->authentication;
    switch (a.type) {
    case registry::auth_type::self_signed:
        return auth::check_thumbprint(chain, a.x509_thumbprint.primary_thumbprint,
                                      a.x509_thumbprint.secondary_thumbprint, at);
    case registry::auth_type::certificate_authority: {
        const auto anchors = verified_pems();
        return auth::check_chain(chain, anchors, who, at);
    }
    default:
        return error{errc::unauthorized, "The identity '" + who + "' does not use X.509 authentication (its type is '" +
                                             registry::to_string(a.type) + "')."};
    }
}

}  // namespace twinhub::service
