// The hub's one TLS policy, for every listener that terminates TLS (HTTPS and MQTT over WebSocket on
// 443, MQTT on 8883): TLS 1.2 and 1.3 only; on TLS 1.2 only ECDHE key exchange with an AEAD cipher
// (AES-GCM or ChaCha20-Poly1305), as Azure IoT Hub offers; no CBC, no SHA-1 MAC, no static RSA.
// Start-up code only: the functions throw std::runtime_error when OpenSSL refuses the settings or
// the certificate. Thread safety: configure a context before any connection uses it.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <string_view>

namespace twinhub::server {

// The TLS 1.2 cipher list (OpenSSL names). The ECDSA suites serve the hub's own P-256 certificate;
// the RSA ones are there for an RSA certificate put in DIR/tls by hand, and are never chosen with
// an ECDSA certificate.
inline constexpr std::string_view tls12_cipher_list =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305";

// The TLS 1.3 suites (all AEAD; OpenSSL's default set, stated so that it cannot drift).
inline constexpr std::string_view tls13_ciphersuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// Applies the protocol versions, suites and options above to a server context, and
// request_client_certificates.
void apply_server_tls_policy(boost::asio::ssl::context& ctx);

// X.509 device authentication (spec 5.12): the server asks for a client certificate without
// requiring one, and accepts any certificate at handshake time; the heads decide later
// (net/peer_certificates.hpp). SAS clients, which send none, are unaffected.
void request_client_certificates(boost::asio::ssl::context& ctx);

// A server context with the policy and a certificate chain (leaf first) and its private key, PEM.
boost::asio::ssl::context make_server_tls_context(std::string_view certificate_chain_pem,
                                                  std::string_view private_key_pem);

}  // namespace twinhub::server
