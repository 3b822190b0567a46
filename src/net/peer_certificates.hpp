// The client certificates a TLS peer presented, for X.509 device authentication (spec 5.12): the
// listeners request one without requiring it and accept any at handshake time (server_tls.cpp);
// the heads decide at CONNECT, link attach or request time.
// Thread safety: call on the connection's strand (it reads the connection's SSL object).
#pragma once

#include <string>
#include <vector>

struct ssl_st;

namespace twinhub::net {

// DER of the peer's certificate and of the chain it sent after it, leaf first; empty when the peer
// sent none (or `ssl` is null).
std::vector<std::string> peer_certificate_chain(const ssl_st* ssl);

}  // namespace twinhub::net
