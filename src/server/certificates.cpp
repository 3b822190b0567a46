#include "server/certificates.hpp"

#include "common/encoding.hpp"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <memory>
#include <stdexcept>

namespace twinhub::server {
namespace {

template <class T, void (*F)(T*)>
struct deleter {
    void operator()(T* p) const { F(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509, X509_free>>;
using bio_ptr = std::unique_ptr<BIO, deleter<BIO, BIO_free_all>>;

void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("certificate generation failed: ") + what);
}

pkey_ptr new_p256_key() {
    pkey_ptr key(EVP_EC_gen("P-256"));
    check(key != nullptr, "EVP_EC_gen");
    return key;
}

std::string bio_string(BIO* b) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

std::string cert_pem(X509* x) {
    bio_ptr b(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_X509(b.get(), x) == 1, "PEM_write_bio_X509");
    return bio_string(b.get());
}

std::string key_pem(EVP_PKEY* k) {
    bio_ptr b(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr) == 1, "PEM_write_bio_PrivateKey");
    return bio_string(b.get());
}

x509_ptr read_cert(const std::string& pem) {
    bio_ptr b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    x509_ptr x(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
    check(x != nullptr, "PEM_read_bio_X509");
    return x;
}

pkey_ptr read_key(const std::string& pem) {
    bio_ptr b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    pkey_ptr k(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
    check(k != nullptr, "PEM_read_bio_PrivateKey");
    return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    check(ext != nullptr, "X509V3_EXT_conf_nid");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

x509_ptr new_cert(EVP_PKEY* key, const std::string& cn, int days) {
    x509_ptr x(X509_new());
    check(x != nullptr, "X509_new");
    X509_set_version(x.get(), 2);
    // Random positive 128-bit serial.
    std::string serial = random_bytes(16);
    serial[0] = static_cast<char>(serial[0] & 0x7f);
    BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(serial.data()), 16, nullptr);
    ASN1_INTEGER* ai = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x.get()));
    BN_free(bn);
    check(ai != nullptr, "serial");
    X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), static_cast<long>(days) * 24 * 3600);
    X509_set_pubkey(x.get(), key);
    X509_NAME* name = X509_get_subject_name(x.get());
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("twinhub"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    return x;
}

bool is_ip(const std::string& s) {
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

pem_pair make_ca(const std::string& common_name, int days) {
    pkey_ptr key = new_p256_key();
    x509_ptr x = new_cert(key.get(), common_name, days);
    X509_set_issuer_name(x.get(), X509_get_subject_name(x.get()));
    add_ext(x.get(), x.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x.get(), x.get(), NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    add_ext(x.get(), x.get(), NID_subject_key_identifier, "hash");
    check(X509_sign(x.get(), key.get(), EVP_sha256()) > 0, "X509_sign CA");
    return {cert_pem(x.get()), key_pem(key.get())};
}

pem_pair make_server_certificate(const pem_pair& ca, const std::vector<std::string>& names, int days) {
    check(!names.empty(), "no names");
    x509_ptr ca_cert = read_cert(ca.certificate);
    pkey_ptr ca_key = read_key(ca.private_key);
    pkey_ptr key = new_p256_key();
    x509_ptr x = new_cert(key.get(), names.front(), days);
    X509_set_issuer_name(x.get(), X509_get_subject_name(ca_cert.get()));
    std::string san;
    for (const auto& n : names) {
        if (!san.empty()) san += ',';
        san += (is_ip(n) ? "IP:" : "DNS:") + n;
    }
    add_ext(x.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature,keyAgreement");
    add_ext(x.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth");
    add_ext(x.get(), ca_cert.get(), NID_subject_alt_name, san);
    add_ext(x.get(), ca_cert.get(), NID_authority_key_identifier, "keyid:always");
    check(X509_sign(x.get(), ca_key.get(), EVP_sha256()) > 0, "X509_sign server");
    return {cert_pem(x.get()), key_pem(key.get())};
}

std::vector<std::string> subject_alt_names(const std::string& certificate_pem) {
    x509_ptr x = read_cert(certificate_pem);
    std::vector<std::string> out;
    auto* gens = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x.get(), NID_subject_alt_name, nullptr, nullptr));
    if (!gens) return out;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); ++i) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS) {
            const auto* s = g->d.dNSName;
            out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                               static_cast<std::size_t>(ASN1_STRING_length(s))));
        } else if (g->type == GEN_IPADD) {
            const auto* s = g->d.iPAddress;
            char buf[64] = {};
            int af = ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6;
            inet_ntop(af, ASN1_STRING_get0_data(s), buf, sizeof buf);
            out.push_back(std::string("IP:") + buf);
        }
    }
    GENERAL_NAMES_free(gens);
    return out;
}

}  // namespace twinhub::server
