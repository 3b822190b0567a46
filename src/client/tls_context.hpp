// TLS client contexts for the SDK: TLS 1.2+, peer verification against the CA of tls_options (or
// the system store), and per-connection host-name verification and SNI.
// Thread safety: make_tls_context is pure; a context may be shared by connections on any thread
// once built.
#pragma once

#include "common/errc.hpp"
#include "twinhub/tls_options.hpp"

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

namespace twinhub::client {

// Fails with invalid_argument when the CA file cannot be read or the PEM is not a certificate.
result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const tls_options& options);

// Sets SNI (unless `host` is an IP address) and host-name verification on a not-yet-connected SSL
// handle. Returns false when OpenSSL refuses (out of memory).
bool prepare_tls_handle(void* native_ssl, const std::string& host);

// A user-facing description of a failed TLS handshake ("certificate verify failed: ...").
std::string describe_tls_error(const boost::system::error_code& ec, void* native_ssl);

}  // namespace twinhub::client
