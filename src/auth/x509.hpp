// X.509 client-certificate decisions (spec 5.12): thumbprint checks for `selfSigned` identities,
// chain checks for `certificateAuthority` ones, and the parsing and proof-of-possession checks
// behind the hub's registered CA certificates. Pure functions over certificate bytes (OpenSSL's
// crypto, no I/O, no store access). Every refusal is errc::unauthorized (client certificates) or
// invalid_argument (a CA certificate a caller registers), with a message naming the reason.
// Thread safety: pure functions.
#pragma once

#include "common/errc.hpp"
#include "common/time.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace twinhub::auth {

// The certificates a TLS client presented, DER, leaf first (empty: none).
using certificate_chain = std::vector<std::string>;

// "AB:cd:01" -> "ABCD01": colons and spaces dropped, upper-cased.
std::string normalize_thumbprint(std::string_view t);

// Upper-case hex SHA-1 and SHA-256 of DER bytes.
std::string sha1_thumbprint(std::string_view der);
std::string sha256_thumbprint(std::string_view der);

// What the hub shows of a certificate.
struct certificate_info {
    std::string subject;       // "CN=e2e-test-root" (OpenSSL's RFC 2253 form)
    std::string common_name;   // the last CN of the subject; empty when none
    std::string sha1;          // upper-case hex of the DER
    std::string sha256;
    std::int64_t not_before = 0;  // Unix seconds
    std::int64_t not_after = 0;
    std::string der;
};

// One certificate in PEM (the first one in `pem`) or DER. Fails with invalid_argument.
result<certificate_info> parse_certificate(std::string_view pem_or_der);

// A `selfSigned` identity's check: the leaf must be within its validity at `now` and its SHA-1 or
// SHA-256 thumbprint must equal `primary` or `secondary` (compared normalized; empty never matches).
result<void> check_thumbprint(const certificate_chain& chain, const std::optional<std::string>& primary,
                              const std::optional<std::string>& secondary, time_point now);

// A `certificateAuthority` identity's check: the chain (leaf first, intermediates after it) must
// verify at `now` up to one of `trusted_ca_pems` (PEM roots or intermediates registered and
// verified with the hub), and the leaf's subject CN must equal `expected_cn` (the device id).
result<void> check_chain(const certificate_chain& chain, std::span<const std::string> trusted_ca_pems,
                         std::string_view expected_cn, time_point now);

// Proof of possession of a CA: `verification_pem` must be signed by `ca_pem`, be valid at `now`,
// and carry `code` as its subject CN. Fails with invalid_argument.
result<void> check_verification_certificate(std::string_view verification_pem, std::string_view ca_pem,
                                            std::string_view code, time_point now);

}  // namespace twinhub::auth
