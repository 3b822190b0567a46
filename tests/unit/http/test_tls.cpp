#include "test_tls.hpp"

#include "server/certificates.hpp"
#include "server/server_tls.hpp"

#include <openssl/ssl.h>

namespace twinhub::http::test {

// The hub's own PKI code (src/server/certificates): a CA and a leaf it signed, as twinhubd makes
// them at first start. The chain (leaf + CA) serves the server; the client trusts what it is given.
throwaway_certificate make_throwaway_certificate() {
    server::pem_pair ca = server::make_ca("twinhub test CA", 1);
    server::pem_pair leaf = server::make_server_certificate(ca, {"localhost", "127.0.0.1"}, 1);
    return {leaf.certificate + ca.certificate, leaf.private_key};
}

boost::asio::ssl::context make_server_context(const throwaway_certificate& c) {
    return server::make_server_tls_context(c.certificate_pem, c.private_key_pem);
}

boost::asio::ssl::context make_client_context(const throwaway_certificate& c) {
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    ctx.add_certificate_authority(boost::asio::buffer(c.certificate_pem));
    ctx.set_verify_mode(boost::asio::ssl::verify_peer);
    return ctx;
}

}  // namespace twinhub::http::test
