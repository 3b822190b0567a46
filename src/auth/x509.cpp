#include "auth/x509.hpp"

#include "auth/sas_token.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <memory>

namespace twinhub::auth {
namespace {

struct x509_free_t {
    void operator()(X509* x) const noexcept { X509_free(x); }
};
using x509_ptr = std::unique_ptr<X509, x509_free_t>;

x509_ptr from_der(std::string_view der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    return x509_ptr(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
}

x509_ptr from_pem_or_der(std::string_view text) {
    if (text.find("-----BEGIN") != std::string_view::npos) {
        BIO* b = BIO_new_mem_buf(text.data(), static_cast<int>(text.size()));
        if (!b) return nullptr;
        x509_ptr x(PEM_read_bio_X509(b, nullptr, nullptr, nullptr));
        BIO_free(b);
        return x;
    }
    return from_der(text);
}

std::string der_of(X509* x) {
    unsigned char* buf = nullptr;
    const int n = i2d_X509(x, &buf);
    if (n <= 0) return {};
    std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
    OPENSSL_free(buf);
    return out;
}

std::string hex_digest(std::string_view der, const EVP_MD* md) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(der.data(), der.size(), out, &n, md, nullptr) != 1) return {};
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string s;
    s.reserve(n * 2);
    for (unsigned i = 0; i < n; ++i) {
        s += hex[out[i] >> 4];
        s += hex[out[i] & 0xf];
    }
    return s;
}

std::int64_t unix_of(const ASN1_TIME* t) {
    struct tm tm {};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return static_cast<std::int64_t>(timegm(&tm));
}

std::string common_name_of(X509* x) {
    X509_NAME* name = X509_get_subject_name(x);
    int idx = -1, last = -1;
    while ((idx = X509_NAME_get_index_by_NID(name, NID_commonName, idx)) >= 0) last = idx;
    if (last < 0) return {};
    ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last));
    unsigned char* utf8 = nullptr;
    const int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n < 0) return {};
    std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
    OPENSSL_free(utf8);
    return out;
}

std::string subject_of(X509* x) {
    BIO* b = BIO_new(BIO_s_mem());
    if (!b) return {};
    X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string out(data, static_cast<std::size_t>(n > 0 ? n : 0));
    BIO_free(b);
    return out;
}

error unauthorized(std::string why) { return error{errc::unauthorized, std::move(why)}; }

// The leaf's validity window at `now`.
result<void> check_validity(X509* x, std::int64_t now_s, const char* what) {
    time_t now = static_cast<time_t>(now_s);
    if (X509_cmp_time(X509_get0_notBefore(x), &now) > 0)
        return unauthorized(std::string("The ") + what + " is not valid yet.");
    if (X509_cmp_time(X509_get0_notAfter(x), &now) < 0) return unauthorized(std::string("The ") + what + " has expired.");
    return {};
}

bool thumbprint_matches(const std::optional<std::string>& configured, const std::string& sha1, const std::string& sha256) {
    if (!configured || configured->empty()) return false;
    const std::string t = normalize_thumbprint(*configured);
    return t == sha1 || t == sha256;
}

}  // namespace

std::string normalize_thumbprint(std::string_view t) {
    std::string out;
    out.reserve(t.size());
    for (char c : t) {
        if (c == ':' || c == ' ') continue;
        out += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    }
    return out;
}

std::string sha1_thumbprint(std::string_view der) { return hex_digest(der, EVP_sha1()); }
std::string sha256_thumbprint(std::string_view der) { return hex_digest(der, EVP_sha256()); }

result<certificate_info> parse_certificate(std::string_view pem_or_der) {
    x509_ptr x = from_pem_or_der(pem_or_der);
    if (!x) return error{errc::invalid_argument, "The certificate is not a PEM or DER X.509 certificate."};
    certificate_info info;
    info.der = der_of(x.get());
    info.subject = subject_of(x.get());
    info.common_name = common_name_of(x.get());
    info.sha1 = sha1_thumbprint(info.der);
    info.sha256 = sha256_thumbprint(info.der);
    info.not_before = unix_of(X509_get0_notBefore(x.get()));
    info.not_after = unix_of(X509_get0_notAfter(x.get()));
    return info;
}

