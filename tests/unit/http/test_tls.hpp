// Test-only TLS material: a throwaway self-signed certificate made with OpenSSL at test time, and
// the server and client ssl::contexts built from it.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <string>

namespace twinhub::http::test {

struct throwaway_certificate {
    std::string certificate_pem;
    std::string private_key_pem;
};

// An ECDSA P-256 certificate chain (leaf + CA, made by the hub's own PKI code) for localhost and
// 127.0.0.1, valid one day; certificate_pem holds the chain, private_key_pem the leaf's key.
throwaway_certificate make_throwaway_certificate();

// The hub's server context (server::make_server_tls_context: its TLS policy) with the certificate.
boost::asio::ssl::context make_server_context(const throwaway_certificate& c);
// TLS 1.2+ client context that trusts only the certificate and verifies the peer.
boost::asio::ssl::context make_client_context(const throwaway_certificate& c);

}  // namespace twinhub::http::test
