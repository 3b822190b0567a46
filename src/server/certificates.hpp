// The hub's own PKI, made at first start: a CA and a server certificate signed by it, both ECDSA
// P-256, PEM-encoded. Start-up code only: functions throw std::runtime_error on OpenSSL failures.
#pragma once

#include <string>
#include <vector>

namespace twinhub::server {

struct pem_pair {
    std::string certificate;  // PEM
    std::string private_key;  // PEM, PKCS#8, unencrypted
};

// A self-signed CA (CN = common_name, basicConstraints CA:TRUE, keyCertSign), valid for `days`.
pem_pair make_ca(const std::string& common_name, int days);

// A server certificate signed by `ca`, with subjectAltName DNS entries for every name that is not an
// IP address and IP entries for every one that is; CN = first name; serverAuth EKU.
pem_pair make_server_certificate(const pem_pair& ca, const std::vector<std::string>& names, int days);

// The SAN entries of a PEM certificate, as "DNS:name" / "IP:addr" strings (for tests and checks).
std::vector<std::string> subject_alt_names(const std::string& certificate_pem);

}  // namespace twinhub::server