result<void> check_thumbprint(const certificate_chain& chain, const std::optional<std::string>& primary,
                              const std::optional<std::string>& secondary, time_point now) {
    if (chain.empty()) return unauthorized("The connection presented no client certificate.");
    x509_ptr leaf = from_der(chain.front());
    if (!leaf) return unauthorized("The client certificate cannot be parsed.");
    if (auto ok = check_validity(leaf.get(), to_unix_seconds(now), "client certificate"); !ok) return ok;
    const std::string sha1 = sha1_thumbprint(chain.front()), sha256 = sha256_thumbprint(chain.front());
    if (thumbprint_matches(primary, sha1, sha256) || thumbprint_matches(secondary, sha1, sha256)) return {};
    return unauthorized("The client certificate's thumbprint matches neither thumbprint of the identity.");
}

result<void> check_chain(const certificate_chain& chain, std::span<const std::string> trusted_ca_pems,
                         std::string_view expected_cn, time_point now) {
    if (chain.empty()) return unauthorized("The connection presented no client certificate.");
    x509_ptr leaf = from_der(chain.front());
    if (!leaf) return unauthorized("The client certificate cannot be parsed.");
    if (trusted_ca_pems.empty()) return unauthorized("The hub has no verified CA certificate.");
    std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
    std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)> untrusted(
        sk_X509_new_null(), [](STACK_OF(X509)* s) { sk_X509_pop_free(s, X509_free); });
    std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
    if (!store || !untrusted || !ctx) return error{errc::internal, "out of memory"};
    for (const auto& pem : trusted_ca_pems) {
        if (x509_ptr ca = from_pem_or_der(pem)) X509_STORE_add_cert(store.get(), ca.get());
    }
    for (std::size_t i = 1; i < chain.size(); ++i) {
        if (x509_ptr x = from_der(chain[i])) sk_X509_push(untrusted.get(), x.release());
    }
    if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), untrusted.get()) != 1)
        return error{errc::internal, "X509_STORE_CTX_init failed"};
    // A registered intermediate is trusted as it is (the hub verified its possession).
    X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_PARTIAL_CHAIN);
    X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(to_unix_seconds(now)));
    if (X509_verify_cert(ctx.get()) != 1) {
        const int err = X509_STORE_CTX_get_error(ctx.get());
        return unauthorized(std::string("The client certificate chain does not verify against a verified CA of the hub: ") +
                            X509_verify_cert_error_string(err) + ".");
    }
    const std::string cn = common_name_of(leaf.get());
    if (cn != expected_cn)
        return unauthorized("The client certificate's CN '" + cn + "' is not the identity '" + std::string(expected_cn) +
                            "'.");
    return {};
}

result<void> check_verification_certificate(std::string_view verification_pem, std::string_view ca_pem,
                                            std::string_view code, time_point now) {
    auto bad = [](std::string why) { return error{errc::invalid_argument, std::move(why)}; };
    x509_ptr cert = from_pem_or_der(verification_pem);
    if (!cert) return bad("The verification certificate is not a PEM or DER X.509 certificate.");
    x509_ptr ca = from_pem_or_der(ca_pem);
    if (!ca) return bad("The stored CA certificate cannot be parsed.");
    EVP_PKEY* ca_key = X509_get0_pubkey(ca.get());
    if (!ca_key || X509_verify(cert.get(), ca_key) != 1)
        return bad("The verification certificate is not signed by the CA certificate.");
    if (auto ok = check_validity(cert.get(), to_unix_seconds(now), "verification certificate"); !ok)
        return bad(ok.error().message);
    const std::string cn = common_name_of(cert.get());
    if (code.empty() || cn != code)
        return bad("The verification certificate's CN '" + cn + "' is not the verification code.");
    return {};
}

}  // namespace twinhub::auth
