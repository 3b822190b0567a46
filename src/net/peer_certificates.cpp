#include "net/peer_certificates.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace twinhub::net {
namespace {

std::string der_of(X509* x) {
    unsigned char* buf = nullptr;
    const int n = i2d_X509(x, &buf);
    if (n <= 0) return {};
    std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
    OPENSSL_free(buf);
    return out;
}

}  // namespace

std::vector<std::string> peer_certificate_chain(const ssl_st* ssl) {
    std::vector<std::string> out;
    if (!ssl) return out;
    X509* leaf = SSL_get0_peer_certificate(ssl);
    if (!leaf) return out;
    out.push_back(der_of(leaf));
    // On the server side the chain does not hold the leaf (SSL_get_peer_cert_chain(3)).
    if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl)) {
        for (int i = 0; i < sk_X509_num(chain); ++i) {
            X509* x = sk_X509_value(chain, i);
            if (X509_cmp(x, leaf) != 0) out.push_back(der_of(x));
        }
    }
    return out;
}

}  // namespace twinhub::net
