#include "server/server_tls.hpp"

#include <openssl/ssl.h>

#include <stdexcept>
#include <string>

namespace twinhub::server {

void apply_server_tls_policy(boost::asio::ssl::context& ctx) {
    namespace ssl = boost::asio::ssl;
    SSL_CTX* c = ctx.native_handle();
    if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1 || SSL_CTX_set_max_proto_version(c, 0) != 1)
        throw std::runtime_error("OpenSSL refused the TLS 1.2-1.3 protocol range");
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use |
                    ssl::context::no_compression);
    // set_cipher_list governs TLS 1.2 and below only; TLS 1.3 has its own list.
    if (SSL_CTX_set_cipher_list(c, std::string(tls12_cipher_list).c_str()) != 1)
        throw std::runtime_error("OpenSSL refused the TLS 1.2 cipher list");
    if (SSL_CTX_set_ciphersuites(c, std::string(tls13_ciphersuites).c_str()) != 1)
        throw std::runtime_error("OpenSSL refused the TLS 1.3 cipher suites");
    request_client_certificates(ctx);
}

void request_client_certificates(boost::asio::ssl::context& ctx) {
    SSL_CTX* c = ctx.native_handle();
    // SSL_VERIFY_PEER without SSL_VERIFY_FAIL_IF_NO_PEER_CERT: a CertificateRequest goes out, a
    // client without a certificate answers with an empty one and goes on; the callback accepts
    // whatever was sent (self-signed, unknown issuer, expired) so that the head can refuse it with
    // the protocol's own error (CONNACK 5, amqp:unauthorized-access, HTTP 401).
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
    // With peer verification on, OpenSSL refuses to resume a session without a context id.
    static constexpr unsigned char session_context[] = "twinhub";
    if (SSL_CTX_set_session_id_context(c, session_context, sizeof session_context - 1) != 1)
        throw std::runtime_error("OpenSSL refused the session id context");
}

boost::asio::ssl::context make_server_tls_context(std::string_view certificate_chain_pem,
                                                  std::string_view private_key_pem) {
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_server);
    apply_server_tls_policy(ctx);
    boost::system::error_code ec;
    ctx.use_certificate_chain(boost::asio::buffer(certificate_chain_pem.data(), certificate_chain_pem.size()), ec);
    if (!ec)
        ctx.use_private_key(boost::asio::buffer(private_key_pem.data(), private_key_pem.size()),
                            boost::asio::ssl::context::pem, ec);
    if (ec) throw std::runtime_error("cannot use the server certificate: " + ec.message());
    return ctx;
}

}  // namespace twinhub::server
