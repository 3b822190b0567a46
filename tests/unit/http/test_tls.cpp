#include "test_tls.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>

namespace twinhub::http::test {
namespace {

template <class T, void (*F)(T*)>
struct deleter {
    void operator()(T* p) const { F(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509, X509_free>>;
using bio_ptr = std::unique_ptr<BIO, deleter<BIO, BIO_free_all>>;

void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("openssl: ") + what);
}

std::string bio_string(BIO* b) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

throwaway_certificate make_throwaway_certificate() {
    pkey_ptr key(EVP_EC_gen("P-256"));
    check(key != nullptr, "EVP_EC_gen");
    x509_ptr cert(X509_new());
    check(cert != nullptr, "X509_new");
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
                              std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        check(ext != nullptr, "X509V3_EXT_conf_nid");
        X509_add_ext(cert.get(), ext, -1);
        X509_EXTENSION_free(ext);
    }
    check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "X509_sign");

    throwaway_certificate out;
    bio_ptr cb(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_X509(cb.get(), cert.get()) == 1, "PEM_write_bio_X509");
    out.certificate_pem = bio_string(cb.get());
    bio_ptr kb(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1, "PEM_write");
    out.private_key_pem = bio_string(kb.get());
    return out;
}

boost::asio::ssl::context make_server_context(const throwaway_certificate& c) {
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_server);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    ctx.use_certificate_chain(boost::asio::buffer(c.certificate_pem));
    ctx.use_private_key(boost::asio::buffer(c.private_key_pem), boost::asio::ssl::context::pem);
    return ctx;
}

boost::asio::ssl::context make_client_context(const throwaway_certificate& c) {
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    ctx.add_certificate_authority(boost::asio::buffer(c.certificate_pem));
    ctx.set_verify_mode(boost::asio::ssl::verify_peer);
    return ctx;
}

}  // namespace twinhub::http::test
